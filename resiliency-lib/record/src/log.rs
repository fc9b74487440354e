//! The vault's request log: per service, the opaque entries a companion
//! appended since the service's newest committed checkpoint (DESIGN.md
//! 5.6, durable requests), kept in the service's log region of the pool and
//! written in place.
//!
//! # Layout
//!
//! Entries follow each other from the start of the region, each starting
//! on a sector boundary: a 32-byte header, the data, zeros to the end of
//! the sector. Integers little-endian.
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 4 | magic `KLOG` |
//! | 4 | 2 | format version (1) |
//! | 6 | 2 | zero |
//! | 8 | 8 | generation: the checkpoint the entry follows (0: none yet) |
//! | 16 | 8 | index: 0 for the first entry after that checkpoint, then 1, 2... |
//! | 24 | 4 | data length |
//! | 28 | 4 | CRC-32 of bytes 0..28 and the data |
//!
//! A reader of generation `g` takes entries from the start of the region
//! while each has the magic, generation `g`, the next index, a length that
//! fits, and a matching checksum; it stops at the first that does not. So a
//! torn append (some of its sectors on the disk, not all) ends the log
//! cleanly, and entries left from an older generation (a commit resets the
//! log: the next generation's entries start again at the region's start)
//! never come back.
//!
//! [`encode_list`] / [`decode_list`] carry a list of entries in one byte
//! string (each a `u32` length then the bytes), as the vault hands them
//! over with a checkpoint.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// The first four bytes of an entry.
pub const MAGIC: [u8; 4] = *b"KLOG";
/// The format version this crate writes and reads.
pub const VERSION: u16 = 1;
/// Bytes of an entry's header.
pub const HEADER_LEN: usize = 32;
/// Bytes per sector.
pub const SECTOR: usize = 512;

/// Bytes an entry of `len` data bytes takes in the region (whole sectors).
pub fn entry_bytes(len: usize) -> usize {
    (HEADER_LEN + len).next_multiple_of(SECTOR)
}

fn crc_of(header: &[u8], data: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&header[..28]);
    h.update(data);
    h.finalize()
}

/// Entry `index` of generation `generation` holding `data`, padded to
/// whole sectors.
pub fn encode_entry(generation: u64, index: u64, data: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; entry_bytes(data.len())];
    b[..4].copy_from_slice(&MAGIC);
    b[4..6].copy_from_slice(&VERSION.to_le_bytes());
    b[8..16].copy_from_slice(&generation.to_le_bytes());
    b[16..24].copy_from_slice(&index.to_le_bytes());
    b[24..28].copy_from_slice(&(data.len() as u32).to_le_bytes());
    b[HEADER_LEN..HEADER_LEN + data.len()].copy_from_slice(data);
    let crc = crc_of(&b[..HEADER_LEN], data);
    b[28..32].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Why the log ends where it does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// The region is full up to its end.
    Full,
    /// No entry header here (never written, or another format).
    NoEntry,
    /// An entry of another generation (left from before the last commit).
    OtherGeneration(u64),
    /// An entry of this generation with the wrong index (left from an
    /// append that was never completed).
    WrongIndex(u64),
    /// An entry whose length runs past the region.
    TooLong,
    /// An entry whose bytes do not match its checksum (a torn append).
    Checksum,
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            End::Full => f.write_str("the region is full"),
            End::NoEntry => f.write_str("no entry follows"),
            End::OtherGeneration(g) => write!(f, "an entry of generation {g} follows"),
            End::WrongIndex(i) => write!(f, "an entry with index {i} follows"),
            End::TooLong => f.write_str("an entry runs past the region"),
            End::Checksum => f.write_str("a torn entry follows (checksum mismatch)"),
        }
    }
}

/// The entries of one generation found in a region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scan {
    /// Where each entry's data is: `(offset, length)` in the region.
    pub entries: Vec<(usize, usize)>,
    /// Bytes the entries take (the next entry goes here).
    pub end: usize,
    /// Why the log ends there.
    pub stop: End,
}

impl Scan {
    /// The entries' data.
    pub fn data<'a>(&self, region: &'a [u8]) -> Vec<&'a [u8]> {
        self.entries.iter().map(|&(at, len)| &region[at..at + len]).collect()
    }

    /// Bytes of entry data (headers and padding not counted).
    pub fn data_bytes(&self) -> u64 {
        self.entries.iter().map(|&(_, len)| len as u64).sum()
    }
}

/// The entries of generation `generation` at the start of `region` (a
/// whole number of sectors), in order.
pub fn scan(region: &[u8], generation: u64) -> Scan {
    let mut entries = Vec::new();
    let mut at = 0usize;
    let stop = loop {
        if at + HEADER_LEN > region.len() {
            break End::Full;
        }
        let h = &region[at..at + HEADER_LEN];
        if h[..4] != MAGIC || u16::from_le_bytes([h[4], h[5]]) != VERSION {
            break End::NoEntry;
        }
        let g = u64::from_le_bytes(h[8..16].try_into().unwrap_or([0; 8]));
        let index = u64::from_le_bytes(h[16..24].try_into().unwrap_or([0; 8]));
        let len = u32::from_le_bytes(h[24..28].try_into().unwrap_or([0; 4])) as usize;
        let stored = u32::from_le_bytes(h[28..32].try_into().unwrap_or([0; 4]));
        if g != generation {
            break End::OtherGeneration(g);
        }
        if index != entries.len() as u64 {
            break End::WrongIndex(index);
        }
        if at + entry_bytes(len) > region.len() {
            break End::TooLong;
        }
        let data = &region[at + HEADER_LEN..at + HEADER_LEN + len];
        if crc_of(h, data) != stored {
            break End::Checksum;
        }
        entries.push((at + HEADER_LEN, len));
        at += entry_bytes(len);
    };
    Scan { entries, end: at, stop }
}

