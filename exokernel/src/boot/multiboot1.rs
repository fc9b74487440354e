//! Multiboot1 information (QEMU's `-kernel` loader), read through the direct
//! map. Only the fields the kernel uses: memory map, modules, command line.

use super::{module_name, AcpiRoot, BootInfo, Module, Region};
use crate::mem::phys_to_virt;
use alloc::string::String;
use alloc::vec::Vec;

fn read_u32(pa: u64) -> u32 {
    // SAFETY: the loader's structures lie in RAM below 4 GiB, which the boot
    // page tables map at the direct map; read_unaligned tolerates any layout.
    unsafe { core::ptr::read_unaligned(phys_to_virt(pa) as *const u32) }
}

fn read_u64(pa: u64) -> u64 {
    (read_u32(pa) as u64) | ((read_u32(pa + 4) as u64) << 32)
}

fn read_cstr(pa: u64) -> String {
    let mut bytes = Vec::new();
    for i in 0..4096 {
        // SAFETY: as in `read_u32`; the string is NUL-terminated and bounded.
        let b = unsafe { *phys_to_virt(pa + i) };
        if b == 0 {
            break;
        }
        bytes.push(b);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

pub(super) fn parse(info: u64) -> BootInfo {
    let flags = read_u32(info);
    let mut ram = Vec::new();
    if flags & (1 << 6) != 0 {
        let len = read_u32(info + 44) as u64;
        let addr = read_u32(info + 48) as u64;
        let mut p = addr;
        while p + 24 <= addr + len {
            let size = read_u32(p) as u64;
            let base = read_u64(p + 4);
            let length = read_u64(p + 12);
            let kind = read_u32(p + 20);
            if kind == 1 && length > 0 {
                ram.push(Region { start: base, end: base.saturating_add(length) });
            }
            p += size + 4;
        }
    } else if flags & 1 != 0 {
        let upper_kib = read_u32(info + 8) as u64;
        ram.push(Region { start: 0x10_0000, end: 0x10_0000 + upper_kib * 1024 });
    }
    let mut modules = Vec::new();
    if flags & (1 << 3) != 0 {
        let count = read_u32(info + 20) as u64;
        let addr = read_u32(info + 24) as u64;
        for i in 0..count.min(256) {
            let m = addr + i * 16;
            let start = read_u32(m) as u64;
            let end = read_u32(m + 4) as u64;
            let cmdline = read_cstr(read_u32(m + 8) as u64);
            modules.push(Module { start, end, name: module_name(&cmdline) });
        }
    }
    let cmdline = if flags & (1 << 2) != 0 { read_cstr(read_u32(info + 16) as u64) } else { String::new() };
    // QEMU's Multiboot1 loader sets no video mode: the BIOS's text mode stays.
    BootInfo { protocol: "multiboot1", ram, modules, cmdline, acpi: AcpiRoot::SearchBios, display: super::vga_text() }
}
