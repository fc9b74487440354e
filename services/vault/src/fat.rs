//! The checkpoint disk's FAT structures, raw: the boot sector's geometry
//! ([`Volume`]), allocation table entries (every copy kept the same),
//! cluster chains and directory entries, read and written through the
//! sector cache.
//!
//! fatfs mounts a file system and changes it through files and folders; it
//! does not expose these structures. The vault needs them for two jobs
//! fatfs does not do: checking the file system at start and repairing what
//! a power cut left ([`crate::repair`]), and giving the pool file its
//! clusters without writing every one of them ([`crate::pool`]). Written
//! by hand for that reason; FAT12, FAT16 and FAT32 with 512-byte sectors.

use crate::disk::{DiskError, SectorDisk, SECTOR};
use crate::fatio::BlockCache;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// The three FAT variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FatType {
    /// 12-bit entries.
    Fat12,
    /// 16-bit entries.
    Fat16,
    /// 28-bit entries in 32 bits.
    Fat32,
}

/// A FAT volume's geometry, from its boot sector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Volume {
    /// The variant.
    pub fat_type: FatType,
    /// Sectors per cluster.
    pub sectors_per_cluster: u64,
    /// First sector of the first allocation table.
    pub fat_lba: u64,
    /// Number of allocation tables.
    pub fats: u64,
    /// Sectors per allocation table.
    pub fat_sectors: u64,
    /// First sector of the fixed root folder (FAT12 and FAT16).
    pub root_lba: u64,
    /// Sectors of the fixed root folder (0 on FAT32).
    pub root_sectors: u64,
    /// First cluster of the root folder (FAT32).
    pub root_cluster: u32,
    /// First sector of cluster 2.
    pub data_lba: u64,
    /// Number of data clusters (clusters 2 to `clusters + 1`).
    pub clusters: u32,
    /// The FS information sector (FAT32).
    pub fsinfo_lba: Option<u64>,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Where an entry's value says its chain goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// The cluster is free.
    Free,
    /// The next cluster of the chain.
    Cluster(u32),
    /// The chain ends here.
    End,
    /// Marked bad.
    Bad,
    /// A value no chain may hold (reserved, or past the last cluster).
    Invalid(u32),
}

/// A cluster chain: its clusters in order, or how it is broken with the
/// clusters read before the break.
pub type Chain = Result<Vec<u32>, (Vec<u32>, String)>;

/// Sectors of the allocation table read at once in a scan.
pub const PREFETCH: u64 = 128;

/// Bytes of a directory entry.
pub const DIR_ENTRY: usize = 32;
/// Attribute: a folder.
pub const ATTR_DIRECTORY: u8 = 0x10;
/// Attribute: the volume label.
pub const ATTR_VOLUME: u8 = 0x08;
/// Attributes of a long-file-name entry.
pub const ATTR_LFN: u8 = 0x0f;

impl Volume {
    /// Read the geometry from a boot sector; why not, if it is not a FAT
    /// volume the vault can use.
    pub fn parse(b: &[u8]) -> Result<Volume, String> {
        if b.len() < SECTOR || b[510..512] != [0x55, 0xaa] {
            return Err(String::from("no boot signature"));
        }
        let bytes_per_sector = u16_at(b, 11);
        if bytes_per_sector as usize != SECTOR {
            return Err(format!("{bytes_per_sector}-byte sectors (the vault needs 512)"));
        }
        let spc = b[13] as u64;
        if spc == 0 || !spc.is_power_of_two() {
            return Err(format!("bad sectors per cluster {spc}"));
        }
        let reserved = u16_at(b, 14) as u64;
        let fats = b[16] as u64;
        let root_entries = u16_at(b, 17) as u64;
        let total = match u16_at(b, 19) {
            0 => u32_at(b, 32) as u64,
            n => n as u64,
        };
        let fat_sectors = match u16_at(b, 22) {
            0 => u32_at(b, 36) as u64,
            n => n as u64,
        };
        if reserved == 0 || fats == 0 || fat_sectors == 0 || total == 0 {
            return Err(String::from("bad boot sector fields"));
        }
        let root_sectors = (root_entries * DIR_ENTRY as u64).div_ceil(SECTOR as u64);
        let root_lba = reserved + fats * fat_sectors;
        let data_lba = root_lba + root_sectors;
        if data_lba >= total {
            return Err(String::from("no room for data"));
        }
        let clusters = (total - data_lba) / spc;
        let fat_type = match clusters {
            0..4085 => FatType::Fat12,
            4085..65525 => FatType::Fat16,
            _ => FatType::Fat32,
        };
        let clusters = u32::try_from(clusters.min(0x0fff_fff5)).unwrap_or(0x0fff_fff5);
        let fits = match fat_type {
            FatType::Fat12 => (clusters as u64 + 2) * 3 / 2,
            FatType::Fat16 => (clusters as u64 + 2) * 2,
            FatType::Fat32 => (clusters as u64 + 2) * 4,
        };
        if fits > fat_sectors * SECTOR as u64 {
            return Err(String::from("allocation table smaller than the volume"));
        }
        let (root_cluster, fsinfo_lba) = match fat_type {
            FatType::Fat32 => {
                let fsinfo = u16_at(b, 48) as u64;
                (u32_at(b, 44), (fsinfo != 0 && fsinfo != 0xffff && fsinfo < reserved).then_some(fsinfo))
            }
            _ => (0, None),
        };
        if fat_type == FatType::Fat32 && !(2..clusters + 2).contains(&root_cluster) {
            return Err(String::from("bad root cluster"));
        }
        Ok(Volume {
            fat_type,
            sectors_per_cluster: spc,
            fat_lba: reserved,
            fats,
            fat_sectors,
            root_lba,
            root_sectors,
            root_cluster,
            data_lba,
            clusters,
            fsinfo_lba,
        })
    }

