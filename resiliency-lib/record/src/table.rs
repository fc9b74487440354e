//! The vault's pool table: which region of the pool file holds which
//! service's two checkpoint slots and its request log.
//!
//! The vault keeps everything in one preallocated file on the checkpoint
//! disk, `/KINTSUGI/POOL.DAT` (the *pool*), so that creating a service's
//! slots, growing a slot or creating a log never changes the FAT: it only
//! writes a new table. The pool's first [`TABLE_SECTORS`] sectors hold
//! table copy 0, the next [`TABLE_SECTORS`] copy 1; a new table (with the
//! next generation) always goes to the copy that does not hold the newest
//! valid one, so a torn table write leaves the previous table in force.
//! Regions are counted in pool sectors (512 bytes) from the start of the
//! pool file.
//!
//! # Layout of a table copy (version 2, little-endian)
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 8 | magic `KNTSGTAB` |
//! | 8 | 2 | format version (2) |
//! | 10 | 2 | flags (0) |
//! | 12 | 4 | number of services N (at most [`MAX_SERVICES`]) |
//! | 16 | 8 | table generation (one more with every table written) |
//! | 24 | 8 | pool size in sectors |
//! | 32 | 4 | CRC-32 of bytes 0..56 + 128 N, this field taken as zero |
//! | 36 | 4 | zero |
//! | 40 | 8 | the boot number the vault gave the machine boot below |
//! | 48 | 8 | that machine boot's identity (the kernel's `boot_id`; 0: unknown) |
//! | 56 | 128 N | the services, sorted by name |
//!
//! The boot number is kept here so that it moves once per machine boot,
//! not at every restart of the vault's process: a vault that opens the
//! disk within the boot the table names takes that boot's number again.
//! Version 1 (still read) had no boot fields and its services at offset 40.
//!
//! One service (128 bytes): name length (1 byte, 1 to 64), 7 zero bytes,
//! the name (64 bytes, zero-padded), then three regions as `start: u64,
//! sectors: u64`: slot 0, slot 1 and the log; 8 zero bytes. A valid table
//! has regions inside the pool after the two table copies that do not
//! overlap.

use crate::MAX_NAME;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// The first eight bytes of a table copy.
pub const MAGIC: [u8; 8] = *b"KNTSGTAB";
/// The format version this crate writes (it reads 1 as well).
pub const VERSION: u16 = 2;
/// Sectors of one table copy.
pub const TABLE_SECTORS: u64 = 64;
/// Bytes per pool sector.
pub const SECTOR: usize = 512;
/// Bytes of the table header.
pub const HEADER_LEN: usize = 56;
/// Bytes of a version 1 table's header.
const HEADER_LEN_V1: usize = 40;
/// Bytes per service.
pub const ENTRY_LEN: usize = 128;
/// Most services one table holds.
pub const MAX_SERVICES: usize = (TABLE_SECTORS as usize * SECTOR - HEADER_LEN) / ENTRY_LEN;
/// The first pool sector a region may use (after both table copies).
pub const FIRST_REGION_SECTOR: u64 = 2 * TABLE_SECTORS;

/// A run of pool sectors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Region {
    /// First pool sector.
    pub start: u64,
    /// Number of sectors.
    pub sectors: u64,
}

impl Region {
    /// One past the last sector.
    pub fn end(&self) -> u64 {
        self.start + self.sectors
    }

    /// Bytes in the region.
    pub fn bytes(&self) -> u64 {
        self.sectors * SECTOR as u64
    }
}

/// One service's regions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allotment {
    /// The service (the identity of the program whose state it is).
    pub service: String,
    /// Its two checkpoint slots.
    pub slots: [Region; 2],
    /// Its request log.
    pub log: Region,
}

impl Allotment {
    /// The three regions: slot 0, slot 1, log.
    pub fn regions(&self) -> [Region; 3] {
        [self.slots[0], self.slots[1], self.log]
    }
}

