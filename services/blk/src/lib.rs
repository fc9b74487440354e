//! The blk protocol, generated from `blk.contract` by companion-gen: message
//! types, the client stub [`protocol::BlkClient`], the handler trait the
//! service implements, protocol checking, the resiliency annotations and
//! the companion; plus the contract's constants and a convenience layer
//! ([`Disk`]) for clients that move sectors.
#![no_std]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec;

/// Generated from `blk.contract`.
#[allow(clippy::all, missing_docs)]
pub mod protocol {
    include!(concat!(env!("OUT_DIR"), "/blk.rs"));
}

pub use protocol::{Blk, BlkClient, Reply, Request};

/// The name the blk companion registers.
pub const SERVICE: &str = "blk";
/// Bytes per sector.
pub const SECTOR: usize = 512;
/// Most sectors one request moves.
pub const MAX_SECTORS: u32 = 128;
/// Most extents in one request.
pub const MAX_EXTENTS: usize = 32;
/// The data disk.
pub const DATA_DISK: u8 = 0;
/// The checkpoint disk (the vault's).
pub const CHECKPOINT_DISK: u8 = 1;

/// `Failed` codes (see `blk.contract`).
pub mod code {
    /// A malformed request.
    pub const BAD_REQUEST: u32 = 400;
    /// Not this client's to do: a write or flush of the checkpoint disk by
    /// anyone but the vault.
    pub const FORBIDDEN: u32 = 403;
    /// No such disk.
    pub const NO_DISK: u32 = 404;
    /// A shared request in a session without a shared buffer.
    pub const NO_SHARED_BUFFER: u32 = 412;
    /// An extent past the end of the disk.
    pub const OUT_OF_RANGE: u32 = 416;
    /// The device reported an error.
    pub const DEVICE: u32 = 500;
    /// The request crashed the service on every attempt.
    pub const UNRECOVERABLE: u32 = 503;
    /// The device did not answer in time.
    pub const TIMEOUT: u32 = 504;
}

/// The disk number of a disk's role name (`data`, `checkpoint`).
pub fn disk_by_name(name: &str) -> Option<u8> {
    match name {
        "data" => Some(DATA_DISK),
        "checkpoint" => Some(CHECKPOINT_DISK),
        _ => None,
    }
}

/// Bytes of the shared buffer a session opened by [`connect`] or
/// [`session_over`] carries: one request's sectors.
pub const SHARED_BYTES: usize = MAX_SECTORS as usize * SECTOR;

/// Connect a client stub to the blk service (waiting for it to register),
/// with a session that survives a restart of blk's companion (every blk
/// request is idempotent, so one sent again is harmless) and carries a
/// shared buffer of [`SHARED_BYTES`] (for `ReadShared` and `WriteShared`,
/// which [`Disk`] uses).
pub fn connect() -> Result<BlkClient, libos::directory::DirError> {
    let ep = libos::directory::connect(SERVICE, true)?;
    Ok(session_over(ep)?)
}

/// [`connect`] over `ep`, a new connection to the blk service. Requests
/// that carry no sectors in their messages go by a lane, straight to the
/// service (every blk request is idempotent; libos `channel::lane`).
pub fn session_over(ep: libos::channel::Endpoint) -> Result<BlkClient, libos::channel::ChannelError> {
    let channel = libos::channel::Channel::resumable_shared(ep, SERVICE, SHARED_BYTES)?;
    Ok(BlkClient::new(channel.with_lane(goes_by_lane, libos::channel::DEFAULT_RING_BYTES)))
}

/// Whether a request goes by the session's lane: all but the two whose
/// messages carry sectors (too large for a lane's small rings).
fn goes_by_lane(request: &Request) -> bool {
    !matches!(request, Request::Read { .. } | Request::Write { .. })
}

