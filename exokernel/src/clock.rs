//! The monotonic clock: the TSC, measured against the PIT at boot, counted
//! from boot in nanoseconds; and the tick count of the scheduler's timer.
//! The clock's parameters are also published in a read-only page every
//! process maps (`kintsugi_abi::ClockPage`), so reading the clock needs no
//! system call.

use core::sync::atomic::{AtomicU64, Ordering};

/// Nanoseconds per TSC tick as a 32.32 fixed-point number, so reading the
/// clock is a multiplication, not a 128-bit division.
static NS_PER_TICK_FP: AtomicU64 = AtomicU64::new(0);
static TSC_AT_BOOT: AtomicU64 = AtomicU64::new(0);
static TICKS: AtomicU64 = AtomicU64::new(0);
static BOOT_ID: AtomicU64 = AtomicU64::new(0);

/// Timer interrupts per second.
pub const TICK_HZ: u64 = 1000;

/// Physical address of the clock page (0 before `init`).
static PAGE: AtomicU64 = AtomicU64::new(0);

/// Record the TSC's frequency; the clock reads 0 now. Fills the clock page.
pub fn init(tsc_hz: u64) {
    NS_PER_TICK_FP.store(((1_000_000_000u128 << 32) / tsc_hz.max(1) as u128) as u64, Ordering::Relaxed);
    TSC_AT_BOOT.store(crate::arch::cpu::rdtsc(), Ordering::Relaxed);
    BOOT_ID.store(make_boot_id(), Ordering::Relaxed);
    // The page's one reference is never dropped: it lives as long as the
    // kernel, mapped into every process.
    let Some(pa) = crate::mem::frames::alloc() else {
        kprintln!("kernel: warning: clock: no memory for the clock page; programs will ask the kernel for the time");
        return;
    };
    let page = kintsugi_abi::ClockPage {
        magic: kintsugi_abi::CLOCK_MAGIC,
        tsc_at_boot: TSC_AT_BOOT.load(Ordering::Relaxed),
        ns_per_tsc_fp: NS_PER_TICK_FP.load(Ordering::Relaxed),
    };
    // SAFETY: the frame was just allocated (ours alone) and is in the
    // direct map; a ClockPage fits in a page.
    unsafe { core::ptr::write(crate::mem::phys_to_virt(pa) as *mut kintsugi_abi::ClockPage, page) };
    PAGE.store(pa, Ordering::Release);
}

/// This machine boot's identity: a 64-bit number that differs from one
/// boot to the next and stays the same for the whole of one boot (never
/// 0). The vault uses it to tell a restart of its own process from a new
/// boot of the machine. It mixes the CPU's random numbers (RDRAND, where
/// the CPU has it), the real-time clock's date and time, and the TSC.
pub fn boot_id() -> u64 {
    BOOT_ID.load(Ordering::Relaxed)
}

fn make_boot_id() -> u64 {
    let random = x86_64::instructions::random::RdRand::new().and_then(|r| r.get_u64()).unwrap_or(0);
    let mut id = mix(mix(mix(0x6b69_6e74_7375_6769, random), crate::arch::rtc::raw_time()), crate::arch::cpu::rdtsc());
    if id == 0 {
        id = 1;
    }
    id
}

/// One splitmix64 round of `h` with `v` folded in.
fn mix(h: u64, v: u64) -> u64 {
    let mut z = (h ^ v).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Physical address of the clock page, if there is one.
pub fn page() -> Option<u64> {
    Some(PAGE.load(Ordering::Acquire)).filter(|pa| *pa != 0)
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
