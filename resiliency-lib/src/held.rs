//! Held requests and events: the service's side.
//!
//! A service may *hold* the request in hand ([`hold`]): it finishes
//! handling it without answering, keeps the returned [`Held`] in its state
//! (it is plain data, distilled with the rest), and answers it later, while
//! it handles another request or an [`Event`], with [`answer`] and, after
//! the last reply, [`release`]. A TCP receive waits for data this way, an
//! accept for a connection, a durable write for its commit. Meanwhile the
//! companion serves other sessions and clients.
//!
//! Events are what the companion originates rather than a client: timer
//! ticks at the interval the service asks for (`Service::TICK_MS`); frames
//! from nic and replies to outbound calls can be added as more kinds. The
//! companion logs them in order with the requests, so a replay after a
//! crash gives the service the same sequence.
//!
//! Answers go out when the handling of the current request or event ends
//! (before its own replies); answers given while a session opens or closes
//! wait for the next request or event.

use crate::distill::Distill;
use alloc::vec::Vec;
use libos::channel::{HandleList, Message};
use libos::wire::{DecodeError, Reader, Writer};

/// The session number of events: no client session has number 0 (a session
/// hello naming 0 is refused; the companion numbers sessions from 1 on).
pub const EVENT_SESSION: u64 = 0;
/// Event kind: a timer tick.
pub const EVENT_TICK: u8 = 1;

/// A held request: who is owed an answer. Kept in the service's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Held {
    /// The client session.
    pub session: u64,
    /// The request's number in the session.
    pub seq: u64,
}

impl Distill for Held {
    fn write(&self, w: &mut Writer) {
        w.u64(self.session).u64(self.seq);
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Held { session: r.u64()?, seq: r.u64()? })
    }
}

/// Something that happened that is not a client's request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A timer tick: the companion's `number`th (counted from 1 by each
    /// companion process) at time `now_ns` (ns since boot, recorded).
    Tick {
        /// Its number.
        number: u64,
        /// When it was originated.
        now_ns: u64,
    },
}

impl Event {
    /// The event's kind and bytes as the companion sends and logs them.
    pub fn encode(&self) -> (u8, Vec<u8>) {
        match self {
            Event::Tick { number, now_ns } => {
                let mut w = Writer::new();
                w.u64(*number).u64(*now_ns);
                (EVENT_TICK, w.finish())
            }
        }
    }

    /// An event from its kind and bytes (None: a kind this runtime does
    /// not know, or bytes that do not fit it).
    pub fn decode(kind: u8, data: &[u8]) -> Option<Event> {
        let mut r = Reader::new(data);
        let e = match kind {
            EVENT_TICK => Event::Tick { number: r.u64().ok()?, now_ns: r.u64().ok()? },
            _ => return None,
        };
        r.finish().ok()?;
        Some(e)
    }
}

/// What the service said about held requests, in order.
pub(crate) enum Out {
    /// A reply (encoded) to a held request.
    Reply(Held, Vec<u8>),
    /// The held request has had its last reply.
    Release(Held),
}

/// The handling in progress: the request in hand (None for an event) and
/// whether it was held.
struct Handling {
    current: Option<(u64, u64)>,
    hold: bool,
    out: Vec<Out>,
}

static HANDLING: spin::Mutex<Handling> = spin::Mutex::new(Handling { current: None, hold: false, out: Vec::new() });

/// Hold the request being handled: no answer now; the service answers it
/// later with [`answer`] and [`release`]. None while handling an event (or
/// a session opening or closing): there is no request in hand.
pub fn hold() -> Option<Held> {
    let mut h = HANDLING.lock();
    let (session, seq) = h.current?;
    h.hold = true;
    Some(Held { session, seq })
}

/// Answer held request `to` with one reply of the service's contract.
pub fn answer<R: Message>(to: Held, reply: R) {
    let mut w = Writer::new();
    let mut handles = HandleList::default();
    reply.encode(&mut w, &mut handles);
    HANDLING.lock().out.push(Out::Reply(to, w.finish()));
}

/// Held request `to` has had its last reply.
pub fn release(to: Held) {
    HANDLING.lock().out.push(Out::Release(to));
}

/// The runtime starts handling request `current` (None: an event).
pub(crate) fn begin(current: Option<(u64, u64)>) {
    let mut h = HANDLING.lock();
    h.current = current;
    h.hold = false;
}

/// The handling ended: the answers to held requests given meanwhile, and
/// whether the request in hand was held.
pub(crate) fn end() -> (Vec<Out>, bool) {
    let mut h = HANDLING.lock();
    h.current = None;
    (core::mem::take(&mut h.out), core::mem::take(&mut h.hold))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_round_trip_and_unknown_kinds_are_refused() {
        let tick = Event::Tick { number: 7, now_ns: 123 };
        let (kind, data) = tick.encode();
        assert_eq!(Event::decode(kind, &data), Some(tick));
        assert_eq!(Event::decode(kind, &data[..15]), None);
        assert_eq!(Event::decode(99, &data), None);
    }

    #[test]
    fn held_requests_distill() {
        let h = Held { session: 5, seq: 9 };
        assert_eq!(crate::distill::from_bytes::<Held>(&crate::distill::to_bytes(&h)), Ok(h));
    }
}