/// Why a [`Disk`] operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiskError {
    /// The service answered `Failed`.
    Failed {
        /// The contract's code.
        code: u32,
        /// What went wrong.
        message: String,
    },
    /// The session broke (channel or contract).
    Session(String),
}

impl core::fmt::Display for DiskError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DiskError::Failed { code, message } => write!(f, "blk error {code}: {message}"),
            DiskError::Session(m) => write!(f, "blk session: {m}"),
        }
    }
}

/// Copy `data` to the start of `client`'s session's shared buffer.
pub fn put_shared(client: &BlkClient, data: &[u8]) -> Result<(), DiskError> {
    let shared = client.channel().shared().ok_or_else(no_buffer)?;
    shared.copy_in(0, data).map_err(|e| DiskError::Session(format!("shared buffer: {e}")))
}

/// Fill `buf` from the start of `client`'s session's shared buffer.
pub fn take_shared(client: &BlkClient, buf: &mut [u8]) -> Result<(), DiskError> {
    let shared = client.channel().shared().ok_or_else(no_buffer)?;
    shared.copy_out(0, buf).map_err(|e| DiskError::Session(format!("shared buffer: {e}")))
}

fn no_buffer() -> DiskError {
    DiskError::Session(String::from("the session has no shared buffer"))
}

fn unexpected(reply: &Reply) -> DiskError {
    DiskError::Session(format!("unexpected reply {}", <Blk as libos::protocol::Protocol>::reply_name(reply)))
}

/// A disk's geometry as the service reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Sectors on the disk.
    pub sectors: u64,
    /// Bytes per sector.
    pub sector_size: u32,
    /// Most sectors per request.
    pub max_sectors: u32,
    /// Device model and bus.
    pub model: String,
    /// Serial number ("" if none).
    pub serial: String,
}

/// One disk through a blk session: whole-sector reads and writes of any
/// length, split into requests the contract allows.
pub struct Disk {
    client: BlkClient,
    disk: u8,
    /// Shared requests may be tried (see [`Disk::read`]).
    shared: bool,
}

impl Disk {
    /// Disk `disk` over `client`.
    pub fn new(client: BlkClient, disk: u8) -> Disk {
        Disk { client, disk, shared: true }
    }

    /// Connect to the blk service for disk `disk`.
    pub fn connect(disk: u8) -> Result<Disk, DiskError> {
        connect().map(|c| Disk::new(c, disk)).map_err(|e| DiskError::Session(format!("{e}")))
    }

    fn call(&mut self, request: Request) -> Result<Reply, DiskError> {
        let reply = match request {
            Request::Info { disk } => self.client.info(disk),
            Request::Read { disk, lbas, counts } => self.client.read(disk, lbas, counts),
            Request::Write { disk, lbas, counts, data } => self.client.write(disk, lbas, counts, data),
            Request::ReadShared { disk, lbas, counts, at } => self.client.read_shared(disk, lbas, counts, at),
            Request::WriteShared { disk, lbas, counts, at } => self.client.write_shared(disk, lbas, counts, at),
            Request::Flush { disk } => self.client.flush(disk),
        }
        .map_err(|e| DiskError::Session(format!("{e}")))?;
        match reply {
            Reply::Failed { code, message } => Err(DiskError::Failed { code, message }),
            r => Ok(r),
        }
    }

    /// The disk's geometry.
    pub fn info(&mut self) -> Result<Geometry, DiskError> {
        match self.call(Request::Info { disk: self.disk })? {
            Reply::Geometry { sectors, sector_size, max_sectors, model, serial } => {
                Ok(Geometry { sectors, sector_size, max_sectors, model, serial })
            }
            r => Err(unexpected(&r)),
        }
    }

    /// Whether the session has a shared buffer of at least one request's
    /// sectors, which the service still takes (`NO_SHARED_BUFFER` turns
    /// it off: a service that does not know it).
    fn shares(&self) -> bool {
        self.shared && self.client.channel().shared().is_some_and(|m| m.len() >= SHARED_BYTES)
    }

