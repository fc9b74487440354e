//! The vault service in the guest: the checkpoint disk through the blk
//! service ([`BlkDisk`], which reconnects to blk when its session dies), and
//! the loop that serves the vault contract to any number of client sessions
//! (the companions, the benchmark) at once.
//!
//! At start it registers its name first (so clients can connect and wait),
//! then opens the checkpoint disk. Without one (no blk service, no disk 1,
//! no usable file system) it keeps serving, answering every request with
//! `Failed` 503 and the reason, and tries the disk again (with a growing
//! pause) at later requests, so the vault comes back by itself.
//!
//! Each session acts for the client init says connected (its program's
//! identity); requests name no service. Appends that arrive together, from
//! any sessions, are written together and flushed once (group commit).
//!
//! A client is served one request at a time, as the contract says: one
//! that sends its next request before reading the answer, that does not
//! read its answers (its ring is full), or whose message does not decode
//! (or carries handles it does not name) loses its session, and a client
//! may hold at most [`SESSIONS_PER_CLIENT`] sessions and all clients
//! [`MAX_SESSIONS`], so that no client holds up the companions' commits.
//! (The hostile client found all three holes: 64 requests at once were
//! answered, 300 sessions made the vault's wait fail and init restart it.)

use crate::disk::{DiskError, SectorDisk};
use crate::store::{valid_service_name, Vault, VaultError, MAX_ENTRY};
use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use checkpoint_record::Kind;
use libos::abi::Error;
use libos::channel::{select, Channel, Waitable};
use libos::directory;
use libos::handle::{Memory, OwnedHandle};
use libos::protocol::{Checker, Protocol};
use resiliency_lib::vault::{Reply, Request, Vault as VaultProtocol};

/// How long the vault waits for the blk service to register at start (its
/// companion registers as soon as init starts it, so this is only a bound
/// for a system without blk).
const BLK_WAIT_NS: u64 = 5_000_000_000;
/// How long the vault waits for blk to come back when its session broke
/// (init restarts a blk companion that died).
const BLK_RECONNECT_NS: u64 = 60_000_000_000;
/// Sessions one client may hold: a companion holds one, a test program a
/// few (the hostile client's flood, 24 at once, is served).
const SESSIONS_PER_CLIENT: usize = 32;
/// Sessions in all: well under what one wait can name (256, the listener
/// included).
const MAX_SESSIONS: usize = 200;
/// Reconnections one disk operation may make.
const RECONNECTS: u32 = 3;
/// The first and the longest pause before trying an unusable disk again.
const RETRY_FIRST_NS: u64 = 500_000_000;
const RETRY_MAX_NS: u64 = 30_000_000_000;

/// The checkpoint disk through a blk session (resumable, with a shared
/// buffer), connected again when the session breaks for good: blk requests
/// are idempotent, so the one cut short is sent again.
pub struct BlkDisk {
    disk: blk::Disk,
    sectors: u64,
}

fn disk_error(e: blk::DiskError) -> DiskError {
    DiskError(format!("{e}"))
}

impl BlkDisk {
    fn retry<T>(
        &mut self,
        what: &str,
        mut op: impl FnMut(&mut blk::Disk) -> Result<T, blk::DiskError>,
    ) -> Result<T, DiskError> {
        let mut reconnects = 0;
        loop {
            match op(&mut self.disk) {
                Ok(v) => return Ok(v),
                Err(blk::DiskError::Session(why)) if reconnects < RECONNECTS => {
                    reconnects += 1;
                    log::warn!("the blk session broke during a {what} ({why}); waiting for blk to reconnect");
                    let (disk, g) = connect_disk(BLK_RECONNECT_NS).map_err(DiskError)?;
                    if g.sectors != self.sectors {
                        return Err(DiskError(format!(
                            "blk came back with a checkpoint disk of {} sectors instead of {}",
                            g.sectors, self.sectors
                        )));
                    }
                    self.disk = disk.disk;
                    log::info!("reconnected to blk; the {what} is sent again");
                }
                Err(e) => return Err(disk_error(e)),
            }
        }
    }
}

