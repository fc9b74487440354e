//! The program heap: `buddy_system_allocator` over the heap region, grown on
//! demand by allocating memory objects and mapping them at the top.
//!
//! Each growth maps a power-of-two chunk at an address aligned to its size,
//! so the buddy allocator can hand it out whole.

use crate::sys;
use crate::vm::{HEAP_BASE, HEAP_END};
use buddy_system_allocator::{Heap, LockedHeapWithRescue};
use core::alloc::Layout;
use core::sync::atomic::{AtomicU64, Ordering};
use kintsugi_abi::{Handle, MapFlags, MemFlags, PAGE_SIZE};

const MIN_GROWTH: u64 = 256 * 1024;

#[global_allocator]
static HEAP: LockedHeapWithRescue<32> = LockedHeapWithRescue::new(grow);

static HEAP_TOP: AtomicU64 = AtomicU64::new(HEAP_BASE);

fn grow(heap: &mut Heap<32>, layout: &Layout) {
    let want = (layout.size().max(layout.align()) as u64).next_power_of_two().max(MIN_GROWTH);
    let top = HEAP_TOP.load(Ordering::Relaxed).next_multiple_of(want);
    if top + want > HEAP_END {
        return;
    }
    let pages = want / PAGE_SIZE;
    let Ok(mem) = sys::mem_alloc(pages, MemFlags::empty()) else { return };
    let mapped = sys::mem_map(Handle::SELF, mem, 0, top, pages, MapFlags::WRITE);
    // The mapping holds the frames; the handle is not needed.
    let _ = sys::handle_close(mem);
    if mapped.is_err() {
        return;
    }
    // SAFETY: [top, top + want) was just mapped writable and is used by no
    // one else; the heap owns it from now on.
    unsafe { heap.add_to_heap(top as usize, (top + want) as usize) };
    HEAP_TOP.store(top + want, Ordering::Relaxed);
}

/// Bytes handed out by the heap now.
pub fn used_bytes() -> usize {
    HEAP.lock().stats_alloc_actual()
}
