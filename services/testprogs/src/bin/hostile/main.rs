//! `hostile [check] [seed=N] [random=N] [sample=N] [SERVICE...]` and
//! `hostile hold SECS [kv|tally]` (see [`hold`]): a hostile client of the resilient
//! services (kv, tally, fs, blk by default; net, httpd and nic when named:
//! they need a network card) and of the vault (when named).
//!
//! Against each it sends, every message on a fresh session: valid requests
//! truncated at many lengths, with bytes after them or a handle attached;
//! unknown tags; length and count fields that lie; bools out of range;
//! strings that are not UTF-8; fields past the contract's limits; random
//! bytes (N messages, seeded); valid requests mutated at random (2N,
//! seeded); valid requests with random and edge values in their fields
//! (N); and well-formed requests the service must refuse (see
//! [`cases`] and [`targets`]). Then (see [`floods`]) many requests at once
//! on one session (out of turn: the session must be dropped), many
//! sessions at once, and a client that sends a request and never reads the
//! answers while a well-behaved client must still be served. The
//! companion's `NAME.control` and `NAME.notices` get malformed messages, a
//! controller that never reads and subscribers that break their protocol
//! (see [`side`]). Every bad message must get the contract's error reply or
//! a dropped session; afterwards a well-behaved exchange on a fresh
//! connection must work.
//!
//! `sample=N` sends only N of the single-message cases per service, chosen
//! at random (the soak's short runs).
//!
//! With `check`, one client also hoards idle sessions (see
//! [`floods::hoard`]), and the companions' figures (`NAME.control` Stats)
//! are read before and after each service: a restart, a divergence or an
//! abandoned request during the attack fails the run (a crash caused by a
//! client message is a bug, not a recovery). Without it (the soak, which
//! injects crashes meanwhile and counts unexplained restarts itself) they
//! are printed only.
//!
//! Prints one line per failure (`hostile: FAIL ...`), per service a line
//! of figures, then `hostile: cases=N ops=N errors=E` and
//! `hostile: verdict OK` or `hostile: verdict FAILED`.
#![no_std]
#![no_main]

extern crate alloc;

mod cases;
mod figures;
mod floods;
mod probe;
mod side;
mod targets;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use cases::Builder;
use core::time::Duration;
use libos::println;
use probe::Outcome;
use targets::Target;
use testprogs::Rng;

libos::main!(main);

/// How long a service may take to answer or drop a session: as long as a
/// service waits for another's answer (the companion's outbound call), since
/// a service whose disk is recovering (the soak's storms of blk hangs, 3 to
/// 6 s each, one after another) holds every caller up that long. Silence
/// beyond it is a failure.
pub const WAIT: Duration = Duration::from_secs(60);

/// The run's options.
struct Options {
    check: bool,
    seed: u64,
    random: u64,
    /// Send only this many of the single-message cases, chosen at random.
    sample: Option<usize>,
    services: Vec<String>,
}

fn options() -> Options {
    let mut o = Options { check: false, seed: 1, random: 60, sample: None, services: Vec::new() };
    for a in libos::start::args().split_whitespace() {
        if a == "check" {
            o.check = true;
        } else if let Some(v) = a.strip_prefix("seed=") {
            o.seed = v.parse().unwrap_or(1);
        } else if let Some(v) = a.strip_prefix("sample=") {
            o.sample = v.parse().ok();
        } else if let Some(v) = a.strip_prefix("random=") {
            o.random = v.parse().unwrap_or(60);
        } else {
            o.services.push(String::from(a));
        }
    }
    if o.services.is_empty() {
        o.services = ["kv", "tally", "fs", "blk"].into_iter().map(String::from).collect();
    }
    o
}

/// What the run found.
#[derive(Default)]
pub struct Report {
    cases: u64,
    failures: Vec<String>,
}

impl Report {
    /// One failure, printed as it is found.
    pub fn fail(&mut self, what: String) {
        println!("hostile: FAIL {what}");
        self.failures.push(what);
    }
}

fn main() -> i32 {
    if testprogs::arg(0) == Some("hold") {
        return hold(testprogs::arg_u64(1, 10));
    }
    let o = options();
    let mut rng = Rng::new(o.seed);
    let mut report = Report::default();
    for name in &o.services {
        let before = figures::read(name);
        match name.as_str() {
            "kv" => attack::<targets::kv::Kv>(&mut rng, &o, &mut report),
            "tally" => attack::<targets::tally::Tally>(&mut rng, &o, &mut report),
            "fs" => attack::<targets::fs::Fs>(&mut rng, &o, &mut report),
            "blk" => attack::<targets::blk::Blk>(&mut rng, &o, &mut report),
            "net" => attack::<targets::net::Net>(&mut rng, &o, &mut report),
            "httpd" => attack::<targets::httpd::Httpd>(&mut rng, &o, &mut report),
            "nic" => attack::<targets::nic::Nic>(&mut rng, &o, &mut report),
            "vault" => attack::<targets::vault::Vault>(&mut rng, &o, &mut report),
            other => report.fail(format!("{other}: not a service this client knows")),
        }
        let after = figures::read(name);
        figures::compare(name, before, after, o.check, &mut report);
    }
    let errors = report.failures.len();
    println!("hostile: cases={} ops={} errors={errors}", report.cases, report.cases);
    if errors == 0 {
        println!("hostile: verdict OK");
        0
    } else {
        println!("hostile: verdict FAILED ({errors} failures)");
        1
    }
}