impl SectorDisk for BlkDisk {
    fn sectors(&self) -> u64 {
        self.sectors
    }
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        self.retry("read", |d| d.read(lba, buf))
    }
    fn write(&mut self, lba: u64, data: &[u8]) -> Result<(), DiskError> {
        self.retry("write", |d| d.write(lba, data))
    }
    fn flush(&mut self) -> Result<(), DiskError> {
        self.retry("flush", |d| d.flush())
    }
}

/// Connect to blk's checkpoint disk (waiting up to `wait_ns` for blk to
/// register).
fn connect_disk(wait_ns: u64) -> Result<(BlkDisk, blk::Geometry), String> {
    let deadline = libos::time::now_ns() + wait_ns;
    let client = loop {
        match directory::connect(blk::SERVICE, false) {
            // Resumable, with a shared buffer: records go to the disk with
            // one copy, and a restart of blk's companion is absorbed by the
            // session (the reconnect in `BlkDisk::retry` stays for one
            // that does not come back).
            Ok(ep) => break blk::session_over(ep).map_err(|e| format!("no blk session ({e})"))?,
            Err(e) if libos::time::now_ns() >= deadline => return Err(format!("no blk service ({e})")),
            Err(_) => libos::time::sleep(core::time::Duration::from_millis(20)),
        }
    };
    let mut disk = blk::Disk::new(client, blk::CHECKPOINT_DISK);
    let g = disk.info().map_err(|e| format!("no checkpoint disk ({e})"))?;
    if g.sector_size as usize != crate::disk::SECTOR {
        return Err(format!("the checkpoint disk has {}-byte sectors; the vault needs 512", g.sector_size));
    }
    Ok((BlkDisk { disk, sectors: g.sectors }, g))
}

/// The vault, or why there is none (and when to try again).
enum Backend {
    Ready(Box<Vault<BlkDisk>>),
    Unusable { why: String, next_try_ns: u64, pause_ns: u64 },
}

fn open_backend(wait_ns: u64) -> Result<Box<Vault<BlkDisk>>, String> {
    let (disk, g) = connect_disk(wait_ns)?;
    let boot_id = match libos::sys::system_info() {
        Ok(i) => i.boot_id,
        Err(e) => {
            log::warn!("no boot identity from the kernel ({e:?}); every open of the disk counts as a new boot");
            0
        }
    };
    match Vault::open_in_boot(disk, libos::time::now_ns, boot_id) {
        Ok(v) => {
            let list = v.list();
            log::info!(
                "checkpoint disk: {} ({} MiB); pool {} MiB; boot {}; {} service{} stored{}",
                g.model,
                g.sectors / 2048,
                v.pool().sectors() / 2048,
                v.boot(),
                list.len(),
                if list.len() == 1 { "" } else { "s" },
                list.iter()
                    .map(|l| format!(" {}@{}", l.service, l.current.as_ref().map_or(0, |c| c.1.generation)))
                    .collect::<String>()
            );
            Ok(Box::new(v))
        }
        Err(e) => Err(format!("cannot use the checkpoint disk: {e}")),
    }
}

impl Backend {
    fn start() -> Backend {
        match open_backend(BLK_WAIT_NS) {
            Ok(v) => Backend::Ready(v),
            Err(why) => {
                log::error!("{why}: checkpoints are not persisted until it can be used");
                Backend::Unusable { why, next_try_ns: libos::time::now_ns() + RETRY_FIRST_NS, pause_ns: RETRY_FIRST_NS }
            }
        }
    }

