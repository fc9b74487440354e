//! Where the server's files come from: the [`FileSource`] trait (stat,
//! read at an offset, list a folder; the guest's is `fsfiles`, over the
//! file service) and [`MemoryTree`], an in-memory tree for the host tests.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// What a path is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    /// A folder.
    pub is_dir: bool,
    /// Bytes (0 for a folder).
    pub size: u64,
    /// Last change, in seconds since 1970 (UTC).
    pub modified: u64,
}

/// One entry of a folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// Its name (no `/`).
    pub name: String,
    /// What it is.
    pub meta: Meta,
}

/// Why a file operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FsError {
    /// No such file or folder.
    NotFound,
    /// Anything else (the message says what).
    Other(String),
}

/// A tree of files, addressed by absolute paths (`/www/index.html`).
pub trait FileSource {
    /// What `path` is.
    fn stat(&mut self, path: &str) -> Result<Meta, FsError>;
    /// Read up to `buf.len()` bytes of file `path` from `offset`; how many
    /// (0 at the end).
    fn read(&mut self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, FsError>;
    /// The entries of folder `path`.
    fn list(&mut self, path: &str) -> Result<Vec<DirEntry>, FsError>;
}

/// Files in memory.
#[derive(Default, Clone)]
pub struct MemoryTree {
    files: BTreeMap<String, (Vec<u8>, u64)>,
}

impl MemoryTree {
    /// An empty tree (only `/`).
    pub fn new() -> MemoryTree {
        MemoryTree::default()
    }

    /// Add a file (its folders exist implicitly).
    pub fn add(&mut self, path: &str, data: impl Into<Vec<u8>>, modified: u64) {
        self.files.insert(path.to_string(), (data.into(), modified));
    }

    fn dir_prefix(path: &str) -> String {
        let mut p = path.trim_end_matches('/').to_string();
        p.push('/');
        p
    }
}

impl FileSource for MemoryTree {
    fn stat(&mut self, path: &str) -> Result<Meta, FsError> {
        if let Some((data, modified)) = self.files.get(path) {
            return Ok(Meta { is_dir: false, size: data.len() as u64, modified: *modified });
        }
        let prefix = Self::dir_prefix(path);
        let newest = self.files.iter().filter(|(p, _)| p.starts_with(&prefix)).map(|(_, (_, m))| *m).max();
        match newest {
            Some(modified) => Ok(Meta { is_dir: true, size: 0, modified }),
            None if path == "/" => Ok(Meta { is_dir: true, size: 0, modified: 0 }),
            None => Err(FsError::NotFound),
        }
    }

    fn read(&mut self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        let (data, _) = self.files.get(path).ok_or(FsError::NotFound)?;
        let start = (offset.min(data.len() as u64)) as usize;
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    fn list(&mut self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        let meta = self.stat(path)?;
        if !meta.is_dir {
            return Err(FsError::Other("not a folder".into()));
        }
        let prefix = Self::dir_prefix(path);
        let mut out: BTreeMap<String, Meta> = BTreeMap::new();
        for (p, (data, modified)) in self.files.iter().filter(|(p, _)| p.starts_with(&prefix)) {
            let rest = &p[prefix.len()..];
            match rest.split_once('/') {
                Some((dir, _)) => {
                    let e = out.entry(dir.to_string()).or_insert(Meta { is_dir: true, size: 0, modified: 0 });
                    e.modified = e.modified.max(*modified);
                }
                None => {
                    out.insert(rest.to_string(), Meta { is_dir: false, size: data.len() as u64, modified: *modified });
                }
            }
        }
        Ok(out.into_iter().map(|(name, meta)| DirEntry { name, meta }).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_tree() {
        let mut t = MemoryTree::new();
        t.add("/www/index.html", "hi", 10);
        t.add("/www/docs/a.txt", "aaaa", 20);
        assert_eq!(t.stat("/www/index.html"), Ok(Meta { is_dir: false, size: 2, modified: 10 }));
        assert_eq!(t.stat("/www/docs"), Ok(Meta { is_dir: true, size: 0, modified: 20 }));
        assert_eq!(t.stat("/www/docs/"), Ok(Meta { is_dir: true, size: 0, modified: 20 }));
        assert_eq!(t.stat("/www/nope"), Err(FsError::NotFound));
        let names: Vec<String> = t.list("/www").unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["docs", "index.html"]);
        let mut buf = [0u8; 3];
        assert_eq!(t.read("/www/docs/a.txt", 2, &mut buf), Ok(2));
        assert_eq!(&buf[..2], b"aa");
        assert_eq!(t.read("/www/docs/a.txt", 9, &mut buf), Ok(0));
    }
}
