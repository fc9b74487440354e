//! Held requests: the companion's side (the service's is `crate::held`).
//!
//! A request the service held (`Held` instead of `Done`) is answered later,
//! while the service handles something else. The companion keeps, per held
//! request, what it needs to route those answers and to replay them: the
//! hashes of the replies its client received, how many of them the newest
//! committed checkpoint's state had already given, and how many the
//! service has produced since the last (re)start. A replay that produces a
//! reply the client already has is recognised by its index and suppressed
//! (or counted as a divergence if it differs), as for replies of logged
//! requests.
//!
//! Unlike the log, this table is not trimmed by a checkpoint: a request
//! held at the checkpoint lives on in the service's state, and its answers
//! after the checkpoint are replayed from there. Entries are dropped at the
//! first commit after their release (or their session's close).
//!
//! A restore that falls back to an older checkpoint and loses what the
//! rejected one held beyond its log may leave the service knowing nothing
//! of a held request whose client still waits (RELIABILITY finding 18: a
//! `Wait` httpd had made of net, never answered, until httpd's call timed
//! out a minute later and its connections were dropped). After such a
//! fall-back the requests the replay did not hold again are *abandoned*
//! ([`HeldRequests::abandon_unseen`]): their clients get the contract's
//! error, and an answer the service may still give one later is dropped.

use crate::log::{reply_hash, RequestId};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// What a reply the service gave to a held request is, given what the
/// client received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// A reply the client has not had: check it and send it.
    New,
    /// A replay produced again a reply the client has.
    Same,
    /// A replay produced something else than the reply the client has.
    Differs,
}

#[derive(Default)]
struct Entry {
    /// Hashes of the replies the client received, in order.
    delivered: Vec<u64>,
    /// Replies the service produced since its last (re)start, counting
    /// those the restored checkpoint had given.
    produced: usize,
    /// Replies given when the newest checkpoint was taken (its state knows
    /// it gave them; a replay starts counting from here).
    committed: usize,
    /// Its last reply was given, or its session closed.
    released: bool,
    /// Held again, or answered, since the last (re)start.
    seen: bool,
    /// Given up after a lossy fall-back: answers to it are dropped.
    abandoned: bool,
}

/// The requests held by the service.
#[derive(Default)]
pub struct HeldRequests {
    entries: BTreeMap<RequestId, Entry>,
}

impl HeldRequests {
    /// An empty table.
    pub fn new() -> HeldRequests {
        HeldRequests::default()
    }

    /// The service held request `id` (again, in a replay: what its client
    /// received is kept).
    pub fn hold(&mut self, id: RequestId) {
        let e = self.entries.entry(id).or_default();
        e.seen = true;
        if !e.abandoned {
            e.released = false;
        }
    }

    /// Whether `id` is held and may be answered.
    pub fn is_held(&self, id: RequestId) -> bool {
        self.entries.get(&id).is_some_and(|e| !e.released)
    }

