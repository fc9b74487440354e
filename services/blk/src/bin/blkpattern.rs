//! `blkpattern`: the block tests' guest side, a client of the blk service.
//!
//! - `blkpattern write DISK SEED BATCHES LO HI`: BATCHES requests, each
//!   writing 1 to 4 extents (of 1 to 32 sectors) at random places in
//!   sectors LO..HI that no earlier extent touched, filled with pattern
//!   SEED ([`blk::fill_pattern`]); each batch is read back in one
//!   multi-extent request and compared. Every other batch moves its data
//!   through the session's shared buffer (`WriteShared`, `ReadShared`),
//!   the others in the messages. Prints `extent LBA COUNT` for each
//!   extent (the host checks the image afterwards), then a summary line.
//! - `blkpattern verify DISK SEED LBA:COUNT,...`: read the extents the host
//!   wrote with pattern SEED and compare.
//! - `blkpattern errors DISK`: requests the contract must refuse (past
//!   the end, data of the wrong size, too many sectors, no such disk, a
//!   place past the shared buffer, a shared request in a session without
//!   one) get their error codes.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;
use blk::{code, BlkClient, Reply, SECTOR};
use libos::println;
use libos::rand::Rng;

libos::main!(main);

fn main() -> i32 {
    let args: Vec<&str> = libos::start::args().split_whitespace().collect();
    let disk = match args.get(1).and_then(|d| blk::disk_by_name(d)) {
        Some(d) => d,
        None => {
            println!("usage: blkpattern write|verify|errors DISK ... (DISK: data or checkpoint)");
            return 2;
        }
    };
    let mut client = match blk::connect() {
        Ok(c) => c,
        Err(e) => {
            println!("blkpattern: cannot connect to blk: {e}");
            return 1;
        }
    };
    let num = |i: usize| args.get(i).and_then(|s| s.parse::<u64>().ok());
    match (args[0], num(2), num(3), num(4), num(5)) {
        ("write", Some(seed), Some(batches), Some(lo), Some(hi)) if lo < hi => {
            write(&mut client, disk, seed, batches, lo, hi)
        }
        ("verify", Some(seed), ..) => verify(&mut client, disk, seed, args.get(3).copied().unwrap_or("")),
        ("errors", ..) => errors(&mut client, disk),
        _ => {
            println!("blkpattern: bad arguments");
            2
        }
    }
}

fn write(client: &mut BlkClient, disk: u8, seed: u64, batches: u64, lo: u64, hi: u64) -> i32 {
    let mut rng = Rng::new(seed.wrapping_mul(2654435761) | 1);
    let mut used: Vec<(u64, u32)> = Vec::new();
    let (mut extents, mut sectors, mut errors) = (0, 0u64, 0);
    for batch in 0..batches {
        let mut lbas = Vec::new();
        let mut counts = Vec::new();
        let want = 1 + rng.below(4);
        let mut tries = 0;
        while (lbas.len() as u64) < want && tries < 100 {
            tries += 1;
            let count = 1 + rng.below(32) as u32;
            let lba = lo + rng.below(hi - lo - count as u64);
            let overlaps = used.iter().any(|&(l, c)| lba < l + c as u64 && l < lba + count as u64);
            if !overlaps {
                used.push((lba, count));
                lbas.push(lba);
                counts.push(count);
            }
        }
        let total: u32 = counts.iter().sum();
        let mut data = vec![0u8; total as usize * SECTOR];
        let mut at = 0;
        for (&lba, &count) in lbas.iter().zip(&counts) {
            let len = count as usize * SECTOR;
            blk::fill_pattern(seed, lba, &mut data[at..at + len]);
            at += len;
        }
        let shared = batch % 2 == 1;
        let written = if shared {
            blk::put_shared(client, &data)
                .map_err(|e| format!("{e}"))
                .and_then(|()| client.write_shared(disk, lbas.clone(), counts.clone(), 0).map_err(|e| format!("{e}")))
        } else {
            client.write(disk, lbas.clone(), counts.clone(), data.clone()).map_err(|e| format!("{e}"))
        };
        match written {
            Ok(Reply::Written { sectors: n }) if n == total => {}
            other => {
                println!("blkpattern: write {lbas:?} {counts:?}: {other:?}");
                errors += 1;
                continue;
            }
        }
        for (&lba, &count) in lbas.iter().zip(&counts) {
            println!("extent {lba} {count}");
        }
        let back = if shared {
            match client.read_shared(disk, lbas.clone(), counts.clone(), 0) {
                Ok(Reply::Filled { sectors: n }) if n == total => {
                    let mut back = vec![0u8; data.len()];
                    blk::take_shared(client, &mut back).map(|()| Reply::Data { data: back }).map_err(|e| format!("{e}"))
                }
                other => other.map_err(|e| format!("{e}")),
            }
        } else {
            client.read(disk, lbas.clone(), counts.clone()).map_err(|e| format!("{e}"))
        };
        match back {
            Ok(Reply::Data { data: back }) if back == data => {}
            Ok(Reply::Data { .. }) => {
                println!("blkpattern: read back {lbas:?} {counts:?}: different bytes");
                errors += 1;
            }
            other => {
                println!("blkpattern: read back {lbas:?} {counts:?}: {other:?}");
                errors += 1;
            }
        }
        extents += lbas.len();
        sectors += total as u64;
    }
    if !matches!(client.flush(disk), Ok(Reply::Flushed)) {
        println!("blkpattern: flush failed");
        errors += 1;
    }
    println!("blkpattern: wrote {extents} extents ({sectors} sectors), read back, errors={errors}");
    errors.min(1)
}

