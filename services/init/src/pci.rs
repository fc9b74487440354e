//! The PCI functions of the machine and which program owns which: init
//! scans the bus once at boot (with configuration access over the whole
//! bus, derived from the root resource), grants the functions a program's
//! manifest entry names (`pci:VENDOR:DEVICE`, `pci:class:CLASS:SUBCLASS`)
//! to that program, and afterwards lets the program have only the BARs and
//! the interrupt line of its own functions.
//!
//! The legacy interrupt line of a function is found with the PCI routing
//! of QEMU's q35 machine (ICH9): PIRQ E-H (GSI 20-23) rotate over slots
//! 0-24, PIRQ A-D (GSI 16-19) serve slots 25-31. Other chipsets would need
//! the ACPI `_PRT`; devices with MSI or MSI-X do not need it at all.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use drivers::pci::{self, Address, ConfigAccess, Function};
use kintsugi_manifest::DeviceSpec;
use libos::abi::{Error, Handle, ResourceKind};
use libos::handle::OwnedHandle;
use libos::sys;

/// Configuration access through the kernel.
pub struct KernelConfig(pub Handle);

impl ConfigAccess for KernelConfig {
    fn read(&self, f: Address, offset: u16, width: u8) -> u32 {
        sys::pci_config_read(self.0, f, offset, width).unwrap_or(u32::MAX >> (32 - 8 * width as u32))
    }

    fn write(&self, f: Address, offset: u16, width: u8, value: u32) {
        let _ = sys::pci_config_write(self.0, f, offset, width, value);
    }
}

/// The bus and its owners.
pub struct Pci {
    functions: Vec<Function>,
    owners: BTreeMap<Address, String>,
    q35: bool,
}

const Q35_HOST_BRIDGE: (u16, u16) = (0x8086, 0x29c0);

impl Pci {
    /// Scan the bus.
    pub fn scan(root: Handle) -> Result<Pci, Error> {
        let whole_bus = OwnedHandle::from_raw(sys::resource_derive(root, ResourceKind::PciConfig, 0, 0x1_0000)?);
        let functions = pci::enumerate(&KernelConfig(whole_bus.raw()));
        let q35 = functions.iter().any(|f| f.address == 0 && (f.vendor, f.device) == Q35_HOST_BRIDGE);
        for f in &functions {
            log::info!(
                "pci {:02x}:{:02x}.{} {:04x}:{:04x} class {:02x}{:02x}",
                f.bus(),
                f.slot(),
                f.function(),
                f.vendor,
                f.device,
                f.class.0,
                f.class.1
            );
        }
        Ok(Pci { functions, owners: BTreeMap::new(), q35 })
    }

    fn matches(f: &Function, specs: &[DeviceSpec]) -> bool {
        specs.iter().any(|s| match *s {
            DeviceSpec::Pci { vendor, device } => (f.vendor, f.device) == (vendor, device),
            DeviceSpec::PciClass { class, subclass } => (f.class.0, f.class.1) == (class, subclass),
            _ => false,
        })
    }

    /// Grant `program` every function its `specs` name that no other
    /// program owns; each with a configuration handle for it alone.
    pub fn grant(
        &mut self,
        root: Handle,
        program: &str,
        specs: &[DeviceSpec],
        running: impl Fn(&str) -> bool,
    ) -> Result<Vec<(&Function, OwnedHandle)>, Error> {
        let mut out = Vec::new();
        for f in self.functions.iter().filter(|f| Self::matches(f, specs)) {
            // A function belongs to the first program granted it while any
            // process of that program runs; then it is free again.
            match self.owners.get(&f.address) {
                Some(owner) if owner != program && running(owner) => continue,
                _ => {}
            }
            self.owners.insert(f.address, String::from(program));
            let config = sys::resource_derive(root, ResourceKind::PciConfig, f.address as u64, 1)?;
            out.push((f, OwnedHandle::from_raw(config)));
        }
        Ok(out)
    }

    fn owned<'a>(&'a self, program: &'a str) -> impl Iterator<Item = &'a Function> + 'a {
        self.functions.iter().filter(move |f| self.owners.get(&f.address).is_some_and(|o| o == program))
    }

    /// Whether `program` owns a function with a memory BAR covering the range.
    pub fn owns_memory(&self, program: &str, base: u64, len: u64) -> bool {
        self.owned(program).any(|f| f.owns_memory(base, len))
    }

    /// Whether `program` owns a function with an I/O BAR covering the ports.
    pub fn owns_ports(&self, program: &str, base: u16, count: u16) -> bool {
        self.owned(program).any(|f| f.owns_ports(base, count))
    }

    /// The GSI a function's legacy interrupt arrives on, if known.
    pub fn intx_gsi(&self, f: &Function) -> Option<u32> {
        if !self.q35 || f.bus() != 0 || f.interrupt_pin == 0 || f.interrupt_pin > 4 {
            return None;
        }
        let pin = (f.interrupt_pin - 1) as u32;
        let slot = f.slot() as u32;
        Some(match slot {
            0..=0x18 | 0x1e => 20 + (((slot & 3) + pin) & 3),
            _ => 16 + pin,
        })
    }

    /// Whether `gsi` is the legacy interrupt of a function `program` owns.
    pub fn owns_gsi(&self, program: &str, gsi: u32) -> bool {
        self.owned(program).any(|f| self.intx_gsi(f) == Some(gsi))
    }
}
