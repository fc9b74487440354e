//! Device interrupt lines delivered to user drivers as events.
//!
//! A bound line is masked when it fires and its event signalled; the driver
//! services the device and acknowledges, which unmasks it. This works for
//! edge and level-triggered lines alike without the kernel knowing the
//! device.

use crate::arch::apic;
use crate::object::Event;
use alloc::sync::Arc;
use kintsugi_abi::{Error, IrqFlags};
use spin::Mutex;

const NONE: Option<(Arc<Event>, u64)> = None;
static BINDINGS: Mutex<[Option<(Arc<Event>, u64)>; apic::MAX_GSI as usize]> =
    Mutex::new([NONE; apic::MAX_GSI as usize]);

/// The GSI the kernel's console uses (not available to drivers).
static CONSOLE_GSI: spin::Once<u32> = spin::Once::new();

/// Route the console's interrupt (kernel-owned) and remember its GSI.
pub fn init_console(platform: &crate::arch::acpi::Platform) {
    let (gsi, flags) = platform.isa_gsi(crate::console::IRQ);
    let (level, low) = isa_polarity(flags);
    apic::route(gsi, level, low, false);
    CONSOLE_GSI.call_once(|| gsi);
}

/// Decode MPS INTI flags of an ISA override (bus defaults: edge, high).
fn isa_polarity(flags: u16) -> (bool, bool) {
    let low = flags & 0b11 == 0b11;
    let level = (flags >> 2) & 0b11 == 0b11;
    (level, low)
}

/// Whether a GSI may be given to a driver.
pub fn is_assignable(gsi: u32) -> bool {
    gsi < apic::MAX_GSI && Some(&gsi) != CONSOLE_GSI.get()
}

/// Deliver `gsi` to `event` as `bits`, with the given trigger mode.
pub fn bind(gsi: u32, flags: IrqFlags, event: Arc<Event>, bits: u64) -> Result<(), Error> {
    if !is_assignable(gsi) {
        return Err(Error::AccessDenied);
    }
    BINDINGS.lock()[gsi as usize] = Some((event, bits));
    if !apic::route(gsi, flags.contains(IrqFlags::LEVEL), flags.contains(IrqFlags::ACTIVE_LOW), false) {
        BINDINGS.lock()[gsi as usize] = None;
        return Err(Error::Unsupported);
    }
    Ok(())
}

/// Unmask `gsi` after its driver has serviced the device.
pub fn ack(gsi: u32) {
    if is_assignable(gsi) {
        apic::set_masked(gsi, false);
    }
}

/// Handle an interrupt on `gsi`.
pub fn on_interrupt(gsi: u32) {
    if Some(&gsi) == CONSOLE_GSI.get() {
        crate::console::on_interrupt();
        return;
    }
    apic::set_masked(gsi, true);
    if let Some((event, bits)) = &BINDINGS.lock()[gsi as usize] {
        event.signal(*bits);
    }
}