fn verify(client: &mut BlkClient, disk: u8, seed: u64, list: &str) -> i32 {
    let (mut extents, mut sectors, mut errors) = (0, 0u64, 0);
    for item in list.split(',').filter(|s| !s.is_empty()) {
        let Some((lba, count)) =
            item.split_once(':').and_then(|(l, c)| Some((l.parse::<u64>().ok()?, c.parse::<u32>().ok()?)))
        else {
            println!("blkpattern: bad extent '{item}'");
            return 2;
        };
        let mut want = vec![0u8; count as usize * SECTOR];
        blk::fill_pattern(seed, lba, &mut want);
        match client.read(disk, vec![lba], vec![count]) {
            Ok(Reply::Data { data }) if data == want => {}
            Ok(Reply::Data { data }) => {
                let first = data.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(0);
                println!("blkpattern: extent {lba}:{count} differs first at byte {first}");
                errors += 1;
            }
            other => {
                println!("blkpattern: read {lba}:{count}: {other:?}");
                errors += 1;
            }
        }
        extents += 1;
        sectors += count as u64;
    }
    println!("blkpattern: verified {extents} extents ({sectors} sectors), errors={errors}");
    errors.min(1)
}

fn errors(client: &mut BlkClient, disk: u8) -> i32 {
    let sectors = match client.info(disk) {
        Ok(Reply::Geometry { sectors, .. }) => sectors,
        other => {
            println!("blkpattern: info: {other:?}");
            return 1;
        }
    };
    let cases: [(&str, blk::Request, u32); 7] = [
        ("past the end", blk::Request::Read { disk, lbas: vec![sectors - 1], counts: vec![2] }, code::OUT_OF_RANGE),
        ("wrapping", blk::Request::Read { disk, lbas: vec![u64::MAX], counts: vec![1] }, code::OUT_OF_RANGE),
        ("too many sectors", blk::Request::Read { disk, lbas: vec![0, 100], counts: vec![100, 29] }, code::BAD_REQUEST),
        ("empty extent", blk::Request::Read { disk, lbas: vec![0], counts: vec![0] }, code::BAD_REQUEST),
        (
            "short data",
            blk::Request::Write { disk, lbas: vec![0], counts: vec![2], data: vec![0; SECTOR + 1] },
            code::BAD_REQUEST,
        ),
        ("no such disk", blk::Request::Info { disk: 9 }, code::NO_DISK),
        (
            "past the shared buffer",
            blk::Request::ReadShared { disk, lbas: vec![0], counts: vec![2], at: (blk::SHARED_BYTES - SECTOR) as u32 },
            code::BAD_REQUEST,
        ),
    ];
    let mut bad = 0;
    for (what, request, want) in cases {
        let reply = match request {
            blk::Request::Read { disk, lbas, counts } => client.read(disk, lbas, counts),
            blk::Request::Write { disk, lbas, counts, data } => client.write(disk, lbas, counts, data),
            blk::Request::Info { disk } => client.info(disk),
            blk::Request::Flush { disk } => client.flush(disk),
            blk::Request::ReadShared { disk, lbas, counts, at } => client.read_shared(disk, lbas, counts, at),
            blk::Request::WriteShared { disk, lbas, counts, at } => client.write_shared(disk, lbas, counts, at),
        };
        match reply {
            Ok(Reply::Failed { code, message }) if code == want => {
                println!("blkpattern: {what}: error {code}: {message}")
            }
            other => {
                println!("blkpattern: {what}: expected error {want}, got {other:?}");
                bad += 1;
            }
        }
    }
    // A session opened without a shared buffer.
    let plain = libos::directory::connect(blk::SERVICE, true)
        .map_err(|e| format!("{e}"))
        .and_then(|ep| libos::channel::Channel::resumable_over(ep, blk::SERVICE).map_err(|e| format!("{e}")));
    match plain
        .map(BlkClient::new)
        .and_then(|mut c| c.read_shared(disk, vec![0], vec![1], 0).map_err(|e| format!("{e}")))
    {
        Ok(Reply::Failed { code: code::NO_SHARED_BUFFER, message }) => {
            println!("blkpattern: no shared buffer: error {}: {message}", code::NO_SHARED_BUFFER)
        }
        other => {
            println!("blkpattern: no shared buffer: expected error {}, got {other:?}", code::NO_SHARED_BUFFER);
            bad += 1;
        }
    }
    println!("blkpattern: contract errors checked, wrong={bad}");
    bad.min(1)
}
