//! The runtime of companions and resilient services (DESIGN.md section 5):
//! session table, message log with sequence numbers, checkpoints and their
//! two distillations (logical and image), epochs of held side effects,
//! failure detection, restart and replay, and the client of the checkpoint
//! store.
//!
//! Skeleton: the runtime is built by the contracts-and-resiliency issue on
//! top of `libos` channels and the kernel's process, memory and dirty-bit
//! exports, which the foundation provides.
#![no_std]