    /// Number of requests held now.
    pub fn len(&self) -> usize {
        self.entries.values().filter(|e| !e.released).count()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The service produced a reply to held request `id`: whether its
    /// client already has it (a replay) or it is new.
    pub fn produced(&mut self, id: RequestId, reply: &[u8]) -> Answer {
        let Some(e) = self.entries.get_mut(&id) else { return Answer::New };
        e.seen = true;
        let index = e.produced;
        e.produced += 1;
        match e.delivered.get(index) {
            Some(h) if *h == reply_hash(reply) => Answer::Same,
            Some(_) => Answer::Differs,
            None => Answer::New,
        }
    }

    /// A new reply to `id` went to its client (or to no one: its session
    /// is gone).
    pub fn delivered(&mut self, id: RequestId, reply: &[u8]) {
        if let Some(e) = self.entries.get_mut(&id) {
            e.delivered.push(reply_hash(reply));
        }
    }

    /// The service gave held request `id` its last reply.
    pub fn release(&mut self, id: RequestId) {
        if let Some(e) = self.entries.get_mut(&id) {
            e.released = true;
        }
    }

    /// Session `session` closed: its held requests are owed nothing more.
    pub fn session_closed(&mut self, session: u64) {
        self.entries.range_mut((session, 0)..=(session, u64::MAX)).for_each(|(_, e)| {
            e.released = true;
            e.abandoned = false;
        });
    }

    /// After a fall-back that lost state: give up every request still
    /// held that the replay neither held again nor answered (the restored
    /// state may not know it). They count as released, and as abandoned
    /// until their session closes. Their ids, for their clients to be
    /// told.
    pub fn abandon_unseen(&mut self) -> Vec<RequestId> {
        let mut gone = Vec::new();
        for (id, e) in self.entries.iter_mut().filter(|(_, e)| !e.released && !e.seen) {
            e.released = true;
            e.abandoned = true;
            gone.push(*id);
        }
        gone
    }

    /// Whether `id` was abandoned (an answer to it is dropped).
    pub fn is_abandoned(&self, id: RequestId) -> bool {
        self.entries.get(&id).is_some_and(|e| e.abandoned)
    }

    /// A new service process starts from the newest checkpoint: the replay
    /// produces again what was produced after it, and holds and releases
    /// again what was held and released after it.
    pub fn restarted(&mut self) {
        for e in self.entries.values_mut() {
            e.produced = e.committed;
            e.released = e.abandoned;
            e.seen = false;
        }
    }

    /// A checkpoint committed: released requests are done for good; the
    /// others' replies so far are in the checkpoint's state.
    pub fn committed(&mut self) {
        self.entries.retain(|_, e| !e.released || e.abandoned);
        self.entries.values_mut().for_each(|e| e.committed = e.produced);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_suppresses_what_the_client_had_and_sends_the_rest() {
        let mut t = HeldRequests::new();
        t.hold((3, 1));
        assert!(t.is_held((3, 1)));
        assert_eq!(t.produced((3, 1), b"one"), Answer::New);
        t.delivered((3, 1), b"one");
        // A crash, then the replay holds it again and answers it again.
        t.restarted();
        t.hold((3, 1));
        assert_eq!(t.produced((3, 1), b"one"), Answer::Same);
        assert_eq!(t.produced((3, 1), b"two"), Answer::New);
        t.delivered((3, 1), b"two");
        t.restarted();
        assert_eq!(t.produced((3, 1), b"uno"), Answer::Differs);
    }

    #[test]
    fn a_checkpoint_keeps_held_requests_and_counts_from_its_state() {
        let mut t = HeldRequests::new();
        t.hold((1, 0));
        t.hold((2, 0));
        assert_eq!(t.produced((1, 0), b"a"), Answer::New);
        t.delivered((1, 0), b"a");
        t.release((2, 0));
        assert_eq!(t.len(), 1);
        t.committed();
        assert!(!t.is_held((2, 0)));
        // The checkpoint's state gave "a" already: the replay starts after it.
        assert_eq!(t.produced((1, 0), b"b"), Answer::New);
        t.delivered((1, 0), b"b");
        t.restarted();
        assert!(t.is_held((1, 0)));
        assert_eq!(t.produced((1, 0), b"b"), Answer::Same);
    }

    #[test]
    fn a_lossy_fall_back_abandons_what_the_replay_did_not_hold_again() {
        let mut t = HeldRequests::new();
        t.hold((1, 0)); // held before the rejected checkpoint
        t.hold((2, 0)); // held after it: in the log, replayed
        t.hold((3, 0)); // answered once, still held
        assert_eq!(t.produced((3, 0), b"a"), Answer::New);
        t.delivered((3, 0), b"a");
        t.committed();
        t.restarted();
        t.hold((2, 0));
        assert_eq!(t.produced((3, 0), b"b"), Answer::New, "a reply after the checkpoint's");
        assert_eq!(t.abandon_unseen(), [(1, 0)]);
        assert!(!t.is_held((1, 0)) && t.is_abandoned((1, 0)));
        assert!(t.is_held((2, 0)) && t.is_held((3, 0)));
        // Abandoned stays abandoned over commits, restarts and holds, until
        // its session closes.
        t.committed();
        t.restarted();
        t.hold((1, 0));
        assert!(!t.is_held((1, 0)) && t.is_abandoned((1, 0)));
        assert_eq!(t.abandon_unseen(), [(2, 0), (3, 0)], "not seen since this restart");
        t.session_closed(1);
        assert!(!t.is_abandoned((1, 0)));
        t.committed();
        assert!(!t.is_abandoned((1, 0)) && !t.is_held((1, 0)));
    }

    #[test]
    fn released_requests_are_held_again_by_a_replay_until_a_commit() {
        let mut t = HeldRequests::new();
        t.hold((4, 2));
        t.release((4, 2));
        assert!(!t.is_held((4, 2)));
        t.restarted();
        assert!(t.is_held((4, 2)));
        t.session_closed(4);
        assert!(t.is_empty());
        t.committed();
        assert_eq!(t.produced((4, 2), b"x"), Answer::New);
    }
}
