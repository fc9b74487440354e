//! The runtime of companions and resilient services (DESIGN.md section 5).
//!
//! - [`contract`]: what a contract's resiliency annotations say
//!   ([`Resilient`], [`Policy`]), implemented by generated code;
//! - [`companion`]: the companion engine: sessions, the message [`log`],
//!   checkpoints into a [`store`], failure detection, restart and replay,
//!   crash injection ([`chaos`]), control and recovery notices;
//! - [`service`]: the runtime inside a resilient service, with logical
//!   distillation ([`distill`]) or image distillation (the libos arena),
//!   and the recorded path for inputs from the outside world; [`held`]:
//!   requests answered later, and events (timer ticks); [`shared`]: the
//!   buffers client sessions share with the service for bulk data; `lanes`:
//!   clients' idempotent requests straight to the service;
//! - [`vault_store`]: the persistent checkpoint store, in the vault
//!   service on the FAT checkpoint disk (a companion uses it when started
//!   with the argument `store=vault`);
//! - [`link`], [`control`], [`notices`], [`vault`]: the runtime's own
//!   protocols, generated from its contracts.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod chaos;
pub mod companion;
pub mod contract;
pub mod distill;
pub mod held;
mod lanes;
pub mod log;
mod protocols;
pub mod service;
pub mod shared;
pub mod store;
pub mod vault_store;

pub use contract::{Distillation, Policy, Resilient};
pub use protocols::{control, link, notices, vault};
