//! Multiboot2 information (GRUB, BIOS or UEFI), read with the `multiboot2`
//! crate through the direct map.

use super::{module_name, AcpiRoot, BootInfo, Module, Region};
use crate::mem::phys_to_virt;
use alloc::string::String;
use alloc::vec::Vec;
use kintsugi_abi::{DisplayInfo, DISPLAY_RGB, DISPLAY_TEXT};
use multiboot2::{BootInformation, BootInformationHeader, FramebufferType, MemoryAreaType};

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
    Some(BootInfo { protocol: "multiboot2", ram, modules, cmdline, acpi, display: display(&bi) })
}

/// The framebuffer GRUB set up; without one, VGA text mode under BIOS and
/// nothing under UEFI (which has no text mode to fall back to).
fn display(bi: &BootInformation) -> DisplayInfo {
    let uefi = bi.efi_sdt64_tag().is_some() || bi.efi_ih64_tag().is_some() || bi.efi_bs_not_exited_tag().is_some();
    let Some(Ok(fb)) = bi.framebuffer_tag() else {
        return if uefi { DisplayInfo::default() } else { super::vga_text() };
    };
    let mut d = DisplayInfo {
        bpp: fb.bpp() as u32,
        address: fb.address(),
        width: fb.width(),
        height: fb.height(),
        pitch: fb.pitch(),
        ..Default::default()
    };
    match fb.buffer_type() {
        Ok(FramebufferType::RGB { red, green, blue }) => {
            d.kind = DISPLAY_RGB;
            (d.red_shift, d.red_size) = (red.position, red.size);
            (d.green_shift, d.green_size) = (green.position, green.size);
            (d.blue_shift, d.blue_size) = (blue.position, blue.size);
        }
        Ok(FramebufferType::Text) => d.kind = DISPLAY_TEXT,
        _ => return DisplayInfo::default(),
    }
    d
}
