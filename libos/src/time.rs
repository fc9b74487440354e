//! Time: the monotonic clock and sleeping.
//!
//! The clock is read from the kernel's clock page (a read-only page every
//! process maps, `kintsugi_abi::ClockPage`) and the time-stamp counter,
//! without a system call; a process without the page asks the kernel.

use core::time::Duration;
use kintsugi_abi::{ClockPage, CLOCK_MAGIC, CLOCK_PAGE_ADDR};

/// Time since boot on the monotonic clock.
pub fn now() -> Duration {
    Duration::from_nanos(now_ns())
}

/// Nanoseconds since boot.
pub fn now_ns() -> u64 {
    #[cfg(target_os = "none")]
    {
        // SAFETY: the kernel maps the clock page read-only at this address
        // in every process before it starts, for the process's whole life,
        // and never changes it after boot; the read is a plain copy.
        let page = unsafe { core::ptr::read_volatile(CLOCK_PAGE_ADDR as *const ClockPage) };
        if page.magic == CLOCK_MAGIC {
            // SAFETY: rdtsc has no side effects and user mode may use it.
            return page.ns_at(unsafe { core::arch::x86_64::_rdtsc() });
        }
    }
    #[cfg(not(target_os = "none"))]
    let _ = (CLOCK_MAGIC, CLOCK_PAGE_ADDR, core::mem::size_of::<ClockPage>());
    crate::sys::clock_now()
}

/// Sleep for `d` (a wait on an event nobody signals).
pub fn sleep(d: Duration) {
    if let Ok(ev) = crate::handle::Event::new() {
        let _ = ev.wait(d.as_nanos().min(u64::MAX as u128 - 1) as u64);
    }
}

/// A timeout as the kernel takes it (`u64::MAX` = forever).
pub fn timeout_ns(d: Option<Duration>) -> u64 {
    match d {
        Some(d) => d.as_nanos().min(u64::MAX as u128 - 1) as u64,
        None => u64::MAX,
    }
}
