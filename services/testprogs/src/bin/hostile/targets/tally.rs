//! tally under attack. Its counters all start with `hostile-`, and it
//! publishes only under kv keys that start with `hostile/`.

use super::{edgy, text, Seed, Target};
use crate::probe::{call, connect, encode, Expect};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use tally::{Reply, Request};
use testprogs::Rng;

/// tally.
pub struct Tally;

impl Target for Tally {
    type P = tally::Tally;
    const NAME: &'static str = "tally";
    const LAST_TAG: u8 = 4;

    fn safe(r: &Request) -> bool {
        match r {
            Request::Add { name, .. } => name.starts_with("hostile"),
            Request::Publish { key } => key.starts_with("hostile/"),
            _ => true,
        }
    }

    fn seeds() -> Vec<Seed> {
        vec![
            Seed {
                name: "Add",
                bytes: encode(Request::Add { name: String::from("hostile-seed"), delta: 1 }),
                lengths: vec![1],
                flags: vec![],
            },
            Seed {
                name: "Get",
                bytes: encode(Request::Get { name: String::from("hostile-seed") }),
                lengths: vec![1],
                flags: vec![],
            },
            Seed { name: "List", bytes: encode(Request::List {}), lengths: vec![], flags: vec![] },
            Seed {
                name: "Publish",
                bytes: encode(Request::Publish { key: String::from("hostile/tally") }),
                lengths: vec![1],
                flags: vec![],
            },
        ]
    }

    fn crafted() -> Vec<(&'static str, Vec<u8>, Option<Expect>)> {
        let add = |name: &str, delta: i64| encode(Request::Add { name: String::from(name), delta });
        vec![
            ("Add to a 33-byte name", add(&"hostile-".repeat(5)[..33], 1), Some(Expect::Rejected)),
            ("Publish under a 300-byte key", encode(Request::Publish { key: "k".repeat(300) }), Some(Expect::Rejected)),
            ("Add to an empty name", add("", 1), Some(Expect::Error)),
            ("Add to a 32-byte name", add(&"hostile-".repeat(4), 1), Some(Expect::Any)),
            ("Add i64::MAX", add("hostile-max", i64::MAX), Some(Expect::Any)),
            ("Add i64::MAX again (overflows)", add("hostile-max", i64::MAX), Some(Expect::Any)),
            ("Add i64::MIN", add("hostile-max", i64::MIN), Some(Expect::Any)),
            ("Add to a name with NUL and U+10FFFF", add("hostile-\0\u{10ffff}", 1), Some(Expect::Any)),
            ("Get an empty name", encode(Request::Get { name: String::new() }), Some(Expect::Any)),
            ("Get an absent counter", encode(Request::Get { name: String::from("hostile-absent") }), Some(Expect::Any)),
            (
                "Publish at kv's key limit",
                encode(Request::Publish { key: format!("hostile/{}", "p".repeat(248)) }),
                Some(Expect::Any),
            ),
        ]
    }

    fn random_valid(rng: &mut Rng) -> Vec<u8> {
        // Few names (tally's table is small and keeps every counter).
        let name = format!("hostile-r{}", rng.below(4));
        encode(match rng.below(4) {
            0 => Request::Add { name, delta: edgy(rng, 1000) as i64 },
            1 => Request::Get { name: text(rng, 32) },
            2 => Request::List {},
            _ => Request::Publish { key: format!("hostile/{}", text(rng, 200)) },
        })
    }

    fn cheap() -> Vec<u8> {
        encode(Request::Get { name: String::from("hostile-cheap") })
    }

    fn never_read() -> Result<(Vec<u8>, bool), String> {
        Ok((encode(Request::List {}), false))
    }

    fn healthy() -> Result<(), String> {
        let mut c = connect(tally::SERVICE)?;
        let before = match call::<tally::Tally>(&mut c, Request::Get { name: String::from("hostile-healthy") }) {
            Ok(Reply::Total { value, .. }) => value,
            other => return Err(format!("get: {other:?}")),
        };
        match call::<tally::Tally>(&mut c, Request::Add { name: String::from("hostile-healthy"), delta: 3 }) {
            Ok(Reply::Total { value, .. }) if value == before.wrapping_add(3) => Ok(()),
            other => Err(format!("add 3 to {before}: {other:?}")),
        }
    }
}
