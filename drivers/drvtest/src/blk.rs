//! `drvtest blk`: the block device test (see the crate doc).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use drivers::{BlockDevice, DeviceError};
use libos::println;
use libos::time::now_ns;

/// Bytes at the end of the test disk that the test saves, uses and restores.
const REGION: usize = 2 << 20;
/// The multi-request transfer.
const MULTI: usize = 256 << 10;

fn pattern(lba: u64, len: usize, sector: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            let s = lba + (i / sector) as u64;
            (s as u8).wrapping_mul(31) ^ (i as u8).wrapping_mul(7) ^ seed ^ ((i >> 8) as u8)
        })
        .collect()
}

fn first_mismatch(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y).or((a.len() != b.len()).then_some(a.len().min(b.len())))
}

struct Check {
    failures: u32,
}

impl Check {
    fn result(&mut self, what: &str, r: Result<String, String>) {
        match r {
            Ok(detail) => println!("drvtest: {what}: ok{}{detail}", if detail.is_empty() { "" } else { ", " }),
            Err(e) => {
                self.failures += 1;
                println!("drvtest: {what}: FAILED: {e}");
            }
        }
    }
}

fn e(err: DeviceError) -> String {
    alloc::format!("{err}")
}

/// Write `data` at `lba`, read it back, compare; returns timings.
fn round_trip(d: &mut dyn BlockDevice, lba: u64, data: &[u8]) -> Result<(u64, u64), String> {
    let t0 = now_ns();
    d.write(lba, data).map_err(e)?;
    let t1 = now_ns();
    let mut back = vec![0u8; data.len()];
    d.read(lba, &mut back).map_err(e)?;
    let t2 = now_ns();
    if let Some(at) = first_mismatch(data, &back) {
        return Err(alloc::format!("read back differs at byte {at}"));
    }
    Ok((t1 - t0, t2 - t1))
}

pub fn run() -> i32 {
    let t = now_ns();
    let mut disks: Vec<Box<dyn BlockDevice>> = drivers::block_devices();
    println!("drvtest: {} disk(s) found in {} ms", disks.len(), super::ms_since(t));
    for (i, d) in disks.iter().enumerate() {
        let info = d.info();
        println!(
            "drvtest: disk {i}: serial '{}', model '{}', {} sectors of {} bytes ({} MiB)",
            info.serial,
            info.model,
            info.sectors,
            info.sector_size,
            (info.sectors * info.sector_size as u64) >> 20
        );
    }
    let mut c = Check { failures: 0 };
    for (i, d) in disks.iter_mut().enumerate() {
        let mut boot = vec![0u8; d.info().sector_size as usize];
        let r = d.read(0, &mut boot).map_err(e).and_then(|_| {
            if boot.len() >= 512 && boot[510] == 0x55 && boot[511] == 0xaa {
                let label = boot.get(71..82).map(drivers::ident::ascii).unwrap_or_default();
                Ok(alloc::format!("boot signature 55aa, FAT32 label '{label}'"))
            } else {
                Err(String::from("no boot signature in sector 0"))
            }
        });
        c.result(&alloc::format!("disk {i}: read sector 0"), r);
    }
    let index = disks.iter().position(|d| d.info().serial == "kintsugi-disk1").or((disks.len() >= 2).then_some(1));
    let Some(index) = index else {
        println!("drvtest: no disk 1 to write to");
        println!("drvtest blk: FAIL");
        return 1;
    };
    let d = disks[index].as_mut();
    let info = d.info().clone();
    let sector = info.sector_size as usize;
    let region_sectors = (REGION / sector) as u64;
    if info.sectors < 2048 + region_sectors {
        println!("drvtest: disk {index} is too small for the test");
        println!("drvtest blk: FAIL");
        return 1;
    }
    let start = info.sectors - region_sectors;
    println!("drvtest: testing disk {index} ('{}'), sectors {start}..{}", info.serial, info.sectors);

    // Save what is there.
    let mut saved = vec![0u8; REGION];
    let t0 = now_ns();
    let r = d.read(start, &mut saved).map_err(e);
    let save_ns = now_ns() - t0;
    let saved_ok = r.is_ok();
    c.result("save the last 2 MiB", r.map(|_| alloc::format!("{} ({})", super::rate(REGION, save_ns), "read")));
    if !saved_ok {
        println!("drvtest blk: FAIL");
        return 1;
    }

    // A few sectors at the very end.
    let few = 8 * sector;
    let lba = info.sectors - 8;
    let data = pattern(lba, few, sector, 0x5a);
    c.result("write+read 8 sectors at the end", round_trip(d, lba, &data).map(|_| String::new()));
    // One sector in the middle of the region.
    let lba = start + 77;
    let data = pattern(lba, sector, sector, 0x33);
    c.result("write+read 1 sector", round_trip(d, lba, &data).map(|_| String::new()));

    // A transfer of several requests in flight at once.
    let data = pattern(start, MULTI, sector, 0xa5);
    c.result(
        "write+read 256 KiB (multi-request)",
        round_trip(d, start, &data)
            .map(|(w, r)| alloc::format!("write {}, read {}", super::rate(MULTI, w), super::rate(MULTI, r))),
    );
    // An unaligned starting sector and odd length.
    let lba = start + 3;
    let data = pattern(lba, 333 * sector, sector, 0x11);
    c.result("write+read 333 sectors at an odd sector", round_trip(d, lba, &data).map(|_| String::new()));
    // The whole region, timed.
    let data = pattern(start, REGION, sector, 0xc3);
    c.result(
        "write+read 2 MiB",
        round_trip(d, start, &data)
            .map(|(w, r)| alloc::format!("write {}, read {}", super::rate(REGION, w), super::rate(REGION, r))),
    );
    c.result("flush", d.flush().map(|_| String::new()).map_err(e));

    // Errors.
    let mut one = vec![0u8; sector];
    let r = match d.read(info.sectors, &mut one) {
        Err(DeviceError::OutOfRange) => Ok(String::from("OutOfRange")),
        other => Err(alloc::format!("got {other:?}")),
    };
    c.result("read past the end refused", r);
    let r = match d.read(info.sectors - 1, &mut vec![0u8; 2 * sector]) {
        Err(DeviceError::OutOfRange) => Ok(String::from("OutOfRange")),
        other => Err(alloc::format!("got {other:?}")),
    };
    c.result("read across the end refused", r);
    let r = match d.write(start, &[0u8; 100]) {
        Err(DeviceError::Misaligned) => Ok(String::from("Misaligned")),
        other => Err(alloc::format!("got {other:?}")),
    };
    c.result("partial-sector write refused", r);

    // Put the disk back as it was.
    let r = d.write(start, &saved).map_err(e).and_then(|_| d.flush().map_err(e)).and_then(|_| {
        let mut back = vec![0u8; REGION];
        d.read(start, &mut back).map_err(e)?;
        match first_mismatch(&saved, &back) {
            None => Ok(String::new()),
            Some(at) => Err(alloc::format!("differs at byte {at}")),
        }
    });
    c.result("restore the last 2 MiB", r);

    if c.failures == 0 {
        println!("drvtest blk: PASS");
        0
    } else {
        println!("drvtest blk: FAIL ({} checks failed)", c.failures);
        1
    }
}
