//! Decoding the identification strings devices report: ATA IDENTIFY
//! strings (two ASCII characters per 16-bit word, the first in the high
//! byte, padded with spaces) and the virtio-blk `GET_ID` string (up to 20
//! bytes, NUL-padded). Whatever the device sends, the result is printable
//! ASCII (other bytes become `?`) without leading or trailing padding.

use alloc::string::String;
use alloc::vec::Vec;

/// Printable ASCII of `bytes`, cut at the first NUL, trimmed.
pub fn ascii(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let s: String = bytes[..end].iter().map(|&b| if (0x20..0x7f).contains(&b) { b as char } else { '?' }).collect();
    String::from(s.trim())
}

/// An ATA string from IDENTIFY words (byte-swapped within each word).
pub fn ata_string(words: &[u16]) -> String {
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
    ascii(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &[u8]) -> Vec<u16> {
        s.chunks(2).map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&b' ')])).collect()
    }

    #[test]
    fn ata_strings_are_swapped_and_trimmed() {
        assert_eq!(ata_string(&words(b"QEMU HARDDISK                           ")), "QEMU HARDDISK");
        assert_eq!(ata_string(&words(b"  kintsugi-disk1    ")), "kintsugi-disk1");
        // As the words really sit in memory (little endian): "EQUM".
        assert_eq!(ata_string(&[u16::from_le_bytes(*b"EQ"), u16::from_le_bytes(*b"UM")]), "QEMU");
        assert_eq!(ata_string(&[0x4100, 0x01ff]), "A");
        assert_eq!(ata_string(&[0x41ff, 0x4243]), "A?BC");
        assert_eq!(ata_string(&[]), "");
    }

    #[test]
    fn virtio_ids_stop_at_nul() {
        let mut id = [0u8; 20];
        id[..14].copy_from_slice(b"kintsugi-disk0");
        assert_eq!(ascii(&id), "kintsugi-disk0");
        assert_eq!(ascii(b"01234567890123456789"), "01234567890123456789");
        assert_eq!(ascii(&[0xc3, b'x', 0x07]), "?x?");
        assert_eq!(ascii(&[0; 20]), "");
    }
}
