//! [`FsFiles`]: the [`FileSource`] over the file service (`fs`), through
//! the companion's recorded calls (`resiliency_lib::service::call`), so a
//! replay of httpd after a crash gets the same answers without asking fs
//! again. `stat` is fs's `Stat`, `list` its `List`, `read` a `Read` of at
//! most 64 KiB on a read handle kept open per file while it is being
//! sent (closed after [`IDLE_CLOSE_MS`] unused, so httpd does not keep a
//! file busy for fs's `Remove` and `Rename`). The handles belong to the
//! companion's session with fs, which outlives httpd's process, so they
//! are part of the saved state; one fs no longer knows (410, a new
//! session) is opened again.

use crate::codec::{Damaged, Dec, Enc};
use crate::files::{DirEntry, FileSource, FsError, Meta};
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use fs::{code, flags, Reply, Request};
use libos::channel::{HandleList, HandleQueue, Message};
use resiliency_lib::service;

/// Read handles kept open at most.
const MAX_HANDLES: usize = 16;
/// A read handle unused this long is closed.
pub const IDLE_CLOSE_MS: u64 = 1000;
/// Entries of one folder listed at most (the rest are left out).
const MAX_ENTRIES: usize = 10_000;

/// The file service's files.
#[derive(Default)]
pub struct FsFiles {
    /// Open read handles: path -> (handle, when last used, ms).
    handles: BTreeMap<String, (u64, u64)>,
    /// The time of the tick being handled (ms since boot).
    now_ms: u64,
}

fn decode(bytes: &[u8]) -> Result<Reply, FsError> {
    let mut r = libos::wire::Reader::new(bytes);
    let mut q = HandleQueue::new(Vec::new());
    Reply::decode(&mut r, &mut q).map_err(|e| FsError::Other(format!("fs's answer does not decode: {e}")))
}

/// Ask fs (a recorded call); its first reply.
fn call(request: Request) -> Result<Reply, FsError> {
    if !request.within_limits() {
        // fs would end the session for a request past its contract.
        return Err(FsError::NotFound);
    }
    let mut w = libos::wire::Writer::new();
    request.encode(&mut w, &mut HandleList::default());
    match service::call(fs::SERVICE, w.as_slice()) {
        Ok(bytes) => decode(&bytes),
        Err(e) => Err(FsError::Other(format!("the file service did not answer ({e:?})"))),
    }
}

/// A `Failed` as an error (404 and 421, a path through a file, are "not
/// found").
fn failed(c: u32, message: String) -> FsError {
    match c {
        code::NOT_FOUND | code::NOT_DIR => FsError::NotFound,
        _ => FsError::Other(format!("fs: {message} ({c})")),
    }
}

fn unexpected(what: &str, r: &Reply) -> FsError {
    FsError::Other(format!("fs answered {what} with {r:?}"))
}

impl FsFiles {
    /// No handles open.
    pub fn new() -> FsFiles {
        FsFiles::default()
    }

    /// The tick's time: handles unused for [`IDLE_CLOSE_MS`] are closed.
    pub fn tick(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
        let idle: Vec<(String, u64)> = self
            .handles
            .iter()
            .filter(|(_, (_, used))| now_ms.saturating_sub(*used) >= IDLE_CLOSE_MS)
            .map(|(p, (h, _))| (p.clone(), *h))
            .collect();
        for (path, handle) in idle {
            self.handles.remove(&path);
            let _ = call(Request::Close { handle });
        }
    }

    /// Read handles open.
    pub fn open_handles(&self) -> usize {
        self.handles.len()
    }

    /// For a checkpoint.
    pub fn save(&self, e: &mut Enc) {
        e.u64(self.handles.len() as u64);
        for (path, (handle, used)) in &self.handles {
            e.str(path).u64(*handle).u64(*used);
        }
        e.u64(self.now_ms);
    }

    /// From what [`FsFiles::save`] wrote.
    pub fn restore(d: &mut Dec) -> Result<FsFiles, Damaged> {
        let mut f = FsFiles::new();
        for _ in 0..d.count(MAX_HANDLES)? {
            let path = d.str()?;
            let handle = d.u64()?;
            f.handles.insert(path, (handle, d.u64()?));
        }
        f.now_ms = d.u64()?;
        Ok(f)
    }

