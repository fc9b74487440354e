//! The code companion-gen generates from the contracts in `contracts/`,
//! compiled as a `no_std` library (it also builds for
//! `x86_64-unknown-none`). The tests in `tests/` check it: every message
//! survives encoding and decoding, malformed bytes are rejected without a
//! panic, the protocols accept and refuse what their contracts say, and
//! dispatch reaches the right handler method.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

/// `contracts/kv.contract` (the same as `../tests/golden/kv.contract`).
pub mod kv {
    include!(concat!(env!("OUT_DIR"), "/kv.rs"));
}

/// `contracts/files.contract` (the same as `../tests/golden/files.contract`):
/// handles and endpoints in messages, alone and in lists.
pub mod files {
    include!(concat!(env!("OUT_DIR"), "/files.rs"));
}

/// `contracts/lists.contract` (the same as `../tests/golden/lists.contract`):
/// `list<T>[N]` fields of every handle-free element type.
pub mod lists {
    include!(concat!(env!("OUT_DIR"), "/lists.rs"));
}

/// `contracts/edge_cases.contract`: names, types and shapes at the edges.
pub mod edge_cases {
    include!(concat!(env!("OUT_DIR"), "/edge_cases.rs"));
}

/// `contracts/log_sink.contract`: a contract without replies.
pub mod log_sink {
    include!(concat!(env!("OUT_DIR"), "/log_sink.rs"));
}
