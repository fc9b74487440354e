//! The blk service: the machine's disks, through the drivers (virtio-blk or
//! AHCI), as the `blk` contract. A request's extents go to the device
//! together (the driver puts them all on its queue or command slots). Its state is only its counters; the disks
//! themselves outlive it, so a restarted service finds its data where it
//! left it, and its companion delivers the request in flight again.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use blk::protocol::{dispatch, Blk, BlkHandler, Reply};
use blk::{code, MAX_SECTORS, SECTOR};
use drivers::block::{BlockDevice, DeviceError};
use libos::protocol::ReplySink;
use resiliency_lib::distill::{from_bytes, to_bytes};
use resiliency_lib::service::{serve, RequestOf, Service};

/// What the service counts (its checkpointed state).
#[derive(Default)]
struct Counters {
    requests: u64,
    reads: u64,
    writes: u64,
    flushes: u64,
    sectors_read: u64,
    sectors_written: u64,
    failed: u64,
}
resiliency_lib::distill!(Counters { requests, reads, writes, flushes, sectors_read, sectors_written, failed });

struct BlkService {
    counters: Counters,
    /// The disks by role: index 0 data, 1 checkpoint.
    disks: Vec<Box<dyn BlockDevice>>,
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

    /// Check a request's extents against disk `disk`: the total sectors.
    fn check_extents(&mut self, disk: u8, lbas: &[u64], counts: &[u32]) -> Result<u32, Reply> {
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
        Ok(total)
    }

    fn read_extents(&mut self, disk: u8, lbas: Vec<u64>, counts: Vec<u32>) -> Result<Reply, Reply> {
        let total = self.check_extents(disk, &lbas, &counts)?;
        let mut data = vec![0u8; total as usize * SECTOR];
        let extents: Vec<(u64, u32)> = lbas.iter().copied().zip(counts.iter().copied()).collect();
        self.disk(disk)?.read_extents(&extents, &mut data).map_err(device_failure)?;
        self.counters.reads += 1;
        self.counters.sectors_read += total as u64;
        Ok(Reply::Data { data })
    }

    fn write_extents(&mut self, disk: u8, lbas: Vec<u64>, counts: Vec<u32>, data: Vec<u8>) -> Result<Reply, Reply> {
        let total = self.check_extents(disk, &lbas, &counts)?;
        if data.len() != total as usize * SECTOR {
            return Err(failed(
                code::BAD_REQUEST,
                format!("{} bytes of data for {total} sectors ({} bytes)", data.len(), total as usize * SECTOR),
            ));
        }
        let extents: Vec<(u64, u32)> = lbas.iter().copied().zip(counts.iter().copied()).collect();
        self.disk(disk)?.write_extents(&extents, &data).map_err(device_failure)?;
        self.counters.writes += 1;
        self.counters.sectors_written += total as u64;
        Ok(Reply::Written { sectors: total })
    }

    fn answer(&mut self, result: Result<Reply, Reply>, out: &mut dyn ReplySink<Reply>) {
        self.counters.requests += 1;
        match result {
            Ok(r) => out.reply(r),
            Err(r) => {
                if let Reply::Failed { code, message } = &r {
                    log::warn!("request failed ({code}): {message}");
                }
                self.counters.failed += 1;
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

    fn flush(&mut self, disk: u8, out: &mut dyn ReplySink<Reply>) {
        let result = self.disk(disk).and_then(|d| d.flush().map_err(device_failure)).map(|()| Reply::Flushed);
        if result.is_ok() {
            self.counters.flushes += 1;
        }
        self.answer(result, out);
    }
}

impl Service for BlkService {
    type Protocol = Blk;

    fn new() -> Self {
        BlkService { counters: Counters::default(), disks: open_disks() }
    }

    fn handle(&mut self, request: RequestOf<Self>, out: &mut dyn ReplySink<Reply>) {
        dispatch(self, request, out);
    }

    fn save(&self) -> Vec<u8> {
        to_bytes(&self.counters)
    }

    fn restore(bytes: &[u8]) -> Result<Self, String> {
        let counters: Counters = from_bytes(bytes).map_err(|e| format!("damaged checkpoint: {e}"))?;
        let s = BlkService { counters, disks: open_disks() };
        s.check()?;
        Ok(s)
    }

    fn check(&self) -> Result<(), String> {
        let c = &self.counters;
        if c.reads + c.writes + c.flushes + c.failed > c.requests {
            return Err(format!(
                "blk counters damaged: {} reads + {} writes + {} flushes + {} failures > {} requests",
                c.reads, c.writes, c.flushes, c.failed, c.requests
            ));
        }
        Ok(())
    }

    fn chaos_corrupt(&mut self) {
        self.counters.reads = self.counters.requests + 1;
    }
}

libos::main!(main);

fn main() -> i32 {
    serve::<BlkService>()
}
