//! Device resources: the root (held by init), and what it derives: I/O port
//! ranges, MMIO ranges, interrupt lines, MSI vectors (returned to the pool
//! when the last handle goes), PCI configuration space (whose function
//! loses bus mastering when the last handle goes) and the console.

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
        match self.kind {
            ResourceKind::Msi => crate::irq::free_msi(self.base),
            ResourceKind::PciConfig => stop_bus_mastering(self.base as u32),
            _ => {}
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

/// PCI command register offset and its bus-master bit.
const PCI_COMMAND: u16 = 4;
const BUS_MASTER: u32 = 1 << 2;

/// Stop `function` from reaching memory: its driver is gone (a crashed
/// driver never resets its device), and the frames it gave the device
/// for DMA are about to be freed and reused. The next driver turns bus
/// mastering on again when it has set the device up afresh. Runs while
/// the process's handles are dropped, before its memory is freed.
fn stop_bus_mastering(function: u32) {
    let command = crate::arch::cpu::pci_config_read(function, PCI_COMMAND, 2);
    if command & BUS_MASTER != 0 {
        crate::arch::cpu::pci_config_write(function, PCI_COMMAND, 2, command & !BUS_MASTER);
    }
}
