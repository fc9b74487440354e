//! Unit tests of the vault core on in-memory disks: commits, slots, growth,
//! damaged slots, failing disks, and power cuts after every sector write.

use super::*;
use crate::disk::MemDisk;
use checkpoint_record::epoch::{self, BlockWrite};
use std::collections::BTreeMap as Map;
use std::sync::atomic::{AtomicU64, Ordering};

static CLOCK: AtomicU64 = AtomicU64::new(0);

fn clock() -> u64 {
    CLOCK.fetch_add(1000, Ordering::Relaxed)
}

/// Sectors of the test disks (16 MiB: FAT16 with small clusters).
const SECTORS: u64 = 32 * 1024;

/// A disk formatted with fatfs, as mkfs would leave it.
fn formatted() -> MemDisk {
    let mut cache = BlockCache::new(MemDisk::new(SECTORS), 64);
    {
        let mut io = FatIo::new(&mut cache);
        fatfs::format_volume(&mut io, fatfs::FormatVolumeOptions::new()).unwrap();
    }
    cache.sync().unwrap();
    cache.disk
}

fn open(disk: MemDisk) -> Vault<MemDisk> {
    Vault::open(disk, clock).unwrap()
}

fn state(tag: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| tag.wrapping_add(i as u8)).collect()
}

fn latest(v: &mut Vault<MemDisk>, service: &str) -> Option<(u64, Vec<u8>, u8, String)> {
    v.latest(service).unwrap().map(|l| (l.record.header.generation, l.record.state, l.slot, l.note))
}

/// Whether the FAT file system on `disk` is marked clean.
fn clean(disk: &mut MemDisk) -> bool {
    let mut cache = BlockCache::new(&mut *disk, 64);
    let fs = fatfs::FileSystem::new(FatIo::new(&mut cache), fatfs::FsOptions::new()).unwrap();
    let flags = fs.read_status_flags().unwrap();
    !flags.dirty()
}

#[test]
fn a_blank_disk_is_formatted() {
    let mut v = open(MemDisk::new(SECTORS));
    assert!(v.list().is_empty());
    assert_eq!(v.boot(), 1);
    assert!(latest(&mut v, "kv").is_none());
    let mut disk = v.into_disk();
    assert_eq!(&disk.bytes[510..512], &[0x55, 0xaa]);
    assert!(clean(&mut disk));
    // And it opens as a FAT file system again, untouched.
    let v = open(disk);
    assert!(v.list().is_empty());
}

#[test]
fn commits_alternate_and_survive_reopening() {
    let mut v = open(formatted());
    let c1 = v.commit("kv", Kind::Logical, 11, &state(1, 100), &[]).unwrap();
    assert_eq!((c1.generation, c1.slot), (1, 0));
    assert_eq!(latest(&mut v, "kv").unwrap(), (1, state(1, 100), 0, String::new()));
    let c2 = v.commit("kv", Kind::Logical, 22, &state(2, 5000), &[]).unwrap();
    assert_eq!((c2.generation, c2.slot), (2, 1));
    let c3 = v.commit("kv", Kind::Logical, 33, &state(3, 7), &[]).unwrap();
    assert_eq!((c3.generation, c3.slot), (3, 0));
    assert_eq!(latest(&mut v, "kv").unwrap(), (3, state(3, 7), 0, String::new()));
    let mut disk = v.into_disk();
    assert!(clean(&mut disk));

    let mut v = open(disk);
    assert_eq!(v.boot(), 2, "one more than the boot that wrote the records");
    let l = v.latest("kv").unwrap().unwrap();
    assert_eq!((l.record.header.generation, l.record.header.taken_ns, l.record.header.boot), (3, 33, 1));
    let c4 = v.commit("kv", Kind::Logical, 44, &state(4, 1), &[]).unwrap();
    assert_eq!((c4.generation, c4.slot), (4, 1), "generations go on across reboots");
    assert_eq!(v.latest("kv").unwrap().unwrap().record.header.boot, 2);
}

#[test]
fn services_are_independent_and_listed() {
    let mut v = open(formatted());
    v.commit("kv", Kind::Logical, 1, b"kv state", &[]).unwrap();
    v.commit("tally", Kind::Image, 2, &state(9, 8192), &[]).unwrap();
    v.commit("tally", Kind::Image, 3, &state(10, 8192), &[]).unwrap();
    let list = v.list();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].service, "kv");
    let (slot, h) = list[0].current.clone().unwrap();
    assert_eq!((slot, h.generation, h.kind, h.state_len), (0, 1, Kind::Logical, 8));
    let (slot, h) = list[1].current.clone().unwrap();
    assert_eq!((slot, h.generation, h.kind), (1, 2, Kind::Image));
    let v2 = open(v.into_disk());
    assert_eq!(v2.list(), list);
}

