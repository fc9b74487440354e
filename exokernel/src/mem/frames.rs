//! Physical frames: a buddy allocator (`buddy_system_allocator`) for free
//! frames and a reference count per frame.
//!
//! A frame's count is the number of memory objects and page-table entries
//! that hold it; it returns to the allocator when the count drops to zero.
//! Frames the kernel never frees (its image, boot modules) are pinned.
//! Frames below 4 GiB come from a separate allocator so that DMA-limited
//! requests can be met; ordinary requests prefer memory above 4 GiB.

use super::phys_to_virt;
use crate::boot::Region;
use alloc::vec;
use alloc::vec::Vec;
use buddy_system_allocator::FrameAllocator;
use kintsugi_abi::PAGE_SIZE;
use spin::Mutex;

const PINNED: u16 = u16::MAX;
const FOUR_GIB_FRAME: usize = (1 << 32) / PAGE_SIZE as usize;
/// RAM above this is ignored (keeps the kernel's bookkeeping bounded).
const MAX_PHYS: u64 = 16 << 30;

struct Frames {
    low: FrameAllocator<32>,
    high: FrameAllocator<32>,
    refs: Vec<u16>,
    total: u64,
    free: u64,
}

static FRAMES: Mutex<Option<Frames>> = Mutex::new(None);

/// Hand the usable RAM to the allocator, minus the `reserved` ranges (which
/// stay pinned). Returns the number of usable pages.
pub fn init(ram: &[Region], reserved: &[Region]) -> u64 {
    let max_frame = ram.iter().map(|r| r.end.min(MAX_PHYS)).max().unwrap_or(0) / PAGE_SIZE;
    let mut f = Frames {
        low: FrameAllocator::new(),
        high: FrameAllocator::new(),
        refs: vec![PINNED; max_frame as usize],
        total: 0,
        free: 0,
    };
    for (first, last) in crate::regions::usable_pages(ram, reserved, MAX_PHYS, PAGE_SIZE) {
        let (first, last) = (first as usize, last as usize);
        for n in first..last {
            f.refs[n] = 0;
        }
        let split = FOUR_GIB_FRAME.clamp(first, last);
        if first < split {
            f.low.add_frame(first, split);
        }
        if split < last {
            f.high.add_frame(split, last);
        }
        f.total += (last - first) as u64;
    }
    f.free = f.total;
    let total = f.total;
    *FRAMES.lock() = Some(f);
    total
}

fn zero(frame: usize, count: usize) {
    // SAFETY: the frames were just taken from the allocator, so nobody else
    // uses them, and all RAM is mapped at the direct map.
    unsafe { core::ptr::write_bytes(phys_to_virt(frame as u64 * PAGE_SIZE), 0, count * PAGE_SIZE as usize) };
}

impl Frames {
    fn take(&mut self, count: usize, below_4g: bool) -> Option<usize> {
        let start =
            if below_4g { self.low.alloc(count)? } else { self.high.alloc(count).or_else(|| self.low.alloc(count))? };
        // The buddy allocator rounds up to a power of two: give the excess back.
        let size = count.next_power_of_two();
        for extra in start + count..start + size {
            self.put_back(extra);
        }
        for n in start..start + count {
            self.refs[n] = 1;
        }
        self.free -= count as u64;
        Some(start)
    }

    fn put_back(&mut self, frame: usize) {
        if frame < FOUR_GIB_FRAME {
            self.low.dealloc(frame, 1);
        } else {
            self.high.dealloc(frame, 1);
        }
    }
}

/// One zeroed frame with reference count 1; its physical address.
pub fn alloc() -> Option<u64> {
    alloc_run(1, false)
}

/// `count` zeroed, physically contiguous frames, each with reference count 1;
/// the physical address of the first.
pub fn alloc_run(count: usize, below_4g: bool) -> Option<u64> {
    if count == 0 {
        return None;
    }
    let start = FRAMES.lock().as_mut()?.take(count, below_4g)?;
    zero(start, count);
    Some(start as u64 * PAGE_SIZE)
}

/// Add a reference to the frame at `pa` (no-op for pinned or foreign frames).
pub fn retain(pa: u64) {
    let mut g = FRAMES.lock();
    let Some(f) = g.as_mut() else { return };
    let n = (pa / PAGE_SIZE) as usize;
    if let Some(r) = f.refs.get_mut(n) {
        if *r != PINNED && *r != 0 {
            *r = r.saturating_add(1).min(PINNED - 1);
        }
    }
}

/// Drop a reference to the frame at `pa`, freeing it at zero.
pub fn release(pa: u64) {
    let mut g = FRAMES.lock();
    let Some(f) = g.as_mut() else { return };
    let n = (pa / PAGE_SIZE) as usize;
    let Some(r) = f.refs.get_mut(n) else { return };
    if *r == PINNED || *r == 0 {
        return;
    }
    *r -= 1;
    if *r == 0 {
        f.put_back(n);
        f.free += 1;
    }
}

/// Whether `pa` is ordinary RAM the allocator manages (free or in use).
pub fn is_managed(pa: u64) -> bool {
    let g = FRAMES.lock();
    let Some(f) = g.as_ref() else { return false };
    f.refs.get((pa / PAGE_SIZE) as usize).is_some_and(|r| *r != PINNED)
}

/// Whether `[start, end)` touches any RAM the kernel knows (managed or
/// pinned), which device resources must not cover.
pub fn overlaps_ram(start: u64, end: u64, ram: &[Region]) -> bool {
    ram.iter().any(|r| start < r.end && end > r.start)
}

/// (total, free) pages.
pub fn stats() -> (u64, u64) {
    FRAMES.lock().as_ref().map(|f| (f.total, f.free)).unwrap_or((0, 0))
}

/// (total, free) pages, unless the allocator's lock is held (for the stall
/// report, which must not wait).
pub fn try_stats() -> Option<(u64, u64)> {
    FRAMES.try_lock().map(|f| f.as_ref().map(|f| (f.total, f.free)).unwrap_or((0, 0)))
}
