//! The blk service: the machine's disks, through the drivers (virtio-blk or
//! AHCI), as the `blk` contract. A request's extents go to the device
//! together (the driver puts them all on its queue or command slots). Its
//! state is its counters and who opened each session; the disks themselves
//! outlive it, so a restarted service finds its data where it left it, and
//! its companion delivers the request in flight again.
//!
//! The checkpoint disk belongs to the vault: only the client whose identity
//! init gives as `vault` may write it (or flush it); anyone may read it.
//! Who opened each session is part of the state, since a restarted service
//! is told only of the sessions opened since the last checkpoint.
//!
//! `ReadShared` and `WriteShared` move sectors through the session's shared
//! buffer (`resiliency_lib::shared`): the driver copies between its DMA
//! buffers and the client's memory once, and the messages stay small.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use blk::protocol::Request;
use blk::protocol::{dispatch, Blk, BlkHandler, Reply};
use blk::{code, CHECKPOINT_DISK, MAX_SECTORS, SECTOR};
use drivers::block::{BlockDevice, DeviceError};
use drivers::transfer::Io;
use libos::protocol::ReplySink;
use resiliency_lib::distill::{from_bytes, to_bytes};
use resiliency_lib::service::{serve, RequestOf, Service};

/// The program that owns the checkpoint disk (its identity, as init
/// gives it).
const CHECKPOINT_OWNER: &str = resiliency_lib::vault_store::VAULT;

/// What the service keeps (its checkpointed state): its counters, and who
/// opened each client session.
#[derive(Default)]
struct State {
    requests: u64,
    reads: u64,
    writes: u64,
    flushes: u64,
    sectors_read: u64,
    sectors_written: u64,
    failed: u64,
    /// Session -> the client's identity.
    clients: BTreeMap<u64, String>,
}
resiliency_lib::distill!(State { requests, reads, writes, flushes, sectors_read, sectors_written, failed, clients });

struct BlkService {
    state: State,
    /// The disks by role: index 0 data, 1 checkpoint.
    disks: Vec<Box<dyn BlockDevice>>,
    /// The session of the request in hand (whose shared buffer a shared
    /// request names).
    session: u64,
}

/// The disks in role order: a disk whose serial is `kintsugi-diskN` takes
/// place N; the others follow in the order the bus lists them.
fn open_disks() -> Vec<Box<dyn BlockDevice>> {
    let mut found = drivers::block_devices();
    let role = |d: &dyn BlockDevice| {
        d.info().serial.strip_prefix("kintsugi-disk").and_then(|n| n.parse::<usize>().ok()).unwrap_or(usize::MAX)
    };
    found.sort_by_key(|d| role(d.as_ref()));
    for (i, d) in found.iter().enumerate() {
        let info = d.info();
        log::info!(
            "disk {i} ({}): {} sectors of {} bytes, {} serial '{}'",
            if i == 0 {
                "data"
            } else if i == 1 {
                "checkpoint"
            } else {
                "extra"
            },
            info.sectors,
            info.sector_size,
            info.model,
            info.serial
        );
    }
    if found.is_empty() {
        log::warn!("no disks found");
    }
    found
}

fn failed(code: u32, message: String) -> Reply {
    Reply::Failed { code, message }
}

fn device_failure(e: DeviceError) -> Reply {
    match e {
        DeviceError::OutOfRange => failed(code::OUT_OF_RANGE, format!("{e}")),
        DeviceError::Misaligned => failed(code::BAD_REQUEST, format!("{e}")),
        DeviceError::Timeout => failed(code::TIMEOUT, format!("{e}")),
        DeviceError::NoDevice => failed(code::NO_DISK, format!("{e}")),
        DeviceError::Device(_) => failed(code::DEVICE, format!("{e}")),
    }
}

impl BlkService {
    fn disk(&mut self, disk: u8) -> Result<&mut Box<dyn BlockDevice>, Reply> {
        let count = self.disks.len();
        self.disks
            .get_mut(disk as usize)
            .ok_or_else(|| failed(code::NO_DISK, format!("no disk {disk} ({count} disks)")))
    }

