//! The monotonic clock: the TSC, measured against the PIT at boot, counted
//! from boot in nanoseconds; and the tick count of the scheduler's timer.

use core::sync::atomic::{AtomicU64, Ordering};

/// Nanoseconds per TSC tick as a 32.32 fixed-point number, so reading the
/// clock is a multiplication, not a 128-bit division.
static NS_PER_TICK_FP: AtomicU64 = AtomicU64::new(0);
static TSC_AT_BOOT: AtomicU64 = AtomicU64::new(0);
static TICKS: AtomicU64 = AtomicU64::new(0);

/// Timer interrupts per second.
pub const TICK_HZ: u64 = 1000;

/// Record the TSC's frequency; the clock reads 0 now.
pub fn init(tsc_hz: u64) {
    NS_PER_TICK_FP.store(((1_000_000_000u128 << 32) / tsc_hz.max(1) as u128) as u64, Ordering::Relaxed);
    TSC_AT_BOOT.store(crate::arch::cpu::rdtsc(), Ordering::Relaxed);
}

/// Nanoseconds since boot.
pub fn now_ns() -> u64 {
    let delta = crate::arch::cpu::rdtsc().saturating_sub(TSC_AT_BOOT.load(Ordering::Relaxed));
    ((delta as u128 * NS_PER_TICK_FP.load(Ordering::Relaxed) as u128) >> 32) as u64
}

/// Timer ticks since boot.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

/// Count one timer tick.
pub fn tick() -> u64 {
    TICKS.fetch_add(1, Ordering::Relaxed) + 1
}
