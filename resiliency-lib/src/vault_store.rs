//! [`VaultStore`]: a [`CheckpointStore`] that persists checkpoints and the
//! log after them in the vault service (`services/vault`, the
//! [`vault`](crate::vault) contract), so a service restores its last
//! committed state after the machine reboots.
//!
//! The vault knows whose records these are from the session (init tells it
//! which program connected), so nothing here names the service except the
//! log messages.
//!
//! At open it connects to the vault (waiting a while for it to register)
//! and fetches the newest record and its log, which it keeps: image
//! captures are deltas, applied onto it. A commit sends the *full* state (a
//! memory object) and returns only once the vault has written and flushed
//! it; an append returns once its entry is on the disk.
//!
//! When the vault cannot be used (it is not there, it has no usable disk,
//! it stopped answering) the store does not pretend: it says so loudly
//! ([`log::error`]), is [`unavailable`](VaultStore::unavailable) with the
//! reason, answers commits and appends with `Unavailable` errors (the
//! companion keeps its log), and tries the vault again at later operations,
//! waiting longer each time (up to [`RETRY_MAX`]), until it comes back.
//! [`CheckpointStore::durable`] says which. When it comes back the store
//! fetches the newest record again; if that is not the one the companion
//! started from (the store was unavailable from the start), commits with the
//! companion's old generation are refused as `Stale` until it restarts from
//! [`CheckpointStore::latest`].
//!
//! An append whose answer was lost (the vault died after writing it) is
//! not written twice: after reconnecting, the store compares the vault's log
//! with its own and sends the entry again only if it is not there.
//!
//! A commit whose answer was lost (the vault wrote the record, then died)
//! leaves the vault a generation ahead of the companion, which was told the
//! commit failed and kept its log. The store then keeps restoring from the
//! record the companion's log follows (restoring from the newer one and
//! replaying that log would apply requests twice), refuses appends as
//! `Stale` (the vault's log now follows the newer record), and lets the next
//! commit supersede the orphan record.

use crate::contract::Distillation;
use crate::store::{apply, Capture, Checkpoint, CheckpointStore, StoreError};
use crate::vault::{Reply, Request, Vault};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;
use libos::channel::{Channel, Waitable};
use libos::handle::{Memory, OwnedHandle};
use libos::protocol::Checker;

/// The vault's name in the directory.
pub const VAULT: &str = "vault";
/// How long `open` waits for the vault to register.
const CONNECT_WAIT: Duration = Duration::from_secs(10);
/// How long a reconnection after a broken session waits.
const RECONNECT_WAIT: Duration = Duration::from_secs(3);
/// How long the vault may take to answer (a large commit on a slow disk,
/// its scan of the disk at boot, or blk coming back under it).
const ANSWER_WAIT: Duration = Duration::from_secs(90);
/// The first pause before trying an unavailable vault again.
const RETRY_FIRST: Duration = Duration::from_millis(100);
/// The longest pause between tries.
pub const RETRY_MAX: Duration = Duration::from_secs(10);

struct Session {
    channel: Channel<Request, Reply>,
    checker: Checker<Vault>,
}

impl Session {
    fn connect(wait: Duration) -> Result<Session, StoreError> {
        let deadline = libos::time::now() + wait;
        loop {
            match libos::directory::connect(VAULT, false) {
                Ok(ep) => return Ok(Session { channel: Channel::new(ep), checker: Checker::new() }),
                Err(e) if libos::time::now() >= deadline => {
                    return Err(StoreError::unavailable(format!("no vault ({e})")))
                }
                Err(_) => libos::time::sleep(Duration::from_millis(20)),
            }
        }
    }

    fn call(&mut self, request: Request) -> Result<Reply, StoreError> {
        let broken = |m: String| StoreError::unavailable(format!("vault session: {m}"));
        self.checker.on_request(&request).map_err(|v| broken(v.message))?;
        self.channel.send(request).map_err(|e| broken(e.to_string()))?;
        let reply = self.channel.recv_timeout(ANSWER_WAIT).map_err(|e| broken(e.to_string()))?;
        self.checker.on_reply(&reply).map_err(|v| broken(v.message))?;
        Ok(reply)
    }
}

