//! `cargo xtask disk ls|put|get|rm`: files and folders between the host
//! and the data disk image (`DIR/data.img`, default `target/disks`), with
//! mtools, so a user can put a web site or a data set on it before booting
//! and take results off after. Run it while QEMU is not running (the guest
//! keeps its own view of the disk).

use crate::{disks, tools};
use kintsugi_tests::disks as img;
use std::path::{Path, PathBuf};

/// A `disk` subcommand.
pub enum DiskOp {
    /// List a folder (recursively with `-r`).
    Ls { path: String, recursive: bool },
    /// Copy host files or folders to the disk.
    Put { sources: Vec<PathBuf>, dest: String },
    /// Copy a file or folder from the disk to the host.
    Get { src: String, dest: PathBuf },
    /// Remove files or folders from the disk.
    Rm { paths: Vec<String> },
}

/// Carry out `op` on the data disk in `dir`.
pub fn run(op: DiskOp, dir: Option<PathBuf>) -> Result<(), String> {
    tools::ensure(&[&tools::MTOOLS, &tools::DOSFSTOOLS])?;
    let dir = dir.unwrap_or_else(disks::default_dir);
    let data = dir.join("data.img");
    if !data.exists() {
        disks::ensure(&dir)?;
    }
    match op {
        DiskOp::Ls { path, recursive } => print!("{}", img::listing(&data, &path, recursive)?),
        DiskOp::Put { sources, dest } => {
            let refs: Vec<&Path> = sources.iter().map(PathBuf::as_path).collect();
            img::put(&data, &refs, &dest)?;
        }
        DiskOp::Get { src, dest } => img::get(&data, &src, &dest)?,
        DiskOp::Rm { paths } => {
            for p in paths {
                img::remove(&data, &p)?;
            }
        }
    }
    Ok(())
}
