//! The program heap: `buddy_system_allocator` over the heap region, grown on
//! demand by allocating memory objects and mapping them at the top.
//!
//! Each growth maps a power-of-two chunk at an address aligned to its size,
//! so the buddy allocator can hand it out whole.
//!
//! A program that keeps its state in the state arena by image distillation
//! can give the arena the whole global heap ([`crate::arena::hold_global_heap`]):
//! allocations then come from the arena, and each free goes to the
//! allocator its pointer came from.

use crate::sys;
use crate::vm::{HEAP_BASE, HEAP_END};
use buddy_system_allocator::{Heap, LockedHeapWithRescue};
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};
use kintsugi_abi::{Handle, MapFlags, MemFlags, PAGE_SIZE};

const MIN_GROWTH: u64 = 256 * 1024;

static HEAP: LockedHeapWithRescue<32> = LockedHeapWithRescue::new(grow);

/// The program's global allocator: the heap region, or the state arena once
/// the program gave it the heap.
struct ProgramHeap;

// SAFETY: both allocators are sound allocators; a pointer is freed by the
// one whose address range holds it, which is the one that allocated it.
unsafe impl GlobalAlloc for ProgramHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if crate::arena::holds_global_heap() {
            crate::arena::alloc(layout).map_or(core::ptr::null_mut(), |p| p.as_ptr())
        } else {
            // SAFETY: forwarded with the caller's layout.
            unsafe { HEAP.alloc(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match NonNull::new(ptr) {
            // SAFETY: it came from the arena (its address says so) with this layout.
            Some(p) if crate::arena::contains(ptr) => unsafe { crate::arena::dealloc(p, layout) },
            // SAFETY: it came from the heap with this layout.
            _ => unsafe { HEAP.dealloc(ptr, layout) },
        }
    }
}

#[global_allocator]
static GLOBAL: ProgramHeap = ProgramHeap;

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
