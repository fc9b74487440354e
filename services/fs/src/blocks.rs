//! The block layer under fatfs: reads come from the disk, writes are held.
//!
//! [`Blocks`] reads sectors from a [`SectorSource`] (in the guest, calls to
//! the blk service) and keeps every sector the file system writes in an
//! overlay, the *epoch* (DESIGN.md 5.3): `lba -> sector bytes`, served back
//! on reads, never written to the disk from here. [`Blocks::take_epoch`]
//! hands the held writes over as a `checkpoint-record` redo list; whoever
//! commits it writes it to the disk and then calls
//! [`Blocks::epoch_applied`], which lets the held copies go (writes made
//! after the epoch was taken stay held). So between two checkpoints the
//! disk does not move, and a replay runs against the disk it started on.
//!
//! Clean sectors read from the disk are cached (bounded); since the disk
//! changes only by epochs, and an applied epoch equals what is held, the
//! cache never goes stale. Held and cached sectors live in a
//! [`SectorPool`] (no heap allocation per sector).
//!
//! A request is atomic over the held writes: between
//! [`Blocks::begin_request`] and [`Blocks::end_request`] the layer keeps,
//! for every sector the request writes, what was held before (a journal),
//! and [`Blocks::undo_request`] puts it back, so a request that fails
//! half-way (a disk error in the middle of a cluster allocation, say)
//! leaves no half-done change to be committed with the next epoch.
//!
//! [`FatIo`] is the byte stream fatfs mounts: a position over a shared
//! [`Blocks`].

use crate::pool::{SectorPool, Slot};
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use checkpoint_record::epoch::BlockWrite;
use core::cell::RefCell;

/// Bytes per sector.
pub const SECTOR: usize = 512;

/// The disk number of the data disk in an epoch's writes.
pub const DATA_DISK: u8 = 0;

/// Most sectors one epoch write (and one disk read) covers: 64 KiB, what
/// one blk request moves.
pub const MAX_RUN: usize = 128;

/// Sectors read at once on a cache miss.
const READ_AHEAD: u64 = 16;

/// Clean sectors kept by default (8 MiB).
pub const DEFAULT_CACHE_SECTORS: usize = 16384;

/// A disk operation failed (the message says how).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskError(pub String);

impl core::fmt::Display for DiskError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

impl fatfs::IoError for DiskError {
    fn is_interrupted(&self) -> bool {
        false
    }
    fn new_unexpected_eof_error() -> Self {
        DiskError(String::from("unexpected end of the disk"))
    }
    fn new_write_zero_error() -> Self {
        DiskError(String::from("write past the end of the disk"))
    }
}

/// Where sectors are read from. Buffers are whole sectors.
pub trait SectorSource {
    /// Sectors on the disk.
    fn sectors(&self) -> u64;
    /// Read `buf.len() / 512` sectors from `lba`.
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DiskError>;
}

struct Held {
    data: Slot,
    /// The write counter when it was last written.
    version: u64,
}

/// Sectors of a disk with every write held in an overlay.
pub struct Blocks<D: SectorSource> {
    disk: D,
    sectors: u64,
    held: BTreeMap<u64, Held>,
    clean: BTreeMap<u64, Slot>,
    /// The buffers of `held` and `clean`.
    pool: SectorPool,
    clean_limit: usize,
    /// Counts sector writes.
    version: u64,
    /// The counter when the last epoch was taken.
    taken: Option<u64>,
    /// While a request runs: for each sector it wrote, what was held before
    /// (its copy and version), or None if nothing was.
    journal: Option<BTreeMap<u64, Option<Held>>>,
    /// Disk reads made (for tests and figures).
    pub disk_reads: u64,
}

impl<D: SectorSource> Blocks<D> {
    /// The layer over `disk`, caching up to `cache_sectors` clean sectors.
    pub fn new(disk: D, cache_sectors: usize) -> Self {
        let sectors = disk.sectors();
        Blocks {
            disk,
            sectors,
            held: BTreeMap::new(),
            clean: BTreeMap::new(),
            pool: SectorPool::new(),
            clean_limit: cache_sectors.max(2 * MAX_RUN),
            version: 0,
            taken: None,
            journal: None,
            disk_reads: 0,
        }
    }

    /// Sectors on the disk.
    pub fn sectors(&self) -> u64 {
        self.sectors
    }

    /// Bytes on the disk.
    pub fn size(&self) -> u64 {
        self.sectors * SECTOR as u64
    }

    /// Bytes of held writes.
    pub fn held_bytes(&self) -> u64 {
        (self.held.len() * SECTOR) as u64
    }

