//! Nothing but a home for `tests/crash.rs`: net's crash recovery, tested on
//! the host with the whole stack in one fixed memory region that is copied
//! out as a checkpoint and written back over the live stack as a crash.
//! That test replaces the global allocator and overwrites live memory, so
//! it lives in this crate, outside net, whose code may not use `unsafe`
//! (the workspace forbids it there).
#![deny(unsafe_op_in_unsafe_fn)]
