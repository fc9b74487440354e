//! Unit tests of the vault core on in-memory disks: the pool, commits,
//! slots and their growth, damaged slots, failing disks, the request log
//! and its group commit, old slot files, and power cuts after every sector
//! write (of a service's first commit, of growth, of commits, of appends,
//! of the pool's creation), checked with `fsck.fat -n` where the host has
//! it.

use super::*;
use crate::disk::MemDisk;
use crate::testutil::{cut_points, fsck, have_dosfstools, mkfs, Overlay};
use checkpoint_record::epoch::{self, BlockWrite};
use fatfs::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

static CLOCK: AtomicU64 = AtomicU64::new(0);

fn clock() -> u64 {
    CLOCK.fetch_add(1000, Ordering::Relaxed)
}

/// Sectors of the test disks (16 MiB: FAT16 with small clusters).
const SECTORS: u64 = 32 * 1024;

/// A disk formatted with fatfs, as mkfs would leave it.
fn formatted() -> MemDisk {
    crate::testutil::fatfs_formatted(SECTORS)
}

fn open<D: SectorDisk>(disk: D) -> Vault<D> {
    Vault::open(disk, clock).unwrap_or_else(|e| panic!("the vault does not open: {e}"))
}

/// A formatted disk the vault has opened once (its pool made).
fn with_pool() -> MemDisk {
    open(formatted()).into_disk()
}

fn state(tag: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| tag.wrapping_add(i as u8)).collect()
}

fn latest<D: SectorDisk>(v: &mut Vault<D>, service: &str) -> Option<(u64, Vec<u8>, u8, String)> {
    v.latest(service)
        .unwrap()
        .and_then(|l| l.record.clone().map(|r| (r.header.generation, r.state, l.slot, l.note.clone())))
}

fn log_of<D: SectorDisk>(v: &mut Vault<D>, service: &str) -> Vec<Vec<u8>> {
    v.latest(service).unwrap().map(|l| l.log).unwrap_or_default()
}

/// Whether the FAT file system on `disk` is marked clean.
fn clean(disk: &mut MemDisk) -> bool {
    let mut cache = BlockCache::new(&mut *disk, 64);
    let fs = fatfs::FileSystem::new(FatIo::new(&mut cache), fatfs::FsOptions::new()).unwrap();
    let flags = fs.read_status_flags().unwrap();
    !flags.dirty()
}

/// Where a slot's first sector is on the disk.
fn slot_lba<D: SectorDisk>(v: &Vault<D>, service: &str, slot: usize) -> u64 {
    let r = v.slots(service).unwrap().slots[slot].region;
    v.pool().map(r.start, 1).unwrap()[0].0
}

#[test]
fn a_blank_disk_is_formatted_and_gets_its_pool() {
    let mut v = open(MemDisk::new(SECTORS));
    assert!(v.list().is_empty());
    assert_eq!(v.boot(), 1);
    assert!(v.made_pool());
    assert!(v.pool().sectors() * 512 > 12 << 20, "most of the 16 MiB: {}", v.pool().sectors());
    assert!(latest(&mut v, "kv").is_none());
    let mut disk = v.into_disk();
    assert_eq!(&disk.bytes[510..512], &[0x55, 0xaa]);
    assert!(clean(&mut disk));
    // And it opens again, untouched: the same pool, nothing made.
    let before = disk.bytes.clone();
    let v = open(disk);
    assert!(!v.made_pool() && v.list().is_empty());
    assert!(v.into_disk().bytes == before, "opening a clean vault writes nothing");
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
    let l = v.latest("kv").unwrap().unwrap().record.unwrap();
    assert_eq!((l.header.generation, l.header.taken_ns, l.header.boot), (3, 33, 1));
    let c4 = v.commit("kv", Kind::Logical, 44, &state(4, 1), &[]).unwrap();
    assert_eq!((c4.generation, c4.slot), (4, 1), "generations go on across reboots");
    assert_eq!(v.latest("kv").unwrap().unwrap().record.unwrap().header.boot, 2);
}

