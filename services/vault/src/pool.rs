//! The pool: one file on the checkpoint disk, `/KINTSUGI/POOL.DAT`, made
//! once and never resized, that holds every service's checkpoint slots and
//! request log (laid out by the pool table, `checkpoint_record::table`).
//! Because the vault only ever writes *inside* it, creating a service's
//! slots, growing a slot and appending to a log never change the FAT, so
//! no power cut during them can leave the file system damaged.
//!
//! [`open_or_create`] finds the pool, or makes it: the folder and an empty
//! file through fatfs (a small change, cleanly unmounted), then the file's
//! clusters by hand, without writing them (a pool of tens of MiB would
//! otherwise take seconds of zeros): the chain is written into the
//! allocation tables first, then the table copies at the pool's start are
//! zeroed, then (one sector) the directory entry gets the first cluster
//! and the size, then the FSInfo free count. A cut before the directory
//! entry leaves a lost chain and an empty file, which the repair at the
//! next start frees, and the pool is made again; a cut after it leaves
//! only the free count to correct.

use crate::disk::{SectorDisk, SECTOR};
use crate::fat::{short_name, DirEntry, Next, Volume};
use crate::fatio::{BlockCache, FatIo};
use crate::store::{fat_error, VaultError};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use checkpoint_record::table::FIRST_REGION_SECTOR;

/// The pool's folder.
pub const DIR: &str = "KINTSUGI";
/// The pool file in it.
pub const FILE: &str = "POOL.DAT";
/// The largest pool (FAT files end below 4 GiB).
pub const MAX_POOL_BYTES: u64 = 2 << 30;
/// The smallest pool worth making: the tables and room for a few services.
pub const MIN_POOL_BYTES: u64 = FIRST_REGION_SECTOR * SECTOR as u64 + (2 << 20);

/// Runs of disk sectors `(lba, count)`, in order.
pub type Runs = Vec<(u64, u64)>;

/// The pool file's sectors on the disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    runs: Runs,
    sectors: u64,
}

impl Pool {
    /// A pool over `runs` of disk sectors.
    pub fn new(runs: Runs) -> Pool {
        let sectors = runs.iter().map(|r| r.1).sum();
        Pool { runs, sectors }
    }

    /// Its size in sectors.
    pub fn sectors(&self) -> u64 {
        self.sectors
    }

    /// The disk runs covering pool sectors `first..first + count`.
    pub fn map(&self, first: u64, count: u64) -> Result<Runs, VaultError> {
        let mut out = Vec::new();
        let (mut skip, mut left) = (first, count);
        for &(lba, n) in &self.runs {
            if left == 0 {
                break;
            }
            if skip >= n {
                skip -= n;
                continue;
            }
            let take = (n - skip).min(left);
            out.push((lba + skip, take));
            left -= take;
            skip = 0;
        }
        if left > 0 {
            return Err(VaultError::Disk(String::from("a region past the end of the pool")));
        }
        Ok(out)
    }
}

/// The entry named `name` among `entries`.
fn find<'a>(entries: &'a [DirEntry], name: &str) -> Option<&'a DirEntry> {
    let want = short_name(name)?;
    entries.iter().find(|e| !e.is_dot() && e.name == want)
}

/// `/KINTSUGI/POOL.DAT`'s directory entry, if the file exists.
fn lookup<D: SectorDisk>(cache: &mut BlockCache<D>, v: &Volume) -> Result<Option<DirEntry>, VaultError> {
    let root_chain = match v.fat_type {
        crate::fat::FatType::Fat32 => match v.chain(cache, v.root_cluster)? {
            Ok(c) => Some(c),
            Err((_, why)) => return Err(VaultError::NoDisk(format!("the root folder's chain {why}"))),
        },
        _ => None,
    };
    let root = v.dir_entries(cache, root_chain.as_deref())?;
    let Some(dir) = find(&root, DIR).filter(|e| e.is_dir()).cloned() else { return Ok(None) };
    let chain = match v.chain(cache, dir.first)? {
        Ok(c) => c,
        Err((_, why)) => return Err(VaultError::NoDisk(format!("/{DIR}'s cluster chain {why}"))),
    };
    let entries = v.dir_entries(cache, Some(&chain))?;
    Ok(find(&entries, FILE).filter(|e| !e.is_dir()).cloned())
}

/// Make the folder and an empty pool file through fatfs.
fn create_empty<D: SectorDisk>(cache: &mut BlockCache<D>) -> Result<(), VaultError> {
    cache.clear()?;
    {
        let fs = fatfs::FileSystem::new(FatIo::new(cache), fatfs::FsOptions::new())
            .map_err(|e| VaultError::NoDisk(format!("cannot mount the checkpoint disk's FAT file system: {e}")))?;
        let made = (|| {
            let root = fs.root_dir();
            let dir = match root.open_dir(DIR) {
                Ok(d) => d,
                Err(fatfs::Error::NotFound) => root.create_dir(DIR).map_err(|e| fat_error("create /KINTSUGI", e))?,
                Err(e) => return Err(fat_error("open /KINTSUGI", e)),
            };
            dir.create_file(FILE).map_err(|e| fat_error("create the pool file", e))?;
            Ok(())
        })();
        let unmounted = fs.unmount().map_err(|e| fat_error("unmount", e));
        made.and(unmounted)?;
    }
    cache.sync()?;
    Ok(())
}

