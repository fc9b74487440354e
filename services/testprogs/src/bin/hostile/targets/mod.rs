//! What the hostile client knows of each service it attacks: its contract
//! (the generated protocol), valid requests to mangle and where their
//! length fields are, well-formed requests that must fail, what it may
//! send without touching other clients' data, a well-behaved exchange,
//! and the request for the client that never reads.

pub mod blk;
pub mod fs;
pub mod httpd;
pub mod kv;
pub mod net;
pub mod nic;
pub mod tally;
pub mod vault;

use crate::probe::Expect;
use alloc::string::String;
use alloc::vec::Vec;
use libos::protocol::Protocol;
use testprogs::Rng;

/// A valid request to mangle.
pub struct Seed {
    /// Its name in the report.
    pub name: &'static str,
    /// Encoded.
    pub bytes: Vec<u8>,
    /// Offsets of its u32 length and count fields.
    pub lengths: Vec<usize>,
    /// Offsets of its bool (or small enum) bytes.
    pub flags: Vec<usize>,
}

/// A service under attack.
pub trait Target {
    /// Its contract.
    type P: Protocol;
    /// The service's name.
    const NAME: &'static str;
    /// The highest request tag.
    const LAST_TAG: u8;
    /// Whether it runs under a companion (whose `NAME.control` and
    /// `NAME.notices` are attacked too, and whose figures must not move);
    /// the vault does not (its process must not change).
    const RESILIENT: bool = true;
    /// Whether a request (that decodes) leaves other clients' data alone.
    fn safe(request: &<Self::P as Protocol>::Request) -> bool;
    /// Valid requests to mangle.
    fn seeds() -> Vec<Seed>;
    /// Requests encoded as they are (some past the contract's limits) with
    /// what each must get.
    fn crafted() -> Vec<(&'static str, Vec<u8>, Option<Expect>)>;
    /// A cheap request that changes nothing (for the floods).
    fn cheap() -> Vec<u8>;
    /// Prepare and return the request a client sends and never reads the
    /// answers of, and whether those answers overflow the session's ring
    /// (then the service must drop the session).
    fn never_read() -> Result<(Vec<u8>, bool), String>;
    /// A well-behaved exchange on a fresh connection.
    fn healthy() -> Result<(), String>;
    /// A valid request with random and edge values in its fields (sent if
    /// `safe`; any answer will do).
    fn random_valid(rng: &mut Rng) -> Vec<u8>;
    /// Sequences of requests on one session (`rounds` random ones after
    /// the fixed ones), judged inside; the failures.
    fn scripts(_rng: &mut Rng, _rounds: u64) -> Vec<String> {
        Vec::new()
    }
}

/// A number that is often at an edge: 0, 1, a power of two and its
/// neighbours, the type's largest, or anything below `max`.
pub fn edgy(rng: &mut Rng, max: u64) -> u64 {
    match rng.below(6) {
        0 => 0,
        1 => 1,
        2 => {
            let p = 1u64 << rng.below(64);
            p.wrapping_add(rng.below(3)).wrapping_sub(1)
        }
        3 => u64::MAX - rng.below(3),
        _ => rng.below(max.max(1)),
    }
}

/// A random string: ASCII, path-like pieces, dots, spaces and some
/// characters beyond ASCII, up to `max` bytes.
pub fn text(rng: &mut Rng, max: usize) -> String {
    const PIECES: [&str; 12] = ["a", "Z", "/", ".", "..", " ", "~", "é", "\u{10ffff}", "*", "\u{1}", "0"];
    let mut s = String::new();
    let len = rng.below(max as u64 + 1) as usize;
    while s.len() < len {
        let p = PIECES[rng.below(PIECES.len() as u64) as usize];
        if s.len() + p.len() > max {
            break;
        }
        s.push_str(p);
    }
    s
}

/// One of a fixed set of odd names (so that random runs, the soak's
/// included, create a bounded number of keys and files).
pub fn odd_name(rng: &mut Rng) -> String {
    const NAMES: [&str; 10] =
        ["a", "b c", "\u{e9}t\u{e9}", "..a", "x.y.z", "a~1", "\u{540d}\u{524d}", " lead", "trail ", "MiXeD"];
    let mut n = String::from(NAMES[rng.below(NAMES.len() as u64) as usize]);
    if rng.chance(100) {
        while n.len() < 250 {
            n.push('n');
        }
    }
    alloc::format!("{}{n}", rng.below(4))
}
