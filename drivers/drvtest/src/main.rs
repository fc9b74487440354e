//! `drvtest`: exercises the device drivers directly and prints what it
//! finds (started from the shell; owns the storage and network functions
//! while it runs).
//!
//! - `drvtest pci`: the PCI functions granted to it.
//! - `drvtest blk`: lists the disks (sectors, model, serial), checks the
//!   FAT boot sector of each (read only), then on disk 1 (serial
//!   `kintsugi-disk1`, else the second disk) saves the last 2 MiB, writes
//!   and reads back a few sectors, a 256 KiB multi-request transfer and
//!   2 MiB (timed), checks the errors for out-of-range and misaligned
//!   requests, and restores the saved data. Sectors 0..2048 are never
//!   written.
//! - `drvtest net`: MAC and link, ARP for 10.0.2.2 from 10.0.2.15 (QEMU's
//!   user network answers), ICMP echo to 10.0.2.2, a timed burst of
//!   broadcast frames of an experimental EtherType, and every frame
//!   received meanwhile.
//!
//! Each ends with `drvtest blk: PASS` / `FAIL` (or `net`).
#![no_std]
#![no_main]

extern crate alloc;

mod blk;
mod net;

use libos::println;

libos::main!(main);

fn main() -> i32 {
    let args = libos::start::args();
    match args.split_whitespace().next() {
        Some("blk") => blk::run(),
        Some("net") => net::run(),
        Some("pci") | None => pci(),
        Some(other) => {
            println!("drvtest: unknown test '{other}' (usage: drvtest [pci|blk|net])");
            2
        }
    }
}

fn pci() -> i32 {
    match libos::directory::pci_functions() {
        Ok(list) => {
            for f in list {
                let kind = drivers::discover::kind(f.vendor, f.device, f.class);
                println!(
                    "drvtest: {:02x}:{:02x}.{} {:04x}:{:04x} class {:02x}{:02x}{:02x} {:?}",
                    f.address >> 8,
                    (f.address >> 3) & 0x1f,
                    f.address & 7,
                    f.vendor,
                    f.device,
                    f.class.0,
                    f.class.1,
                    f.class.2,
                    kind
                );
                let _ = libos::sys::handle_close(f.config);
            }
            0
        }
        Err(e) => {
            println!("drvtest: {e}");
            1
        }
    }
}

/// Milliseconds since `start_ns`.
fn ms_since(start_ns: u64) -> u64 {
    (libos::time::now_ns() - start_ns) / 1_000_000
}

/// KiB per second for `bytes` in `ns`, formatted as MiB/s with 2 decimals.
fn rate(bytes: usize, ns: u64) -> alloc::string::String {
    let ns = ns.max(1);
    let centi_mib_s = (bytes as u128 * 100 * 1_000_000_000 / ns as u128 / (1 << 20)) as u64;
    alloc::format!("{}.{:02} MiB/s", centi_mib_s / 100, centi_mib_s % 100)
}