/// A table: every service's regions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    /// Increases with every table written.
    pub generation: u64,
    /// The pool's size in sectors.
    pub pool_sectors: u64,
    /// The boot number of the machine boot `boot_id` names (0: none yet).
    pub boot: u64,
    /// The machine boot the vault last numbered (0: unknown).
    pub boot_id: u64,
    /// The services, sorted by name.
    pub services: Vec<Allotment>,
}

/// Why bytes are not a valid table copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TableError {
    /// All zeros: never written.
    Empty,
    /// Fewer bytes than a table copy.
    Truncated,
    /// Not the table magic.
    BadMagic,
    /// A version this crate does not read.
    UnsupportedVersion(u16),
    /// The bytes do not match the checksum.
    Checksum {
        /// Stored.
        stored: u32,
        /// Computed.
        computed: u32,
    },
    /// A field with a value the format does not allow.
    BadField(&'static str),
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableError::Empty => f.write_str("empty (never written)"),
            TableError::Truncated => f.write_str("truncated"),
            TableError::BadMagic => f.write_str("bad magic"),
            TableError::UnsupportedVersion(v) => write!(f, "unsupported format version {v}"),
            TableError::Checksum { stored, computed } => {
                write!(f, "checksum mismatch: stored {stored:08x}, computed {computed:08x}")
            }
            TableError::BadField(what) => write!(f, "bad field: {what}"),
        }
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut v = [0u8; 4];
    v.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(v)
}

fn checksum(bytes: &[u8], used: usize) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&bytes[..32]);
    h.update(&[0; 4]);
    h.update(&bytes[36..used]);
    h.finalize()
}

/// Whether `name` can name a service: 1 to 64 ASCII letters, digits, `-`,
/// `_` or `.`, not starting with `.`.
pub fn valid_service_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

impl Table {
    /// Check the table's own consistency: names valid, sorted and unique,
    /// regions non-empty, inside the pool after the table copies, and not
    /// overlapping.
    pub fn check(&self) -> Result<(), TableError> {
        if self.services.len() > MAX_SERVICES {
            return Err(TableError::BadField("too many services"));
        }
        if self.pool_sectors < FIRST_REGION_SECTOR {
            return Err(TableError::BadField("pool smaller than its tables"));
        }
        let mut regions: Vec<Region> = Vec::with_capacity(self.services.len() * 3);
        for (i, a) in self.services.iter().enumerate() {
            if !valid_service_name(&a.service) {
                return Err(TableError::BadField("service name"));
            }
            if i > 0 && self.services[i - 1].service >= a.service {
                return Err(TableError::BadField("services not sorted or repeated"));
            }
            for r in a.regions() {
                if r.sectors == 0 || r.start < FIRST_REGION_SECTOR || r.start.checked_add(r.sectors).is_none() {
                    return Err(TableError::BadField("region"));
                }
                if r.end() > self.pool_sectors {
                    return Err(TableError::BadField("region past the end of the pool"));
                }
                regions.push(r);
            }
        }
        regions.sort();
        if regions.windows(2).any(|w| w[0].end() > w[1].start) {
            return Err(TableError::BadField("overlapping regions"));
        }
        Ok(())
    }

