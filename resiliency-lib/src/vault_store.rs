//! [`VaultStore`]: a [`CheckpointStore`] that persists checkpoints in the
//! vault service (`services/vault`, the [`vault`](crate::vault) contract),
//! so a service restores its last committed checkpoint after the machine
//! reboots.
//!
//! At open it connects to the vault (waiting a while for it to register)
//! and fetches the newest record of the service, which it keeps: image
//! captures are deltas, applied onto it. A commit sends the *full* state
//! (a memory object) and returns only once the vault has written and
//! flushed it; a commit the vault refuses, or a vault that does not
//! answer, is an error (the companion then keeps its log). A broken
//! session is opened again at the next commit.

use crate::contract::Distillation;
use crate::store::{apply, Capture, Checkpoint, CheckpointStore, StoreError};
use crate::vault::{Reply, Request, Vault};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;
use libos::abi::{MapFlags, MemFlags, PAGE_SIZE};
use libos::channel::{Channel, Waitable};
use libos::handle::{Memory, OwnedHandle};
use libos::protocol::Checker;

/// The vault's name in the directory.
pub const VAULT: &str = "vault";
/// How long `open` waits for the vault to register.
const CONNECT_WAIT: Duration = Duration::from_secs(10);
/// How long a reconnection before a commit waits.
const RECONNECT_WAIT: Duration = Duration::from_secs(3);
/// How long the vault may take to answer (a large commit on a slow disk,
/// or its scan of the disk at boot).
const ANSWER_WAIT: Duration = Duration::from_secs(60);

struct Session {
    channel: Channel<Request, Reply>,
    checker: Checker<Vault>,
}

fn err(message: String) -> StoreError {
    StoreError(message)
}

impl Session {
    fn connect(wait: Duration) -> Result<Session, StoreError> {
        let deadline = libos::time::now() + wait;
        loop {
            match libos::directory::connect(VAULT, false) {
                Ok(ep) => return Ok(Session { channel: Channel::new(ep), checker: Checker::new() }),
                Err(e) if libos::time::now() >= deadline => return Err(err(format!("no vault ({e})"))),
                Err(_) => libos::time::sleep(Duration::from_millis(20)),
            }
        }
    }

    fn call(&mut self, request: Request) -> Result<Reply, StoreError> {
        self.checker.on_request(&request).map_err(|v| err(format!("vault session: {}", v.message)))?;
        self.channel.send(request).map_err(|e| err(format!("vault session: {e}")))?;
        let reply = self.channel.recv_timeout(ANSWER_WAIT).map_err(|e| err(format!("vault session: {e}")))?;
        self.checker.on_reply(&reply).map_err(|v| err(format!("vault session: {}", v.message)))?;
        Ok(reply)
    }
}

fn read_memory(handle: OwnedHandle, len: u64) -> Result<Vec<u8>, StoreError> {
    let memory = Memory(handle);
    let map = memory.map(MapFlags::empty()).map_err(|e| err(format!("vault record: {e}")))?;
    if len > map.len() as u64 {
        return Err(err(format!("vault record of {len} bytes in a smaller memory object")));
    }
    // SAFETY: the vault filled the object before sending it and keeps no
    // handle to it; the mapping lives while we copy.
    Ok(unsafe { map.as_slice()[..len as usize].to_vec() })
}

fn memory_with(bytes: &[u8]) -> Result<OwnedHandle, StoreError> {
    let pages = (bytes.len() as u64).div_ceil(PAGE_SIZE).max(1);
    let memory = Memory::alloc(pages, MemFlags::empty()).map_err(|e| err(format!("memory for the checkpoint: {e}")))?;
    {
        let map = memory.map(MapFlags::WRITE).map_err(|e| err(format!("memory for the checkpoint: {e}")))?;
        // SAFETY: a fresh private mapping of the new object.
        unsafe { map.as_mut_slice()[..bytes.len()].copy_from_slice(bytes) };
    }
    Ok(memory.0)
}

fn failed(code: u32, message: &str) -> StoreError {
    err(format!("the vault refused: {message} ({code})"))
}

/// Checkpoints in the vault.
pub struct VaultStore {
    service: String,
    session: Option<Session>,
    latest: Option<Checkpoint>,
    /// The newest record's epoch (encoded redo list; empty for none).
    epoch: Vec<u8>,
    /// Why the newest record is not the newest written (a damaged slot).
    note: String,
}

