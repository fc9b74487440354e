//! Device interrupt lines delivered to user drivers as events.
//!
//! A bound line is masked when it fires and its event signalled; the driver
//! services the device and acknowledges, which unmasks it. This works for
//! edge and level-triggered lines alike without the kernel knowing the
//! device. Message-signalled interrupts get a vector of their own from a
//! pool; they are edge-triggered and need no masking.

use crate::arch::apic;
use crate::object::Event;
use alloc::sync::Arc;
use kintsugi_abi::{Error, IrqFlags};
use spin::Mutex;

/// Where a line or vector is delivered: an event and the bits to set.
type Delivery = (Arc<Event>, u64);

const NONE: Option<Delivery> = None;
static BINDINGS: Mutex<[Option<Delivery>; apic::MAX_GSI as usize]> = Mutex::new([NONE; apic::MAX_GSI as usize]);

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

static MSI: Mutex<[Option<Option<Delivery>>; apic::MSI_VECTORS]> = Mutex::new([const { None }; apic::MSI_VECTORS]);

/// Take a free MSI vector.
pub fn alloc_msi() -> Option<u64> {
    let mut t = MSI.lock();
    let i = t.iter().position(|v| v.is_none())?;
    t[i] = Some(None);
    Some(apic::MSI_VECTOR_BASE + i as u64)
}

/// Give an MSI vector back (its binding goes too).
pub fn free_msi(vector: u64) {
    if let Some(slot) = MSI.lock().get_mut((vector.wrapping_sub(apic::MSI_VECTOR_BASE)) as usize) {
        *slot = None;
    }
}

/// Deliver MSI `vector` to `event` as `bits`.
pub fn bind_msi(vector: u64, event: Arc<Event>, bits: u64) -> Result<(), Error> {
    let mut t = MSI.lock();
    let slot = t.get_mut((vector.wrapping_sub(apic::MSI_VECTOR_BASE)) as usize).ok_or(Error::InvalidArgument)?;
    match slot {
        Some(binding) => {
            *binding = Some((event, bits));
            Ok(())
        }
        None => Err(Error::InvalidArgument),
    }
}

/// The message (address, data) that raises MSI `vector` on the boot CPU.
pub fn msi_message(vector: u64) -> (u64, u64) {
    (0xfee0_0000 | ((apic::bsp_apic_id() as u64) << 12), vector)
}

/// Handle MSI `vector`.
pub fn on_msi(vector: u64) {
    if let Some(Some(Some((event, bits)))) = MSI.lock().get((vector.wrapping_sub(apic::MSI_VECTOR_BASE)) as usize) {
        event.signal(*bits);
    }
}