fn read_memory(handle: OwnedHandle, len: u64) -> Result<Vec<u8>, StoreError> {
    Memory(handle).read(len).map_err(|e| StoreError::failed(format!("vault record of {len} bytes: {e}")))
}

fn memory_with(bytes: &[u8]) -> Result<OwnedHandle, StoreError> {
    let fail = |e| StoreError::failed(format!("memory for the vault: {e}"));
    Ok(Memory::from_bytes(bytes).map_err(fail)?.0)
}

/// A `Failed` answer as a store error.
fn refused(code: u32, message: &str) -> StoreError {
    let m = format!("the vault refused: {message} ({code})");
    match code {
        503 => StoreError::unavailable(m),
        507 if message.contains("log") => StoreError::log_full(m),
        409 => StoreError::stale(m),
        _ => StoreError::failed(m),
    }
}

/// What `Latest` (or `Reject`) answered.
struct Fetched {
    /// The newest record with its log, if any.
    latest: Option<Checkpoint>,
    /// Why it is not the newest written (a damaged slot), or empty.
    note: String,
    /// Its slot (255 for none).
    slot: u8,
    /// The boot it was taken in.
    boot: u64,
    /// The boot the machine is in now.
    this_boot: u64,
}

/// Ask the vault for the newest record of the session's service.
fn fetch(session: &mut Session, request: Request) -> Result<Fetched, StoreError> {
    match session.call(request)? {
        Reply::Record {
            generation,
            kind,
            taken_ns,
            boot,
            this_boot,
            state,
            len,
            epoch,
            epoch_len,
            slot,
            note,
            log,
            log_len,
            log_entries,
        } => {
            let entries = match log.into_iter().next() {
                Some(h) => checkpoint_record::log::decode_list(&read_memory(h, log_len)?, log_entries)
                    .map_err(|e| StoreError::failed(format!("the vault's log: {e}")))?,
                None if log_entries == 0 => Vec::new(),
                None => return Err(StoreError::failed(String::from("the vault announced log entries but sent none"))),
            };
            if generation == 0 {
                return Ok(Fetched { latest: Some(Checkpoint::log_only(entries)), note, slot, boot, this_boot });
            }
            let kind = match kind {
                1 => Distillation::Logical,
                2 => Distillation::Image,
                k => return Err(StoreError::failed(format!("the vault returned distillation kind {k}"))),
            };
            let data = read_memory(state, len)?;
            let epoch = match epoch.into_iter().next() {
                Some(h) => read_memory(h, epoch_len)?,
                None => Vec::new(),
            };
            let latest = Some(Checkpoint { generation, kind, data, taken_ns, epoch, log: entries });
            Ok(Fetched { latest, note, slot, boot, this_boot })
        }
        Reply::NotFound => Ok(Fetched { latest: None, note: String::new(), slot: 255, boot: 0, this_boot: 0 }),
        Reply::Failed { code, message } => Err(refused(code, &message)),
        _ => Err(StoreError::failed(String::from("the vault answered Latest or Reject with something else"))),
    }
}

/// Checkpoints in the vault.
pub struct VaultStore {
    service: String,
    session: Option<Session>,
    latest: Option<Checkpoint>,
    /// Why the newest record is not the newest written (a damaged slot).
    note: String,
    /// Why the vault cannot be used now (None: it can).
    unavailable: Option<String>,
    /// `latest` came from the vault (not just the empty start of a store
    /// that never reached it).
    synced: bool,
    /// The vault's newest generation when it is not `latest`'s: a commit
    /// whose answer was lost landed (see the module doc). Cleared by the
    /// next commit.
    vault_differs: Option<u64>,
    /// `latest` is a checkpoint taken in an earlier boot of the machine.
    earlier_boot: bool,
    /// When to try an unavailable vault again, and the pause after that.
    next_try_ns: u64,
    pause: Duration,
}

