//! `kvload [--direct] CLIENTS OPS`: load on the kv service from CLIENTS
//! separate client processes running OPS mixed operations in total, each
//! checking every answer against its own model.
//!
//! With `--direct` the driver first starts a second kv process alone
//! (`kv direct kv-direct-RUN`, the same service code without a companion,
//! as `resbench` does) and the clients talk straight to it; the operations
//! and checks are the same, so the two modes' throughputs compare the
//! companion's cost. The driver stops that kv when done.
//!
//! Each client owns a set of keys (puts, gets, deletes, lists, compare-and-
//! swaps, checked exactly) and increments shared counters with
//! compare-and-swap loops (a lost or duplicated write would make the
//! counters' sum differ from the increments the clients saw succeed). When
//! done, a client stores a report (its error count, its increments, a hash
//! of its model) in kv itself. The driver then checks the final contents:
//! every client's keys against its model's hash, the counters against the
//! increments. It prints `kvload: clients=C ops=N errors=E`, the first
//! mismatches, and `kvload: ops_per_s=R requests_per_s=Q window_ms=W
//! via=companion|direct`: the operations (and the kv requests they took: an
//! increment's compare-and-swap loop takes more under contention) of all
//! clients over the time from the first client's first operation to the
//! last client's last (the clients are spawned
//! suspended and started together; connecting and the final checks are
//! outside the window).
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
use libos::channel::Channel;
use libos::handle::{Event, Process};
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
    let mut a = args();
    match a.first().copied() {
        // `client RUN ID OPS [DIRECT-NAME]`
        Some("client") => client(num(a.get(1), 0), num(a.get(2), 0), num(a.get(3), 100), a.get(4).copied()),
        Some("--direct") => {
            a.remove(0);
            driver(num(a.first(), 4).max(1), num(a.get(1), 1000), true)
        }
        _ => driver(num(a.first(), 4).max(1), num(a.get(1), 1000), false),
    }
}

/// A session with kv: through its companion (resumable across a restart of
/// the companion), or straight to the kv process registered as `direct`.
fn connect(direct: Option<&str>) -> Result<KvClient, String> {
    match direct {
        None => kv::connect().map_err(|e| e.to_string()),
        Some(name) => libos::directory::connect(name, true)
            .map(|ep| KvClient::new(Channel::new(ep)))
            .map_err(|e| format!("{name}: {e}")),
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

fn client(run: u64, id: u64, ops: u64, direct: Option<&str>) -> i32 {
    let mut kv = match connect(direct) {
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
    // Requests sent (an increment is a get and a compare-and-swap per try).
    let mut requests = 0u64;
    let own = |n: u64| format!("r{run}/c{id}/k{n:02}");
    let start_ns = libos::time::now_ns();
    for op in 0..ops {
        let key = own(rng.below(OWN_KEYS));
        let value: Vec<u8> = (0..rng.below(64)).map(|_| b'a' + rng.below(26) as u8).collect();
        let roll = rng.below(100);
        requests += 1;
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
                    let tries =
                        increment(&mut kv, &counter).map_err(|e| format!("op {op}: increment {counter}: {e}"))?;
                    increments += 1;
                    requests += 2 * tries - 1;
                }
            }
            Ok(())
        })();
        if let Err(m) = result {
            check.fail(m);
        }
    }
    let end_ns = libos::time::now_ns();
    // The report, stored in kv for the driver.
    let mut report = format!(
        "errors={} increments={increments} hash={:x} keys={} start={start_ns} end={end_ns} requests={requests}",
        check.errors,
        model_hash(&model),
        model.len()
    );
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

