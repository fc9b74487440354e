//! Events: what the companion originates for its service rather than a
//! client's request. Each becomes work in the same queue as the requests,
//! is logged when it is delivered (so the log has it in order with them)
//! and is replayed in its place after a crash.
//!
//! The source today is a timer: ticks at the interval the service asks for
//! (`Service::TICK_MS`). Another source (a frame from nic, the reply to an
//! outbound call) is a new `Event` kind in `crate::held` and one more
//! `due`-style producer here: its data is logged, so the replay needs
//! nothing from the source.

use super::clients::Work;
use crate::held::Event;
use core::time::Duration;

/// The event sources a service asks for.
#[derive(Clone, Copy, Debug, Default)]
pub struct EventSources {
    /// Timer ticks every this many milliseconds (0: none).
    pub tick_ms: u64,
    /// The service takes lanes (its clients' idempotent requests straight
    /// from them; libos `channel::lane`); without, a lane is closed at once.
    pub lanes: bool,
}

/// The companion's event producers.
pub struct Events {
    tick_ns: u64,
    next_tick_ns: u64,
    ticks: u64,
    next_seq: u64,
}

impl Events {
    /// Producers for `sources`, starting at `now_ns`; event numbers from
    /// `first_seq` on (past those in a restored log).
    pub fn new(sources: EventSources, now_ns: u64, first_seq: u64) -> Events {
        let tick_ns = sources.tick_ms.saturating_mul(1_000_000);
        Events { tick_ns, next_tick_ns: now_ns.saturating_add(tick_ns), ticks: 0, next_seq: first_seq.max(1) }
    }

    /// The events due at `now_ns`, as work. A tick that came due while the
    /// companion was busy (a recovery) is one tick, not a burst.
    pub fn due(&mut self, now_ns: u64) -> Option<Work> {
        if self.tick_ns == 0 || now_ns < self.next_tick_ns {
            return None;
        }
        self.next_tick_ns = self.next_tick_ns.saturating_add(self.tick_ns);
        if self.next_tick_ns <= now_ns {
            self.next_tick_ns = now_ns.saturating_add(self.tick_ns);
        }
        self.ticks += 1;
        let (kind, data) = Event::Tick { number: self.ticks, now_ns }.encode();
        let seq = self.next_seq;
        self.next_seq += 1;
        Some(Work::Event { seq, kind, data })
    }

    /// Ticks every `ms` milliseconds from now on, as the service asked
    /// (bounded to 1 ms .. 10 s). A shorter interval brings the next tick
    /// nearer; a longer one starts after the tick already due. A service
    /// that asked for no ticks gets none.
    pub fn tick_every(&mut self, ms: u64, now_ns: u64) {
        if self.tick_ns == 0 {
            return;
        }
        self.tick_ns = ms.clamp(1, 10_000) * 1_000_000;
        self.next_tick_ns = self.next_tick_ns.min(now_ns.saturating_add(self.tick_ns));
    }

    /// How long until the next event is due (None: no timer).
    pub fn timeout(&self, now_ns: u64) -> Option<Duration> {
        (self.tick_ns > 0).then(|| Duration::from_nanos(self.next_tick_ns.saturating_sub(now_ns)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_sets_the_interval() {
        let mut e = Events::new(EventSources { tick_ms: 100, lanes: false }, 0, 1);
        assert!(e.due(100_000_000).is_some());
        // Longer: the tick already due (at 200 ms) comes, then every second.
        e.tick_every(1000, 150_000_000);
        assert!(e.due(200_000_000).is_some());
        assert!(e.due(1_100_000_000).is_none());
        assert!(e.due(1_200_000_000).is_some());
        // Shorter: the next tick comes at the new interval from now.
        e.tick_every(5, 1_300_000_000);
        assert_eq!(e.timeout(1_300_000_000), Some(Duration::from_millis(5)));
        // No ticks asked for: none are started.
        let mut none = Events::new(EventSources::default(), 0, 1);
        none.tick_every(5, 0);
        assert!(none.due(u64::MAX).is_none());
    }

    fn tick(w: Option<Work>) -> (u64, Event) {
        match w {
            Some(Work::Event { seq, kind, data }) => (seq, Event::decode(kind, &data).unwrap()),
            _ => panic!("no event"),
        }
    }

    #[test]
    fn ticks_come_at_the_interval_numbered_in_order() {
        let mut e = Events::new(EventSources { tick_ms: 100, lanes: false }, 1_000, 5);
        assert!(e.due(1_000).is_none());
        assert_eq!(e.timeout(1_000), Some(Duration::from_millis(100)));
        assert_eq!(tick(e.due(100_001_000)), (5, Event::Tick { number: 1, now_ns: 100_001_000 }));
        assert!(e.due(100_001_001).is_none());
        // Late by several intervals: one tick, then the interval again.
        assert_eq!(tick(e.due(900_000_000)), (6, Event::Tick { number: 2, now_ns: 900_000_000 }));
        assert!(e.due(950_000_000).is_none());
        assert!(e.due(1_000_000_000).is_some());
    }

    #[test]
    fn no_timer_no_events() {
        let mut e = Events::new(EventSources::default(), 0, 0);
        assert!(e.due(u64::MAX).is_none());
        assert_eq!(e.timeout(0), None);
    }
}
