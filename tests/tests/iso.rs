//! The GRUB hybrid ISO boots the same system, by BIOS and (where OVMF is
//! installed) by UEFI.

use kintsugi_tests::{boot_with, Boot, Image, QemuConfig};
use std::path::PathBuf;

fn iso() -> PathBuf {
    let image = Image::built().unwrap_or_else(|e| panic!("{e}"));
    image.iso.unwrap_or_else(|| panic!("no ISO in the image folder; `cargo xtask test` makes it"))
}

fn check(boot: Boot) {
    let mut m = boot_with(&QemuConfig { boot, ..QemuConfig::default() });
    assert!(m.console().contains("boot: multiboot2"), "{}", m.console());
    let ps = m.sh("ps");
    assert!(ps.lines().any(|l| l.trim_end().ends_with(" shell")), "{ps}");
    let out = m.sh("run pingpong 50");
    assert!(out.contains("50 round trips OK"), "{out}");
    m.shutdown();
}

#[test]
fn iso_boots_with_bios() {
    check(Boot::IsoBios(iso()));
}

#[test]
fn iso_boots_with_uefi() {
    let ovmf = ["/usr/share/ovmf/OVMF.fd", "/usr/share/OVMF/OVMF.fd", "/usr/share/qemu/OVMF.fd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    match ovmf {
        Some(fw) => check(Boot::IsoUefi(iso(), fw)),
        None => eprintln!("iso_boots_with_uefi: OVMF is not installed here; UEFI boot not tested"),
    }
}
