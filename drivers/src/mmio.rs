//! Device registers: ranges of a BAR asked of init as `mmio:0xBASE+LEN`
//! (page-aligned; init grants only ranges inside BARs of functions this
//! program owns), mapped uncached by the kernel, and bounds-checked
//! volatile access to them.
//!
//! Mappings live as long as the program (a driver set up again reuses
//! them) and are recorded so that a physical address inside one can be
//! turned into the address it is mapped at ([`lookup`]), which the virtio
//! HAL needs.

use crate::block::DeviceError;
use crate::dma::PAGE;
use alloc::format;
use alloc::vec::Vec;
use libos::handle::OwnedHandle;
use libos::{directory, sys, vm};

/// A mapped register range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mmio {
    virt: u64,
    phys: u64,
    len: usize,
}

static MAPPED: spin::Mutex<Vec<Mmio>> = spin::Mutex::new(Vec::new());

/// Map `len` bytes of device memory at `phys` (the enclosing pages are
/// mapped); reuses an earlier mapping that covers the range.
pub fn map(phys: u64, len: usize) -> Result<Mmio, DeviceError> {
    if len == 0 {
        return Err(DeviceError::device("empty register range"));
    }
    if let Some(virt) = lookup(phys, len) {
        return Ok(Mmio { virt, phys, len });
    }
    let base = phys & !(PAGE as u64 - 1);
    let end = phys
        .checked_add(len as u64)
        .and_then(|e| e.checked_add(PAGE as u64 - 1))
        .map(|e| e & !(PAGE as u64 - 1))
        .ok_or_else(|| DeviceError::device("register range overflows"))?;
    let pages = (end - base) / PAGE as u64;
    let name = format!("mmio:{base:#x}+{}", end - base);
    let resource = directory::device(&name).map_err(|e| DeviceError::Device(format!("{name}: {e}")))?;
    let resource = OwnedHandle::from_raw(resource);
    let va = vm::reserve(pages).map_err(|e| DeviceError::Device(format!("address space: {e}")))?;
    if let Err(e) = sys::mmio_map(resource.raw(), base, pages, va) {
        vm::release(va, pages);
        return Err(DeviceError::Device(format!("map {name}: {e}")));
    }
    let whole = Mmio { virt: va, phys: base, len: (end - base) as usize };
    MAPPED.lock().push(whole);
    Ok(Mmio { virt: va + (phys - base), phys, len })
}

/// Where physical range `[phys, phys + len)` is mapped, if it is.
pub fn lookup(phys: u64, len: usize) -> Option<u64> {
    let end = phys.checked_add(len as u64)?;
    MAPPED.lock().iter().find(|m| phys >= m.phys && end <= m.phys + m.len as u64).map(|m| m.virt + (phys - m.phys))
}

impl Mmio {
    /// Physical base.
    pub fn phys(&self) -> u64 {
        self.phys
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where it is mapped.
    pub fn ptr(&self) -> *mut u8 {
        self.virt as *mut u8
    }

    /// The sub-range `[offset, offset + len)`, if inside.
    pub fn slice(&self, offset: usize, len: usize) -> Option<Mmio> {
        let end = offset.checked_add(len)?;
        (end <= self.len).then_some(Mmio { virt: self.virt + offset as u64, phys: self.phys + offset as u64, len })
    }

    fn ok(&self, offset: usize, n: usize) -> bool {
        offset.checked_add(n).is_some_and(|e| e <= self.len) && offset.is_multiple_of(n)
    }
}

macro_rules! register_access {
    ($read:ident, $write:ident, $t:ty) => {
        impl Mmio {
            /// Volatile register load (all ones outside the range: reads
            /// like a missing device).
            pub fn $read(&self, offset: usize) -> $t {
                if !self.ok(offset, core::mem::size_of::<$t>()) {
                    debug_assert!(false, "register read outside the range");
                    return <$t>::MAX;
                }
                // SAFETY: inside the mapped, uncached range (checked) and
                // aligned to the access size.
                unsafe { core::ptr::read_volatile((self.virt + offset as u64) as *const $t) }
            }

            /// Volatile register store (ignored outside the range).
            pub fn $write(&self, offset: usize, value: $t) {
                if !self.ok(offset, core::mem::size_of::<$t>()) {
                    debug_assert!(false, "register write outside the range");
                    return;
                }
                // SAFETY: as for the load.
                unsafe { core::ptr::write_volatile((self.virt + offset as u64) as *mut $t, value) }
            }
        }
    };
}

register_access!(read8, write8, u8);
register_access!(read16, write16, u16);
register_access!(read32, write32, u32);
