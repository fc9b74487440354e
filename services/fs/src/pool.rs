//! [`SectorPool`]: the sector buffers of the block layer (held writes and
//! cached clean sectors), in chunks of [`PER_CHUNK`] and reused through a
//! free list.
//!
//! Held and cached sectors come and go by the thousand (an epoch of 4 MiB
//! lets 8,192 held sectors go at once), and with one heap allocation per
//! sector the program heap's free, which walks the free list of its size
//! class to find a buddy, took a fifth of the service's time under a
//! sequential write. The pool keeps its chunks for the process's life:
//! its size is the peak of held plus cached sectors.

use crate::blocks::SECTOR;
use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

/// Sectors per chunk (64 KiB).
pub const PER_CHUNK: usize = 128;

/// One sector buffer of a [`SectorPool`]. Not `Clone`: it is given back
/// exactly once, with [`SectorPool::free`].
#[derive(Debug, PartialEq, Eq)]
pub struct Slot(u32);

/// Sector buffers.
#[derive(Default)]
pub struct SectorPool {
    chunks: Vec<Box<[[u8; SECTOR]]>>,
    free: Vec<u32>,
}

impl SectorPool {
    /// An empty pool.
    pub fn new() -> Self {
        SectorPool::default()
    }

    /// A buffer holding the first [`SECTOR`] bytes of `data` (which must
    /// have that many).
    pub fn alloc(&mut self, data: &[u8]) -> Slot {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                let first = (self.chunks.len() * PER_CHUNK) as u32;
                self.chunks.push(vec![[0u8; SECTOR]; PER_CHUNK].into_boxed_slice());
                self.free.extend((first + 1..first + PER_CHUNK as u32).rev());
                first
            }
        };
        let slot = Slot(slot);
        self.get_mut(&slot).copy_from_slice(&data[..SECTOR]);
        slot
    }

    /// Give a buffer back.
    pub fn free(&mut self, slot: Slot) {
        self.free.push(slot.0);
    }

    /// The bytes of a buffer.
    pub fn get(&self, slot: &Slot) -> &[u8; SECTOR] {
        let i = slot.0 as usize;
        &self.chunks[i / PER_CHUNK][i % PER_CHUNK]
    }

    /// The bytes of a buffer, to change.
    pub fn get_mut(&mut self, slot: &Slot) -> &mut [u8; SECTOR] {
        let i = slot.0 as usize;
        &mut self.chunks[i / PER_CHUNK][i % PER_CHUNK]
    }

    /// Buffers handed out now.
    pub fn in_use(&self) -> usize {
        self.chunks.len() * PER_CHUNK - self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_keep_their_bytes_and_are_reused() {
        let mut p = SectorPool::new();
        let slots: Vec<Slot> = (0..300u32).map(|i| p.alloc(&[i as u8; SECTOR])).collect();
        assert_eq!(p.in_use(), 300);
        for (i, s) in slots.iter().enumerate() {
            assert_eq!(p.get(s), &[i as u8; SECTOR]);
        }
        p.get_mut(&slots[7])[0] = 0xee;
        assert_eq!(p.get(&slots[7])[..2], [0xee, 7]);
        let chunks = p.chunks.len();
        for s in slots {
            p.free(s);
        }
        assert_eq!(p.in_use(), 0);
        let again: Vec<Slot> = (0..300u32).map(|i| p.alloc(&[!(i as u8); SECTOR])).collect();
        assert_eq!(p.chunks.len(), chunks, "freed buffers are used again before the pool grows");
        assert_eq!(p.get(&again[299]), &[!(299u32 as u8); SECTOR]);
    }
}