    /// The table as one table copy ([`TABLE_SECTORS`] sectors).
    pub fn encode(&self) -> Result<Vec<u8>, TableError> {
        self.check()?;
        let mut b = vec![0u8; TABLE_SECTORS as usize * SECTOR];
        b[..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&(self.services.len() as u32).to_le_bytes());
        b[16..24].copy_from_slice(&self.generation.to_le_bytes());
        b[24..32].copy_from_slice(&self.pool_sectors.to_le_bytes());
        b[40..48].copy_from_slice(&self.boot.to_le_bytes());
        b[48..56].copy_from_slice(&self.boot_id.to_le_bytes());
        for (i, a) in self.services.iter().enumerate() {
            let e = &mut b[HEADER_LEN + i * ENTRY_LEN..HEADER_LEN + (i + 1) * ENTRY_LEN];
            e[0] = a.service.len() as u8;
            e[8..8 + a.service.len()].copy_from_slice(a.service.as_bytes());
            for (j, r) in a.regions().iter().enumerate() {
                e[72 + 16 * j..80 + 16 * j].copy_from_slice(&r.start.to_le_bytes());
                e[80 + 16 * j..88 + 16 * j].copy_from_slice(&r.sectors.to_le_bytes());
            }
        }
        let used = HEADER_LEN + self.services.len() * ENTRY_LEN;
        let crc = checksum(&b, used);
        b[32..36].copy_from_slice(&crc.to_le_bytes());
        Ok(b)
    }

