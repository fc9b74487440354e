//! The vault's on-disk record (DESIGN.md 5.5): one committed checkpoint of
//! one service, and optionally the *epoch* that goes with it, a redo list
//! of block writes that must reach the data disk once the checkpoint is
//! committed.
//!
//! This crate owns the byte layout and nothing else: [`encode`] builds a
//! record, [`validate`] and [`decode`] check one (magic, version, header
//! checksum, field values, lengths, payload checksum) and say precisely
//! what is wrong with a bad one; [`epoch`] encodes and decodes the redo
//! list; [`table`] is the pool table (which region of the vault's pool
//! file holds which service's slots and log) and [`log`] the request log's
//! entries. It is `no_std` (with `alloc`) so the vault in the guest and the
//! host tools (`cargo xtask vault`) share it.
//!
//! # Layout (version 1)
//!
//! A record is a fixed 128-byte header, then the state bytes, then the
//! epoch bytes. Integers are little-endian.
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 8 | magic `KNTSGREC` |
//! | 8 | 2 | format version (1) |
//! | 10 | 2 | header length (128) |
//! | 12 | 1 | distillation kind (1 logical, 2 image) |
//! | 13 | 1 | length of the service name (1 to 64) |
//! | 14 | 2 | flags (0) |
//! | 16 | 8 | generation (assigned by the vault; increases across reboots) |
//! | 24 | 8 | taken at: ns since the boot that took it |
//! | 32 | 8 | boot: the vault's boot sequence number when it wrote the record |
//! | 40 | 8 | state length |
//! | 48 | 8 | epoch length (0: no epoch) |
//! | 56 | 4 | CRC-32 of the payload (state then epoch) |
//! | 60 | 64 | service name, UTF-8, zero-padded |
//! | 124 | 4 | CRC-32 of bytes 0..124 |
//!
//! The CRC is CRC-32/ISO-HDLC (the zlib / Ethernet one).
//!
//! Any single changed byte and any truncation of a record is detected:
//! the header is covered by its own checksum (after the magic and the
//! version, which are checked as values), the payload by the payload
//! checksum, and its length by the header.
#![no_std]

extern crate alloc;

pub mod epoch;
pub mod log;
pub mod table;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The first eight bytes of every record.
pub const MAGIC: [u8; 8] = *b"KNTSGREC";
/// The format version this crate writes and reads.
pub const VERSION: u16 = 1;
/// Bytes of header (version 1).
pub const HEADER_LEN: usize = 128;
/// Longest service name.
pub const MAX_NAME: usize = 64;
/// Largest payload (state and epoch together) a record may declare.
pub const MAX_PAYLOAD: u64 = 1 << 30;

/// Byte offsets of the header fields.
pub mod layout {
    /// Magic.
    pub const MAGIC: usize = 0;
    /// Format version (u16).
    pub const VERSION: usize = 8;
    /// Header length (u16).
    pub const HEADER_LEN: usize = 10;
    /// Distillation kind (u8).
    pub const KIND: usize = 12;
    /// Service name length (u8).
    pub const NAME_LEN: usize = 13;
    /// Flags (u16, 0).
    pub const FLAGS: usize = 14;
    /// Generation (u64).
    pub const GENERATION: usize = 16;
    /// Taken at, ns since boot (u64).
    pub const TAKEN_NS: usize = 24;
    /// Boot sequence number (u64).
    pub const BOOT: usize = 32;
    /// State length (u64).
    pub const STATE_LEN: usize = 40;
    /// Epoch length (u64).
    pub const EPOCH_LEN: usize = 48;
    /// Payload CRC-32 (u32).
    pub const PAYLOAD_CRC: usize = 56;
    /// Service name (64 bytes).
    pub const NAME: usize = 60;
    /// Header CRC-32 (u32), over the bytes before it.
    pub const HEADER_CRC: usize = 124;
}

/// How the state was distilled (DESIGN.md 5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Serialised by the service.
    Logical = 1,
    /// The service's state arena, page by page.
    Image = 2,
}

