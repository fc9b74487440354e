//! The malformed messages made from a contract's valid requests, the same
//! for every service: truncations at many lengths, trailing bytes, unknown
//! message tags, length and count fields that lie (set past the message,
//! huge, one more, one less), out-of-range bools, random bytes, and valid
//! requests mutated at random (bits flipped, bytes changed, inserted or
//! removed, words set to edge values). A
//! message that still decodes as a valid request is sent only if the
//! service's `safe` filter allows it, and then any answer will do.

use crate::probe::{decode, Expect};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use libos::protocol::Protocol;
use testprogs::Rng;

/// One message to send on a fresh session.
pub struct Case {
    /// What it is, for the report.
    pub label: String,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Attach a handle to it.
    pub with_handle: bool,
    /// What the service must do.
    pub expect: Expect,
}

/// Whether a request that decodes is harmless to send (does not touch
/// other clients' data).
pub type Safe<P> = fn(&<P as Protocol>::Request) -> bool;

/// Builds the cases of one service.
pub struct Builder<P: Protocol> {
    safe: Safe<P>,
    /// The cases so far.
    pub cases: Vec<Case>,
    /// Messages that decoded as requests the filter refused (not sent).
    pub skipped: u64,
}

impl<P: Protocol> Builder<P> {
    /// No cases yet.
    pub fn new(safe: Safe<P>) -> Self {
        Builder { safe, cases: Vec::new(), skipped: 0 }
    }

    /// Add `bytes`: rejected unless they decode as a request (then any
    /// answer, if the filter lets it be sent).
    pub fn push(&mut self, label: String, bytes: Vec<u8>) {
        let expect = match decode::<P::Request>(&bytes) {
            Some(r) if (self.safe)(&r) => Expect::Any,
            Some(_) => {
                self.skipped += 1;
                return;
            }
            None => Expect::Rejected,
        };
        self.cases.push(Case { label, bytes, with_handle: false, expect });
    }

    /// Add a well-formed request with what it must get.
    pub fn push_request(&mut self, label: &str, bytes: Vec<u8>, expect: Expect) {
        self.cases.push(Case { label: String::from(label), bytes, with_handle: false, expect });
    }

    /// Truncations, trailing bytes and a handle attached, from a valid
    /// request `seed` (named `name`).
    pub fn mangle(&mut self, name: &str, seed: &[u8]) {
        let len = seed.len();
        let mut cuts: Vec<usize> = if len <= 24 { (0..len).collect() } else { Vec::from([0, 1, 2, 3, 4, 5, 9]) };
        cuts.extend([len / 2, len.saturating_sub(2), len.saturating_sub(1)]);
        cuts.sort_unstable();
        cuts.dedup();
        for cut in cuts.into_iter().filter(|&c| c < len) {
            self.push(format!("{name} truncated to {cut} of {len} bytes"), Vec::from(&seed[..cut]));
        }
        let mut one = Vec::from(seed);
        one.push(0);
        self.push(format!("{name} with a trailing byte"), one);
        let mut many = Vec::from(seed);
        many.extend_from_slice(&[0xff; 100]);
        self.push(format!("{name} with 100 trailing bytes"), many);
        self.cases.push(Case {
            label: format!("{name} carrying a handle"),
            bytes: Vec::from(seed),
            with_handle: true,
            expect: Expect::Rejected,
        });
    }

    /// The u32 at `at` in `seed` replaced by lies: huge, past the end, one
    /// more, one less, zero.
    pub fn lie_u32(&mut self, name: &str, seed: &[u8], at: usize) {
        let Some(field) = seed.get(at..at + 4) else { return };
        let was = u32::from_le_bytes([field[0], field[1], field[2], field[3]]);
        let left = (seed.len() - at - 4) as u32;
        for (how, v) in [
            ("0xffffffff", u32::MAX),
            ("0x80000000", 0x8000_0000),
            ("past the end", left + 1),
            ("one more", was.wrapping_add(1)),
            ("one less", was.wrapping_sub(1)),
            ("zero", 0),
        ] {
            if v == was {
                continue;
            }
            let mut b = Vec::from(seed);
            b[at..at + 4].copy_from_slice(&v.to_le_bytes());
            self.push(format!("{name}: length at byte {at} says {how} ({v})"), b);
        }
    }

