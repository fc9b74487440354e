//! virtio over PCI, on the `virtio-drivers` crate: its `PciTransport`
//! (modern virtio 1.x through memory BARs) and `VirtQueue`, with
//! Kintsugi's HAL ([`hal`]).
//!
//! What this module adds around the crate:
//! - it checks the function's virtio capabilities against its BARs before
//!   the crate sees them (the crate trusts them: out-of-range offsets would
//!   make it panic or touch unmapped memory) and maps every region;
//! - interrupts: virtio-drivers leaves MSI-X alone, so this module
//!   programs entry 0 of the MSI-X table (in its BAR) with an MSI vector
//!   from init and points the configuration and queue vectors of the common
//!   configuration structure at it ([`Virtio::route_queues`]); without
//!   MSI-X it falls back to the INTx line, acknowledged by reading the ISR;
//! - it checks each queue's notification offset, which the crate would
//!   index with unchecked.
//!
//! The devices: [`blk`] (block, its own request layer over `VirtQueue`
//! so that many requests are in flight and every wait has a timeout) and
//! [`net`] (over the crate's `VirtIONetRaw`).

pub mod blk;
pub mod hal;
pub mod net;

use crate::block::DeviceError;
use crate::irq::Interrupt;
use crate::mmio::{self, Mmio};
use crate::pci::{self, Bar};
use crate::pcidev::PciDevice;
use alloc::format;
use alloc::string::String;
use libos::abi::Handle;
use virtio_drivers::transport::pci::bus::{ConfigurationAccess, DeviceFunction, PciRoot};
use virtio_drivers::transport::pci::PciTransport;

pub use hal::KintsugiHal;

/// The virtio PCI vendor id.
pub const VENDOR: u16 = 0x1af4;
/// Block device ids (transitional, modern).
pub const BLOCK_IDS: [u16; 2] = [0x1001, 0x1042];
/// Network device ids (transitional, modern).
pub const NET_IDS: [u16; 2] = [0x1000, 0x1041];

/// "No vector" in the MSI-X vector registers.
const NO_VECTOR: u16 = 0xffff;

/// Offsets in the common configuration structure (virtio 1.x 4.1.4.3).
mod common {
    pub const DEVICE_FEATURE_SELECT: usize = 0x00;
    pub const DEVICE_FEATURE: usize = 0x04;
    pub const MSIX_CONFIG: usize = 0x10;
    pub const QUEUE_SELECT: usize = 0x16;
    pub const QUEUE_MSIX_VECTOR: usize = 0x1a;
    pub const QUEUE_NOTIFY_OFF: usize = 0x1e;
    /// Size of the structure.
    pub const SIZE: usize = 0x38;
}

/// One structure a virtio capability points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// BAR index.
    pub bar: u8,
    /// Offset in the BAR.
    pub offset: u64,
    /// Length in bytes.
    pub len: usize,
    /// Physical address.
    pub phys: u64,
}

/// The structures of a virtio PCI function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caps {
    /// Common configuration.
    pub common: Region,
    /// Queue notification area.
    pub notify: Region,
    /// Bytes between the notification addresses of consecutive offsets.
    pub notify_multiplier: u32,
    /// Interrupt status.
    pub isr: Region,
    /// Device-specific configuration.
    pub device: Option<Region>,
}

