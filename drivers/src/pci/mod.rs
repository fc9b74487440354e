//! PCI: finding functions on the bus, decoding their BARs (sizes are
//! probed by the usual write-all-ones dance), walking their capability
//! list, and programming MSI. Works over any [`ConfigAccess`]: the kernel's
//! `PciConfigRead/Write` calls in a program, or a simulated space in tests.
//!
//! Nothing read from a device is trusted blindly: capability pointers are
//! bounded and loops are capped, so a broken or hostile device cannot make
//! the walk run forever or index out of the configuration space.

use alloc::vec::Vec;

/// A function's address: `bus << 8 | device << 3 | function`.
pub type Address = u32;

/// The address of bus/device/function.
pub fn address(bus: u8, device: u8, function: u8) -> Address {
    ((bus as u32) << 8) | ((device as u32 & 0x1f) << 3) | (function as u32 & 7)
}

/// Reading and writing configuration space.
pub trait ConfigAccess {
    /// Read `width` (1, 2, 4) bytes at `offset` of function `f`; all ones
    /// when there is nothing there.
    fn read(&self, f: Address, offset: u16, width: u8) -> u32;
    /// Write them.
    fn write(&self, f: Address, offset: u16, width: u8, value: u32);
}

/// What a BAR decodes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bar {
    /// Not implemented.
    None,
    /// Memory space.
    Memory {
        /// Physical base.
        base: u64,
        /// Size in bytes (a power of two).
        size: u64,
        /// Prefetchable.
        prefetchable: bool,
    },
    /// I/O space.
    Io {
        /// First port.
        base: u16,
        /// Number of ports.
        size: u16,
    },
}

/// Capability ids this crate knows.
pub mod cap {
    /// Message-signalled interrupts.
    pub const MSI: u8 = 0x05;
    /// Vendor specific (virtio uses these).
    pub const VENDOR: u8 = 0x09;
    /// MSI-X.
    pub const MSIX: u8 = 0x11;
}

/// A function found on the bus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Function {
    /// Its address.
    pub address: Address,
    /// Vendor id.
    pub vendor: u16,
    /// Device id.
    pub device: u16,
    /// Class, subclass and programming interface.
    pub class: (u8, u8, u8),
    /// The six BARs (a 64-bit BAR fills two slots; the upper is `None`).
    pub bars: [Bar; 6],
    /// Interrupt pin (0 none, 1..4 INTA..INTD).
    pub interrupt_pin: u8,
    /// Capabilities as (id, offset).
    pub capabilities: Vec<(u8, u8)>,
}

impl Function {
    /// Bus number.
    pub fn bus(&self) -> u8 {
        (self.address >> 8) as u8
    }

    /// Device (slot) number.
    pub fn slot(&self) -> u8 {
        ((self.address >> 3) & 0x1f) as u8
    }

    /// Function number.
    pub fn function(&self) -> u8 {
        (self.address & 7) as u8
    }

    /// The offset of the first capability with `id`.
    pub fn capability(&self, id: u8) -> Option<u8> {
        self.capabilities.iter().find(|(c, _)| *c == id).map(|(_, o)| *o)
    }

    /// Whether `[base, base + len)` lies inside one of the memory BARs.
    pub fn owns_memory(&self, base: u64, len: u64) -> bool {
        self.bars.iter().any(|b| match b {
            Bar::Memory { base: b, size, .. } => base >= *b && base.checked_add(len).is_some_and(|e| e <= b + size),
            _ => false,
        })
    }

    /// Whether ports `[base, base + count)` lie inside one of the I/O BARs.
    pub fn owns_ports(&self, base: u16, count: u16) -> bool {
        self.bars.iter().any(|b| match b {
            Bar::Io { base: b, size } => base >= *b && (base as u32 + count as u32) <= (*b as u32 + *size as u32),
            _ => false,
        })
    }
}

/// Most capabilities a walk collects; a list this long is taken to loop.
pub const MAX_CAPABILITIES: usize = 48;

