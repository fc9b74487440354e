//! Tests of the start-up check and repair: clean volumes are left alone;
//! lost chains, overlong and short files, differing tables, a wrong free
//! count and the dirty flag are repaired, on FAT12, FAT16 and FAT32; and a
//! power cut at any point of a fatfs change (what an older vault did at a
//! service's first commit) leaves a disk that the repair makes clean for
//! `fsck.fat -n`.

use super::*;
use crate::disk::MemDisk;
use crate::fatio::FatIo;
use crate::testutil::{cut_points, fatfs_formatted, formatted, fsck, have_dosfstools, mkfs, Overlay};
use fatfs::Write as _;
use std::vec;
use std::vec::Vec;

fn volume<D: SectorDisk>(cache: &mut BlockCache<D>) -> Volume {
    let mut boot = [0u8; SECTOR];
    cache.read_at(0, &mut boot).unwrap();
    Volume::parse(&boot).unwrap()
}

fn repair(disk: MemDisk) -> (MemDisk, Repairs) {
    let mut cache = BlockCache::new(disk, 512);
    let v = volume(&mut cache);
    let r = check_and_repair(&mut cache, &v).unwrap();
    cache.clear().unwrap();
    (cache.disk, r)
}

/// Create `/KINTSUGI/NAME` with `len` bytes through fatfs.
fn create_file(disk: MemDisk, name: &str, len: usize) -> MemDisk {
    let mut cache = BlockCache::new(disk, 512);
    {
        let fs = fatfs::FileSystem::new(FatIo::new(&mut cache), fatfs::FsOptions::new()).unwrap();
        {
            let root = fs.root_dir();
            let dir = match root.open_dir("KINTSUGI") {
                Ok(d) => d,
                Err(_) => root.create_dir("KINTSUGI").unwrap(),
            };
            let mut f = dir.create_file(name).unwrap();
            f.write_all(&vec![0x33u8; len]).unwrap();
            f.flush().unwrap();
        }
        fs.unmount().unwrap();
    }
    cache.sync().unwrap();
    cache.disk
}

/// fatfs sees the volume clean, and its free count is what the table says.
fn assert_consistent(disk: &mut MemDisk) {
    let mut cache = BlockCache::new(&mut *disk, 64);
    let fs = fatfs::FileSystem::new(FatIo::new(&mut cache), fatfs::FsOptions::new()).unwrap();
    assert!(!fs.read_status_flags().unwrap().dirty(), "dirty after the repair");
}

#[test]
fn clean_volumes_are_left_alone() {
    for sectors in [4 * 1024, 32 * 1024, 160 * 1024] {
        let disk = create_file(formatted(sectors), "A.0", 5000);
        let before = disk.bytes.clone();
        let (after, r) = repair(disk);
        assert!(!r.repaired() && r.unrepaired.is_empty(), "{sectors}: {r:?}");
        assert!(after.bytes == before, "{sectors}: a clean volume is not written");
    }
}

#[test]
fn lost_chains_differing_tables_and_the_dirty_flag_are_repaired() {
    for sectors in [4 * 1024, 32 * 1024, 160 * 1024] {
        let mut cache = BlockCache::new(formatted(sectors), 512);
        let v = volume(&mut cache);
        // A lost chain of five clusters in the first table only, and the
        // dirty flag set: a cut in the middle of a fatfs allocation.
        for c in 100..105 {
            set_in_first_table(&mut cache, &v, c, if c == 104 { v.end_of_chain() } else { c + 1 });
        }
        let mut boot = [0u8; 512];
        cache.read_at(0, &mut boot).unwrap();
        boot[v.dirty_flag_offset()] |= 1;
        cache.write_boot(&boot).unwrap();
        cache.clear().unwrap();
        let (mut disk, r) = repair(cache.disk);
        assert_eq!(r.lost_clusters, 5, "{:?}: {r:?}", v.fat_type);
        assert!(r.dirty_cleared, "{r:?}");
        assert_consistent(&mut disk);
        let (_, again) = repair(disk);
        assert!(!again.repaired(), "a second repair finds nothing: {again:?}");
    }
}

/// Set entry `c` to `next` in the first allocation table only.
fn set_in_first_table(cache: &mut BlockCache<MemDisk>, v: &Volume, c: u32, next: u32) {
    let base = v.fat_lba * 512;
    match v.fat_type {
        FatType::Fat12 => {
            let at = base + c as u64 + c as u64 / 2;
            let mut b = [0u8; 2];
            cache.read_at(at, &mut b).unwrap();
            let old = u16::from_le_bytes(b);
            let new = if c % 2 == 1 { (old & 0xf) | ((next as u16) << 4) } else { (old & 0xf000) | next as u16 };
            cache.write_at(at, &new.to_le_bytes()).unwrap();
        }
        FatType::Fat16 => cache.write_at(base + 2 * c as u64, &(next as u16).to_le_bytes()).unwrap(),
        FatType::Fat32 => cache.write_at(base + 4 * c as u64, &next.to_le_bytes()).unwrap(),
    }
}

