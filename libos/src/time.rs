//! Time: the monotonic clock and sleeping.

use core::time::Duration;

/// Time since boot on the monotonic clock.
pub fn now() -> Duration {
    Duration::from_nanos(crate::sys::clock_now())
}

/// Nanoseconds since boot.
pub fn now_ns() -> u64 {
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