#[test]
fn epochs_are_kept() {
    let mut v = open(formatted());
    let e = epoch::encode(&[BlockWrite { disk: 0, lba: 100, data: vec![7; 1024] }]).unwrap();
    v.commit("fs", Kind::Logical, 5, b"open files", &e).unwrap();
    let mut v = open(v.into_disk());
    let l = v.latest("fs").unwrap().unwrap();
    assert_eq!(l.record.epoch, e);
    let w = l.record.writes().unwrap();
    assert_eq!((w[0].disk, w[0].lba, w[0].data.len()), (0, 100, 1024));
}

#[test]
fn slots_grow_when_a_record_does_not_fit() {
    let mut v = open(formatted());
    v.commit("big", Kind::Image, 1, &state(1, 1000), &[]).unwrap();
    assert_eq!(v.slots("big").unwrap().slots[1].capacity(), MIN_SLOT_BYTES);
    let large = state(2, 1_500_000);
    let c = v.commit("big", Kind::Image, 2, &large, &[]).unwrap();
    assert_eq!(c.slot, 1);
    let s = v.slots("big").unwrap();
    assert_eq!(s.slots[1].capacity(), 2 * MIN_SLOT_BYTES);
    assert_eq!(s.slots[0].capacity(), MIN_SLOT_BYTES, "only the slot written grows");
    assert_eq!(latest(&mut v, "big").unwrap().1, large);
    let larger = state(3, 3_000_000);
    let c = v.commit("big", Kind::Image, 3, &larger, &[]).unwrap();
    assert_eq!((c.generation, c.slot), (3, 0));
    assert_eq!(v.slots("big").unwrap().slots[0].capacity(), 4 * MIN_SLOT_BYTES);
    let mut disk = v.into_disk();
    assert!(clean(&mut disk), "growing leaves the file system clean");
    let mut v = open(disk);
    assert_eq!(latest(&mut v, "big").unwrap().1, larger);
    v.commit("big", Kind::Image, 4, &state(4, 10), &[]).unwrap();
    assert_eq!(latest(&mut v, "big").unwrap().0, 4);
}

#[test]
fn a_disk_that_fills_up_fails_the_commit_and_keeps_the_old_record() {
    let mut v = open(formatted());
    v.commit("kv", Kind::Logical, 1, b"small", &[]).unwrap();
    let e = v.commit("kv", Kind::Logical, 2, &state(1, 20_000_000), &[]).unwrap_err();
    assert_eq!(e.code(), 507, "{e}");
    assert_eq!(latest(&mut v, "kv").unwrap().1, b"small");
    v.commit("kv", Kind::Logical, 3, b"after", &[]).unwrap();
    assert_eq!(latest(&mut v, "kv").unwrap().1, b"after");
}

/// Where a slot's first sector is on the disk.
fn slot_lba(v: &Vault<MemDisk>, service: &str, slot: usize) -> u64 {
    v.slots(service).unwrap().slots[slot].runs[0].0
}

#[test]
fn a_damaged_newest_slot_falls_back_to_the_other() {
    for (what, offset) in [("payload", 128 + 3), ("header", 20), ("magic", 0), ("header checksum", 125)] {
        let mut v = open(formatted());
        for g in 1..=5u8 {
            v.commit("kv", Kind::Logical, g as u64, &state(g, 3000), &[]).unwrap();
        }
        // Generation 5 is in slot 0, 4 in slot 1.
        let at = slot_lba(&v, "kv", 0) as usize * SECTOR + offset;
        let mut disk = v.into_disk();
        disk.bytes[at] ^= 0x10;
        let mut v = open(disk);
        let (generation, data, slot, note) = latest(&mut v, "kv").unwrap();
        assert_eq!((generation, slot), (4, 1), "{what}");
        assert_eq!(data, state(4, 3000));
        assert!(note.starts_with("slot 0 damaged ("), "{what}: {note}");
        assert!(note.ends_with("); restored generation 4 from slot 1"), "{what}: {note}");
        if what == "payload" {
            assert!(note.contains("payload checksum mismatch"), "{note}");
        }
        // The next commit goes to the damaged slot, with a new generation.
        let c = v.commit("kv", Kind::Logical, 6, b"new", &[]).unwrap();
        assert_eq!(c.slot, 0);
        assert!(c.generation >= 5, "{c:?}");
        let (g, data, slot, note) = latest(&mut v, "kv").unwrap();
        assert_eq!((g, data.as_slice(), slot, note.as_str()), (c.generation, &b"new"[..], 0, ""));
    }
}