    /// The vault, trying an unusable disk again when the pause is over.
    fn vault(&mut self) -> Result<&mut Vault<BlkDisk>, VaultError> {
        if let Backend::Unusable { next_try_ns, pause_ns, why } = self {
            let now = libos::time::now_ns();
            if now < *next_try_ns {
                return Err(VaultError::NoDisk(why.clone()));
            }
            match open_backend(0) {
                Ok(v) => {
                    log::info!("the checkpoint disk is usable now");
                    *self = Backend::Ready(v);
                }
                Err(e) => {
                    let pause = (*pause_ns * 2).min(RETRY_MAX_NS);
                    *self = Backend::Unusable { why: e.clone(), next_try_ns: now + pause, pause_ns: pause };
                    return Err(VaultError::NoDisk(e));
                }
            }
        }
        match self {
            Backend::Ready(v) => Ok(v),
            Backend::Unusable { why, .. } => Err(VaultError::NoDisk(why.clone())),
        }
    }
}

/// `s` cut to at most `max` bytes, at a character boundary (the contract's
/// strings have a maximum length).
fn clip(s: &str, max: usize) -> String {
    libos::wire::char_prefix(s, max).to_string()
}

fn failed(e: VaultError) -> Reply {
    Reply::Failed { code: e.code(), message: clip(e.message(), 256) }
}

fn bad(message: String) -> Reply {
    failed(VaultError::BadRequest(message))
}

/// Copy the first `len` bytes of a client's memory object.
fn read_memory(handle: OwnedHandle, len: u64, what: &str) -> Result<Vec<u8>, VaultError> {
    // The client may still write the object: its bytes are copied once and
    // only the copy is used.
    Memory(handle).read(len).map_err(|e| match e {
        Error::InvalidArgument => VaultError::BadRequest(format!("{what} of {len} bytes in a smaller memory object")),
        e => VaultError::BadRequest(format!("cannot map the {what}: {e}")),
    })
}

/// A fresh memory object holding `bytes`.
fn memory_with(bytes: &[u8]) -> Result<OwnedHandle, VaultError> {
    let memory =
        Memory::from_bytes(bytes).map_err(|e| VaultError::Disk(format!("out of memory for the reply: {e}")))?;
    Ok(memory.0)
}

/// One request, other than an append, for `client`.
fn handle(backend: &mut Backend, client: &str, request: Request) -> Vec<Reply> {
    if !valid_service_name(client) {
        return vec![bad(format!("the identity {client:?} cannot name a service in the vault"))];
    }
    let vault = match backend.vault() {
        Ok(v) => v,
        Err(e) => return vec![failed(e)],
    };
    match request {
        Request::Commit { kind, taken_ns, state, len, epoch, epoch_len } => {
            vec![commit(vault, client, kind, taken_ns, state, len, epoch, epoch_len).unwrap_or_else(failed)]
        }
        Request::Latest => vec![latest(vault, client).unwrap_or_else(failed)],
        Request::Reject { generation, reason } => {
            vault.reject(client, generation, &reason);
            vec![latest(vault, client).unwrap_or_else(failed)]
        }
        Request::List => {
            let list = vault.list();
            let mut out: Vec<Reply> = list
                .iter()
                .map(|l| {
                    let (slot, generation, kind, len, taken_ns, boot) = match &l.current {
                        Some((slot, h)) => (*slot, h.generation, h.kind as u8, h.state_len, h.taken_ns, h.boot),
                        None => (255, 0, 0, 0, 0, 0),
                    };
                    Reply::Entry {
                        service: l.service.clone(),
                        generation,
                        kind,
                        len,
                        slot,
                        taken_ns,
                        boot,
                        log_entries: l.log_entries,
                        log_bytes: l.log_bytes,
                    }
                })
                .collect();
            out.push(Reply::EndList { count: list.len() as u32 });
            out
        }
        Request::Append { .. } => vec![bad(String::from("an append outside a group"))],
    }
}