/// Find and check the virtio capabilities (picking the same ones
/// virtio-drivers will: the first of each type with a long-enough
/// capability). `read(offset, width)` reads the function's config space.
pub fn parse_caps(read: &dyn Fn(u16, u8) -> u32, caps: &[(u8, u8)], bars: &[Bar; 6]) -> Result<Caps, String> {
    let (mut common, mut notify, mut isr, mut device) = (None, None, None, None);
    let mut multiplier = 0;
    for &(id, at) in caps {
        if id != pci::cap::VENDOR {
            continue;
        }
        let at = at as u16;
        if at + 20 > 256 {
            return Err(format!("virtio capability at {at:#x} runs off the config space"));
        }
        let cap_len = read(at + 2, 1) as u8;
        let kind = read(at + 3, 1) as u8;
        if cap_len < 16 {
            continue;
        }
        let bar = read(at + 4, 1) as u8;
        let offset = read(at + 8, 4) as u64;
        let len = read(at + 12, 4) as u64;
        let region = || -> Result<Region, String> {
            let Some(Bar::Memory { base, size, .. }) = bars.get(bar as usize).copied() else {
                return Err(format!("virtio structure {kind} in BAR {bar}, which is not a memory BAR"));
            };
            if base == 0 || offset + len > size {
                return Err(format!(
                    "virtio structure {kind} at {offset:#x}+{len:#x} outside BAR {bar} ({size:#x} bytes)"
                ));
            }
            Ok(Region { bar, offset, len: len as usize, phys: base + offset })
        };
        match kind {
            1 if common.is_none() => common = Some(region()?),
            2 if cap_len >= 20 && notify.is_none() => {
                notify = Some(region()?);
                multiplier = read(at + 16, 4);
            }
            3 if isr.is_none() => isr = Some(region()?),
            4 if device.is_none() => device = Some(region()?),
            _ => {}
        }
    }
    let common = common.ok_or("no virtio common configuration")?;
    if common.len < common::SIZE {
        return Err(format!("virtio common configuration too short ({} bytes)", common.len));
    }
    let notify = notify.ok_or("no virtio notification area")?;
    if notify.len < 2 || multiplier % 2 != 0 {
        return Err(format!("bad virtio notification area ({} bytes, multiplier {multiplier})", notify.len));
    }
    let isr = isr.ok_or("no virtio ISR status")?;
    if isr.len == 0 {
        return Err("empty virtio ISR status".into());
    }
    Ok(Caps { common, notify, notify_multiplier: multiplier, isr, device })
}

/// The config-space access virtio-drivers wants, over the kernel's.
struct VirtioConfig {
    handle: Handle,
    address: pci::Address,
}

impl VirtioConfig {
    fn ours(&self, df: DeviceFunction) -> bool {
        pci::address(df.bus, df.device, df.function) == self.address
    }
}

impl ConfigurationAccess for VirtioConfig {
    fn read_word(&self, df: DeviceFunction, offset: u8) -> u32 {
        if !self.ours(df) || !offset.is_multiple_of(4) {
            return u32::MAX;
        }
        libos::sys::pci_config_read(self.handle, self.address, offset as u16, 4).unwrap_or(u32::MAX)
    }

    fn write_word(&mut self, df: DeviceFunction, offset: u8, data: u32) {
        if self.ours(df) && offset.is_multiple_of(4) {
            let _ = libos::sys::pci_config_write(self.handle, self.address, offset as u16, 4, data);
        }
    }

    unsafe fn unsafe_clone(&self) -> Self {
        VirtioConfig { handle: self.handle, address: self.address }
    }
}

/// A virtio PCI function being driven: what the transport does not keep.
pub struct Virtio {
    /// The function.
    pub dev: PciDevice,
    /// Its structures.
    pub caps: Caps,
    /// The common configuration, mapped.
    pub common: Mmio,
    /// The device configuration, mapped.
    pub device_cfg: Option<Mmio>,
    /// Its interrupt.
    pub irq: Interrupt,
    msix: bool,
}

