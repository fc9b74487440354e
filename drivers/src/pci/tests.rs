//! A simulated configuration space with a few functions, to test
//! enumeration, BAR probing and capability walking on the host.

use super::*;
use std::cell::RefCell;
use std::collections::HashMap;

/// A function's configuration space plus the size masks of its BARs.
#[derive(Clone)]
struct SimFunction {
    space: [u8; 256],
    bar_masks: [u32; 6],
}

#[derive(Default)]
struct Sim {
    functions: RefCell<HashMap<Address, SimFunction>>,
}

impl Sim {
    fn add(&self, f: Address, vendor: u16, device: u16, class: u32, bars: &[(usize, u32, u32)], caps: &[(u8, u8, u8)]) {
        let mut space = [0u8; 256];
        space[0..2].copy_from_slice(&vendor.to_le_bytes());
        space[2..4].copy_from_slice(&device.to_le_bytes());
        space[8..12].copy_from_slice(&class.to_le_bytes());
        let mut bar_masks = [0u32; 6];
        for &(i, value, mask) in bars {
            space[0x10 + 4 * i..0x14 + 4 * i].copy_from_slice(&value.to_le_bytes());
            bar_masks[i] = mask;
        }
        space[0x3d] = 1;
        if let Some(&(_, first, _)) = caps.first() {
            space[0x06] = 0x10;
            space[0x34] = first;
        }
        for &(id, at, next) in caps {
            space[at as usize] = id;
            space[at as usize + 1] = next;
        }
        self.functions.borrow_mut().insert(f, SimFunction { space, bar_masks });
    }
}

impl ConfigAccess for Sim {
    fn read(&self, f: Address, offset: u16, width: u8) -> u32 {
        let fs = self.functions.borrow();
        let Some(sf) = fs.get(&f) else { return u32::MAX >> (32 - 8 * width as u32) };
        let mut v = 0u32;
        for i in 0..width as usize {
            v |= (sf.space[(offset as usize + i) & 0xff] as u32) << (8 * i);
        }
        v
    }

    fn write(&self, f: Address, offset: u16, width: u8, value: u32) {
        let mut fs = self.functions.borrow_mut();
        let Some(sf) = fs.get_mut(&f) else { return };
        let mut value = value;
        if (0x10..0x28).contains(&offset) && width == 4 {
            let i = (offset as usize - 0x10) / 4;
            let kind_bits =
                u32::from_le_bytes(sf.space[offset as usize..offset as usize + 4].try_into().unwrap()) & 0xf;
            value = (value & sf.bar_masks[i]) | kind_bits;
        }
        for i in 0..width as usize {
            sf.space[(offset as usize + i) & 0xff] = (value >> (8 * i)) as u8;
        }
    }
}

#[test]
fn finds_functions_and_decodes_bars() {
    let sim = Sim::default();
    // A 32-bit memory BAR of 4 KiB and an I/O BAR of 32 ports.
    sim.add(
        address(0, 2, 0),
        0x8086,
        0x100e,
        0x0200_0000,
        &[(0, 0xfebc_0000, 0xffff_f000), (1, 0xc001, 0xffff_ffe1)],
        &[],
    );
    // A 64-bit prefetchable BAR of 16 KiB at 0x1_0000_0000, with MSI-X and MSI.
    sim.add(
        address(0, 3, 0),
        0x1af4,
        0x1042,
        0x0100_0000,
        &[(4, 0x0000_000c, 0xffff_c00c), (5, 0x1, 0xffff_ffff)],
        &[(cap::MSIX, 0x98, 0x84), (cap::MSI, 0x84, 0x0)],
    );
    let found = enumerate(&sim);
    assert_eq!(found.len(), 2);
    let e1000 = &found[0];
    assert_eq!((e1000.vendor, e1000.device, e1000.slot()), (0x8086, 0x100e, 2));
    assert_eq!(e1000.class, (2, 0, 0));
    assert_eq!(e1000.bars[0], Bar::Memory { base: 0xfebc_0000, size: 0x1000, prefetchable: false });
    assert_eq!(e1000.bars[1], Bar::Io { base: 0xc000, size: 32 });
    assert!(e1000.owns_memory(0xfebc_0000, 0x1000));
    assert!(!e1000.owns_memory(0xfebc_0000, 0x2000));
    assert!(e1000.owns_ports(0xc010, 16));
    assert!(!e1000.owns_ports(0xc010, 17));
    let virtio = &found[1];
    assert_eq!(virtio.bars[4], Bar::Memory { base: 0x1_0000_0000, size: 0x4000, prefetchable: true });
    assert_eq!(virtio.bars[5], Bar::None);
    assert_eq!(virtio.capability(cap::MSIX), Some(0x98));
    assert_eq!(virtio.capability(cap::MSI), Some(0x84));
}

#[test]
fn probing_restores_bars_and_command() {
    let sim = Sim::default();
    sim.add(address(0, 1, 0), 0x1234, 0x5678, 0, &[(0, 0xfe00_0000, 0xff00_0000)], &[]);
    sim.write(address(0, 1, 0), 4, 2, 0x7);
    enumerate(&sim);
    assert_eq!(sim.read(address(0, 1, 0), 0x10, 4), 0xfe00_0000);
    assert_eq!(sim.read(address(0, 1, 0), 4, 2), 0x7);
}

#[test]
fn a_looping_capability_list_stops() {
    let sim = Sim::default();
    sim.add(address(0, 1, 0), 0x1234, 0x5678, 0, &[], &[(cap::MSI, 0x40, 0x50), (cap::VENDOR, 0x50, 0x40)]);
    let f = &enumerate(&sim)[0];
    assert_eq!(f.capabilities.len(), MAX_CAPABILITIES);
}

#[test]
fn msi_is_programmed() {
    let sim = Sim::default();
    sim.add(address(0, 4, 0), 0x8086, 0x2922, 0x0106_0100, &[], &[(cap::MSI, 0x80, 0)]);
    // 64-bit capable MSI.
    sim.write(address(0, 4, 0), 0x82, 2, 0x80);
    let f = enumerate(&sim).remove(0);
    assert!(enable_msi(&sim, &f, 0xfee0_0000, 0x71));
    assert_eq!(sim.read(f.address, 0x84, 4), 0xfee0_0000);
    assert_eq!(sim.read(f.address, 0x8c, 2), 0x71);
    assert_eq!(sim.read(f.address, 0x82, 2) & 1, 1);
    assert_ne!(sim.read(f.address, 0x04, 2) & 0x400, 0, "INTx disabled");
}

#[test]
fn q35_legacy_lines() {
    // PIRQ E-H rotate over slots 0..=24 and 30.
    assert_eq!(q35_intx_gsi(0, 1, 1), Some(21));
    assert_eq!(q35_intx_gsi(0, 3, 1), Some(23));
    assert_eq!(q35_intx_gsi(0, 4, 1), Some(20));
    assert_eq!(q35_intx_gsi(0, 2, 4), Some(21));
    assert_eq!(q35_intx_gsi(0, 0x1e, 2), Some(23));
    // PIRQ A-D for the chipset's own slots.
    assert_eq!(q35_intx_gsi(0, 0x1f, 1), Some(16));
    assert_eq!(q35_intx_gsi(0, 0x1d, 3), Some(18));
    // No pin, a bad pin, or another bus: unknown.
    assert_eq!(q35_intx_gsi(0, 3, 0), None);
    assert_eq!(q35_intx_gsi(0, 3, 5), None);
    assert_eq!(q35_intx_gsi(1, 3, 1), None);
}
