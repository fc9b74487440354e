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

pub use libos::rand::Rng;

/// Parse the whitespace-separated argument `i` as a number, or `default`.
pub fn arg_u64(i: usize, default: u64) -> u64 {
    libos::start::args().split_whitespace().nth(i).and_then(|a| a.parse().ok()).unwrap_or(default)
}

/// Argument `i` as a string.
pub fn arg(i: usize) -> Option<&'static str> {
    libos::start::args().split_whitespace().nth(i)
}
