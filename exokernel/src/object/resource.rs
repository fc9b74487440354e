//! Device resources: the root (held by init), and what it derives: I/O port
//! ranges, MMIO ranges, interrupt lines, MSI vectors (returned to the pool
//! when the last handle goes), PCI configuration space (whose function
//! loses bus mastering when the last grant of it goes) and the console.

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

/// Live grants of each PCI function's configuration space (by the
/// resource's first function): a driver's successor may be granted the
/// function before the old driver process is gone, and the old one's end
/// must not then stop the device under the new one.
static PCI_GRANTS: spin::Mutex<alloc::collections::BTreeMap<u32, u32>> =
    spin::Mutex::new(alloc::collections::BTreeMap::new());

impl Drop for Resource {
    fn drop(&mut self) {
        match self.kind {
            ResourceKind::Msi => crate::irq::free_msi(self.base),
            ResourceKind::PciConfig => {
                let function = self.base as u32;
                let last = {
                    let mut grants = PCI_GRANTS.lock();
                    let count = grants.entry(function).or_insert(1);
                    *count = count.saturating_sub(1);
                    let last = *count == 0;
                    if last {
                        grants.remove(&function);
                    }
                    last
                };
                if last {
                    stop_bus_mastering(function);
                }
            }
            _ => {}
        }
    }
}

impl Resource {
    /// A grant of `kind` at `base` (`len` ports, bytes or functions, or the
    /// IRQ flags).
    pub fn new(kind: ResourceKind, base: u64, len: u64) -> Resource {
        if kind == ResourceKind::PciConfig {
            *PCI_GRANTS.lock().entry(base as u32).or_insert(0) += 1;
        }
        Resource { kind, base, len }
    }

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

/// Stop `function` from reaching memory: its last driver is gone (a crashed
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
