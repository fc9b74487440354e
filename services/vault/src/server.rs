//! The vault service in the guest: the checkpoint disk through the blk
//! service ([`BlkDisk`]), and the loop that serves the vault contract to
//! any number of client sessions (the companions, the benchmark) at once,
//! one request at a time.
//!
//! At start it registers its name first (so clients can connect and wait),
//! then opens the checkpoint disk. Without one (no blk service, no disk 1,
//! no usable file system) it keeps serving, answering every request with
//! `Failed` 503 and the reason, so companions fall back to keeping their
//! checkpoints in memory.

use crate::disk::{DiskError, SectorDisk};
use crate::store::{valid_service_name, Vault, VaultError};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use checkpoint_record::Kind;
use libos::abi::{MapFlags, MemFlags, PAGE_SIZE};
use libos::channel::{select, Channel, Waitable};
use libos::directory;
use libos::handle::{Memory, OwnedHandle};
use libos::protocol::{Checker, Protocol};
use resiliency_lib::vault::{Reply, Request, Vault as VaultProtocol};

/// How long the vault waits for the blk service to register (its companion
/// registers as soon as init starts it, so this is only a bound for a
/// system without blk).
const BLK_WAIT_NS: u64 = 5_000_000_000;

/// The checkpoint disk through a blk session.
pub struct BlkDisk {
    disk: blk::Disk,
    sectors: u64,
}

fn disk_error(e: blk::DiskError) -> DiskError {
    DiskError(format!("{e}"))
}

impl SectorDisk for BlkDisk {
    fn sectors(&self) -> u64 {
        self.sectors
    }
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        self.disk.read(lba, buf).map_err(disk_error)
    }
    fn write(&mut self, lba: u64, data: &[u8]) -> Result<(), DiskError> {
        self.disk.write(lba, data).map_err(disk_error)
    }
    fn flush(&mut self) -> Result<(), DiskError> {
        self.disk.flush().map_err(disk_error)
    }
}

