//! `nicbench tx N` / `nicbench rx N [ETHERTYPE]`: the NIC figures of
//! `cargo xtask bench`, measured through the nic service (and its
//! companion). The Linux reference (`xtask/bench/linuxbench.c`) does the
//! same with an `AF_PACKET` socket on the same QEMU card.
//!
//! - `tx N`: sends N frames of 1514 bytes (broadcast, EtherType
//!   [`TX_ETHERTYPE`], payload `KBTX`, the sequence number, then filler) in
//!   requests of 32; prints `BENCH nic_tx_fps` (N over the time from the
//!   first request to the last reply) and `BENCH nic_tx_frames`.
//! - `rx N`: claims EtherType ETHERTYPE (a `ReceiveType` for no frame),
//!   sends one `READY` frame (EtherType [`TX_ETHERTYPE`], payload
//!   `READY`), on which the host starts sending, then receives frames of
//!   EtherType ETHERTYPE (hex, [`nic::TEST_ETHERTYPE`] by default) in
//!   `ReceiveType` requests of up to 32 until N arrived or 5 s passed without one; prints
//!   `BENCH nic_rx_fps` (the frames after the first reply over the time
//!   from the first reply to the last) and `BENCH nic_rx_frames`.
// Not service code (a benchmark client outside the service: it times the card).
#![allow(clippy::disallowed_methods)]
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use libos::println;
use nic::{NicClient, Reply, MAX_BATCH, MAX_FRAME, TEST_ETHERTYPE};

libos::main!(main);

/// EtherType of the frames this program sends (IEEE local experimental 2).
const TX_ETHERTYPE: u16 = nic::ECHO_ETHERTYPE;
/// How long a silence ends the receive phase (ns).
const SILENCE_NS: u64 = 5_000_000_000;
/// Longest wait of one `Receive` (ms).
const WAIT_MS: u32 = nic::MAX_WAIT_MS;

fn fail(what: &str, reply: impl core::fmt::Debug) -> i32 {
    println!("BENCH-ERROR nicbench {what}: {reply:?}");
    1
}

/// A frame from `mac` to everyone with `payload` first, padded to `len`.
fn frame(mac: &[u8], payload: &[u8], len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&mac[..6]);
    f.extend_from_slice(&TX_ETHERTYPE.to_be_bytes());
    f.extend_from_slice(payload);
    let start = f.len();
    f.extend((start..len).map(|i| i as u8));
    f
}

fn send(client: &mut NicClient, frames: Vec<Vec<u8>>) -> Result<(), i32> {
    let n = frames.len() as u32;
    match client.send(frames) {
        Ok(Reply::Sent { count }) if count == n => Ok(()),
        other => Err(fail("send", other)),
    }
}

fn transmit(client: &mut NicClient, mac: &[u8], count: u32) -> i32 {
    // One request's worth of frames, built before the clock starts; each
    // request sends a copy (the sequence numbers repeat every 32 frames).
    let batch: Vec<Vec<u8>> = (0..MAX_BATCH as u32)
        .map(|seq| {
            let mut payload = Vec::from(*b"KBTX");
            payload.extend_from_slice(&seq.to_le_bytes());
            frame(mac, &payload, MAX_FRAME)
        })
        .collect();
    let t0 = libos::time::now_ns();
    let mut sent = 0u32;
    while sent < count {
        let n = (count - sent).min(MAX_BATCH as u32) as usize;
        if let Err(code) = send(client, batch[..n].to_vec()) {
            return code;
        }
        sent += n as u32;
    }
    let ns = libos::time::now_ns() - t0;
    println!("BENCH nic_tx_fps {:.1}", sent as f64 / (ns as f64 / 1e9));
    println!("BENCH nic_tx_frames {sent}");
    0
}

fn receive(client: &mut NicClient, mac: &[u8], count: u32, ethertype: u16) -> i32 {
    // Claim the type before the host starts sending: from then on the
    // network stack's receives leave its frames to us.
    match client.receive_type(ethertype as u32, 0, 0) {
        Ok(Reply::Frames { .. }) => {}
        other => return fail("claim the EtherType", other),
    }
    if let Err(code) = send(client, alloc::vec![frame(mac, b"READY", 60)]) {
        return code;
    }
    let (mut frames, mut first_batch) = (0u32, 0u32);
    let (mut first_ns, mut last_ns) = (0u64, 0u64);
    let mut waiting_since = libos::time::now_ns();
    while frames < count {
        let got = match client.receive_type(ethertype as u32, MAX_BATCH as u32, WAIT_MS) {
            Ok(Reply::Frames { frames }) => frames,
            other => return fail("receive", other),
        };
        let now = libos::time::now_ns();
        let ours = got.iter().filter(|f| nic::sorter::ethertype(f) == Some(ethertype)).count() as u32;
        if ours == 0 {
            if now - waiting_since > SILENCE_NS {
                break;
            }
            continue;
        }
        if frames == 0 {
            first_ns = now;
            first_batch = ours;
        }
        frames += ours;
        last_ns = now;
        waiting_since = now;
    }
    let fps =
        if last_ns > first_ns { (frames - first_batch) as f64 / ((last_ns - first_ns) as f64 / 1e9) } else { 0.0 };
    println!("BENCH nic_rx_fps {fps:.1}");
    println!("BENCH nic_rx_frames {frames}");
    0
}

fn main() -> i32 {
    let args: Vec<&str> = libos::start::args().split_whitespace().collect();
    let count: Option<u32> = args.get(1).and_then(|n| n.parse().ok());
    let ethertype = match args.get(2) {
        None => Some(TEST_ETHERTYPE),
        Some(t) => u16::from_str_radix(t.trim_start_matches("0x"), 16).ok(),
    };
    let (Some(mode), Some(count), Some(ethertype)) = (args.first().copied(), count, ethertype) else {
        println!("BENCH-ERROR usage: nicbench tx N | nicbench rx N [ETHERTYPE]");
        return 1;
    };
    let mut client = match nic::connect() {
        Ok(c) => c,
        Err(e) => return fail("connect", e),
    };
    let mac = match client.info() {
        Ok(Reply::Status { mac, .. }) if mac.len() == 6 => mac,
        other => return fail("info", other),
    };
    match mode {
        "tx" => transmit(&mut client, &mac, count),
        "rx" => receive(&mut client, &mac, count, ethertype),
        _ => {
            println!("BENCH-ERROR usage: nicbench tx N | nicbench rx N [ETHERTYPE]");
            1
        }
    }
}
