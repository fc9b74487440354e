//! The bridge between fatfs and a [`SectorDisk`]: a sector cache
//! ([`BlockCache`]) and the byte-addressed stream fatfs mounts
//! ([`FatIo`]). The vault's own FAT code ([`crate::fat`]) reads and writes
//! through the same cache by byte offset ([`BlockCache::read_at`],
//! [`BlockCache::write_at`], [`BlockCache::prefetch`]).
//!
//! fatfs reads and writes a few bytes at a time (directory entries, FAT
//! entries); the cache turns those into whole-sector transfers, reads
//! ahead, and holds written sectors until [`BlockCache::sync`] (or until it
//! fills), writing runs of adjacent sectors in one request. Large aligned
//! transfers bypass it.
//!
//! Ordering for power cuts: the boot sector (sector 0, which holds the
//! FAT "dirty" flag) is written through at once, and only after every
//! other pending sector has been written and flushed. fatfs sets the flag
//! with its first change and clears it last, at unmount; so on the disk
//! the flag is set before any other metadata changes and cleared only once
//! all of them are durable.

use crate::disk::{DiskError, SectorDisk, SECTOR};
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

/// Sectors read at once on a cache miss.
const READ_AHEAD: u64 = 8;
/// Transfers of at least this many bytes, sector-aligned, bypass the cache.
const DIRECT: usize = 4096;

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

struct Cached {
    data: Box<[u8; SECTOR]>,
    dirty: bool,
}

/// A write-back sector cache over a disk.
pub struct BlockCache<D: SectorDisk> {
    /// The disk.
    pub disk: D,
    sectors: BTreeMap<u64, Cached>,
    limit: usize,
}

impl<D: SectorDisk> BlockCache<D> {
    /// A cache of up to `limit` sectors over `disk`.
    pub fn new(disk: D, limit: usize) -> Self {
        BlockCache { disk, sectors: BTreeMap::new(), limit: limit.max(READ_AHEAD as usize * 2) }
    }

    /// Write every dirty sector (adjacent ones together), without a device
    /// flush.
    pub fn write_back(&mut self) -> Result<(), DiskError> {
        let dirty: Vec<u64> = self.sectors.iter().filter(|(_, c)| c.dirty).map(|(&l, _)| l).collect();
        let mut i = 0;
        while i < dirty.len() {
            let start = dirty[i];
            let mut j = i + 1;
            while j < dirty.len() && dirty[j] == dirty[j - 1] + 1 && j - i < 128 {
                j += 1;
            }
            let mut buf = Vec::with_capacity((j - i) * SECTOR);
            for lba in &dirty[i..j] {
                if let Some(c) = self.sectors.get(lba) {
                    buf.extend_from_slice(&c.data[..]);
                }
            }
            self.disk.write(start, &buf)?;
            for lba in &dirty[i..j] {
                if let Some(c) = self.sectors.get_mut(lba) {
                    c.dirty = false;
                }
            }
            i = j;
        }
        Ok(())
    }

    /// Write every dirty sector and flush the device: everything written
    /// so far is durable.
    pub fn sync(&mut self) -> Result<(), DiskError> {
        self.write_back()?;
        self.disk.flush()
    }

    /// Forget every cached sector (after writing the dirty ones back).
    pub fn clear(&mut self) -> Result<(), DiskError> {
        self.write_back()?;
        self.sectors.clear();
        Ok(())
    }

    fn trim(&mut self) -> Result<(), DiskError> {
        if self.sectors.len() > self.limit {
            self.clear()?;
        }
        Ok(())
    }

    /// The cached copy of sector `lba`, read (with read-ahead) on a miss.
    fn sector(&mut self, lba: u64) -> Result<&mut Cached, DiskError> {
        if !self.sectors.contains_key(&lba) {
            self.trim()?;
            let end = (lba + READ_AHEAD).min(self.disk.sectors()).max(lba + 1);
            let mut buf = vec![0u8; (end - lba) as usize * SECTOR];
            self.disk.read(lba, &mut buf)?;
            for (i, chunk) in buf.chunks(SECTOR).enumerate() {
                let at = lba + i as u64;
                self.sectors.entry(at).or_insert_with(|| {
                    let mut data = Box::new([0u8; SECTOR]);
                    data.copy_from_slice(chunk);
                    Cached { data, dirty: false }
                });
            }
        }
        self.sectors.get_mut(&lba).ok_or_else(|| DiskError(String::from("sector cache lost a sector")))
    }

    /// Read sectors `lba..lba + count` into the cache in one request
    /// (sectors already cached are kept as they are).
    pub fn prefetch(&mut self, lba: u64, count: u64) -> Result<(), DiskError> {
        let count = count.min(self.disk.sectors().saturating_sub(lba));
        if count == 0 || (lba..lba + count).all(|l| self.sectors.contains_key(&l)) {
            return Ok(());
        }
        if self.sectors.len() + count as usize > self.limit {
            self.clear()?;
        }
        let mut buf = vec![0u8; count as usize * SECTOR];
        self.disk.read(lba, &mut buf)?;
        for (i, chunk) in buf.chunks(SECTOR).enumerate() {
            self.sectors.entry(lba + i as u64).or_insert_with(|| {
                let mut data = Box::new([0u8; SECTOR]);
                data.copy_from_slice(chunk);
                Cached { data, dirty: false }
            });
        }
        Ok(())
    }

