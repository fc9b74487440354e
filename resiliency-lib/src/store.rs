//! Where committed checkpoints are kept: the [`CheckpointStore`] interface,
//! and [`MemoryStore`], which keeps the newest checkpoint in the companion's
//! own memory (it survives the service's crashes, not the companion's or
//! the machine's: the vault on the FAT disk is the persistent backend).

use crate::contract::Distillation;
use alloc::string::String;
use alloc::vec::Vec;

/// A committed capture of a service's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Increases by one with every commit.
    pub generation: u64,
    /// How the state was captured.
    pub kind: Distillation,
    /// The serialised state (logical) or the whole state arena (image).
    pub data: Vec<u8>,
    /// When it was taken (ns since boot).
    pub taken_ns: u64,
}

/// What a new checkpoint adds: the whole logical state, or the pages of
/// the state arena that changed since the previous image checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Capture {
    /// Serialised state.
    Logical(Vec<u8>),
    /// Dirty arena pages `(page index, bytes)` of an arena of `pages` pages.
    Image {
        /// Arena size in pages.
        pages: u64,
        /// The changed pages.
        dirty: Vec<(u64, Vec<u8>)>,
    },
}

impl Capture {
    /// Bytes of state this capture carries.
    pub fn len(&self) -> usize {
        match self {
            Capture::Logical(b) => b.len(),
            Capture::Image { dirty, .. } => dirty.iter().map(|(_, p)| p.len()).sum(),
        }
    }

    /// Whether it carries nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Apply `capture` on top of `previous` (the newest checkpoint, if any):
/// the full state of the new checkpoint.
pub fn apply(
    previous: Option<&Checkpoint>,
    generation: u64,
    capture: Capture,
    taken_ns: u64,
) -> Result<Checkpoint, StoreError> {
    match capture {
        Capture::Logical(data) => Ok(Checkpoint { generation, kind: Distillation::Logical, data, taken_ns }),
        Capture::Image { pages, dirty } => {
            let size = (pages * PAGE) as usize;
            let mut data = match previous {
                Some(c) if c.kind == Distillation::Image && c.data.len() == size => c.data.clone(),
                _ => alloc::vec![0u8; size],
            };
            for (index, bytes) in dirty {
                let at = (index * PAGE) as usize;
                if bytes.len() != PAGE as usize || at + bytes.len() > size {
                    return Err(StoreError(String::from("image page outside the arena")));
                }
                data[at..at + bytes.len()].copy_from_slice(&bytes);
            }
            Ok(Checkpoint { generation, kind: Distillation::Image, data, taken_ns })
        }
    }
}

const PAGE: u64 = 4096;

/// Why a store failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError(pub String);

/// Somewhere to keep checkpoints.
pub trait CheckpointStore {
    /// Commit `capture` as checkpoint `generation` (which must exceed the
    /// newest one's); once this returns Ok the checkpoint must survive
    /// whatever the store promises to survive.
    fn commit(&mut self, generation: u64, capture: Capture, taken_ns: u64) -> Result<(), StoreError>;
    /// The newest committed checkpoint.
    fn latest(&self) -> Option<&Checkpoint>;
    /// Something the companion waits on beside its clients: ready when the
    /// store needs [`CheckpointStore::attend`] (a store that talks to a
    /// service: its connection broke).
    fn waitable(&self) -> Option<&dyn libos::channel::Waitable> {
        None
    }
    /// Called when [`CheckpointStore::waitable`] is ready (e.g. reconnect
    /// now, while nothing else waits on it, rather than at the next commit).
    fn attend(&mut self) {}
}

/// A store in the companion's memory.
#[derive(Default)]
pub struct MemoryStore {
    latest: Option<Checkpoint>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }
}

impl CheckpointStore for MemoryStore {
    fn commit(&mut self, generation: u64, capture: Capture, taken_ns: u64) -> Result<(), StoreError> {
        if self.latest.as_ref().is_some_and(|c| c.generation >= generation) {
            return Err(StoreError(String::from("generation does not increase")));
        }
        self.latest = Some(apply(self.latest.as_ref(), generation, capture, taken_ns)?);
        Ok(())
    }

    fn latest(&self) -> Option<&Checkpoint> {
        self.latest.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn keeps_the_newest() {
        let mut s = MemoryStore::new();
        assert!(s.latest().is_none());
        s.commit(1, Capture::Logical(vec![1]), 0).unwrap();
        s.commit(2, Capture::Logical(vec![2]), 0).unwrap();
        assert_eq!(s.latest().unwrap().data, [2]);
        assert!(s.commit(2, Capture::Logical(vec![3]), 0).is_err());
    }

    #[test]
    fn image_deltas_accumulate() {
        let mut s = MemoryStore::new();
        s.commit(1, Capture::Image { pages: 3, dirty: vec![(0, vec![1; 4096]), (2, vec![2; 4096])] }, 0).unwrap();
        s.commit(2, Capture::Image { pages: 3, dirty: vec![(2, vec![3; 4096])] }, 0).unwrap();
        let d = &s.latest().unwrap().data;
        assert_eq!(d.len(), 3 * 4096);
        assert_eq!((d[0], d[4096], d[8192]), (1, 0, 3));
        assert!(s.commit(3, Capture::Image { pages: 3, dirty: vec![(3, vec![0; 4096])] }, 0).is_err());
        assert!(s.commit(4, Capture::Image { pages: 3, dirty: vec![(0, vec![0; 10])] }, 0).is_err());
    }
}
