//! `authtest`: tries what its manifest entry does not allow (connects =
//! kv and the vault only) and prints what it got, one `authtest: ...` line
//! each: connecting to kv (allowed), to `kv.control`, `blk` and
//! `tally.notices` (refused), registering `kv` (refused) and its own
//! `authtest.notices` (allowed), starting kv as a companion (refused),
//! starting `shell` (refused: not in its spawns) and itself (allowed: it
//! ends at once), killing kv and powering off (refused: no powers), and
//! keeping a record in the vault, which files it under `authtest` whatever
//! the request says (there is no name in it to say otherwise).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use libos::channel::Channel;
use libos::directory::{self, DirError};
use libos::handle::Memory;
use libos::println;
use resiliency_lib::vault::{Reply, VaultClient};

libos::main!(main);

fn report<T>(what: &str, r: Result<T, DirError>) {
    match r {
        Ok(_) => println!("authtest: {what}: allowed"),
        Err(e) => println!("authtest: {what}: refused: {e}"),
    }
}

fn memory_with(bytes: &[u8]) -> Option<Memory> {
    Memory::from_bytes(bytes).ok()
}

/// Commit a small state to the vault and list what it holds.
fn vault() -> Result<(), String> {
    let ep = directory::connect("vault", true).map_err(|e| format!("{e}"))?;
    let mut v = VaultClient::new(Channel::new(ep));
    let state = b"authtest state";
    let m = memory_with(state).ok_or("no memory")?;
    match v.commit(1, 0, m.0, state.len() as u64, Vec::new(), 0) {
        Ok(Reply::Committed { generation, .. }) => println!("authtest: vault: committed generation {generation}"),
        other => return Err(format!("commit: {other:?}")),
    }
    let mut r = v.list().map_err(|e| format!("{e}"))?;
    while let Reply::Entry { service, generation, .. } = r {
        println!("authtest: vault holds {service} generation {generation}");
        r = v.next_reply().map_err(|e| format!("{e}"))?;
    }
    match v.latest() {
        Ok(Reply::Record { len, .. }) if len == state.len() as u64 => println!("authtest: vault: latest is its own"),
        other => return Err(format!("latest: {other:?}")),
    }
    Ok(())
}

fn main() -> i32 {
    if libos::start::args() == "exit" {
        return 0;
    }
    report("connect kv", directory::connect("kv", true));
    report("connect kv.control", directory::connect("kv.control", false));
    report("connect blk", directory::connect("blk", false));
    report("connect tally.notices", directory::connect("tally.notices", false));
    report("register kv", directory::register("kv"));
    report("register authtest.notices", directory::register("authtest.notices"));
    report(
        "start kv as a companion",
        directory::spawn(directory::SpawnRequest {
            program: String::from("kv"),
            name: String::from("kv-companion"),
            args: String::from("companion store=vault"),
            suspended: true,
            handles: Vec::new(),
        }),
    );
    report("start shell", directory::run("shell", ""));
    report("start itself", directory::run("authtest", "exit"));
    report("kill kv", directory::kill("kv"));
    report("power off", directory::power_off(false));
    if let Err(e) = vault() {
        println!("authtest: vault: {e}");
        return 1;
    }
    println!("authtest: done");
    0
}
