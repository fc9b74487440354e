//! The runtime of companions and resilient services (DESIGN.md section 5):
//! session table, message log with sequence numbers, checkpoints and their
//! two distillations (logical and image), failure detection, restart and
//! replay, and the checkpoint store.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

pub mod chaos;
pub mod companion;
pub mod contract;
pub mod distill;
pub mod log;
pub mod store;

pub use contract::{Distillation, Policy, Resilient};