    /// Bytes per cluster.
    pub fn cluster_bytes(&self) -> u64 {
        self.sectors_per_cluster * SECTOR as u64
    }

    /// First sector of cluster `c`.
    pub fn cluster_lba(&self, c: u32) -> u64 {
        self.data_lba + (c as u64 - 2) * self.sectors_per_cluster
    }

    /// The highest cluster number.
    pub fn last_cluster(&self) -> u32 {
        self.clusters + 1
    }

    /// The end-of-chain value this variant writes.
    pub fn end_of_chain(&self) -> u32 {
        match self.fat_type {
            FatType::Fat12 => 0xfff,
            FatType::Fat16 => 0xffff,
            FatType::Fat32 => 0x0fff_ffff,
        }
    }

    /// What an entry's value means.
    pub fn classify(&self, v: u32) -> Next {
        let (bad, end) = match self.fat_type {
            FatType::Fat12 => (0xff7, 0xff8),
            FatType::Fat16 => (0xfff7, 0xfff8),
            FatType::Fat32 => (0x0fff_fff7, 0x0fff_fff8),
        };
        match v {
            0 => Next::Free,
            v if v == bad => Next::Bad,
            v if v >= end => Next::End,
            v if (2..=self.last_cluster()).contains(&v) => Next::Cluster(v),
            v => Next::Invalid(v),
        }
    }

    /// Byte offset in the boot sector of the "dirty" flag byte.
    pub fn dirty_flag_offset(&self) -> usize {
        match self.fat_type {
            FatType::Fat32 => 0x41,
            _ => 0x25,
        }
    }

    /// Byte offset on the disk of entry `c` in allocation table `copy`.
    fn entry_offset(&self, c: u32, copy: u64) -> u64 {
        let base = (self.fat_lba + copy * self.fat_sectors) * SECTOR as u64;
        base + match self.fat_type {
            FatType::Fat12 => c as u64 + c as u64 / 2,
            FatType::Fat16 => c as u64 * 2,
            FatType::Fat32 => c as u64 * 4,
        }
    }

    /// The raw value of entry `c` (FAT32: the low 28 bits).
    pub fn entry<D: SectorDisk>(&self, cache: &mut BlockCache<D>, c: u32) -> Result<u32, DiskError> {
        self.entry_in(cache, c, 0)
    }

    fn entry_in<D: SectorDisk>(&self, cache: &mut BlockCache<D>, c: u32, copy: u64) -> Result<u32, DiskError> {
        let at = self.entry_offset(c, copy);
        Ok(match self.fat_type {
            FatType::Fat12 => {
                let mut b = [0u8; 2];
                cache.read_at(at, &mut b)?;
                let v = u16::from_le_bytes(b) as u32;
                if c % 2 == 1 {
                    v >> 4
                } else {
                    v & 0xfff
                }
            }
            FatType::Fat16 => {
                let mut b = [0u8; 2];
                cache.read_at(at, &mut b)?;
                u16::from_le_bytes(b) as u32
            }
            FatType::Fat32 => {
                let mut b = [0u8; 4];
                cache.read_at(at, &mut b)?;
                u32::from_le_bytes(b) & 0x0fff_ffff
            }
        })
    }