impl VaultStore {
    /// Connect to the vault and fetch `service`'s newest checkpoint.
    /// Fails if there is no vault, or it has no usable disk.
    pub fn open(service: &str) -> Result<VaultStore, StoreError> {
        let mut session = Session::connect(CONNECT_WAIT)?;
        let mut store = VaultStore {
            service: service.to_string(),
            session: None,
            latest: None,
            epoch: Vec::new(),
            note: String::new(),
        };
        match session.call(Request::Latest { service: service.to_string() })? {
            Reply::Record { generation, kind, taken_ns, boot, state, len, epoch, epoch_len, slot, note } => {
                let kind = match kind {
                    1 => Distillation::Logical,
                    2 => Distillation::Image,
                    k => return Err(err(format!("the vault returned distillation kind {k}"))),
                };
                let data = read_memory(state, len)?;
                store.epoch = match epoch.into_iter().next() {
                    Some(h) => read_memory(h, epoch_len)?,
                    None => Vec::new(),
                };
                log::info!(
                    "{service}: restoring checkpoint generation {generation} from the vault (slot {slot}, {len} bytes, {}, taken at {} ms of boot {boot})",
                    if kind == Distillation::Image { "image" } else { "logical" },
                    taken_ns / 1_000_000
                );
                if !note.is_empty() {
                    log::warn!("{service}: {note}");
                }
                store.note = note;
                store.latest = Some(Checkpoint { generation, kind, data, taken_ns });
            }
            Reply::NotFound => log::info!("{service}: no checkpoint in the vault yet"),
            Reply::Failed { code, message } => return Err(failed(code, &message)),
            _ => return Err(err(String::from("the vault answered Latest with something else"))),
        }
        store.session = Some(session);
        Ok(store)
    }

    /// The newest record's epoch (an encoded redo list, empty for none).
    pub fn epoch(&self) -> &[u8] {
        &self.epoch
    }

    /// Why the record restored is not the newest one written (a damaged
    /// slot in the vault), or empty.
    pub fn note(&self) -> &str {
        &self.note
    }

    /// Commit `capture` with an epoch (an encoded redo list, or empty).
    pub fn commit_with_epoch(
        &mut self,
        generation: u64,
        capture: Capture,
        taken_ns: u64,
        epoch: &[u8],
    ) -> Result<(), StoreError> {
        let full = apply(self.latest.as_ref(), generation, capture, taken_ns)?;
        // A session that broke since the last commit (the vault restarted)
        // is opened again once.
        let mut reconnected = false;
        let reply = loop {
            let request = self.commit_request(&full, epoch)?;
            let session = match self.session.as_mut() {
                Some(s) => s,
                None => {
                    reconnected = true;
                    self.session.insert(Session::connect(RECONNECT_WAIT)?)
                }
            };
            match session.call(request) {
                Ok(r) => break r,
                Err(e) => {
                    self.session = None;
                    if reconnected {
                        return Err(e);
                    }
                }
            }
        };
        match reply {
            Reply::Committed { generation, .. } => {
                self.latest = Some(Checkpoint { generation, ..full });
                self.epoch = epoch.to_vec();
                self.note.clear();
                Ok(())
            }
            Reply::Failed { code, message } => Err(failed(code, &message)),
            _ => {
                self.session = None;
                Err(err(String::from("the vault answered Commit with something else")))
            }
        }
    }

    fn commit_request(&self, full: &Checkpoint, epoch: &[u8]) -> Result<Request, StoreError> {
        let kind = if full.kind == Distillation::Image { 2 } else { 1 };
        let state = memory_with(&full.data)?;
        let (epoch_handles, epoch_len) =
            if epoch.is_empty() { (Vec::new(), 0) } else { (vec![memory_with(epoch)?], epoch.len() as u64) };
        Ok(Request::Commit {
            service: self.service.clone(),
            kind,
            taken_ns: full.taken_ns,
            state,
            len: full.data.len() as u64,
            epoch: epoch_handles,
            epoch_len,
        })
    }
}

impl CheckpointStore for VaultStore {
    fn commit(&mut self, generation: u64, capture: Capture, taken_ns: u64) -> Result<(), StoreError> {
        self.commit_with_epoch(generation, capture, taken_ns, &[])
    }

    fn latest(&self) -> Option<&Checkpoint> {
        self.latest.as_ref()
    }

    /// The session with the vault: the vault never speaks first, so it is
    /// ready only when the vault went away (or broke the protocol).
    fn waitable(&self) -> Option<&dyn Waitable> {
        self.session.as_ref().map(|s| &s.channel as &dyn Waitable)
    }

    /// The vault went away (it is restarted by init): connect to the new
    /// one now, so the next commit does not have to (a commit may come from
    /// init's final checkpoint at power-off, while init cannot answer
    /// directory requests).
    fn attend(&mut self) {
        self.session = None;
        match Session::connect(RECONNECT_WAIT) {
            Ok(s) => {
                log::info!("{}: reconnected to the vault", self.service);
                self.session = Some(s);
            }
            Err(e) => log::warn!("{}: {}; trying again at the next checkpoint", self.service, e.0),
        }
    }
}
