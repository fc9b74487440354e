//! virtio-blk: requests over one `VirtQueue` of virtio-drivers, issued and
//! reaped by this module (the crate's `VirtIOBlk` waits by spinning with no
//! timeout and keeps only 16 descriptors).
//!
//! Each request is a three-descriptor chain: the 16-byte header
//! (type, sector), the data, and a one-byte status the device writes. The
//! driver owns [`SLOTS`] request slots, each with its header and status in
//! one shared DMA page and a [`MAX_REQUEST`]-byte staging buffer; a
//! transfer is cut into pieces that are all put on the queue at once (as
//! many as there are slots), then reaped as the device completes them.
//! Completions name their chain by its head descriptor id; an id that no
//! slot is waiting for is a device error, never an index.

use super::hal::{KintsugiHal, SharedDma};
use super::Virtio;
use crate::block::{extent_bytes, split_extents, BlockDevice, BlockInfo, DeviceError};
use crate::dma::PAGE;
use crate::ident;
use crate::irq::Deadline;
use crate::pcidev::PciDevice;
use crate::slots::Slots;
use crate::transfer::Io;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use virtio_drivers::queue::VirtQueue;
use virtio_drivers::transport::pci::PciTransport;
use virtio_drivers::transport::{DeviceStatus, Transport};

/// Descriptors in the queue (3 per request).
const QUEUE_SIZE: usize = 32;
/// Requests in flight at once.
pub const SLOTS: usize = 8;
/// Largest single request.
pub const MAX_REQUEST: usize = 64 * 1024;
/// virtio-blk addresses in 512-byte units whatever the block size.
const UNIT: u64 = 512;
/// Time a transfer may take before it is given up.
const TIMEOUT_NS: u64 = 10_000_000_000;
/// Bytes of header + status per slot in the shared page.
const SLOT_META: usize = 32;

const T_IN: u32 = 0;
const T_OUT: u32 = 1;
const T_FLUSH: u32 = 4;
const T_GET_ID: u32 = 8;

bitflags::bitflags! {
    /// The features this driver negotiates.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct Features: u64 {
        const RO = 1 << 5;
        const BLK_SIZE = 1 << 6;
        const FLUSH = 1 << 9;
        const VERSION_1 = 1 << 32;
    }
}

/// What one slot is doing for the current transfer.
#[derive(Clone, Copy, Debug)]
struct Job {
    /// Offset in the caller's buffer (reads copy back there).
    offset: usize,
    /// Data bytes (0: no data descriptor).
    len: usize,
    /// Whether the device writes the data.
    device_writes: bool,
}

/// A virtio block device.
pub struct VirtioBlk {
    // Drop order matters: the transport's drop resets the device, so it
    // goes before the queue and buffers it was using are freed.
    transport: PciTransport,
    queue: VirtQueue<KintsugiHal, QUEUE_SIZE>,
    meta: SharedDma,
    data: Vec<SharedDma>,
    slots: Slots<Job>,
    virtio: Virtio,
    info: BlockInfo,
    /// 512-byte units per sector.
    units: u64,
    features: Features,
    /// The device misbehaved in a way that leaves the queue unusable.
    broken: Option<String>,
}

impl VirtioBlk {
    /// Set up the virtio block device on a granted function.
    pub fn new(dev: PciDevice) -> Result<VirtioBlk, DeviceError> {
        let (mut virtio, mut transport) = super::open(dev)?;
        let meta = SharedDma::new(PAGE)?;
        let data = (0..SLOTS).map(|_| SharedDma::new(MAX_REQUEST)).collect::<Result<Vec<_>, _>>()?;
        let features = transport.begin_init(Features::all());
        if !transport.get_status().contains(DeviceStatus::FEATURES_OK) {
            return Err(DeviceError::device("the device refused the features"));
        }
        if !features.contains(Features::VERSION_1) {
            return Err(DeviceError::device("not a virtio 1.x device"));
        }
        let cfg = |t: &PciTransport, offset: usize| {
            t.read_config_space::<u32>(offset).map_err(|e| DeviceError::Device(format!("config space: {e}")))
        };
        let capacity = transport.read_consistent(|| {
            let lo = transport.read_config_space::<u32>(0)?;
            let hi = transport.read_config_space::<u32>(4)?;
            Ok(((hi as u64) << 32) | lo as u64)
        });
        let capacity = capacity.map_err(|e| DeviceError::Device(format!("config space: {e}")))?;
        let block_size = if features.contains(Features::BLK_SIZE) { cfg(&transport, 20)? } else { 512 };
        let block_size =
            if block_size.is_power_of_two() && (512..=65536).contains(&block_size) { block_size } else { 512 };
        let queue = VirtQueue::new(&mut transport, 0, false, false)
            .map_err(|e| DeviceError::Device(format!("virtqueue: {e}")))?;
        virtio.check_notify(&[0])?;
        virtio.route_queues(&[0]);
        transport.finish_init();
        let units = block_size as u64 / UNIT;
        let mut blk = VirtioBlk {
            transport,
            queue,
            meta,
            data,
            slots: Slots::new(SLOTS),
            virtio,
            info: BlockInfo {
                sectors: capacity / units,
                sector_size: block_size,
                model: String::from("virtio-blk"),
                serial: String::new(),
            },
            units,
            features,
            broken: None,
        };
        blk.info.serial = blk.device_id().unwrap_or_default();
        log::info!(
            "virtio-blk {}: '{}', {} sectors of {} bytes, interrupts: {}",
            blk.virtio.dev.name(),
            blk.info.serial,
            blk.info.sectors,
            blk.info.sector_size,
            blk.virtio.interrupts()
        );
        Ok(blk)
    }

