//! The AHCI structures in memory, built as plain values: the host-to-device
//! register FIS that carries an ATA command, the command header that points
//! the HBA at a command table, and the physical region descriptor table
//! (PRDT) that describes the data buffer. Pure, so unit-tested on the host.

use alloc::vec::Vec;

/// Bytes per command header in the command list.
pub const HEADER_SIZE: usize = 32;
/// Where the PRDT starts in a command table.
pub const PRDT_OFFSET: usize = 0x80;
/// Bytes per PRDT entry.
pub const PRD_SIZE: usize = 16;
/// Most bytes one PRDT entry describes.
pub const MAX_PRD_BYTES: usize = 4 << 20;
/// Length of a register FIS in dwords.
pub const H2D_DWORDS: u32 = 5;

/// ATA commands this driver issues.
pub mod ata {
    /// READ DMA EXT (48-bit LBA).
    pub const READ_DMA_EXT: u8 = 0x25;
    /// WRITE DMA EXT (48-bit LBA).
    pub const WRITE_DMA_EXT: u8 = 0x35;
    /// READ DMA (28-bit LBA).
    pub const READ_DMA: u8 = 0xc8;
    /// WRITE DMA (28-bit LBA).
    pub const WRITE_DMA: u8 = 0xca;
    /// FLUSH CACHE EXT.
    pub const FLUSH_CACHE_EXT: u8 = 0xea;
    /// FLUSH CACHE.
    pub const FLUSH_CACHE: u8 = 0xe7;
    /// IDENTIFY DEVICE.
    pub const IDENTIFY: u8 = 0xec;
}

/// An ATA command as the driver means it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Command {
    /// The command byte.
    pub command: u8,
    /// First sector (0 for commands without one).
    pub lba: u64,
    /// Sector count (0 for commands without one).
    pub count: u16,
    /// Whether it addresses by LBA (sets the LBA bit in the device register).
    pub lba_mode: bool,
    /// Whether it is a 28-bit command (LBA bits 24..28 go in the device
    /// register, count and LBA above bit 28 must be zero).
    pub lba28: bool,
}

/// Why a command or buffer cannot be described.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FisError {
    /// The LBA or count does not fit the command's addressing.
    Range,
    /// A buffer segment with an odd address or length.
    Alignment,
    /// More PRDT entries than the command table holds.
    TooManySegments,
}

/// The 20-byte host-to-device register FIS for `c`.
pub fn h2d(c: &Command) -> Result<[u8; 20], FisError> {
    if c.lba28 && (c.lba >> 28 != 0 || c.count > 256) || !c.lba28 && c.lba >> 48 != 0 {
        return Err(FisError::Range);
    }
    let mut f = [0u8; 20];
    f[0] = 0x27; // register FIS, host to device
    f[1] = 0x80; // C: this is a command
    f[2] = c.command;
    let lba = c.lba.to_le_bytes();
    f[4] = lba[0];
    f[5] = lba[1];
    f[6] = lba[2];
    f[7] = if c.lba_mode { 0x40 } else { 0 };
    if c.lba28 {
        f[7] |= lba[3] & 0x0f;
    } else {
        f[8] = lba[3];
        f[9] = lba[4];
        f[10] = lba[5];
    }
    // For 28-bit commands a count of 256 is written as 0.
    let count = c.count.to_le_bytes();
    f[12] = count[0];
    f[13] = if c.lba28 { 0 } else { count[1] };
    Ok(f)
}

/// Command header dwords 0..4: FIS length, direction, PRDT length, PRD
/// byte count (0; the HBA updates it) and the command table's address.
pub fn header(write: bool, prdt_entries: u16, table_phys: u64) -> [u32; 4] {
    let dw0 = H2D_DWORDS | (write as u32) << 6 | (prdt_entries as u32) << 16;
    [dw0, 0, table_phys as u32, (table_phys >> 32) as u32]
}