    /// Read `buf.len()` bytes at byte `offset` of the disk, through the
    /// cache.
    pub fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let mut done = 0;
        while done < buf.len() {
            let at = offset + done as u64;
            let (lba, off) = (at / SECTOR as u64, (at % SECTOR as u64) as usize);
            let take = (buf.len() - done).min(SECTOR - off);
            let c = self.sector(lba)?;
            buf[done..done + take].copy_from_slice(&c.data[off..off + take]);
            done += take;
        }
        Ok(())
    }

    /// Write `data` at byte `offset` of the disk into the cache (written
    /// back, in disk order, at the next [`BlockCache::write_back`] or when
    /// the cache fills). Not for the boot sector.
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        let mut done = 0;
        while done < data.len() {
            let at = offset + done as u64;
            let (lba, off) = (at / SECTOR as u64, (at % SECTOR as u64) as usize);
            if lba == 0 {
                return Err(DiskError(String::from("the boot sector is not written through the cache")));
            }
            let take = (data.len() - done).min(SECTOR - off);
            let c = self.sector(lba)?;
            c.data[off..off + take].copy_from_slice(&data[done..done + take]);
            c.dirty = true;
            done += take;
        }
        Ok(())
    }

    /// Write sector 0 through, after everything else is durable, and flush.
    pub fn write_boot(&mut self, data: &[u8; SECTOR]) -> Result<(), DiskError> {
        self.write_boot_sector(data)
    }

    /// Read whole sectors past the cache (writing back the cached dirty
    /// ones first so the disk is current).
    fn read_direct(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let end = lba + (buf.len() / SECTOR) as u64;
        if self.sectors.range(lba..end).any(|(_, c)| c.dirty) {
            self.write_back()?;
        }
        self.disk.read(lba, buf)
    }

    /// Write whole sectors past the cache, keeping cached copies current.
    fn write_direct(&mut self, lba: u64, data: &[u8]) -> Result<(), DiskError> {
        self.disk.write(lba, data)?;
        let end = lba + (data.len() / SECTOR) as u64;
        for (&at, c) in self.sectors.range_mut(lba..end) {
            let off = (at - lba) as usize * SECTOR;
            c.data.copy_from_slice(&data[off..off + SECTOR]);
            c.dirty = false;
        }
        Ok(())
    }

    /// Write the boot sector through, after everything else is durable.
    fn write_boot_sector(&mut self, data: &[u8; SECTOR]) -> Result<(), DiskError> {
        self.sync()?;
        self.disk.write(0, data)?;
        self.disk.flush()?;
        let mut copy = Box::new([0u8; SECTOR]);
        copy.copy_from_slice(data);
        self.sectors.insert(0, Cached { data: copy, dirty: false });
        Ok(())
    }
}

/// The whole disk as a byte stream for fatfs, through a [`BlockCache`].
pub struct FatIo<'c, D: SectorDisk> {
    cache: &'c mut BlockCache<D>,
    pos: u64,
}

impl<'c, D: SectorDisk> FatIo<'c, D> {
    /// A stream at offset 0.
    pub fn new(cache: &'c mut BlockCache<D>) -> Self {
        FatIo { cache, pos: 0 }
    }

    fn size(&self) -> u64 {
        self.cache.disk.sectors() * SECTOR as u64
    }
}

impl<D: SectorDisk> fatfs::IoBase for FatIo<'_, D> {
    type Error = DiskError;
}

impl<D: SectorDisk> fatfs::Read for FatIo<'_, D> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, DiskError> {
        let n = (buf.len() as u64).min(self.size().saturating_sub(self.pos)) as usize;
        if n == 0 {
            return Ok(0);
        }
        let lba = self.pos / SECTOR as u64;
        let off = (self.pos % SECTOR as u64) as usize;
        if off == 0 && n >= DIRECT {
            let whole = n - n % SECTOR;
            self.cache.read_direct(lba, &mut buf[..whole])?;
            self.pos += whole as u64;
            return Ok(whole);
        }
        let take = n.min(SECTOR - off);
        let c = self.cache.sector(lba)?;
        buf[..take].copy_from_slice(&c.data[off..off + take]);
        self.pos += take as u64;
        Ok(take)
    }
}

impl<D: SectorDisk> fatfs::Write for FatIo<'_, D> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, DiskError> {
        let n = (buf.len() as u64).min(self.size().saturating_sub(self.pos)) as usize;
        if n == 0 {
            return Ok(0);
        }
        let lba = self.pos / SECTOR as u64;
        let off = (self.pos % SECTOR as u64) as usize;
        if off == 0 && n >= DIRECT && lba > 0 {
            let whole = n - n % SECTOR;
            self.cache.write_direct(lba, &buf[..whole])?;
            self.pos += whole as u64;
            return Ok(whole);
        }
        let take = n.min(SECTOR - off);
        if lba == 0 {
            let mut boot = [0u8; SECTOR];
            boot.copy_from_slice(&self.cache.sector(0)?.data[..]);
            boot[off..off + take].copy_from_slice(&buf[..take]);
            self.cache.write_boot_sector(&boot)?;
        } else if take == SECTOR && !self.cache.sectors.contains_key(&lba) {
            self.cache.trim()?;
            let mut data = Box::new([0u8; SECTOR]);
            data.copy_from_slice(&buf[..SECTOR]);
            self.cache.sectors.insert(lba, Cached { data, dirty: true });
        } else {
            let c = self.cache.sector(lba)?;
            c.data[off..off + take].copy_from_slice(&buf[..take]);
            c.dirty = true;
        }
        self.pos += take as u64;
        Ok(take)
    }

    fn flush(&mut self) -> Result<(), DiskError> {
        self.cache.write_back()
    }
}

impl<D: SectorDisk> fatfs::Seek for FatIo<'_, D> {
    fn seek(&mut self, pos: fatfs::SeekFrom) -> Result<u64, DiskError> {
        let size = self.size() as i128;
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
