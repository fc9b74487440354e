//! What the vault needs from a disk: whole 512-byte sectors read, written
//! and flushed ([`SectorDisk`]). In the guest that is the blk service's
//! checkpoint disk; on the host, [`MemDisk`], which can also record every
//! sector write so the tests can cut the power after any of them.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

/// Bytes per sector.
pub const SECTOR: usize = 512;

/// A disk operation failed (the message says how).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskError(pub String);

impl core::fmt::Display for DiskError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A disk of 512-byte sectors. Buffers are whole sectors.
pub trait SectorDisk {
    /// Sectors on the disk.
    fn sectors(&self) -> u64;
    /// Read `buf.len() / 512` sectors from `lba`.
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DiskError>;
    /// Write `data` (whole sectors) from `lba`.
    fn write(&mut self, lba: u64, data: &[u8]) -> Result<(), DiskError>;
    /// Make every write so far durable.
    fn flush(&mut self) -> Result<(), DiskError>;
}

impl<D: SectorDisk + ?Sized> SectorDisk for &mut D {
    fn sectors(&self) -> u64 {
        (**self).sectors()
    }
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        (**self).read(lba, buf)
    }
    fn write(&mut self, lba: u64, data: &[u8]) -> Result<(), DiskError> {
        (**self).write(lba, data)
    }
    fn flush(&mut self) -> Result<(), DiskError> {
        (**self).flush()
    }
}

fn check(lba: u64, len: usize, sectors: u64) -> Result<(), DiskError> {
    if !len.is_multiple_of(SECTOR) {
        return Err(DiskError(String::from("not a whole number of sectors")));
    }
    match lba.checked_add((len / SECTOR) as u64) {
        Some(end) if end <= sectors => Ok(()),
        _ => Err(DiskError(alloc::format!("sectors {lba}+{} past the end of the disk", len / SECTOR))),
    }
}

/// A disk in memory.
#[derive(Clone, Debug)]
pub struct MemDisk {
    /// The disk's bytes.
    pub bytes: Vec<u8>,
    /// When recording: every sector written, in order, `(lba, bytes)`.
    pub journal: Option<Vec<(u64, Vec<u8>)>>,
    /// Flushes so far.
    pub flushes: u64,
    /// Fail every write after this many more sectors (a dying disk).
    pub fail_after: Option<u64>,
    /// Fail this many of the next flushes.
    pub fail_flushes: u32,
}

impl MemDisk {
    /// A zeroed disk of `sectors` sectors.
    pub fn new(sectors: u64) -> MemDisk {
        MemDisk {
            bytes: vec![0; sectors as usize * SECTOR],
            journal: None,
            flushes: 0,
            fail_after: None,
            fail_flushes: 0,
        }
    }

    /// Start recording sector writes (forgetting earlier ones).
    pub fn record(&mut self) {
        self.journal = Some(Vec::new());
    }

    /// Stop recording; the sector writes recorded.
    pub fn take_journal(&mut self) -> Vec<(u64, Vec<u8>)> {
        self.journal.take().unwrap_or_default()
    }
}

impl SectorDisk for MemDisk {
    fn sectors(&self) -> u64 {
        (self.bytes.len() / SECTOR) as u64
    }

    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        check(lba, buf.len(), self.sectors())?;
        let at = lba as usize * SECTOR;
        buf.copy_from_slice(&self.bytes[at..at + buf.len()]);
        Ok(())
    }

    fn write(&mut self, lba: u64, data: &[u8]) -> Result<(), DiskError> {
        check(lba, data.len(), self.sectors())?;
        for (i, sector) in data.chunks(SECTOR).enumerate() {
            if let Some(n) = self.fail_after.as_mut() {
                if *n == 0 {
                    return Err(DiskError(String::from("injected write error")));
                }
                *n -= 1;
            }
            let at = (lba as usize + i) * SECTOR;
            self.bytes[at..at + SECTOR].copy_from_slice(sector);
            if let Some(j) = self.journal.as_mut() {
                j.push((lba + i as u64, sector.to_vec()));
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), DiskError> {
        if self.fail_flushes > 0 {
            self.fail_flushes -= 1;
            return Err(DiskError(String::from("injected flush error")));
        }
        if self.fail_after == Some(0) {
            return Err(DiskError(String::from("injected flush error")));
        }
        self.flushes += 1;
        Ok(())
    }
}