fn probe_bars(cfg: &dyn ConfigAccess, f: Address) -> [Bar; 6] {
    let mut bars = [Bar::None; 6];
    // Decode with memory and I/O decoding off, so probing cannot disturb
    // a live device, then restore the command register.
    let command = cfg.read(f, 0x04, 2);
    cfg.write(f, 0x04, 2, command & !0x3);
    let mut i = 0;
    while i < 6 {
        let offset = 0x10 + 4 * i as u16;
        let original = cfg.read(f, offset, 4);
        cfg.write(f, offset, 4, 0xffff_ffff);
        let mask = cfg.read(f, offset, 4);
        cfg.write(f, offset, 4, original);
        if original & 1 == 1 {
            let size = !(mask & 0xffff_fffc).wrapping_add(0) as u16;
            let size = size.wrapping_add(1);
            if mask & 0xffff_fffc != 0 && size != 0 {
                bars[i] = Bar::Io { base: (original & 0xffff_fffc) as u16, size };
            }
            i += 1;
            continue;
        }
        let is64 = (original >> 1) & 3 == 2;
        let prefetchable = original & 8 != 0;
        let mut base = (original & 0xffff_fff0) as u64;
        let mut mask64 = (mask & 0xffff_fff0) as u64 | 0xffff_ffff_0000_0000;
        if is64 && i < 5 {
            let hi_offset = offset + 4;
            let hi = cfg.read(f, hi_offset, 4);
            cfg.write(f, hi_offset, 4, 0xffff_ffff);
            let hi_mask = cfg.read(f, hi_offset, 4);
            cfg.write(f, hi_offset, 4, hi);
            base |= (hi as u64) << 32;
            mask64 = (mask64 & 0xffff_ffff) | ((hi_mask as u64) << 32);
        }
        let size = (!mask64).wrapping_add(1);
        if mask & 0xffff_fff0 != 0 && size != 0 && size.is_power_of_two() {
            bars[i] = Bar::Memory { base, size, prefetchable };
        }
        i += if is64 { 2 } else { 1 };
    }
    cfg.write(f, 0x04, 2, command);
    bars
}

fn capabilities(cfg: &dyn ConfigAccess, f: Address) -> Vec<(u8, u8)> {
    let mut out = Vec::new();
    if cfg.read(f, 0x06, 2) & 0x10 == 0 {
        return out;
    }
    let mut at = (cfg.read(f, 0x34, 1) & 0xfc) as u8;
    while at >= 0x40 && out.len() < MAX_CAPABILITIES {
        let id = cfg.read(f, at as u16, 1) as u8;
        out.push((id, at));
        at = (cfg.read(f, at as u16 + 1, 1) & 0xfc) as u8;
    }
    out
}

/// Read one function (None if nothing answers at `f`).
pub fn read_function(cfg: &dyn ConfigAccess, f: Address) -> Option<Function> {
    let id = cfg.read(f, 0, 4);
    let vendor = id as u16;
    if vendor == 0xffff || vendor == 0 {
        return None;
    }
    let class = cfg.read(f, 0x08, 4);
    let header = cfg.read(f, 0x0e, 1) & 0x7f;
    let bars = if header == 0 { probe_bars(cfg, f) } else { [Bar::None; 6] };
    Some(Function {
        address: f,
        vendor,
        device: (id >> 16) as u16,
        class: ((class >> 24) as u8, (class >> 16) as u8, (class >> 8) as u8),
        bars,
        interrupt_pin: if header == 0 { cfg.read(f, 0x3d, 1) as u8 } else { 0 },
        capabilities: capabilities(cfg, f),
    })
}

/// Every function on every bus reachable from bus 0 (bridges are followed
/// by their secondary bus number; each bus is scanned once).
pub fn enumerate(cfg: &dyn ConfigAccess) -> Vec<Function> {
    let mut found = Vec::new();
    let mut buses: Vec<u8> = Vec::from([0]);
    let mut next = 0;
    while next < buses.len() {
        let bus = buses[next];
        next += 1;
        for device in 0..32u8 {
            let Some(first) = read_function(cfg, address(bus, device, 0)) else { continue };
            let multi = cfg.read(first.address, 0x0e, 1) & 0x80 != 0;
            let mut functions = Vec::from([first]);
            if multi {
                functions.extend((1..8).filter_map(|n| read_function(cfg, address(bus, device, n))));
            }
            for f in functions {
                let header = cfg.read(f.address, 0x0e, 1) & 0x7f;
                if header == 1 {
                    let secondary = cfg.read(f.address, 0x19, 1) as u8;
                    if secondary != 0 && !buses.contains(&secondary) {
                        buses.push(secondary);
                    }
                }
                found.push(f);
            }
        }
    }
    found
}