#[allow(clippy::too_many_arguments)]
fn commit(
    vault: &mut Vault<BlkDisk>,
    service: &str,
    kind: u8,
    taken_ns: u64,
    state: OwnedHandle,
    len: u64,
    epoch: Vec<OwnedHandle>,
    epoch_len: u64,
) -> Result<Reply, VaultError> {
    let kind =
        Kind::from_u8(kind).ok_or_else(|| VaultError::BadRequest(format!("unknown distillation kind {kind}")))?;
    if len > crate::store::MAX_STATE {
        return Err(VaultError::TooLarge(format!("a state of {len} bytes")));
    }
    let state = read_memory(state, len, "state")?;
    let epoch = match (epoch.into_iter().next(), epoch_len) {
        (None, 0) => Vec::new(),
        (None, _) => return Err(VaultError::BadRequest(String::from("an epoch length without an epoch"))),
        (Some(_), n) if n > crate::store::MAX_EPOCH => {
            return Err(VaultError::TooLarge(format!("an epoch of {n} bytes")));
        }
        (Some(h), n) => read_memory(h, n, "epoch")?,
    };
    match vault.commit(service, kind, taken_ns, &state, &epoch) {
        Ok(c) => Ok(Reply::Committed { generation: c.generation, slot: c.slot, ns: c.ns }),
        Err(e) => {
            log::warn!("{service}: commit failed: {e}");
            Err(e)
        }
    }
}

fn latest(vault: &mut Vault<BlkDisk>, service: &str) -> Result<Reply, VaultError> {
    let this_boot = vault.boot();
    let Some(l) = vault.latest(service)? else { return Ok(Reply::NotFound) };
    let (log, log_len) = if l.log.is_empty() {
        (Vec::new(), 0)
    } else {
        let bytes = checkpoint_record::log::encode_list(&l.log);
        (vec![memory_with(&bytes)?], bytes.len() as u64)
    };
    let log_entries = l.log.len() as u64;
    let note = clip(&l.note, 256);
    let Some(r) = l.record else {
        return Ok(Reply::Record {
            generation: 0,
            kind: 0,
            taken_ns: 0,
            boot: 0,
            this_boot,
            state: memory_with(&[])?,
            len: 0,
            epoch: Vec::new(),
            epoch_len: 0,
            slot: 255,
            note,
            log,
            log_len,
            log_entries,
        });
    };
    let h = &r.header;
    let epoch = if r.epoch.is_empty() { Vec::new() } else { vec![memory_with(&r.epoch)?] };
    Ok(Reply::Record {
        generation: h.generation,
        kind: h.kind as u8,
        taken_ns: h.taken_ns,
        boot: h.boot,
        this_boot,
        state: memory_with(&r.state)?,
        len: h.state_len,
        epoch,
        epoch_len: h.epoch_len,
        slot: l.slot,
        note,
        log,
        log_len,
        log_entries,
    })
}

/// One client session.
struct Session {
    channel: Channel<Reply, Request>,
    checker: Checker<VaultProtocol>,
    /// Who it acts for: the client's program, as init said.
    client: String,
}

impl Session {
    /// The client's next request; Err(()) when the session is over.
    fn next(&mut self) -> Result<Option<Request>, ()> {
        let request = match self.channel.try_recv() {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(None),
            Err(libos::channel::ChannelError::PeerClosed) => return Err(()),
            Err(e) => {
                log::warn!("{} sent a message the vault cannot take ({e}); its session is closed", self.client);
                return Err(());
            }
        };
        if let Err(v) = self.checker.on_request(&request) {
            log::warn!("{} broke the vault contract ({}); its session is closed", self.client, v.message);
            return Err(());
        }
        // The next request already waiting: sent before this one's answer.
        if self.channel.endpoint().is_ready() && !self.channel.endpoint().peer_closed() {
            log::warn!("{} sent a request before reading its answer; its session is closed", self.client);
            return Err(());
        }
        Ok(Some(request))
    }

    /// Send replies; false when the session is over.
    fn answer(&mut self, replies: Vec<Reply>) -> bool {
        // Never wait for a client to make room, or the others would wait:
        // one that left an earlier answer unread loses its session. (The
        // answers to one request, a few entries, fit in an empty ring.)
        if self.channel.endpoint().unread_sent().map_or(true, |n| n > 0) {
            log::warn!("{} does not read its answers; its session is closed", self.client);
            return false;
        }
        for reply in replies {
            if self.checker.on_reply(&reply).is_err() || self.channel.send(reply).is_err() {
                return false;
            }
        }
        true
    }
}

