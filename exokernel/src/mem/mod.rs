//! Physical memory: the direct map, the frame allocator with per-frame
//! reference counts, the kernel heap, address spaces (page tables) and safe
//! access to user memory.

pub mod frames;
pub mod heap;
pub mod paging;
pub mod user;

/// Where all physical RAM is mapped in the kernel half (PML4 entry 256).
pub const DIRECT_MAP_BASE: u64 = 0xFFFF_8000_0000_0000;
/// Where the kernel image is linked (physical address + this).
pub const KERNEL_VMA: u64 = 0xFFFF_FFFF_8000_0000;

/// The kernel-virtual address of a physical address, through the direct map.
pub fn phys_to_virt(pa: u64) -> *mut u8 {
    (DIRECT_MAP_BASE + pa) as *mut u8
}
