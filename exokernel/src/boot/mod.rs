//! What the boot loader tells the kernel, gathered into one [`BootInfo`]
//! whichever protocol booted us: Multiboot1 (QEMU `-kernel`) or Multiboot2
//! (GRUB, on BIOS or UEFI).

mod multiboot1;
mod multiboot2;

use alloc::string::String;
use alloc::vec::Vec;

pub use crate::regions::Region;

/// A boot module: a file the loader put in memory (a program image or the
/// system manifest).
#[derive(Clone, Debug)]
pub struct Module {
    /// Physical address of the first byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// The module's name: the last path component of the first word of its
    /// command line (`module2 /boot/init init` and `-initrd path/init` both
    /// give `init`).
    pub name: String,
}

/// Where the ACPI tables start.
#[derive(Clone, Copy, Debug)]
pub enum AcpiRoot {
    /// Scan the BIOS areas for the RSDP.
    SearchBios,
    /// The RSDT (revision 0) or XSDT (revision 2+) at this address.
    Sdt {
        /// ACPI revision from the RSDP.
        revision: u8,
        /// Physical address of the RSDT or XSDT.
        address: u64,
    },
}

/// Everything the kernel needs from the boot loader.
#[derive(Debug)]
pub struct BootInfo {
    /// Which protocol booted the kernel.
    pub protocol: &'static str,
    /// Usable RAM (not yet excluding the kernel or modules).
    pub ram: Vec<Region>,
    /// The boot modules.
    pub modules: Vec<Module>,
    /// The kernel command line.
    pub cmdline: String,
    /// How to find ACPI.
    pub acpi: AcpiRoot,
    /// The screen the loader handed over (or VGA text mode under BIOS).
    pub display: kintsugi_abi::DisplayInfo,
}

/// VGA text mode as the BIOS leaves it: 80 x 25 cells at 0xB8000.
pub fn vga_text() -> kintsugi_abi::DisplayInfo {
    kintsugi_abi::DisplayInfo {
        kind: kintsugi_abi::DISPLAY_TEXT,
        bpp: 16,
        address: 0xb8000,
        width: 80,
        height: 25,
        pitch: 160,
        ..Default::default()
    }
}

const MULTIBOOT1_MAGIC: u32 = 0x2BAD_B002;
const MULTIBOOT2_MAGIC: u32 = 0x36D7_6289;

/// Read the boot information left at physical address `info` by the loader
/// that passed `magic`.
pub fn parse(magic: u32, info: u64) -> Option<BootInfo> {
    match magic {
        MULTIBOOT1_MAGIC => Some(multiboot1::parse(info)),
        MULTIBOOT2_MAGIC => multiboot2::parse(info),
        _ => None,
    }
}

/// A module's name from its command line.
fn module_name(cmdline: &str) -> String {
    let first = cmdline.split_whitespace().next().unwrap_or("");
    String::from(first.rsplit('/').next().unwrap_or(first))
}
