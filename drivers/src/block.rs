//! Block devices: the interface every disk driver offers ([`BlockDevice`]),
//! what a disk says about itself ([`BlockInfo`]), the errors of all drivers
//! ([`DeviceError`]), and the pure bookkeeping the drivers share: checking a
//! request against the disk and cutting a transfer into device-sized pieces
//! ([`check_request`], [`split`]).

use crate::transfer::Io;
use alloc::string::String;
use alloc::vec::Vec;

/// What a disk says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockInfo {
    /// Number of sectors.
    pub sectors: u64,
    /// Bytes per sector (the unit of `lba` and of transfer lengths).
    pub sector_size: u32,
    /// Model string (e.g. `QEMU HARDDISK`, or `virtio-blk`).
    pub model: String,
    /// Serial number (QEMU: the `serial=` property), trimmed.
    pub serial: String,
}

/// Why a device operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceError {
    /// The request reaches past the end of the device.
    OutOfRange,
    /// A length that is not a multiple of the sector size (or a frame of a
    /// bad size).
    Misaligned,
    /// The device reported an error or behaved impossibly (bad status,
    /// length, index or descriptor id).
    Device(String),
    /// The device did not complete the request in time.
    Timeout,
    /// No such device, or it could not be set up.
    NoDevice,
}

impl core::fmt::Display for DeviceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DeviceError::OutOfRange => f.write_str("request out of the device's range"),
            DeviceError::Misaligned => f.write_str("length not a multiple of the sector size"),
            DeviceError::Device(m) => write!(f, "device error: {m}"),
            DeviceError::Timeout => f.write_str("device timed out"),
            DeviceError::NoDevice => f.write_str("no such device"),
        }
    }
}

impl DeviceError {
    /// A `Device` error with a message.
    pub fn device(message: impl Into<String>) -> DeviceError {
        DeviceError::Device(message.into())
    }
}

/// A disk.
pub trait BlockDevice {
    /// Size, sector size, model and serial.
    fn info(&self) -> &BlockInfo;
    /// Read or write several extents `(lba, sectors)`, their sectors one
    /// after another in `io` (the caller's memory or a shared mapping). The
    /// transfer is cut into device requests that are in flight at the same
    /// time (virtqueue descriptors / AHCI command slots), then all waited
    /// for; each byte is copied once between `io` and the DMA buffers.
    fn transfer_extents(&mut self, extents: &[(u64, u32)], io: Io) -> Result<(), DeviceError>;
    /// Read several extents `(lba, sectors)` into `buf`, their sectors one
    /// after another.
    fn read_extents(&mut self, extents: &[(u64, u32)], buf: &mut [u8]) -> Result<(), DeviceError> {
        self.transfer_extents(extents, Io::Read(buf))
    }
    /// Write `data` (the extents' sectors one after another) to several
    /// extents `(lba, sectors)`.
    fn write_extents(&mut self, extents: &[(u64, u32)], data: &[u8]) -> Result<(), DeviceError> {
        self.transfer_extents(extents, Io::Write(data))
    }
    /// Make every completed write durable (the device's cache flush).
    fn flush(&mut self) -> Result<(), DeviceError>;
    /// Read `buf.len()` bytes (a multiple of the sector size) starting at
    /// sector `lba`: one extent.
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        let sectors = whole_sectors(buf.len(), self.info().sector_size)?;
        self.read_extents(&[(lba, sectors)], buf)
    }
    /// Write `data` (a multiple of the sector size) starting at sector
    /// `lba`: one extent.
    fn write(&mut self, lba: u64, data: &[u8]) -> Result<(), DeviceError> {
        let sectors = whole_sectors(data.len(), self.info().sector_size)?;
        self.write_extents(&[(lba, sectors)], data)
    }
}

/// The sectors `len` bytes cover, if they are whole sectors.
fn whole_sectors(len: usize, sector_size: u32) -> Result<u32, DeviceError> {
    if sector_size == 0 || !len.is_multiple_of(sector_size as usize) {
        return Err(DeviceError::Misaligned);
    }
    u32::try_from(len / sector_size as usize).map_err(|_| DeviceError::OutOfRange)
}

/// Extents `(lba, sectors)` as `(lba, bytes)`, checking that together they
/// are exactly `total` bytes.
pub fn extent_bytes(extents: &[(u64, u32)], sector_size: u32, total: usize) -> Result<Vec<(u64, usize)>, DeviceError> {
    let out: Vec<(u64, usize)> = extents.iter().map(|&(lba, n)| (lba, n as usize * sector_size as usize)).collect();
    if out.iter().map(|e| e.1).sum::<usize>() != total {
        return Err(DeviceError::Misaligned);
    }
    Ok(out)
}

/// The pieces of a multi-extent transfer: each extent `(lba, bytes)`
/// checked against the disk and cut like [`split`], with offsets into the
/// whole transfer's buffer.
pub fn split_extents(
    extents: &[(u64, usize)],
    sectors: u64,
    sector_size: u32,
    max_bytes: usize,
) -> Result<Vec<Piece>, DeviceError> {
    let mut out = Vec::new();
    let mut base = 0;
    for &(lba, len) in extents {
        check_request(sectors, sector_size, lba, len)?;
        out.extend(split(lba, len, sector_size, max_bytes).into_iter().map(|p| Piece { offset: p.offset + base, ..p }));
        base += len;
    }
    Ok(out)
}