/// Connect to blk's checkpoint disk (waiting a while for blk to register).
fn connect_disk() -> Result<(BlkDisk, blk::Geometry), String> {
    let deadline = libos::time::now_ns() + BLK_WAIT_NS;
    let client = loop {
        match directory::connect(blk::SERVICE, false) {
            Ok(ep) => break blk::BlkClient::new(Channel::new(ep)),
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

/// The vault, or why there is none.
enum Backend {
    Ready(Vault<BlkDisk>),
    Unusable(String),
}

fn open_backend() -> Backend {
    let (disk, g) = match connect_disk() {
        Ok(d) => d,
        Err(why) => {
            log::warn!("{why}: checkpoints are not persisted");
            return Backend::Unusable(why);
        }
    };
    match Vault::open(disk, libos::time::now_ns) {
        Ok(v) => {
            let list = v.list();
            log::info!(
                "checkpoint disk: {} ({} MiB); boot {}; {} service{} stored{}",
                g.model,
                g.sectors / 2048,
                v.boot(),
                list.len(),
                if list.len() == 1 { "" } else { "s" },
                list.iter()
                    .map(|l| format!(" {}@{}", l.service, l.current.as_ref().map_or(0, |c| c.1.generation)))
                    .collect::<String>()
            );
            Backend::Ready(v)
        }
        Err(e) => {
            log::error!("cannot use the checkpoint disk: {e}");
            Backend::Unusable(e.message().to_string())
        }
    }
}

/// `s` cut to at most `max` bytes, at a character boundary (the contract's
/// strings have a maximum length).
fn clip(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

fn failed(e: VaultError) -> Reply {
    Reply::Failed { code: e.code(), message: clip(e.message(), 256) }
}

fn bad(message: String) -> Reply {
    failed(VaultError::BadRequest(message))
}

/// Copy the first `len` bytes of a client's memory object.
fn read_memory(handle: OwnedHandle, len: u64, what: &str) -> Result<Vec<u8>, Reply> {
    let memory = Memory(handle);
    let map = memory.map(MapFlags::empty()).map_err(|e| bad(format!("cannot map the {what}: {e}")))?;
    if len > map.len() as u64 {
        return Err(bad(format!("{what} of {len} bytes in a memory object of {}", map.len())));
    }
    // SAFETY: the mapping lives while we copy; the client may still write
    // the object, so its bytes are copied once and only the copy is used.
    Ok(unsafe { map.as_slice()[..len as usize].to_vec() })
}

/// A fresh memory object holding `bytes`.
fn memory_with(bytes: &[u8]) -> Result<OwnedHandle, Reply> {
    let pages = (bytes.len() as u64).div_ceil(PAGE_SIZE).max(1);
    let fail = |e| failed(VaultError::Disk(format!("out of memory for the reply: {e}")));
    let memory = Memory::alloc(pages, MemFlags::empty()).map_err(fail)?;
    {
        let map = memory.map(MapFlags::WRITE).map_err(fail)?;
        // SAFETY: a fresh private mapping of the new object.
        unsafe { map.as_mut_slice()[..bytes.len()].copy_from_slice(bytes) };
    }
    Ok(memory.0)
}

impl Backend {
    fn handle(&mut self, request: Request) -> Vec<Reply> {
        let vault = match self {
            Backend::Ready(v) => v,
            Backend::Unusable(why) => return vec![failed(VaultError::NoDisk(why.clone()))],
        };
        match request {
            Request::Commit { service, kind, taken_ns, state, len, epoch, epoch_len } => {
                vec![commit(vault, service, kind, taken_ns, state, len, epoch, epoch_len).unwrap_or_else(|r| r)]
            }
            Request::Latest { service } => vec![latest(vault, &service).unwrap_or_else(|r| r)],
            Request::List => {
                let list = vault.list();
                let mut out: Vec<Reply> = list
                    .iter()
                    .map(|l| match &l.current {
                        Some((slot, h)) => Reply::Entry {
                            service: l.service.clone(),
                            generation: h.generation,
                            kind: h.kind as u8,
                            len: h.state_len,
                            slot: *slot,
                            taken_ns: h.taken_ns,
                            boot: h.boot,
                        },
                        None => Reply::Entry {
                            service: l.service.clone(),
                            generation: 0,
                            kind: 0,
                            len: 0,
                            slot: 255,
                            taken_ns: 0,
                            boot: 0,
                        },
                    })
                    .collect();
                out.push(Reply::EndList { count: list.len() as u32 });
                out
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn commit(
    vault: &mut Vault<BlkDisk>,
    service: String,
    kind: u8,
    taken_ns: u64,
    state: OwnedHandle,
    len: u64,
    epoch: Vec<OwnedHandle>,
    epoch_len: u64,
) -> Result<Reply, Reply> {
    if !valid_service_name(&service) {
        return Err(bad(format!("bad service name {service:?}")));
    }
    let kind = Kind::from_u8(kind).ok_or_else(|| bad(format!("unknown distillation kind {kind}")))?;
    if len > crate::store::MAX_STATE {
        return Err(failed(VaultError::TooLarge(format!("a state of {len} bytes"))));
    }
    let state = read_memory(state, len, "state")?;
    let epoch = match (epoch.into_iter().next(), epoch_len) {
        (None, 0) => Vec::new(),
        (None, _) => return Err(bad(String::from("an epoch length without an epoch"))),
        (Some(_), n) if n > crate::store::MAX_EPOCH => {
            return Err(failed(VaultError::TooLarge(format!("an epoch of {n} bytes"))));
        }
        (Some(h), n) => read_memory(h, n, "epoch")?,
    };
    match vault.commit(&service, kind, taken_ns, &state, &epoch) {
        Ok(c) => Ok(Reply::Committed { generation: c.generation, slot: c.slot, ns: c.ns }),
        Err(e) => {
            log::warn!("{service}: commit failed: {e}");
            Err(failed(e))
        }
    }
}

fn latest(vault: &mut Vault<BlkDisk>, service: &str) -> Result<Reply, Reply> {
    if !valid_service_name(service) {
        return Err(bad(format!("bad service name {service:?}")));
    }
    let Some(l) = vault.latest(service).map_err(failed)? else { return Ok(Reply::NotFound) };
    let h = &l.record.header;
    let state = memory_with(&l.record.state)?;
    let epoch = if l.record.epoch.is_empty() { Vec::new() } else { vec![memory_with(&l.record.epoch)?] };
    let note = clip(&l.note, 256);
    Ok(Reply::Record {
        generation: h.generation,
        kind: h.kind as u8,
        taken_ns: h.taken_ns,
        boot: h.boot,
        state,
        len: h.state_len,
        epoch,
        epoch_len: h.epoch_len,
        slot: l.slot,
        note,
    })
}

/// One client session.
struct Session {
    channel: Channel<Reply, Request>,
    checker: Checker<VaultProtocol>,
}

impl Session {
    /// Serve what the client sent; false when the session is over.
    fn serve(&mut self, backend: &mut Backend) -> bool {
        loop {
            let request = match self.channel.try_recv() {
                Ok(Some(r)) => r,
                Ok(None) => return true,
                Err(_) => return false,
            };
            if let Err(v) = self.checker.on_request(&request) {
                log::warn!("a client broke the vault contract ({}); its session is closed", v.message);
                return false;
            }
            for reply in backend.handle(request) {
                if self.checker.on_reply(&reply).is_err() || self.channel.send(reply).is_err() {
                    return false;
                }
            }
        }
    }
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
    let mut backend = open_backend();
    let mut sessions: Vec<Session> = Vec::new();
    loop {
        let ready = {
            let mut items: Vec<&dyn Waitable> = vec![&listener as &dyn Waitable];
            items.extend(sessions.iter().map(|s| &s.channel as &dyn Waitable));
            select(&items, None)
        };
        match ready {
            Ok(0) => {
                while let Ok(Some((_, ep))) = listener.try_accept() {
                    sessions.push(Session { channel: Channel::new(ep), checker: Checker::new() });
                }
            }
            Ok(i) => {
                if !sessions[i - 1].serve(&mut backend) {
                    sessions.remove(i - 1);
                }
            }
            Err(e) => {
                log::error!("select: {e}");
                return 1;
            }
        }
    }
}
