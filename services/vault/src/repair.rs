//! The checkpoint disk's file system checked, and what a power cut left
//! repaired, every time the vault starts ([`check_and_repair`]).
//!
//! A cut while the FAT is being changed (by fatfs, by the vault's pool
//! creation, or by an older vault that created slot files at a service's
//! first commit) can leave: clusters marked used that no file owns (lost
//! chains), a file whose chain is longer than its size or shorter, the
//! allocation table copies differing, a wrong free-cluster count in the
//! FSInfo sector (FAT32), and the boot sector's "dirty" flag set. fatfs
//! never clears a dirty flag it found at mount and never reclaims lost
//! clusters, so without this they would stay forever. The repair:
//!
//! 1. walks every folder from the root, marking the clusters each file and
//!    folder owns; a file's chain longer than its size is cut at the size
//!    (the tail freed), a size beyond the chain is cut to the chain;
//! 2. frees every used cluster nobody owns;
//! 3. makes the other allocation tables copies of the first (fatfs and the
//!    vault write the first one first);
//! 4. corrects the FSInfo free-cluster count;
//! 5. flushes, and only then clears the dirty flags.
//!
//! Chains that loop or link to free clusters, and clusters two files
//! share, are reported and left alone (`fsck.fat` can decide those); their
//! clusters are not taken for lost. Every step is safe to cut: what a cut
//! leaves half done is found again at the next start.

use crate::disk::{DiskError, SectorDisk, SECTOR};
use crate::fat::{FatType, Next, Volume};
use crate::fatio::BlockCache;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

/// How deep folders are followed.
const MAX_DEPTH: usize = 32;
/// Sectors read at once while scanning the allocation tables.
const SCAN_CHUNK: u64 = 128;

/// What the check found and repaired.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Repairs {
    /// Used clusters no file owned, freed.
    pub lost_clusters: u64,
    /// Their bytes.
    pub lost_bytes: u64,
    /// Files whose chain went past their size: the tail was freed.
    pub truncated: Vec<String>,
    /// Files whose size went past their chain: the size was cut.
    pub shortened: Vec<String>,
    /// Folders whose creation was cut before their `.` and `..` entries
    /// were written: made empty folders.
    pub initialized: Vec<String>,
    /// Sectors of the other allocation tables made equal to the first.
    pub fat_sectors_copied: u64,
    /// The FSInfo free count, as found and as corrected.
    pub free_count: Option<(u32, u32)>,
    /// The dirty flag was set and is cleared now.
    pub dirty_cleared: bool,
    /// Damage left alone (for fsck.fat).
    pub unrepaired: Vec<String>,
}

impl Repairs {
    /// Whether anything was repaired.
    pub fn repaired(&self) -> bool {
        self.lost_clusters > 0
            || !self.truncated.is_empty()
            || !self.shortened.is_empty()
            || !self.initialized.is_empty()
            || self.fat_sectors_copied > 0
            || self.free_count.is_some()
            || self.dirty_cleared
    }

    /// One line per repair, for the log.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.lost_clusters > 0 {
            out.push(format!(
                "freed {} lost cluster{} ({} KiB) that no file owned",
                self.lost_clusters,
                if self.lost_clusters == 1 { "" } else { "s" },
                self.lost_bytes / 1024
            ));
        }
        for f in &self.truncated {
            out.push(format!("freed the clusters of {f} past its size"));
        }
        for f in &self.shortened {
            out.push(format!("cut the size of {f} to its clusters"));
        }
        for f in &self.initialized {
            out.push(format!("made {f}, whose creation was cut short, an empty folder"));
        }
        if self.fat_sectors_copied > 0 {
            out.push(format!("copied {} sectors of the first allocation table to the others", self.fat_sectors_copied));
        }
        if let Some((was, now)) = self.free_count {
            out.push(format!("corrected the free cluster count from {was} to {now}"));
        }
        if self.dirty_cleared {
            out.push(String::from("cleared the dirty flag"));
        }
        out
    }
}

/// One bit per cluster.
struct Bitmap(Vec<u64>);

impl Bitmap {
    fn new(bits: usize) -> Bitmap {
        Bitmap(vec![0; bits.div_ceil(64)])
    }
    fn get(&self, i: u32) -> bool {
        self.0.get(i as usize / 64).is_some_and(|w| w >> (i % 64) & 1 == 1)
    }
    fn set(&mut self, i: u32, on: bool) {
        if let Some(w) = self.0.get_mut(i as usize / 64) {
            if on {
                *w |= 1 << (i % 64);
            } else {
                *w &= !(1 << (i % 64));
            }
        }
    }
}

