//! Where a block transfer's data is ([`Io`]), and the copies between it and
//! a driver's DMA staging buffers, shared by the virtio-blk and AHCI
//! drivers.
//!
//! The data is either in the caller's own memory (a slice) or in a
//! [`Mapping`] another process may share (a session's shared buffer, see
//! `resiliency_lib::shared`), reached only by copying, each byte once. In
//! both cases a staging buffer is copied exactly once per transfer: the
//! shared case is what lets a block payload go from the device to its
//! client with a single copy.

use crate::block::DeviceError;
use crate::dma::DmaBuffer;
use libos::handle::Mapping;

/// A transfer's data.
pub enum Io<'a> {
    /// No data (a flush).
    None,
    /// A read into the caller's memory.
    Read(&'a mut [u8]),
    /// A write of the caller's memory.
    Write(&'a [u8]),
    /// A read into `len` bytes of a mapping at byte `at`.
    ReadTo {
        /// The mapping.
        map: &'a Mapping,
        /// Where in it the data starts.
        at: usize,
        /// How many bytes.
        len: usize,
    },
    /// A write of `len` bytes of a mapping from byte `at`.
    WriteFrom {
        /// The mapping.
        map: &'a Mapping,
        /// Where in it the data starts.
        at: usize,
        /// How many bytes.
        len: usize,
    },
}

impl Io<'_> {
    /// Whether the device reads the data (a write to the disk).
    pub fn is_write(&self) -> bool {
        matches!(self, Io::Write(_) | Io::WriteFrom { .. })
    }

    /// Bytes of data.
    pub fn len(&self) -> usize {
        match self {
            Io::None => 0,
            Io::Read(b) => b.len(),
            Io::Write(b) => b.len(),
            Io::ReadTo { len, .. } | Io::WriteFrom { len, .. } => *len,
        }
    }

    /// Whether there is no data.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The range `offset..offset + len` of the data, inside it.
    fn inside(&self, offset: usize, len: usize) -> Result<(), DeviceError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len() => Ok(()),
            _ => Err(DeviceError::OutOfRange),
        }
    }

    /// For a write: copy the data's bytes `offset..offset + len` to the
    /// start of `staging`. Nothing for a read.
    pub fn stage(&self, staging: &DmaBuffer, offset: usize, len: usize) -> Result<(), DeviceError> {
        self.inside(offset, len)?;
        let copied = match self {
            Io::Write(data) => staging.copy_in(0, &data[offset..offset + len]),
            Io::WriteFrom { map, at, .. } => staging.fill_from(0, map, at + offset, len),
            _ => true,
        };
        copied.then_some(()).ok_or(DeviceError::OutOfRange)
    }

    /// For a read: copy `len` bytes the device put at the start of
    /// `staging` to the data's bytes `offset..offset + len`. Nothing for a
    /// write.
    pub fn unstage(&mut self, staging: &DmaBuffer, offset: usize, len: usize) -> Result<(), DeviceError> {
        self.inside(offset, len)?;
        let copied = match self {
            Io::Read(buf) => staging.copy_out(0, &mut buf[offset..offset + len]),
            Io::ReadTo { map, at, .. } => staging.drain_to(0, map, *at + offset, len),
            _ => true,
        };
        copied.then_some(()).ok_or(DeviceError::OutOfRange)
    }
}