/// PRDT entries (four dwords each) for a buffer made of physical
/// `segments`: segments over 4 MiB are cut, every piece must start on and
/// cover an even number of bytes, and at most `max` entries fit.
pub fn prdt(segments: &[(u64, usize)], max: usize) -> Result<Vec<[u32; 4]>, FisError> {
    let mut out = Vec::new();
    for &(phys, len) in segments {
        if phys % 2 != 0 || len % 2 != 0 {
            return Err(FisError::Alignment);
        }
        let mut at = 0;
        while at < len {
            let n = (len - at).min(MAX_PRD_BYTES);
            if out.len() == max {
                return Err(FisError::TooManySegments);
            }
            let a = phys + at as u64;
            out.push([a as u32, (a >> 32) as u32, 0, (n - 1) as u32]);
            at += n;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_dma_ext_fis() {
        let c = Command {
            command: ata::READ_DMA_EXT,
            lba: 0x0000_1234_5678_9abc,
            count: 0x0180,
            lba_mode: true,
            lba28: false,
        };
        let f = h2d(&c).unwrap();
        assert_eq!(&f[..4], &[0x27, 0x80, 0x25, 0]);
        assert_eq!(&f[4..8], &[0xbc, 0x9a, 0x78, 0x40]);
        assert_eq!(&f[8..11], &[0x56, 0x34, 0x12]);
        assert_eq!(&f[12..14], &[0x80, 0x01]);
        assert!(f[14..].iter().all(|&b| b == 0));
        let c = Command { lba: 1 << 48, ..c };
        assert_eq!(h2d(&c), Err(FisError::Range));
    }

    #[test]
    fn lba28_fis() {
        let c = Command { command: ata::WRITE_DMA, lba: 0x0abc_def1, count: 256, lba_mode: true, lba28: true };
        let f = h2d(&c).unwrap();
        assert_eq!(&f[4..8], &[0xf1, 0xde, 0xbc, 0x4a]);
        assert_eq!(&f[8..14], &[0, 0, 0, 0, 0, 0], "256 sectors is written as 0");
        assert_eq!(h2d(&Command { lba: 1 << 28, ..c }), Err(FisError::Range));
        assert_eq!(h2d(&Command { count: 257, ..c }), Err(FisError::Range));
    }

    #[test]
    fn identify_fis_has_no_lba_bit() {
        let c = Command { command: ata::IDENTIFY, lba: 0, count: 0, lba_mode: false, lba28: false };
        assert_eq!(h2d(&c).unwrap()[..8], [0x27, 0x80, 0xec, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn headers() {
        assert_eq!(header(false, 3, 0x1234_5680), [0x0003_0005, 0, 0x1234_5680, 0]);
        assert_eq!(header(true, 1, 0x1_0000_0080), [0x0001_0045, 0, 0x80, 1]);
        assert_eq!(header(false, 0, 0x2000)[0], 5);
    }

    #[test]
    fn prdt_entries() {
        let p = prdt(&[(0x10000, 0x2000), (0x8000_0000, 512)], 8).unwrap();
        assert_eq!(p, [[0x10000, 0, 0, 0x1fff], [0x8000_0000, 0, 0, 511]]);
        // Cut at 4 MiB.
        let p = prdt(&[(0x1_0000_0000, 9 << 20)], 8).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[0], [0, 1, 0, (4 << 20) - 1]);
        assert_eq!(p[1], [4 << 20, 1, 0, (4 << 20) - 1]);
        assert_eq!(p[2], [8 << 20, 1, 0, (1 << 20) - 1]);
        assert_eq!(prdt(&[(0x1001, 512)], 8), Err(FisError::Alignment));
        assert_eq!(prdt(&[(0x1000, 511)], 8), Err(FisError::Alignment));
        assert_eq!(prdt(&[(0, 2); 3], 2), Err(FisError::TooManySegments));
        assert_eq!(prdt(&[], 2), Ok(Vec::new()));
    }
}
