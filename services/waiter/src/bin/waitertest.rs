//! `waitertest`: held requests and events across crashes of the waiter
//! service. Three sessions wait on keys and one sleeps for 60 ticks (held
//! by the service) while another session is served; the service is killed,
//! faults, panics and hangs while they are held and ticks arrive. Each
//! held request must be answered exactly once with the right value (the
//! next reply on its session is that of its next request), the sleep must
//! last exactly its ticks, the service must have seen every tick its
//! companion originated exactly once (no gap, no repeat: the replays saw
//! the same ticks), and the companion must count no divergence.
//!
//! `waitertest chaos` does the same under chaos instead: the companion
//! crashes the service at random (every kind, before, during and after
//! requests, ticks and checkpoints) while, round after round, a wait is
//! held until a notify and a sleep of 3 ticks is held until its ticks.
//! Prints `waitertest: ok` or what went wrong.
// Not service code: the chaos seed comes from the clock.
#![allow(clippy::disallowed_methods)]
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use core::time::Duration;
use libos::channel::Channel;
use libos::println;
use resiliency_lib::control::{ControlClient, Reply as Ctl};
use waiter::{Reply, Request};

libos::main!(main);

type Session = Channel<Request, Reply>;

/// How long a held request may take to be answered (a hang is found in
/// about 4 s, a recovery takes less).
const ANSWER_WITHIN: Duration = Duration::from_secs(60);

fn connect() -> Result<Session, String> {
    waiter::connect().map_err(|e| format!("waiter: {e}"))
}

fn ask(s: &mut Session, r: Request) -> Result<Reply, String> {
    s.send(r).map_err(|e| format!("send: {e}"))?;
    s.recv_timeout(ANSWER_WITHIN).map_err(|e| format!("no answer: {e}"))
}

/// The tick figures: (ticks, last, gaps, repeats, held).
fn count(s: &mut Session) -> Result<(u64, u64, u64, u64, u32), String> {
    match ask(s, Request::Ticks {})? {
        Reply::Count { ticks, last, gaps, repeats, held } => Ok((ticks, last, gaps, repeats, held)),
        other => Err(format!("Ticks answered {other:?}")),
    }
}

fn crash(ctl: &mut ControlClient, kind: u8, what: &str) -> Result<(), String> {
    match ctl.crash(kind) {
        Ok(Ctl::Done { .. }) => {
            println!("waitertest: crashed the service ({what}) while requests were held");
            Ok(())
        }
        other => Err(format!("crash {what}: {other:?}")),
    }
}

fn notify(s: &mut Session, key: &str, value: u64, expect: u32) -> Result<(), String> {
    match ask(s, Request::Notify { key: String::from(key), value })? {
        Reply::Notified { woken } if woken == expect => Ok(()),
        other => Err(format!("notify {key}: {other:?}, expected {expect} woken")),
    }
}

/// The held request on `s` was answered with `expected`, once: the next
/// reply on the session answers its next request.
fn answered_once(s: &mut Session, expected: &Reply, who: &str) -> Result<(), String> {
    match s.recv_timeout(ANSWER_WITHIN) {
        Ok(r) if r == *expected => {}
        Ok(r) => return Err(format!("{who} got {r:?}, expected {expected:?}")),
        Err(e) => return Err(format!("{who} was not answered: {e}")),
    }
    count(s).map(|_| ()).map_err(|e| format!("{who}, after its answer: {e}"))
}

/// Wait until `n` requests are held (asking on `s`).
fn until_held(s: &mut Session, n: u32) -> Result<(), String> {
    let mut held = 0;
    for _ in 0..500 {
        held = count(s)?.4;
        if held >= n {
            return Ok(());
        }
        libos::time::sleep(Duration::from_millis(20));
    }
    Err(format!("{held} requests held, expected {n}"))
}

/// The end of a test: every tick seen once, nothing left held, no
/// divergence, at least `restarts` restarts.
fn figures_are_right(
    ctl: &mut ControlClient,
    other: &mut Session,
    held_before: u32,
    restarts: u64,
) -> Result<(), String> {
    let (ticks, last, gaps, repeats, held_now) = count(other)?;
    println!("waitertest: {ticks} ticks seen, the last numbered {last}");
    if gaps != 0 || repeats != 0 || ticks != last {
        return Err(format!("ticks lost {gaps} times and repeated {repeats} times; {ticks} seen of {last}"));
    }
    if held_now != held_before {
        return Err(format!("{held_now} requests still held, {held_before} before the test"));
    }
    match ctl.stats() {
        Ok(Ctl::Figures { divergences: 0, restarts: r, .. }) if r >= restarts => Ok(()),
        other => Err(format!("figures: {other:?} (expected no divergence and {restarts} restarts or more)")),
    }
}

