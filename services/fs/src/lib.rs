//! The file service (DESIGN.md 5.6): the FAT32 file system of the data
//! disk, served to clients through the `fs` contract (`fs.contract`).
//!
//! The crate is the service's core, written as a plain library that does
//! not depend on the resiliency runtime's service trait, so it runs and is
//! tested on the host:
//!
//! - [`blocks`]: the block layer under fatfs: sectors are read from a
//!   [`blocks::SectorSource`] (in the guest, synchronous calls to `blk`)
//!   and every write is *held* in an overlay (the epoch), never written to
//!   the disk by the file service itself;
//! - [`pool`]: the block layer's sector buffers, reused without the heap;
//! - [`path`]: absolute `/`-separated paths, normalised and checked;
//! - [`table`]: the open-file table per client session and its encoding
//!   (the small logical state a checkpoint keeps);
//! - [`time`]: FAT dates and times from and to seconds since 1970;
//! - [`clustermap`]: where a file's clusters are on the disk, so reads
//!   skip fatfs's walk of the cluster chain and move large runs;
//! - [`engine`]: [`Fs`], which mounts the volume with fatfs and answers the
//!   contract's requests (`handle(session, request) -> replies`);
//! - [`shared`]: the sessions' shared buffers, where `ReadShared` puts
//!   what it reads;
//! - [`memdisk`]: a disk in memory, and applying an epoch to one (host
//!   tests and tools);
//! - [`protocol`]: the code companion-gen generates from `fs.contract`.
//!
//! fatfs is the `fatfs` crate the project names (package `starry-fatfs`,
//! carried in `vendor/starry-fatfs` with small patches that make folder
//! scans cheap and let a handle find its entry without one; its
//! PATCHES.md); what this crate adds by hand is what fatfs does not do: the held-write
//! overlay, per-session handles, all-or-nothing writes, fixing `..` when a
//! directory moves, and error messages for clients.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod blocks;
pub mod clustermap;
pub mod engine;
pub mod memdisk;
pub mod path;
pub mod pool;
pub mod shared;
pub mod table;
pub mod time;
pub mod volume_flags;

#[cfg(test)]
mod tests;

/// Generated from `fs.contract`.
#[allow(clippy::all, missing_docs)]
pub mod protocol {
    include!(concat!(env!("OUT_DIR"), "/fs.rs"));
}

pub use blocks::{DiskError, SectorSource, SECTOR};
pub use engine::{Fs, FsError};
pub use protocol::{FsClient, Reply, Request};

/// The name the fs companion registers.
pub const SERVICE: &str = "fs";

/// `Read`/`Write` at the handle's position.
pub const CURRENT: u64 = u64::MAX;

/// Most bytes one `Read` or `Write` moves.
pub const MAX_TRANSFER: usize = 65536;

/// Largest file FAT can hold (4 GiB - 1).
pub const MAX_FILE_SIZE: u64 = u32::MAX as u64;

/// `Open` flags (see `fs.contract`).
pub mod flags {
    /// Open for reading.
    pub const READ: u32 = 1;
    /// Open for writing.
    pub const WRITE: u32 = 2;
    /// Create the file if it does not exist.
    pub const CREATE: u32 = 4;
    /// Cut the file to 0 bytes.
    pub const TRUNCATE: u32 = 8;
    /// Every write goes at the end.
    pub const APPEND: u32 = 16;
    /// With `CREATE`: fail if the file exists.
    pub const EXCLUSIVE: u32 = 32;
    /// Every flag.
    pub const ALL: u32 = READ | WRITE | CREATE | TRUNCATE | APPEND | EXCLUSIVE;
}

/// `Stat`/`Entry` kinds.
pub mod kind {
    /// A file.
    pub const FILE: u8 = 1;
    /// A directory.
    pub const DIR: u8 = 2;
}

