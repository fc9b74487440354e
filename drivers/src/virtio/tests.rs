//! The virtio capability checks, against a simulated configuration space
//! laid out like QEMU's virtio-pci (structures in a 16 KiB BAR 4).

use super::*;
use alloc::vec::Vec;

const BAR4: u64 = 0xfe00_0000;

struct Space {
    bytes: [u8; 256],
    caps: Vec<(u8, u8)>,
}

impl Space {
    fn new() -> Space {
        Space { bytes: [0; 256], caps: Vec::new() }
    }

    /// A virtio vendor capability at `at`.
    fn cap(&mut self, at: u8, kind: u8, bar: u8, offset: u32, len: u32, multiplier: Option<u32>) {
        let a = at as usize;
        self.bytes[a] = pci::cap::VENDOR;
        self.bytes[a + 2] = if multiplier.is_some() { 20 } else { 16 };
        self.bytes[a + 3] = kind;
        self.bytes[a + 4] = bar;
        self.bytes[a + 8..a + 12].copy_from_slice(&offset.to_le_bytes());
        self.bytes[a + 12..a + 16].copy_from_slice(&len.to_le_bytes());
        if let Some(m) = multiplier {
            self.bytes[a + 16..a + 20].copy_from_slice(&m.to_le_bytes());
        }
        self.caps.push((pci::cap::VENDOR, at));
    }

    fn qemu() -> Space {
        let mut s = Space::new();
        s.caps.push((pci::cap::MSIX, 0x98));
        s.cap(0x84, 1, 4, 0x0000, 0x1000, None);
        s.cap(0x70, 3, 4, 0x1000, 0x1000, None);
        s.cap(0x60, 4, 4, 0x2000, 0x1000, None);
        s.cap(0x4c, 2, 4, 0x3000, 0x1000, Some(4));
        s
    }

    fn parse(&self, bars: &[Bar; 6]) -> Result<Caps, String> {
        let read = |offset: u16, width: u8| {
            (0..width as usize).fold(0u32, |v, i| v | (self.bytes[(offset as usize + i) & 0xff] as u32) << (8 * i))
        };
        parse_caps(&read, &self.caps, bars)
    }
}

fn bars() -> [Bar; 6] {
    let mut b = [Bar::None; 6];
    b[1] = Bar::Memory { base: 0xfebd_1000, size: 0x1000, prefetchable: false };
    b[4] = Bar::Memory { base: BAR4, size: 0x4000, prefetchable: true };
    b
}

#[test]
fn finds_qemu_structures() {
    let caps = Space::qemu().parse(&bars()).unwrap();
    assert_eq!(caps.common, Region { bar: 4, offset: 0, len: 0x1000, phys: BAR4 });
    assert_eq!(caps.isr.phys, BAR4 + 0x1000);
    assert_eq!(caps.device.unwrap().phys, BAR4 + 0x2000);
    assert_eq!((caps.notify.phys, caps.notify_multiplier), (BAR4 + 0x3000, 4));
}

#[test]
fn first_structure_of_a_kind_wins() {
    let mut s = Space::qemu();
    s.cap(0xb0, 1, 4, 0x3800, 0x100, None);
    assert_eq!(s.parse(&bars()).unwrap().common.offset, 0);
}

#[test]
fn structures_outside_their_bar_are_refused() {
    let mut s = Space::new();
    s.cap(0x84, 1, 4, 0x3f00, 0x1000, None);
    assert!(s.parse(&bars()).unwrap_err().contains("outside BAR 4"));
    let mut s = Space::new();
    s.cap(0x84, 1, 4, 0xffff_ff00, 0x1000, None);
    assert!(s.parse(&bars()).is_err(), "offset + length overflowing 32 bits");
    let mut s = Space::new();
    s.cap(0x84, 1, 2, 0, 0x1000, None);
    assert!(s.parse(&bars()).unwrap_err().contains("not a memory BAR"));
    let mut s = Space::new();
    s.cap(0x84, 1, 9, 0, 0x1000, None);
    assert!(s.parse(&bars()).is_err(), "BAR index out of range");
}

#[test]
fn missing_or_short_structures_are_refused() {
    let mut s = Space::qemu();
    s.caps.retain(|&(_, at)| at != 0x4c);
    assert!(s.parse(&bars()).unwrap_err().contains("notification"));
    let mut s = Space::new();
    s.cap(0x84, 1, 4, 0, 0x20, None);
    s.cap(0x4c, 2, 4, 0x3000, 0x1000, Some(4));
    s.cap(0x70, 3, 4, 0x1000, 1, None);
    assert!(s.parse(&bars()).unwrap_err().contains("too short"));
    let mut s = Space::qemu();
    s.bytes[0x4c + 16] = 3; // odd multiplier
    assert!(s.parse(&bars()).is_err());
}

#[test]
fn capabilities_near_the_end_of_config_space_are_refused() {
    let mut s = Space::new();
    s.caps.push((pci::cap::VENDOR, 0xf0));
    assert!(s.parse(&bars()).unwrap_err().contains("runs off"));
}

#[test]
fn short_capabilities_are_skipped() {
    let mut s = Space::qemu();
    s.bytes[0x84 + 2] = 12; // the common configuration's capability is too short
    assert!(s.parse(&bars()).unwrap_err().contains("no virtio common"));
}