/// Check a transfer of `len` bytes at `lba` against a disk of `sectors`
/// sectors of `sector_size` bytes; the number of sectors it covers.
pub fn check_request(sectors: u64, sector_size: u32, lba: u64, len: usize) -> Result<u64, DeviceError> {
    if sector_size == 0 || !len.is_multiple_of(sector_size as usize) {
        return Err(DeviceError::Misaligned);
    }
    let count = (len / sector_size as usize) as u64;
    match lba.checked_add(count) {
        Some(end) if end <= sectors => Ok(count),
        _ => Err(DeviceError::OutOfRange),
    }
}

/// One device request of a split transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    /// First sector.
    pub lba: u64,
    /// Byte offset into the caller's buffer.
    pub offset: usize,
    /// Length in bytes.
    pub len: usize,
}

/// Cut a transfer of `len` bytes at `lba` into pieces of at most
/// `max_bytes` (rounded down to whole sectors, at least one sector).
pub fn split(lba: u64, len: usize, sector_size: u32, max_bytes: usize) -> Vec<Piece> {
    let sector = (sector_size as usize).max(1);
    let max = (max_bytes / sector).max(1) * sector;
    let mut out = Vec::with_capacity(len.div_ceil(max));
    let mut offset = 0;
    while offset < len {
        let n = max.min(len - offset);
        out.push(Piece { lba: lba + (offset / sector) as u64, offset, len: n });
        offset += n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked() {
        assert_eq!(check_request(100, 512, 0, 512 * 100), Ok(100));
        assert_eq!(check_request(100, 512, 99, 512), Ok(1));
        assert_eq!(check_request(100, 512, 100, 0), Ok(0));
        assert_eq!(check_request(100, 512, 99, 1024), Err(DeviceError::OutOfRange));
        assert_eq!(check_request(100, 512, u64::MAX, 512), Err(DeviceError::OutOfRange));
        assert_eq!(check_request(100, 512, 0, 100), Err(DeviceError::Misaligned));
        assert_eq!(check_request(100, 4096, 0, 512), Err(DeviceError::Misaligned));
        assert_eq!(check_request(100, 0, 0, 512), Err(DeviceError::Misaligned));
    }

    #[test]
    fn transfers_split_into_whole_sectors() {
        let p = split(1000, 256 * 1024, 512, 64 * 1024);
        assert_eq!(p.len(), 4);
        assert_eq!(p[0], Piece { lba: 1000, offset: 0, len: 65536 });
        assert_eq!(p[3], Piece { lba: 1000 + 3 * 128, offset: 3 * 65536, len: 65536 });
        let p = split(0, 3 * 512, 512, 1024);
        assert_eq!(p, [Piece { lba: 0, offset: 0, len: 1024 }, Piece { lba: 2, offset: 1024, len: 512 }]);
        // A maximum below one sector still moves one sector at a time.
        assert_eq!(split(5, 1024, 512, 100).len(), 2);
        // 4 KiB sectors and a maximum that is not a multiple of them.
        let p = split(10, 5 * 4096, 4096, 10000);
        assert_eq!(p.iter().map(|p| p.len).collect::<Vec<_>>(), [8192, 8192, 4096]);
        assert_eq!(p[2].lba, 14);
        assert!(split(0, 0, 512, 4096).is_empty());
    }

    #[test]
    fn extents_split_with_running_offsets() {
        let p = split_extents(&[(10, 1024), (1000, 512 * 200)], 2000, 512, 64 * 1024).unwrap();
        assert_eq!(p[0], Piece { lba: 10, offset: 0, len: 1024 });
        assert_eq!(p[1], Piece { lba: 1000, offset: 1024, len: 65536 });
        assert_eq!(p[2], Piece { lba: 1128, offset: 1024 + 65536, len: 512 * 72 });
        assert_eq!(split_extents(&[(10, 512), (1999, 1024)], 2000, 512, 4096), Err(DeviceError::OutOfRange));
        assert_eq!(split_extents(&[(10, 100)], 2000, 512, 4096), Err(DeviceError::Misaligned));
        assert_eq!(extent_bytes(&[(0, 2), (9, 1)], 512, 1536), Ok(alloc::vec![(0, 1024), (9, 512)]));
        assert_eq!(extent_bytes(&[(0, 2)], 512, 1000), Err(DeviceError::Misaligned));
        assert_eq!(whole_sectors(1536, 512), Ok(3));
        assert_eq!(whole_sectors(1000, 512), Err(DeviceError::Misaligned));
        assert_eq!(whole_sectors(512, 0), Err(DeviceError::Misaligned));
    }

    #[test]
    fn errors_display() {
        assert_eq!(alloc::format!("{}", DeviceError::device("bad status 7")), "device error: bad status 7");
        assert_eq!(alloc::format!("{}", DeviceError::Timeout), "device timed out");
    }
}
