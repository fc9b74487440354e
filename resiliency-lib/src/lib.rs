//! The runtime of companions and resilient services (DESIGN.md section 5):
//! session table, message log with sequence numbers, checkpoints and their
//! two distillations (logical and image), failure detection, restart and
//! replay, and the checkpoint store.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

pub mod companion;
pub mod contract;

pub use contract::{Distillation, Policy, Resilient};