/// `hostile hold SECS [kv|tally]`: as many idle sessions of kv and tally
/// (or only the one named) as their companions allow one client (and some past it), held
/// for SECS seconds while other programs (the test's shell) must be served
/// as usual.
fn hold(seconds: u64) -> i32 {
    let only = testprogs::arg(2);
    let kv = match only {
        Some("tally") => Vec::new(),
        _ => floods::open_many("kv", floods::hoard_size::<targets::kv::Kv>()),
    };
    let tally = match only {
        Some("kv") => Vec::new(),
        _ => floods::open_many("tally", floods::hoard_size::<targets::tally::Tally>()),
    };
    libos::time::sleep(Duration::from_millis(300));
    // Give back the connections the companions closed (their rings are
    // memory until both ends are gone).
    let (mut kv, mut tally) = (kv, tally);
    kv.retain(|ep| !ep.peer_closed());
    tally.retain(|ep| !ep.peer_closed());
    let me = libos::start::name();
    println!("{me}: holding {} kv sessions and {} tally sessions", kv.len(), tally.len());
    libos::time::sleep(Duration::from_secs(seconds));
    println!("{me}: released");
    0
}

/// Everything against one service.
fn attack<T: Target>(rng: &mut Rng, o: &Options, report: &mut Report) {
    let mut b = Builder::<T::P>::new(T::safe);
    let seeds = T::seeds();
    for seed in &seeds {
        b.mangle(seed.name, &seed.bytes);
        for &at in &seed.lengths {
            b.lie_u32(seed.name, &seed.bytes, at);
        }
        for &at in &seed.flags {
            b.lie_u8(seed.name, &seed.bytes, at);
        }
    }
    b.unknown_tags(T::LAST_TAG);
    for tag in 1..=T::LAST_TAG {
        b.bad_utf8(tag, 5);
    }
    for (label, bytes, expect) in T::crafted() {
        match expect {
            Some(e) => b.push_request(label, bytes, e),
            None => b.push(String::from(label), bytes),
        }
    }
    let channel_max = match probe::connect(T::NAME) {
        Ok(ep) => ep.max_message(),
        Err(e) => return report.fail(e),
    };
    b.random(rng, o.random, T::LAST_TAG, 300, channel_max);
    let valid: Vec<Vec<u8>> = seeds.into_iter().map(|s| s.bytes).collect();
    b.mutate(rng, &valid, o.random * 2);
    for i in 0..o.random {
        let bytes = T::random_valid(rng);
        b.push(format!("random valid request {i}"), bytes);
    }
    let skipped = b.skipped;
    let mut cases = b.cases;
    if let Some(n) = o.sample {
        // A seeded choice of n cases (a partial shuffle).
        for i in 0..n.min(cases.len()) {
            let j = i + rng.below((cases.len() - i) as u64) as usize;
            cases.swap(i, j);
        }
        cases.truncate(n);
    }
    let (mut rejected, mut answered) = (0u64, 0u64);
    for case in cases {
        let outcome = probe::exchange::<T::P>(T::NAME, &case.bytes, case.with_handle, WAIT);
        report.cases += 1;
        if !case.expect.allows(&outcome) {
            report.fail(format!("{}: {}: {outcome:?}, wanted {:?}", T::NAME, case.label, case.expect));
        } else if matches!(outcome, Outcome::Dropped | Outcome::Error) {
            rejected += 1;
        } else {
            answered += 1;
        }
    }
    for f in T::scripts(rng, o.random) {
        report.fail(f);
    }
    floods::pipelined::<T>(report);
    floods::sessions::<T>(report);
    floods::never_reads::<T>(report);
    if o.check {
        // Not in the soak: a hoard of fs's or blk's large rings takes
        // memory the soak's other clients need.
        floods::hoard::<T>(report);
    }
    if T::RESILIENT {
        side::attack::<T>(report);
    }
    if let Err(e) = T::healthy() {
        report.fail(format!("{}: a well-behaved client after the attack: {e}", T::NAME));
    }
    println!(
        "hostile: {}: {rejected} rejected, {answered} answered, {skipped} not sent (would touch others' data)",
        T::NAME
    );
}
