//! Disk images for the machine: FAT32 images made with `mkfs.fat` (the
//! data disk and the vault's checkpoint disk), and helpers to put files on
//! them and read them back from the host with mtools.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Size of each disk the tools create by default.
pub const DISK_MIB: u64 = 64;

/// Create `path` as a FAT32 disk of `mib` MiB labelled `label`, replacing
/// any file there.
pub fn make_fat_disk(path: &Path, label: &str, mib: u64) -> Result<(), String> {
    let _ = std::fs::remove_file(path);
    let out = Command::new("mkfs.fat")
        .args(["-F", "32", "-n", label, "-C"])
        .arg(path)
        .arg((mib * 1024).to_string())
        .output()
        .map_err(|e| format!("mkfs.fat (from the dosfstools package): {e}"))?;
    if !out.status.success() {
        let _ = std::fs::remove_file(path);
        return Err(format!("mkfs.fat failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(())
}

/// `dir/data.img` and `dir/checkpoint.img`, created (FAT32, [`DISK_MIB`]
/// MiB) where missing; in the order the machine attaches them (disk 0 is
/// the data disk, disk 1 the checkpoint disk).
pub fn ensure(dir: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut disks = Vec::new();
    for (name, label) in [("data.img", "KDATA"), ("checkpoint.img", "KCKPT")] {
        let path = dir.join(name);
        if !path.exists() {
            make_fat_disk(&path, label, DISK_MIB)?;
            eprintln!("created {} ({DISK_MIB} MiB, FAT32)", path.display());
        }
        disks.push(path);
    }
    Ok(disks)
}

/// A fresh pair of disks in a new folder under the target directory, for
/// one test: `(folder, [data, checkpoint])`.
pub fn fresh(test: &str) -> Result<(PathBuf, Vec<PathBuf>), String> {
    let dir = crate::image::workspace_root().join("target/test-disks").join(format!("{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let disks = ensure(&dir)?;
    Ok((dir, disks))
}
