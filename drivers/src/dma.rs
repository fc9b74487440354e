//! DMA memory: memory objects allocated below 4 GiB (physically contiguous
//! or page by page), mapped into this program, with the physical address
//! of every page so a device can be pointed at them. Access goes through
//! raw pointers and volatile loads and stores, never long-lived references,
//! because the device writes the memory behind the compiler's back.
//!
//! [`segments`] (the physical runs behind a byte range) is pure and tested
//! on the host.

use crate::block::DeviceError;
use alloc::format;
use alloc::vec::Vec;
use libos::abi::{Error, MapFlags, MemFlags};
use libos::handle::{Mapping, Memory};

/// The page size.
pub const PAGE: usize = 4096;

/// Memory a device reads and writes.
pub struct DmaBuffer {
    // Declared first so it is unmapped before the handle is closed.
    map: Mapping,
    _memory: Memory,
    pages: Vec<u64>,
    contiguous: bool,
}

fn dma_error(what: &str, e: Error) -> DeviceError {
    DeviceError::Device(format!("DMA memory: {what}: {e}"))
}

impl DmaBuffer {
    /// `bytes` (rounded up to pages) of zeroed, physically contiguous memory.
    pub fn contiguous(bytes: usize) -> Result<DmaBuffer, DeviceError> {
        DmaBuffer::new(bytes, true)
    }

    /// `bytes` of zeroed memory whose pages may lie anywhere below 4 GiB.
    pub fn scattered(bytes: usize) -> Result<DmaBuffer, DeviceError> {
        DmaBuffer::new(bytes, false)
    }

    fn new(bytes: usize, contiguous: bool) -> Result<DmaBuffer, DeviceError> {
        let pages = bytes.div_ceil(PAGE).max(1) as u64;
        let mut flags = MemFlags::BELOW_4G;
        if contiguous {
            flags |= MemFlags::CONTIGUOUS;
        }
        let memory = Memory::alloc(pages, flags).map_err(|e| dma_error("allocate", e))?;
        let map = memory.map(MapFlags::WRITE).map_err(|e| dma_error("map", e))?;
        let pages = if contiguous {
            let base = memory.phys(0).map_err(|e| dma_error("physical address", e))?;
            (0..pages).map(|i| base + i * PAGE as u64).collect()
        } else {
            (0..pages)
                .map(|i| memory.phys(i))
                .collect::<Result<Vec<u64>, Error>>()
                .map_err(|e| dma_error("physical address", e))?
        };
        Ok(DmaBuffer { map, _memory: memory, pages, contiguous })
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.pages.len() * PAGE
    }

    /// Whether empty (never: at least one page).
    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// Whether the pages are physically contiguous.
    pub fn is_contiguous(&self) -> bool {
        self.contiguous
    }

    /// Where it is mapped.
    pub fn ptr(&self) -> *mut u8 {
        self.map.as_ptr()
    }

    /// The physical address of byte `offset`.
    pub fn phys(&self, offset: usize) -> Option<u64> {
        self.pages.get(offset / PAGE).map(|p| p + (offset % PAGE) as u64)
    }

    /// The physical runs behind `[offset, offset + len)`.
    pub fn segments(&self, offset: usize, len: usize) -> Option<Vec<(u64, usize)>> {
        segments(&self.pages, offset, len)
    }

    fn fits(&self, offset: usize, len: usize) -> bool {
        offset.checked_add(len).is_some_and(|end| end <= self.len())
    }

    /// Copy `data` in at `offset`; false (and nothing copied) if it does
    /// not fit.
    pub fn copy_in(&self, offset: usize, data: &[u8]) -> bool {
        if !self.fits(offset, data.len()) {
            return false;
        }
        // SAFETY: the range is inside the mapping (checked above) and `data`
        // is ordinary memory that cannot overlap it.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr().add(offset), data.len()) };
        true
    }

    /// Copy out to `out` from `offset`; false if the range does not fit.
    pub fn copy_out(&self, offset: usize, out: &mut [u8]) -> bool {
        if !self.fits(offset, out.len()) {
            return false;
        }
        // SAFETY: as in `copy_in`; the device is done with the range when a
        // driver copies it out.
        unsafe { core::ptr::copy_nonoverlapping(self.ptr().add(offset), out.as_mut_ptr(), out.len()) };
        true
    }

