//! The epoch section of a record: the block writes a service made between
//! two checkpoints (DESIGN.md 5.3), held back until the checkpoint commits
//! and then applied to the disk; after a power cut they are applied again
//! from the record (a redo journal: writing the same sectors twice has the
//! same effect).
//!
//! Encoding (little-endian): a `u32` count, then per write `disk: u8`,
//! `lba: u64`, `len: u32` (a non-zero multiple of 512) and the `len` bytes.

use crate::RecordError;
use alloc::vec::Vec;

/// Bytes per sector.
pub const SECTOR: usize = 512;

/// One block write of an epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockWrite {
    /// The disk (0 data, 1 checkpoint).
    pub disk: u8,
    /// First sector.
    pub lba: u64,
    /// The sectors' bytes (a non-zero multiple of 512).
    pub data: Vec<u8>,
}

/// Encode a redo list. Fails if a write is empty, not whole sectors, or
/// too large for the format.
pub fn encode(writes: &[BlockWrite]) -> Result<Vec<u8>, RecordError> {
    let count = u32::try_from(writes.len()).map_err(|_| RecordError::BadEpoch("too many writes"))?;
    // Sized once: an epoch is megabytes, and growing by doubling copied it
    // about twice over (a fifth of fs's copying in a sequential write).
    let size = writes.iter().fold(4usize, |n, w| n.saturating_add(13).saturating_add(w.data.len()));
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&count.to_le_bytes());
    for w in writes {
        if w.data.is_empty() || !w.data.len().is_multiple_of(SECTOR) {
            return Err(RecordError::BadEpoch("a write is not a whole number of sectors"));
        }
        let len = u32::try_from(w.data.len()).map_err(|_| RecordError::BadEpoch("a write is too large"))?;
        out.push(w.disk);
        out.extend_from_slice(&w.lba.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&w.data);
    }
    Ok(out)
}

/// Walk an encoded redo list, calling `f(disk, lba, data)` for each write.
fn walk<'a>(bytes: &'a [u8], mut f: impl FnMut(u8, u64, &'a [u8])) -> Result<(), RecordError> {
    let Some(count) = bytes.get(..4) else { return Err(RecordError::BadEpoch("shorter than its count")) };
    let count = u32::from_le_bytes([count[0], count[1], count[2], count[3]]);
    let mut at = 4usize;
    for _ in 0..count {
        let Some(head) = bytes.get(at..at + 13) else {
            return Err(RecordError::BadEpoch("a write's header is cut off"));
        };
        let disk = head[0];
        let mut lba = [0u8; 8];
        lba.copy_from_slice(&head[1..9]);
        let len = u32::from_le_bytes([head[9], head[10], head[11], head[12]]) as usize;
        if len == 0 || !len.is_multiple_of(SECTOR) {
            return Err(RecordError::BadEpoch("a write is not a whole number of sectors"));
        }
        at += 13;
        let Some(data) = bytes.get(at..at.saturating_add(len)) else {
            return Err(RecordError::BadEpoch("a write's data is cut off"));
        };
        f(disk, u64::from_le_bytes(lba), data);
        at += len;
    }
    if at != bytes.len() {
        return Err(RecordError::BadEpoch("bytes after the last write"));
    }
    Ok(())
}

/// Check an encoded redo list without copying it.
pub fn validate(bytes: &[u8]) -> Result<(), RecordError> {
    walk(bytes, |_, _, _| {})
}

/// Decode a redo list (empty bytes: no writes).
pub fn decode(bytes: &[u8]) -> Result<Vec<BlockWrite>, RecordError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    walk(bytes, |disk, lba, data| out.push(BlockWrite { disk, lba, data: data.to_vec() }))?;
    Ok(out)
}