    /// Set entry `c` to `v` in every allocation table (into the cache:
    /// written back in disk order, so the first table before the others).
    pub fn set_entry<D: SectorDisk>(&self, cache: &mut BlockCache<D>, c: u32, v: u32) -> Result<(), DiskError> {
        for copy in 0..self.fats {
            let at = self.entry_offset(c, copy);
            match self.fat_type {
                FatType::Fat12 => {
                    let mut b = [0u8; 2];
                    cache.read_at(at, &mut b)?;
                    let old = u16::from_le_bytes(b);
                    let new = if c % 2 == 1 {
                        (old & 0x000f) | ((v as u16 & 0xfff) << 4)
                    } else {
                        (old & 0xf000) | (v as u16 & 0xfff)
                    };
                    cache.write_at(at, &new.to_le_bytes())?;
                }
                FatType::Fat16 => cache.write_at(at, &(v as u16).to_le_bytes())?,
                FatType::Fat32 => {
                    let mut b = [0u8; 4];
                    cache.read_at(at, &mut b)?;
                    let new = (u32::from_le_bytes(b) & 0xf000_0000) | (v & 0x0fff_ffff);
                    cache.write_at(at, &new.to_le_bytes())?;
                }
            }
        }
        Ok(())
    }

    /// Where entry `c` says its chain goes.
    pub fn next<D: SectorDisk>(&self, cache: &mut BlockCache<D>, c: u32) -> Result<Next, DiskError> {
        Ok(self.classify(self.entry(cache, c)?))
    }

    /// The clusters of the chain starting at `first`, in order; an error
    /// says how the chain is broken (a free, bad or invalid link, or a
    /// loop), with the clusters read before the break.
    pub fn chain<D: SectorDisk>(&self, cache: &mut BlockCache<D>, first: u32) -> Result<Chain, DiskError> {
        let mut out = Vec::new();
        if !(2..=self.last_cluster()).contains(&first) {
            return Ok(Err((out, format!("starts at cluster {first}, outside the volume"))));
        }
        let mut c = first;
        loop {
            out.push(c);
            if out.len() as u64 > self.clusters as u64 {
                return Ok(Err((out, String::from("loops"))));
            }
            match self.next(cache, c)? {
                Next::End => return Ok(Ok(out)),
                Next::Cluster(n) => c = n,
                Next::Free => return Ok(Err((out, format!("links cluster {c} to a free cluster")))),
                Next::Bad => return Ok(Err((out, format!("links cluster {c} to a bad cluster")))),
                Next::Invalid(v) => return Ok(Err((out, format!("cluster {c} holds the invalid link {v:#x}")))),
            }
        }
    }

    /// Before reading entry `c` in a scan of the whole table in order:
    /// read the next [`PREFETCH`] sectors of the first table in one request
    /// when `c` starts them.
    pub fn prefetch_for<D: SectorDisk>(&self, cache: &mut BlockCache<D>, c: u32) -> Result<(), DiskError> {
        let sector = |c: u64| {
            let byte = match self.fat_type {
                FatType::Fat12 => 3 * c / 2,
                FatType::Fat16 => 2 * c,
                FatType::Fat32 => 4 * c,
            };
            byte / SECTOR as u64
        };
        let s = sector(c as u64);
        if c <= 2 || (s != sector(c as u64 - 1) && s % PREFETCH == 0) {
            cache.prefetch(self.fat_lba + s, (PREFETCH + 1).min(self.fat_sectors.saturating_sub(s)))?;
        }
        Ok(())
    }

    /// Sector runs `(lba, count)` of a chain's clusters, adjacent ones
    /// merged.
    pub fn runs(&self, chain: &[u32]) -> Vec<(u64, u64)> {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for &c in chain {
            let lba = self.cluster_lba(c);
            match runs.last_mut() {
                Some((l, n)) if *l + *n == lba => *n += self.sectors_per_cluster,
                _ => runs.push((lba, self.sectors_per_cluster)),
            }
        }
        runs
    }