/// Point a function's MSI capability at `(address, data)` with one vector
/// and enable it (legacy INTx is disabled). Returns false if the function
/// has no MSI capability.
pub fn enable_msi(cfg: &dyn ConfigAccess, f: &Function, address: u64, data: u32) -> bool {
    let Some(at) = f.capability(cap::MSI) else { return false };
    let at = at as u16;
    let control = cfg.read(f.address, at + 2, 2);
    let is64 = control & 0x80 != 0;
    cfg.write(f.address, at + 4, 4, address as u32);
    let data_at = if is64 {
        cfg.write(f.address, at + 8, 4, (address >> 32) as u32);
        at + 12
    } else {
        at + 8
    };
    cfg.write(f.address, data_at, 2, data);
    // One vector (multiple-message enable = 0), enable.
    cfg.write(f.address, at + 2, 2, (control & !0x70) | 1);
    disable_intx(cfg, f);
    true
}

/// Turn on bus mastering and memory/I/O decoding.
pub fn enable_device(cfg: &dyn ConfigAccess, f: &Function) {
    let command = cfg.read(f.address, 0x04, 2);
    cfg.write(f.address, 0x04, 2, command | 0x7);
}

/// Stop the function from raising its legacy interrupt line.
pub fn disable_intx(cfg: &dyn ConfigAccess, f: &Function) {
    let command = cfg.read(f.address, 0x04, 2);
    cfg.write(f.address, 0x04, 2, command | 0x400);
}

/// Let the function raise its legacy interrupt line again (undo
/// [`disable_intx`], e.g. after an earlier driver used MSI).
pub fn enable_intx(cfg: &dyn ConfigAccess, f: &Function) {
    let command = cfg.read(f.address, 0x04, 2);
    cfg.write(f.address, 0x04, 2, command & !0x400);
}

/// Turn MSI and MSI-X off (a driver falling back to INTx).
pub fn disable_msi(cfg: &dyn ConfigAccess, f: &Function) {
    if let Some(at) = f.capability(cap::MSI) {
        let control = cfg.read(f.address, at as u16 + 2, 2);
        cfg.write(f.address, at as u16 + 2, 2, control & !1);
    }
    if let Some(at) = f.capability(cap::MSIX) {
        let control = cfg.read(f.address, at as u16 + 2, 2);
        cfg.write(f.address, at as u16 + 2, 2, control & !0x8000);
    }
}

/// The GSI a bus-0 function's legacy interrupt arrives on with QEMU's q35
/// (ICH9) routing, as init computes it: PIRQ E-H (GSI 20-23) rotate over
/// slots 0-24 and 30, PIRQ A-D (GSI 16-19) serve slots 25-29 and 31.
/// `pin` is the config byte at 0x3d (1 = INTA); None without a pin.
pub fn q35_intx_gsi(bus: u8, slot: u8, pin: u8) -> Option<u32> {
    if bus != 0 || pin == 0 || pin > 4 || slot > 31 {
        return None;
    }
    let pin = (pin - 1) as u32;
    let slot = slot as u32;
    Some(match slot {
        0..=0x18 | 0x1e => 20 + (((slot & 3) + pin) & 3),
        _ => 16 + pin,
    })
}

/// Where a function's MSI-X table lives: (BAR index, offset, entries).
pub fn msix_table(cfg: &dyn ConfigAccess, f: &Function) -> Option<(usize, u32, u16)> {
    let at = f.capability(cap::MSIX)? as u16;
    let control = cfg.read(f.address, at + 2, 2);
    let table = cfg.read(f.address, at + 4, 4);
    Some(((table & 7) as usize, table & !7, (control & 0x7ff) as u16 + 1))
}

/// Enable MSI-X on a function whose table entries were programmed (and
/// disable INTx).
pub fn enable_msix(cfg: &dyn ConfigAccess, f: &Function) -> bool {
    let Some(at) = f.capability(cap::MSIX) else { return false };
    let control = cfg.read(f.address, at as u16 + 2, 2);
    cfg.write(f.address, at as u16 + 2, 2, (control | 0x8000) & !0x4000);
    disable_intx(cfg, f);
    true
}

#[cfg(test)]
mod tests;