/// One waiting append: which session, the generation it follows, the entry.
struct Pending {
    session: usize,
    generation: u64,
    data: Vec<u8>,
}

/// Serve one round: every session's waiting request, the appends among
/// them written together and flushed once. Returns the sessions that ended.
fn serve_round(backend: &mut Backend, sessions: &mut [Session]) -> Vec<usize> {
    let mut ended = Vec::new();
    let mut appends: Vec<Pending> = Vec::new();
    for (i, s) in sessions.iter_mut().enumerate() {
        let request = match s.next() {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(()) => {
                ended.push(i);
                continue;
            }
        };
        let replies = match request {
            Request::Append { generation, data, len } => {
                let entry = if len > MAX_ENTRY {
                    Err(VaultError::TooLarge(format!("a log entry of {len} bytes (the most is {MAX_ENTRY})")))
                } else {
                    read_memory(data, len, "log entry")
                };
                match entry {
                    Ok(data) => {
                        appends.push(Pending { session: i, generation, data });
                        continue;
                    }
                    Err(e) => vec![failed(e)],
                }
            }
            other => handle(backend, &s.client.clone(), other),
        };
        if !s.answer(replies) {
            ended.push(i);
        }
    }
    if !appends.is_empty() {
        let results = match backend.vault() {
            Ok(vault) => {
                let batch: Vec<(&str, u64, &[u8])> = appends
                    .iter()
                    .map(|p| (sessions[p.session].client.as_str(), p.generation, p.data.as_slice()))
                    .collect();
                vault.append_many(&batch)
            }
            Err(e) => appends.iter().map(|_| Err(e.clone())).collect(),
        };
        for (p, r) in appends.iter().zip(results) {
            let reply = match r {
                Ok(a) => Reply::Appended { entries: a.entries, bytes_free: a.bytes_free },
                Err(e) => {
                    if e.code() != 409 && e.code() != 507 {
                        log::warn!("{}: append failed: {e}", sessions[p.session].client);
                    }
                    failed(e)
                }
            };
            if !sessions[p.session].answer(vec![reply]) {
                ended.push(p.session);
            }
        }
    }
    ended.sort_unstable();
    ended.dedup();
    ended
}

/// Run the vault. Returns only on a fatal error.
pub fn run() -> i32 {
    let max = VaultProtocol::MAX_REQUEST_BYTES.max(VaultProtocol::MAX_REPLY_BYTES);
    let mut listener = match directory::register_for(crate::SERVICE, max) {
        Ok(l) => l,
        Err(e) => {
            log::error!("cannot register {}: {e}", crate::SERVICE);
            return 1;
        }
    };
    let mut backend = Backend::start();
    let mut sessions: Vec<Session> = Vec::new();
    // Connections refused for the limits.
    let mut refused: u64 = 0;
    loop {
        let ready = {
            let mut items: Vec<&dyn Waitable> = vec![&listener as &dyn Waitable];
            items.extend(sessions.iter().map(|s| &s.channel as &dyn Waitable));
            select(&items, None)
        };
        match ready {
            Ok(0) => {
                while let Ok(Some(c)) = listener.try_accept() {
                    let held = sessions.iter().filter(|s| s.client == c.client).count();
                    if held >= SESSIONS_PER_CLIENT || sessions.len() >= MAX_SESSIONS {
                        refused += 1;
                        // Once, then every 64th: a flood must not flood the console.
                        if refused % 64 == 1 {
                            log::warn!(
                                "{} holds {held} sessions ({} in all); its new connection is refused ({refused} so far)",
                                c.client,
                                sessions.len()
                            );
                        }
                        continue;
                    }
                    sessions.push(Session {
                        channel: Channel::new(c.endpoint),
                        checker: Checker::new(),
                        client: c.client,
                    });
                }
            }
            Ok(_) => {
                for i in serve_round(&mut backend, &mut sessions).into_iter().rev() {
                    sessions.remove(i);
                }
            }
            Err(e) => {
                log::error!("select: {e}");
                return 1;
            }
        }
    }
}
