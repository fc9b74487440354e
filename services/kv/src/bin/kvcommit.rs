//! `kvcommit START COUNT KEYS EVERY`: a deterministic history of writes to
//! kv with forced checkpoints, for the vault's power-cut tests. Op `i`
//! (from START, COUNT of them) stores `v{i}` under `k{i % KEYS}`; before
//! sending it prints `kvcommit: sending i`, once answered `kvcommit:
//! acknowledged i` (kv's Put is durable: it is then on the checkpoint
//! disk); after every EVERY-th op (when
//! `(i + 1) % EVERY == 0`) it asks `kv.control` for a checkpoint and, once
//! the vault has it on disk, prints `kvcommit: committed through i`.
//!
//! With a fifth argument `quiet` it prints `kvcommit: sending i` only for
//! the first op and for every op that starts a checkpoint window (`i %
//! EVERY == 0`): ops up to the end of that window may have been sent
//! (the soak runs it for hours).
//!
//! `kvcommit dump KEYS` prints `kvcommit: k{j}=VALUE` (or `k{j} absent`)
//! for every key, then `kvcommit: dumped`.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use kv::Reply;
use libos::channel::Channel;
use libos::println;
use resiliency_lib::control::{ControlClient, Reply as Ctl};

libos::main!(main);

fn number(s: &str) -> Option<u64> {
    s.parse().ok()
}

fn main() -> i32 {
    let args: Vec<&str> = libos::start::args().split_whitespace().collect();
    let Ok(mut kv) = kv::connect() else {
        println!("kvcommit: no kv service");
        return 1;
    };
    match args.as_slice() {
        ["dump", keys] => {
            let Some(keys) = number(keys) else { return usage() };
            for j in 0..keys {
                match kv.get(format!("k{j}")) {
                    Ok(Reply::Value { found: true, value }) => {
                        println!("kvcommit: k{j}={}", String::from_utf8_lossy(&value))
                    }
                    Ok(Reply::Value { found: false, .. }) => println!("kvcommit: k{j} absent"),
                    other => {
                        println!("kvcommit: get k{j}: {other:?}");
                        return 1;
                    }
                }
            }
            println!("kvcommit: dumped");
            0
        }
        [start, count, keys, every] | [start, count, keys, every, "quiet"] => {
            let quiet = args.len() == 5;
            let (Some(start), Some(count), Some(keys), Some(every)) =
                (number(start), number(count), number(keys), number(every))
            else {
                return usage();
            };
            if keys == 0 || every == 0 {
                return usage();
            }
            let Ok(ep) = libos::directory::connect("kv.control", true) else {
                println!("kvcommit: no kv.control");
                return 1;
            };
            let mut control = ControlClient::new(Channel::new(ep));
            for i in start..start + count {
                if !quiet || i == start || i % every == 0 {
                    println!("kvcommit: sending {i}");
                }
                match kv.put(format!("k{}", i % keys), format!("v{i}").into_bytes()) {
                    Ok(Reply::Done { .. }) => println!("kvcommit: acknowledged {i}"),
                    other => {
                        println!("kvcommit: put {i}: {other:?}");
                        return 1;
                    }
                }
                if (i + 1) % every == 0 {
                    match control.checkpoint() {
                        Ok(Ctl::Checkpointed { .. }) => println!("kvcommit: committed through {i}"),
                        other => println!("kvcommit: checkpoint after {i}: {other:?}"),
                    }
                }
            }
            println!("kvcommit: done");
            0
        }
        _ => usage(),
    }
}

fn usage() -> i32 {
    println!("usage: kvcommit START COUNT KEYS EVERY [quiet] | kvcommit dump KEYS");
    2
}