    fn device_id(&mut self) -> Result<String, DeviceError> {
        let mut id = [0u8; 20];
        self.run(&[(T_GET_ID, 0, 0, 20)], Io::Read(&mut id))?;
        Ok(ident::ascii(&id))
    }

    /// Put one request on the queue in `slot`.
    fn submit(&mut self, slot: usize, kind: u32, sector: u64, job: Job) -> Result<u16, DeviceError> {
        let m = self.meta.buf();
        let at = slot * SLOT_META;
        m.write32(at, kind);
        m.write32(at + 4, 0);
        m.write64(at + 8, sector);
        m.write8(at + 16, 0xff);
        let header = m.range(at, 16).ok_or(DeviceError::NoDevice)?;
        let status = m.range(at + 16, 1).ok_or(DeviceError::NoDevice)?;
        let data = self.data[slot].buf().range(0, job.len.max(1)).ok_or(DeviceError::Misaligned)?;
        // SAFETY: header, status and data are disjoint ranges of DMA buffers
        // this driver owns and keeps until the slot's request is popped;
        // nothing else touches them meanwhile. The slices only live for the
        // call; the queue keeps physical addresses.
        let token = unsafe {
            let header = core::slice::from_raw_parts(header, 16);
            let status = core::slice::from_raw_parts_mut(status, 1);
            if job.len == 0 {
                self.queue.add(&[header], &mut [status])
            } else if job.device_writes {
                let data = core::slice::from_raw_parts_mut(data, job.len);
                self.queue.add(&[header], &mut [data, status])
            } else {
                let data = core::slice::from_raw_parts(data, job.len);
                self.queue.add(&[header, data], &mut [status])
            }
        };
        token.map_err(|e| DeviceError::Device(format!("virtqueue add: {e}")))
    }

    /// Pop one completed chain whose head is `token` out of `slot`.
    fn pop(&mut self, slot: usize, token: u16, job: &Job) -> Result<(), DeviceError> {
        let m = self.meta.buf();
        let at = slot * SLOT_META;
        let header = m.range(at, 16).ok_or(DeviceError::NoDevice)?;
        let status = m.range(at + 16, 1).ok_or(DeviceError::NoDevice)?;
        let data = self.data[slot].buf().range(0, job.len.max(1)).ok_or(DeviceError::Misaligned)?;
        // SAFETY: the same buffers, with the same lengths and directions, as
        // `submit` added under this token; the device has finished with them.
        let r = unsafe {
            let header = core::slice::from_raw_parts(header, 16);
            let status = core::slice::from_raw_parts_mut(status, 1);
            if job.len == 0 {
                self.queue.pop_used(token, &[header], &mut [status])
            } else if job.device_writes {
                let data = core::slice::from_raw_parts_mut(data, job.len);
                self.queue.pop_used(token, &[header], &mut [data, status])
            } else {
                let data = core::slice::from_raw_parts(data, job.len);
                self.queue.pop_used(token, &[header, data], &mut [status])
            }
        };
        r.map(|_| ()).map_err(|e| DeviceError::Device(format!("virtqueue pop: {e}")))
    }

