//! AHCI (SATA), written by hand: the HBA of QEMU's q35 machine (ICH9,
//! 8086:2922) and any AHCI 1.x controller in AHCI mode.
//!
//! Setup takes the HBA from the firmware (BIOS/OS handoff), resets it,
//! enables AHCI mode, brings up every implemented port that has a link and
//! keeps each one whose device signs as an ATA disk ([`port`]), polling
//! meanwhile; only if it found a disk does it take an interrupt (MSI, else
//! the INTx line), so a controller with nothing on it costs no vector. The
//! HBA is shared by its disks; its interrupt wakes whichever disk is
//! waiting, which collects the per-port status bits the handler latched.
//!
//! - [`regs`]: register offsets and bits;
//! - [`fis`]: the command FIS, command header and PRDT, built as values;
//! - [`identify`]: decoding IDENTIFY DEVICE;
//! - [`port`]: one disk: its command list, command slots and transfers.

pub mod fis;
pub mod identify;
pub mod port;
pub mod regs;

use crate::block::DeviceError;
use crate::irq::{poll_until, Interrupt};
use crate::mmio::Mmio;
use crate::pcidev::PciDevice;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;

pub use port::AhciDisk;

/// The controller, shared by its disks.
pub struct Hba {
    regs: Mmio,
    irq: RefCell<Interrupt>,
    /// Port interrupt status collected by [`Hba::service`], per port.
    latched: RefCell<[u32; 32]>,
    /// Whether the HBA can address memory above 4 GiB.
    s64a: bool,
    /// Command slots per port.
    slots: usize,
    dev: PciDevice,
}

/// Bytes of ABAR used: the global registers and 32 ports.
const ABAR_LEN: u64 = (regs::PORT_BASE + 32 * regs::PORT_SIZE) as u64;

/// Set up the AHCI controller on a granted function; one disk per port
/// with an ATA disk, in port order.
pub fn disks(dev: PciDevice) -> Result<Vec<AhciDisk>, DeviceError> {
    let (_, size) = dev.memory_bar(5)?;
    if size < regs::PORT_BASE as u64 {
        return Err(DeviceError::device("ABAR too small"));
    }
    let regs = dev.map_bar(5, 0, size.min(ABAR_LEN) as usize)?;
    dev.enable();
    handoff(&regs);
    // Reset the HBA: whatever the firmware left running stops.
    regs.write32(regs::GHC, regs.read32(regs::GHC) | regs::GHC_AE);
    regs.write32(regs::GHC, regs::GHC_AE | regs::GHC_HR);
    poll_until(1_000_000_000, || regs.read32(regs::GHC) & regs::GHC_HR == 0)
        .map_err(|_| DeviceError::device("HBA reset did not finish"))?;
    regs.write32(regs::GHC, regs::GHC_AE);
    let cap = regs.read32(regs::CAP);
    let implemented = regs.read32(regs::PI);
    regs.write32(regs::IS, u32::MAX);
    let vs = regs.read32(regs::VS);
    let hba = Rc::new(Hba {
        regs,
        irq: RefCell::new(Interrupt::polling()?),
        latched: RefCell::new([0; 32]),
        s64a: cap & regs::CAP_S64A != 0,
        slots: ((cap >> 8) & 0x1f) as usize + 1,
        dev,
    });
    let mut disks = Vec::new();
    for p in (0..32).filter(|p| implemented & (1 << p) != 0) {
        match AhciDisk::probe(hba.clone(), p) {
            Ok(Some(d)) => disks.push(d),
            Ok(None) => {}
            Err(e) => log::warn!("AHCI port {p}: {e}"),
        }
    }
    if !disks.is_empty() {
        // Ports keep their status bits, so nothing is lost in the switch.
        if let Ok(irq) = hba.dev.interrupt() {
            *hba.irq.borrow_mut() = irq;
        }
        hba.regs.write32(regs::GHC, regs::GHC_AE | regs::GHC_IE);
    }
    // The q35 machine always has this controller; say so only if it has disks.
    let level = if disks.is_empty() { log::Level::Debug } else { log::Level::Info };
    log::log!(
        level,
        "AHCI {}: version {}.{}, {} slots, ports {implemented:#x}, {} disk(s), interrupts: {}",
        hba.dev.name(),
        vs >> 16,
        (vs >> 8) & 0xff,
        hba.slots,
        disks.len(),
        hba.irq.borrow().describe()
    );
    Ok(disks)
}

/// Ask the firmware to hand the HBA over, if it supports the handshake.
fn handoff(regs: &Mmio) {
    if regs.read32(regs::CAP2) & regs::CAP2_BOH == 0 {
        return;
    }
    regs.write32(regs::BOHC, regs.read32(regs::BOHC) | regs::BOHC_OOS);
    // The BIOS has 25 ms to let go, 2 s more if it says it is busy.
    let _ = poll_until(25_000_000, || regs.read32(regs::BOHC) & regs::BOHC_BOS == 0);
    if regs.read32(regs::BOHC) & regs::BOHC_BB != 0 {
        let _ = poll_until(2_000_000_000, || regs.read32(regs::BOHC) & regs::BOHC_BOS == 0);
    }
}

impl Hba {
    /// Port `n`'s registers, if inside the mapped ABAR.
    fn port_regs(&self, n: usize) -> Option<Mmio> {
        self.regs.slice(regs::port(n), regs::PORT_SIZE)
    }

    /// After an interrupt: move every pending port status into `latched`,
    /// clear it at the HBA, and unmask a legacy line.
    fn service(&self) {
        let is = self.regs.read32(regs::IS);
        for p in (0..32).filter(|p| is & (1 << p) != 0) {
            if let Some(pr) = self.port_regs(p) {
                let pis = pr.read32(regs::P_IS);
                pr.write32(regs::P_IS, pis);
                self.latched.borrow_mut()[p] |= pis;
            }
        }
        self.regs.write32(regs::IS, is);
        self.irq.borrow().ack();
    }

    /// Take the status latched for port `n`.
    fn take_latched(&self, n: usize) -> u32 {
        self.latched.borrow_mut().get_mut(n).map(core::mem::take).unwrap_or(0)
    }

    /// Wait up to `ns` for the interrupt, servicing it if it came.
    fn wait(&self, ns: u64) {
        let fired = self.irq.borrow().wait(ns);
        if fired {
            self.service();
        }
    }
}

impl Drop for Hba {
    fn drop(&mut self) {
        // Interrupts off, then a reset: nothing keeps running into memory
        // this program is about to give back.
        self.regs.write32(regs::GHC, regs::GHC_AE);
        self.regs.write32(regs::GHC, regs::GHC_AE | regs::GHC_HR);
        let _ = poll_until(1_000_000_000, || self.regs.read32(regs::GHC) & regs::GHC_HR == 0);
    }
}