/// A folder still to read: its chain (None: the fixed root), its path,
/// depth, and its parent's first cluster (0: the root).
struct Pending {
    chain: Option<Vec<u32>>,
    path: String,
    depth: usize,
    parent: u32,
}

/// The short names of `.` and `..`.
const DOT: [u8; 11] = *b".          ";
const DOTDOT: [u8; 11] = *b"..         ";

/// Make the folder whose chain is `chain` an empty folder: zeros, then its
/// `.` and `..` entries.
fn init_folder<D: SectorDisk>(
    cache: &mut BlockCache<D>,
    v: &Volume,
    chain: &[u32],
    parent: u32,
) -> Result<(), DiskError> {
    let zeros = [0u8; SECTOR];
    for &c in chain {
        let lba = v.cluster_lba(c);
        for s in lba..lba + v.sectors_per_cluster {
            cache.write_at(s * SECTOR as u64, &zeros)?;
        }
    }
    let at = v.cluster_lba(chain[0]) * SECTOR as u64;
    for (i, (name, cluster)) in [(DOT, chain[0]), (DOTDOT, parent)].into_iter().enumerate() {
        let mut e = [0u8; crate::fat::DIR_ENTRY];
        e[..11].copy_from_slice(&name);
        e[11] = crate::fat::ATTR_DIRECTORY;
        e[20..22].copy_from_slice(&((cluster >> 16) as u16).to_le_bytes());
        e[26..28].copy_from_slice(&(cluster as u16).to_le_bytes());
        cache.write_at(at + (i * crate::fat::DIR_ENTRY) as u64, &e)?;
    }
    Ok(())
}