/// Free clusters, in order, up to `limit` of them; and how many are free
/// in all.
fn free_clusters<D: SectorDisk>(
    cache: &mut BlockCache<D>,
    v: &Volume,
    limit: u64,
) -> Result<(Vec<u32>, u64), VaultError> {
    let mut out = Vec::new();
    let mut total = 0u64;
    for c in 2..=v.last_cluster() {
        v.prefetch_for(cache, c)?;
        if v.next(cache, c)? == Next::Free {
            total += 1;
            if (out.len() as u64) < limit {
                out.push(c);
            }
        }
    }
    Ok((out, total))
}

/// How big a pool to make from `free` free bytes: all but a sixteenth (at
/// least 256 KiB) left for anything else, at most [`MAX_POOL_BYTES`].
pub fn pool_bytes(free: u64) -> u64 {
    let keep = (free / 16).max(256 << 10);
    free.saturating_sub(keep).min(MAX_POOL_BYTES)
}

/// Find the pool, or make it (see the module documentation); whether it
/// was made now.
pub fn open_or_create<D: SectorDisk>(cache: &mut BlockCache<D>, v: &Volume) -> Result<(Pool, bool), VaultError> {
    let entry = match lookup(cache, v)? {
        Some(e) => e,
        None => {
            create_empty(cache)?;
            lookup(cache, v)?
                .ok_or_else(|| VaultError::Disk(String::from("the pool file vanished after creating it")))?
        }
    };
    if entry.size > 0 {
        let chain = match v.chain(cache, entry.first)? {
            Ok(c) => c,
            Err((_, why)) => return Err(VaultError::NoDisk(format!("the pool file's cluster chain {why}"))),
        };
        let sectors = entry.size as u64 / SECTOR as u64;
        if (chain.len() as u64) * v.sectors_per_cluster < sectors || sectors < FIRST_REGION_SECTOR {
            return Err(VaultError::NoDisk(format!("the pool file ({} bytes) is damaged", entry.size)));
        }
        let all = Pool::new(v.runs(&chain));
        return Ok((Pool::new(all.map(0, sectors)?), false));
    }
    if entry.first != 0 {
        return Err(VaultError::NoDisk(String::from("the pool file is empty but owns clusters")));
    }
    // Size it from the free space, then take that many free clusters.
    let (_, free) = free_clusters(cache, v, 0)?;
    let bytes = pool_bytes(free * v.cluster_bytes());
    let clusters = bytes / v.cluster_bytes();
    if clusters * v.cluster_bytes() < MIN_POOL_BYTES {
        return Err(VaultError::Full(format!(
            "the checkpoint disk has {} KiB free; the vault needs {} KiB for its pool",
            free * v.cluster_bytes() / 1024,
            MIN_POOL_BYTES / 1024
        )));
    }
    let (chain, _) = free_clusters(cache, v, clusters)?;
    if (chain.len() as u64) < clusters {
        return Err(VaultError::Disk(String::from("free clusters vanished while making the pool")));
    }
    for (i, &c) in chain.iter().enumerate() {
        let next = chain.get(i + 1).copied().unwrap_or_else(|| v.end_of_chain());
        v.set_entry(cache, c, next)?;
    }
    let pool = Pool::new(v.runs(&chain));
    let zeros = [0u8; SECTOR];
    for (lba, n) in pool.map(0, FIRST_REGION_SECTOR)? {
        for s in lba..lba + n {
            cache.write_at(s * SECTOR as u64, &zeros)?;
        }
    }
    cache.sync()?;
    let size = u32::try_from(clusters * v.cluster_bytes())
        .map_err(|_| VaultError::Disk(String::from("the pool would exceed FAT's file size limit")))?;
    v.set_dir_entry(cache, entry.at, chain[0], size)?;
    cache.sync()?;
    if let Some(lba) = v.fsinfo_lba {
        let mut info = [0u8; SECTOR];
        cache.read_at(lba * SECTOR as u64, &mut info)?;
        if info[..4] == 0x4161_5252u32.to_le_bytes() && info[484..488] == 0x6141_7272u32.to_le_bytes() {
            let left = (free - clusters) as u32;
            cache.write_at(lba * SECTOR as u64 + 488, &left.to_le_bytes())?;
            cache.write_at(lba * SECTOR as u64 + 492, &u32::MAX.to_le_bytes())?;
            cache.sync()?;
        }
    }
    log::info!("made the pool /{DIR}/{FILE}: {} MiB for the services' slots and logs", size >> 20);
    Ok((pool, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_sectors_map_to_disk_runs() {
        let p = Pool::new(vec![(100, 10), (500, 5), (600, 20)]);
        assert_eq!(p.sectors(), 35);
        assert_eq!(p.map(0, 3).unwrap(), [(100, 3)]);
        assert_eq!(p.map(8, 10).unwrap(), [(108, 2), (500, 5), (600, 3)]);
        assert_eq!(p.map(34, 1).unwrap(), [(619, 1)]);
        assert!(p.map(34, 2).is_err());
    }

    #[test]
    fn pool_sizes() {
        assert_eq!(pool_bytes(64 << 20), 60 << 20);
        assert_eq!(pool_bytes(1 << 20), (1 << 20) - (256 << 10));
        assert_eq!(pool_bytes(100 << 30), MAX_POOL_BYTES);
        assert_eq!(pool_bytes(0), 0);
    }
}
