//! Where committed checkpoints are kept: the [`CheckpointStore`] interface,
//! and [`MemoryStore`], which keeps the newest checkpoint and the log after
//! it in the companion's own memory (and, for a logical state, the one
//! before it, to fall back on; it survives the service's crashes, not
//! the companion's or the machine's: the vault on the FAT disk, through
//! [`crate::vault_store::VaultStore`], is the persistent backend).
//!
//! A store holds the newest committed checkpoint and the *log* appended
//! after it: opaque entries (the companion's batches of logged requests) in
//! order. A commit starts a new, empty log. Generation 0 means nothing was
//! committed yet: a [`Checkpoint`] of generation 0 has no state (start the
//! service fresh) and carries only the log.

use crate::contract::Distillation;
use alloc::string::String;
use alloc::vec::Vec;

/// A committed capture of a service's state, and the log after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Increases with every commit (0: nothing committed yet; `data` is
    /// empty and only `log` counts).
    pub generation: u64,
    /// How the state was captured.
    pub kind: Distillation,
    /// The serialised state (logical) or the whole state arena (image).
    pub data: Vec<u8>,
    /// When it was taken (ns since boot).
    pub taken_ns: u64,
    /// The epoch committed with it: an encoded redo list of block writes
    /// (`checkpoint-record`'s epoch format), empty for none.
    pub epoch: Vec<u8>,
    /// The entries appended after it, in order.
    pub log: Vec<Vec<u8>>,
}

impl Checkpoint {
    /// Nothing committed yet, with a log.
    pub fn log_only(log: Vec<Vec<u8>>) -> Checkpoint {
        Checkpoint { generation: 0, kind: Distillation::Logical, data: Vec::new(), taken_ns: 0, epoch: Vec::new(), log }
    }
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
        Capture::Logical(data) => Ok(Checkpoint {
            generation,
            kind: Distillation::Logical,
            data,
            taken_ns,
            epoch: Vec::new(),
            log: Vec::new(),
        }),
        Capture::Image { pages, dirty } => {
            let size = (pages * PAGE) as usize;
            let mut data = match previous {
                Some(c) if c.kind == Distillation::Image && c.data.len() == size => c.data.clone(),
                _ => alloc::vec![0u8; size],
            };
            for (index, bytes) in dirty {
                let at = (index * PAGE) as usize;
                if bytes.len() != PAGE as usize || at + bytes.len() > size {
                    return Err(StoreError::failed("image page outside the arena"));
                }
                data[at..at + bytes.len()].copy_from_slice(&bytes);
            }
            Ok(Checkpoint { generation, kind: Distillation::Image, data, taken_ns, epoch: Vec::new(), log: Vec::new() })
        }
    }
}

const PAGE: u64 = 4096;

/// What kind of failure a store reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// The store cannot be reached now (the vault is gone, or has no usable
    /// disk); it keeps trying. Nothing was kept.
    Unavailable,
    /// The log after the newest checkpoint is full: commit a checkpoint
    /// (which starts a new, empty log), then append again.
    LogFull,
    /// The generation given is not the store's: its newest committed
    /// checkpoint is not the one the caller assumed (restart from
    /// [`CheckpointStore::latest`]).
    Stale,
    /// The store refused or failed the operation (a disk error, a state
    /// too large).
    Failed,
}

/// Why a store failed: what it says, and what kind of failure it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError(pub String, pub StoreErrorKind);

impl StoreError {
    /// The store cannot be reached now.
    pub fn unavailable(message: impl Into<String>) -> StoreError {
        StoreError(message.into(), StoreErrorKind::Unavailable)
    }

    /// The store refused or failed the operation.
    pub fn failed(message: impl Into<String>) -> StoreError {
        StoreError(message.into(), StoreErrorKind::Failed)
    }

    /// The caller's generation is not the store's.
    pub fn stale(message: impl Into<String>) -> StoreError {
        StoreError(message.into(), StoreErrorKind::Stale)
    }