    /// Check a request's extents against disk `disk`: the total sectors,
    /// and the extents as the driver takes them, `(lba, sectors)`.
    fn check_extents(&mut self, disk: u8, lbas: &[u64], counts: &[u32]) -> Result<(u32, Vec<(u64, u32)>), Reply> {
        let d = self.disk(disk)?;
        let sectors = d.info().sectors;
        if d.info().sector_size as usize != SECTOR {
            return Err(failed(code::DEVICE, format!("disk {disk} has {}-byte sectors", d.info().sector_size)));
        }
        if lbas.is_empty() || lbas.len() != counts.len() {
            return Err(failed(
                code::BAD_REQUEST,
                format!("{} extent addresses for {} counts", lbas.len(), counts.len()),
            ));
        }
        let mut total: u32 = 0;
        for (&lba, &count) in lbas.iter().zip(counts) {
            if count == 0 {
                return Err(failed(code::BAD_REQUEST, String::from("an empty extent")));
            }
            total = total.saturating_add(count);
            if total > MAX_SECTORS {
                return Err(failed(code::BAD_REQUEST, format!("more than {MAX_SECTORS} sectors in one request")));
            }
            if lba.checked_add(count as u64).is_none_or(|end| end > sectors) {
                return Err(failed(
                    code::OUT_OF_RANGE,
                    format!(
                        "sectors {lba}..{} past the end of disk {disk} ({sectors} sectors)",
                        lba.saturating_add(count as u64)
                    ),
                ));
            }
        }
        Ok((total, lbas.iter().copied().zip(counts.iter().copied()).collect()))
    }

    /// Count a read (`write` false) or a write of `total` sectors.
    fn count(&mut self, write: bool, total: u32) {
        let c = &mut self.state;
        let (done, sectors) =
            if write { (&mut c.writes, &mut c.sectors_written) } else { (&mut c.reads, &mut c.sectors_read) };
        *done += 1;
        *sectors += total as u64;
    }

    fn read_extents(&mut self, disk: u8, lbas: Vec<u64>, counts: Vec<u32>) -> Result<Reply, Reply> {
        let (total, extents) = self.check_extents(disk, &lbas, &counts)?;
        let mut data = vec![0u8; total as usize * SECTOR];
        self.disk(disk)?.read_extents(&extents, &mut data).map_err(device_failure)?;
        self.count(false, total);
        Ok(Reply::Data { data })
    }

    fn write_extents(&mut self, disk: u8, lbas: Vec<u64>, counts: Vec<u32>, data: Vec<u8>) -> Result<Reply, Reply> {
        let (total, extents) = self.check_extents(disk, &lbas, &counts)?;
        if data.len() != total as usize * SECTOR {
            return Err(failed(
                code::BAD_REQUEST,
                format!("{} bytes of data for {total} sectors ({} bytes)", data.len(), total as usize * SECTOR),
            ));
        }
        self.disk(disk)?.write_extents(&extents, &data).map_err(device_failure)?;
        self.count(true, total);
        Ok(Reply::Written { sectors: total })
    }

    /// Read (`write` false) or write the extents through the session's
    /// shared buffer from byte `at` (one copy between the device's DMA
    /// buffers and the client's memory), and count it; the sectors moved.
    fn shared_extents(&mut self, disk: u8, lbas: &[u64], counts: &[u32], at: u32, write: bool) -> Result<u32, Reply> {
        let (total, extents) = self.check_extents(disk, lbas, counts)?;
        let len = total as usize * SECTOR;
        let session = self.session;
        let device = self.disk(disk)?;
        let moved = resiliency_lib::shared::with(session, |map| {
            let at = at as usize;
            if at.checked_add(len).is_none_or(|end| end > map.len()) {
                return Err(failed(
                    code::BAD_REQUEST,
                    format!("{len} bytes at {at} run past the shared buffer ({} bytes)", map.len()),
                ));
            }
            let io = if write { Io::WriteFrom { map, at, len } } else { Io::ReadTo { map, at, len } };
            device.transfer_extents(&extents, io).map_err(device_failure)
        });
        match moved {
            Some(Ok(())) => {
                self.count(write, total);
                Ok(total)
            }
            Some(Err(e)) => Err(e),
            None => Err(failed(code::NO_SHARED_BUFFER, String::from("this session has no shared buffer"))),
        }
    }

    /// Refuse a write or flush of the checkpoint disk by anyone but the
    /// vault.
    fn check_owner(&self, session: u64, request: &Request) -> Result<(), Reply> {
        let disk = match request {
            Request::Write { disk, .. } | Request::WriteShared { disk, .. } | Request::Flush { disk } => *disk,
            _ => return Ok(()),
        };
        let client = self.state.clients.get(&session).map_or("", String::as_str);
        if disk != CHECKPOINT_DISK || client == CHECKPOINT_OWNER {
            return Ok(());
        }
        let who = if client.is_empty() { String::from("an unknown client") } else { format!("'{client}'") };
        Err(failed(
            code::FORBIDDEN,
            format!("disk {disk} (the checkpoint disk) belongs to the vault: {who} may not write it"),
        ))
    }