    /// The write counter: it changes with every sector written (or held
    /// write dropped), so a copy of anything read is still valid while it
    /// has not changed.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Sectors held.
    pub fn held_sectors(&self) -> usize {
        self.held.len()
    }

    /// The disk underneath.
    pub fn disk(&mut self) -> &mut D {
        &mut self.disk
    }

    /// A request starts: journal what it writes (see the module doc).
    pub fn begin_request(&mut self) {
        self.end_request();
        self.journal = Some(BTreeMap::new());
    }

    /// The request succeeded: its writes stay held.
    pub fn end_request(&mut self) {
        if let Some(journal) = self.journal.take() {
            for held in journal.into_values().flatten() {
                self.pool.free(held.data);
            }
        }
    }

    /// Whether the request in hand wrote anything.
    pub fn request_wrote(&self) -> bool {
        self.journal.as_ref().is_some_and(|j| !j.is_empty())
    }

    /// The request failed: put back what every sector it wrote held before
    /// (a sector that was not held is read from the disk again).
    pub fn undo_request(&mut self) {
        let Some(journal) = self.journal.take() else { return };
        self.version += 1;
        for (lba, before) in journal {
            if let Some(now) = self.held.remove(&lba) {
                self.pool.free(now.data);
            }
            if let Some(before) = before {
                self.held.insert(lba, before);
            }
        }
    }

    /// Sector `lba` is about to be written: journal what it holds now, the
    /// first time in a request.
    fn journal(&mut self, lba: u64) {
        if self.journal.as_ref().is_none_or(|j| j.contains_key(&lba)) {
            return;
        }
        let before = match self.held.get(&lba) {
            Some(h) => {
                let mut copy = [0u8; SECTOR];
                copy.copy_from_slice(self.pool.get(&h.data));
                Some(Held { data: self.pool.alloc(&copy), version: h.version })
            }
            None => None,
        };
        if let Some(journal) = self.journal.as_mut() {
            journal.insert(lba, before);
        }
    }

    fn check_range(&self, lba: u64, count: u64) -> Result<(), DiskError> {
        match lba.checked_add(count) {
            Some(end) if end <= self.sectors => Ok(()),
            _ => {
                Err(DiskError(format!("sectors {lba}+{count} are past the end of the disk ({} sectors)", self.sectors)))
            }
        }
    }

    fn remember(&mut self, lba: u64, data: &[u8]) {
        if self.held.contains_key(&lba) {
            return;
        }
        if self.clean.len() >= self.clean_limit {
            // Forget the half below the new sector: cheap, and sequential
            // reads keep their read-ahead.
            let keep = self.clean.split_off(&lba);
            let below = core::mem::replace(&mut self.clean, keep);
            self.forget(below);
            if self.clean.len() >= self.clean_limit {
                let all = core::mem::take(&mut self.clean);
                self.forget(all);
            }
        }
        let slot = self.pool.alloc(data);
        if let Some(old) = self.clean.insert(lba, slot) {
            self.pool.free(old);
        }
    }

    /// Give the buffers of `sectors` back to the pool.
    fn forget(&mut self, sectors: BTreeMap<u64, Slot>) {
        for (_, slot) in sectors {
            self.pool.free(slot);
        }
    }

    /// Read whole sectors from the disk (no overlay), in runs a blk request
    /// can carry.
    fn read_disk(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        for (i, chunk) in buf.chunks_mut(MAX_RUN * SECTOR).enumerate() {
            self.disk_reads += 1;
            self.disk.read(lba + (i * MAX_RUN) as u64, chunk)?;
        }
        Ok(())
    }

    /// Sector `lba` (held, cached, or read from the disk with read-ahead).
    fn sector(&mut self, lba: u64) -> Result<&[u8; SECTOR], DiskError> {
        if !self.held.contains_key(&lba) && !self.clean.contains_key(&lba) {
            self.check_range(lba, 1)?;
            let end = (lba + READ_AHEAD).min(self.sectors).max(lba + 1);
            let mut buf = vec![0u8; (end - lba) as usize * SECTOR];
            self.read_disk(lba, &mut buf)?;
            for (i, s) in buf.chunks(SECTOR).enumerate() {
                self.remember(lba + i as u64, s);
            }
            if !self.clean.contains_key(&lba) {
                let slot = self.pool.alloc(&buf[..SECTOR]);
                self.clean.insert(lba, slot);
            }
        }
        let slot = match self.held.get(&lba) {
            Some(h) => Some(&h.data),
            None => self.clean.get(&lba),
        };
        slot.map(|s| self.pool.get(s)).ok_or_else(|| DiskError(String::from("sector cache lost a sector")))
    }