/// Open a virtio function: check and map its structures, set up its
/// interrupt, and make the transport.
pub fn open(dev: PciDevice) -> Result<(Virtio, PciTransport), DeviceError> {
    if dev.function.vendor != VENDOR {
        return Err(DeviceError::NoDevice);
    }
    let read = |offset: u16, width: u8| pci::ConfigAccess::read(&dev.cfg, dev.function.address, offset, width);
    let caps = parse_caps(&read, &dev.function.capabilities, &dev.function.bars).map_err(DeviceError::Device)?;
    let common = mmio::map(caps.common.phys, caps.common.len)?;
    mmio::map(caps.notify.phys, caps.notify.len)?;
    mmio::map(caps.isr.phys, caps.isr.len)?;
    let device_cfg = match caps.device {
        Some(r) => Some(mmio::map(r.phys, r.len)?),
        None => None,
    };
    dev.enable();
    let (irq, msix) = match msix(&dev) {
        Ok(irq) => (irq, true),
        Err(e) => {
            if dev.function.capability(pci::cap::MSIX).is_some() {
                log::warn!("{}: MSI-X unavailable ({e}); using the legacy line", dev.name());
            }
            (dev.fallback()?, false)
        }
    };
    let f = &dev.function;
    let df = DeviceFunction { bus: f.bus(), device: f.slot(), function: f.function() };
    let mut root = PciRoot::new(VirtioConfig { handle: dev.cfg.0.raw(), address: f.address });
    let transport = PciTransport::new::<KintsugiHal, _>(&mut root, df)
        .map_err(|e| DeviceError::Device(format!("virtio transport: {e}")))?;
    Ok((Virtio { dev, caps, common, device_cfg, irq, msix }, transport))
}

/// Program MSI-X table entry 0 with a fresh MSI vector and enable MSI-X.
fn msix(dev: &PciDevice) -> Result<Interrupt, DeviceError> {
    let (bar, offset, entries) =
        pci::msix_table(&dev.cfg, &dev.function).ok_or_else(|| DeviceError::device("no MSI-X capability"))?;
    if entries == 0 {
        return Err(DeviceError::device("empty MSI-X table"));
    }
    let table = dev.map_bar(bar, offset as u64, 16)?;
    let (irq, address, data) = Interrupt::msi()?;
    table.write32(0, address as u32);
    table.write32(4, (address >> 32) as u32);
    table.write32(8, data);
    table.write32(12, 0); // unmasked
    if !pci::enable_msix(&dev.cfg, &dev.function) {
        return Err(DeviceError::device("cannot enable MSI-X"));
    }
    Ok(irq)
}

impl Virtio {
    /// Point the configuration-change vector and each queue's vector at
    /// MSI-X entry 0 (after the queues are set up; a device reset clears
    /// them). If the device refuses, the driver falls back to polling.
    pub fn route_queues(&mut self, queues: &[u16]) {
        if !self.msix {
            return;
        }
        let c = &self.common;
        c.write16(common::MSIX_CONFIG, 0);
        let mut ok = c.read16(common::MSIX_CONFIG) != NO_VECTOR;
        for &q in queues {
            c.write16(common::QUEUE_SELECT, q);
            c.write16(common::QUEUE_MSIX_VECTOR, 0);
            ok &= c.read16(common::QUEUE_MSIX_VECTOR) == 0;
        }
        if !ok {
            log::warn!("{}: the device refused MSI-X vectors; polling", self.dev.name());
            if let Ok(p) = Interrupt::polling() {
                self.irq = p;
                self.msix = false;
            }
        }
    }

    /// Check that each queue's notification address lies inside the
    /// notification area (virtio-drivers indexes it unchecked).
    pub fn check_notify(&self, queues: &[u16]) -> Result<(), DeviceError> {
        for &q in queues {
            self.common.write16(common::QUEUE_SELECT, q);
            let off = self.common.read16(common::QUEUE_NOTIFY_OFF) as u64;
            let at = off * self.caps.notify_multiplier as u64;
            if at + 2 > self.caps.notify.len as u64 {
                return Err(DeviceError::Device(format!("queue {q} notifies outside the notification area")));
            }
        }
        Ok(())
    }

    /// Whether the device offers feature bit `bit`.
    pub fn offers(&self, bit: u32) -> bool {
        self.common.write32(common::DEVICE_FEATURE_SELECT, bit / 32);
        self.common.read32(common::DEVICE_FEATURE) & (1 << (bit % 32)) != 0
    }

    /// How interrupts arrive: `msi-x`, `intx` or `polling`.
    pub fn interrupts(&self) -> &'static str {
        if self.msix {
            "msi-x"
        } else {
            self.irq.describe()
        }
    }
}

#[cfg(test)]
mod tests;
