//! The kv protocol, generated from `kv.contract` by companion-gen: message
//! types, the client stub [`protocol::KvClient`], the handler trait the
//! service implements, protocol checking, the resiliency annotations and
//! the companion. Clients (the shell, `kvload`) use the stub.
#![no_std]

extern crate alloc;

/// Generated from `kv.contract`.
#[allow(clippy::all, missing_docs)]
pub mod protocol {
    include!(concat!(env!("OUT_DIR"), "/kv.rs"));
}

pub use protocol::{Kv, KvClient, Reply, Request};

/// The name the kv companion registers.
pub const SERVICE: &str = "kv";

/// A value that makes the service crash on every attempt to store it: a
/// deliberate, deterministic bug, so the tests can check that such a
/// request is failed with the contract's error and everyone else carries on.
pub const POISON: &[u8] = b"kv:poison";

/// Connect a client stub to the kv service (waiting for it to register),
/// with a session that survives a restart of kv's companion (see
/// `libos::channel::resume`).
pub fn connect() -> Result<KvClient, libos::channel::ChannelError> {
    libos::channel::Channel::resumable(SERVICE).map(KvClient::new)
}