    /// Read sector `lba` into `out`.
    fn read_sector(&mut self, lba: u64, out: &mut [u8]) -> Result<(), DiskError> {
        out.copy_from_slice(self.sector(lba)?);
        Ok(())
    }

    /// Read whole sectors from `lba` (large runs straight from the disk,
    /// with the held sectors laid over them; not cached).
    pub fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        if !buf.len().is_multiple_of(SECTOR) {
            return Err(DiskError(String::from("not a whole number of sectors")));
        }
        let count = (buf.len() / SECTOR) as u64;
        self.check_range(lba, count)?;
        if count >= 8 {
            let all_cached = (lba..lba + count).all(|l| self.held.contains_key(&l) || self.clean.contains_key(&l));
            if !all_cached {
                self.read_disk(lba, buf)?;
                for (&l, c) in self.clean.range(lba..lba + count) {
                    let at = (l - lba) as usize * SECTOR;
                    buf[at..at + SECTOR].copy_from_slice(self.pool.get(c));
                }
                for (&l, h) in self.held.range(lba..lba + count) {
                    let at = (l - lba) as usize * SECTOR;
                    buf[at..at + SECTOR].copy_from_slice(self.pool.get(&h.data));
                }
                return Ok(());
            }
        }
        for (i, out) in buf.chunks_mut(SECTOR).enumerate() {
            self.read_sector(lba + i as u64, out)?;
        }
        Ok(())
    }

    /// Hold a write of whole sectors from `lba`.
    pub fn write(&mut self, lba: u64, data: &[u8]) -> Result<(), DiskError> {
        if !data.len().is_multiple_of(SECTOR) {
            return Err(DiskError(String::from("not a whole number of sectors")));
        }
        self.check_range(lba, (data.len() / SECTOR) as u64)?;
        for (i, s) in data.chunks(SECTOR).enumerate() {
            let at = lba + i as u64;
            self.journal(at);
            self.version += 1;
            if let Some(old) = self.clean.remove(&at) {
                self.pool.free(old);
            }
            match self.held.get_mut(&at) {
                Some(h) => {
                    self.pool.get_mut(&h.data).copy_from_slice(s);
                    h.version = self.version;
                }
                None => {
                    let data = self.pool.alloc(s);
                    self.held.insert(at, Held { data, version: self.version });
                }
            }
        }
        Ok(())
    }

    /// Read `buf.len()` bytes at byte offset `pos` (any alignment).
    pub fn read_bytes(&mut self, pos: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let mut done = 0;
        while done < buf.len() {
            let at = pos + done as u64;
            let lba = at / SECTOR as u64;
            let off = (at % SECTOR as u64) as usize;
            let left = buf.len() - done;
            if off == 0 && left >= SECTOR {
                let whole = (left - left % SECTOR).min(MAX_RUN * SECTOR);
                self.read(lba, &mut buf[done..done + whole])?;
                done += whole;
            } else {
                let take = left.min(SECTOR - off);
                let s = self.sector(lba)?;
                buf[done..done + take].copy_from_slice(&s[off..off + take]);
                done += take;
            }
        }
        Ok(())
    }

    /// Write `data` at byte offset `pos` (any alignment; partial sectors
    /// are read first).
    pub fn write_bytes(&mut self, pos: u64, data: &[u8]) -> Result<(), DiskError> {
        let mut done = 0;
        while done < data.len() {
            let at = pos + done as u64;
            let lba = at / SECTOR as u64;
            let off = (at % SECTOR as u64) as usize;
            let left = data.len() - done;
            if off == 0 && left >= SECTOR {
                let whole = left - left % SECTOR;
                self.write(lba, &data[done..done + whole])?;
                done += whole;
            } else {
                let take = left.min(SECTOR - off);
                self.check_range(lba, 1)?;
                self.journal(lba);
                if let Some(h) = self.held.get_mut(&lba) {
                    self.version += 1;
                    self.pool.get_mut(&h.data)[off..off + take].copy_from_slice(&data[done..done + take]);
                    h.version = self.version;
                } else {
                    let mut s = [0u8; SECTOR];
                    s.copy_from_slice(self.sector(lba)?);
                    s[off..off + take].copy_from_slice(&data[done..done + take]);
                    self.write(lba, &s)?;
                }
                done += take;
            }
        }
        Ok(())
    }

    /// The held writes as block writes on disk `DATA_DISK`, adjacent
    /// sectors together (at most [`MAX_RUN`] per write), in sector order;
    /// marks them as taken (see [`Blocks::epoch_applied`]).
    pub fn take_writes(&mut self) -> Vec<BlockWrite> {
        self.taken = Some(self.version);
        let mut out: Vec<BlockWrite> = Vec::new();
        for (&lba, h) in &self.held {
            match out.last_mut() {
                Some(w) if w.lba + (w.data.len() / SECTOR) as u64 == lba && w.data.len() < MAX_RUN * SECTOR => {
                    w.data.extend_from_slice(self.pool.get(&h.data));
                }
                _ => out.push(BlockWrite { disk: DATA_DISK, lba, data: self.pool.get(&h.data).to_vec() }),
            }
        }
        out
    }

    /// The writes last taken are on the disk now: let go of those not
    /// written again since (they become clean cached sectors).
    pub fn epoch_applied(&mut self) {
        let Some(taken) = self.taken.take() else { return };
        let done: Vec<u64> = self.held.iter().filter(|(_, h)| h.version <= taken).map(|(&l, _)| l).collect();
        for lba in done {
            if let Some(h) = self.held.remove(&lba) {
                if self.clean.len() < self.clean_limit {
                    if let Some(old) = self.clean.insert(lba, h.data) {
                        self.pool.free(old);
                    }
                } else {
                    self.pool.free(h.data);
                }
            }
        }
    }

    /// Forget every held write (they are lost: only for a service that is
    /// about to start over from the disk).
    pub fn drop_held(&mut self) {
        self.end_request();
        self.version += 1;
        for (_, h) in core::mem::take(&mut self.held) {
            self.pool.free(h.data);
        }
        self.taken = None;
    }
}

