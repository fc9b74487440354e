//! The kernel heap: a buddy allocator (`buddy_system_allocator`) over a fixed
//! region in the kernel's `.bss`. Its size bounds the kernel's own
//! bookkeeping (process records, handle tables, free lists); user memory
//! never comes from here.

use buddy_system_allocator::LockedHeap;

/// Size of the heap in bytes.
pub const SIZE: usize = 24 * 1024 * 1024;

#[repr(align(4096))]
#[allow(dead_code)] // only its address is used
struct HeapSpace([u8; SIZE]);

static mut HEAP_SPACE: HeapSpace = HeapSpace([0; SIZE]);

#[global_allocator]
static HEAP: LockedHeap<32> = LockedHeap::empty();

/// Hand the heap region to the allocator. Called once, first thing at boot.
pub fn init() {
    // SAFETY: called once before any allocation; the region is a static the
    // allocator then owns exclusively.
    unsafe {
        let start = core::ptr::addr_of_mut!(HEAP_SPACE) as usize;
        HEAP.lock().init(start, SIZE);
    }
}

/// Bytes of heap in use, for diagnostics and `SystemInfo`.
pub fn used() -> usize {
    HEAP.lock().stats_alloc_actual()
}

/// Heap the kernel keeps for itself: calls that would create kernel objects
/// for a user are refused (`OutOfMemory`) once less than this is free, so no
/// user request can exhaust the heap and make the kernel fail an allocation.
const RESERVE: usize = 4 * 1024 * 1024;

/// Whether a user request may still create kernel objects.
pub fn has_headroom() -> bool {
    used() + RESERVE < SIZE
}
