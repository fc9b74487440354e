//! Frames taken off the card, sorted by EtherType to the sessions that
//! asked for one (`ReceiveType`), so that a client waiting for its own
//! protocol's frames does not lose them to another client's plain
//! `Receive` (the network stack takes every frame it is given and drops
//! the types it does not speak).
//!
//! The last session to ask for a type has it. Frames of a claimed type
//! wait for their session; frames of no claimed type that a typed receive
//! took off the card wait for the next plain `Receive`. Both waits are
//! bounded ([`KEPT_FRAMES`] per queue, the oldest dropped first), as a
//! card's ring is. None of this is checkpointed: after a crash of nic the
//! frames kept are lost, as frames inside a card are, and the next typed
//! receive claims its type again.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

/// Most frames kept per queue.
pub const KEPT_FRAMES: usize = 512;

/// The EtherType of a frame (bytes 12 and 13), if it has one.
pub fn ethertype(frame: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]))
}

/// Which frames a receive wants: every one no other session claimed, or
/// one type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// A plain `Receive`.
    Unclaimed,
    /// A `ReceiveType`.
    Type(u16),
}

/// The claims and the frames kept for them.
#[derive(Default)]
pub struct Sorter {
    claims: BTreeMap<u16, u64>,
    kept: BTreeMap<u16, VecDeque<Vec<u8>>>,
    unclaimed: VecDeque<Vec<u8>>,
    /// Frames dropped because their queue was full.
    pub dropped: u64,
}

fn push_bounded(queue: &mut VecDeque<Vec<u8>>, frame: Vec<u8>, dropped: &mut u64) {
    if queue.len() >= KEPT_FRAMES {
        queue.pop_front();
        *dropped += 1;
    }
    queue.push_back(frame);
}

impl Sorter {
    /// `session` has `ethertype` from now on.
    pub fn claim(&mut self, session: u64, ethertype: u16) {
        self.claims.insert(ethertype, session);
    }

    /// `session` ended: its types are nobody's, and what was kept for it
    /// goes.
    pub fn release_session(&mut self, session: u64) {
        let gone: Vec<u16> = self.claims.iter().filter(|(_, s)| **s == session).map(|(t, _)| *t).collect();
        for t in gone {
            self.claims.remove(&t);
            self.kept.remove(&t);
        }
    }

    /// Up to `max` frames already kept for a receive wanting `want` (a
    /// type's frames are kept only for the session that claimed it).
    pub fn take(&mut self, want: Want, max: usize) -> Vec<Vec<u8>> {
        let queue = match want {
            Want::Unclaimed => Some(&mut self.unclaimed),
            Want::Type(t) => self.kept.get_mut(&t),
        };
        let Some(queue) = queue else { return Vec::new() };
        let n = queue.len().min(max);
        queue.drain(..n).collect()
    }

    /// Sort frames fresh off the card during a receive of `session` wanting
    /// `want`: those it gets are returned, the others kept.
    pub fn sort(&mut self, session: u64, want: Want, frames: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for f in frames {
            let t = ethertype(&f);
            let owner = t.and_then(|t| self.claims.get(&t).copied());
            match (owner, t) {
                (Some(owner), Some(t)) => {
                    if owner == session && matches!(want, Want::Type(w) if w == t) {
                        out.push(f);
                    } else {
                        push_bounded(self.kept.entry(t).or_default(), f, &mut self.dropped);
                    }
                }
                _ if want == Want::Unclaimed => out.push(f),
                _ => push_bounded(&mut self.unclaimed, f, &mut self.dropped),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn frame(ethertype: u16, tag: u8) -> Vec<u8> {
        let mut f = vec![0u8; 60];
        f[12..14].copy_from_slice(&ethertype.to_be_bytes());
        f[14] = tag;
        f
    }

    const BENCH: u16 = 0x88b5;
    const IP: u16 = 0x0800;

    #[test]
    fn a_claimed_type_goes_to_its_session_and_the_rest_to_plain_receives() {
        let mut s = Sorter::default();
        // Session 2 (the network stack) receives plainly, session 7 claims the bench type.
        s.claim(7, BENCH);
        let got = s.sort(2, Want::Unclaimed, vec![frame(IP, 1), frame(BENCH, 2), frame(IP, 3)]);
        assert_eq!(got, vec![frame(IP, 1), frame(IP, 3)]);
        // The bench frame waited for session 7.
        assert_eq!(s.take(Want::Type(BENCH), 32), vec![frame(BENCH, 2)]);
        // A typed receive keeps what it does not want for the plain receivers, in order.
        let got = s.sort(7, Want::Type(BENCH), vec![frame(IP, 4), frame(BENCH, 5), frame(IP, 6)]);
        assert_eq!(got, vec![frame(BENCH, 5)]);
        assert_eq!(s.take(Want::Unclaimed, 1), vec![frame(IP, 4)]);
        assert_eq!(s.take(Want::Unclaimed, 32), vec![frame(IP, 6)]);
        assert!(s.take(Want::Unclaimed, 32).is_empty());
    }

    #[test]
    fn a_type_nobody_claims_goes_to_any_plain_receive_and_a_released_session_loses_its_claim() {
        let mut s = Sorter::default();
        assert_eq!(s.sort(2, Want::Unclaimed, vec![frame(BENCH, 1)]), vec![frame(BENCH, 1)]);
        s.claim(7, BENCH);
        assert!(s.sort(2, Want::Unclaimed, vec![frame(BENCH, 2)]).is_empty());
        s.release_session(7);
        assert!(s.take(Want::Type(BENCH), 32).is_empty(), "what was kept for it went with it");
        assert_eq!(s.sort(2, Want::Unclaimed, vec![frame(BENCH, 3)]), vec![frame(BENCH, 3)]);
    }

    #[test]
    fn the_last_session_to_ask_has_the_type_and_queues_stay_bounded() {
        let mut s = Sorter::default();
        s.claim(7, BENCH);
        s.claim(8, BENCH);
        assert_eq!(s.sort(8, Want::Type(BENCH), vec![frame(BENCH, 1)]), vec![frame(BENCH, 1)]);
        assert!(s.sort(7, Want::Type(BENCH), vec![frame(BENCH, 2)]).is_empty());
        let many: Vec<Vec<u8>> = (0..KEPT_FRAMES + 10).map(|i| frame(BENCH, i as u8)).collect();
        s.sort(2, Want::Unclaimed, many);
        assert_eq!(s.dropped, 11, "the oldest went first");
        assert_eq!(s.take(Want::Type(BENCH), usize::MAX).len(), KEPT_FRAMES);
    }

    #[test]
    fn a_runt_frame_without_a_type_is_nobodys() {
        let mut s = Sorter::default();
        s.claim(7, BENCH);
        assert_eq!(s.sort(2, Want::Unclaimed, vec![vec![1, 2, 3]]), vec![vec![1, 2, 3]]);
    }
}
