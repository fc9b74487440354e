//! Making a GRUB hybrid ISO (BIOS and UEFI, Multiboot2) from a kernel and
//! its boot modules with `grub-mkrescue`: `cargo xtask image` makes the
//! system's, and tests make variants (another kernel command line).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The GRUB configuration: boot `kernel` with `cmdline` and the modules
/// named in `modules`, at once, with the console on the screen and COM1.
pub fn grub_cfg(modules: &[&str], cmdline: &str) -> String {
    let mut cfg = String::from(
        "# Kintsugi: boot the exokernel with every program as a Multiboot2 module.\n\
         set timeout=0\nset default=0\n\
         insmod all_video\n\
         serial --unit=0 --speed=115200\nterminal_input serial console\nterminal_output serial console\n\
         menuentry \"Kintsugi\" {\n",
    );
    cfg.push_str(&format!("    multiboot2 /boot/kernel {cmdline}\n").replace(" \n", "\n"));
    for name in modules {
        cfg.push_str(&format!("    module2 /boot/{name} {name}\n"));
    }
    cfg.push_str("    boot\n}\n");
    cfg
}

/// Write `out`: `kernel` and `modules` (each named by its file name) booted
/// with `cmdline`. Needs `grub-mkrescue` (with the BIOS and UEFI GRUB
/// images), `xorriso` and `mtools`.
pub fn make(kernel: &Path, modules: &[PathBuf], cmdline: &str, out: &Path) -> Result<PathBuf, String> {
    let stage = out.with_extension("iso.d");
    let _ = std::fs::remove_dir_all(&stage);
    let boot = stage.join("boot");
    std::fs::create_dir_all(boot.join("grub")).map_err(|e| e.to_string())?;
    std::fs::copy(kernel, boot.join("kernel")).map_err(|e| e.to_string())?;
    let mut names = Vec::new();
    for m in modules {
        let name = m.file_name().and_then(|n| n.to_str()).ok_or("bad module name")?;
        std::fs::copy(m, boot.join(name)).map_err(|e| e.to_string())?;
        names.push(name);
    }
    std::fs::write(boot.join("grub/grub.cfg"), grub_cfg(&names, cmdline)).map_err(|e| e.to_string())?;
    let output = Command::new("grub-mkrescue")
        .arg("-o")
        .arg(out)
        .arg(&stage)
        .output()
        .map_err(|e| format!("grub-mkrescue: {e}"))?;
    let _ = std::fs::remove_dir_all(&stage);
    if !output.status.success() {
        return Err(format!("grub-mkrescue failed:\n{}", String::from_utf8_lossy(&output.stderr)));
    }
    Ok(out.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_the_command_line_and_modules() {
        let cfg = grub_cfg(&["init", "shell"], "");
        assert!(
            cfg.contains("    multiboot2 /boot/kernel\n    module2 /boot/init init\n    module2 /boot/shell shell\n")
        );
        assert!(grub_cfg(&[], "kintsugi.panic").contains("multiboot2 /boot/kernel kintsugi.panic\n    boot\n"));
    }
}