#[test]
fn the_boot_number_moves_once_per_machine_boot_not_per_vault_restart() {
    let open_in = |disk: MemDisk, boot_id: u64| {
        Vault::open_in_boot(disk, clock, boot_id).unwrap_or_else(|e| panic!("the vault does not open: {e}"))
    };
    // Machine boot A: the vault opens, commits, and restarts twice.
    let mut v = open_in(formatted(), 0xa);
    assert_eq!(v.boot(), 1);
    v.commit("fs", Kind::Logical, 1, b"open files", &[]).unwrap();
    let v = open_in(v.into_disk(), 0xa);
    assert_eq!(v.boot(), 1, "a restart of the vault's process within the boot");
    let mut v = open_in(v.into_disk(), 0xa);
    assert_eq!(v.boot(), 1, "and again (before, each restart said one more)");
    assert_eq!(v.latest("fs").unwrap().unwrap().record.unwrap().header.boot, 1);
    v.commit("fs", Kind::Logical, 2, b"more", &[]).unwrap();
    // Machine boot B, after a cut: a new number, kept over its restarts.
    let v = open_in(v.into_disk(), 0xb);
    assert_eq!(v.boot(), 2);
    let v = open_in(v.into_disk(), 0xb);
    assert_eq!(v.boot(), 2);
    // Machine boot C, in which no record is written before the vault
    // restarts: the table alone carries the number.
    let v = open_in(v.into_disk(), 0xc);
    assert_eq!(v.boot(), 3);
    let v = open_in(v.into_disk(), 0xc);
    assert_eq!(v.boot(), 3);
    // An unknown identity is a new boot every time, after every boot known.
    let v = open(v.into_disk());
    assert_eq!(v.boot(), 4);
    let mut disk = v.into_disk();
    assert!(clean(&mut disk));
}

#[test]
fn services_are_independent_and_listed() {
    let mut v = open(formatted());
    v.commit("kv", Kind::Logical, 1, b"kv state", &[]).unwrap();
    v.commit("tally", Kind::Image, 2, &state(9, 8192), &[]).unwrap();
    v.commit("tally", Kind::Image, 3, &state(10, 8192), &[]).unwrap();
    v.append("kv", 1, b"entry").unwrap();
    let list = v.list();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].service, "kv");
    let (slot, h) = list[0].current.clone().unwrap();
    assert_eq!((slot, h.generation, h.kind, h.state_len), (0, 1, Kind::Logical, 8));
    assert_eq!((list[0].log_entries, list[0].log_bytes, list[0].log_capacity), (1, 5, LOG_BYTES));
    let (slot, h) = list[1].current.clone().unwrap();
    assert_eq!((slot, h.generation, h.kind), (1, 2, Kind::Image));
    assert_eq!(list[1].log_entries, 0);
    let v2 = open(v.into_disk());
    assert_eq!(v2.list(), list);
}

#[test]
fn epochs_are_kept() {
    let mut v = open(formatted());
    let e = epoch::encode(&[BlockWrite { disk: 0, lba: 100, data: vec![7; 1024] }]).unwrap();
    v.commit("fs", Kind::Logical, 5, b"open files", &e).unwrap();
    let mut v = open(v.into_disk());
    let l = v.latest("fs").unwrap().unwrap().record.unwrap();
    assert_eq!(l.epoch, e);
    let w = l.writes().unwrap();
    assert_eq!((w[0].disk, w[0].lba, w[0].data.len()), (0, 100, 1024));
}

#[test]
fn slots_grow_when_a_record_does_not_fit() {
    let mut v = open(formatted());
    v.commit("big", Kind::Image, 1, &state(1, 1000), &[]).unwrap();
    assert_eq!(v.slots("big").unwrap().slots[1].capacity(), MIN_SLOT_BYTES);
    let large = state(2, 600_000);
    let c = v.commit("big", Kind::Image, 2, &large, &[]).unwrap();
    assert_eq!(c.slot, 1);
    let s = v.slots("big").unwrap();
    assert_eq!(s.slots[1].capacity(), 4 * MIN_SLOT_BYTES);
    assert_eq!(s.slots[0].capacity(), MIN_SLOT_BYTES, "only the slot written grows");
    assert_eq!(latest(&mut v, "big").unwrap().1, large);
    let larger = state(3, 3_000_000);
    let c = v.commit("big", Kind::Image, 3, &larger, &[]).unwrap();
    assert_eq!((c.generation, c.slot), (3, 0));
    assert_eq!(v.slots("big").unwrap().slots[0].capacity(), 16 * MIN_SLOT_BYTES);
    let table_before = v.table().clone();
    let mut disk = v.into_disk();
    assert!(clean(&mut disk), "growing leaves the file system clean");
    let mut v = open(disk);
    assert_eq!(v.table(), &table_before);
    assert_eq!(latest(&mut v, "big").unwrap().1, larger);
    v.commit("big", Kind::Image, 4, &state(4, 10), &[]).unwrap();
    assert_eq!(latest(&mut v, "big").unwrap().0, 4);
}

