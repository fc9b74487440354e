//! `kvload CLIENTS OPS`: load on the kv service from CLIENTS separate client
//! processes running OPS mixed operations in total, each checking every
//! answer against its own model.
//!
//! Each client owns a set of keys (puts, gets, deletes, lists, compare-and-
//! swaps, checked exactly) and increments shared counters with
//! compare-and-swap loops (a lost or duplicated write would make the
//! counters' sum differ from the increments the clients saw succeed). When
//! done, a client stores a report (its error count, its increments, a hash
//! of its model) in kv itself. The driver then checks the final contents:
//! every client's keys against its model's hash, the counters against the
//! increments. It prints `kvload: clients=C ops=N errors=E` and the first
//! mismatches.
// Not service code (a load generator, a client outside the service: its clock is not replayed state).
#![allow(clippy::disallowed_methods)]
#![no_std]
#![no_main]

extern crate alloc;

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use kv::{KvClient, Reply};
use libos::handle::Event;
use libos::println;
use libos::rand::Rng;

libos::main!(main);

const OWN_KEYS: u64 = 48;
const SHARED_COUNTERS: u64 = 4;
const MAX_REPORTED: usize = 5;

fn args() -> Vec<&'static str> {
    libos::start::args().split_whitespace().collect()
}

fn num(s: Option<&&str>, default: u64) -> u64 {
    s.and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn main() -> i32 {
    let a = args();
    match a.first().copied() {
        Some("client") => client(num(a.get(1), 0), num(a.get(2), 0), num(a.get(3), 100)),
        _ => driver(num(a.first(), 4).max(1), num(a.get(1), 1000)),
    }
}

/// A hash of a model (sorted key/value pairs).
fn model_hash(model: &BTreeMap<String, Vec<u8>>) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for (k, v) in model {
        for b in k.bytes().chain([0xff]).chain(v.iter().copied()).chain([0xfe]) {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

struct Checker {
    errors: u64,
    mismatches: Vec<String>,
}

impl Checker {
    fn fail(&mut self, what: String) {
        self.errors += 1;
        if self.mismatches.len() < MAX_REPORTED {
            self.mismatches.push(what);
        }
    }
}

fn value_of(reply: &Reply) -> Option<Option<Vec<u8>>> {
    match reply {
        Reply::Value { found: true, value } => Some(Some(value.clone())),
        Reply::Value { found: false, .. } => Some(None),
        _ => None,
    }
}

fn client(run: u64, id: u64, ops: u64) -> i32 {
    let mut kv = match kv::connect() {
        Ok(c) => c,
        Err(e) => {
            println!("kvload client {id}: {e}");
            return 1;
        }
    };
    let mut rng = Rng::new(run ^ (id + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut model: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut check = Checker { errors: 0, mismatches: Vec::new() };
    let mut increments = 0u64;
    let own = |n: u64| format!("r{run}/c{id}/k{n:02}");
    for op in 0..ops {
        let key = own(rng.below(OWN_KEYS));
        let value: Vec<u8> = (0..rng.below(64)).map(|_| b'a' + rng.below(26) as u8).collect();
        let roll = rng.below(100);
        let result: Result<(), String> = (|| {
            match roll {
                0..=29 => match kv.put(key.clone(), value.clone()).map_err(|e| e.to_string())? {
                    Reply::Done { existed } if existed == model.contains_key(&key) => {
                        model.insert(key, value);
                    }
                    r => return Err(format!("op {op}: put {key}: got {r:?}")),
                },
                30..=49 => {
                    let r = kv.get(key.clone()).map_err(|e| e.to_string())?;
                    if value_of(&r) != Some(model.get(&key).cloned()) {
                        return Err(format!("op {op}: get {key}: got {r:?}, model {:?}", model.get(&key)));
                    }
                }
                50..=59 => match kv.delete(key.clone()).map_err(|e| e.to_string())? {
                    Reply::Done { existed } if existed == model.contains_key(&key) => {
                        model.remove(&key);
                    }
                    r => return Err(format!("op {op}: delete {key}: got {r:?}")),
                },
                60..=64 => {
                    let prefix = format!("r{run}/c{id}/");
                    let mut keys = Vec::new();
                    let mut r = kv.list(prefix.clone()).map_err(|e| e.to_string())?;
                    loop {
                        match r {
                            Reply::Key { key } => keys.push(key),
                            Reply::EndList { count } if count as usize == keys.len() => break,
                            other => return Err(format!("op {op}: list: got {other:?}")),
                        }
                        r = kv.next_reply().map_err(|e| e.to_string())?;
                    }
                    let want: Vec<&String> = model.keys().collect();
                    if keys.iter().collect::<Vec<_>>() != want {
                        return Err(format!("op {op}: list {prefix}: {} keys, model {}", keys.len(), want.len()));
                    }
                }
                65..=79 => {
                    let current = model.get(&key).cloned();
                    let wrong = rng.below(4) == 0;
                    let (expected_present, expected) = match (&current, wrong) {
                        (Some(v), false) => (true, v.clone()),
                        (None, false) => (false, Vec::new()),
                        (_, true) => (true, b"~never stored~".to_vec()),
                    };
                    let r = kv
                        .cas(key.clone(), expected_present, expected, true, value.clone())
                        .map_err(|e| e.to_string())?;
                    match r {
                        Reply::Swapped { ok: true, .. } if !wrong => {
                            model.insert(key, value);
                        }
                        Reply::Swapped { ok: false, current_present, current: now } if wrong => {
                            let seen = current_present.then_some(now);
                            if seen != current {
                                return Err(format!("op {op}: failed cas on {key} shows {seen:?}, model {current:?}"));
                            }
                        }
                        r => return Err(format!("op {op}: cas {key} (wrong={wrong}): got {r:?}")),
                    }
                }
                _ => {
                    let counter = format!("r{run}/shared/{}", rng.below(SHARED_COUNTERS));
                    increment(&mut kv, &counter).map_err(|e| format!("op {op}: increment {counter}: {e}"))?;
                    increments += 1;
                }
            }
            Ok(())
        })();
        if let Err(m) = result {
            check.fail(m);
        }
    }
    // The report, stored in kv for the driver.
    let mut report =
        format!("errors={} increments={increments} hash={:x} keys={}", check.errors, model_hash(&model), model.len());
    for m in &check.mismatches {
        report.push('\n');
        report.push_str(m);
    }
    let report_key = format!("r{run}/report/c{id}");
    let stored = kv.put(report_key, report.into_bytes());
    if !matches!(stored, Ok(Reply::Done { .. })) {
        println!("kvload client {id}: cannot store its report: {stored:?}");
        return 1;
    }
    0
}

/// Add one to a decimal counter with a compare-and-swap loop.
fn increment(kv: &mut KvClient, key: &str) -> Result<(), String> {
    for _ in 0..1000 {
        let current = value_of(&kv.get(key.to_string()).map_err(|e| e.to_string())?).ok_or("get gave no Value")?;
        let n: u64 = match &current {
            Some(v) => core::str::from_utf8(v).ok().and_then(|s| s.parse().ok()).ok_or("counter is not a number")?,
            None => 0,
        };
        let (present, expected) = match current {
            Some(v) => (true, v),
            None => (false, Vec::new()),
        };
        let next = format!("{}", n + 1).into_bytes();
        match kv.cas(key.to_string(), present, expected, true, next).map_err(|e| e.to_string())? {
            Reply::Swapped { ok: true, .. } => return Ok(()),
            Reply::Swapped { ok: false, .. } => continue,
            r => return Err(format!("cas gave {r:?}")),
        }
    }
    Err(String::from("no progress after 1000 tries"))
}

fn field(report: &str, name: &str) -> Option<u64> {
    let first = report.lines().next()?;
    first.split_whitespace().find_map(|w| w.strip_prefix(name)?.strip_prefix('=')).and_then(|v| {
        if name == "hash" {
            u64::from_str_radix(v, 16).ok()
        } else {
            v.parse().ok()
        }
    })
}

fn driver(clients: u64, ops: u64) -> i32 {
    let run = libos::time::now_ns() % 1_000_000_000;
    let each = ops / clients;
    let mut check = Checker { errors: 0, mismatches: Vec::new() };
    let done = Event::new().expect("event");
    let mut procs = Vec::new();
    for id in 0..clients {
        match libos::directory::run("kvload", &format!("client {run} {id} {each}")) {
            Ok((_, p)) => {
                let _ = p.watch(&done, 1);
                procs.push(p);
            }
            Err(e) => {
                println!("kvload: cannot start client {id}: {e}");
                return 1;
            }
        }
    }
    for (id, p) in procs.iter().enumerate() {
        let info = loop {
            let info = p.info().unwrap_or_default();
            if info.state().is_ended() {
                break info;
            }
            let _ = done.wait(1_000_000_000);
        };
        if !(info.state() == libos::abi::ProcessState::Exited && info.exit_code == 0) {
            let mut how = String::new();
            let _ = info.describe_end(&mut how);
            check.fail(format!("client {id} {how}"));
        }
    }
    let mut kv = match kv::connect() {
        Ok(c) => c,
        Err(e) => {
            println!("kvload: {e}");
            return 1;
        }
    };
    let mut increments = 0;
    for id in 0..clients {
        let report = kv.get(format!("r{run}/report/c{id}")).ok().as_ref().and_then(value_of).flatten();
        let Some(report) = report.and_then(|r| String::from_utf8(r).ok()) else {
            check.fail(format!("client {id} left no report"));
            continue;
        };
        let errors = field(&report, "errors").unwrap_or(1);
        check.errors += errors;
        for m in report.lines().skip(1) {
            if check.mismatches.len() < MAX_REPORTED {
                check.mismatches.push(format!("client {id}: {m}"));
            }
        }
        increments += field(&report, "increments").unwrap_or(0);
        // The client's keys in kv must be exactly its model.
        let prefix = format!("r{run}/c{id}/");
        let mut contents = BTreeMap::new();
        let mut keys = Vec::new();
        let mut r = kv.list(prefix.clone());
        while let Ok(Reply::Key { key }) = r {
            keys.push(key);
            r = kv.next_reply();
        }
        for key in keys {
            if let Some(Some(v)) = kv.get(key.clone()).ok().as_ref().and_then(value_of) {
                contents.insert(key, v);
            }
        }
        if Some(model_hash(&contents)) != field(&report, "hash")
            || Some(contents.len() as u64) != field(&report, "keys")
        {
            check.fail(format!(
                "client {id}: final contents ({} keys) differ from its model ({:?} keys)",
                contents.len(),
                field(&report, "keys")
            ));
        }
    }
    let mut total = 0;
    for k in 0..SHARED_COUNTERS {
        let v = kv.get(format!("r{run}/shared/{k}")).ok().as_ref().and_then(value_of).flatten();
        total += v.and_then(|v| core::str::from_utf8(&v).ok().and_then(|s| s.parse::<u64>().ok())).unwrap_or(0);
    }
    if total != increments {
        check.fail(format!("shared counters add up to {total}, but clients saw {increments} increments succeed"));
    }
    println!("kvload: clients={clients} ops={} errors={}", each * clients, check.errors);
    for m in &check.mismatches {
        println!("kvload: mismatch: {m}");
    }
    if check.errors == 0 {
        0
    } else {
        1
    }
}
