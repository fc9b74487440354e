//! `idemcheck`: the companions check that requests their contracts call
//! idempotent leave the state alone (issue: determinism is enforced, not
//! hoped for).
//!
//! With `Verify` on for kv (logical state) and tally (image state), it
//! runs gets and lists among changes and requires no violation; then it
//! makes tally's next idempotent request change the state (control crash
//! kind 8) and requires the companion to find it: one violation, one
//! restart, and the counter as it was (the change was not kept). Prints
//! `idemcheck: ok` or what went wrong.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use libos::channel::Channel;
use libos::println;
use resiliency_lib::control::{ControlClient, Reply as Ctl};

libos::main!(main);

fn control(name: &str) -> Result<ControlClient, String> {
    libos::directory::connect(&format!("{name}.control"), true)
        .map(|ep| ControlClient::new(Channel::new(ep)))
        .map_err(|e| format!("{name}.control: {e}"))
}

/// (idempotence violations, restarts) of a service.
fn figures(c: &mut ControlClient) -> Result<(u64, u64), String> {
    match c.stats() {
        Ok(Ctl::Figures { idempotence_violations, restarts, .. }) => Ok((idempotence_violations, restarts)),
        other => Err(format!("stats: {other:?}")),
    }
}

fn verify(c: &mut ControlClient, on: bool) -> Result<(), String> {
    match c.verify(on) {
        Ok(Ctl::Done { .. }) => Ok(()),
        other => Err(format!("verify: {other:?}")),
    }
}

fn tally_value(t: &mut tally::TallyClient, name: &str) -> Result<i64, String> {
    match t.get(String::from(name)) {
        Ok(tally::Reply::Total { value, .. }) => Ok(value),
        other => Err(format!("tally get {name}: {other:?}")),
    }
}

fn run() -> Result<(), String> {
    let mut kv_ctl = control("kv")?;
    let mut tally_ctl = control("tally")?;
    let ep = libos::directory::connect(kv::SERVICE, true).map_err(|e| format!("kv: {e}"))?;
    let mut k = kv::KvClient::new(Channel::new(ep));
    let ep = libos::directory::connect(tally::SERVICE, true).map_err(|e| format!("tally: {e}"))?;
    let mut t = tally::TallyClient::new(Channel::new(ep));
    verify(&mut kv_ctl, true)?;
    verify(&mut tally_ctl, true)?;
    let (kv_before, _) = figures(&mut kv_ctl)?;
    let (tally_before, tally_restarts) = figures(&mut tally_ctl)?;
    for i in 0..20 {
        let key = format!("idem/{}", i % 5);
        k.put(key.clone(), Vec::from(format!("{i}").as_bytes())).map_err(|e| format!("put: {e:?}"))?;
        k.get(key).map_err(|e| format!("get: {e:?}"))?;
        k.list(String::from("idem/")).map_err(|e| format!("list: {e:?}"))?;
        while let Ok(kv::Reply::Key { .. }) = k.next_reply() {}
        t.add(format!("idem{}", i % 3), 1).map_err(|e| format!("add: {e:?}"))?;
        tally_value(&mut t, "idem0")?;
        t.list().map_err(|e| format!("tally list: {e:?}"))?;
        while let Ok(tally::Reply::Entry { .. }) = t.next_reply() {}
    }
    let (kv_after, _) = figures(&mut kv_ctl)?;
    let (tally_after, restarts) = figures(&mut tally_ctl)?;
    if kv_after != kv_before || tally_after != tally_before || restarts != tally_restarts {
        return Err(format!(
            "violations on honest requests: kv {kv_before} -> {kv_after}, tally {tally_before} -> {tally_after} \
             (tally restarts {tally_restarts} -> {restarts})"
        ));
    }
    // A dishonest one: tally's next Get changes the state.
    let value = tally_value(&mut t, "idem0")?;
    match tally_ctl.crash(8) {
        Ok(Ctl::Done { .. }) => {}
        other => return Err(format!("crash kind 8: {other:?}")),
    }
    let seen = tally_value(&mut t, "idem0")?;
    let (violations, restarts_after) = figures(&mut tally_ctl)?;
    if violations != tally_after + 1 || restarts_after != restarts + 1 {
        return Err(format!(
            "the changing Get was not found: violations {tally_after} -> {violations}, restarts {restarts} -> {restarts_after}"
        ));
    }
    let again = tally_value(&mut t, "idem0")?;
    if seen != value || again != value {
        return Err(format!("idem0 was {value}, then {seen} and {again}"));
    }
    t.add(String::from("idem0"), 1).map_err(|e| format!("add after: {e:?}"))?;
    verify(&mut kv_ctl, false)?;
    verify(&mut tally_ctl, false)?;
    Ok(())
}

fn main() -> i32 {
    match run() {
        Ok(()) => {
            println!("idemcheck: ok");
            0
        }
        Err(m) => {
            println!("idemcheck: FAILED: {m}");
            1
        }
    }
}
