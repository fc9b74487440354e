//! Helpers shared by the test programs: starting a child through init with
//! a channel to it, and small statistics.
#![no_std]

extern crate alloc;

/// The `fanin` echo service's protocol, generated from its contract.
#[allow(clippy::all, missing_docs)]
pub mod fanin {
    include!(concat!(env!("OUT_DIR"), "/fanin.rs"));
}

use alloc::string::String;
use alloc::vec::Vec;
use libos::channel::{Channel, Endpoint, Message};
use libos::directory::{self, DirError, SpawnRequest};
use libos::handle::{OwnedHandle, Process};

/// Start `program` with `args`; the child finds its side of a new channel
/// as start handles named `peer.memory`, `peer.link`, `peer.event` (see
/// [`peer`]). Returns the process and our side of the channel.
pub fn spawn_with_channel<Tx: Message, Rx: Message>(
    program: &str,
    args: &str,
) -> Result<(Process, Channel<Tx, Rx>), DirError> {
    let (mine, theirs) = Endpoint::pair().map_err(|e| DirError::Refused(e, String::from("cannot create a channel")))?;
    let side = theirs.side;
    let handles: Vec<(String, OwnedHandle)> = Vec::from([
        (String::from("peer.memory"), theirs.memory),
        (String::from("peer.link"), theirs.link),
        (String::from("peer.event"), theirs.event),
    ]);
    let _ = side;
    let (_, process) = directory::spawn(SpawnRequest {
        program: String::from(program),
        name: String::new(),
        args: String::from(args),
        suspended: false,
        handles,
    })?;
    Ok((process, Channel::new(mine)))
}

/// The channel a parent made with [`spawn_with_channel`], from this
/// child's side (side B).
pub fn peer<Tx: Message, Rx: Message>() -> Option<Channel<Tx, Rx>> {
    let m = libos::start::take_named("peer.memory")?;
    let l = libos::start::take_named("peer.link")?;
    let e = libos::start::take_named("peer.event")?;
    Channel::attach(libos::channel::EndpointHandles::from_raw(m, l, e, 1)).ok()
}

/// The median of some samples (sorted in place); 0 for none.
pub fn median(samples: &mut [u64]) -> u64 {
    if samples.is_empty() {
        return 0;
    }
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// A small deterministic pseudo-random generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    /// Seeded generator (a zero seed is replaced).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 { 0x9e37_79b9_7f4a_7c15 } else { seed })
    }

    /// The next value.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value below `n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Parse the whitespace-separated argument `i` as a number, or `default`.
pub fn arg_u64(i: usize, default: u64) -> u64 {
    libos::start::args().split_whitespace().nth(i).and_then(|a| a.parse().ok()).unwrap_or(default)
}

/// Argument `i` as a string.
pub fn arg(i: usize) -> Option<&'static str> {
    libos::start::args().split_whitespace().nth(i)
}
