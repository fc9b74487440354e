//! The PCI function a driver runs: its configuration space through the
//! kernel (the `PciConfig` handle init granted), its decoded BARs and
//! capabilities, and the steps every driver takes: turn on decoding and bus
//! mastering, map a memory BAR, get an interrupt (MSI where the function
//! has it, else its INTx line with q35 routing).

use crate::block::DeviceError;
use crate::irq::Interrupt;
use crate::mmio::{self, Mmio};
use crate::pci::{self, Bar, ConfigAccess, Function};
use alloc::format;
use libos::directory::PciFunction;
use libos::handle::OwnedHandle;
use libos::sys;

/// Configuration space access through the kernel.
pub struct KernelConfig(pub OwnedHandle);

impl ConfigAccess for KernelConfig {
    fn read(&self, f: pci::Address, offset: u16, width: u8) -> u32 {
        sys::pci_config_read(self.0.raw(), f, offset, width).unwrap_or(u32::MAX >> (32 - 8 * width.clamp(1, 4) as u32))
    }

    fn write(&self, f: pci::Address, offset: u16, width: u8, value: u32) {
        let _ = sys::pci_config_write(self.0.raw(), f, offset, width, value);
    }
}

/// A granted PCI function, opened.
pub struct PciDevice {
    /// Configuration access (for this function only).
    pub cfg: KernelConfig,
    /// What the function looks like.
    pub function: Function,
}

impl PciDevice {
    /// Open a function init granted (takes over its config handle).
    pub fn open(granted: PciFunction) -> Result<PciDevice, DeviceError> {
        let cfg = KernelConfig(OwnedHandle::from_raw(granted.config));
        let function = pci::read_function(&cfg, granted.address).ok_or(DeviceError::NoDevice)?;
        if function.capabilities.len() >= pci::MAX_CAPABILITIES {
            return Err(DeviceError::device("the capability list loops"));
        }
        Ok(PciDevice { cfg, function })
    }

    /// `bb:dd.f vvvv:dddd`, for messages.
    pub fn name(&self) -> alloc::string::String {
        let f = &self.function;
        format!("{:02x}:{:02x}.{} {:04x}:{:04x}", f.bus(), f.slot(), f.function(), f.vendor, f.device)
    }

    /// Turn on memory and I/O decoding and bus mastering.
    pub fn enable(&self) {
        pci::enable_device(&self.cfg, &self.function);
    }

    /// A memory BAR's (base, size).
    pub fn memory_bar(&self, index: usize) -> Result<(u64, u64), DeviceError> {
        match self.function.bars.get(index) {
            Some(Bar::Memory { base, size, .. }) if *base != 0 => Ok((*base, *size)),
            _ => Err(DeviceError::Device(format!("BAR {index} is not a memory BAR"))),
        }
    }

    /// Map `len` bytes at `offset` of memory BAR `index`.
    pub fn map_bar(&self, index: usize, offset: u64, len: usize) -> Result<Mmio, DeviceError> {
        let (base, size) = self.memory_bar(index)?;
        match offset.checked_add(len as u64) {
            Some(end) if end <= size => mmio::map(base + offset, len),
            _ => Err(DeviceError::Device(format!("range {offset:#x}+{len:#x} outside BAR {index} ({size:#x} bytes)"))),
        }
    }

    /// An MSI vector programmed into the function's MSI capability.
    pub fn msi(&self) -> Result<Interrupt, DeviceError> {
        if self.function.capability(pci::cap::MSI).is_none() {
            return Err(DeviceError::device("no MSI capability"));
        }
        let (irq, address, data) = Interrupt::msi()?;
        if !pci::enable_msi(&self.cfg, &self.function, address, data) {
            return Err(DeviceError::device("cannot enable MSI"));
        }
        Ok(irq)
    }

    /// The function's legacy interrupt line (MSI and MSI-X turned off).
    pub fn intx(&self) -> Result<Interrupt, DeviceError> {
        let f = &self.function;
        let gsi = pci::q35_intx_gsi(f.bus(), f.slot(), f.interrupt_pin)
            .ok_or_else(|| DeviceError::device("no legacy interrupt line known"))?;
        pci::disable_msi(&self.cfg, f);
        pci::enable_intx(&self.cfg, f);
        Interrupt::intx(gsi)
    }

    /// MSI if the function has it and a vector is available, else INTx,
    /// else polling.
    pub fn interrupt(&self) -> Result<Interrupt, DeviceError> {
        match self.msi() {
            Ok(irq) => return Ok(irq),
            Err(e) if self.function.capability(pci::cap::MSI).is_some() => {
                log::warn!("{}: MSI unavailable ({e}); using the legacy line", self.name());
            }
            Err(_) => {}
        }
        self.fallback()
    }

    /// INTx, else polling (an error only if not even an event can be made).
    pub fn fallback(&self) -> Result<Interrupt, DeviceError> {
        match self.intx() {
            Ok(irq) => Ok(irq),
            Err(e) => {
                log::warn!("{}: no interrupt ({e}); polling", self.name());
                pci::disable_intx(&self.cfg, &self.function);
                Interrupt::polling()
            }
        }
    }
}
