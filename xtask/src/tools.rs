//! Host tools the commands need (QEMU, FAT tools, GRUB), found on the PATH
//! or installed from Debian packages when we are root with apt; otherwise a
//! clear message with the exact install command.

use std::process::Command;

/// A host command and the Debian package that provides it.
pub struct Tool {
    /// Command name.
    pub command: &'static str,
    /// Debian package.
    pub package: &'static str,
}

/// QEMU.
pub const QEMU: Tool = Tool { command: "qemu-system-x86_64", package: "qemu-system-x86" };
/// mtools (read and write FAT images from the host).
pub const MTOOLS: Tool = Tool { command: "mcopy", package: "mtools" };
/// mkfs.fat / fsck.fat.
pub const DOSFSTOOLS: Tool = Tool { command: "mkfs.fat", package: "dosfstools" };
/// GRUB's ISO maker.
pub const GRUB_MKRESCUE: Tool = Tool { command: "grub-mkrescue", package: "grub-common" };
/// An HTTP client (the network system tests download with it).
pub const CURL: Tool = Tool { command: "curl", package: "curl" };
/// A browser without a screen (the status page's system test loads the
/// page in it).
pub const CHROMIUM: Tool = Tool { command: "chromium", package: "chromium" };
/// ISO writer used by grub-mkrescue.
pub const XORRISO: Tool = Tool { command: "xorriso", package: "xorriso" };

/// Packages that make GRUB images bootable by BIOS and UEFI.
const GRUB_PLATFORMS: &[&str] = &["grub-pc-bin", "grub-efi-amd64-bin"];
/// UEFI firmware for QEMU (optional).
pub const OVMF_PACKAGE: &str = "ovmf";

/// Whether `command` is on the PATH.
pub fn have(command: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {command} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn apt_install(packages: &[&str]) -> Result<(), String> {
    let list = packages.join(" ");
    if !is_root() || !have("apt-get") {
        return Err(format!(
            "missing host packages; install them with:\n  sudo apt-get update && sudo apt-get install -y {list}"
        ));
    }
    eprintln!("xtask: installing {list} (apt-get)");
    let ok = Command::new("sh")
        .args(["-c", &format!("DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {list} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(())
    } else {
        Err(format!("apt-get could not install {list}; install them by hand:\n  apt-get install -y {list}"))
    }
}

/// Make sure every tool is present, installing what is missing.
pub fn ensure(tools: &[&Tool]) -> Result<(), String> {
    let missing: Vec<&str> = tools.iter().filter(|t| !have(t.command)).map(|t| t.package).collect();
    if missing.is_empty() {
        return Ok(());
    }
    apt_install(&missing)
}

/// Make sure GRUB can build a hybrid BIOS + UEFI ISO.
pub fn ensure_grub() -> Result<(), String> {
    ensure(&[&GRUB_MKRESCUE, &XORRISO, &MTOOLS])?;
    let missing: Vec<&str> = GRUB_PLATFORMS
        .iter()
        .copied()
        .filter(|p| {
            let dir = if *p == "grub-pc-bin" { "/usr/lib/grub/i386-pc" } else { "/usr/lib/grub/x86_64-efi" };
            !std::path::Path::new(dir).exists()
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        apt_install(&missing)
    }
}

/// The OVMF firmware image, installing the package if we can; None if
/// UEFI firmware is not available here.
pub fn ovmf() -> Option<std::path::PathBuf> {
    let candidates = ["/usr/share/ovmf/OVMF.fd", "/usr/share/OVMF/OVMF.fd", "/usr/share/qemu/OVMF.fd"];
    let find = || candidates.iter().map(std::path::PathBuf::from).find(|p| p.exists());
    find().or_else(|| apt_install(&[OVMF_PACKAGE]).ok().and_then(|_| find()))
}