impl VaultStore {
    /// Connect to the vault and fetch the newest checkpoint of this
    /// program's service. Never fails: without a usable vault the store is
    /// [`unavailable`](VaultStore::unavailable) (and says so) until the
    /// vault comes back.
    pub fn open(service: &str) -> VaultStore {
        let mut store = VaultStore {
            service: service.to_string(),
            session: None,
            latest: None,
            note: String::new(),
            unavailable: None,
            synced: false,
            vault_differs: None,
            earlier_boot: false,
            next_try_ns: 0,
            pause: RETRY_FIRST,
        };
        match Session::connect(CONNECT_WAIT).and_then(|mut s| store.sync(&mut s).map(|()| s)) {
            Ok(s) => store.session = Some(s),
            Err(e) => store.become_unavailable(e.0),
        }
        store
    }

    /// Why the vault cannot be used now, or None if it can.
    pub fn unavailable(&self) -> Option<&str> {
        self.unavailable.as_deref()
    }

    /// The newest record's epoch (an encoded redo list, empty for none).
    pub fn epoch(&self) -> &[u8] {
        self.latest.as_ref().map_or(&[], |c| &c.epoch)
    }

    /// Why the record restored is not the newest one written (a damaged
    /// slot in the vault), or empty.
    pub fn note(&self) -> &str {
        &self.note
    }

    /// Fetch the newest record and its log over `session` and take them.
    fn sync(&mut self, session: &mut Session) -> Result<(), StoreError> {
        let Fetched { latest, note, slot, boot, this_boot } = fetch(session, Request::Latest)?;
        let service = &self.service;
        let first = !self.synced && self.unavailable.is_none();
        match &latest {
            _ if !first => {}
            Some(c) if c.generation > 0 => log::info!(
                "{service}: restoring checkpoint generation {} from the vault (slot {slot}, {} bytes, {}, taken at {} ms of boot {boot}){}",
                c.generation,
                c.data.len(),
                if c.kind == Distillation::Image { "image" } else { "logical" },
                c.taken_ns / 1_000_000,
                if c.log.is_empty() { String::new() } else { format!(", then {} log entries", c.log.len()) }
            ),
            Some(c) => log::info!("{service}: no checkpoint in the vault yet; {} log entries", c.log.len()),
            None => log::info!("{service}: no checkpoint in the vault yet"),
        }
        if !note.is_empty() {
            log::warn!("{service}: {note}");
        }
        let theirs = latest.as_ref().map_or(0, |c| c.generation);
        let ours = self.latest.as_ref().map_or(0, |c| c.generation);
        if self.synced && theirs != ours {
            // A commit of ours whose answer was lost: keep restoring from
            // the record the companion's log follows until the next commit.
            log::warn!(
                "{service}: the vault holds generation {theirs}, not {ours} as this store believed (a commit whose \
                 answer was lost); restores stay at {ours} and the next checkpoint supersedes it"
            );
            self.vault_differs = Some(theirs);
            self.note = note;
            return Ok(());
        } else if !self.synced && self.unavailable.is_some() && latest.is_some() {
            log::warn!(
                "{service}: the vault is back with generation {theirs}, which this service did not start from; \
                 commits are refused until it restarts from it"
            );
        }
        self.vault_differs = None;
        self.earlier_boot = latest.as_ref().is_some_and(|c| c.generation > 0) && boot < this_boot;
        self.latest = latest;
        self.note = note;
        self.synced = true;
        Ok(())
    }

    fn become_unavailable(&mut self, why: String) {
        if self.unavailable.is_none() {
            log::error!(
                "{}: the vault cannot be used ({why}); checkpoints and logged requests are NOT durable until it comes back",
                self.service
            );
        }
        self.session = None;
        self.unavailable = Some(why);
        self.next_try_ns = libos::time::now_ns() + self.pause.as_nanos() as u64;
        self.pause = (self.pause * 2).min(RETRY_MAX);
    }