/// Entries as one byte string: per entry a `u32` length, then the bytes.
pub fn encode_list<T: AsRef<[u8]>>(entries: &[T]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.iter().map(|e| 4 + e.as_ref().len()).sum());
    for e in entries {
        out.extend_from_slice(&(e.as_ref().len() as u32).to_le_bytes());
        out.extend_from_slice(e.as_ref());
    }
    out
}

/// The entries of [`encode_list`]'s byte string, checked to be exactly
/// `count` of them.
pub fn decode_list(bytes: &[u8], count: u64) -> Result<Vec<Vec<u8>>, &'static str> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let len = bytes.get(at..at + 4).ok_or("a truncated length")?;
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let data = bytes.get(at + 4..at + 4 + len).ok_or("an entry past the end")?;
        out.push(data.to_vec());
        at += 4 + len;
    }
    if out.len() as u64 != count {
        return Err("a different number of entries than announced");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region_with(entries: &[(u64, u64, &[u8])], sectors: usize) -> Vec<u8> {
        let mut r = vec![0u8; sectors * SECTOR];
        let mut at = 0;
        for &(g, i, d) in entries {
            let e = encode_entry(g, i, d);
            r[at..at + e.len()].copy_from_slice(&e);
            at += e.len();
        }
        r
    }

    #[test]
    fn entries_of_the_generation_are_found_in_order() {
        let big = vec![7u8; 700];
        let r = region_with(&[(3, 0, b"one"), (3, 1, &big), (3, 2, b"")], 16);
        let s = scan(&r, 3);
        assert_eq!(s.data(&r), [&b"one"[..], &big[..], &b""[..]]);
        assert_eq!(s.end, 512 + 1024 + 512);
        assert_eq!(s.stop, End::NoEntry);
        assert_eq!(s.data_bytes(), 703);
        assert_eq!(entry_bytes(0), 512);
        assert_eq!(entry_bytes(480), 512);
        assert_eq!(entry_bytes(481), 1024);
    }

    #[test]
    fn older_generations_and_stale_entries_end_the_log() {
        // Generation 4 wrote two entries over generation 3's four.
        let mut r = region_with(&[(3, 0, b"a"), (3, 1, b"b"), (3, 2, b"c"), (3, 3, b"d")], 8);
        let new = region_with(&[(4, 0, b"x"), (4, 1, b"y")], 2);
        r[..1024].copy_from_slice(&new);
        let s = scan(&r, 4);
        assert_eq!(s.data(&r), [&b"x"[..], &b"y"[..]]);
        assert_eq!(s.stop, End::OtherGeneration(3));
        assert_eq!(scan(&r, 3).entries.len(), 0, "the older generation's log is gone");
        // An entry with a skipped index (a stale append) ends the log too.
        let r = region_with(&[(5, 0, b"a"), (5, 2, b"c")], 4);
        assert_eq!(scan(&r, 5).stop, End::WrongIndex(2));
        assert_eq!(scan(&r, 5).entries.len(), 1);
    }

    #[test]
    fn a_torn_entry_ends_the_log_at_every_byte() {
        let data = vec![0x5au8; 1500];
        let good = region_with(&[(1, 0, b"first"), (1, 1, &data)], 8);
        for i in 512..512 + HEADER_LEN + data.len() {
            let mut r = good.clone();
            r[i] ^= 0x40;
            let s = scan(&r, 1);
            assert_eq!(s.entries.len(), 1, "byte {i}");
            assert_eq!(s.end, 512);
        }
        // Sector by sector: only the first entry, or both.
        // The second entry takes sectors 1..4.
        for keep in 0..=3 {
            let mut r = good.clone();
            for sector in 1 + keep..4 {
                r[sector * SECTOR..(sector + 1) * SECTOR].fill(0);
            }
            let n = scan(&r, 1).entries.len();
            assert_eq!(n, if keep == 3 { 2 } else { 1 }, "{keep} sectors of the second entry");
        }
    }

    #[test]
    fn a_full_region_and_an_overlong_entry() {
        let r = region_with(&[(1, 0, b"a"), (1, 1, b"b")], 2);
        let s = scan(&r, 1);
        assert_eq!((s.entries.len(), s.stop), (2, End::Full));
        let mut r = region_with(&[(1, 0, &[1; 600])], 1 + 1);
        r.truncate(512);
        assert_eq!(scan(&r, 1).stop, End::TooLong);
    }

    #[test]
    fn lists_round_trip() {
        let entries: Vec<Vec<u8>> = vec![b"a".to_vec(), Vec::new(), vec![9; 300]];
        let b = encode_list(&entries);
        assert_eq!(b.len(), 4 * 3 + 301);
        assert_eq!(decode_list(&b, 3).unwrap(), entries);
        assert!(decode_list(&b, 2).is_err());
        assert!(decode_list(&b[..b.len() - 1], 3).is_err());
        assert_eq!(decode_list(&[], 0).unwrap(), Vec::<Vec<u8>>::new());
    }
}
