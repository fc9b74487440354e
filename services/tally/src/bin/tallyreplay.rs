//! `tallyreplay`: checks that a restarted service is fed the inputs it was
//! given before, not new ones. It adds to a tally counter (tally stamps it
//! with the time, an input it asks its companion for) and publishes the
//! counters to kv (a call to another service, made by the companion), then
//! has the kernel kill tally. Recovery replays both requests from the log:
//! the counter must keep its original time, and kv must not be called
//! again (its request count does not move).
// Not service code (a test client outside the service: its clock is not replayed state).
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

fn control(name: &str) -> Result<ControlClient, String> {
    libos::directory::connect(&format!("{name}.control"), true)
        .map(|ep| ControlClient::new(Channel::new(ep)))
        .map_err(|e| format!("{name}.control: {e}"))
}

fn kv_requests(kv: &mut ControlClient) -> Result<u64, String> {
    match kv.stats() {
        Ok(Ctl::Figures { requests, .. }) => Ok(requests),
        other => Err(format!("kv stats: {other:?}")),
    }
}

fn main() -> Result<(), String> {
    let mut t = tally::connect().map_err(|e| format!("tally: {e}"))?;
    let mut tally_ctl = control("tally")?;
    let mut kv_ctl = control("kv")?;
    let name = format!("replay{}", libos::time::now_ns() % 100_000);
    let before = match t.add(name.clone(), 5) {
        Ok(Reply::Total { value: 5, updated_ns }) => updated_ns,
        other => return Err(format!("tallyreplay: add: {other:?}")),
    };
    let r0 = kv_requests(&mut kv_ctl)?;
    match t.publish(format!("{name}-published")) {
        Ok(Reply::Published { ok: true }) => {}
        other => return Err(format!("tallyreplay: publish: {other:?}")),
    }
    let r1 = kv_requests(&mut kv_ctl)?;
    let replayed = match tally_ctl.crash(1) {
        Ok(Ctl::Done { .. }) => true,
        other => return Err(format!("tallyreplay: crash: {other:?}")),
    };
    let after = match t.get(name.clone()) {
        Ok(Reply::Total { value: 5, updated_ns }) => updated_ns,
        other => return Err(format!("tallyreplay: get after restart: {other:?}")),
    };
    let r2 = kv_requests(&mut kv_ctl)?;
    println!(
        "tallyreplay: restarted={replayed}; time input before {before}, after {after}: {}; kv requests {r0} -> {r1} (publish) -> {r2} (after recovery): {}",
        if before == after { "replayed" } else { "CHANGED" },
        if r2 == r1 && r1 == r0 + 1 { "not called again" } else { "CALLED AGAIN" }
    );
    if before == after && r2 == r1 && r1 == r0 + 1 {
        Ok(())
    } else {
        Err(String::from("tallyreplay: FAILED"))
    }
}