    /// The log is full.
    pub fn log_full(message: impl Into<String>) -> StoreError {
        StoreError(message.into(), StoreErrorKind::LogFull)
    }

    /// What kind of failure.
    pub fn kind(&self) -> StoreErrorKind {
        self.1
    }
}

impl core::fmt::Display for StoreError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Somewhere to keep checkpoints and the log after the newest.
pub trait CheckpointStore {
    /// Commit `capture` as checkpoint `generation` (which must exceed the
    /// newest one's) with `epoch` (an encoded redo list of the service's
    /// held disk writes, empty for none), atomically; once this returns Ok
    /// both must survive whatever the store promises to survive, and the
    /// log is empty. The epoch is handed over (the store keeps it as the
    /// newest checkpoint's without copying it).
    fn commit(&mut self, generation: u64, capture: Capture, taken_ns: u64, epoch: Vec<u8>) -> Result<(), StoreError>;
    /// Append `entry` to the log after checkpoint `generation` (the newest
    /// committed one, 0 before the first); once this returns Ok the entry
    /// survives what the checkpoints survive. `LogFull` asks for a
    /// checkpoint first; `Stale` says `generation` is not the newest.
    fn append(&mut self, generation: u64, entry: &[u8]) -> Result<(), StoreError>;
    /// The newest committed checkpoint with the log after it (generation 0
    /// if only a log), or None if the store holds nothing.
    fn latest(&self) -> Option<&Checkpoint>;
    /// The newest checkpoint cannot be restored (the service failed on it
    /// every time, for `reason`): set it aside, so that [`latest`] is the
    /// one before it with its log, or None. Err says the store could not
    /// do so properly; [`latest`] is then None.
    ///
    /// [`latest`]: CheckpointStore::latest
    fn reject_latest(&mut self, reason: &str) -> Result<(), StoreError>;
    /// Whether commits and appends reach persistent storage now (false for
    /// a store in memory, and for the vault while it cannot be used).
    fn durable(&self) -> bool;
    /// Whether [`CheckpointStore::latest`] was taken in an earlier boot of
    /// the machine: every client session its state holds is gone, except
    /// those the log after it opened in this boot.
    fn restored_from_earlier_boot(&self) -> bool {
        false
    }
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
    /// The checkpoint before the newest, with its log, when both are
    /// logical states: what [`CheckpointStore::reject_latest`] falls back
    /// on.
    previous: Option<Checkpoint>,
    /// When the newest is an image written in place over the one before:
    /// what it wrote over, for [`CheckpointStore::reject_latest`] to put
    /// back (the image's counterpart of `previous`).
    undo: Option<Undo>,
}

/// What an image checkpoint written in place over the one before it
/// replaced: that record's generation, time, epoch and log, and the old
/// bytes of every page it wrote. An arena of 16 MiB (net's) is not copied
/// whole at every checkpoint, only the pages that changed, and so a
/// checkpoint that cannot be restored (`crash net poison`) still has one
/// before it to fall back on, as a logical state has, instead of the
/// service starting fresh and every connection it held being lost.
struct Undo {
    generation: u64,
    taken_ns: u64,
    epoch: Vec<u8>,
    log: Vec<Vec<u8>>,
    /// `(page index, old bytes)`, in the order they were written.
    pages: Vec<(u64, Vec<u8>)>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }
}