    fn handle(&mut self, path: &str) -> Result<u64, FsError> {
        if let Some((h, used)) = self.handles.get_mut(path) {
            *used = self.now_ms;
            return Ok(*h);
        }
        if self.handles.len() >= MAX_HANDLES {
            // The least recently used goes.
            if let Some(old) = self.handles.iter().min_by_key(|(_, (_, used))| *used).map(|(p, _)| p.clone()) {
                if let Some((handle, _)) = self.handles.remove(&old) {
                    let _ = call(Request::Close { handle });
                }
            }
        }
        match call(Request::Open { path: path.to_string(), flags: flags::READ })? {
            Reply::Opened { handle, .. } => {
                self.handles.insert(path.to_string(), (handle, self.now_ms));
                Ok(handle)
            }
            Reply::Failed { code, message } => Err(failed(code, message)),
            other => Err(unexpected("Open", &other)),
        }
    }

    /// Create folder `path` (its parent exists); one already there will do.
    pub fn mkdir(&mut self, path: &str) -> Result<(), FsError> {
        match call(Request::Mkdir { path: path.to_string() })? {
            Reply::Done | Reply::Failed { code: code::EXISTS, .. } => Ok(()),
            Reply::Failed { code, message } => Err(failed(code, message)),
            other => Err(unexpected("Mkdir", &other)),
        }
    }

    /// Write the new file `path` with `data`.
    pub fn create(&mut self, path: &str, data: &[u8]) -> Result<(), FsError> {
        let handle = match call(Request::Open {
            path: path.to_string(),
            flags: flags::WRITE | flags::CREATE | flags::TRUNCATE,
        })? {
            Reply::Opened { handle, .. } => handle,
            Reply::Failed { code, message } => return Err(failed(code, message)),
            other => return Err(unexpected("Open", &other)),
        };
        let mut result = Ok(());
        for (i, chunk) in data.chunks(fs::MAX_TRANSFER).enumerate() {
            let offset = (i * fs::MAX_TRANSFER) as u64;
            match call(Request::Write { handle, offset, data: chunk.to_vec() }) {
                Ok(Reply::Written { .. }) => {}
                Ok(Reply::Failed { code, message }) => result = Err(failed(code, message)),
                Ok(other) => result = Err(unexpected("Write", &other)),
                Err(e) => result = Err(e),
            }
            if result.is_err() {
                break;
            }
        }
        let _ = call(Request::Close { handle });
        result
    }

    /// Move `from` to `to` (which must not exist).
    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), FsError> {
        match call(Request::Rename { from: from.to_string(), to: to.to_string() })? {
            Reply::Done => Ok(()),
            Reply::Failed { code, message } => Err(failed(code, message)),
            other => Err(unexpected("Rename", &other)),
        }
    }

    /// Make what was written durable.
    pub fn sync(&mut self) -> Result<(), FsError> {
        match call(Request::Sync {})? {
            Reply::Done => Ok(()),
            Reply::Failed { code, message } => Err(failed(code, message)),
            other => Err(unexpected("Sync", &other)),
        }
    }
}

impl FileSource for FsFiles {
    fn stat(&mut self, path: &str) -> Result<Meta, FsError> {
        match call(Request::Stat { path: path.to_string() })? {
            Reply::Info { kind, size, modified, .. } => Ok(Meta { is_dir: kind == fs::kind::DIR, size, modified }),
            Reply::Failed { code, message } => Err(failed(code, message)),
            other => Err(unexpected("Stat", &other)),
        }
    }

    fn read(&mut self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        let length = buf.len().min(fs::MAX_TRANSFER) as u32;
        for attempt in 0..2 {
            let handle = self.handle(path)?;
            match call(Request::Read { handle, offset, length })? {
                Reply::Data { data, .. } if data.len() <= length as usize => {
                    buf[..data.len()].copy_from_slice(&data);
                    return Ok(data.len());
                }
                // fs no longer knows the handle (a new session): open again.
                Reply::Failed { code: code::BAD_HANDLE, .. } if attempt == 0 => {
                    self.handles.remove(path);
                }
                Reply::Failed { code, message } => {
                    self.handles.remove(path);
                    return Err(failed(code, message));
                }
                other => return Err(unexpected("Read", &other)),
            }
        }
        Err(FsError::Other(String::from("fs refused a handle it had just opened")))
    }

    fn list(&mut self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        let mut reply = call(Request::List { path: path.to_string() })?;
        let mut out = Vec::new();
        loop {
            match reply {
                Reply::Entry { name, kind, size, modified } => {
                    if out.len() < MAX_ENTRIES {
                        out.push(DirEntry { name, meta: Meta { is_dir: kind == fs::kind::DIR, size, modified } });
                    }
                }
                Reply::EndList { .. } => break,
                Reply::Failed { code, message } => return Err(failed(code, message)),
                other => return Err(unexpected("List", &other)),
            }
            reply = match service::call_next(fs::SERVICE) {
                Ok(bytes) => decode(&bytes)?,
                Err(e) => return Err(FsError::Other(format!("the file service's listing broke off ({e:?})"))),
            };
        }
        Ok(out)
    }
}
