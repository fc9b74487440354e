//! `tallyimport`: tally's `Import`, a call to kv whose answer is several
//! replies (kv's `List`, taken reply by reply with `call_next`), then one
//! `Get` per key. Counter `c` gets 5, is published under `impRUN/a`, gets 2
//! more and is published under `impRUN/b`; importing `impRUN/` must then
//! give 7 + 5 + 7 = 19, and still 19 after tally is crashed (the replay
//! feeds the import the replies it recorded instead of calling kv again).
//! Prints `tallyimport: ok` or what went wrong.
// Not service code: the run number comes from the clock.
#![allow(clippy::disallowed_methods)]
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use libos::channel::Channel;
use libos::println;
use resiliency_lib::control::{ControlClient, Reply as Ctl};
use tally::Reply;

libos::main!(main);

fn value(t: &mut tally::TallyClient, name: &str) -> Result<i64, String> {
    match t.get(String::from(name)) {
        Ok(Reply::Total { value, .. }) => Ok(value),
        other => Err(format!("get {name}: {other:?}")),
    }
}

fn run() -> Result<(), String> {
    let n = libos::time::now_ns() % 1_000_000;
    let (name, prefix) = (format!("imp{n}c"), format!("imp{n}/"));
    let mut t = tally::connect().map_err(|e| format!("tally: {e}"))?;
    for (delta, key) in [(5, "a"), (2, "b")] {
        t.add(name.clone(), delta).map_err(|e| format!("add: {e:?}"))?;
        match t.publish(format!("{prefix}{key}")) {
            Ok(Reply::Published { ok: true }) => {}
            other => return Err(format!("publish: {other:?}")),
        }
    }
    match t.import(prefix.clone()) {
        Ok(Reply::Imported { values: 2, counters }) if counters >= 2 => {}
        other => return Err(format!("import: {other:?}")),
    }
    let imported = value(&mut t, &name)?;
    if imported != 19 {
        return Err(format!("{name} is {imported} after the import, not 19"));
    }
    let ep = libos::directory::connect("tally.control", true).map_err(|e| format!("tally.control: {e}"))?;
    match ControlClient::new(Channel::new(ep)).crash(1) {
        Ok(Ctl::Done { .. }) => {}
        other => return Err(format!("crash tally: {other:?}")),
    }
    let after = value(&mut t, &name)?;
    if after != 19 {
        return Err(format!("{name} is {after} after tally's recovery, not 19"));
    }
    Ok(())
}

fn main() -> i32 {
    match run() {
        Ok(()) => {
            println!("tallyimport: ok");
            0
        }
        Err(m) => {
            println!("tallyimport: FAILED: {m}");
            1
        }
    }
}
