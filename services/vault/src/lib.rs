//! The vault (DESIGN.md 5.5): the persistent checkpoint store below the
//! companions. It owns the checkpoint disk's FAT file system, keeps every
//! service's two checkpoint slots and request log in one preallocated pool
//! file, `/KINTSUGI/POOL.DAT`, and serves the vault contract
//! (`resiliency-lib/contracts/vault.contract`): `Commit`, `Append`,
//! `Latest`, `List`, each for the identity of the client's program.
//!
//! - [`disk`]: what the vault needs from a disk ([`disk::SectorDisk`]) and
//!   an in-memory disk for tests;
//! - [`fatio`]: the sector cache and byte stream fatfs mounts;
//! - [`fat`]: the FAT structures, raw (fatfs does not expose them);
//! - [`repair`]: the check at start, repairing what a power cut left;
//! - [`pool`]: the pool file, made once without writing its clusters;
//! - [`store`]: the core: the pool table, slots, commits written in place,
//!   newest valid record wins, the request log with group commit;
//!   unit-tested on the host, power cuts included;
//! - `server` (guest only): the blk-backed disk (reconnecting when blk
//!   restarts) and the service loop.
//!
//! The record, table and log formats are `checkpoint-record`'s; the layout
//! and the protocols are described in `resiliency-lib/README.md`
//! ("Persistence: the vault").
#![cfg_attr(not(test), no_std)]

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