    /// Read and check a table copy.
    pub fn decode(b: &[u8]) -> Result<Table, TableError> {
        if b.len() < TABLE_SECTORS as usize * SECTOR {
            return Err(TableError::Truncated);
        }
        if b[..HEADER_LEN].iter().all(|&x| x == 0) {
            return Err(TableError::Empty);
        }
        if b[..8] != MAGIC {
            return Err(TableError::BadMagic);
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        let header_len = match version {
            1 => HEADER_LEN_V1,
            VERSION => HEADER_LEN,
            _ => return Err(TableError::UnsupportedVersion(version)),
        };
        let count = u32_at(b, 12) as usize;
        if count > MAX_SERVICES {
            return Err(TableError::BadField("number of services"));
        }
        let used = header_len + count * ENTRY_LEN;
        let (stored, computed) = (u32_at(b, 32), checksum(b, used));
        if stored != computed {
            return Err(TableError::Checksum { stored, computed });
        }
        if b[10..12] != [0, 0] || b[36..40] != [0; 4] {
            return Err(TableError::BadField("flags"));
        }
        let mut services = Vec::with_capacity(count);
        for i in 0..count {
            let e = &b[header_len + i * ENTRY_LEN..header_len + (i + 1) * ENTRY_LEN];
            let len = e[0] as usize;
            if len == 0 || len > MAX_NAME {
                return Err(TableError::BadField("service name length"));
            }
            let service =
                core::str::from_utf8(&e[8..8 + len]).map_err(|_| TableError::BadField("service name"))?.into();
            let region = |j: usize| Region { start: u64_at(e, 72 + 16 * j), sectors: u64_at(e, 80 + 16 * j) };
            services.push(Allotment { service, slots: [region(0), region(1)], log: region(2) });
        }
        let (boot, boot_id) = if version == 1 { (0, 0) } else { (u64_at(b, 40), u64_at(b, 48)) };
        let t = Table { generation: u64_at(b, 16), pool_sectors: u64_at(b, 24), boot, boot_id, services };
        t.check()?;
        Ok(t)
    }

    /// The service's regions.
    pub fn get(&self, service: &str) -> Option<&Allotment> {
        self.services.iter().find(|a| a.service == service)
    }

    /// Every region in use, sorted.
    pub fn used(&self) -> Vec<Region> {
        let mut v: Vec<Region> = self.services.iter().flat_map(|a| a.regions()).collect();
        v.sort();
        v
    }

    /// The first free run of `sectors` sectors (aligned to `align`
    /// sectors), if the pool has one.
    pub fn find_free(&self, sectors: u64, align: u64) -> Option<Region> {
        self.find_free_avoiding(sectors, align, &[])
    }

    /// The first run of `sectors` sectors (aligned to `align` sectors) that
    /// is free and overlaps none of `also` (regions about to be taken).
    pub fn find_free_avoiding(&self, sectors: u64, align: u64, also: &[Region]) -> Option<Region> {
        let align = align.max(1);
        let mut taken = self.used();
        taken.extend_from_slice(also);
        taken.sort();
        let mut at = FIRST_REGION_SECTOR.next_multiple_of(align);
        for r in taken {
            if at.checked_add(sectors)? <= r.start {
                return Some(Region { start: at, sectors });
            }
            at = at.max(r.end().next_multiple_of(align));
        }
        (at.checked_add(sectors)? <= self.pool_sectors).then_some(Region { start: at, sectors })
    }

    /// Sectors not in any region (after the table copies).
    pub fn free_sectors(&self) -> u64 {
        let used: u64 = self.services.iter().flat_map(|a| a.regions()).map(|r| r.sectors).sum();
        self.pool_sectors.saturating_sub(FIRST_REGION_SECTOR).saturating_sub(used)
    }

    /// Put `a` in (replacing the service's regions, keeping names sorted).
    pub fn set(&mut self, a: Allotment) {
        match self.services.binary_search_by(|x| x.service.as_str().cmp(&a.service)) {
            Ok(i) => self.services[i] = a,
            Err(i) => self.services.insert(i, a),
        }
    }
}

/// Which of two table copies is in force: the valid one with the higher
/// generation (copy index and table), or None if neither is valid.
pub fn newest(copies: [Result<Table, TableError>; 2]) -> Option<(usize, Table)> {
    let [a, b] = copies;
    match (a, b) {
        (Ok(a), Ok(b)) => Some(if b.generation > a.generation { (1, b) } else { (0, a) }),
        (Ok(a), Err(_)) => Some((0, a)),
        (Err(_), Ok(b)) => Some((1, b)),
        (Err(_), Err(_)) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn sample() -> Table {
        let r = |s, n| Region { start: s, sectors: n };
        Table {
            generation: 7,
            pool_sectors: 10_000,
            boot: 12,
            boot_id: 0x1234_5678_9abc_def0,
            services: vec![
                Allotment { service: "kv".to_string(), slots: [r(128, 100), r(228, 100)], log: r(328, 50) },
                Allotment { service: "tally".to_string(), slots: [r(400, 8), r(500, 8)], log: r(9000, 1000) },
            ],
        }
    }

    #[test]
    fn round_trip() {
        let t = sample();
        let b = t.encode().unwrap();
        assert_eq!(b.len(), TABLE_SECTORS as usize * SECTOR);
        assert_eq!(Table::decode(&b).unwrap(), t);
        assert_eq!(Table::decode(&vec![0; b.len()]), Err(TableError::Empty));
        assert_eq!(Table::decode(&b[..100]), Err(TableError::Truncated));
    }

    #[test]
    fn version_1_tables_are_read_without_boot_fields() {
        let t = sample();
        let v2 = t.encode().unwrap();
        // The same table as version 1 wrote it: services at 40, no boot fields.
        let mut v1 = vec![0u8; v2.len()];
        v1[..32].copy_from_slice(&v2[..32]);
        v1[8..10].copy_from_slice(&1u16.to_le_bytes());
        v1[40..40 + 2 * ENTRY_LEN].copy_from_slice(&v2[HEADER_LEN..HEADER_LEN + 2 * ENTRY_LEN]);
        let mut h = crc32fast::Hasher::new();
        h.update(&v1[..32]);
        h.update(&[0; 4]);
        h.update(&v1[36..40 + 2 * ENTRY_LEN]);
        v1[32..36].copy_from_slice(&h.finalize().to_le_bytes());
        let read = Table::decode(&v1).unwrap();
        assert_eq!(read, Table { boot: 0, boot_id: 0, ..t });
        let mut v3 = v2.clone();
        v3[8] = 3;
        assert_eq!(Table::decode(&v3), Err(TableError::UnsupportedVersion(3)));
    }

    #[test]
    fn every_changed_byte_of_the_used_part_is_detected() {
        let t = sample();
        let b = t.encode().unwrap();
        let used = HEADER_LEN + 2 * ENTRY_LEN;
        for i in 0..used {
            let mut d = b.clone();
            d[i] ^= 0x01;
            assert!(Table::decode(&d).is_err(), "byte {i}");
        }
    }

    #[test]
    fn bad_tables_are_refused() {
        let mut t = sample();
        t.services[1].slots[0].start = 150; // overlaps kv's slot 0
        assert_eq!(t.encode(), Err(TableError::BadField("overlapping regions")));
        let mut t = sample();
        t.services[0].log.start = 9_990;
        assert!(t.encode().is_err(), "past the end");
        let mut t = sample();
        t.services[0].slots[1].start = 10;
        assert!(t.encode().is_err(), "inside the tables");
        let mut t = sample();
        t.services.swap(0, 1);
        assert!(t.encode().is_err(), "unsorted");
        let mut t = sample();
        t.services[0].service = "a/b".to_string();
        assert!(t.encode().is_err(), "bad name");
    }

    #[test]
    fn free_space_is_found_between_regions() {
        let t = sample();
        // Gaps: 378..400, 408..500, 508..9000.
        assert_eq!(t.find_free(22, 1), Some(Region { start: 378, sectors: 22 }));
        assert_eq!(t.find_free(50, 1), Some(Region { start: 408, sectors: 50 }));
        assert_eq!(t.find_free(16, 8), Some(Region { start: 384, sectors: 16 }), "aligned");
        assert_eq!(t.find_free(72, 8), Some(Region { start: 408, sectors: 72 }));
        assert_eq!(t.find_free(100, 8), Some(Region { start: 512, sectors: 100 }));
        assert_eq!(t.find_free(8_488, 8), Some(Region { start: 512, sectors: 8_488 }));
        assert_eq!(t.find_free(8_489, 8), None);
        let also = [Region { start: 384, sectors: 16 }, Region { start: 520, sectors: 10 }];
        assert_eq!(t.find_free_avoiding(16, 8, &also), Some(Region { start: 408, sectors: 16 }));
        assert_eq!(t.find_free_avoiding(100, 8, &also), Some(Region { start: 536, sectors: 100 }));
        let empty = Table { generation: 1, pool_sectors: 1000, services: Vec::new(), ..Table::default() };
        assert_eq!(empty.find_free(872, 8), Some(Region { start: 128, sectors: 872 }));
        assert_eq!(empty.find_free(873, 8), None);
        assert_eq!(empty.free_sectors(), 872);
        assert_eq!(t.free_sectors(), 10_000 - 128 - 200 - 50 - 16 - 1000);
    }

    #[test]
    fn the_newest_valid_copy_wins() {
        let a = sample();
        let mut b = sample();
        b.generation = 8;
        assert_eq!(newest([Ok(a.clone()), Ok(b.clone())]).unwrap().0, 1);
        assert_eq!(newest([Ok(b.clone()), Ok(a.clone())]).unwrap().0, 0);
        assert_eq!(newest([Err(TableError::Empty), Ok(a.clone())]).unwrap(), (1, a.clone()));
        assert_eq!(newest([Ok(a.clone()), Err(TableError::BadMagic)]).unwrap(), (0, a));
        assert!(newest([Err(TableError::Empty), Err(TableError::Empty)]).is_none());
    }

    #[test]
    fn set_keeps_names_sorted() {
        let mut t = sample();
        let r = |s| Region { start: s, sectors: 4 };
        t.set(Allotment { service: "fs".to_string(), slots: [r(600), r(604)], log: r(608) });
        let names: Vec<&str> = t.services.iter().map(|a| a.service.as_str()).collect();
        assert_eq!(names, ["fs", "kv", "tally"]);
        t.set(Allotment { service: "kv".to_string(), slots: [r(700), r(704)], log: r(708) });
        assert_eq!(t.get("kv").unwrap().slots[0].start, 700);
        assert_eq!(Table::decode(&t.encode().unwrap()).unwrap(), t);
    }
}
