//! The vault under attack through its contract. It keys records by the
//! caller's identity, so the hostile client can only ever read, set aside
//! or write records of its own name, and it writes none: a `Commit` or an
//! `Append` carries memory handles, which the probe never attaches, so
//! every one of them must be refused as a message that does not decode.
//! The vault is not under a companion (init restarts it): it must neither
//! restart nor stop answering the companions, which the attack checks by
//! its process id and a well-behaved exchange.

use super::{Seed, Target};
use crate::probe::{call, connect, encode, Expect};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use libos::handle::Memory;
use resiliency_lib::vault::{Reply, Request, Vault as Contract};
use testprogs::Rng;

/// The vault.
pub struct Vault;

/// A memory object to name in a request (the probe sends the bytes
/// without it).
fn memory() -> Option<libos::handle::OwnedHandle> {
    Memory::from_bytes(&[0x5a; 64]).ok().map(|m| m.0)
}

/// `Commit` with `len` and `epoch_len` as given (None if no memory object
/// could be made).
fn commit(kind: u8, len: u64, epoch_len: u64) -> Option<Vec<u8>> {
    Some(encode(Request::Commit { kind, taken_ns: 1, state: memory()?, len, epoch: Vec::new(), epoch_len }))
}

impl Target for Vault {
    type P = Contract;
    const NAME: &'static str = "vault";
    const LAST_TAG: u8 = 5;
    const RESILIENT: bool = false;

    fn safe(r: &Request) -> bool {
        // Reads, and setting aside a record of the hostile client's own
        // name (it has none); never a write.
        matches!(r, Request::Latest | Request::List | Request::Reject { .. })
    }

    fn seeds() -> Vec<Seed> {
        let mut seeds = vec![
            Seed { name: "Latest", bytes: encode(Request::Latest), lengths: vec![], flags: vec![] },
            Seed { name: "List", bytes: encode(Request::List), lengths: vec![], flags: vec![] },
            Seed {
                name: "Reject",
                bytes: encode(Request::Reject { generation: 7, reason: String::from("hostile") }),
                lengths: vec![9],
                flags: vec![],
            },
        ];
        if let Some(bytes) = commit(1, 64, 0) {
            seeds.push(Seed { name: "Commit", bytes, lengths: vec![], flags: vec![1] });
        }
        seeds
    }

    fn crafted() -> Vec<(&'static str, Vec<u8>, Option<Expect>)> {
        let rejected = Some(Expect::Rejected);
        let any = Some(Expect::Any);
        let mut v = vec![
            ("Latest of a record it never wrote", encode(Request::Latest), any),
            ("List", encode(Request::List), any),
            ("Reject of generation 0", encode(Request::Reject { generation: 0, reason: String::new() }), any),
            (
                "Reject of generation u64::MAX with a long reason",
                encode(Request::Reject { generation: u64::MAX, reason: "r".repeat(256) }),
                any,
            ),
            (
                "Reject with a 257-byte reason",
                encode(Request::Reject { generation: 1, reason: "r".repeat(257) }),
                rejected,
            ),
        ];
        for (label, kind, len, epoch_len) in [
            ("Commit without its memory", 1, 64, 0),
            ("Commit of u64::MAX bytes without its memory", 1, u64::MAX, 0),
            ("Commit of an unknown kind without its memory", 9, 64, 0),
            ("Commit with an epoch length and no epoch", 1, 64, 4096),
        ] {
            if let Some(bytes) = commit(kind, len, epoch_len) {
                v.push((label, bytes, rejected));
            }
        }
        if let Some(data) = memory() {
            v.push(("Append without its memory", encode(Request::Append { generation: 1, data, len: 64 }), rejected));
        }
        v
    }

    fn random_valid(rng: &mut Rng) -> Vec<u8> {
        match rng.below(3) {
            0 => encode(Request::Latest),
            1 => encode(Request::List),
            _ => encode(Request::Reject { generation: super::edgy(rng, 1000), reason: super::text(rng, 256) }),
        }
    }

    fn cheap() -> Vec<u8> {
        encode(Request::Latest)
    }

    fn never_read() -> Result<(Vec<u8>, bool), String> {
        Ok((encode(Request::List), false))
    }

    fn healthy() -> Result<(), String> {
        let mut c = connect("vault")?;
        match call::<Contract>(&mut c, Request::Latest) {
            Ok(Reply::NotFound) | Ok(Reply::Record { .. }) => Ok(()),
            other => Err(format!("latest: {other:?}")),
        }
    }
}
