//! companion-gen: the host tool and library that turns a service contract
//! (`*.contract`: messages, protocol state machine, resiliency annotations)
//! into Rust: message types, a client stub, the service's dispatch trait,
//! protocol checking, and the companion (DESIGN.md section 4).
//!
//! Skeleton: the contract language and generator are built by the
//! contracts-and-resiliency issue; until then Kintsugi's one protocol (the
//! directory) is written by hand in `libos::directory`.