    /// A usable session: the one there is, or a new one (after the pause,
    /// if the vault was unavailable), synchronised with the vault.
    fn session(&mut self, wait: Duration) -> Result<&mut Session, StoreError> {
        if self.session.is_none() {
            if let Some(why) = &self.unavailable {
                if libos::time::now_ns() < self.next_try_ns {
                    return Err(StoreError::unavailable(format!("the vault cannot be used ({why})")));
                }
            }
            let attempt = Session::connect(wait).and_then(|mut s| self.sync(&mut s).map(|()| s));
            match attempt {
                Ok(s) => {
                    if self.unavailable.take().is_some() {
                        log::info!("{}: the vault is back; checkpoints are durable again", self.service);
                    } else {
                        log::info!("{}: reconnected to the vault", self.service);
                    }
                    self.pause = RETRY_FIRST;
                    self.session = Some(s);
                }
                Err(e) => {
                    self.become_unavailable(e.0.clone());
                    return Err(e);
                }
            }
        }
        self.session.as_mut().ok_or_else(|| StoreError::unavailable("no vault session"))
    }

    /// Send `request` (made anew for each try); a broken session is opened
    /// again once, and `retry` tells whether to send it again then.
    fn call(
        &mut self,
        mut request: impl FnMut(&Self) -> Result<Request, StoreError>,
        mut retry: impl FnMut(&Self) -> bool,
    ) -> Result<Option<Reply>, StoreError> {
        let first = request(self)?;
        let fresh = self.session.is_none();
        let result = self.session(RECONNECT_WAIT)?.call(first);
        match result {
            Ok(r) => Ok(Some(r)),
            Err(e) if fresh => {
                self.become_unavailable(e.0.clone());
                Err(e)
            }
            Err(_) => {
                // The vault went away (or stopped answering): connect again,
                // which fetches its newest record and log, and try once more.
                self.session = None;
                self.session(RECONNECT_WAIT)?;
                if !retry(self) {
                    return Ok(None);
                }
                let again = request(self)?;
                match self.session(RECONNECT_WAIT)?.call(again) {
                    Ok(r) => Ok(Some(r)),
                    Err(e) => {
                        self.become_unavailable(e.0.clone());
                        Err(e)
                    }
                }
            }
        }
    }

    /// [`CheckpointStore::commit`]: the state and the epoch in one record.
    fn commit_record(
        &mut self,
        generation: u64,
        capture: Capture,
        taken_ns: u64,
        epoch: Vec<u8>,
    ) -> Result<(), StoreError> {
        let newest = self.latest.as_ref().map_or(0, |c| c.generation);
        if generation <= newest {
            return Err(StoreError::stale(format!(
                "generation {generation} does not follow the vault's newest, {newest}"
            )));
        }
        let full = apply(self.latest.as_ref().filter(|c| c.generation > 0), generation, capture, taken_ns)?;
        let kind = if full.kind == Distillation::Image { 2 } else { 1 };
        let request = |_: &Self| {
            let (epoch_handles, epoch_len) =
                if epoch.is_empty() { (Vec::new(), 0) } else { (vec![memory_with(&epoch)?], epoch.len() as u64) };
            Ok(Request::Commit {
                kind,
                taken_ns: full.taken_ns,
                state: memory_with(&full.data)?,
                len: full.data.len() as u64,
                epoch: epoch_handles,
                epoch_len,
            })
        };
        // Committing the same state again after a lost answer only makes a
        // newer record of it.
        let reply = self.call(request, |_| true)?;
        match reply {
            Some(Reply::Committed { generation, .. }) => {
                self.vault_differs = None;
                self.earlier_boot = false;
                self.latest = Some(Checkpoint { generation, epoch, log: Vec::new(), ..full });
                self.note.clear();
                Ok(())
            }
            Some(Reply::Failed { code, message }) => Err(refused(code, &message)),
            _ => {
                self.session = None;
                Err(StoreError::failed("the vault answered Commit with something else"))
            }
        }
    }
}

impl CheckpointStore for VaultStore {
    fn commit(&mut self, generation: u64, capture: Capture, taken_ns: u64, epoch: Vec<u8>) -> Result<(), StoreError> {
        self.commit_record(generation, capture, taken_ns, epoch)
    }