    /// Copy `len` bytes of `src` from `src_at` in at `offset`, each read
    /// once (another process may be writing `src`); false (and nothing
    /// copied) if either range does not fit.
    pub fn fill_from(&self, offset: usize, src: &Mapping, src_at: usize, len: usize) -> bool {
        if !self.fits(offset, len) {
            return false;
        }
        // SAFETY: the range is inside the mapping (checked above), the
        // device is not using it (a driver stages before submitting), and
        // no other reference to it exists while this one lives.
        let staging = unsafe { core::slice::from_raw_parts_mut(self.ptr().add(offset), len) };
        src.copy_out(src_at, staging).is_ok()
    }

    /// Copy `len` bytes from `offset` out to `dst` at `dst_at`, each
    /// written once; false if either range does not fit.
    pub fn drain_to(&self, offset: usize, dst: &Mapping, dst_at: usize, len: usize) -> bool {
        if !self.fits(offset, len) {
            return false;
        }
        // SAFETY: the range is inside the mapping (checked above), and the
        // device is done with it when a driver copies it out.
        let staging = unsafe { core::slice::from_raw_parts(self.ptr().add(offset), len) };
        dst.copy_in(dst_at, staging).is_ok()
    }

    /// Fill a range with zeroes.
    pub fn zero(&self, offset: usize, len: usize) {
        if self.fits(offset, len) {
            // SAFETY: inside the mapping (checked).
            unsafe { core::ptr::write_bytes(self.ptr().add(offset), 0, len) };
        }
    }

    /// A raw pointer to `len` bytes at `offset`, if they fit.
    pub fn range(&self, offset: usize, len: usize) -> Option<*mut u8> {
        // SAFETY: inside the mapping (checked).
        self.fits(offset, len).then(|| unsafe { self.ptr().add(offset) })
    }
}

macro_rules! volatile_access {
    ($read:ident, $write:ident, $t:ty) => {
        impl DmaBuffer {
            /// Volatile load at `offset` (0 outside the buffer or unaligned).
            pub fn $read(&self, offset: usize) -> $t {
                const N: usize = core::mem::size_of::<$t>();
                if !self.fits(offset, N) || !offset.is_multiple_of(N) {
                    debug_assert!(false, "DMA read outside the buffer");
                    return 0;
                }
                // SAFETY: aligned and inside the mapping (checked above).
                unsafe { core::ptr::read_volatile(self.ptr().add(offset) as *const $t) }
            }

            /// Volatile store at `offset` (ignored outside the buffer).
            pub fn $write(&self, offset: usize, value: $t) {
                const N: usize = core::mem::size_of::<$t>();
                if !self.fits(offset, N) || !offset.is_multiple_of(N) {
                    debug_assert!(false, "DMA write outside the buffer");
                    return;
                }
                // SAFETY: aligned and inside the mapping (checked above).
                unsafe { core::ptr::write_volatile(self.ptr().add(offset) as *mut $t, value) }
            }
        }
    };
}

volatile_access!(read8, write8, u8);
volatile_access!(read16, write16, u16);
volatile_access!(read32, write32, u32);
volatile_access!(read64, write64, u64);

/// The physical runs (address, length) behind bytes `[offset, offset+len)`
/// of memory whose pages sit at `pages`; adjacent pages merge into one run.
/// None if the range does not fit.
pub fn segments(pages: &[u64], offset: usize, len: usize) -> Option<Vec<(u64, usize)>> {
    let end = offset.checked_add(len)?;
    if end > pages.len() * PAGE {
        return None;
    }
    let mut out: Vec<(u64, usize)> = Vec::new();
    let mut at = offset;
    while at < end {
        let n = (PAGE - at % PAGE).min(end - at);
        let phys = pages[at / PAGE] + (at % PAGE) as u64;
        match out.last_mut() {
            Some((p, l)) if *p + *l as u64 == phys => *l += n,
            _ => out.push((phys, n)),
        }
        at += n;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_merge_adjacent_pages() {
        let pages = [0x10000, 0x11000, 0x50000, 0x51000, 0x20000];
        assert_eq!(segments(&pages, 0, 2 * PAGE), Some(alloc::vec![(0x10000, 2 * PAGE)]));
        assert_eq!(
            segments(&pages, 100, 4 * PAGE),
            Some(alloc::vec![(0x10064, 2 * PAGE - 100), (0x50000, 2 * PAGE), (0x20000, 100)])
        );
        assert_eq!(segments(&pages, 5 * PAGE - 1, 1), Some(alloc::vec![(0x20fff, 1)]));
        assert_eq!(segments(&pages, 5 * PAGE - 1, 2), None);
        assert_eq!(segments(&pages, usize::MAX, 2), None);
        assert_eq!(segments(&pages, 0, 0), Some(alloc::vec![]));
    }
}
