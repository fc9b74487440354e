//! The Kintsugi library OS: what every user program links.
//!
//! It turns the exokernel's raw resources into what a program needs: the
//! entry point and panic handling ([`start`], `panic`), system-call
//! wrappers ([`sys`]) and owning handles ([`handle`]), the heap and the
//! state arena at a fixed address ([`arena`]), address-space layout
//! ([`vm`]), logging and printing ([`logger`]), time ([`time`]), channels
//! and `select` ([`channel`]) with their byte encoding ([`wire`]), the
//! `memcpy` every copy ends in ([`memcpy`]), protocol
//! state machines for contracts ([`protocol`]), and
//! naming and supervision through init ([`directory`]).
//!
//! The logic that does not need the kernel (rings, encoding, address-range
//! allocation) builds and is unit-tested on the host; the rest only for
//! `target_os = "none"`.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

pub mod arena;
pub mod channel;
pub mod console;
pub mod directory;
pub mod handle;
pub mod logger;
pub mod memcpy;
pub mod protocol;
pub mod rand;
pub mod start;
pub mod sys;
pub mod time;
pub mod vm;
pub mod wire;

#[cfg(target_os = "none")]
mod heap;
#[cfg(target_os = "none")]
mod panic;

pub use kintsugi_abi as abi;

#[cfg(target_os = "none")]
pub use heap::used_bytes as heap_used_bytes;
