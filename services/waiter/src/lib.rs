//! The waiter protocol, generated from `waiter.contract` by companion-gen:
//! a test service for held requests and events (timer ticks).
#![no_std]

extern crate alloc;

/// Generated from `waiter.contract`.
#[allow(clippy::all, missing_docs)]
pub mod protocol {
    include!(concat!(env!("OUT_DIR"), "/waiter.rs"));
}

pub use protocol::{Reply, Request, Waiter};

/// The name the waiter companion registers.
pub const SERVICE: &str = "waiter";

/// A session with the waiter service (waiting for it), that may leave a
/// request unanswered while others are served.
pub fn connect() -> Result<libos::channel::Channel<Request, Reply>, libos::channel::ChannelError> {
    libos::channel::Channel::resumable(SERVICE)
}
