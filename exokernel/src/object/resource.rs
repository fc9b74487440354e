//! Device resources: the root (held by init), and what it derives: I/O port
//! ranges, MMIO ranges, interrupt lines, MSI vectors (returned to the pool
//! when the last handle goes), PCI configuration space and the console.

use kintsugi_abi::ResourceKind;

/// A grant of some part of the machine.
#[derive(Debug)]
pub struct Resource {
    /// What kind of resource.
    pub kind: ResourceKind,
    /// First port, first physical address, or the GSI.
    pub base: u64,
    /// Number of ports or bytes, or the IRQ flags.
    pub len: u64,
}

impl Drop for Resource {
    fn drop(&mut self) {
        if self.kind == ResourceKind::Msi {
            crate::irq::free_msi(self.base);
        }
    }
}

impl Resource {
    /// Whether `[start, start + len)` lies inside this range resource.
    pub fn covers(&self, start: u64, len: u64) -> bool {
        match start.checked_add(len) {
            Some(end) => start >= self.base && end <= self.base + self.len && len > 0,
            None => false,
        }
    }
}
