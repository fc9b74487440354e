//! The tally protocol, generated from `tally.contract` by companion-gen.
#![no_std]

extern crate alloc;

/// Generated from `tally.contract`.
#[allow(clippy::all, missing_docs)]
pub mod protocol {
    include!(concat!(env!("OUT_DIR"), "/tally.rs"));
}

pub use protocol::{Reply, Request, Tally, TallyClient};

/// The name the tally companion registers.
pub const SERVICE: &str = "tally";

/// Connect a client stub to the tally service (waiting for it).
pub fn connect() -> Result<TallyClient, libos::channel::ChannelError> {
    libos::channel::Channel::resumable(SERVICE).map(TallyClient::new)
}
