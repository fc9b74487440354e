//! `slowreader fill N | list | sessions N`: clients that test how a
//! companion treats clients it must never wait for.
//!
//! - `fill N`: put N keys with long names into kv (a big `kv list`).
//! - `list`: send `List` on one session and never read the answer, then
//!   check that a second session is served promptly while the first one's
//!   replies wait, and that after a while the companion drops the first
//!   session (its connection ends) instead of waiting on it. Prints
//!   `slowreader: dropped after N replies; others served in M ms`.
//! - `sessions N`: open N sessions at once (more than one wait can watch)
//!   and ask each for a key. Prints `slowreader: N sessions served`.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;
use libos::channel::{Channel, ChannelError};
use libos::println;

libos::main!(main);

fn connect() -> Result<kv::KvClient, String> {
    libos::directory::connect(kv::SERVICE, true)
        .map(|ep| kv::KvClient::new(Channel::new(ep)))
        .map_err(|e| format!("{e}"))
}

fn key(i: usize) -> String {
    let mut k = format!("slowreader/{i:06}/");
    while k.len() < 240 {
        k.push('x');
    }
    k
}

fn fill(n: usize) -> Result<String, String> {
    let mut c = connect()?;
    for i in 0..n {
        match c.put(key(i), Vec::from(&b"v"[..])) {
            Ok(kv::Reply::Done { .. }) => {}
            other => return Err(format!("put {i}: {other:?}")),
        }
    }
    Ok(format!("{n} keys put"))
}

fn list() -> Result<String, String> {
    let ep = libos::directory::connect(kv::SERVICE, true).map_err(|e| format!("{e}"))?;
    let mut lazy: Channel<kv::Request, kv::Reply> = Channel::new(ep);
    lazy.send(kv::Request::List { prefix: String::from("slowreader/") }).map_err(|e| format!("list: {e}"))?;
    // Let the companion produce the listing and fill this session's ring.
    libos::time::sleep(Duration::from_millis(1000));
    let mut other = connect()?;
    let t0 = libos::time::now_ns();
    match other.put(String::from("slowreader-other"), Vec::from(&b"served"[..])) {
        Ok(kv::Reply::Done { .. }) => {}
        other => return Err(format!("another session's put: {other:?}")),
    }
    let served_ms = (libos::time::now_ns() - t0) / 1_000_000;
    // The companion drops a session that takes nothing for 10 s.
    libos::time::sleep(Duration::from_secs(13));
    let mut replies = 0u32;
    loop {
        match lazy.recv_timeout(Duration::from_secs(5)) {
            Ok(kv::Reply::Key { .. }) => replies += 1,
            Ok(kv::Reply::EndList { .. }) => {
                return Err(format!("the whole listing ({replies} keys) arrived: the session was not dropped"))
            }
            Ok(other) => return Err(format!("unexpected {other:?} after {replies} keys")),
            Err(ChannelError::PeerClosed) => break,
            Err(e) => return Err(format!("after {replies} keys: {e} (the session was not dropped)")),
        }
    }
    Ok(format!("dropped after {replies} replies; others served in {served_ms} ms"))
}

fn sessions(n: usize) -> Result<String, String> {
    let mut all = Vec::new();
    for i in 0..n {
        all.push(connect().map_err(|e| format!("session {i}: {e}"))?);
    }
    for (i, c) in all.iter_mut().enumerate() {
        match c.get(String::from("slowreader-other")) {
            Ok(kv::Reply::Value { .. }) => {}
            other => return Err(format!("session {i}: {other:?}")),
        }
    }
    Ok(format!("{n} sessions served"))
}

fn main() -> i32 {
    let args: Vec<&str> = libos::start::args().split_whitespace().collect();
    let number = |i: usize| args.get(i).and_then(|a| a.parse::<usize>().ok());
    let result = match (args.first().copied(), number(1)) {
        (Some("fill"), Some(n)) => fill(n),
        (Some("list"), _) => list(),
        (Some("sessions"), Some(n)) => sessions(n),
        _ => Err(String::from("usage: slowreader fill N | list | sessions N")),
    };
    match result {
        Ok(m) => {
            println!("slowreader: {m}");
            0
        }
        Err(m) => {
            println!("slowreader: FAILED: {m}");
            1
        }
    }
}