impl Kind {
    /// The kind of a header byte.
    pub fn from_u8(v: u8) -> Option<Kind> {
        match v {
            1 => Some(Kind::Logical),
            2 => Some(Kind::Image),
            _ => None,
        }
    }

    /// `logical` or `image`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Logical => "logical",
            Kind::Image => "image",
        }
    }
}

/// Why bytes are not a valid record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// The header is all zeros: nothing was ever written here.
    Empty,
    /// Fewer bytes than the record needs.
    Truncated {
        /// Bytes the record needs (as far as known).
        needed: u64,
        /// Bytes there are.
        have: u64,
    },
    /// The first eight bytes are not [`MAGIC`].
    BadMagic,
    /// A format version this crate does not read.
    UnsupportedVersion(u16),
    /// The header does not match its checksum.
    HeaderChecksum {
        /// The checksum in the header.
        stored: u32,
        /// The checksum of the header bytes.
        computed: u32,
    },
    /// The state and epoch do not match the header's checksum.
    PayloadChecksum {
        /// The checksum in the header.
        stored: u32,
        /// The checksum of the payload bytes.
        computed: u32,
    },
    /// Lengths that contradict each other or exceed the limits.
    LengthsInconsistent(&'static str),
    /// A header field with a value the format does not allow.
    BadField(&'static str),
    /// The epoch section is not a well-formed redo list.
    BadEpoch(&'static str),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Empty => f.write_str("empty (never written)"),
            RecordError::Truncated { needed, have } => write!(f, "truncated ({have} of {needed} bytes)"),
            RecordError::BadMagic => f.write_str("bad magic"),
            RecordError::UnsupportedVersion(v) => write!(f, "unsupported format version {v}"),
            RecordError::HeaderChecksum { stored, computed } => {
                write!(f, "header checksum mismatch: stored {stored:08x}, computed {computed:08x}")
            }
            RecordError::PayloadChecksum { stored, computed } => {
                write!(f, "payload checksum mismatch: stored {stored:08x}, computed {computed:08x}")
            }
            RecordError::LengthsInconsistent(what) => write!(f, "lengths inconsistent: {what}"),
            RecordError::BadField(what) => write!(f, "bad header field: {what}"),
            RecordError::BadEpoch(what) => write!(f, "malformed epoch: {what}"),
        }
    }
}

/// CRC-32 (ISO-HDLC) of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// CRC-32 of `a` followed by `b`.
fn crc32_two(a: &[u8], b: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(a);
    h.update(b);
    h.finalize()
}

/// What a record says about itself: everything in the header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The service whose state this is.
    pub service: String,
    /// The record's generation.
    pub generation: u64,
    /// When the checkpoint was taken (ns since the boot that took it).
    pub taken_ns: u64,
    /// The vault's boot sequence number when it wrote the record.
    pub boot: u64,
    /// The distillation kind.
    pub kind: Kind,
    /// Bytes of state.
    pub state_len: u64,
    /// Bytes of epoch (0: none).
    pub epoch_len: u64,
    /// CRC-32 of state then epoch.
    pub payload_crc: u32,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut v = [0u8; 4];
    v.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(v)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

impl Header {
    /// Bytes of payload (state and epoch).
    pub fn payload_len(&self) -> u64 {
        self.state_len + self.epoch_len
    }

    /// Bytes of the whole record.
    pub fn record_len(&self) -> u64 {
        HEADER_LEN as u64 + self.payload_len()
    }

