//! The local APIC (timer, end-of-interrupt) and the I/O APICs (routing of
//! device interrupt lines to vectors), both reached through the direct map.
//!
//! Vector plan: 0x00-0x1f exceptions, 0x20 the APIC timer, 0x30 + GSI for
//! device lines (GSIs 0..[`MAX_GSI`]), 0x70-0xef message-signalled
//! interrupts, 0xf0-0xfe the masked legacy PICs, 0xff spurious.

use super::acpi::Platform;
use crate::mem::phys_to_virt;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

/// The APIC timer's vector.
pub const TIMER_VECTOR: u64 = 0x20;
/// Vector of GSI 0.
pub const GSI_VECTOR_BASE: u64 = 0x30;
/// GSIs the kernel routes.
pub const MAX_GSI: u32 = 64;
/// The spurious-interrupt vector.
pub const SPURIOUS_VECTOR: u64 = 0xff;
/// First vector handed out for message-signalled interrupts.
pub const MSI_VECTOR_BASE: u64 = 0x70;
/// Number of MSI vectors (0x70..0xf0).
pub const MSI_VECTORS: usize = 0x80;

const REG_ID: u64 = 0x20;
const REG_EOI: u64 = 0xb0;
const REG_SVR: u64 = 0xf0;
const REG_LVT_TIMER: u64 = 0x320;
const REG_TIMER_INIT: u64 = 0x380;
const REG_TIMER_CURRENT: u64 = 0x390;
const REG_TIMER_DIVIDE: u64 = 0x3e0;

static LAPIC_BASE: AtomicU64 = AtomicU64::new(0);

fn lapic_read(reg: u64) -> u32 {
    // SAFETY: LAPIC registers are 32-bit MMIO words in the direct map.
    unsafe { core::ptr::read_volatile((LAPIC_BASE.load(Ordering::Relaxed) + reg) as *const u32) }
}

fn lapic_write(reg: u64, value: u32) {
    // SAFETY: as in `lapic_read`.
    unsafe { core::ptr::write_volatile((LAPIC_BASE.load(Ordering::Relaxed) + reg) as *mut u32, value) }
}

struct IoApic {
    base: u64,
    gsi_base: u32,
    lines: u32,
}

impl IoApic {
    fn read(&self, reg: u32) -> u32 {
        // SAFETY: IOREGSEL/IOWIN of an I/O APIC the firmware described.
        unsafe {
            core::ptr::write_volatile(self.base as *mut u32, reg);
            core::ptr::read_volatile((self.base + 0x10) as *const u32)
        }
    }

    fn write(&self, reg: u32, value: u32) {
        // SAFETY: as in `read`.
        unsafe {
            core::ptr::write_volatile(self.base as *mut u32, reg);
            core::ptr::write_volatile((self.base + 0x10) as *mut u32, value);
        }
    }
}

static IOAPICS: spin::Mutex<Vec<IoApic>> = spin::Mutex::new(Vec::new());
static BSP_APIC_ID: AtomicU64 = AtomicU64::new(0);

/// Enable the local APIC and find the I/O APICs, every line masked.
pub fn init(platform: &Platform) {
    LAPIC_BASE.store(phys_to_virt(platform.lapic_address) as u64, Ordering::Relaxed);
    lapic_write(REG_SVR, 0x100 | SPURIOUS_VECTOR as u32);
    BSP_APIC_ID.store((lapic_read(REG_ID) >> 24) as u64, Ordering::Relaxed);
    let mut ioapics = IOAPICS.lock();
    for info in &platform.ioapics {
        let mut io = IoApic { base: phys_to_virt(info.address) as u64, gsi_base: info.gsi_base, lines: 0 };
        io.lines = ((io.read(1) >> 16) & 0xff) + 1;
        for line in 0..io.lines {
            io.write(0x10 + 2 * line, 1 << 16);
        }
        ioapics.push(io);
    }
}

/// The boot processor's APIC id (where device interrupts are sent).
pub fn bsp_apic_id() -> u32 {
    BSP_APIC_ID.load(Ordering::Relaxed) as u32
}

/// Signal end of interrupt to the local APIC.
pub fn eoi() {
    lapic_write(REG_EOI, 0);
}

/// Start the APIC timer at `hz` periodic interrupts, measuring it and the
/// TSC against the PIT. Returns the TSC frequency in Hz.
pub fn start_timer(hz: u32) -> u64 {
    lapic_write(REG_TIMER_DIVIDE, 0x3); // divide by 16
    lapic_write(REG_LVT_TIMER, 1 << 16); // masked, one-shot
    lapic_write(REG_TIMER_INIT, u32::MAX);
    let tsc0 = super::cpu::rdtsc();
    super::pit::wait_ms(20);
    let tsc1 = super::cpu::rdtsc();
    let elapsed = u32::MAX - lapic_read(REG_TIMER_CURRENT);
    let apic_hz = elapsed as u64 * 50;
    let tsc_hz = (tsc1 - tsc0) * 50;
    lapic_write(REG_LVT_TIMER, (1 << 17) | TIMER_VECTOR as u32); // periodic
    lapic_write(REG_TIMER_INIT, ((apic_hz / hz as u64).max(1)) as u32);
    tsc_hz
}

/// Route `gsi` to its vector with the given trigger and polarity, masked or
/// not. Returns false if no I/O APIC serves the GSI.
pub fn route(gsi: u32, level: bool, active_low: bool, masked: bool) -> bool {
    if gsi >= MAX_GSI {
        return false;
    }
    let ioapics = IOAPICS.lock();
    let Some(io) = ioapics.iter().find(|io| gsi >= io.gsi_base && gsi < io.gsi_base + io.lines) else {
        return false;
    };
    let line = gsi - io.gsi_base;
    let mut low = (GSI_VECTOR_BASE as u32 + gsi) | ((active_low as u32) << 13) | ((level as u32) << 15);
    if masked {
        low |= 1 << 16;
    }
    io.write(0x11 + 2 * line, (BSP_APIC_ID.load(Ordering::Relaxed) as u32) << 24);
    io.write(0x10 + 2 * line, low);
    true
}

/// Route `gsi` (an edge-triggered, active-high ISA line) to the boot CPU as
/// a non-maskable interrupt, or mask it again (the profiler's sample clock).
pub fn route_nmi(gsi: u32, enabled: bool) {
    let ioapics = IOAPICS.lock();
    if let Some(io) = ioapics.iter().find(|io| gsi >= io.gsi_base && gsi < io.gsi_base + io.lines) {
        let line = gsi - io.gsi_base;
        const DELIVERY_NMI: u32 = 0b100 << 8;
        let low = DELIVERY_NMI | if enabled { 0 } else { 1 << 16 };
        io.write(0x11 + 2 * line, (BSP_APIC_ID.load(Ordering::Relaxed) as u32) << 24);
        io.write(0x10 + 2 * line, low);
    }
}

/// Mask or unmask a routed GSI.
pub fn set_masked(gsi: u32, masked: bool) {
    let ioapics = IOAPICS.lock();
    if let Some(io) = ioapics.iter().find(|io| gsi >= io.gsi_base && gsi < io.gsi_base + io.lines) {
        let reg = 0x10 + 2 * (gsi - io.gsi_base);
        let low = io.read(reg);
        io.write(reg, if masked { low | (1 << 16) } else { low & !(1 << 16) });
    }
}