#[test]
fn a_damaged_older_slot_changes_nothing() {
    let mut v = open(formatted());
    for g in 1..=4u8 {
        v.commit("kv", Kind::Logical, g as u64, &state(g, 600), &[]).unwrap();
    }
    // Generation 4 is in slot 1, 3 in slot 0.
    let at = slot_lba(&v, "kv", 0) as usize * SECTOR + 300;
    let mut disk = v.into_disk();
    disk.bytes[at] ^= 1;
    let mut v = open(disk);
    assert_eq!(latest(&mut v, "kv").unwrap(), (4, state(4, 600), 1, String::new()));
}

#[test]
fn both_slots_damaged_means_no_checkpoint() {
    let mut v = open(formatted());
    v.commit("kv", Kind::Logical, 1, b"one", &[]).unwrap();
    v.commit("kv", Kind::Logical, 2, b"two", &[]).unwrap();
    let (a, b) = (slot_lba(&v, "kv", 0), slot_lba(&v, "kv", 1));
    let mut disk = v.into_disk();
    disk.bytes[a as usize * SECTOR + 130] ^= 1;
    disk.bytes[b as usize * SECTOR + 130] ^= 1;
    let mut v = open(disk);
    assert!(v.latest("kv").unwrap().is_none());
    assert!(v.list()[0].current.is_none());
    let c = v.commit("kv", Kind::Logical, 3, b"three", &[]).unwrap();
    assert_eq!(c.generation, 3, "newer than any header on the disk");
}

#[test]
fn damage_after_opening_is_noticed() {
    let mut v = open(formatted());
    v.commit("kv", Kind::Logical, 1, b"one", &[]).unwrap();
    v.commit("kv", Kind::Logical, 2, b"two", &[]).unwrap();
    let at = slot_lba(&v, "kv", 1) as usize * SECTOR + 128;
    v.disk().bytes[at] ^= 0xff;
    let (g, data, slot, note) = latest(&mut v, "kv").unwrap();
    assert_eq!((g, data.as_slice(), slot), (1, &b"one"[..], 0));
    assert!(note.contains("slot 1 damaged (payload checksum mismatch"), "{note}");
}

#[test]
fn bad_requests_are_refused() {
    let mut v = open(formatted());
    for name in ["", ".hidden", "a/b", "a\\b", "x y", &"n".repeat(65), "é"] {
        assert_eq!(v.commit(name, Kind::Logical, 0, b"", &[]).unwrap_err().code(), 400, "{name:?}");
    }
    assert_eq!(v.commit("kv", Kind::Logical, 0, b"", &[1, 2, 3]).unwrap_err().code(), 400);
    let huge = vec![0u8; MAX_STATE as usize + 1];
    assert_eq!(v.commit("kv", Kind::Logical, 0, &huge, &[]).unwrap_err().code(), 413);
    assert!(v.list().is_empty(), "nothing was created");
    assert_eq!(v.commit(&"n".repeat(64), Kind::Logical, 0, b"", &[]).unwrap().generation, 1);
}

#[test]
fn a_failing_disk_fails_the_commit_and_keeps_the_old_record() {
    let mut v = open(formatted());
    v.commit("kv", Kind::Logical, 1, &state(1, 2000), &[]).unwrap();
    v.commit("kv", Kind::Logical, 2, &state(2, 2000), &[]).unwrap();
    v.disk().fail_after = Some(2);
    assert_eq!(v.commit("kv", Kind::Logical, 3, &state(3, 2000), &[]).unwrap_err().code(), 500);
    v.disk().fail_after = None;
    assert_eq!(latest(&mut v, "kv").unwrap().0, 2);
    let mut v = open(v.into_disk());
    assert_eq!(latest(&mut v, "kv").unwrap().0, 2);
    let c = v.commit("kv", Kind::Logical, 4, &state(4, 2000), &[]).unwrap();
    assert_eq!(c.slot, 0);
    assert_eq!(latest(&mut v, "kv").unwrap().1, state(4, 2000));
}

/// A disk that sees `base` with `overlay` on top and keeps its own writes
/// to itself.
struct Overlay<'a> {
    base: &'a MemDisk,
    overlay: Map<u64, Vec<u8>>,
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

/// The newest record a vault opened on `base` + `writes` returns (no
/// panic, no error).
fn after_cut(base: &MemDisk, writes: &[&(u64, Vec<u8>)], service: &str) -> Option<Vec<u8>> {
    let mut overlay = Map::new();
    for (lba, data) in writes {
        overlay.insert(*lba, data.clone());
    }
    let disk = Overlay { base, overlay };
    let mut v = Vault::open(disk, clock).unwrap_or_else(|e| panic!("the vault does not open after a cut: {e}"));
    v.latest(service).unwrap().map(|l| l.record.state)
}

