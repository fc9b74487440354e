//! Helpers for the vault's host tests: formatted in-memory disks (by fatfs
//! or, when the host has it, `mkfs.fat`), a disk seen after a power cut
//! (the recorded sector writes up to the cut, on top of the disk before),
//! and `fsck.fat -n` on a disk.

use crate::disk::{DiskError, MemDisk, SectorDisk, SECTOR};
use crate::fatio::{BlockCache, FatIo};
use std::collections::BTreeMap;
use std::format;
use std::path::PathBuf;
use std::process::Command;
use std::string::String;
use std::vec::Vec;

/// A disk formatted by fatfs (its choice of variant for the size).
pub fn fatfs_formatted(sectors: u64) -> MemDisk {
    let mut cache = BlockCache::new(MemDisk::new(sectors), 64);
    {
        let mut io = FatIo::new(&mut cache);
        fatfs::format_volume(&mut io, fatfs::FormatVolumeOptions::new()).unwrap();
    }
    cache.sync().unwrap();
    cache.disk
}

/// A disk formatted by fatfs: FAT32 with 512-byte clusters from 160K
/// sectors (80 MiB) up, fatfs's choice (FAT12, FAT16) below.
pub fn formatted(sectors: u64) -> MemDisk {
    let mut cache = BlockCache::new(MemDisk::new(sectors), 64);
    {
        let mut io = FatIo::new(&mut cache);
        let mut options = fatfs::FormatVolumeOptions::new();
        if sectors >= 160 * 1024 {
            options = options.fat_type(fatfs::FatType::Fat32).bytes_per_cluster(512);
        }
        fatfs::format_volume(&mut io, options).unwrap();
    }
    cache.sync().unwrap();
    cache.disk
}

fn have(tool: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success())
}

/// Whether `mkfs.fat` and `fsck.fat` are there (tests that need them are
/// skipped, with a message, without).
pub fn have_dosfstools() -> bool {
    let ok = have("mkfs.fat") && have("fsck.fat");
    if !ok {
        std::eprintln!("skipped: no mkfs.fat / fsck.fat");
    }
    ok
}

fn scratch(tag: &str) -> PathBuf {
    let base = if std::path::Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    base.join(format!("vault-test-{}-{tag}-{n}.img", std::process::id()))
}

/// A disk of `sectors` sectors formatted by `mkfs.fat` with `args` (as
/// `cargo xtask` makes the checkpoint disk: `-F 32`).
pub fn mkfs(sectors: u64, args: &[&str]) -> MemDisk {
    let img = scratch("mkfs");
    let out = Command::new("mkfs.fat").args(args).arg("-C").arg(&img).arg((sectors / 2).to_string()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(&img).unwrap();
    let _ = std::fs::remove_file(&img);
    let mut disk = MemDisk::new(sectors);
    disk.bytes.copy_from_slice(&bytes);
    disk
}

/// `fsck.fat -n` on the disk's bytes: Ok if it finds nothing to change
/// (exit 0, no dirty bit), else its output.
pub fn fsck(bytes: &[u8]) -> Result<(), String> {
    let img = scratch("fsck");
    std::fs::write(&img, bytes).unwrap();
    let out = Command::new("fsck.fat").arg("-n").arg(&img).output().unwrap();
    let _ = std::fs::remove_file(&img);
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    if out.status.success() && !text.contains("Dirty bit") {
        Ok(())
    } else {
        Err(text)
    }
}

/// A disk that sees `base` with `overlay` on top and keeps its own writes
/// to itself (a disk after a power cut, then used again).
pub struct Overlay<'a> {
    /// The disk before.
    pub base: &'a MemDisk,
    /// Sectors written since.
    pub overlay: BTreeMap<u64, Vec<u8>>,
}

impl<'a> Overlay<'a> {
    /// `base` with the sector writes `writes` applied.
    pub fn new(base: &'a MemDisk, writes: &[&(u64, Vec<u8>)]) -> Overlay<'a> {
        let mut overlay = BTreeMap::new();
        for (lba, data) in writes {
            overlay.insert(*lba, data.clone());
        }
        Overlay { base, overlay }
    }

    /// The whole disk's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        let mut b = self.base.bytes.clone();
        for (lba, data) in &self.overlay {
            let at = *lba as usize * SECTOR;
            b[at..at + SECTOR].copy_from_slice(data);
        }
        b
    }
}

impl SectorDisk for Overlay<'_> {
    fn sectors(&self) -> u64 {
        self.base.sectors()
    }
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        for (i, chunk) in buf.chunks_mut(SECTOR).enumerate() {
            let at = lba + i as u64;
            match self.overlay.get(&at) {
                Some(s) => chunk.copy_from_slice(s),
                None => {
                    let o = at as usize * SECTOR;
                    chunk.copy_from_slice(&self.base.bytes[o..o + SECTOR]);
                }
            }
        }
        Ok(())
    }
    fn write(&mut self, lba: u64, data: &[u8]) -> Result<(), DiskError> {
        for (i, chunk) in data.chunks(SECTOR).enumerate() {
            self.overlay.insert(lba + i as u64, chunk.to_vec());
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<(), DiskError> {
        Ok(())
    }
}

/// The cut points worth checking among `n` sector writes: every one when
/// there are few, else the first and last `edge` and `samples` spread
/// evenly between (a stride that is not a power of two, so it does not
/// fall in step with sector runs).
pub fn cut_points(n: usize, edge: usize, samples: usize) -> Vec<usize> {
    if n <= 2 * edge + samples {
        return (0..=n).collect();
    }
    let mut v: Vec<usize> = (0..edge).chain(n - edge..=n).collect();
    let stride = ((n - 2 * edge) / samples).max(1) | 1;
    v.extend((edge..n - edge).step_by(stride));
    v.sort_unstable();
    v.dedup();
    v
}
