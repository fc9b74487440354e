//! The ATA IDENTIFY DEVICE data: what a SATA disk says about itself, read
//! with care (the integrity word is checked when present, sizes must be
//! sane, the disk must speak LBA). Pure, so unit-tested on the host.

use crate::ident::ata_string;
use alloc::format;
use alloc::string::String;

/// The parts of IDENTIFY this driver uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Model (words 27..47).
    pub model: String,
    /// Serial number (words 10..20).
    pub serial: String,
    /// Firmware revision (words 23..27).
    pub firmware: String,
    /// Addressable logical sectors.
    pub sectors: u64,
    /// Bytes per logical sector.
    pub sector_size: u32,
    /// Whether 48-bit commands are supported.
    pub lba48: bool,
}

/// Decode the 256 IDENTIFY words.
pub fn parse(w: &[u16; 256]) -> Result<Identity, String> {
    // Word 255: signature 0xa5 in the low byte, then a checksum that makes
    // all 512 bytes sum to zero.
    if w[255] & 0xff == 0xa5 {
        let sum = w.iter().fold(0u8, |s, x| s.wrapping_add(*x as u8).wrapping_add((*x >> 8) as u8));
        if sum != 0 {
            return Err(format!("IDENTIFY checksum mismatch ({sum:#x})"));
        }
    }
    if w[0] & 0x8000 != 0 {
        return Err(String::from("not an ATA device (IDENTIFY word 0)"));
    }
    if w[49] & (1 << 9) == 0 {
        return Err(String::from("the disk does not support LBA"));
    }
    let lba48 = w[83] & (1 << 10) != 0 && w[83] & 0xc000 == 0x4000;
    let sectors = if lba48 {
        (w[100] as u64) | (w[101] as u64) << 16 | (w[102] as u64) << 32 | (w[103] as u64) << 48
    } else {
        (w[60] as u64) | (w[61] as u64) << 16
    };
    if sectors == 0 || sectors >> 48 != 0 {
        return Err(format!("implausible capacity of {sectors} sectors"));
    }
    // Word 106 valid (bit 14 set, 15 clear) with "logical sector longer
    // than 256 words" (bit 12): words 117..119 give its size in words.
    let sector_size = if w[106] & 0xc000 == 0x4000 && w[106] & (1 << 12) != 0 {
        let words = (w[117] as u32) | (w[118] as u32) << 16;
        match words.checked_mul(2) {
            Some(b) if b.is_power_of_two() && (512..=65536).contains(&b) => b,
            _ => return Err(format!("implausible logical sector size of {words} words")),
        }
    } else {
        512
    };
    Ok(Identity {
        model: ata_string(&w[27..47]),
        serial: ata_string(&w[10..20]),
        firmware: ata_string(&w[23..27]),
        sectors,
        sector_size,
        lba48,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(w: &mut [u16; 256], at: usize, s: &str, words: usize) {
        let mut b = alloc::vec::Vec::from(s.as_bytes());
        b.resize(words * 2, b' ');
        for i in 0..words {
            w[at + i] = u16::from_be_bytes([b[2 * i], b[2 * i + 1]]);
        }
    }

    /// What QEMU's ide-hd answers for a 64 MiB disk with a serial.
    fn qemu_disk() -> [u16; 256] {
        let mut w = [0u16; 256];
        w[0] = 0x0040;
        put(&mut w, 10, "kintsugi-disk1", 10);
        put(&mut w, 23, "2.5+", 4);
        put(&mut w, 27, "QEMU HARDDISK", 20);
        w[49] = 1 << 9 | 1 << 8;
        w[60] = 0;
        w[61] = 2; // 131072 sectors
        w[83] = 0x4000 | 1 << 10 | 1 << 13;
        w[100] = 0;
        w[101] = 2;
        w
    }

    fn seal(w: &mut [u16; 256]) {
        w[255] = 0xa5;
        let sum = w.iter().fold(0u8, |s, x| s.wrapping_add(*x as u8).wrapping_add((*x >> 8) as u8));
        w[255] |= (0u8.wrapping_sub(sum) as u16) << 8;
    }

    #[test]
    fn decodes_a_qemu_disk() {
        let id = parse(&qemu_disk()).unwrap();
        assert_eq!(id.model, "QEMU HARDDISK");
        assert_eq!(id.serial, "kintsugi-disk1");
        assert_eq!(id.firmware, "2.5+");
        assert_eq!((id.sectors, id.sector_size, id.lba48), (131072, 512, true));
    }

    #[test]
    fn checksum_is_checked_when_present() {
        let mut w = qemu_disk();
        seal(&mut w);
        assert!(parse(&w).is_ok());
        w[100] = 7;
        assert!(parse(&w).unwrap_err().contains("checksum"));
    }

    #[test]
    fn lba28_and_large_sectors() {
        let mut w = qemu_disk();
        w[83] = 0x4000; // no 48-bit
        w[60] = 0x1000;
        w[61] = 0;
        let id = parse(&w).unwrap();
        assert_eq!((id.sectors, id.lba48), (0x1000, false));
        let mut w = qemu_disk();
        w[106] = 0x4000 | 1 << 12;
        w[117] = 2048; // 4096-byte sectors
        assert_eq!(parse(&w).unwrap().sector_size, 4096);
        w[117] = 3;
        assert!(parse(&w).is_err());
    }

    #[test]
    fn refuses_nonsense() {
        let mut w = qemu_disk();
        w[49] = 0;
        assert!(parse(&w).is_err(), "no LBA");
        let mut w = qemu_disk();
        w[101] = 0;
        assert!(parse(&w).is_err(), "zero capacity");
        let mut w = qemu_disk();
        w[0] = 0x8000;
        assert!(parse(&w).is_err(), "ATAPI");
        assert!(parse(&[0xffff; 256]).is_err(), "a floating bus");
    }
}
