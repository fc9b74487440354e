//! Interrupts as events: an MSI vector (edge, nothing to acknowledge) or a
//! legacy INTx line through the I/O APIC (the kernel masks it when it
//! fires; the driver clears the device's cause, then [`Interrupt::ack`]s).
//! Without either a driver still works by polling: [`Interrupt::polling`]
//! is an event nobody signals, so every wait simply times out.
//!
//! Drivers wait in slices of [`POLL_NS`] and look at the device's
//! completion state after every slice, so a lost interrupt costs at most
//! one slice, never a hang; [`Deadline`] bounds the whole wait.

use crate::block::DeviceError;
use alloc::format;
use libos::handle::{Event, OwnedHandle};
use libos::{directory, sys};

/// Longest single wait before the device is polled again.
pub const POLL_NS: u64 = 10_000_000;
/// Longest sleep between polls of a device without interrupts.
pub const POLLING_NS: u64 = 200_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Msi,
    Intx,
    Polling,
}

/// A device's interrupt, delivered to an event.
pub struct Interrupt {
    event: Event,
    resource: Option<OwnedHandle>,
    kind: Kind,
}

impl Interrupt {
    /// A new MSI vector from init (the manifest must grant `msi`), bound to
    /// a fresh event; also the (address, data) message the device must send.
    pub fn msi() -> Result<(Interrupt, u64, u32), DeviceError> {
        let resource = directory::device("msi").map_err(|e| DeviceError::Device(format!("msi: {e}")))?;
        let resource = OwnedHandle::from_raw(resource);
        let (address, data) =
            sys::irq_msi_message(resource.raw()).map_err(|e| DeviceError::Device(format!("msi message: {e}")))?;
        let event = Event::new().map_err(|e| DeviceError::Device(format!("event: {e}")))?;
        sys::irq_bind(resource.raw(), event.raw(), 1).map_err(|e| DeviceError::Device(format!("msi bind: {e}")))?;
        Ok((Interrupt { event, resource: Some(resource), kind: Kind::Msi }, address, data))
    }

    /// Legacy interrupt line `gsi` (level-triggered, active low, as PCI
    /// lines are), bound to a fresh event.
    pub fn intx(gsi: u32) -> Result<Interrupt, DeviceError> {
        let name = format!("irq:{gsi}:level-low");
        let resource = directory::device(&name).map_err(|e| DeviceError::Device(format!("{name}: {e}")))?;
        let resource = OwnedHandle::from_raw(resource);
        let event = Event::new().map_err(|e| DeviceError::Device(format!("event: {e}")))?;
        sys::irq_bind(resource.raw(), event.raw(), 1).map_err(|e| DeviceError::Device(format!("{name} bind: {e}")))?;
        Ok(Interrupt { event, resource: Some(resource), kind: Kind::Intx })
    }

    /// No interrupt: waits just time out (the driver polls).
    pub fn polling() -> Result<Interrupt, DeviceError> {
        let event = Event::new().map_err(|e| DeviceError::Device(format!("event: {e}")))?;
        Ok(Interrupt { event, resource: None, kind: Kind::Polling })
    }

    /// Whether this is a legacy line that needs [`Interrupt::ack`].
    pub fn is_intx(&self) -> bool {
        self.kind == Kind::Intx
    }

    /// What it is, for messages: `msi`, `intx` or `polling`.
    pub fn describe(&self) -> &'static str {
        match self.kind {
            Kind::Msi => "msi",
            Kind::Intx => "intx",
            Kind::Polling => "polling",
        }
    }

    /// Wait up to `timeout_ns` for the interrupt; whether it fired. A
    /// polling "interrupt" sleeps at most [`POLLING_NS`].
    pub fn wait(&self, timeout_ns: u64) -> bool {
        let timeout_ns = if self.kind == Kind::Polling { timeout_ns.min(POLLING_NS) } else { timeout_ns };
        matches!(self.event.wait(timeout_ns), Ok(bits) if bits != 0)
    }

    /// Unmask a legacy line after the device's cause was cleared (no-op
    /// for MSI and polling).
    pub fn ack(&self) {
        if let (Kind::Intx, Some(r)) = (self.kind, self.resource.as_ref()) {
            let _ = sys::irq_ack(r.raw());
        }
    }
}

/// A point in time after which a wait gives up.
#[derive(Clone, Copy, Debug)]
pub struct Deadline(u64);

impl Deadline {
    /// `ns` from now.
    pub fn after(ns: u64) -> Deadline {
        Deadline(libos::time::now_ns().saturating_add(ns))
    }

    /// Whether it has passed.
    pub fn expired(&self) -> bool {
        libos::time::now_ns() >= self.0
    }

    /// The next wait: at most [`POLL_NS`], never past the deadline.
    pub fn slice(&self) -> u64 {
        self.0.saturating_sub(libos::time::now_ns()).clamp(1, POLL_NS)
    }
}

/// Poll `done` until it holds or `timeout_ns` passes, sleeping in short
/// slices in between (for setup steps with no interrupt: resets, link
/// training). `Err(Timeout)` if it never held.
pub fn poll_until(timeout_ns: u64, mut done: impl FnMut() -> bool) -> Result<(), DeviceError> {
    let deadline = Deadline::after(timeout_ns);
    let sleeper = Event::new().ok();
    loop {
        if done() {
            return Ok(());
        }
        if deadline.expired() {
            return Err(DeviceError::Timeout);
        }
        match &sleeper {
            Some(e) => {
                let _ = e.wait(deadline.slice().min(1_000_000));
            }
            None => sys::yield_now(),
        }
    }
}

/// Sleep for `ns` (link resets and the like).
pub fn sleep(ns: u64) {
    match Event::new() {
        Ok(e) => {
            let _ = e.wait(ns.max(1));
        }
        Err(_) => {
            let end = libos::time::now_ns().saturating_add(ns);
            while libos::time::now_ns() < end {
                sys::yield_now();
            }
        }
    }
}
