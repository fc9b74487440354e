//! A disk in memory ([`MemDisk`]) and applying an encoded epoch to disk
//! bytes ([`apply_epoch`]): what the host tests and tools use in place of
//! the blk service and the companion.

use crate::blocks::{DiskError, SectorSource, SECTOR};
use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

/// A disk in memory; clones share the bytes (so a test can apply an epoch
/// to the disk a mounted [`crate::Fs`] reads).
#[derive(Clone, Debug)]
pub struct MemDisk {
    /// The disk's bytes.
    pub bytes: Rc<RefCell<Vec<u8>>>,
    /// Fail every read from now on (a dying disk).
    pub fail: Rc<RefCell<bool>>,
    /// Reads that succeed before every later one fails (None: no limit).
    pub reads_left: Rc<RefCell<Option<u64>>>,
}

impl MemDisk {
    /// A zeroed disk of `sectors` sectors.
    pub fn new(sectors: u64) -> MemDisk {
        MemDisk::from_bytes(vec![0; sectors as usize * SECTOR])
    }

    /// A disk holding `bytes` (a whole number of sectors).
    pub fn from_bytes(bytes: Vec<u8>) -> MemDisk {
        MemDisk {
            bytes: Rc::new(RefCell::new(bytes)),
            fail: Rc::new(RefCell::new(false)),
            reads_left: Rc::new(RefCell::new(None)),
        }
    }

    /// A copy of the bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        self.bytes.borrow().clone()
    }
}

impl SectorSource for MemDisk {
    fn sectors(&self) -> u64 {
        (self.bytes.borrow().len() / SECTOR) as u64
    }

    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        if *self.fail.borrow() {
            return Err(DiskError(String::from("injected read error")));
        }
        if let Some(left) = self.reads_left.borrow_mut().as_mut() {
            if *left == 0 {
                return Err(DiskError(String::from("injected read error")));
            }
            *left -= 1;
        }
        let bytes = self.bytes.borrow();
        let at = (lba as usize).checked_mul(SECTOR).filter(|a| a + buf.len() <= bytes.len());
        let Some(at) = at else {
            return Err(DiskError(format!("sectors {lba}+{} past the end of the disk", buf.len() / SECTOR)));
        };
        buf.copy_from_slice(&bytes[at..at + buf.len()]);
        Ok(())
    }
}

/// Apply an encoded epoch (a `checkpoint-record` redo list) to `disk`, the
/// bytes of disk `disk_number`; writes to other disks are skipped. Fails
/// on a malformed epoch or a write past the end, before changing anything.
pub fn apply_epoch(disk: &mut [u8], disk_number: u8, epoch: &[u8]) -> Result<usize, String> {
    let writes = checkpoint_record::epoch::decode(epoch).map_err(|e| format!("{e}"))?;
    for w in writes.iter().filter(|w| w.disk == disk_number) {
        let end = (w.lba as usize).checked_mul(SECTOR).and_then(|a| a.checked_add(w.data.len()));
        if end.is_none_or(|e| e > disk.len()) {
            return Err(format!("a write at sector {} is past the end of the disk", w.lba));
        }
    }
    let mut n = 0;
    for w in writes.iter().filter(|w| w.disk == disk_number) {
        let at = w.lba as usize * SECTOR;
        disk[at..at + w.data.len()].copy_from_slice(&w.data);
        n += 1;
    }
    Ok(n)
}
