//! Discovery: which driver takes which PCI function this program was
//! granted (its manifest entry names them; init hands them out with a
//! configuration handle each), in PCI order.
//!
//! - virtio-blk (1af4:1001 transitional, 1af4:1042 modern) and AHCI
//!   controllers (class 01:06, interface 01) give [`BlockDevice`]s, an AHCI
//!   controller one per port with a disk;
//! - virtio-net (1af4:1000, 1af4:1041) or else an Intel 8254x (QEMU's
//!   `e1000`, 8086:100e, and its 82544/82545 variants) gives the
//!   [`NetDevice`].
//!
//! A function whose driver fails to start is skipped with a warning.

use crate::ahci;
use crate::block::BlockDevice;
use crate::e1000;
use crate::net::NetDevice;
use crate::pcidev::PciDevice;
use crate::virtio::{self, blk::VirtioBlk, net::VirtioNet};
use alloc::boxed::Box;
use alloc::vec::Vec;
use libos::directory::{self, PciFunction};

/// What a function is, as far as these drivers care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// virtio-blk.
    VirtioBlk,
    /// virtio-net.
    VirtioNet,
    /// An AHCI SATA controller.
    Ahci,
    /// An Intel 8254x gigabit controller.
    E1000,
}

/// Which driver takes a function with these ids and class.
pub fn kind(vendor: u16, device: u16, class: (u8, u8, u8)) -> Option<Kind> {
    match (vendor, device) {
        (virtio::VENDOR, d) if virtio::BLOCK_IDS.contains(&d) => Some(Kind::VirtioBlk),
        (virtio::VENDOR, d) if virtio::NET_IDS.contains(&d) => Some(Kind::VirtioNet),
        (0x8086, d) if e1000::DEVICE_IDS.contains(&d) => Some(Kind::E1000),
        _ if class == (0x01, 0x06, 0x01) => Some(Kind::Ahci),
        _ => None,
    }
}

/// The granted functions in PCI order, each with what it is.
fn granted() -> Vec<(PciFunction, Option<Kind>)> {
    let mut list = match directory::pci_functions() {
        Ok(l) => l,
        Err(e) => {
            log::warn!("no PCI functions: {e}");
            return Vec::new();
        }
    };
    list.sort_by_key(|f| f.address);
    list.into_iter()
        .map(|f| {
            let k = kind(f.vendor, f.device, f.class);
            (f, k)
        })
        .collect()
}

fn close(f: PciFunction) {
    let _ = libos::sys::handle_close(f.config);
}

/// Every block device on the PCI functions this program was granted, in PCI order
/// (for AHCI: one per implemented port with a disk, in port order).
pub fn block_devices() -> Vec<Box<dyn BlockDevice>> {
    let mut out: Vec<Box<dyn BlockDevice>> = Vec::new();
    for (f, k) in granted() {
        let address = f.address;
        match k {
            Some(Kind::VirtioBlk) => match PciDevice::open(f).and_then(VirtioBlk::new) {
                Ok(d) => out.push(Box::new(d)),
                Err(e) => log::warn!("virtio-blk at {address:#x}: {e}"),
            },
            Some(Kind::Ahci) => match PciDevice::open(f).and_then(ahci::disks) {
                Ok(disks) => out.extend(disks.into_iter().map(|d| Box::new(d) as Box<dyn BlockDevice>)),
                Err(e) => log::warn!("AHCI at {address:#x}: {e}"),
            },
            _ => close(f),
        }
    }
    out
}

/// The first network device granted (virtio-net preferred, else e1000).
pub fn net_device() -> Option<Box<dyn NetDevice>> {
    let functions = granted();
    let mut virtio = Vec::new();
    let mut intel = Vec::new();
    for (f, k) in functions {
        match k {
            Some(Kind::VirtioNet) => virtio.push(f),
            Some(Kind::E1000) => intel.push(f),
            _ => close(f),
        }
    }
    let mut found: Option<Box<dyn NetDevice>> = None;
    for f in virtio {
        if found.is_some() {
            close(f);
            continue;
        }
        let address = f.address;
        match PciDevice::open(f).and_then(VirtioNet::new) {
            Ok(d) => found = Some(Box::new(d)),
            Err(e) => log::warn!("virtio-net at {address:#x}: {e}"),
        }
    }
    for f in intel {
        if found.is_some() {
            close(f);
            continue;
        }
        let address = f.address;
        match PciDevice::open(f).and_then(e1000::E1000::new) {
            Ok(d) => found = Some(Box::new(d)),
            Err(e) => log::warn!("e1000 at {address:#x}: {e}"),
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_map_to_drivers() {
        assert_eq!(kind(0x1af4, 0x1001, (1, 0, 0)), Some(Kind::VirtioBlk));
        assert_eq!(kind(0x1af4, 0x1042, (1, 0, 0)), Some(Kind::VirtioBlk));
        assert_eq!(kind(0x1af4, 0x1000, (2, 0, 0)), Some(Kind::VirtioNet));
        assert_eq!(kind(0x1af4, 0x1041, (2, 0, 0)), Some(Kind::VirtioNet));
        assert_eq!(kind(0x8086, 0x100e, (2, 0, 0)), Some(Kind::E1000));
        assert_eq!(kind(0x8086, 0x2922, (1, 6, 1)), Some(Kind::Ahci));
        assert_eq!(kind(0x8086, 0x2922, (1, 1, 0x80)), None, "IDE mode is not AHCI");
        assert_eq!(kind(0x1af4, 0x1005, (0xff, 0, 0)), None, "virtio-rng");
    }
}