    /// The byte at `at` (a bool or a small enum) set to 2 and 0xff.
    pub fn lie_u8(&mut self, name: &str, seed: &[u8], at: usize) {
        if at >= seed.len() {
            return;
        }
        for v in [2u8, 0xff] {
            let mut b = Vec::from(seed);
            b[at] = v;
            self.push(format!("{name}: byte {at} set to {v}"), b);
        }
    }

    /// Tags no request has (0, one past the last, 0xff), alone and with
    /// some bytes after them.
    pub fn unknown_tags(&mut self, last_tag: u8) {
        for tag in [0, last_tag + 1, 0x7f, 0xff] {
            self.push(format!("unknown tag {tag}"), Vec::from([tag]));
            let mut b = Vec::from([tag]);
            b.extend_from_slice(&[1, 0, 0, 0, b'x', 0, 0, 0, 0]);
            self.push(format!("unknown tag {tag} with bytes"), b);
        }
    }

    /// A string field of `len` bytes that is not UTF-8, after `tag`.
    pub fn bad_utf8(&mut self, tag: u8, len: usize) {
        let mut b = Vec::from([tag]);
        b.extend_from_slice(&(len as u32).to_le_bytes());
        b.extend((0..len).map(|i| if i % 3 == 0 { 0xc3 } else { 0xff }));
        self.push(format!("tag {tag}: a string of {len} bytes that is not UTF-8"), b);
    }

    /// `n` random messages: a tag near the real ones, then up to `max`
    /// random bytes, some with a plausible length field first; and one of
    /// the largest size the channel carries.
    pub fn random(&mut self, rng: &mut Rng, n: u64, last_tag: u8, max: usize, channel_max: usize) {
        for i in 0..n {
            let len = rng.below(max as u64 + 1) as usize;
            let mut b: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if !b.is_empty() && rng.chance(800) {
                b[0] = rng.below(last_tag as u64 + 2) as u8;
            }
            if b.len() >= 5 && rng.chance(500) {
                let claim = rng.below(b.len() as u64 + 8) as u32;
                b[1..5].copy_from_slice(&claim.to_le_bytes());
            }
            self.push(format!("random message {i} ({len} bytes)"), b);
        }
        let mut big: Vec<u8> = (0..channel_max).map(|_| rng.next() as u8).collect();
        big[0] = 1;
        self.push(format!("random message of {channel_max} bytes (the channel's largest)"), big);
    }

    /// `n` mutations of the valid requests `seeds`: 1 to 3 changes each.
    /// Many still decode (a request with odd values: sent if safe, and any
    /// answer will do); the rest must be rejected.
    pub fn mutate(&mut self, rng: &mut Rng, seeds: &[Vec<u8>], n: u64) {
        if seeds.is_empty() {
            return;
        }
        for i in 0..n {
            let mut b = seeds[rng.below(seeds.len() as u64) as usize].clone();
            let changes = 1 + rng.below(3);
            for _ in 0..changes {
                mutate_once(rng, &mut b);
            }
            self.push(format!("mutation {i} ({} bytes)", b.len()), b);
        }
    }
}

/// Edge values for a mutated word.
const EDGES: [u64; 8] = [0, 1, 0x7f, 0xff, 0x8000_0000, 0xffff_ffff, 0x7fff_ffff_ffff_ffff, u64::MAX];

/// One random change to `b`.
fn mutate_once(rng: &mut Rng, b: &mut Vec<u8>) {
    let at = |rng: &mut Rng, len: usize| rng.below(len.max(1) as u64) as usize;
    match rng.below(6) {
        0 if !b.is_empty() => {
            let i = at(rng, b.len());
            b[i] ^= 1 << rng.below(8);
        }
        1 if !b.is_empty() => {
            let i = at(rng, b.len());
            b[i] = rng.next() as u8;
        }
        2 => {
            let i = at(rng, b.len() + 1).min(b.len());
            b.insert(i, rng.next() as u8);
        }
        3 if !b.is_empty() => {
            let i = at(rng, b.len());
            b.remove(i);
        }
        4 if b.len() >= 9 => {
            let i = 1 + at(rng, b.len() - 8);
            let v = EDGES[rng.below(EDGES.len() as u64) as usize];
            b[i..i + 8].copy_from_slice(&v.to_le_bytes());
        }
        _ if b.len() >= 5 => {
            let i = 1 + at(rng, b.len() - 4);
            let v = EDGES[rng.below(EDGES.len() as u64) as usize] as u32;
            b[i..i + 4].copy_from_slice(&v.to_le_bytes());
        }
        _ => b.push(rng.next() as u8),
    }
}