/// Commit `new` on a vault over `disk` (reopened), recording every sector
/// written; then for every prefix of those writes, check what a fresh
/// vault returns: the new state or `previous`, nothing else.
fn cut_everywhere(disk: MemDisk, new: &[u8], previous: Option<&[u8]>) -> (MemDisk, usize) {
    let base = disk.clone();
    let mut v = open(disk);
    v.disk().record();
    v.commit("kv", Kind::Logical, 9, new, &[]).unwrap();
    let journal = v.disk().take_journal();
    assert!(!journal.is_empty());
    let all: Vec<&(u64, Vec<u8>)> = journal.iter().collect();
    for k in 0..=all.len() {
        let got = after_cut(&base, &all[..k], "kv");
        let ok = got.as_deref() == Some(new) || got.as_deref() == previous;
        assert!(ok, "cut after {k} of {} sector writes: got {:?} bytes", all.len(), got.map(|g| g.len()));
        if k == all.len() {
            assert_eq!(got.as_deref(), Some(new), "the whole commit");
        }
    }
    (v.into_disk(), journal.len())
}

#[test]
fn a_power_cut_during_a_commit_yields_the_new_or_the_previous_record() {
    let mut disk = formatted();
    // The first commit creates the slot files: a cut anywhere leaves either
    // nothing or the new record.
    let first = state(1, 700);
    let (d, n) = cut_everywhere(disk, &first, None);
    assert!(n > 1000, "creating the slots writes them ({n} sectors)");
    disk = d;
    let mut previous = first;
    for (g, len) in [(2u8, 3000usize), (3, 100), (4, 5000), (5, 40_000)] {
        let next = state(g, len);
        let (d, n) = cut_everywhere(disk, &next, Some(&previous));
        assert_eq!(n, (len + HEADER_LEN).div_ceil(SECTOR), "a commit writes only the record's sectors");
        disk = d;
        previous = next;
    }
    // A commit that grows its slot first.
    let big = state(6, 1_200_000);
    let (d, _) = cut_everywhere(disk, &big, Some(&previous));
    disk = d;
    assert!(clean(&mut disk));
}

#[test]
fn torn_writes_in_any_order_yield_the_new_or_the_previous_record() {
    // A device may write the sectors of one request in any order: any
    // subset of a commit's sectors may have reached the disk.
    let mut v = open(formatted());
    let old = state(1, 4000);
    v.commit("kv", Kind::Logical, 1, &state(0, 4000), &[]).unwrap();
    v.commit("kv", Kind::Logical, 2, &old, &[]).unwrap();
    let base = v.into_disk();
    let mut v = open(base.clone());
    v.disk().record();
    let new = state(2, 4000);
    v.commit("kv", Kind::Logical, 3, &new, &[]).unwrap();
    let journal = v.disk().take_journal();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..2000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let subset: Vec<&(u64, Vec<u8>)> =
            journal.iter().enumerate().filter(|(i, _)| seed >> (i % 64) & 1 == 1).map(|(_, w)| w).collect();
        let got = after_cut(&base, &subset, "kv");
        assert!(got.as_deref() == Some(&new[..]) || got.as_deref() == Some(&old[..]));
    }
}

/// With the host's mkfs.fat and fsck.fat (skipped without them): the
/// vault's work on a mkfs.fat FAT32 image leaves it clean for fsck.
#[test]
fn fsck_finds_the_file_system_clean() {
    let have = |c: &str| {
        std::process::Command::new("sh")
            .args(["-c", &format!("command -v {c}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !have("mkfs.fat") || !have("fsck.fat") {
        eprintln!("skipped: no mkfs.fat / fsck.fat");
        return;
    }
    let dir = std::env::temp_dir().join(format!("vault-fsck-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let img = dir.join("checkpoint.img");
    let _ = std::fs::remove_file(&img);
    let out = std::process::Command::new("mkfs.fat").args(["-F", "32", "-C"]).arg(&img).arg("65536").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(&img).unwrap();
    let mut disk = MemDisk::new((bytes.len() / SECTOR) as u64);
    disk.bytes.copy_from_slice(&bytes);
    let mut v = open(disk);
    for g in 0..6u8 {
        v.commit("kv", Kind::Logical, g as u64, &state(g, 5000), &[]).unwrap();
        v.commit("tally", Kind::Image, g as u64, &state(g, 262_144), &[]).unwrap();
    }
    v.commit("tally", Kind::Image, 9, &state(9, 2_500_000), &[]).unwrap();
    std::fs::write(&img, &v.into_disk().bytes).unwrap();
    let out = std::process::Command::new("fsck.fat").arg("-n").arg(&img).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success() && !text.contains("Dirty bit"), "fsck.fat -n:\n{text}");
}