    /// Take every completed request off the used ring; how many of the
    /// current transfer's finished. Read data is copied into `io`; the
    /// first failed request's error is kept in `first_error`.
    fn reap(&mut self, io: &mut Io, first_error: &mut Option<DeviceError>) -> Result<usize, DeviceError> {
        let mut finished = 0;
        while let Some(token) = self.queue.peek_used() {
            let Some((slot, job)) = self.slots.find(token as u32).and_then(|s| Some((s, *self.slots.job(s)?))) else {
                let e = format!("device completed descriptor {token}, which is not in flight");
                self.broken = Some(e.clone());
                return Err(DeviceError::Device(e));
            };
            self.pop(slot, token, &job)?;
            let Some((_, live)) = self.slots.finish(slot) else { continue };
            if !live {
                continue; // a request of a transfer that timed out
            }
            finished += 1;
            let status = self.meta.buf().read8(slot * SLOT_META + 16);
            if status != 0 {
                let what = match status {
                    1 => String::from("I/O error"),
                    2 => String::from("unsupported request"),
                    s => format!("bad status {s}"),
                };
                first_error.get_or_insert(DeviceError::Device(what));
                continue;
            }
            if job.device_writes {
                // Offsets and lengths are the driver's own, but stay checked.
                if let Err(e) = io.unstage(self.data[slot].buf(), job.offset, job.len) {
                    first_error.get_or_insert(e);
                }
            }
        }
        Ok(finished)
    }

    /// Issue `requests` (type, sector in 512-byte units, offset in `io`,
    /// length), as many at a time as there are free slots, and wait for
    /// all of them.
    fn run(&mut self, requests: &[(u32, u64, usize, usize)], mut io: Io) -> Result<(), DeviceError> {
        if let Some(why) = &self.broken {
            return Err(DeviceError::Device(format!("device unusable: {why}")));
        }
        let deadline = Deadline::after(TIMEOUT_NS);
        let mut next = 0;
        let mut outstanding = 0;
        let mut first_error = None;
        loop {
            let mut submitted = false;
            while first_error.is_none() && next < requests.len() {
                let Some(slot) = self.slots.free_slot() else { break };
                let (kind, sector, offset, len) = requests[next];
                let device_writes = kind != T_OUT;
                io.stage(self.data[slot].buf(), offset, len)?;
                let job = Job { offset, len, device_writes };
                match self.submit(slot, kind, sector, job) {
                    Ok(token) => {
                        self.slots.start(slot, token as u32, job);
                        next += 1;
                        outstanding += 1;
                        submitted = true;
                    }
                    Err(e) => {
                        first_error = Some(e);
                        break;
                    }
                }
            }
            if submitted && self.queue.should_notify() {
                self.transport.notify(0);
            }
            let done = self.reap(&mut io, &mut first_error)?;
            outstanding -= done.min(outstanding);
            if outstanding == 0 && (next == requests.len() || first_error.is_some()) {
                return first_error.map_or(Ok(()), Err);
            }
            if done > 0 {
                continue;
            }
            if deadline.expired() {
                // The device keeps the requests; their slots stay busy until
                // it completes them, so the staging buffers are not reused.
                self.slots.abandon_all();
                return Err(DeviceError::Timeout);
            }
            if self.virtio.irq.wait(deadline.slice()) && self.virtio.irq.is_intx() {
                // Reading the ISR status deasserts the line.
                let _ = self.transport.ack_interrupt();
                self.virtio.irq.ack();
            }
        }
    }

    /// A read or write of the extents `(lba, bytes)` (their data one after
    /// another in `io`), cut into requests that all go on the queue.
    fn transfer(&mut self, extents: &[(u64, usize)], io: Io) -> Result<(), DeviceError> {
        let pieces = split_extents(extents, self.info.sectors, self.info.sector_size, MAX_REQUEST)?;
        let write = io.is_write();
        if write && self.features.contains(Features::RO) {
            return Err(DeviceError::device("the disk is read-only"));
        }
        let kind = if write { T_OUT } else { T_IN };
        let requests: Vec<_> = pieces.into_iter().map(|p| (kind, p.lba * self.units, p.offset, p.len)).collect();
        if requests.is_empty() {
            return Ok(());
        }
        self.run(&requests, io)
    }
}

impl BlockDevice for VirtioBlk {
    fn info(&self) -> &BlockInfo {
        &self.info
    }

    fn transfer_extents(&mut self, extents: &[(u64, u32)], io: Io) -> Result<(), DeviceError> {
        let extents = extent_bytes(extents, self.info.sector_size, io.len())?;
        self.transfer(&extents, io)
    }

    fn flush(&mut self) -> Result<(), DeviceError> {
        if !self.features.contains(Features::FLUSH) {
            return Ok(());
        }
        self.run(&[(T_FLUSH, 0, 0, 0)], Io::None)
    }
}