    /// Check and read a header from the start of `bytes` (the payload is
    /// not looked at).
    pub fn parse(bytes: &[u8]) -> Result<Header, RecordError> {
        if bytes.len() >= HEADER_LEN && bytes[..HEADER_LEN].iter().all(|&b| b == 0) {
            return Err(RecordError::Empty);
        }
        if bytes.len() < MAGIC.len() {
            return Err(RecordError::Truncated { needed: HEADER_LEN as u64, have: bytes.len() as u64 });
        }
        if bytes[..MAGIC.len()] != MAGIC {
            return Err(RecordError::BadMagic);
        }
        if bytes.len() < HEADER_LEN {
            return Err(RecordError::Truncated { needed: HEADER_LEN as u64, have: bytes.len() as u64 });
        }
        let h = &bytes[..HEADER_LEN];
        let version = u16_at(h, layout::VERSION);
        if version != VERSION {
            return Err(RecordError::UnsupportedVersion(version));
        }
        let stored = u32_at(h, layout::HEADER_CRC);
        let computed = crc32(&h[..layout::HEADER_CRC]);
        if stored != computed {
            return Err(RecordError::HeaderChecksum { stored, computed });
        }
        // The header is what its writer wrote; its values must still make
        // sense (a writer bug, or a record from a broken encoder).
        if u16_at(h, layout::HEADER_LEN) as usize != HEADER_LEN {
            return Err(RecordError::LengthsInconsistent("header length is not 128 for version 1"));
        }
        let kind = Kind::from_u8(h[layout::KIND]).ok_or(RecordError::BadField("distillation kind"))?;
        if u16_at(h, layout::FLAGS) != 0 {
            return Err(RecordError::BadField("flags"));
        }
        let name_len = h[layout::NAME_LEN] as usize;
        if name_len == 0 || name_len > MAX_NAME {
            return Err(RecordError::BadField("service name length"));
        }
        let name = &h[layout::NAME..layout::NAME + MAX_NAME];
        if name[name_len..].iter().any(|&b| b != 0) {
            return Err(RecordError::BadField("service name padding"));
        }
        let service =
            core::str::from_utf8(&name[..name_len]).map_err(|_| RecordError::BadField("service name is not UTF-8"))?;
        let state_len = u64_at(h, layout::STATE_LEN);
        let epoch_len = u64_at(h, layout::EPOCH_LEN);
        match state_len.checked_add(epoch_len) {
            Some(n) if n <= MAX_PAYLOAD => {}
            _ => return Err(RecordError::LengthsInconsistent("payload larger than the format allows")),
        }
        Ok(Header {
            service: String::from(service),
            generation: u64_at(h, layout::GENERATION),
            taken_ns: u64_at(h, layout::TAKEN_NS),
            boot: u64_at(h, layout::BOOT),
            kind,
            state_len,
            epoch_len,
            payload_crc: u32_at(h, layout::PAYLOAD_CRC),
        })
    }

    /// The header's bytes (its checksum included). The caller makes sure
    /// the values are within the format's limits ([`encode`] does).
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[layout::MAGIC..layout::MAGIC + 8].copy_from_slice(&MAGIC);
        h[layout::VERSION..layout::VERSION + 2].copy_from_slice(&VERSION.to_le_bytes());
        h[layout::HEADER_LEN..layout::HEADER_LEN + 2].copy_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        h[layout::KIND] = self.kind as u8;
        let name = self.service.as_bytes();
        let n = name.len().min(MAX_NAME);
        h[layout::NAME_LEN] = n as u8;
        h[layout::GENERATION..layout::GENERATION + 8].copy_from_slice(&self.generation.to_le_bytes());
        h[layout::TAKEN_NS..layout::TAKEN_NS + 8].copy_from_slice(&self.taken_ns.to_le_bytes());
        h[layout::BOOT..layout::BOOT + 8].copy_from_slice(&self.boot.to_le_bytes());
        h[layout::STATE_LEN..layout::STATE_LEN + 8].copy_from_slice(&self.state_len.to_le_bytes());
        h[layout::EPOCH_LEN..layout::EPOCH_LEN + 8].copy_from_slice(&self.epoch_len.to_le_bytes());
        h[layout::PAYLOAD_CRC..layout::PAYLOAD_CRC + 4].copy_from_slice(&self.payload_crc.to_le_bytes());
        h[layout::NAME..layout::NAME + n].copy_from_slice(&name[..n]);
        let crc = crc32(&h[..layout::HEADER_CRC]);
        h[layout::HEADER_CRC..].copy_from_slice(&crc.to_le_bytes());
        h
    }
}

