//! The two fields of a FAT volume that fatfs keeps in memory while it is
//! mounted, set by hand when the file service mounts again after undoing a
//! failed request (see `Fs::handle`): the boot sector's "dirty" flag and
//! FAT32's FSInfo free-cluster count.
//!
//! fatfs offers no call for either: a volume it mounts with the dirty flag
//! set stays dirty through every later unmount, and it trusts the FSInfo
//! count of a clean volume. After an undo the count on the disk may
//! predate allocations of earlier requests, so it is set to "unknown"
//! (0xFFFFFFFF, which the FAT specification allows) and fatfs counts
//! again when asked (before each epoch, see `Fs::take_epoch_writes`).

use crate::blocks::{Blocks, DiskError, SectorSource, SECTOR};

/// The FSInfo free-cluster count's offset in its sector.
const FSINFO_FREE_COUNT: u64 = 488;

/// Clear the dirty flag and forget the free-cluster count, through the
/// held writes.
pub fn mark_clean_with_unknown_free_count<D: SectorSource>(blocks: &mut Blocks<D>) -> Result<(), DiskError> {
    let b = clear_dirty_flag(blocks)?;
    let u16at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as u64;
    let fsinfo = u16at(0x30);
    if u16at(0x16) == 0 && fsinfo != 0 && fsinfo != 0xffff {
        blocks.write_bytes(fsinfo * u16at(0x0b) + FSINFO_FREE_COUNT, &u32::MAX.to_le_bytes())?;
    }
    Ok(())
}

/// Clear the dirty flag (fatfs leaves it set on a volume it mounted
/// dirty); returns the boot sector as it was.
pub fn clear_dirty_flag<D: SectorSource>(blocks: &mut Blocks<D>) -> Result<[u8; SECTOR], DiskError> {
    let mut b = [0u8; SECTOR];
    blocks.read(0, &mut b)?;
    // FAT32 has no 16-bit FAT size, and its flags byte further on.
    let flags_at = if u16::from_le_bytes([b[0x16], b[0x17]]) == 0 { 0x41 } else { 0x25 };
    if b[flags_at] & 1 != 0 {
        blocks.write_bytes(flags_at as u64, &[b[flags_at] & !1])?;
    }
    Ok(b)
}