fn chaos(ctl: &mut ControlClient) -> Result<(), String> {
    let mut other = connect()?;
    let (mut waiting, mut sleeper) = (connect()?, connect()?);
    let held_before = count(&mut other)?.4;
    let restarts_before = match ctl.stats() {
        Ok(Ctl::Figures { restarts, .. }) => restarts,
        other => return Err(format!("figures: {other:?}")),
    };
    match ctl.chaos(150, libos::time::now_ns()) {
        Ok(Ctl::Done { .. }) => {}
        other => return Err(format!("chaos on: {other:?}")),
    }
    for round in 0..25u64 {
        let key = format!("r{round}");
        waiting.send(Request::Wait { key: key.clone() }).map_err(|e| format!("wait: {e}"))?;
        sleeper.send(Request::Sleep { ticks: 3 }).map_err(|e| format!("sleep: {e}"))?;
        until_held(&mut other, held_before + 2)?;
        notify(&mut other, &key, round, 1)?;
        answered_once(&mut waiting, &Reply::Woken { key, value: round }, "the waiter")?;
        match sleeper.recv_timeout(ANSWER_WITHIN) {
            Ok(Reply::Slept { from, until }) if until == from + 3 => {}
            other => return Err(format!("round {round}: the sleeper got {other:?}, expected a sleep of 3 ticks")),
        }
        count(&mut sleeper).map_err(|e| format!("the sleeper, after its answer: {e}"))?;
    }
    match ctl.chaos(0, 0) {
        Ok(Ctl::Done { restarts, .. }) => println!("waitertest: {} restarts under chaos", restarts - restarts_before),
        other => return Err(format!("chaos off: {other:?}")),
    }
    figures_are_right(ctl, &mut other, held_before, restarts_before + 1)
}

fn run() -> Result<(), String> {
    let ep = libos::directory::connect("waiter.control", true).map_err(|e| format!("waiter.control: {e}"))?;
    let mut ctl = ControlClient::new(Channel::new(ep));
    if libos::start::args().split_whitespace().any(|a| a == "chaos") {
        return chaos(&mut ctl);
    }
    let mut other = connect()?;
    let (mut w1, mut w2, mut w3, mut sleeper) = (connect()?, connect()?, connect()?, connect()?);
    let held_before = count(&mut other)?.4;
    let key = |k: &str| String::from(k);
    w1.send(Request::Wait { key: key("a") }).map_err(|e| format!("wait: {e}"))?;
    w2.send(Request::Wait { key: key("b") }).map_err(|e| format!("wait: {e}"))?;
    w3.send(Request::Wait { key: key("a") }).map_err(|e| format!("wait: {e}"))?;
    sleeper.send(Request::Sleep { ticks: 60 }).map_err(|e| format!("sleep: {e}"))?;
    // Meanwhile another session is served, until the four are held.
    until_held(&mut other, held_before + 4)?;
    let (ticks_at_start, .., held) = count(&mut other)?;
    crash(&mut ctl, 1, "killed")?;
    let after = count(&mut other)?;
    if after.4 != held {
        return Err(format!("{} requests held after the recovery, {held} before", after.4));
    }
    notify(&mut other, "b", 7, 1)?;
    answered_once(&mut w2, &Reply::Woken { key: key("b"), value: 7 }, "the waiter on b")?;
    crash(&mut ctl, 2, "faulted")?;
    notify(&mut other, "a", 9, 2)?;
    // The answers went out; the replay after this crash gives them again
    // and the companion must not send them twice.
    crash(&mut ctl, 4, "panicked")?;
    answered_once(&mut w1, &Reply::Woken { key: key("a"), value: 9 }, "the first waiter on a")?;
    answered_once(&mut w3, &Reply::Woken { key: key("a"), value: 9 }, "the second waiter on a")?;
    notify(&mut other, "a", 10, 0)?;
    let before_hang = count(&mut other)?.0;
    if before_hang >= ticks_at_start + 60 {
        println!("waitertest: note: the sleep was over before the hang ({before_hang} ticks)");
    }
    crash(&mut ctl, 3, "hung")?;
    match sleeper.recv_timeout(ANSWER_WITHIN) {
        Ok(Reply::Slept { from, until }) if until == from + 60 => {}
        other => return Err(format!("the sleeper got {other:?}, expected a sleep of 60 ticks")),
    }
    count(&mut sleeper).map_err(|e| format!("the sleeper, after its answer: {e}"))?;
    figures_are_right(&mut ctl, &mut other, held_before, 4)
}

fn main() -> i32 {
    match run() {
        Ok(()) => {
            println!("waitertest: ok");
            0
        }
        Err(m) => {
            println!("waitertest: FAILED: {m}");
            1
        }
    }
}