    fn answer(&mut self, result: Result<Reply, Reply>, out: &mut dyn ReplySink<Reply>) {
        self.state.requests += 1;
        match result {
            Ok(r) => out.reply(r),
            Err(r) => {
                if let Reply::Failed { code, message } = &r {
                    log::warn!("request failed ({code}): {message}");
                }
                self.state.failed += 1;
                out.reply(r)
            }
        }
    }
}

impl BlkHandler for BlkService {
    fn info(&mut self, disk: u8, out: &mut dyn ReplySink<Reply>) {
        let result = self.disk(disk).map(|d| {
            let info = d.info();
            Reply::Geometry {
                sectors: info.sectors,
                sector_size: info.sector_size,
                max_sectors: MAX_SECTORS,
                model: info.model.chars().take(64).collect(),
                serial: info.serial.chars().take(64).collect(),
            }
        });
        self.answer(result, out);
    }

    fn read(&mut self, disk: u8, lbas: Vec<u64>, counts: Vec<u32>, out: &mut dyn ReplySink<Reply>) {
        let result = self.read_extents(disk, lbas, counts);
        self.answer(result, out);
    }

    fn write(&mut self, disk: u8, lbas: Vec<u64>, counts: Vec<u32>, data: Vec<u8>, out: &mut dyn ReplySink<Reply>) {
        let result = self.write_extents(disk, lbas, counts, data);
        self.answer(result, out);
    }

    fn read_shared(&mut self, disk: u8, lbas: Vec<u64>, counts: Vec<u32>, at: u32, out: &mut dyn ReplySink<Reply>) {
        let result = self.shared_extents(disk, &lbas, &counts, at, false).map(|sectors| Reply::Filled { sectors });
        self.answer(result, out);
    }

    fn write_shared(&mut self, disk: u8, lbas: Vec<u64>, counts: Vec<u32>, at: u32, out: &mut dyn ReplySink<Reply>) {
        let result = self.shared_extents(disk, &lbas, &counts, at, true).map(|sectors| Reply::Written { sectors });
        self.answer(result, out);
    }

    fn flush(&mut self, disk: u8, out: &mut dyn ReplySink<Reply>) {
        let result = self.disk(disk).and_then(|d| d.flush().map_err(device_failure)).map(|()| Reply::Flushed);
        if result.is_ok() {
            self.state.flushes += 1;
        }
        self.answer(result, out);
    }
}

impl Service for BlkService {
    type Protocol = Blk;
    // Every request is idempotent, answered at once, and makes no calls.
    const LANES: bool = true;

    fn new() -> Self {
        BlkService { state: State::default(), disks: open_disks(), session: 0 }
    }

    /// Without a session (serving directly, with no companion) nobody is
    /// known to be the vault.
    fn handle(&mut self, request: RequestOf<Self>, out: &mut dyn ReplySink<Reply>) {
        self.handle_in_session(0, request, out);
    }

    fn handle_in_session(&mut self, session: u64, request: RequestOf<Self>, out: &mut dyn ReplySink<Reply>) {
        self.session = session;
        match self.check_owner(session, &request) {
            Ok(()) => dispatch(self, request, out),
            Err(refused) => self.answer(Err(refused), out),
        }
    }

    fn session_opened(&mut self, session: u64, client: &str) {
        self.state.clients.insert(session, String::from(client));
    }

    fn session_closed(&mut self, session: u64) {
        self.state.clients.remove(&session);
    }

    fn save(&self) -> Vec<u8> {
        to_bytes(&self.state)
    }

    fn restore(bytes: &[u8]) -> Result<Self, String> {
        let state: State = from_bytes(bytes).map_err(|e| format!("damaged checkpoint: {e}"))?;
        let s = BlkService { state, disks: open_disks(), session: 0 };
        s.check()?;
        Ok(s)
    }

    fn check(&self) -> Result<(), String> {
        let c = &self.state;
        if c.reads + c.writes + c.flushes + c.failed > c.requests {
            return Err(format!(
                "blk counters damaged: {} reads + {} writes + {} flushes + {} failures > {} requests",
                c.reads, c.writes, c.flushes, c.failed, c.requests
            ));
        }
        Ok(())
    }

    fn chaos_corrupt(&mut self) {
        self.state.reads = self.state.requests + 1;
    }
}

libos::main!(main);

fn main() -> i32 {
    serve::<BlkService>()
}