impl CheckpointStore for MemoryStore {
    fn commit(&mut self, generation: u64, capture: Capture, taken_ns: u64, epoch: Vec<u8>) -> Result<(), StoreError> {
        if self.latest.as_ref().is_some_and(|c| c.generation >= generation) {
            return Err(StoreError::stale("generation does not increase"));
        }
        // An image on top of an image of the same size: written in place
        // (a large arena is not copied whole at every checkpoint), once
        // every page is known to fit.
        if let (Capture::Image { pages, dirty }, Some(latest)) = (&capture, self.latest.as_mut()) {
            let size = (pages * PAGE) as usize;
            if latest.kind == Distillation::Image && latest.data.len() == size {
                let fits = |(index, bytes): &(u64, Vec<u8>)| {
                    bytes.len() == PAGE as usize && index.checked_mul(PAGE).is_some_and(|at| at + PAGE <= size as u64)
                };
                if !dirty.iter().all(fits) {
                    return Err(StoreError::failed("image page outside the arena"));
                }
                let mut pages = Vec::with_capacity(dirty.len());
                for (index, bytes) in dirty {
                    let at = (index * PAGE) as usize;
                    pages.push((*index, latest.data[at..at + bytes.len()].to_vec()));
                    latest.data[at..at + bytes.len()].copy_from_slice(bytes);
                }
                self.undo = Some(Undo {
                    generation: core::mem::replace(&mut latest.generation, generation),
                    taken_ns: core::mem::replace(&mut latest.taken_ns, taken_ns),
                    epoch: core::mem::replace(&mut latest.epoch, epoch),
                    log: core::mem::take(&mut latest.log),
                    pages,
                });
                self.previous = None;
                return Ok(());
            }
        }
        let full = apply(self.latest.as_ref(), generation, capture, taken_ns)?;
        let logical = full.kind == Distillation::Logical;
        let before = self.latest.replace(Checkpoint { epoch, ..full });
        self.previous = before.filter(|c| logical && c.kind == Distillation::Logical);
        self.undo = None;
        Ok(())
    }

    fn append(&mut self, generation: u64, entry: &[u8]) -> Result<(), StoreError> {
        let newest = self.latest.as_ref().map_or(0, |c| c.generation);
        if generation != newest {
            return Err(StoreError::stale(alloc::format!(
                "an append after generation {generation}, but the newest checkpoint is generation {newest}"
            )));
        }
        self.latest.get_or_insert_with(|| Checkpoint::log_only(Vec::new())).log.push(entry.to_vec());
        Ok(())
    }

    fn latest(&self) -> Option<&Checkpoint> {
        self.latest.as_ref()
    }

    /// The one before the newest becomes the newest (an image's pages are
    /// put back as they were; none is left before the second commit, or
    /// after two rejections in a row).
    fn reject_latest(&mut self, _reason: &str) -> Result<(), StoreError> {
        match (self.undo.take(), self.latest.as_mut()) {
            (Some(undo), Some(latest)) => {
                for (index, bytes) in undo.pages.into_iter().rev() {
                    let at = (index * PAGE) as usize;
                    latest.data[at..at + bytes.len()].copy_from_slice(&bytes);
                }
                latest.generation = undo.generation;
                latest.taken_ns = undo.taken_ns;
                latest.epoch = undo.epoch;
                latest.log = undo.log;
            }
            _ => self.latest = self.previous.take(),
        }
        Ok(())
    }

    fn durable(&self) -> bool {
        false
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
        s.commit(1, Capture::Logical(vec![1]), 0, Vec::new()).unwrap();
        s.commit(2, Capture::Logical(vec![2]), 0, Vec::new()).unwrap();
        assert_eq!(s.latest().unwrap().data, [2]);
        assert!(s.commit(2, Capture::Logical(vec![3]), 0, Vec::new()).is_err());
        assert!(!s.durable());
    }

    #[test]
    fn the_log_follows_the_newest_checkpoint() {
        let mut s = MemoryStore::new();
        s.append(0, b"a").unwrap();
        s.append(0, b"b").unwrap();
        let l = s.latest().unwrap();
        assert_eq!((l.generation, l.data.len(), l.log.clone()), (0, 0, vec![b"a".to_vec(), b"b".to_vec()]));
        assert_eq!(s.append(1, b"x").unwrap_err().kind(), StoreErrorKind::Stale);
        s.commit(1, Capture::Logical(vec![1]), 0, Vec::new()).unwrap();
        assert!(s.latest().unwrap().log.is_empty(), "a commit starts a new log");
        assert_eq!(s.append(0, b"late").unwrap_err().kind(), StoreErrorKind::Stale);
        s.append(1, b"c").unwrap();
        assert_eq!(s.latest().unwrap().log, [b"c".to_vec()]);
        assert_eq!(s.latest().unwrap().data, [1]);
    }