    /// A shared request's answer: `Ok(true)` done, `Ok(false)` the service
    /// has no shared buffer for the session (use the messages from now on).
    fn shared_call(&mut self, request: Request) -> Result<bool, DiskError> {
        match self.call(request) {
            Ok(Reply::Filled { .. } | Reply::Written { .. }) => Ok(true),
            Ok(r) => Err(unexpected(&r)),
            Err(DiskError::Failed { code: code::NO_SHARED_BUFFER, message }) => {
                log::warn!("blk: {message}; sectors go through the messages");
                self.shared = false;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Read `buf.len() / 512` sectors from `lba` (`buf` a whole number of
    /// sectors): through the session's shared buffer if it has one (the
    /// sectors copied once, from there into `buf`), else in the replies.
    pub fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let step = MAX_SECTORS as usize * SECTOR;
        for (i, chunk) in buf.chunks_mut(step).enumerate() {
            let at = lba + (i * step / SECTOR) as u64;
            let count = chunk.len().div_ceil(SECTOR) as u32;
            if self.shares() {
                let request = Request::ReadShared { disk: self.disk, lbas: vec![at], counts: vec![count], at: 0 };
                if self.shared_call(request)? {
                    take_shared(&self.client, chunk)?;
                    continue;
                }
            }
            match self.call(Request::Read { disk: self.disk, lbas: vec![at], counts: vec![count] })? {
                Reply::Data { data } if data.len() == chunk.len() => chunk.copy_from_slice(&data),
                Reply::Data { data } => {
                    return Err(DiskError::Session(format!("{} bytes read for {} asked", data.len(), chunk.len())))
                }
                r => return Err(unexpected(&r)),
            }
        }
        Ok(())
    }

    /// Write `data` (a whole number of sectors) from `lba`.
    pub fn write(&mut self, lba: u64, data: &[u8]) -> Result<(), DiskError> {
        let step = MAX_SECTORS as usize * SECTOR;
        for (i, chunk) in data.chunks(step).enumerate() {
            let at = lba + (i * step / SECTOR) as u64;
            let count = chunk.len().div_ceil(SECTOR) as u32;
            if self.shares() {
                put_shared(&self.client, chunk)?;
                let request = Request::WriteShared { disk: self.disk, lbas: vec![at], counts: vec![count], at: 0 };
                if self.shared_call(request)? {
                    continue;
                }
            }
            let request = Request::Write { disk: self.disk, lbas: vec![at], counts: vec![count], data: chunk.to_vec() };
            match self.call(request)? {
                Reply::Written { .. } => {}
                r => return Err(unexpected(&r)),
            }
        }
        Ok(())
    }

    /// Make every write so far durable.
    pub fn flush(&mut self) -> Result<(), DiskError> {
        match self.call(Request::Flush { disk: self.disk })? {
            Reply::Flushed => Ok(()),
            r => Err(unexpected(&r)),
        }
    }
}

/// Test patterns: byte `i` of sector `lba` in pattern `seed`, a function
/// of all three, so a sector written to the wrong place or a stale sector
/// shows. The host tests compute the same function (tests/tests/blk.rs).
pub fn pattern_byte(seed: u64, lba: u64, i: usize) -> u8 {
    let x =
        (lba.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed.wrapping_mul(0xBF58_476D_1CE4_E5B9)).wrapping_add(i as u64 / 8);
    let x = (x ^ (x >> 31)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (x >> (8 * (i % 8))) as u8
}

/// Fill `buf` (whole sectors from `lba`) with pattern `seed`.
pub fn fill_pattern(seed: u64, lba: u64, buf: &mut [u8]) {
    for (s, sector) in buf.chunks_mut(SECTOR).enumerate() {
        for (i, b) in sector.iter_mut().enumerate() {
            *b = pattern_byte(seed, lba + s as u64, i);
        }
    }
}