/// The whole disk as a byte stream for fatfs, over shared [`Blocks`].
/// fatfs reads directories 32 bytes at a time, so the stream keeps a copy
/// of the last sector it read, valid while no sector has been written.
pub struct FatIo<D: SectorSource> {
    blocks: Rc<RefCell<Blocks<D>>>,
    pos: u64,
    /// (lba, the write counter then, its bytes), kept inline: a heap copy
    /// per sector change cost an allocation and a free each time.
    last: Option<(u64, u64, [u8; SECTOR])>,
}

impl<D: SectorSource> FatIo<D> {
    /// A stream at offset 0.
    pub fn new(blocks: Rc<RefCell<Blocks<D>>>) -> Self {
        FatIo { blocks, pos: 0, last: None }
    }
}

impl<D: SectorSource> fatfs::IoBase for FatIo<D> {
    type Error = DiskError;
}

impl<D: SectorSource> fatfs::Read for FatIo<D> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, DiskError> {
        let mut blocks = self.blocks.borrow_mut();
        let lba = self.pos / SECTOR as u64;
        let off = (self.pos % SECTOR as u64) as usize;
        if off + buf.len() <= SECTOR {
            if !matches!(&self.last, Some((l, v, _)) if *l == lba && *v == blocks.version) {
                if lba >= blocks.sectors {
                    return Ok(0);
                }
                let data = *blocks.sector(lba)?;
                self.last = Some((lba, blocks.version, data));
            }
            if let Some((_, _, data)) = &self.last {
                buf.copy_from_slice(&data[off..off + buf.len()]);
            }
            self.pos += buf.len() as u64;
            return Ok(buf.len());
        }
        let n = (buf.len() as u64).min(blocks.size().saturating_sub(self.pos)) as usize;
        if n == 0 {
            return Ok(0);
        }
        blocks.read_bytes(self.pos, &mut buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<D: SectorSource> fatfs::Write for FatIo<D> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, DiskError> {
        let mut blocks = self.blocks.borrow_mut();
        let n = (buf.len() as u64).min(blocks.size().saturating_sub(self.pos)) as usize;
        if n == 0 {
            return Ok(0);
        }
        blocks.write_bytes(self.pos, &buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> Result<(), DiskError> {
        Ok(())
    }
}

impl<D: SectorSource> fatfs::Seek for FatIo<D> {
    fn seek(&mut self, pos: fatfs::SeekFrom) -> Result<u64, DiskError> {
        let size = self.blocks.borrow().size() as i128;
        let target = match pos {
            fatfs::SeekFrom::Start(n) => n as i128,
            fatfs::SeekFrom::End(d) => size + d as i128,
            fatfs::SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        if target < 0 || target > size {
            return Err(DiskError(String::from("seek outside the disk")));
        }
        self.pos = target as u64;
        Ok(self.pos)
    }
}