    fn append(&mut self, generation: u64, entry: &[u8]) -> Result<(), StoreError> {
        let newest = self.latest.as_ref().map_or(0, |c| c.generation);
        if generation != newest {
            return Err(StoreError::stale(format!(
                "an append after generation {generation}, but the vault's newest is generation {newest}"
            )));
        }
        if let Some(theirs) = self.vault_differs {
            return Err(StoreError::stale(format!(
                "the vault's newest record is generation {theirs} (a commit whose answer was lost), not {newest}; \
                 a checkpoint supersedes it"
            )));
        }
        let before = self.latest.as_ref().map_or(0, |c| c.log.len());
        let request = |_: &Self| Ok(Request::Append { generation, data: memory_with(entry)?, len: entry.len() as u64 });
        // After a reconnection the store holds the vault's log: the entry
        // went in already if it is the one entry more.
        let landed = |s: &Self| {
            s.latest.as_ref().is_some_and(|c| {
                c.generation == generation && c.log.len() == before + 1 && c.log.last().is_some_and(|l| l == entry)
            })
        };
        let reply = self.call(request, |s| !landed(s))?;
        match reply {
            None => Ok(()),
            Some(Reply::Appended { .. }) => {
                self.latest.get_or_insert_with(|| Checkpoint::log_only(Vec::new())).log.push(entry.to_vec());
                Ok(())
            }
            // An entry larger than a whole log (the requests since the last
            // append carried more bytes than it holds: many large writes
            // before a durable request) will never fit: like a full log, a
            // checkpoint covers it. (Retrying it held the durable reply
            // until the next checkpoint came by itself: a sync after a
            // 64 MiB write waited 3 s.)
            Some(Reply::Failed { code: 413, message }) => {
                Err(StoreError::log_full(format!("the vault refused: {message} (413): a checkpoint covers it instead")))
            }
            Some(Reply::Failed { code, message }) => Err(refused(code, &message)),
            Some(_) => {
                self.session = None;
                Err(StoreError::failed("the vault answered Append with something else"))
            }
        }
    }

    fn latest(&self) -> Option<&Checkpoint> {
        self.latest.as_ref()
    }

    /// The vault sets the record aside and answers with the one before it.
    /// Without a vault, the store forgets the record itself (the service
    /// then starts fresh), so that it does not stay stuck on it.
    fn reject_latest(&mut self, reason: &str) -> Result<(), StoreError> {
        let Some(generation) = self.latest.as_ref().map(|c| c.generation).filter(|g| *g > 0) else {
            return Ok(());
        };
        let reason: String = reason.chars().take(200).collect();
        let answer = self.session(RECONNECT_WAIT).and_then(|s| fetch(s, Request::Reject { generation, reason }));
        match answer {
            Ok(Fetched { latest, note, slot, boot, this_boot }) => {
                let older = latest.as_ref().map_or(0, |c| c.generation);
                self.earlier_boot = older > 0 && boot < this_boot;
                log::warn!(
                    "{}: the vault set generation {generation} aside; restoring generation {older} (slot {slot})",
                    self.service
                );
                self.latest = latest;
                self.note = note;
                self.vault_differs = None;
                Ok(())
            }
            Err(e) => {
                self.latest = None;
                Err(e)
            }
        }
    }

    fn restored_from_earlier_boot(&self) -> bool {
        self.earlier_boot
    }

    fn durable(&self) -> bool {
        self.unavailable.is_none() && self.synced
    }

    /// The session with the vault: the vault never speaks first, so it is
    /// ready only when the vault went away (or broke the protocol).
    fn waitable(&self) -> Option<&dyn Waitable> {
        self.session.as_ref().map(|s| &s.channel as &dyn Waitable)
    }

    /// The vault went away (it is restarted by init): connect to the new
    /// one now, so the next commit does not have to (a commit may come from
    /// init's final checkpoint at power-off, while init is busy).
    fn attend(&mut self) {
        self.session = None;
        if let Err(e) = self.session(RECONNECT_WAIT) {
            log::warn!("{}: {}; trying again at the next checkpoint", self.service, e.0);
        }
    }
}