/// Check the FAT file system described by `v` on `cache`'s disk and repair
/// what a power cut left (see the module documentation).
pub fn check_and_repair<D: SectorDisk>(cache: &mut BlockCache<D>, v: &Volume) -> Result<Repairs, DiskError> {
    let mut r = Repairs::default();
    let mut used = Bitmap::new(v.last_cluster() as usize + 1);
    let root = match v.fat_type {
        FatType::Fat32 => match v.chain(cache, v.root_cluster)? {
            Ok(chain) => Some(chain),
            Err((part, why)) => {
                // Without the root nothing else can be told apart from
                // lost: change nothing.
                r.unrepaired.push(format!("the root folder's chain {why} (after {} clusters)", part.len()));
                return Ok(r);
            }
        },
        _ => None,
    };
    if let Some(chain) = &root {
        for &c in chain {
            used.set(c, true);
        }
    }
    let mut pending = vec![Pending { chain: root, path: String::new(), depth: 0, parent: 0 }];
    while let Some(dir) = pending.pop() {
        let entries = v.dir_entries(cache, dir.chain.as_deref())?;
        if dir.depth > 0 {
            let chain = dir.chain.as_deref().unwrap_or(&[]);
            let names: Vec<[u8; 11]> = entries.iter().take(2).map(|e| e.name).collect();
            match names.as_slice() {
                [a, b] if *a == DOT && *b == DOTDOT => {}
                // Nothing in it, or only `.`: fatfs's creation of it was
                // cut before its `..` entry was written.
                [] | [DOT] if !chain.is_empty() => {
                    init_folder(cache, v, chain, dir.parent)?;
                    r.initialized.push(dir.path);
                    continue;
                }
                _ => {
                    r.unrepaired.push(format!("{}: a folder without its '.' and '..' entries", dir.path));
                    continue;
                }
            }
        }
        let own = dir.chain.as_ref().map_or(0, |c| c[0]);
        let own = if dir.depth == 0 { 0 } else { own };
        for e in entries {
            if e.is_dot() {
                continue;
            }
            let path = format!("{}/{}", dir.path, e.short_name());
            if e.first == 0 {
                if !e.is_dir() && e.size > 0 {
                    v.set_dir_entry(cache, e.at, 0, 0)?;
                    r.shortened.push(path);
                }
                continue;
            }
            let chain = match v.chain(cache, e.first)? {
                Ok(chain) => chain,
                Err((part, why)) => {
                    r.unrepaired.push(format!("{path}: its cluster chain {why}"));
                    for c in part {
                        used.set(c, true);
                    }
                    continue;
                }
            };
            if let Some(&shared) = chain.iter().find(|&&c| used.get(c)) {
                r.unrepaired.push(format!("{path} shares cluster {shared} with another file or folder"));
                for &c in &chain {
                    used.set(c, true);
                }
                continue;
            }
            for &c in &chain {
                used.set(c, true);
            }
            if e.is_dir() {
                if dir.depth + 1 < MAX_DEPTH {
                    pending.push(Pending { chain: Some(chain), path, depth: dir.depth + 1, parent: own });
                } else {
                    r.unrepaired.push(format!("{path}: folders nested too deep to check"));
                }
                continue;
            }
            let need = (e.size as u64).div_ceil(v.cluster_bytes()).max(1) as usize;
            if chain.len() > need {
                v.set_entry(cache, chain[need - 1], v.end_of_chain())?;
                for &c in &chain[need..] {
                    v.set_entry(cache, c, 0)?;
                    used.set(c, false);
                }
                r.truncated.push(path);
            } else if (chain.len() as u64) * v.cluster_bytes() < e.size as u64 {
                let size = (chain.len() as u64 * v.cluster_bytes()) as u32;
                v.set_dir_entry(cache, e.at, e.first, size)?;
                r.shortened.push(path);
            }
        }
    }
    // Lost clusters, and the free count.
    let mut free = 0u32;
    for c in 2..=v.last_cluster() {
        v.prefetch_for(cache, c)?;
        if used.get(c) {
            continue;
        }
        match v.next(cache, c)? {
            Next::Free => free += 1,
            Next::Bad => {}
            _ => {
                v.set_entry(cache, c, 0)?;
                r.lost_clusters += 1;
                r.lost_bytes += v.cluster_bytes();
                free += 1;
            }
        }
    }
    // The other tables as copies of the first.
    let mut first = [0u8; SECTOR];
    let mut other = [0u8; SECTOR];
    for copy in 1..v.fats {
        for s in 0..v.fat_sectors {
            if s % SCAN_CHUNK == 0 {
                let n = SCAN_CHUNK.min(v.fat_sectors - s);
                cache.prefetch(v.fat_lba + s, n)?;
                cache.prefetch(v.fat_lba + copy * v.fat_sectors + s, n)?;
            }
            cache.read_at((v.fat_lba + s) * SECTOR as u64, &mut first)?;
            let at = (v.fat_lba + copy * v.fat_sectors + s) * SECTOR as u64;
            cache.read_at(at, &mut other)?;
            if first != other {
                cache.write_at(at, &first)?;
                r.fat_sectors_copied += 1;
            }
        }
    }
    if let Some(lba) = v.fsinfo_lba {
        let mut info = [0u8; SECTOR];
        cache.read_at(lba * SECTOR as u64, &mut info)?;
        let sig = |at: usize| u32::from_le_bytes([info[at], info[at + 1], info[at + 2], info[at + 3]]);
        if sig(0) == 0x4161_5252 && sig(484) == 0x6141_7272 {
            let stored = sig(488);
            if stored != u32::MAX && stored != free {
                cache.write_at(lba * SECTOR as u64 + 488, &free.to_le_bytes())?;
                r.free_count = Some((stored, free));
            }
            let hint = sig(492);
            if hint != u32::MAX && !(2..=v.last_cluster()).contains(&hint) {
                cache.write_at(lba * SECTOR as u64 + 492, &u32::MAX.to_le_bytes())?;
            }
        }
    }
    // The clean-shutdown bits of entry 1 (FAT16 and FAT32).
    let clean_bit = match v.fat_type {
        FatType::Fat12 => 0,
        FatType::Fat16 => 0x8000,
        FatType::Fat32 => 0x0800_0000,
    };
    let mut was_dirty = false;
    if clean_bit != 0 {
        let e1 = v.entry(cache, 1)?;
        if e1 & clean_bit == 0 {
            v.set_entry(cache, 1, e1 | clean_bit)?;
            was_dirty = true;
        }
    }
    cache.sync()?;
    let mut boot = [0u8; SECTOR];
    cache.read_at(0, &mut boot)?;
    let at = v.dirty_flag_offset();
    if boot[at] & 1 != 0 {
        boot[at] &= !1;
        cache.write_boot(&boot)?;
        was_dirty = true;
    }
    r.dirty_cleared = was_dirty;
    Ok(r)
}

#[cfg(test)]
mod tests;