    #[test]
    fn a_rejected_logical_checkpoint_falls_back_on_the_one_before() {
        let mut s = MemoryStore::new();
        s.commit(1, Capture::Logical(vec![1]), 0, Vec::new()).unwrap();
        s.append(1, b"a").unwrap();
        s.commit(2, Capture::Logical(vec![2]), 0, Vec::new()).unwrap();
        s.reject_latest("damaged").unwrap();
        let l = s.latest().unwrap();
        assert_eq!((l.generation, l.data.clone(), l.log.clone()), (1, vec![1], vec![b"a".to_vec()]));
        s.append(1, b"b").unwrap();
        s.commit(2, Capture::Logical(vec![3]), 0, Vec::new()).unwrap();
        assert_eq!(s.latest().unwrap().data, [3]);
        // Only one older checkpoint is kept.
        s.reject_latest("damaged").unwrap();
        assert_eq!(s.latest().unwrap().log, [b"a".to_vec(), b"b".to_vec()]);
        s.reject_latest("damaged").unwrap();
        assert!(s.latest().is_none());
    }

    #[test]
    fn a_rejected_image_falls_back_on_the_one_before() {
        let mut s = MemoryStore::new();
        let page = |b: u8| vec![b; 4096];
        s.commit(1, Capture::Image { pages: 2, dirty: vec![(0, page(1)), (1, page(1))] }, 10, Vec::new()).unwrap();
        s.append(1, b"a").unwrap();
        s.commit(2, Capture::Image { pages: 2, dirty: vec![(1, page(2)), (1, page(3))] }, 20, Vec::new()).unwrap();
        s.append(2, b"b").unwrap();
        s.reject_latest("damaged").unwrap();
        let l = s.latest().unwrap();
        assert_eq!((l.generation, l.taken_ns, l.log.clone()), (1, 10, vec![b"a".to_vec()]));
        assert!(l.data.iter().all(|&b| b == 1), "the pages the rejected image wrote are put back");
        s.append(1, b"c").unwrap();
        // Only one older checkpoint is kept.
        s.reject_latest("damaged").unwrap();
        assert!(s.latest().is_none());
    }

    #[test]
    fn image_deltas_accumulate() {
        let mut s = MemoryStore::new();
        s.commit(1, Capture::Image { pages: 3, dirty: vec![(0, vec![1; 4096]), (2, vec![2; 4096])] }, 0, Vec::new())
            .unwrap();
        s.commit(2, Capture::Image { pages: 3, dirty: vec![(2, vec![3; 4096])] }, 0, Vec::new()).unwrap();
        let d = &s.latest().unwrap().data;
        assert_eq!(d.len(), 3 * 4096);
        assert_eq!((d[0], d[4096], d[8192]), (1, 0, 3));
        assert!(s.commit(3, Capture::Image { pages: 3, dirty: vec![(3, vec![0; 4096])] }, 0, Vec::new()).is_err());
        assert!(s.commit(4, Capture::Image { pages: 3, dirty: vec![(0, vec![0; 10])] }, 0, Vec::new()).is_err());
        // A refused capture leaves the newest checkpoint whole, even when
        // its first pages fit.
        let bad = vec![(1, vec![9; 4096]), (7, vec![9; 4096])];
        assert!(s.commit(5, Capture::Image { pages: 3, dirty: bad }, 0, Vec::new()).is_err());
        let l = s.latest().unwrap();
        assert_eq!((l.generation, l.data[0], l.data[4096], l.data[8192]), (2, 1, 0, 3));
        s.commit(6, Capture::Image { pages: 3, dirty: vec![(1, vec![4; 4096])] }, 9, b"e".to_vec()).unwrap();
        let l = s.latest().unwrap();
        assert_eq!((l.generation, l.taken_ns, l.epoch.as_slice()), (6, 9, &b"e"[..]));
        assert_eq!((l.data[0], l.data[4096], l.data[8192]), (1, 4, 3));
    }
}
