//! Bookkeeping of requests in flight: a fixed set of slots (virtqueue
//! requests, AHCI command slots, transmit buffers), each free or busy with
//! the device-visible tag it was issued under (a descriptor id, a slot
//! number) and the driver's job. A completion the device reports is looked
//! up by tag; a tag no busy slot carries is the device misbehaving, and
//! the driver turns it into an error instead of trusting it.
//!
//! A job can be *abandoned* (a timed-out transfer whose caller has gone):
//! the slot stays busy, job and all (the driver needs it to take the
//! request back), until the device finally completes it, so its buffers
//! are never reused while the device may still write them.

use alloc::vec::Vec;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Slot<J> {
    Free,
    Busy { tag: u32, job: J, live: bool },
}

/// A fixed number of slots.
#[derive(Clone, Debug)]
pub struct Slots<J> {
    slots: Vec<Slot<J>>,
}

impl<J> Slots<J> {
    /// `n` free slots.
    pub fn new(n: usize) -> Slots<J> {
        Slots { slots: (0..n).map(|_| Slot::Free).collect() }
    }

    /// How many slots there are.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The first free slot.
    pub fn free_slot(&self) -> Option<usize> {
        self.slots.iter().position(|s| matches!(s, Slot::Free))
    }

    /// Mark `slot` busy with `tag` and `job`; false if it is not free.
    pub fn start(&mut self, slot: usize, tag: u32, job: J) -> bool {
        match self.slots.get_mut(slot) {
            Some(s @ Slot::Free) => {
                *s = Slot::Busy { tag, job, live: true };
                true
            }
            _ => false,
        }
    }

    /// The busy slot issued under `tag`.
    pub fn find(&self, tag: u32) -> Option<usize> {
        self.slots.iter().position(|s| matches!(s, Slot::Busy { tag: t, .. } if *t == tag))
    }

    /// The tag of a busy slot.
    pub fn tag(&self, slot: usize) -> Option<u32> {
        match self.slots.get(slot) {
            Some(Slot::Busy { tag, .. }) => Some(*tag),
            _ => None,
        }
    }

    /// The job of a busy slot (abandoned or not).
    pub fn job(&self, slot: usize) -> Option<&J> {
        match self.slots.get(slot) {
            Some(Slot::Busy { job, .. }) => Some(job),
            _ => None,
        }
    }

    /// Whether `slot` is busy with a job still wanted.
    pub fn is_live(&self, slot: usize) -> bool {
        matches!(self.slots.get(slot), Some(Slot::Busy { live: true, .. }))
    }

    /// Free a busy slot: its job and whether it was still wanted (false:
    /// abandoned), or None if the slot was not busy.
    pub fn finish(&mut self, slot: usize) -> Option<(J, bool)> {
        let s = self.slots.get_mut(slot)?;
        if matches!(s, Slot::Free) {
            return None;
        }
        match core::mem::replace(s, Slot::Free) {
            Slot::Busy { job, live, .. } => Some((job, live)),
            Slot::Free => None,
        }
    }

    /// Whether `slot` is busy.
    pub fn is_busy(&self, slot: usize) -> bool {
        matches!(self.slots.get(slot), Some(Slot::Busy { .. }))
    }

    /// Number of busy slots.
    pub fn busy(&self) -> usize {
        self.slots.iter().filter(|s| matches!(s, Slot::Busy { .. })).count()
    }

    /// Number of busy slots whose job is still wanted.
    pub fn live(&self) -> usize {
        self.slots.iter().filter(|s| matches!(s, Slot::Busy { live: true, .. })).count()
    }

    /// Forget the jobs of every busy slot (their slots stay busy until the
    /// device completes them).
    pub fn abandon_all(&mut self) {
        for s in &mut self.slots {
            if let Slot::Busy { live, .. } = s {
                *live = false;
            }
        }
    }

    /// Free every slot (after the device was reset and can no longer
    /// complete anything).
    pub fn clear(&mut self) {
        for s in &mut self.slots {
            *s = Slot::Free;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_track_tags_and_jobs() {
        let mut s: Slots<&str> = Slots::new(3);
        assert_eq!(s.free_slot(), Some(0));
        assert!(s.start(0, 17, "a"));
        assert!(!s.start(0, 18, "b"), "slot 0 is busy");
        assert!(s.start(1, 4, "b"));
        assert_eq!(s.free_slot(), Some(2));
        assert_eq!((s.find(4), s.find(17), s.find(99)), (Some(1), Some(0), None));
        assert_eq!(s.tag(1), Some(4));
        assert_eq!(s.job(0), Some(&"a"));
        assert_eq!(s.busy(), 2);
        assert_eq!(s.finish(0), Some(("a", true)));
        assert_eq!(s.finish(0), None, "already free");
        assert_eq!(s.finish(7), None, "no such slot");
        assert_eq!(s.find(17), None, "a finished tag is unknown");
        assert!(s.start(2, 5, "c"));
        assert_eq!(s.free_slot(), Some(0));
    }

    #[test]
    fn abandoned_jobs_keep_their_slots() {
        let mut s: Slots<u32> = Slots::new(2);
        s.start(0, 1, 10);
        s.start(1, 2, 20);
        s.abandon_all();
        assert_eq!(s.free_slot(), None, "the device may still write their buffers");
        assert_eq!((s.busy(), s.live()), (2, 0));
        assert_eq!(s.job(0), Some(&10), "kept to take the request back");
        assert!(!s.is_live(0));
        assert_eq!(s.finish(s.find(2).unwrap()), Some((20, false)));
        assert_eq!(s.free_slot(), Some(1));
        s.clear();
        assert_eq!(s.busy(), 0);
    }
}
