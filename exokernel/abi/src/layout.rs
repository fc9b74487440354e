//! The user address space as the kernel lays it out, and the kernel's limits.
//!
//! User programs are static ELF executables linked in the low 2 GiB (lld's
//! default base is 0x200000). Everything else a program maps (heap, state
//! arena, channels, device memory) is the library OS's business, anywhere in
//! `USER_BASE..USER_END` that is free.

/// Size of a page and of a frame.
pub const PAGE_SIZE: u64 = 4096;
/// Lowest user address that can be mapped (page zero stays unmapped so null
/// pointers fault).
pub const USER_BASE: u64 = 0x1000;
/// One past the highest user address (the lower canonical half).
pub const USER_END: u64 = 0x0000_8000_0000_0000;
/// Where the kernel maps the read-only [`StartInfo`](crate::StartInfo) page.
pub const START_INFO_ADDR: u64 = 0x0000_7fff_ffff_0000;
/// Where the kernel maps the read-only [`ClockPage`](crate::ClockPage) in
/// every process.
pub const CLOCK_PAGE_ADDR: u64 = START_INFO_ADDR + PAGE_SIZE;
/// The top of the initial stack; the stack grows down from here, with an
/// unmapped guard page below it.
pub const STACK_TOP: u64 = 0x0000_7fff_f000_0000;
/// Stack size when `SpawnParams::stack_pages` is 0 (256 KiB).
pub const DEFAULT_STACK_PAGES: u64 = 64;
/// Largest stack a spawn may ask for (16 MiB).
pub const MAX_STACK_PAGES: u64 = 4096;

/// Largest `DebugWrite`.
pub const MAX_DEBUG_WRITE: usize = 64 * 1024;
/// Most events one `EventWait` can watch.
pub const MAX_WAIT_HANDLES: usize = 256;
/// Most handles waiting in one link end's queue.
pub const MAX_LINK_QUEUE: usize = 64;
/// Most handles in one process's table.
pub const MAX_HANDLES: usize = 4096;
/// Largest memory object, in pages (1 GiB).
pub const MAX_MEM_PAGES: u64 = 1 << 18;
/// Largest range one `MemDirty` reads.
pub const MAX_DIRTY_PAGES: u64 = 1 << 18;
/// Most processes alive at once.
pub const MAX_PROCESSES: usize = 1024;

/// Whether `[addr, addr + len)` lies inside user space (and does not wrap).
pub const fn is_user_range(addr: u64, len: u64) -> bool {
    match addr.checked_add(len) {
        Some(end) => addr >= USER_BASE && end <= USER_END,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_range_checks() {
        assert!(is_user_range(0x20_0000, 4096));
        assert!(!is_user_range(0, 4096));
        assert!(!is_user_range(USER_END - 4096, 8192));
        assert!(!is_user_range(u64::MAX - 10, 100));
        assert!(is_user_range(USER_END - 4096, 4096));
        const {
            assert!(START_INFO_ADDR + PAGE_SIZE <= USER_END);
            assert!(CLOCK_PAGE_ADDR + PAGE_SIZE <= USER_END && CLOCK_PAGE_ADDR > START_INFO_ADDR);
            assert!(STACK_TOP < START_INFO_ADDR);
        }
    }
}
