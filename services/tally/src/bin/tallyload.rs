//! `tallyload OPS [SET]`: OPS additions to tally's counters, each answer
//! checked against a model; then every counter is read back, listed, and
//! published to kv, and kv's copy checked. Prints `tallyload: ops=N
//! errors=E` and the first mismatches.
//!
//! The counters are new ones of this run (`tRUN-K`), or with SET the same
//! sixteen every run (`SET-K`; the model starts from their values, read
//! first), so that runs after runs (the soak) do not fill tally's table
//! nor grow its published text past kv's value limit.
// Not service code (a load generator, a client outside the service: its clock is not replayed state).
#![allow(clippy::disallowed_methods)]
#![no_std]
#![no_main]

extern crate alloc;

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use libos::println;
use tally::Reply;

libos::main!(main);

const COUNTERS: u64 = 16;

fn main() -> i32 {
    let args: Vec<&str> = libos::start::args().split_whitespace().collect();
    let ops: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let run = libos::time::now_ns() % 1_000_000;
    let set = match args.get(1) {
        Some(s) if !s.is_empty() && s.len() <= 24 => String::from(*s),
        Some(_) => {
            println!("tallyload: SET is 1 to 24 bytes");
            return 2;
        }
        None => format!("t{run}"),
    };
    let mut t = match tally::connect() {
        Ok(c) => c,
        Err(e) => {
            println!("tallyload: {e}");
            return 1;
        }
    };
    let mut model: BTreeMap<String, i64> = BTreeMap::new();
    let mut errors = 0u64;
    let mut mismatches: Vec<String> = Vec::new();
    let mut fail = |m: String, errors: &mut u64| {
        *errors += 1;
        if mismatches.len() < 5 {
            mismatches.push(m);
        }
    };
    if args.get(1).is_some() {
        for k in 0..COUNTERS {
            let name = format!("{set}-{k}");
            match t.get(name.clone()) {
                Ok(Reply::Total { value, .. }) => {
                    model.insert(name, value);
                }
                other => fail(format!("get {name} first: {other:?}"), &mut errors),
            }
        }
    }
    let mut x = run.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for op in 0..ops {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let name = format!("{set}-{}", x % COUNTERS);
        let delta = (x >> 8) as i64 % 1000 - 500;
        match t.add(name.clone(), delta) {
            Ok(Reply::Total { value, .. }) => {
                let m = model.entry(name.clone()).or_insert(0);
                *m += delta;
                if value != *m {
                    fail(format!("op {op}: add {name} {delta}: total {value}, model {m}"), &mut errors);
                    *m = value;
                }
            }
            other => fail(format!("op {op}: add {name}: {other:?}"), &mut errors),
        }
    }
    for (name, want) in &model {
        match t.get(name.clone()) {
            Ok(Reply::Total { value, .. }) if value == *want => {}
            other => fail(format!("get {name}: {other:?}, model {want}"), &mut errors),
        }
    }
    let mut listed = BTreeMap::new();
    let mut r = t.list();
    while let Ok(Reply::Entry { name, value }) = r {
        listed.insert(name, value);
        r = t.next_reply();
    }
    for (name, want) in &model {
        if listed.get(name) != Some(want) {
            fail(format!("list: {name} is {:?}, model {want}", listed.get(name)), &mut errors);
        }
    }
    let key = format!("tally-{run}");
    match t.publish(key.clone()) {
        Ok(Reply::Published { ok: true }) => {
            let text = kv::connect().ok().and_then(|mut k| k.get(key.clone()).ok());
            match text {
                Some(kv::Reply::Value { found: true, value }) => {
                    let text = String::from_utf8_lossy(&value).to_string();
                    for (name, want) in &model {
                        if !text.lines().any(|l| l == format!("{name}={want}")) {
                            fail(format!("kv copy lacks {name}={want}"), &mut errors);
                        }
                    }
                }
                other => fail(format!("kv {key}: {other:?}"), &mut errors),
            }
        }
        other => fail(format!("publish: {other:?}"), &mut errors),
    }
    println!("tallyload: ops={ops} errors={errors}");
    for m in &mismatches {
        println!("tallyload: mismatch: {m}");
    }
    if errors == 0 {
        0
    } else {
        1
    }
}
