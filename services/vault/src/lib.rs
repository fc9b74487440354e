//! The vault (DESIGN.md 5.5): the persistent checkpoint store below the
//! companions. It owns the checkpoint disk's FAT file system, keeps two
//! slot files per service in `/KINTSUGI`, and serves the vault contract
//! (`resiliency-lib/contracts/vault.contract`): `Commit`, `Latest`, `List`.
//!
//! - [`disk`]: what the vault needs from a disk ([`disk::SectorDisk`]) and
//!   an in-memory disk for tests;
//! - [`fatio`]: the sector cache and byte stream fatfs mounts;
//! - [`store`]: the core: slots, commits written in place, newest valid
//!   record wins; unit-tested on the host, power cuts included;
//! - `server` (guest only): the blk-backed disk and the service loop.
//!
//! The record format is `checkpoint-record`'s; the layout and the slot
//! protocol are described in `resiliency-lib/README.md` ("Vault record
//! format").
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

pub mod disk;
pub mod fat;
pub mod fatio;
pub mod pool;
pub mod repair;
pub mod store;
#[cfg(test)]
mod testutil;

#[cfg(target_os = "none")]
pub mod server;

pub use disk::{DiskError, MemDisk, SectorDisk, SECTOR};
pub use store::{Appended, Committed, Latest, Listed, SlotState, Vault, VaultError};

/// The name the vault registers in the directory.
pub const SERVICE: &str = "vault";