    /// The entries of a folder: the fixed root (`None`, FAT12/16) or the
    /// folder whose chain is `chain`. Deleted entries, long-name parts and
    /// the volume label are left out; `.` and `..` are included.
    pub fn dir_entries<D: SectorDisk>(
        &self,
        cache: &mut BlockCache<D>,
        chain: Option<&[u32]>,
    ) -> Result<Vec<DirEntry>, DiskError> {
        let mut sectors: Vec<u64> = Vec::new();
        match chain {
            None => sectors.extend(self.root_lba..self.root_lba + self.root_sectors),
            Some(chain) => {
                for &c in chain {
                    let lba = self.cluster_lba(c);
                    sectors.extend(lba..lba + self.sectors_per_cluster);
                }
            }
        }
        let mut out = Vec::new();
        let mut raw = [0u8; DIR_ENTRY];
        for lba in sectors {
            for i in 0..SECTOR / DIR_ENTRY {
                let at = lba * SECTOR as u64 + (i * DIR_ENTRY) as u64;
                cache.read_at(at, &mut raw)?;
                match raw[0] {
                    0 => return Ok(out),
                    0xe5 => continue,
                    _ => {}
                }
                let attr = raw[11];
                if attr & 0x3f == ATTR_LFN || (attr & ATTR_VOLUME != 0 && attr & ATTR_DIRECTORY == 0) {
                    continue;
                }
                let hi = if self.fat_type == FatType::Fat32 { u16_at(&raw, 20) as u32 } else { 0 };
                let mut name = [0u8; 11];
                name.copy_from_slice(&raw[..11]);
                out.push(DirEntry {
                    name,
                    attr,
                    first: (hi << 16) | u16_at(&raw, 26) as u32,
                    size: u32_at(&raw, 28),
                    at,
                });
            }
        }
        Ok(out)
    }

    /// Point the directory entry at byte `at` to `first` with `size` bytes
    /// (into the cache).
    pub fn set_dir_entry<D: SectorDisk>(
        &self,
        cache: &mut BlockCache<D>,
        at: u64,
        first: u32,
        size: u32,
    ) -> Result<(), DiskError> {
        let mut raw = [0u8; DIR_ENTRY];
        cache.read_at(at, &mut raw)?;
        if self.fat_type == FatType::Fat32 {
            raw[20..22].copy_from_slice(&((first >> 16) as u16).to_le_bytes());
        }
        raw[26..28].copy_from_slice(&(first as u16).to_le_bytes());
        raw[28..32].copy_from_slice(&size.to_le_bytes());
        cache.write_at(at, &raw)
    }
}

/// One directory entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// The short (8.3) name as stored: 8 + 3 bytes, space-padded.
    pub name: [u8; 11],
    /// Attributes.
    pub attr: u8,
    /// First cluster (0: none).
    pub first: u32,
    /// Size in bytes (files).
    pub size: u32,
    /// Byte offset of the entry on the disk.
    pub at: u64,
}

impl DirEntry {
    /// A folder.
    pub fn is_dir(&self) -> bool {
        self.attr & ATTR_DIRECTORY != 0
    }

    /// `.` or `..`.
    pub fn is_dot(&self) -> bool {
        self.name[0] == b'.'
    }

    /// The short name as `NAME.EXT`.
    pub fn short_name(&self) -> String {
        let base = core::str::from_utf8(&self.name[..8]).unwrap_or("?").trim_end();
        let ext = core::str::from_utf8(&self.name[8..]).unwrap_or("?").trim_end();
        if ext.is_empty() {
            String::from(base)
        } else {
            format!("{base}.{ext}")
        }
    }
}