/// `Failed` codes (see `fs.contract`).
pub mod code {
    /// A malformed request.
    pub const BAD_REQUEST: u32 = 400;
    /// The handle was not opened for this.
    pub const NOT_PERMITTED: u32 = 403;
    /// No such file or directory.
    pub const NOT_FOUND: u32 = 404;
    /// Already exists.
    pub const EXISTS: u32 = 409;
    /// Not an open handle of this session.
    pub const BAD_HANDLE: u32 = 410;
    /// A shared read in a session without a shared buffer.
    pub const NO_SHARED_BUFFER: u32 = 412;
    /// Too large.
    pub const TOO_LARGE: u32 = 413;
    /// Name too long or invalid.
    pub const BAD_NAME: u32 = 414;
    /// Is a directory.
    pub const IS_DIR: u32 = 420;
    /// Not a directory.
    pub const NOT_DIR: u32 = 421;
    /// Directory not empty.
    pub const NOT_EMPTY: u32 = 422;
    /// Open elsewhere, or a directory moved into itself.
    pub const BUSY: u32 = 423;
    /// The disk failed.
    pub const IO: u32 = 500;
    /// The file system is damaged.
    pub const CORRUPT: u32 = 502;
    /// The request crashed the service on every attempt.
    pub const UNRECOVERABLE: u32 = 503;
    /// No space left.
    pub const NO_SPACE: u32 = 507;
}

/// Connect a client stub to the fs service (waiting for it to register),
/// with a session that survives a restart of fs's companion and carries a
/// shared buffer of [`MAX_TRANSFER`] bytes, for `ReadShared` ([`read_into`]).
#[cfg(target_os = "none")]
pub fn connect() -> Result<FsClient, libos::directory::DirError> {
    let ep = libos::directory::connect(SERVICE, true)?;
    Ok(FsClient::new(libos::channel::Channel::resumable_shared(ep, SERVICE, MAX_TRANSFER)?))
}

/// Read up to `buf.len()` bytes (at most [`MAX_TRANSFER`]) of `handle` at
/// `offset` into `buf`: through the session's shared buffer if it has one
/// (`ReadShared`, the bytes copied once, from there), else in a `Read`'s
/// reply (which also moves the handle's position). The bytes read (fewer
/// at the end of the file), or the reply that is not data (`Failed`).
#[cfg(target_os = "none")]
pub fn read_into(
    client: &mut FsClient,
    handle: u64,
    offset: u64,
    buf: &mut [u8],
) -> Result<Result<usize, Reply>, libos::protocol::ClientError> {
    let length = buf.len().min(MAX_TRANSFER) as u32;
    if offset != CURRENT && client.channel().shared().is_some_and(|m| m.len() >= length as usize) {
        match client.read_shared(handle, offset, length, 0)? {
            Reply::Filled { length: n, .. } if n <= length => {
                let copied = client.channel().shared().map(|m| m.copy_out(0, &mut buf[..n as usize]));
                return Ok(match copied {
                    Some(Ok(())) => Ok(n as usize),
                    _ => Err(Reply::Failed {
                        code: code::IO,
                        message: alloc::string::String::from("the shared buffer cannot be read"),
                    }),
                });
            }
            Reply::Failed { code: code::NO_SHARED_BUFFER, .. } => {}
            other => return Ok(Err(other)),
        }
    }
    Ok(match client.read(handle, offset, length)? {
        Reply::Data { data, .. } if data.len() <= buf.len() => {
            buf[..data.len()].copy_from_slice(&data);
            Ok(data.len())
        }
        other => Err(other),
    })
}

/// A session with fs's companion (`fs.control`: figures, crashes), for
/// the test and benchmark programs the manifest grants it.
#[cfg(target_os = "none")]
pub fn control() -> Result<resiliency_lib::control::ControlClient, alloc::string::String> {
    libos::directory::connect("fs.control", false)
        .map(|ep| resiliency_lib::control::ControlClient::new(libos::channel::Channel::new(ep)))
        .map_err(|e| alloc::format!("fs.control: {e}"))
}
