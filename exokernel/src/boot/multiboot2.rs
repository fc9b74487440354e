//! Multiboot2 information (GRUB, BIOS or UEFI), read with the `multiboot2`
//! crate through the direct map.

use super::{module_name, AcpiRoot, BootInfo, Module, Region};
use crate::mem::phys_to_virt;
use alloc::string::String;
use alloc::vec::Vec;
use multiboot2::{BootInformation, BootInformationHeader, MemoryAreaType};

pub(super) fn parse(info: u64) -> Option<BootInfo> {
    // SAFETY: GRUB left a Multiboot2 information structure at `info` (the
    // magic said so); it lies in RAM below 4 GiB, mapped by the boot tables.
    let bi = unsafe { BootInformation::load(phys_to_virt(info) as *const BootInformationHeader) }.ok()?;
    let mut ram = Vec::new();
    if let Some(map) = bi.memory_map_tag() {
        for area in map.memory_areas() {
            if MemoryAreaType::from(area.typ()) == MemoryAreaType::Available && area.size() > 0 {
                ram.push(Region { start: area.start_address(), end: area.end_address() });
            }
        }
    }
    let modules = bi
        .module_tags()
        .map(|m| Module {
            start: m.start_address() as u64,
            end: m.end_address() as u64,
            name: module_name(m.cmdline().unwrap_or("")),
        })
        .collect();
    let cmdline = bi.command_line_tag().and_then(|c| c.cmdline().ok()).map(String::from).unwrap_or_default();
    let acpi = if let Some(v2) = bi.rsdp_v2_tag() {
        AcpiRoot::Sdt { revision: v2.revision().max(2), address: v2.xsdt_address() as u64 }
    } else if let Some(v1) = bi.rsdp_v1_tag() {
        AcpiRoot::Sdt { revision: 0, address: v1.rsdt_address() as u64 }
    } else {
        AcpiRoot::SearchBios
    };
    Some(BootInfo { protocol: "multiboot2", ram, modules, cmdline, acpi })
}
