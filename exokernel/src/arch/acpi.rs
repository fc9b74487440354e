//! ACPI, read with the `acpi` crate: where the interrupt controllers are
//! (MADT), how ISA interrupts are wired (overrides), and how to power off
//! (FADT PM1 control blocks plus the `\_S5` sleep type from the DSDT, found
//! by the usual byte scan rather than a full AML interpreter).

use crate::boot::AcpiRoot;
use crate::mem::phys_to_virt;
use acpi::fadt::Fadt;
use acpi::madt::{Madt, MadtEntry};
use acpi::{AcpiHandler, AcpiTables, PhysicalMapping};
use alloc::vec::Vec;
use core::ptr::NonNull;

#[derive(Clone)]
struct DirectMap;

impl AcpiHandler for DirectMap {
    unsafe fn map_physical_region<T>(&self, pa: usize, size: usize) -> PhysicalMapping<Self, T> {
        let va = NonNull::new(phys_to_virt(pa as u64) as *mut T).expect("direct map is never null");
        // SAFETY: the firmware's tables lie in low physical memory, which the
        // direct map covers; the mapping is never unmapped.
        unsafe { PhysicalMapping::new(pa, va, size, size, DirectMap) }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

/// An I/O APIC.
#[derive(Clone, Copy, Debug)]
pub struct IoApicInfo {
    /// Physical address of its registers.
    pub address: u64,
    /// First GSI it serves.
    pub gsi_base: u32,
}

/// An ISA interrupt that is wired to another GSI, or with other polarity.
#[derive(Clone, Copy, Debug)]
pub struct Override {
    /// ISA IRQ.
    pub irq: u8,
    /// GSI it arrives on.
    pub gsi: u32,
    /// MPS INTI flags (polarity bits 0-1, trigger bits 2-3).
    pub flags: u16,
}

/// What the kernel learned from ACPI.
#[derive(Clone, Debug, Default)]
pub struct Platform {
    /// Local APIC registers.
    pub lapic_address: u64,
    /// The I/O APICs.
    pub ioapics: Vec<IoApicInfo>,
    /// ISA overrides.
    pub overrides: Vec<Override>,
    /// PM1a control I/O port, and PM1b's if any.
    pub pm1_control: Option<(u16, Option<u16>)>,
    /// `\_S5` SLP_TYPa and SLP_TYPb.
    pub s5: Option<(u8, u8)>,
}

impl Platform {
    /// The GSI and the trigger flags an ISA IRQ arrives with.
    pub fn isa_gsi(&self, irq: u8) -> (u32, u16) {
        self.overrides.iter().find(|o| o.irq == irq).map(|o| (o.gsi, o.flags)).unwrap_or((irq as u32, 0))
    }
}

static PLATFORM: spin::Once<Platform> = spin::Once::new();

/// The platform description read at boot.
pub fn platform() -> &'static Platform {
    PLATFORM.get().expect("acpi::init ran at boot")
}

/// Read the tables. Without ACPI the PC defaults are assumed.
pub fn init(root: AcpiRoot) -> &'static Platform {
    PLATFORM.call_once(|| {
        let mut p = Platform { lapic_address: 0xfee0_0000, ..Platform::default() };
        // SAFETY: the addresses come from the boot loader or the BIOS scan
        // and point at firmware tables in the direct map.
        let tables = unsafe {
            match root {
                AcpiRoot::SearchBios => AcpiTables::search_for_rsdp_bios(DirectMap),
                AcpiRoot::Sdt { revision, address } => AcpiTables::from_rsdt(DirectMap, revision, address as usize),
            }
        };
        let Ok(tables) = tables else {
            kprintln!("kernel: warning: acpi: no tables found, assuming PC defaults");
            p.ioapics.push(IoApicInfo { address: 0xfec0_0000, gsi_base: 0 });
            return p;
        };
        if let Ok(madt) = tables.find_table::<Madt>() {
            p.lapic_address = { madt.get().local_apic_address } as u64;
            for entry in madt.get().entries() {
                match entry {
                    MadtEntry::IoApic(io) => p.ioapics.push(IoApicInfo {
                        address: io.io_apic_address as u64,
                        gsi_base: io.global_system_interrupt_base,
                    }),
                    MadtEntry::InterruptSourceOverride(o) if o.bus == 0 => {
                        p.overrides.push(Override { irq: o.irq, gsi: o.global_system_interrupt, flags: o.flags })
                    }
                    MadtEntry::LocalApicAddressOverride(o) => p.lapic_address = o.local_apic_address,
                    _ => {}
                }
            }
        }
        if p.ioapics.is_empty() {
            p.ioapics.push(IoApicInfo { address: 0xfec0_0000, gsi_base: 0 });
        }
        if let Ok(fadt) = tables.find_table::<Fadt>() {
            let port = |g: acpi::address::GenericAddress| u16::try_from(g.address).ok();
            if let Some(a) = fadt.pm1a_control_block().ok().and_then(port) {
                let b = fadt.pm1b_control_block().ok().flatten().and_then(port);
                p.pm1_control = Some((a, b));
            }
        }
        if let Ok(dsdt) = tables.dsdt() {
            // SAFETY: the DSDT's AML stream lies in firmware memory in the
            // direct map; its length comes from its header.
            let aml = unsafe { core::slice::from_raw_parts(phys_to_virt(dsdt.address as u64), dsdt.length as usize) };
            p.s5 = find_s5(aml);
        }
        p
    })
}

/// Find `Name(_S5, Package(){a, b, ...})` in AML and return (a, b).
fn find_s5(aml: &[u8]) -> Option<(u8, u8)> {
    let at = aml.windows(4).position(|w| w == b"_S5_")?;
    let named = (at >= 1 && aml[at - 1] == 0x08) || (at >= 2 && aml[at - 2] == 0x08 && aml[at - 1] == b'\\');
    if !named || *aml.get(at + 4)? != 0x12 {
        return None;
    }
    let mut p = at + 5;
    p += ((aml.get(p)? & 0xc0) >> 6) as usize + 1; // PkgLength
    p += 1; // NumElements
    let mut value = || -> Option<u8> {
        let mut b = *aml.get(p)?;
        if b == 0x0a {
            p += 1;
            b = *aml.get(p)?;
        }
        p += 1;
        Some(b)
    };
    let a = value()?;
    let b = value()?;
    Some((a, b))
}

/// Turn the machine off; returns only if every method failed.
pub fn power_off() {
    use super::cpu::port_write;
    if let Some(p) = PLATFORM.get() {
        if let (Some((a, b)), Some((typa, typb))) = (p.pm1_control, p.s5) {
            port_write(a, 2, ((typa as u32) << 10) | (1 << 13));
            if let Some(b) = b {
                port_write(b, 2, ((typb as u32) << 10) | (1 << 13));
            }
        }
    }
    // Emulator fallbacks: QEMU (new and old), VirtualBox.
    port_write(0x604, 2, 0x2000);
    port_write(0xb004, 2, 0x2000);
    port_write(0x4004, 2, 0x3400);
}

/// Reset the machine; returns only if every method failed.
pub fn reset() {
    use super::cpu::port_write;
    port_write(0xcf9, 1, 0x02);
    port_write(0xcf9, 1, 0x06);
    port_write(0x64, 1, 0xfe);
}
