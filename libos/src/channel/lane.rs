//! Lanes: a client's idempotent requests straight to a resilient service,
//! past its companion (DESIGN.md 5.7, the companion off the critical path).
//!
//! A request the contract calls idempotent changes nothing, so the
//! companion has nothing to log for it; it only forwards it and its reply,
//! which costs two more process switches per round trip. A client whose
//! service allows it opens a *lane*: a second channel, whose far side it
//! sends over its session as a *lane frame* (`KSESLANE` and the endpoint's
//! three handles). The companion hands that side to the service (`Lane` on
//! the link), and the service's runtime serves idempotent requests from it
//! between the companion's messages (`resiliency_lib::lanes`).
//!
//! The companion still covers every crash: when the lane breaks (the
//! service died or was restarted, and its side of the lane with it) or
//! its answer takes longer than [`LANE_PATIENCE`], the channel sends the
//! request again through the companion, which delivers it to the
//! restarted service (being idempotent, a request applied twice is
//! harmless), skips the replies it already had, and opens a new lane a
//! moment later. Replies on a lane are checked by the client's stub, as
//! every reply is.
//!
//! Only requests of a single reply should go by lane (a re-run after a
//! break could answer a listing differently, and skipping replies would
//! then mix two answers).

use super::{Endpoint, EndpointHandles};
use alloc::vec::Vec;
use core::time::Duration;

/// The first bytes of a lane frame.
pub const LANE_MAGIC: [u8; 8] = *b"KSESLANE";

/// How long a request waits for its answer on a lane before it goes
/// through the companion instead.
pub const LANE_PATIENCE: Duration = Duration::from_secs(5);

/// How long after a lane broke the channel opens a new one, the first
/// time; it doubles with every lane in a row that never answered (the
/// companion refuses lanes while chaos is on), up to [`REOPEN_MAX_NS`].
const REOPEN_AFTER_NS: u64 = 200_000_000;
const REOPEN_MAX_NS: u64 = 10_000_000_000;

/// Whether `bytes` are a lane frame.
pub fn is_lane_frame(bytes: &[u8]) -> bool {
    bytes == LANE_MAGIC
}

/// A channel's lane.
pub(super) struct Lane<Tx> {
    /// Which requests may go by lane.
    pub goes_by_lane: fn(&Tx) -> bool,
    /// The ring size of a new lane (each direction).
    pub ring_bytes: usize,
    /// The lane, while open.
    pub ep: Option<Endpoint>,
    /// The last request went by lane and its replies come from there.
    pub in_flight: bool,
    /// When it went.
    pub sent_at_ns: u64,
    /// That request's bytes (sent again through the companion if the lane
    /// breaks), and how many replies it has had.
    pub kept: Vec<u8>,
    pub taken: usize,
    /// When to open a new lane after one broke.
    pub reopen_at_ns: u64,
    /// Lanes opened since the last one that answered (each waits longer
    /// before the next).
    pub fruitless: u32,
}

impl<Tx> Lane<Tx> {
    /// Whether a new lane should be opened now.
    pub fn wants_reopen(&self, now_ns: u64) -> bool {
        self.ep.is_none() && now_ns >= self.reopen_at_ns
    }

    /// A new lane: our side, and the far side for the lane frame.
    pub fn open(&mut self) -> Option<EndpointHandles> {
        let (mine, theirs) = Endpoint::pair_with(self.ring_bytes).ok()?;
        self.ep = Some(mine);
        self.fruitless += 1;
        Some(theirs)
    }

    /// The lane broke (or was too slow): close it, open another later.
    pub fn broke(&mut self, now_ns: u64) {
        self.ep = None;
        self.in_flight = false;
        let wait = (REOPEN_AFTER_NS << self.fruitless.min(6)).min(REOPEN_MAX_NS);
        self.reopen_at_ns = now_ns.saturating_add(wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lane() -> Lane<u8> {
        Lane {
            goes_by_lane: |_| true,
            ring_bytes: 4096,
            ep: None,
            in_flight: true,
            sent_at_ns: 0,
            kept: Vec::new(),
            taken: 0,
            reopen_at_ns: 0,
            fruitless: 0,
        }
    }

    #[test]
    fn only_the_lane_frame_is_one() {
        assert!(is_lane_frame(b"KSESLANE"));
        assert!(!is_lane_frame(b"KSESLANE\0"));
        assert!(!is_lane_frame(b"KSESSION"));
        assert!(!is_lane_frame(b""));
    }

    #[test]
    fn a_broken_lane_opens_again_later_and_later() {
        let mut l = lane();
        assert!(l.wants_reopen(0));
        l.broke(1_000);
        assert!(!l.in_flight);
        assert!(!l.wants_reopen(1_000 + REOPEN_AFTER_NS - 1));
        assert!(l.wants_reopen(1_000 + REOPEN_AFTER_NS));
        // Lanes that never answer wait twice as long each time, up to the
        // longest wait.
        l.fruitless = 3;
        l.broke(0);
        assert_eq!(l.reopen_at_ns, REOPEN_AFTER_NS * 8);
        l.fruitless = 40;
        l.broke(0);
        assert_eq!(l.reopen_at_ns, REOPEN_MAX_NS);
    }
}
