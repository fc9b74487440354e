//! kv under attack. Its keys all start with `hostile/`; the client that
//! never reads lists 140 keys of 250 bytes, more than a session's ring
//! holds.

use super::{edgy, odd_name, text, Seed, Target};
use crate::probe::{call, connect, encode, recv, Expect};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use kv::{Reply, Request};
use testprogs::Rng;

/// kv.
pub struct Kv;

fn key(s: &str) -> String {
    format!("hostile/{s}")
}

/// The keys the client that never reads lists.
const BIG_KEYS: usize = 140;

fn big_key(i: usize) -> String {
    let mut k = format!("hostile/big/{i:04}/");
    while k.len() < 250 {
        k.push('k');
    }
    k
}

impl Target for Kv {
    type P = kv::Kv;
    const NAME: &'static str = "kv";
    const LAST_TAG: u8 = 5;

    fn safe(r: &Request) -> bool {
        match r {
            Request::Put { key, .. } | Request::Delete { key } | Request::Cas { key, .. } => key.starts_with("hostile"),
            _ => true,
        }
    }

    fn seeds() -> Vec<Seed> {
        let k = key("seed");
        let kl = k.len();
        vec![
            Seed { name: "Get", bytes: encode(Request::Get { key: k.clone() }), lengths: vec![1], flags: vec![] },
            Seed {
                name: "Put",
                bytes: encode(Request::Put { key: k.clone(), value: vec![7; 10] }),
                lengths: vec![1, 5 + kl],
                flags: vec![],
            },
            Seed {
                name: "Delete",
                bytes: encode(Request::Delete { key: key("none") }),
                lengths: vec![1],
                flags: vec![],
            },
            Seed {
                name: "List",
                bytes: encode(Request::List { prefix: key("seed") }),
                lengths: vec![1],
                flags: vec![],
            },
            Seed {
                name: "Cas",
                bytes: encode(Request::Cas {
                    key: k,
                    expected_present: true,
                    expected: vec![1],
                    new_present: true,
                    new: vec![2],
                }),
                lengths: vec![1, 6 + kl, 12 + kl],
                flags: vec![5 + kl, 11 + kl],
            },
        ]
    }

    fn crafted() -> Vec<(&'static str, Vec<u8>, Option<Expect>)> {
        let long = |n: usize| "x".repeat(n);
        vec![
            ("Get with a 257-byte key", encode(Request::Get { key: long(257) }), Some(Expect::Rejected)),
            (
                "Put with a 4097-byte value",
                encode(Request::Put { key: key("v"), value: vec![1; 4097] }),
                Some(Expect::Rejected),
            ),
            ("List with a 1000-byte prefix", encode(Request::List { prefix: long(1000) }), Some(Expect::Rejected)),
            (
                "Cas with a 8000-byte new value",
                encode(Request::Cas {
                    key: key("c"),
                    expected_present: false,
                    expected: vec![],
                    new_present: true,
                    new: vec![3; 8000],
                }),
                Some(Expect::Rejected),
            ),
            ("Get with an empty key", encode(Request::Get { key: String::new() }), Some(Expect::Any)),
            ("Get with NUL and U+10FFFF", encode(Request::Get { key: key("\0\u{10ffff}") }), Some(Expect::Any)),
            (
                "Put at both limits",
                encode(Request::Put { key: format!("hostile/{}", long(248)), value: vec![0xff; 4096] }),
                Some(Expect::Any),
            ),
            (
                "Cas on an absent key expecting a value",
                encode(Request::Cas {
                    key: key("absent"),
                    expected_present: true,
                    expected: vec![1; 4096],
                    new_present: false,
                    new: vec![],
                }),
                Some(Expect::Any),
            ),
            (
                "Cas removing with a value given",
                encode(Request::Cas {
                    key: key("absent"),
                    expected_present: false,
                    expected: vec![9; 100],
                    new_present: false,
                    new: vec![9; 100],
                }),
                Some(Expect::Any),
            ),
            ("Delete of an absent key", encode(Request::Delete { key: key("never-there") }), Some(Expect::Any)),
        ]
    }

    fn cheap() -> Vec<u8> {
        encode(Request::Get { key: key("cheap") })
    }

    fn random_valid(rng: &mut Rng) -> Vec<u8> {
        let k = format!("hostile/r/{}", odd_name(rng));
        let bytes = |rng: &mut Rng| -> Vec<u8> {
            let n = edgy(rng, 4097).min(4096) as usize;
            (0..n).map(|_| rng.next() as u8).collect()
        };
        encode(match rng.below(5) {
            0 => Request::Get { key: format!("hostile/r/{}", text(rng, 240)) },
            1 => Request::Put { key: k, value: bytes(rng) },
            2 => Request::Delete { key: k },
            3 => Request::List { prefix: format!("hostile/r/{}", text(rng, 4)) },
            _ => Request::Cas {
                key: k,
                expected_present: rng.chance(500),
                expected: bytes(rng),
                new_present: rng.chance(500),
                new: bytes(rng),
            },
        })
    }

    fn never_read() -> Result<(Vec<u8>, bool), String> {
        let mut c = connect(kv::SERVICE)?;
        if count(&mut c, "hostile/big/")? >= BIG_KEYS {
            // An earlier run stored them (they stay).
            return Ok((encode(Request::List { prefix: String::from("hostile/big/") }), true));
        }
        for i in 0..BIG_KEYS {
            match call::<kv::Kv>(&mut c, Request::Put { key: big_key(i), value: vec![b'v'] }) {
                Ok(Reply::Done { .. }) => {}
                other => return Err(format!("put {}: {other:?}", big_key(i))),
            }
        }
        Ok((encode(Request::List { prefix: String::from("hostile/big/") }), true))
    }

    fn healthy() -> Result<(), String> {
        let mut c = connect(kv::SERVICE)?;
        let value = Vec::from(&b"well-behaved"[..]);
        match call::<kv::Kv>(&mut c, Request::Put { key: key("healthy"), value: value.clone() }) {
            Ok(Reply::Done { .. }) => {}
            other => return Err(format!("put: {other:?}")),
        }
        match call::<kv::Kv>(&mut c, Request::Get { key: key("healthy") }) {
            Ok(Reply::Value { found: true, value: v }) if v == value => {}
            other => return Err(format!("get: {other:?}")),
        }
        count(&mut c, "hostile/big/").map(|_| ())
    }
}

/// The keys under `prefix` (a List read to its end, checked).
fn count(c: &mut libos::channel::Endpoint, prefix: &str) -> Result<usize, String> {
    let mut r = call::<kv::Kv>(c, Request::List { prefix: String::from(prefix) }).map_err(|e| format!("list: {e}"))?;
    let mut keys = 0;
    loop {
        match r {
            Reply::Key { .. } => keys += 1,
            Reply::EndList { count } if count as usize == keys => return Ok(keys),
            other => return Err(format!("list: {other:?} after {keys} keys")),
        }
        r = recv::<kv::Kv>(c).map_err(|e| format!("list: {e}"))?;
    }
}
