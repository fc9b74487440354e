//! The block service on real (emulated) disks: the guest reads back
//! patterns the host wrote into the data disk image before boot, writes
//! patterns of its own at random sectors in multi-extent requests (the
//! host checks the image's bytes after shutdown), gets the contract's
//! errors for bad requests, and loses nothing while `blk` is crashed under
//! it. Once with virtio-blk, once with AHCI.

use kintsugi_tests::disks;
use kintsugi_tests::{boot_with, DiskBus, Machine, QemuConfig};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

const SECTOR: usize = 512;

/// Byte `i` of sector `lba` in pattern `seed`: the same function as
/// `blk::pattern_byte` in the guest.
fn pattern_byte(seed: u64, lba: u64, i: usize) -> u8 {
    let x =
        (lba.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed.wrapping_mul(0xBF58_476D_1CE4_E5B9)).wrapping_add(i as u64 / 8);
    let x = (x ^ (x >> 31)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (x >> (8 * (i % 8))) as u8
}

fn pattern(seed: u64, lba: u64, count: u32) -> Vec<u8> {
    (0..count as u64).flat_map(|s| (0..SECTOR).map(move |i| pattern_byte(seed, lba + s, i))).collect()
}

/// Non-overlapping extents in sectors `lo..hi`, from a fixed seed.
fn host_extents(seed: u64, n: usize, lo: u64, hi: u64) -> Vec<(u64, u32)> {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out: Vec<(u64, u32)> = Vec::new();
    while out.len() < n {
        let count = 1 + (next() % 64) as u32;
        let lba = lo + next() % (hi - lo - count as u64);
        if !out.iter().any(|&(l, c)| lba < l + c as u64 && l < lba + count as u64) {
            out.push((lba, count));
        }
    }
    out
}

fn write_image(path: &Path, lba: u64, data: &[u8]) {
    let mut f = std::fs::OpenOptions::new().write(true).open(path).expect("open image");
    f.seek(SeekFrom::Start(lba * SECTOR as u64)).expect("seek");
    f.write_all(data).expect("write image");
}

fn read_image(path: &Path, lba: u64, len: usize) -> Vec<u8> {
    let mut f = std::fs::File::open(path).expect("open image");
    f.seek(SeekFrom::Start(lba * SECTOR as u64)).expect("seek");
    let mut buf = vec![0; len];
    f.read_exact(&mut buf).expect("read image");
    buf
}

/// The `extent LBA COUNT` lines blkpattern printed (a line may start with
/// a character the shell echoed while the test typed a command).
fn printed_extents(console: &str) -> Vec<(u64, u32)> {
    console
        .lines()
        .filter_map(|l| {
            let mut w = l[l.find("extent ")? + 7..].split_whitespace();
            Some((w.next()?.parse().ok()?, w.next()?.parse().ok()?))
        })
        .collect()
}

fn crash(m: &mut Machine, how: &str) {
    let out = m.shq(&format!("crash blk {how}"));
    assert!(out.contains("recovered in"), "crash blk {how}:\n{out}");
}

fn block_round_trip(bus: DiskBus, name: &str) {
    const HOST_SEED: u64 = 0x5eed_0001;
    const GUEST_SEED: u64 = 0x5eed_0002;
    let (dir, disks) = disks::fresh(name).unwrap_or_else(|e| panic!("{e}"));
    let data = &disks[0];
    let host = host_extents(HOST_SEED, 12, 4096, 60000);
    for &(lba, count) in &host {
        write_image(data, lba, &pattern(HOST_SEED, lba, count));
    }
    let mut m = boot_with(&QemuConfig { disks: disks.clone(), disk_bus: bus, ..QemuConfig::default() });

    let info = m.shq("blk info data");
    let size = format!("data: {} sectors of 512 bytes ({} MiB)", disks::DATA_MIB * 2048, disks::DATA_MIB);
    assert!(info.contains(&size), "{info}");
    assert!(info.contains("serial 'kintsugi-disk0'"), "{info}");
    let info = m.shq("blk info checkpoint");
    assert!(info.contains("serial 'kintsugi-disk1'"), "{info}");

    // The host's patterns read back in the guest.
    let list: Vec<String> = host.iter().map(|(l, c)| format!("{l}:{c}")).collect();
    let sectors: u32 = host.iter().map(|e| e.1).sum();
    let out = m.shq(&format!("run blkpattern verify data {HOST_SEED} {}", list.join(",")));
    assert!(out.contains(&format!("verified 12 extents ({sectors} sectors), errors=0")), "{out}");

    // The shell's own block commands.
    let out = m.shq("blk write data 5 48656c6c6f2c20626c6b");
    assert!(out.contains("wrote 10 bytes at sector 5 of the data disk (1 sectors)"), "{out}");
    let out = m.shq("blk read data 5");
    assert!(out.contains("00000a00  48 65 6c 6c 6f 2c 20 62  6c 6b"), "{out}");
    assert!(out.contains("|Hello, blk"), "{out}");
    let out = m.shq(&format!("blk read data {}", disks::DATA_MIB * 2048));
    assert!(out.contains("blk: error 416"), "{out}");

    // The guest's patterns, with blk crashed three ways while it writes.
    m.sh(&format!("run blkpattern write data {GUEST_SEED} 400 65536 131000 &"));
    m.wait_for_text("extent ", Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    for how in ["", "panic", "fault"] {
        crash(&mut m, how);
    }
    // The crashes came while blkpattern was still writing.
    assert!(!m.console().contains("blkpattern: wrote"), "blkpattern finished before the crashes");
    let summary = m.wait_for_line("blkpattern: wrote", Duration::from_secs(120)).unwrap_or_else(|e| panic!("{e}"));
    assert!(summary.ends_with("errors=0"), "{summary}\n{}", m.console());
    let guest = printed_extents(&m.console());
    eprintln!("{name}: {summary}; {} extents checked on the host", guest.len());
    assert!(summary.contains(&format!("wrote {} extents", guest.len())), "{} extents printed: {summary}", guest.len());

    let out = m.shq("run blkpattern errors data");
    assert!(out.contains("contract errors checked, wrong=0"), "{out}");
    m.power_off(Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));

    // After shutdown the image holds exactly what the guest wrote.
    for &(lba, count) in &guest {
        assert!(
            read_image(data, lba, count as usize * SECTOR) == pattern(GUEST_SEED, lba, count),
            "extent {lba}+{count} differs"
        );
    }
    for &(lba, count) in &host {
        assert!(
            read_image(data, lba, count as usize * SECTOR) == pattern(HOST_SEED, lba, count),
            "host extent {lba}+{count}"
        );
    }
    assert_eq!(&read_image(data, 5, 10), b"Hello, blk");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn virtio_blk_patterns_survive_crashes() {
    block_round_trip(DiskBus::Virtio, "blk-virtio");
}

#[test]
fn ahci_patterns_survive_crashes() {
    block_round_trip(DiskBus::Ahci, "blk-ahci");
}

/// Requests blk's companion delivered (`ps`'s REQUESTS column).
fn through_companion(m: &mut Machine) -> u64 {
    m.ps_figure("blk", 6)
}

/// Lanes (issue 10): a blk client sends the requests that carry no sectors
/// (here the shared-buffer ones, every other batch of blkpattern) straight
/// to the service, so the companion delivers only the others; while chaos
/// is on, the companion refuses lanes and delivers every request again;
/// both ways every byte is right.
#[test]
fn blk_requests_take_the_lane_unless_chaos_is_on() {
    let (dir, disks) = disks::fresh("blk-lanes").unwrap_or_else(|e| panic!("{e}"));
    let mut m = boot_with(&QemuConfig { disks: disks.clone(), ..QemuConfig::default() });
    // 100 batches: 50 in the messages (a write and a read back each: 100
    // requests), 50 through the shared buffer (100 more), plus an Info
    // and a Flush.
    let before = through_companion(&mut m);
    let out = m.shq("run blkpattern write data 7 100 300000 400000");
    assert!(out.contains("errors=0"), "{out}");
    let by_lanes = through_companion(&mut m) - before;
    assert!((100..110).contains(&by_lanes), "{by_lanes} requests through the companion with lanes:\n{out}");

    assert!(m.shq("chaos blk 0.1").contains("0.1"), "chaos did not start");
    let before = through_companion(&mut m);
    let out = m.shq("run blkpattern write data 8 100 400000 500000");
    assert!(out.contains("errors=0"), "{out}");
    let with_chaos = through_companion(&mut m) - before;
    assert!(with_chaos >= 200, "{with_chaos} requests through the companion while chaos was on:\n{out}");
    m.shq("chaos blk 0");
    m.shutdown();
    let _ = std::fs::remove_dir_all(dir);
}
