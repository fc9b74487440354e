//! Crash injection: where in the handling of a request (or of a
//! checkpoint) a service is told to misbehave, and how. A directive is one
//! byte: the point in the high nibble, the kind in the low nibble; 0 means
//! none. The companion decides and counts every injection; the service only
//! carries it out.

/// When to misbehave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    /// On receiving the request, before handling it.
    Before = 1,
    /// After the handler changed the state, before any reply is sent.
    Mid = 2,
    /// After the replies and `Done` are sent.
    After = 3,
    /// While taking a checkpoint.
    Checkpoint = 4,
}

/// How to misbehave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Write through a wild pointer (a page fault).
    Fault = 1,
    /// Panic.
    Panic = 2,
    /// Loop forever.
    Hang = 3,
    /// Exit with an error code.
    Exit = 4,
    /// Send a reply that breaks the contract.
    Violation = 5,
    /// Corrupt the state so the next invariant check fails.
    Corrupt = 6,
    /// Be killed by the kernel (the companion kills the process).
    Kill = 7,
}

impl Point {
    fn from_u8(v: u8) -> Option<Point> {
        [Point::Before, Point::Mid, Point::After, Point::Checkpoint].into_iter().find(|p| *p as u8 == v)
    }
}

impl Kind {
    /// The kind with this number.
    pub fn from_u8(v: u8) -> Option<Kind> {
        use Kind::*;
        [Fault, Panic, Hang, Exit, Violation, Corrupt, Kill].into_iter().find(|k| *k as u8 == v)
    }

    /// A short name, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Fault => "fault",
            Kind::Panic => "panic",
            Kind::Hang => "hang",
            Kind::Exit => "exit",
            Kind::Violation => "contract violation",
            Kind::Corrupt => "corrupt state",
            Kind::Kill => "kill",
        }
    }
}

/// Encode a directive.
pub fn encode(point: Point, kind: Kind) -> u8 {
    ((point as u8) << 4) | kind as u8
}

/// Decode a directive (None for 0 or garbage).
pub fn decode(byte: u8) -> Option<(Point, Kind)> {
    Some((Point::from_u8(byte >> 4)?, Kind::from_u8(byte & 0xf)?))
}

/// The kinds that can strike while handling a request.
pub const REQUEST_KINDS: [Kind; 7] =
    [Kind::Fault, Kind::Panic, Kind::Hang, Kind::Exit, Kind::Violation, Kind::Corrupt, Kind::Kill];
/// The points within a request.
pub const REQUEST_POINTS: [Point; 3] = [Point::Before, Point::Mid, Point::After];
/// Where a request-time injection of `kind`, rolled at `point`, strikes:
/// a corruption strikes after the replies. The invariant check that finds
/// a corrupted state runs at the checkpoint the companion takes right
/// after the request; a state corrupted before or during the request
/// could answer the client wrongly first. (The soak, seed 2034: fs's
/// state corrupted before a read made it answer httpd that the data disk
/// could not be mounted, and the download broke; the replay after the
/// failed check answered differently, a divergence.) A service's own bug
/// that corrupts its state before a reply is beyond what the companion
/// can see; a chaos injection models a corruption its checks can catch.
pub fn point_for(point: Point, kind: Kind) -> Point {
    match kind {
        Kind::Corrupt => Point::After,
        _ => point,
    }
}

/// The kinds that can strike during a checkpoint.
pub const CHECKPOINT_KINDS: [Kind; 4] = [Kind::Fault, Kind::Panic, Kind::Hang, Kind::Corrupt];

pub use libos::rand::Rng;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corruptions_strike_after_the_replies() {
        for p in REQUEST_POINTS {
            assert_eq!(point_for(p, Kind::Corrupt), Point::After);
            assert_eq!(point_for(p, Kind::Fault), p);
        }
    }

    #[test]
    fn directives_round_trip() {
        for p in REQUEST_POINTS.into_iter().chain([Point::Checkpoint]) {
            for k in REQUEST_KINDS {
                assert_eq!(decode(encode(p, k)), Some((p, k)));
            }
        }
        assert_eq!(decode(0), None);
        assert_eq!(decode(0xff), None);
    }

    #[test]
    fn chance_is_roughly_right() {
        let mut r = Rng::new(42);
        let hits = (0..100_000).filter(|_| r.chance(10)).count();
        assert!((700..1300).contains(&hits), "{hits}");
        assert!((0..1000).all(|_| !r.chance(0)));
    }
}