/// What a new record is about (the lengths and checksum come from the
/// payload).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta<'a> {
    /// The service.
    pub service: &'a str,
    /// The generation.
    pub generation: u64,
    /// When the checkpoint was taken.
    pub taken_ns: u64,
    /// The vault's boot sequence number.
    pub boot: u64,
    /// The distillation kind.
    pub kind: Kind,
}

/// Check that `service` can be a record's service name.
pub fn check_name(service: &str) -> Result<(), RecordError> {
    if service.is_empty() || service.len() > MAX_NAME {
        return Err(RecordError::BadField("service name length"));
    }
    if service.as_bytes().contains(&0) {
        return Err(RecordError::BadField("service name contains a NUL byte"));
    }
    Ok(())
}

/// The header a record of `state` and `epoch` gets.
pub fn header_for(meta: &Meta, state: &[u8], epoch: &[u8]) -> Result<Header, RecordError> {
    check_name(meta.service)?;
    let (s, e) = (state.len() as u64, epoch.len() as u64);
    if s.checked_add(e).is_none_or(|n| n > MAX_PAYLOAD) {
        return Err(RecordError::LengthsInconsistent("payload larger than the format allows"));
    }
    if !epoch.is_empty() {
        epoch::validate(epoch)?;
    }
    Ok(Header {
        service: String::from(meta.service),
        generation: meta.generation,
        taken_ns: meta.taken_ns,
        boot: meta.boot,
        kind: meta.kind,
        state_len: s,
        epoch_len: e,
        payload_crc: crc32_two(state, epoch),
    })
}

/// Encode a record of `state` and `epoch` (an encoded redo list, see
/// [`epoch`], or empty for none).
pub fn encode(meta: &Meta, state: &[u8], epoch: &[u8]) -> Result<Vec<u8>, RecordError> {
    let header = header_for(meta, state, epoch)?;
    // Room for whole sectors: the vault pads the record to them in place
    // (a record of several MiB copied once more by a growing Vec was 40 %
    // of the vault's copying).
    let mut out = Vec::with_capacity((HEADER_LEN + state.len() + epoch.len()).next_multiple_of(512));
    out.extend_from_slice(&header.to_bytes());
    out.extend_from_slice(state);
    out.extend_from_slice(epoch);
    Ok(out)
}

/// Check the record at the start of `bytes` (bytes after it are ignored);
/// its header.
pub fn validate(bytes: &[u8]) -> Result<Header, RecordError> {
    let header = Header::parse(bytes)?;
    check_payload(&header, &bytes[HEADER_LEN..])?;
    Ok(header)
}

/// Check that `payload` (the bytes after the header; more are ignored)
/// holds the payload `header` describes.
pub fn check_payload(header: &Header, payload: &[u8]) -> Result<(), RecordError> {
    let len = header.payload_len();
    if (payload.len() as u64) < len {
        return Err(RecordError::Truncated {
            needed: header.record_len(),
            have: HEADER_LEN as u64 + payload.len() as u64,
        });
    }
    let payload = &payload[..len as usize];
    let computed = crc32(payload);
    if computed != header.payload_crc {
        return Err(RecordError::PayloadChecksum { stored: header.payload_crc, computed });
    }
    if header.epoch_len > 0 {
        epoch::validate(&payload[header.state_len as usize..])?;
    }
    Ok(())
}

/// A whole record, copied out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Its header.
    pub header: Header,
    /// The state.
    pub state: Vec<u8>,
    /// The encoded epoch (empty: none).
    pub epoch: Vec<u8>,
}

impl Record {
    /// The epoch's block writes.
    pub fn writes(&self) -> Result<Vec<epoch::BlockWrite>, RecordError> {
        epoch::decode(&self.epoch)
    }
}

/// Check and copy out the record at the start of `bytes`.
pub fn decode(bytes: &[u8]) -> Result<Record, RecordError> {
    let header = validate(bytes)?;
    let s = HEADER_LEN + header.state_len as usize;
    let e = s + header.epoch_len as usize;
    Ok(Record { state: bytes[HEADER_LEN..s].to_vec(), epoch: bytes[s..e].to_vec(), header })
}

#[cfg(test)]
mod tests;
