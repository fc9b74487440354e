//! `nicecho COUNT`: the NIC tests' guest side, a client of the nic service.
//! It first sends COUNT made-up frames ([`nic::origin_frame`], for the host
//! to check byte for byte), then echoes every frame of EtherType
//! [`nic::TEST_ETHERTYPE`] back to its sender (addresses swapped,
//! EtherType [`nic::ECHO_ETHERTYPE`], payload unchanged) until a frame
//! whose payload starts with `STOP` arrives. Prints a summary line.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use libos::println;
use nic::{NicClient, Reply, ECHO_ETHERTYPE, MAX_BATCH, TEST_ETHERTYPE};

libos::main!(main);

fn main() -> i32 {
    let count: u32 = libos::start::args().trim().parse().unwrap_or(0);
    let mut client = match nic::connect() {
        Ok(c) => c,
        Err(e) => {
            println!("nicecho: cannot connect to nic: {e}");
            return 1;
        }
    };
    let mac = match client.info() {
        Ok(Reply::Status { mac, link_up, model }) => {
            println!("nicecho: {model}, link {}", if link_up { "up" } else { "down" });
            mac
        }
        other => {
            println!("nicecho: info: {other:?}");
            return 1;
        }
    };
    // Frames of the test type are ours from now on, whoever else receives.
    match client.receive_type(TEST_ETHERTYPE as u32, 0, 0) {
        Ok(Reply::Frames { .. }) => {}
        other => {
            println!("nicecho: claim the test EtherType: {other:?}");
            return 1;
        }
    }
    let mut errors = 0;
    let mut seq = 0;
    while seq < count {
        let batch: Vec<Vec<u8>> = (seq..count.min(seq + 8)).map(|s| nic::origin_frame(&mac, s)).collect();
        let n = batch.len() as u32;
        if !send(&mut client, batch) {
            errors += 1;
        }
        seq += n;
    }
    println!("nicecho: sent {count} frames; echoing");
    let (mut echoed, mut received) = (0u64, 0u64);
    loop {
        let frames = match client.receive_type(TEST_ETHERTYPE as u32, MAX_BATCH as u32, 500) {
            Ok(Reply::Frames { frames }) => frames,
            other => {
                println!("nicecho: receive: {other:?}");
                errors += 1;
                if errors > 10 {
                    break;
                }
                continue;
            }
        };
        received += frames.len() as u64;
        let mut stop = false;
        let mut echoes = Vec::new();
        for f in frames {
            if nic::sorter::ethertype(&f) != Some(TEST_ETHERTYPE) {
                continue;
            }
            if f[14..].starts_with(b"STOP") {
                stop = true;
                continue;
            }
            let mut e = f.clone();
            e[..6].copy_from_slice(&f[6..12]);
            e[6..12].copy_from_slice(&mac[..6]);
            e[12..14].copy_from_slice(&ECHO_ETHERTYPE.to_be_bytes());
            echoes.push(e);
        }
        echoed += echoes.len() as u64;
        if !echoes.is_empty() && !send(&mut client, echoes) {
            errors += 1;
        }
        if stop {
            break;
        }
    }
    println!("nicecho: received {received} frames, echoed {echoed}, errors={errors}");
    (errors > 0) as i32
}

fn send(client: &mut NicClient, frames: Vec<Vec<u8>>) -> bool {
    let n = frames.len() as u32;
    match client.send(frames) {
        Ok(Reply::Sent { count }) if count == n => true,
        other => {
            println!("nicecho: send: {other:?}");
            false
        }
    }
}