/// `NAME.EXT` as a stored short name (upper case, space-padded), if it is
/// one.
pub fn short_name(name: &str) -> Option<[u8; 11]> {
    let (base, ext) = name.split_once('.').unwrap_or((name, ""));
    if base.is_empty() || base.len() > 8 || ext.len() > 3 {
        return None;
    }
    let mut out = [b' '; 11];
    for (i, b) in base.bytes().enumerate() {
        out[i] = b.to_ascii_uppercase();
    }
    for (i, b) in ext.bytes().enumerate() {
        out[8 + i] = b.to_ascii_uppercase();
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::MemDisk;
    use crate::fatio::FatIo;
    use fatfs::Write as _;
    use std::vec;

    fn formatted(sectors: u64) -> BlockCache<MemDisk> {
        BlockCache::new(crate::testutil::formatted(sectors), 64)
    }

    fn volume(cache: &mut BlockCache<MemDisk>) -> Volume {
        let mut boot = [0u8; SECTOR];
        cache.read_at(0, &mut boot).unwrap();
        Volume::parse(&boot).unwrap()
    }

    #[test]
    fn the_three_variants_are_read() {
        for (sectors, t) in [(4 * 1024, FatType::Fat12), (32 * 1024, FatType::Fat16), (160 * 1024, FatType::Fat32)] {
            let mut cache = formatted(sectors);
            let v = volume(&mut cache);
            assert_eq!(v.fat_type, t, "{sectors} sectors");
            assert!(v.data_lba > v.fat_lba && v.clusters > 0);
            // Entries 0 and 1 are reserved; the rest of a fresh volume is
            // free but the root folder's (FAT32).
            assert_ne!(v.entry(&mut cache, 0).unwrap(), 0);
            let free = (2..=v.last_cluster()).filter(|&c| v.entry(&mut cache, c).unwrap() == 0).count() as u32;
            assert_eq!(free, v.clusters - if t == FatType::Fat32 { 1 } else { 0 });
        }
    }

    #[test]
    fn entries_and_chains_match_what_fatfs_wrote() {
        for sectors in [4 * 1024u64, 32 * 1024, 160 * 1024] {
            let mut cache = formatted(sectors);
            let data: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
            {
                let fs = fatfs::FileSystem::new(FatIo::new(&mut cache), fatfs::FsOptions::new()).unwrap();
                {
                    let dir = fs.root_dir().create_dir("KINTSUGI").unwrap();
                    let mut f = dir.create_file("POOL.DAT").unwrap();
                    f.write_all(&data).unwrap();
                    f.flush().unwrap();
                }
                fs.unmount().unwrap();
            }
            cache.sync().unwrap();
            let v = volume(&mut cache);
            let root_chain = match v.fat_type {
                FatType::Fat32 => Some(v.chain(&mut cache, v.root_cluster).unwrap().unwrap()),
                _ => None,
            };
            let root = v.dir_entries(&mut cache, root_chain.as_deref()).unwrap();
            let k = root.iter().find(|e| e.name == short_name("KINTSUGI").unwrap()).expect("the folder");
            assert!(k.is_dir());
            let kchain = v.chain(&mut cache, k.first).unwrap().unwrap();
            let entries = v.dir_entries(&mut cache, Some(&kchain)).unwrap();
            assert!(entries.iter().any(|e| e.is_dot()));
            let p = entries.iter().find(|e| e.short_name() == "POOL.DAT").expect("the file");
            assert_eq!(p.size, 70_000);
            let chain = v.chain(&mut cache, p.first).unwrap().unwrap();
            assert_eq!(chain.len() as u64, 70_000u64.div_ceil(v.cluster_bytes()));
            // The file's bytes are where its chain says.
            let mut back = Vec::new();
            for (lba, n) in v.runs(&chain) {
                let mut buf = vec![0u8; n as usize * SECTOR];
                cache.disk.read(lba, &mut buf).unwrap();
                back.extend_from_slice(&buf);
            }
            assert_eq!(&back[..data.len()], &data[..], "{:?}", v.fat_type);
            // Entries written here are read back, in every copy.
            let last = *chain.last().unwrap();
            v.set_entry(&mut cache, last, 0x123).unwrap();
            assert_eq!(v.entry(&mut cache, last).unwrap(), 0x123);
            assert_eq!(v.entry_in(&mut cache, last, 1).unwrap(), 0x123);
            assert_eq!(v.entry(&mut cache, last - 1).unwrap(), last, "the neighbour is untouched");
            assert!(matches!(v.chain(&mut cache, p.first).unwrap(), Err((_, _))));
        }
    }

    #[test]
    fn short_names() {
        assert_eq!(&short_name("pool.dat").unwrap(), b"POOL    DAT");
        assert_eq!(&short_name("KINTSUGI").unwrap(), b"KINTSUGI   ");
        assert!(short_name("toolongname").is_none() && short_name(".x").is_none() && short_name("a.abcd").is_none());
    }

    #[test]
    fn bad_boot_sectors_are_refused() {
        let mut cache = formatted(32 * 1024);
        let mut boot = [0u8; SECTOR];
        cache.read_at(0, &mut boot).unwrap();
        let mut b = boot;
        b[510] = 0;
        assert!(Volume::parse(&b).is_err());
        let mut b = boot;
        b[11] = 0;
        b[12] = 4; // 1024-byte sectors
        assert!(Volume::parse(&b).unwrap_err().contains("1024-byte sectors"));
        let mut b = boot;
        b[13] = 3;
        assert!(Volume::parse(&b).is_err());
        let mut b = boot;
        b[16] = 0;
        assert!(Volume::parse(&b).is_err());
    }
}
