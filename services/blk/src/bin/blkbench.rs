//! `blkbench DISK MIB`: the block figures of `cargo xtask bench`, measured
//! through the blk service (and its companion) on disk DISK:
//! - sequential read and write of MIB MiB in 64 KiB requests (MiB/s);
//! - random 4 KiB reads and writes, 16 in flight per request (a request
//!   of 16 one-page extents; the device sees them together), in I/O
//!   operations per second.
//!
//! Prints `BENCH name value` lines. The Linux reference does the same with
//! `dd` (O_DIRECT) and Linux AIO on the same QEMU device.
// Not service code (a benchmark client outside the service: it times the device).
#![allow(clippy::disallowed_methods)]
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;
use blk::{BlkClient, Reply, SECTOR};
use libos::println;
use libos::rand::Rng;

libos::main!(main);

/// Sectors per sequential request (64 KiB).
const SEQ_SECTORS: u32 = 128;
/// Extents per random request.
const QUEUE: usize = 16;
/// Sectors per random extent (4 KiB).
const RAND_SECTORS: u32 = 8;
/// Random requests per measurement.
const RAND_ROUNDS: usize = 256;

fn fail(what: &str, reply: impl core::fmt::Debug) -> i32 {
    println!("BENCH-ERROR {what}: {reply:?}");
    1
}

fn main() -> i32 {
    let args: Vec<&str> = libos::start::args().split_whitespace().collect();
    let disk = args.first().and_then(|d| blk::disk_by_name(d)).unwrap_or(blk::DATA_DISK);
    let mib: u64 = args.get(1).and_then(|m| m.parse().ok()).unwrap_or(16);
    let mut c = match blk::connect() {
        Ok(c) => c,
        Err(e) => return fail("connect", e),
    };
    let sectors = match c.info(disk) {
        Ok(Reply::Geometry { sectors, .. }) => sectors,
        other => return fail("info", other),
    };
    let total = (mib * 1024 * 1024 / SECTOR as u64).min(sectors);
    let requests = total / SEQ_SECTORS as u64;

    // Sequential write, then read, of the same range, through the
    // session's shared buffer as `blk::Disk` moves sectors: each request's
    // data copied into it (a write) or out of it (a read) by the client.
    let mut data = vec![0x5au8; SEQ_SECTORS as usize * SECTOR];
    let t0 = libos::time::now_ns();
    for i in 0..requests {
        if let Err(e) = blk::put_shared(&c, &data) {
            return fail("shared buffer", e);
        }
        match c.write_shared(disk, vec![i * SEQ_SECTORS as u64], vec![SEQ_SECTORS], 0) {
            Ok(Reply::Written { .. }) => {}
            other => return fail("sequential write", other),
        }
    }
    match c.flush(disk) {
        Ok(Reply::Flushed) => {}
        other => return fail("flush", other),
    }
    let write_ns = libos::time::now_ns() - t0;
    let t0 = libos::time::now_ns();
    for i in 0..requests {
        match c.read_shared(disk, vec![i * SEQ_SECTORS as u64], vec![SEQ_SECTORS], 0) {
            Ok(Reply::Filled { .. }) => {}
            other => return fail("sequential read", other),
        }
        if let Err(e) = blk::take_shared(&c, &mut data) {
            return fail("shared buffer", e);
        }
    }
    let read_ns = libos::time::now_ns() - t0;
    // The same read with the data in the replies (the path without a
    // shared buffer), for comparison.
    let t0 = libos::time::now_ns();
    for i in 0..requests {
        match c.read(disk, vec![i * SEQ_SECTORS as u64], vec![SEQ_SECTORS]) {
            Ok(Reply::Data { .. }) => {}
            other => return fail("sequential read", other),
        }
    }
    let read_messages_ns = libos::time::now_ns() - t0;
    let bytes = (requests * SEQ_SECTORS as u64 * SECTOR as u64) as f64;
    let mib_s = |ns: u64| bytes / (1024.0 * 1024.0) / (ns as f64 / 1e9);
    println!("BENCH blk_seq_write_mib_s {:.2}", mib_s(write_ns));
    println!("BENCH blk_seq_read_mib_s {:.2}", mib_s(read_ns));
    println!("BENCH blk_seq_read_messages_mib_s {:.2}", mib_s(read_messages_ns));

    // Random 4 KiB operations, QUEUE per request, within the range written.
    let pages = total / RAND_SECTORS as u64;
    let mut rng = Rng::new(0x00c0_ffee);
    let mut extents = |rng: &mut Rng| -> Vec<u64> {
        let mut lbas: Vec<u64> = Vec::with_capacity(QUEUE);
        while lbas.len() < QUEUE {
            let lba = (rng.next() % pages) * RAND_SECTORS as u64;
            if !lbas.contains(&lba) {
                lbas.push(lba);
            }
        }
        lbas
    };
    let counts = vec![RAND_SECTORS; QUEUE];
    let mut page_data = vec![0xa5u8; QUEUE * RAND_SECTORS as usize * SECTOR];
    let mut rand = |c: &mut BlkClient,
                    rng: &mut Rng,
                    write: bool,
                    extents: &mut dyn FnMut(&mut Rng) -> Vec<u64>|
     -> Result<u64, i32> {
        let t0 = libos::time::now_ns();
        for _ in 0..RAND_ROUNDS {
            let lbas = extents(rng);
            // Through the shared buffer, the data copied in or out by the
            // client as for the sequential figures.
            let reply = if write {
                if let Err(e) = blk::put_shared(c, &page_data) {
                    return Err(fail("shared buffer", e));
                }
                c.write_shared(disk, lbas, counts.clone(), 0)
            } else {
                let reply = c.read_shared(disk, lbas, counts.clone(), 0);
                if let Err(e) = blk::take_shared(c, &mut page_data) {
                    return Err(fail("shared buffer", e));
                }
                reply
            };
            match reply {
                Ok(Reply::Written { .. }) | Ok(Reply::Filled { .. }) => {}
                other => return Err(fail(if write { "random write" } else { "random read" }, other)),
            }
        }
        Ok(libos::time::now_ns() - t0)
    };
    let ops = (RAND_ROUNDS * QUEUE) as f64;
    match rand(&mut c, &mut rng, false, &mut extents) {
        Ok(ns) => println!("BENCH blk_rand_read_iops {:.1}", ops / (ns as f64 / 1e9)),
        Err(code) => return code,
    }
    match rand(&mut c, &mut rng, true, &mut extents) {
        Ok(ns) => println!("BENCH blk_rand_write_iops {:.1}", ops / (ns as f64 / 1e9)),
        Err(code) => return code,
    }
    0
}
