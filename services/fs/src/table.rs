//! The open-file table (per client session: handle -> the file's path,
//! first cluster, position, mode) and the mount parameters: the small
//! logical state a checkpoint of the file service keeps; the disk holds
//! the rest. [`State::encode`] and [`State::decode`] are its byte form
//! (little-endian, versioned; decoding checks every length and never
//! panics).

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

const MAGIC: &[u8; 4] = b"KFS1";

/// What identifies the mounted volume.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mount {
    /// The volume id of the boot sector.
    pub volume_id: u32,
    /// Sectors on the disk.
    pub sectors: u64,
    /// Bytes per cluster.
    pub cluster: u32,
}

/// One open file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenFile {
    /// Its path's components, as the names are on the disk.
    pub path: Vec<String>,
    /// Its first cluster when opened or last written (0: empty file).
    pub first_cluster: u32,
    /// Where the next `Read`/`Write` at `CURRENT` goes.
    pub position: u64,
    /// The `Open` flags.
    pub mode: u32,
}

/// The open files and the mount parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// The volume it belongs to.
    pub mount: Mount,
    /// The next handle number (handles are never reused).
    pub next_handle: u64,
    /// Per session, its open files by handle.
    pub sessions: BTreeMap<u64, BTreeMap<u64, OpenFile>>,
    /// How many files are open in all (kept apart, so the invariant check
    /// can notice a damaged table).
    pub open_count: u64,
}

struct Writer(Vec<u8>);

impl Writer {
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len()).ok_or("the state is cut off")?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn str(&mut self) -> Result<String, String> {
        let n = self.u32()? as usize;
        let b = self.take(n)?;
        core::str::from_utf8(b).map(String::from).map_err(|_| String::from("a name is not UTF-8"))
    }
}

impl State {
    /// Every open file's handle, session and entry.
    pub fn all(&self) -> impl Iterator<Item = (u64, u64, &OpenFile)> {
        self.sessions.iter().flat_map(|(s, files)| files.iter().map(move |(h, f)| (*s, *h, f)))
    }

    /// Every open file, mutably.
    pub fn all_mut(&mut self) -> impl Iterator<Item = &mut OpenFile> {
        self.sessions.values_mut().flat_map(|files| files.values_mut())
    }

    /// Close every file of `session`; whether it had any.
    pub fn close_session(&mut self, session: u64) -> bool {
        match self.sessions.remove(&session) {
            Some(files) => {
                self.open_count = self.open_count.saturating_sub(files.len() as u64);
                true
            }
            None => false,
        }
    }

    /// Check the table's own consistency.
    pub fn check(&self) -> Result<(), String> {
        let n: u64 = self.sessions.values().map(|f| f.len() as u64).sum();
        if n != self.open_count {
            return Err(format!("fs state damaged: {} files counted open, {n} in the table", self.open_count));
        }
        if let Some((_, h, _)) = self.all().find(|(_, h, _)| *h >= self.next_handle) {
            return Err(format!("fs state damaged: handle {h} is not below the next handle {}", self.next_handle));
        }
        Ok(())
    }

    /// The byte form.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        w.0.extend_from_slice(MAGIC);
        w.u32(self.mount.volume_id);
        w.u64(self.mount.sectors);
        w.u32(self.mount.cluster);
        w.u64(self.next_handle);
        w.u64(self.open_count);
        w.u32(self.sessions.len() as u32);
        for (session, files) in &self.sessions {
            w.u64(*session);
            w.u32(files.len() as u32);
            for (handle, f) in files {
                w.u64(*handle);
                w.u32(f.first_cluster);
                w.u64(f.position);
                w.u32(f.mode);
                w.u32(f.path.len() as u32);
                for p in &f.path {
                    w.str(p);
                }
            }
        }
        w.0
    }

    /// From the byte form.
    pub fn decode(bytes: &[u8]) -> Result<State, String> {
        let mut r = Reader { bytes, at: 0 };
        if r.take(4)? != MAGIC {
            return Err(String::from("not a file service state (bad magic)"));
        }
        let mount = Mount { volume_id: r.u32()?, sectors: r.u64()?, cluster: r.u32()? };
        let next_handle = r.u64()?;
        let open_count = r.u64()?;
        let mut sessions = BTreeMap::new();
        for _ in 0..r.u32()? {
            let session = r.u64()?;
            let mut files = BTreeMap::new();
            for _ in 0..r.u32()? {
                let handle = r.u64()?;
                let first_cluster = r.u32()?;
                let position = r.u64()?;
                let mode = r.u32()?;
                let depth = r.u32()?;
                let mut path = Vec::new();
                for _ in 0..depth {
                    path.push(r.str()?);
                }
                files.insert(handle, OpenFile { path, first_cluster, position, mode });
            }
            sessions.insert(session, files);
        }
        if r.at != bytes.len() {
            return Err(String::from("bytes after the state"));
        }
        Ok(State { mount, next_handle, sessions, open_count })
    }
}