#[test]
fn files_longer_or_shorter_than_their_chains_are_cut() {
    let disk = create_file(fatfs_formatted(32 * 1024), "LONG", 10_000);
    let disk = create_file(disk, "SHORT", 3000);
    let mut cache = BlockCache::new(disk, 512);
    let v = volume(&mut cache);
    let root = v.dir_entries(&mut cache, None).unwrap();
    let k = root.iter().find(|e| e.short_name() == "KINTSUGI").unwrap();
    let kchain = v.chain(&mut cache, k.first).unwrap().unwrap();
    let entries = v.dir_entries(&mut cache, Some(&kchain)).unwrap();
    let long = entries.iter().find(|e| e.short_name() == "LONG").unwrap().clone();
    let short = entries.iter().find(|e| e.short_name() == "SHORT").unwrap().clone();
    // LONG claims 1000 bytes (its chain holds 10000), SHORT claims 100000.
    v.set_dir_entry(&mut cache, long.at, long.first, 1000).unwrap();
    v.set_dir_entry(&mut cache, short.at, short.first, 100_000).unwrap();
    cache.clear().unwrap();
    let (mut disk, r) = repair(cache.disk);
    assert_eq!(r.truncated, ["/KINTSUGI/LONG"]);
    assert_eq!(r.shortened, ["/KINTSUGI/SHORT"]);
    assert_consistent(&mut disk);
    let mut cache = BlockCache::new(disk, 512);
    let chain = v.chain(&mut cache, long.first).unwrap().unwrap();
    assert_eq!(chain.len() as u64, 1000u64.div_ceil(v.cluster_bytes()));
    let entries = v.dir_entries(&mut cache, Some(&kchain)).unwrap();
    let short = entries.iter().find(|e| e.short_name() == "SHORT").unwrap();
    assert_eq!(short.size as u64 % v.cluster_bytes(), 0);
    assert!(short.size >= 3000 && short.size < 100_000);
}

#[test]
fn a_wrong_free_count_is_corrected() {
    if !have_dosfstools() {
        return;
    }
    let mut disk = mkfs(66 * 1024, &["-F", "32"]);
    let fsinfo = 512 + 488; // mkfs.fat puts FSInfo in sector 1
    disk.bytes[fsinfo..fsinfo + 4].copy_from_slice(&5u32.to_le_bytes());
    assert!(fsck(&disk.bytes).is_err());
    let (disk, r) = repair(disk);
    assert!(matches!(r.free_count, Some((5, n)) if n > 60_000), "{r:?}");
    fsck(&disk.bytes).unwrap();
}

/// A cut after every prefix of the sector writes of a fatfs change (an
/// older vault's slot creation: a 1 MiB file written through fatfs), then
/// the repair: `fsck.fat -n` finds the disk clean, and the repair did
/// something whenever the cut left the disk unclean.
#[test]
fn power_cuts_during_a_fatfs_change_are_repaired_for_fsck() {
    if !have_dosfstools() {
        return;
    }
    for (sectors, args) in [(66 * 1024u64, &["-F", "32"][..]), (16 * 1024, &["-F", "16", "-s", "1"][..])] {
        let base = create_file(mkfs(sectors, args), "OTHER.0", 700);
        let mut disk = base.clone();
        disk.record();
        let disk = create_file(disk, "KV.0", 1 << 20);
        let mut disk = disk;
        let journal = disk.take_journal();
        let all: Vec<&(u64, Vec<u8>)> = journal.iter().collect();
        for k in cut_points(all.len(), 16, 24) {
            let cut = Overlay::new(&base, &all[..k]);
            let bytes = cut.bytes();
            let unclean = fsck(&bytes).is_err();
            let mut cache = BlockCache::new(Overlay::new(&base, &all[..k]), 512);
            let v = volume(&mut cache);
            let r = check_and_repair(&mut cache, &v).unwrap();
            cache.clear().unwrap();
            assert!(r.unrepaired.is_empty(), "cut after {k}: {r:?}");
            if let Err(out) = fsck(&cache.disk.bytes()) {
                panic!(
                    "cut after {k} of {} writes ({args:?}), repaired {:?}: fsck.fat -n:\n{out}",
                    all.len(),
                    r.lines()
                );
            }
            assert!(!unclean || r.repaired(), "cut after {k}: unclean, yet nothing repaired");
        }
    }
}