#[test]
fn a_pool_that_fills_up_fails_the_commit_and_keeps_the_old_record() {
    let mut v = open(formatted());
    v.commit("kv", Kind::Logical, 1, b"small", &[]).unwrap();
    let e = v.commit("kv", Kind::Logical, 2, &state(1, 20_000_000), &[]).unwrap_err();
    assert_eq!(e.code(), 507, "{e}");
    assert!(e.message().contains("no room in the pool for kv"), "{e}");
    assert_eq!(latest(&mut v, "kv").unwrap().1, b"small");
    v.commit("kv", Kind::Logical, 3, b"after", &[]).unwrap();
    assert_eq!(latest(&mut v, "kv").unwrap().1, b"after");
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
fn a_rejected_record_gives_way_to_the_one_before_with_its_log() {
    let mut v = open(formatted());
    v.commit("kv", Kind::Logical, 1, &state(1, 300), &[]).unwrap();
    v.append("kv", 1, b"put a").unwrap();
    v.append("kv", 1, b"put b").unwrap();
    let c2 = v.commit("kv", Kind::Logical, 2, &state(2, 300), &[]).unwrap();
    v.reject("kv", 7, "no such generation");
    assert_eq!(latest(&mut v, "kv").unwrap().0, c2.generation, "an unknown generation changes nothing");
    v.reject("kv", c2.generation, "restore failed");
    let (generation, data, _, note) = latest(&mut v, "kv").unwrap();
    assert_eq!((generation, data), (1, state(1, 300)));
    assert!(note.contains("set aside"), "{note}");
    assert_eq!(log_of(&mut v, "kv"), [b"put a".to_vec(), b"put b".to_vec()], "the log after the older record");
    // Appends follow the record now restored; the next commit replaces the
    // rejected one.
    v.append("kv", 1, b"put c").unwrap();
    let c3 = v.commit("kv", Kind::Logical, 3, &state(3, 300), &[]).unwrap();
    assert_eq!(c3.slot, c2.slot);
    assert!(c3.generation > c2.generation);
    assert_eq!(latest(&mut v, "kv").unwrap().0, c3.generation);
}

#[test]
fn a_damaged_older_slot_changes_nothing() {
    let mut v = open(formatted());
    for g in 1..=4u8 {
        v.commit("kv", Kind::Logical, g as u64, &state(g, 600), &[]).unwrap();
    }
    let at = slot_lba(&v, "kv", 0) as usize * SECTOR + 300;
    let mut disk = v.into_disk();
    disk.bytes[at] ^= 1;
    let mut v = open(disk);
    assert_eq!(latest(&mut v, "kv").unwrap(), (4, state(4, 600), 1, String::new()));
}

/// A newest record lost whole (its slot zeroed, or its header damaged so
/// that its generation is unknown) after entries were appended to its
/// log: the vault says so, falls back, and the next commit takes a newer
/// generation than those entries, which would otherwise read as its log
/// (found by the soak's damage of slots; the stale entries were replayed
/// on the new record after the next restart).
#[test]
fn a_lost_newest_record_does_not_give_its_log_to_the_next_commit() {
    for (what, zeroed) in [("zeroed", 0..4 * SECTOR), ("header", 20..21)] {
        let mut v = open(formatted());
        v.commit("kv", Kind::Logical, 1, &state(1, 1000), &[]).unwrap();
        v.append("kv", 1, b"put a").unwrap();
        let c2 = v.commit("kv", Kind::Logical, 2, &state(2, 1000), &[]).unwrap();
        assert_eq!((c2.generation, c2.slot), (2, 1));
        v.append("kv", 2, b"put b").unwrap();
        v.append("kv", 2, b"put c").unwrap();
        let at = slot_lba(&v, "kv", 1) as usize * SECTOR;
        let mut disk = v.into_disk();
        for b in &mut disk.bytes[at + zeroed.start..at + zeroed.end] {
            *b = if what == "zeroed" { 0 } else { *b ^ 0x40 };
        }
        let mut v = open(disk);
        let (generation, data, slot, note) = latest(&mut v, "kv").unwrap();
        assert_eq!((generation, data, slot), (1, state(1, 1000), 0), "{what}");
        assert!(!note.is_empty(), "{what}: the fallback is said");
        if what == "zeroed" {
            assert!(note.starts_with("the log follows generation 2, newer than any valid record"), "{note}");
        }
        assert!(log_of(&mut v, "kv").is_empty(), "{what}: generation 2's entries are not generation 1's");
        let c = v.commit("kv", Kind::Logical, 3, b"after", &[]).unwrap();
        assert_eq!((c.generation, c.slot), (3, 1), "{what}: newer than the lost record's log");
        // Cut before any append: the new record comes back alone.
        let mut v = open(v.into_disk());
        let l = v.latest("kv").unwrap().unwrap();
        assert_eq!((l.generation(), l.note.as_str()), (3, ""), "{what}");
        assert!(l.log.is_empty(), "{what}: the lost record's entries replayed on the new one: {:?}", l.log);
    }
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
fn a_damaged_table_copy_falls_back_to_the_other() {
    let mut v = open(formatted());
    v.commit("kv", Kind::Logical, 1, b"one", &[]).unwrap();
    v.commit("tally", Kind::Logical, 1, b"t", &[]).unwrap();
    // Table generation 2 (both services) is in copy 1, generation 1 (kv
    // only) in copy 0.
    let copy1 = v.pool().map(TABLE_SECTORS, 1).unwrap()[0].0;
    let mut disk = v.into_disk();
    disk.bytes[copy1 as usize * SECTOR + 50] ^= 4;
    let mut v = open(disk);
    assert_eq!(v.list().len(), 1, "the older table knows only kv");
    assert_eq!(latest(&mut v, "kv").unwrap().1, b"one");
    // The next table goes over the damaged copy.
    v.commit("fs", Kind::Logical, 1, b"f", &[]).unwrap();
    let v = open(v.into_disk());
    assert_eq!(v.list().iter().map(|l| l.service.as_str()).collect::<Vec<_>>(), ["fs", "kv"]);
}

#[test]
fn bad_requests_are_refused() {
    let mut v = open(formatted());
    for name in ["", ".hidden", "a/b", "a\\b", "x y", &"n".repeat(65), "é"] {
        assert_eq!(v.commit(name, Kind::Logical, 0, b"", &[]).unwrap_err().code(), 400, "{name:?}");
        assert_eq!(v.append(name, 0, b"x").unwrap_err().code(), 400, "{name:?}");
    }
    assert_eq!(v.commit("kv", Kind::Logical, 0, b"", &[1, 2, 3]).unwrap_err().code(), 400);
    let huge = vec![0u8; MAX_STATE as usize + 1];
    assert_eq!(v.commit("kv", Kind::Logical, 0, &huge, &[]).unwrap_err().code(), 413);
    assert_eq!(v.append("kv", 0, &vec![0; MAX_ENTRY as usize + 1]).unwrap_err().code(), 413);
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
    // The half-written record could not be taken back (the disk still
    // fails): appends after generation 2 are refused until a commit.
    assert_eq!(v.append("kv", 2, b"x").unwrap_err().code(), 500);
    v.disk().fail_after = None;
    assert_eq!(latest(&mut v, "kv").unwrap().0, 2);
    let mut v = open(v.into_disk());
    assert_eq!(latest(&mut v, "kv").unwrap().0, 2);
    let c = v.commit("kv", Kind::Logical, 4, &state(4, 2000), &[]).unwrap();
    assert_eq!(c.slot, 0);
    assert_eq!(latest(&mut v, "kv").unwrap().1, state(4, 2000));
    v.append("kv", c.generation, b"after").unwrap();
}

#[test]
fn a_commit_whose_flush_fails_is_taken_back_and_the_log_goes_on() {
    let mut v = open(formatted());
    v.commit("kv", Kind::Logical, 1, b"one", &[]).unwrap();
    v.append("kv", 1, b"a").unwrap();
    v.disk().fail_flushes = 1;
    assert_eq!(v.commit("kv", Kind::Logical, 2, b"two", &[]).unwrap_err().code(), 500);
    // The record reached the disk but the flush failed: it is taken back,
    // so it cannot turn up after a restart, and the log after generation 1
    // goes on.
    v.append("kv", 1, b"b").unwrap();
    let mut v = open(v.into_disk());
    let l = v.latest("kv").unwrap().unwrap();
    assert_eq!((l.generation(), l.log.clone()), (1, vec![b"a".to_vec(), b"b".to_vec()]));
}

// The request log.

#[test]
fn appends_follow_the_newest_checkpoint_and_survive_reopening() {
    let mut v = open(formatted());
    // Before any checkpoint: generation 0 (a wrong one makes no regions).
    assert_eq!(v.append("kv", 1, b"x").unwrap_err().code(), 409);
    assert!(v.list().is_empty());
    let a = v.append("kv", 0, b"first").unwrap();
    assert_eq!(a.entries, 1);
    assert_eq!(a.bytes_free, LOG_BYTES - 512);
    v.append("kv", 0, &vec![5; 700]).unwrap();
    let l = v.latest("kv").unwrap().unwrap();
    assert!(l.record.is_none(), "a log but no checkpoint yet");
    assert_eq!(l.log, [b"first".to_vec(), vec![5; 700]]);
    let mut v = open(v.into_disk());
    assert_eq!(log_of(&mut v, "kv"), [b"first".to_vec(), vec![5; 700]]);
    // A commit empties the log; the next entries follow generation 1.
    let c = v.commit("kv", Kind::Logical, 1, b"state", &[]).unwrap();
    assert_eq!(c.generation, 1);
    assert!(log_of(&mut v, "kv").is_empty());
    let e = v.append("kv", 0, b"late").unwrap_err();
    assert_eq!(e.code(), 409, "{e}");
    assert!(e.message().contains("newest committed checkpoint is generation 1"), "{e}");
    assert_eq!(v.append("kv", 1, b"one").unwrap().entries, 1);
    assert_eq!(v.append("kv", 1, b"two").unwrap().entries, 2);
    let mut v = open(v.into_disk());
    let l = v.latest("kv").unwrap().unwrap();
    assert_eq!((l.generation(), l.log.len()), (1, 2));
    assert_eq!(l.log, [b"one".to_vec(), b"two".to_vec()], "generation 0's entries never come back");
    // And after another commit, those are gone too, though still on the
    // disk past the new entries.
    v.commit("kv", Kind::Logical, 2, b"state 2", &[]).unwrap();
    v.append("kv", 2, b"three").unwrap();
    let mut v = open(v.into_disk());
    assert_eq!(log_of(&mut v, "kv"), [b"three".to_vec()]);
}

#[test]
fn a_full_log_is_refused_until_a_checkpoint() {
    let mut v = open(formatted());
    let entry = vec![1u8; 100_000];
    let mut n = 0;
    let e = loop {
        match v.append("kv", 0, &entry) {
            Ok(a) => n = a.entries,
            Err(e) => break e,
        }
    };
    assert_eq!(e.code(), 507, "{e}");
    assert!(e.message().contains("log is full"), "{e}");
    assert_eq!(n, LOG_BYTES / reqlog::entry_bytes(entry.len()) as u64);
    v.commit("kv", Kind::Logical, 1, b"s", &[]).unwrap();
    assert_eq!(v.append("kv", 1, &entry).unwrap().entries, 1);
}

#[test]
fn a_group_of_appends_is_flushed_once() {
    let mut v = open(formatted());
    v.commit("kv", Kind::Logical, 1, b"kv", &[]).unwrap();
    v.commit("tally", Kind::Logical, 1, b"t", &[]).unwrap();
    v.append("fs", 0, b"creates fs's regions").unwrap();
    let flushes = v.disk().flushes;
    let batch: Vec<(&str, u64, &[u8])> =
        vec![("kv", 1, b"a"), ("tally", 1, b"b"), ("kv", 1, b"c"), ("fs", 5, b"wrong generation"), ("fs", 0, b"d")];
    let out = v.append_many(&batch);
    assert_eq!(v.disk().flushes, flushes + 1, "one flush for the group");
    assert_eq!(out[0].as_ref().unwrap().entries, 1);
    assert_eq!(out[1].as_ref().unwrap().entries, 1);
    assert_eq!(out[2].as_ref().unwrap().entries, 2, "two of kv's in one group, in order");
    assert_eq!(out[3].as_ref().unwrap_err().code(), 409);
    assert_eq!(out[4].as_ref().unwrap().entries, 2);
    let mut v = open(v.into_disk());
    assert_eq!(log_of(&mut v, "kv"), [b"a".to_vec(), b"c".to_vec()]);
    assert_eq!(log_of(&mut v, "tally"), [b"b".to_vec()]);
    assert_eq!(log_of(&mut v, "fs"), [b"creates fs's regions".to_vec(), b"d".to_vec()]);
    // A group whose flush fails answers every entry with the error.
    v.disk().fail_after = Some(0);
    let out = v.append_many(&[("kv", 1, b"x"), ("tally", 1, b"y")]);
    assert!(out.iter().all(|r| r.as_ref().is_err_and(|e| e.code() == 500)), "{out:?}");
    v.disk().fail_after = None;
    assert_eq!(v.append("kv", 1, b"e").unwrap().entries, 3);
    assert_eq!(log_of(&mut v, "kv"), [b"a".to_vec(), b"c".to_vec(), b"e".to_vec()]);
}

/// Run `op` on a vault over `disk` (reopened), recording every sector
/// written; then for every cut point, open a fresh vault on what reached
/// the disk and hand it to `check` with the cut's index and the number of
/// writes. Returns the disk after the whole operation.
fn cut_everywhere(
    disk: MemDisk,
    samples: usize,
    op: impl FnOnce(&mut Vault<MemDisk>),
    mut check: impl FnMut(&mut Vault<Overlay<'_>>, usize, usize),
) -> (MemDisk, usize) {
    let base = disk.clone();
    let mut v = open(disk);
    v.disk().record();
    op(&mut v);
    let journal = v.disk().take_journal();
    assert!(!journal.is_empty());
    let all: Vec<&(u64, Vec<u8>)> = journal.iter().collect();
    for k in cut_points(all.len(), 64, samples) {
        let mut cut = open(Overlay::new(&base, &all[..k]));
        check(&mut cut, k, all.len());
    }
    (v.into_disk(), journal.len())
}

/// A commit cut anywhere yields the new record or `previous`.
fn commit_cut_everywhere(disk: MemDisk, new: &[u8], previous: Option<&[u8]>) -> (MemDisk, usize) {
    cut_everywhere(
        disk,
        600,
        |v| {
            v.commit("kv", Kind::Logical, 9, new, &[]).unwrap();
        },
        |cut, k, n| {
            let got = latest(cut, "kv").map(|l| l.1);
            let ok = got.as_deref() == Some(new) || got.as_deref() == previous;
            assert!(ok, "cut after {k} of {n} sector writes: got {:?} bytes", got.map(|g| g.len()));
            if k == n {
                assert_eq!(got.as_deref(), Some(new), "the whole commit");
            }
        },
    )
}

#[test]
fn a_power_cut_during_a_commit_yields_the_new_or_the_previous_record() {
    let mut disk = with_pool();
    // The first commit makes the slots (a table write): a cut anywhere
    // leaves nothing or the new record.
    let first = state(1, 700);
    let (d, n) = commit_cut_everywhere(disk, &first, None);
    assert!(n < 200, "making the slots writes a table and three sectors, not the slots ({n} sectors)");
    disk = d;
    let mut previous = first;
    for (g, len) in [(2u8, 3000usize), (3, 100), (4, 5000), (5, 40_000)] {
        let next = state(g, len);
        let (d, n) = commit_cut_everywhere(disk, &next, Some(&previous));
        assert_eq!(n, (len + 128).div_ceil(SECTOR), "a commit writes only the record's sectors");
        disk = d;
        previous = next;
    }
    // A commit that grows its slot first.
    let big = state(6, 1_200_000);
    let (d, _) = commit_cut_everywhere(disk, &big, Some(&previous));
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
    for _ in 0..500 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let subset: Vec<&(u64, Vec<u8>)> =
            journal.iter().enumerate().filter(|(i, _)| seed >> (i % 64) & 1 == 1).map(|(_, w)| w).collect();
        let got = latest(&mut open(Overlay::new(&base, &subset)), "kv").map(|l| l.1);
        assert!(got.as_deref() == Some(&new[..]) || got.as_deref() == Some(&old[..]));
    }
}

#[test]
fn a_power_cut_during_appends_keeps_every_answered_one() {
    let mut v = open(formatted());
    v.commit("kv", Kind::Logical, 1, b"kv", &[]).unwrap();
    v.commit("tally", Kind::Logical, 1, b"t", &[]).unwrap();
    v.append("kv", 1, b"answered before").unwrap();
    let disk = v.into_disk();
    let big = vec![0x77u8; 3000];
    // One group: two of kv's, one of tally's; none is answered before the
    // flush at its end, so a cut may keep any prefix of each service's.
    let (disk, _) = cut_everywhere(
        disk,
        2000,
        |v| {
            let out = v.append_many(&[("kv", 1, &big), ("tally", 1, b"t1"), ("kv", 1, b"k2")]);
            assert!(out.iter().all(|r| r.is_ok()));
        },
        |cut, k, n| {
            let kv = log_of(cut, "kv");
            assert_eq!(kv[0], b"answered before", "cut after {k} of {n}: an answered append lost");
            let prefix = [b"answered before".to_vec(), big.clone(), b"k2".to_vec()];
            assert!(kv.len() <= 3 && kv[..] == prefix[..kv.len()], "cut after {k}: kv log {kv:?}");
            let tally = log_of(cut, "tally");
            assert!(tally.is_empty() || tally == [b"t1".to_vec()], "cut after {k}: {tally:?}");
            // After the cut the log goes on from where it ends.
            let next = cut.append("kv", 1, b"next").unwrap();
            assert_eq!(next.entries, kv.len() as u64 + 1);
            assert_eq!(log_of(cut, "kv").last().unwrap(), b"next");
            if k == n {
                assert_eq!(kv.len(), 3);
            }
        },
    );
    // A commit, then appends for the new generation over the old entries;
    // a cut anywhere never brings the old generation's entries back.
    cut_everywhere(
        disk,
        2000,
        |v| {
            let c = v.commit("kv", Kind::Logical, 2, b"kv 2", &[]).unwrap();
            v.append("kv", c.generation, b"new 0").unwrap();
            v.append("kv", c.generation, b"new 1").unwrap();
        },
        |cut, k, _| {
            let l = cut.latest("kv").unwrap().unwrap();
            match l.generation() {
                1 => assert_eq!(l.log.len(), 3, "cut after {k}: the commit did not land, the old log stands"),
                2 => {
                    let all = [b"new 0".to_vec(), b"new 1".to_vec()];
                    assert!(l.log.len() <= 2 && l.log[..] == all[..l.log.len()], "cut after {k}: {:?}", l.log);
                }
                g => panic!("cut after {k}: generation {g}"),
            }
        },
    );
}

/// `fsck.fat -n` after a cut anywhere in a service's first commit, in a
/// slot's growth and in appends, with no repair in between: the vault
/// changes no FAT structure once its pool exists.
#[test]
fn cuts_during_slot_creation_growth_and_appends_leave_fsck_clean() {
    if !have_dosfstools() {
        return;
    }
    let disk = open(mkfs(66 * 1024, &["-F", "32"])).into_disk();
    let base = disk.clone();
    let mut v = open(disk);
    v.disk().record();
    v.commit("kv", Kind::Logical, 1, &state(1, 5000), &[]).unwrap(); // creates
    v.append("kv", 1, b"entry").unwrap();
    v.commit("kv", Kind::Logical, 2, &state(2, 700_000), &[]).unwrap(); // grows
    v.commit("tally", Kind::Image, 3, &state(3, 300_000), &[]).unwrap(); // creates, grown
    let journal = v.disk().take_journal();
    let all: Vec<&(u64, Vec<u8>)> = journal.iter().collect();
    for k in cut_points(all.len(), 8, 24) {
        let bytes = Overlay::new(&base, &all[..k]).bytes();
        if let Err(out) = fsck(&bytes) {
            panic!("cut after {k} of {} writes: fsck.fat -n:\n{out}", all.len());
        }
    }
}

/// A cut anywhere while the vault makes its pool (its first start on a
/// disk made by mkfs.fat): the next start repairs what is left and makes
/// the pool again, and `fsck.fat -n` finds the disk clean.
#[test]
fn a_power_cut_while_the_pool_is_made_is_repaired() {
    if !have_dosfstools() {
        return;
    }
    let base = mkfs(66 * 1024, &["-F", "32"]);
    let mut disk = base.clone();
    disk.record();
    let mut v = open(disk);
    let pool = v.pool().sectors();
    v.commit("kv", Kind::Logical, 1, b"first", &[]).unwrap();
    let journal = v.disk().take_journal();
    let all: Vec<&(u64, Vec<u8>)> = journal.iter().collect();
    for k in cut_points(all.len(), 12, 16) {
        let mut v = open(Overlay::new(&base, &all[..k]));
        assert!(v.pool().sectors() > 0);
        let got = latest(&mut v, "kv").map(|l| l.1);
        assert!(got.is_none() || got.as_deref() == Some(&b"first"[..]), "cut after {k}");
        let after = v.into_disk().bytes();
        if let Err(out) = fsck(&after) {
            panic!("cut after {k} of {} writes, then a start: fsck.fat -n:\n{out}", all.len());
        }
    }
    assert!(pool * 512 > 28 << 20, "the pool takes most of the 33 MiB: {pool} sectors");
}

/// With the host's mkfs.fat and fsck.fat (skipped without them): the
/// vault's work on a mkfs.fat FAT32 image leaves it clean for fsck.
#[test]
fn fsck_finds_the_file_system_clean() {
    if !have_dosfstools() {
        return;
    }
    let mut v = open(mkfs(64 * 1024 * 2, &["-F", "32"]));
    for g in 0..6u8 {
        v.commit("kv", Kind::Logical, g as u64, &state(g, 5000), &[]).unwrap();
        v.append("kv", v.slots("kv").unwrap().committed(), b"entry").unwrap();
        v.commit("tally", Kind::Image, g as u64, &state(g, 262_144), &[]).unwrap();
    }
    v.commit("tally", Kind::Image, 9, &state(9, 2_500_000), &[]).unwrap();
    fsck(&v.into_disk().bytes).unwrap();
}

/// What an older vault left: `/KINTSUGI/kv.0` and `kv.1`, one record each.
#[test]
fn old_slot_files_are_moved_into_the_pool() {
    let mut cache = BlockCache::new(formatted(), 64);
    let old = record::encode(
        &Meta { service: "kv", generation: 7, taken_ns: 5, boot: 3, kind: Kind::Logical },
        b"old state",
        &[],
    )
    .unwrap();
    let older = record::encode(
        &Meta { service: "kv", generation: 6, taken_ns: 4, boot: 3, kind: Kind::Logical },
        b"older",
        &[],
    )
    .unwrap();
    {
        let fs = fatfs::FileSystem::new(FatIo::new(&mut cache), fatfs::FsOptions::new()).unwrap();
        {
            let dir = fs.root_dir().create_dir("KINTSUGI").unwrap();
            for (name, bytes) in [("kv.0", &older), ("kv.1", &old)] {
                let mut f = dir.create_file(name).unwrap();
                let mut padded = bytes.clone();
                padded.resize(1 << 20, 0);
                f.write_all(&padded).unwrap();
                f.flush().unwrap();
            }
        }
        fs.unmount().unwrap();
    }
    cache.sync().unwrap();
    let mut v = open(cache.disk);
    let l = v.latest("kv").unwrap().unwrap().record.unwrap();
    assert_eq!((l.header.generation, l.state.as_slice()), (7, &b"old state"[..]));
    assert_eq!(v.boot(), 4);
    let c = v.commit("kv", Kind::Logical, 8, b"new", &[]).unwrap();
    assert_eq!(c.generation, 8);
    // Once in the pool, the old files are not read again.
    let mut v = open(v.into_disk());
    assert_eq!(latest(&mut v, "kv").unwrap().1, b"new");
}