/// Add one to a decimal counter with a compare-and-swap loop; the tries it
/// took.
fn increment(kv: &mut KvClient, key: &str) -> Result<u64, String> {
    for tries in 1..=1000 {
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
            Reply::Swapped { ok: true, .. } => return Ok(tries),
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

/// The kv process a `--direct` run started; stopped when dropped.
struct DirectKv(Process);

impl Drop for DirectKv {
    fn drop(&mut self) {
        let ended = Event::new();
        if let Ok(e) = &ended {
            let _ = self.0.watch(e, 1);
        }
        let _ = self.0.kill();
        if let Ok(e) = ended {
            let _ = e.wait(5_000_000_000);
        }
    }
}

/// Start a kv alone registered as `name`, and a session with it.
fn start_direct(name: &str) -> Result<(DirectKv, KvClient), String> {
    let (_, p) = libos::directory::run("kv", &format!("direct {name}")).map_err(|e| format!("cannot start kv: {e}"))?;
    let direct = DirectKv(p);
    let ep = libos::directory::connect_within(name, core::time::Duration::from_secs(30))
        .map_err(|e| format!("{name} did not come up: {e}"))?;
    Ok((direct, KvClient::new(Channel::new(ep))))
}

/// Start the clients together (spawned suspended, then started), wait for
/// them all to end; a failure for each that did not exit with 0.
fn run_clients(run: u64, clients: u64, each: u64, direct: Option<&str>, check: &mut Checker) -> Result<(), String> {
    let done = Event::new().map_err(|e| format!("event: {e:?}"))?;
    let mut procs = Vec::new();
    for id in 0..clients {
        let mut args = format!("client {run} {id} {each}");
        if let Some(name) = direct {
            args.push(' ');
            args.push_str(name);
        }
        let request = libos::directory::SpawnRequest {
            program: String::from("kvload"),
            name: String::new(),
            args,
            suspended: true,
            handles: Vec::new(),
        };
        match libos::directory::spawn(request) {
            Ok((_, p)) => {
                let _ = p.watch(&done, 1);
                procs.push(p);
            }
            Err(e) => {
                for p in &procs {
                    let _ = p.kill();
                }
                return Err(format!("cannot start client {id}: {e}"));
            }
        }
    }
    for (id, p) in procs.iter().enumerate() {
        if let Err(e) = p.start() {
            check.fail(format!("client {id} could not be started: {e:?}"));
            let _ = p.kill();
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
    Ok(())
}

fn driver(clients: u64, ops: u64, direct: bool) -> i32 {
    let run = libos::time::now_ns() % 1_000_000_000;
    let each = ops / clients;
    let mut check = Checker { errors: 0, mismatches: Vec::new() };
    // `--direct`: a kv of our own, up before the clients start.
    let direct_name = direct.then(|| format!("kv-direct-{run}"));
    let (_direct_kv, early) = match &direct_name {
        Some(name) => match start_direct(name) {
            Ok((p, c)) => (Some(p), Some(c)),
            Err(e) => {
                println!("kvload: {e}");
                return 1;
            }
        },
        None => (None, None),
    };
    if let Err(e) = run_clients(run, clients, each, direct_name.as_deref(), &mut check) {
        println!("kvload: {e}");
        return 1;
    }
    // Through the companion the driver connects only now (a session that
    // idled through the run would be one more to resume after a restart).
    let mut kv = match early.map_or_else(|| connect(None), Ok) {
        Ok(c) => c,
        Err(e) => {
            println!("kvload: {e}");
            return 1;
        }
    };
    let mut increments = 0;
    let mut requests = 0u64;
    let (mut first_start, mut last_end) = (u64::MAX, 0);
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
        requests += field(&report, "requests").unwrap_or(0);
        if let (Some(start), Some(end)) = (field(&report, "start"), field(&report, "end")) {
            first_start = first_start.min(start);
            last_end = last_end.max(end);
        }
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
    if last_end > first_start {
        let window = last_end - first_start;
        let per_s = |n: u64| n as u128 * 1_000_000_000 / window as u128;
        println!(
            "kvload: ops_per_s={} requests_per_s={} window_ms={} via={}",
            per_s(each * clients),
            per_s(requests),
            window / 1_000_000,
            if direct { "direct" } else { "companion" }
        );
    }
    if check.errors == 0 {
        0
    } else {
        1
    }
}
