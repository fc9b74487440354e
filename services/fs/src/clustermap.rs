//! [`ClusterMap`]: where the clusters of one file are on the disk, as runs
//! of adjacent clusters, so that a read at any offset finds its bytes at
//! once and moves them in large disk requests.
//!
//! fatfs's `seek` walks the file's cluster chain from its first cluster,
//! one FAT entry at a time, and its `read` moves at most one cluster per
//! call: on a 64 MiB file with 4 KiB clusters a read near the end walked
//! some 16,000 FAT entries and then asked blk for 4 KiB at a time. The
//! engine builds a map once (one walk, through fatfs's `extents`) and keeps
//! it, for the file read last, while no sector has been written since (the
//! block layer's write counter): any write may change a chain, and then
//! the map is built again.

use alloc::vec::Vec;

/// Adjacent clusters of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    /// The run's first cluster, counted from the file's start.
    index: u64,
    /// Its byte offset on the disk.
    disk: u64,
    /// Clusters in the run.
    count: u64,
}

/// A file's clusters on the disk.
#[derive(Debug)]
pub struct ClusterMap {
    /// The file's first cluster (the map's key).
    pub first_cluster: u32,
    /// The block layer's write counter when the map was built.
    pub version: u64,
    cluster: u64,
    runs: Vec<Run>,
}

impl ClusterMap {
    /// Most runs a map keeps (a file more fragmented than this is read the
    /// slow way, so a map never takes more than a few hundred KiB).
    pub const MAX_RUNS: usize = 16384;

    /// The map of a file whose clusters (of `cluster` bytes) are at the
    /// disk byte offsets `offsets`, in file order; `None` if it would take
    /// more than [`ClusterMap::MAX_RUNS`] runs.
    pub fn build<E>(
        first_cluster: u32,
        version: u64,
        cluster: u64,
        offsets: impl Iterator<Item = Result<u64, E>>,
    ) -> Result<Option<ClusterMap>, E> {
        let cluster = cluster.max(1);
        let mut runs: Vec<Run> = Vec::new();
        for (index, offset) in offsets.enumerate() {
            let (index, offset) = (index as u64, offset?);
            if let Some(r) = runs.last_mut().filter(|r| r.disk.checked_add(r.count * cluster) == Some(offset)) {
                r.count += 1;
            } else if runs.len() == Self::MAX_RUNS {
                return Ok(None);
            } else {
                runs.push(Run { index, disk: offset, count: 1 });
            }
        }
        Ok(Some(ClusterMap { first_cluster, version, cluster, runs }))
    }

    /// Where byte `pos` of the file is on the disk, and how many bytes
    /// from there (at most `len`) follow it on the disk; `None` past the
    /// clusters mapped.
    pub fn locate(&self, pos: u64, len: u64) -> Option<(u64, u64)> {
        let index = pos / self.cluster;
        let at = self.runs.partition_point(|r| r.index + r.count <= index);
        let r = self.runs.get(at).filter(|r| r.index <= index)?;
        let disk = r.disk + (index - r.index) * self.cluster + pos % self.cluster;
        let contiguous = (r.index + r.count) * self.cluster - pos;
        Some((disk, contiguous.min(len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::convert::Infallible;

    fn map(offsets: &[u64]) -> ClusterMap {
        ClusterMap::build::<Infallible>(2, 0, 4096, offsets.iter().map(|&o| Ok(o))).unwrap().unwrap()
    }

    #[test]
    fn adjacent_clusters_make_one_run() {
        let m = map(&[8192, 12288, 16384, 20480]);
        assert_eq!(m.runs.len(), 1);
        assert_eq!(m.locate(0, 65536), Some((8192, 16384)));
        assert_eq!(m.locate(5000, 100), Some((8192 + 5000, 100)));
        assert_eq!(m.locate(16383, 10), Some((8192 + 16383, 1)));
        assert_eq!(m.locate(16384, 10), None);
    }

    #[test]
    fn fragments_are_found_by_file_offset() {
        // Clusters 0-1 at 40960, cluster 2 at 8192, clusters 3-4 at 100000.
        let m = map(&[40960, 45056, 8192, 100000, 104096]);
        assert_eq!(m.runs.len(), 3);
        assert_eq!(m.locate(4096, 65536), Some((45056, 4096)));
        assert_eq!(m.locate(8192 + 10, 65536), Some((8192 + 10, 4086)));
        assert_eq!(m.locate(3 * 4096, 65536), Some((100000, 8192)));
        assert_eq!(m.locate(5 * 4096, 1), None);
    }

    #[test]
    fn an_empty_file_maps_nothing() {
        assert_eq!(map(&[]).locate(0, 1), None);
    }

    #[test]
    fn too_fragmented_files_are_not_mapped() {
        let scattered = (0..=ClusterMap::MAX_RUNS as u64).map(|i| Ok::<u64, Infallible>(i * 3 * 4096));
        assert!(ClusterMap::build(2, 0, 4096, scattered).unwrap().is_none());
        let just = (0..ClusterMap::MAX_RUNS as u64).map(|i| Ok::<u64, Infallible>(i * 3 * 4096));
        assert!(ClusterMap::build(2, 0, 4096, just).unwrap().is_some());
    }

    #[test]
    fn errors_pass_through() {
        let r = ClusterMap::build(2, 0, 4096, [Ok(0), Err("bad chain")].into_iter());
        assert_eq!(r.unwrap_err(), "bad chain");
    }
}
