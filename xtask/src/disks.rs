//! The machine's two FAT-formatted disks: `data.img` (the file system's
//! disk) and `checkpoint.img` (the vault's), created on first use with
//! `mkfs.fat` and kept between runs.

use crate::tools;
use std::path::{Path, PathBuf};

/// The default folder for the disks.
pub fn default_dir() -> PathBuf {
    kintsugi_tests::image::workspace_root().join("target/disks")
}

/// The data and checkpoint disks in `dir`, created if missing.
pub fn ensure(dir: &Path) -> Result<Vec<PathBuf>, String> {
    tools::ensure(&[&tools::DOSFSTOOLS, &tools::MTOOLS])?;
    kintsugi_tests::disks::ensure(dir)
}

/// [`ensure`], with the data disk `data_mib` MiB when it is created.
pub fn ensure_sized(dir: &Path, data_mib: Option<u64>) -> Result<Vec<PathBuf>, String> {
    tools::ensure(&[&tools::DOSFSTOOLS, &tools::MTOOLS])?;
    kintsugi_tests::disks::ensure_sized(dir, data_mib)
}
