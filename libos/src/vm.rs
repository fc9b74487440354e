//! Where things go in a program's address space, and the allocator of
//! address ranges for mappings (channels, shared buffers, device memory).
//!
//! | range | use |
//! |---|---|
//! | 0x200000.. | the program image |
//! | [`HEAP_BASE`].. | the heap, grown on demand |
//! | [`ARENA_BASE`].. | the state arena (fixed: the same in every run) |
//! | [`MAP_BASE`]..[`MAP_END`] | mappings, handed out by [`reserve`] |
//! | below `STACK_TOP` | the stack |

use alloc::collections::BTreeMap;
use kintsugi_abi::{Error, PAGE_SIZE};

/// Start of the heap region.
pub const HEAP_BASE: u64 = 0x0000_1000_0000_0000;
/// End of the heap region (64 GiB).
pub const HEAP_END: u64 = HEAP_BASE + (64 << 30);
/// Fixed address of the state arena.
pub const ARENA_BASE: u64 = 0x0000_2000_0000_0000;
/// Largest state arena (4 GiB).
pub const ARENA_MAX: u64 = 4 << 30;
/// Start of the mapping region.
pub const MAP_BASE: u64 = 0x0000_3000_0000_0000;
/// End of the mapping region.
pub const MAP_END: u64 = 0x0000_6000_0000_0000;

/// First-fit allocator of page ranges, with neighbours merged on release.
pub struct RangeAllocator {
    free: BTreeMap<u64, u64>,
}

impl RangeAllocator {
    /// All of `[start, end)` free.
    pub fn new(start: u64, end: u64) -> RangeAllocator {
        let mut free = BTreeMap::new();
        free.insert(start, (end - start) / PAGE_SIZE);
        RangeAllocator { free }
    }

    /// A free range of `pages` pages.
    pub fn reserve(&mut self, pages: u64) -> Option<u64> {
        if pages == 0 {
            return None;
        }
        let (&start, &len) = self.free.iter().find(|(_, len)| **len >= pages)?;
        self.free.remove(&start);
        if len > pages {
            self.free.insert(start + pages * PAGE_SIZE, len - pages);
        }
        Some(start)
    }

    /// Give a range back.
    pub fn release(&mut self, start: u64, pages: u64) {
        if pages == 0 {
            return;
        }
        let mut start = start;
        let mut pages = pages;
        if let Some((&next, &len)) = self.free.range(start..).next() {
            if start + pages * PAGE_SIZE == next {
                self.free.remove(&next);
                pages += len;
            }
        }
        if let Some((&prev, &len)) = self.free.range(..start).next_back() {
            if prev + len * PAGE_SIZE == start {
                self.free.remove(&prev);
                start = prev;
                pages += len;
            }
        }
        self.free.insert(start, pages);
    }
}

static MAPS: spin::Mutex<Option<RangeAllocator>> = spin::Mutex::new(None);

/// Reserve `pages` pages of address space in the mapping region.
pub fn reserve(pages: u64) -> Result<u64, Error> {
    let mut g = MAPS.lock();
    g.get_or_insert_with(|| RangeAllocator::new(MAP_BASE, MAP_END)).reserve(pages).ok_or(Error::OutOfMemory)
}

/// Return a range from [`reserve`].
pub fn release(va: u64, pages: u64) {
    if let Some(a) = MAPS.lock().as_mut() {
        a.release(va, pages);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_release_merge() {
        let mut a = RangeAllocator::new(0x1000_0000, 0x1000_0000 + 10 * PAGE_SIZE);
        let x = a.reserve(3).unwrap();
        let y = a.reserve(3).unwrap();
        let z = a.reserve(4).unwrap();
        assert_eq!(a.reserve(1), None);
        assert_eq!(y, x + 3 * PAGE_SIZE);
        a.release(y, 3);
        assert_eq!(a.reserve(4), None, "hole of 3 only");
        a.release(x, 3);
        a.release(z, 4);
        assert_eq!(a.reserve(10), Some(x), "everything merged back");
        assert_eq!(a.reserve(0), None);
    }
}
