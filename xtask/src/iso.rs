//! The GRUB hybrid ISO (BIOS and UEFI, Multiboot2): the same kernel and
//! boot modules as direct boot, loaded by GRUB. It can be written to a USB
//! stick with `dd`.

use crate::tools;
use kintsugi_tests::Image;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Make `out` from `image`.
pub fn make(image: &Image, out: &Path) -> Result<PathBuf, String> {
    tools::ensure_grub()?;
    let stage = out.with_extension("iso.d");
    let _ = std::fs::remove_dir_all(&stage);
    let boot = stage.join("boot");
    std::fs::create_dir_all(boot.join("grub")).map_err(|e| e.to_string())?;
    std::fs::copy(&image.kernel, boot.join("kernel")).map_err(|e| e.to_string())?;
    let mut cfg = String::from(
        "# Kintsugi: boot the exokernel with every program as a Multiboot2 module.\n\
         set timeout=0\nset default=0\n\
         insmod all_video\n\
         serial --unit=0 --speed=115200\nterminal_input serial console\nterminal_output serial console\n\
         menuentry \"Kintsugi\" {\n    multiboot2 /boot/kernel\n",
    );
    for m in &image.modules {
        let name = m.file_name().and_then(|n| n.to_str()).ok_or("bad module name")?;
        std::fs::copy(m, boot.join(name)).map_err(|e| e.to_string())?;
        cfg.push_str(&format!("    module2 /boot/{name} {name}\n"));
    }
    cfg.push_str("    boot\n}\n");
    std::fs::write(boot.join("grub/grub.cfg"), cfg).map_err(|e| e.to_string())?;
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
