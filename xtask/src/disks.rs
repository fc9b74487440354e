//! The machine's two FAT-formatted disks: `data.img` (the file system's
//! disk) and `checkpoint.img` (the vault's), created on first use with
//! `mkfs.fat` and kept between runs.

use crate::tools;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Size of each disk.
pub const DISK_MIB: u64 = 64;

/// The default folder for the disks.
pub fn default_dir() -> PathBuf {
    kintsugi_tests::image::workspace_root().join("target/disks")
}

/// Create `dir/name` as a FAT disk with `label` unless it exists.
fn ensure_disk(dir: &Path, name: &str, label: &str) -> Result<PathBuf, String> {
    let path = dir.join(name);
    if path.exists() {
        return Ok(path);
    }
    tools::ensure(&[&tools::DOSFSTOOLS])?;
    let status = Command::new("mkfs.fat")
        .args(["-F", "32", "-n", label, "-C"])
        .arg(&path)
        .arg((DISK_MIB * 1024).to_string())
        .output()
        .map_err(|e| format!("mkfs.fat: {e}"))?;
    if !status.status.success() {
        let _ = std::fs::remove_file(&path);
        return Err(format!("mkfs.fat failed: {}", String::from_utf8_lossy(&status.stderr)));
    }
    eprintln!("xtask: created {} ({DISK_MIB} MiB, FAT32)", path.display());
    Ok(path)
}

/// The data and checkpoint disks in `dir`, created if missing.
pub fn ensure(dir: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(vec![ensure_disk(dir, "data.img", "KDATA")?, ensure_disk(dir, "checkpoint.img", "KCKPT")?])
}
