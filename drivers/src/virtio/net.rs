//! virtio-net over virtio-drivers' `VirtIONetRaw` (non-blocking transmit
//! and receive of raw buffers; this module owns the buffers).
//!
//! [`RX_BUFFERS`] receive buffers and [`TX_BUFFERS`] transmit buffers of
//! [`BUFFER`] bytes each live in two shared DMA regions, so frames go to
//! and from the device without bounce copies. Every receive buffer is
//! posted to the receive queue; a completed one is copied out and posted
//! again. Completions name their buffer by descriptor id: an id not in
//! flight, or a length that does not fit the buffer, is an error or a
//! dropped frame, never an index.

use super::hal::{KintsugiHal, SharedDma};
use super::Virtio;
use crate::block::DeviceError;
use crate::irq::Deadline;
use crate::net::{check_frames, NetDevice, MAX_FRAME, MIN_FRAME};
use crate::pcidev::PciDevice;
use alloc::format;
use alloc::vec::Vec;
use virtio_drivers::device::net::VirtIONetRaw;
use virtio_drivers::transport::pci::PciTransport;

/// Descriptors per queue.
const QUEUE_SIZE: usize = 64;
/// Receive buffers posted.
pub const RX_BUFFERS: usize = 32;
/// Transmit buffers.
pub const TX_BUFFERS: usize = 32;
/// Size of each buffer (virtio header + frame).
pub const BUFFER: usize = 2048;
/// Queue indexes: receive, transmit.
const QUEUES: [u16; 2] = [0, 1];
/// `VIRTIO_NET_F_STATUS`: the device reports link state.
const F_STATUS: u32 = 16;

/// A virtio network card.
pub struct VirtioNet {
    // First: dropping it resets the device (through its transport) before
    // the buffers it was using are freed.
    net: VirtIONetRaw<KintsugiHal, PciTransport, QUEUE_SIZE>,
    rx: SharedDma,
    tx: SharedDma,
    /// Descriptor id each receive buffer is posted under.
    rx_posted: [Option<u16>; RX_BUFFERS],
    /// Descriptor id and length of each transmit buffer in flight.
    tx_busy: [Option<(u16, usize)>; TX_BUFFERS],
    virtio: Virtio,
    mac: [u8; 6],
    has_status: bool,
    /// Frames dropped for bad lengths.
    pub dropped: u64,
}

impl VirtioNet {
    /// Set up the virtio network device on a granted function.
    pub fn new(dev: PciDevice) -> Result<VirtioNet, DeviceError> {
        let (mut virtio, transport) = super::open(dev)?;
        let has_status = virtio.offers(F_STATUS);
        // virtio-drivers logs the negotiated features at info level; keep
        // the console for what matters.
        let level = log::max_level();
        log::set_max_level(level.min(log::LevelFilter::Warn));
        let net = VirtIONetRaw::<KintsugiHal, PciTransport, QUEUE_SIZE>::new(transport);
        log::set_max_level(level);
        let net = net.map_err(|e| DeviceError::Device(format!("virtio-net: {e}")))?;
        virtio.check_notify(&QUEUES)?;
        virtio.route_queues(&QUEUES);
        let rx = SharedDma::new(RX_BUFFERS * BUFFER)?;
        let tx = SharedDma::new(TX_BUFFERS * BUFFER)?;
        let mac = net.mac_address();
        let mut n = VirtioNet {
            net,
            rx,
            tx,
            rx_posted: [None; RX_BUFFERS],
            tx_busy: [None; TX_BUFFERS],
            virtio,
            mac,
            has_status,
            dropped: 0,
        };
        for i in 0..RX_BUFFERS {
            n.post(i)?;
        }
        log::info!(
            "virtio-net {}: MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}, interrupts: {}",
            n.virtio.dev.name(),
            mac[0],
            mac[1],
            mac[2],
            mac[3],
            mac[4],
            mac[5],
            n.virtio.interrupts()
        );
        Ok(n)
    }

    fn rx_buf(&self, i: usize) -> Option<*mut u8> {
        self.rx.buf().range(i * BUFFER, BUFFER)
    }

    fn tx_buf(&self, i: usize) -> Option<*mut u8> {
        self.tx.buf().range(i * BUFFER, BUFFER)
    }

    /// Give receive buffer `i` to the device.
    fn post(&mut self, i: usize) -> Result<(), DeviceError> {
        let p = self.rx_buf(i).ok_or(DeviceError::NoDevice)?;
        // SAFETY: buffer i is this driver's DMA memory and is not touched
        // until the device returns it (then `receive` pops it first).
        let token = unsafe { self.net.receive_begin(core::slice::from_raw_parts_mut(p, BUFFER)) }
            .map_err(|e| DeviceError::Device(format!("receive queue: {e}")))?;
        self.rx_posted[i] = Some(token);
        Ok(())
    }

    /// Take finished transmissions back.
    fn reclaim(&mut self) -> Result<(), DeviceError> {
        while let Some(token) = self.net.poll_transmit() {
            let Some(i) = self.tx_busy.iter().position(|b| matches!(b, Some((t, _)) if *t == token)) else {
                return Err(DeviceError::Device(format!(
                    "device completed transmit descriptor {token}, which is not in flight"
                )));
            };
            let Some((_, len)) = self.tx_busy[i] else { continue };
            let p = self.tx_buf(i).ok_or(DeviceError::NoDevice)?;
            // SAFETY: the same buffer and length `send` queued under this token.
            unsafe { self.net.transmit_complete(token, core::slice::from_raw_parts(p, len)) }
                .map_err(|e| DeviceError::Device(format!("transmit queue: {e}")))?;
            self.tx_busy[i] = None;
        }
        Ok(())
    }

    fn ack(&mut self) {
        if self.virtio.irq.is_intx() {
            // Reading the ISR status deasserts the line.
            let _ = self.net.ack_interrupt();
            self.virtio.irq.ack();
        }
    }
}

impl NetDevice for VirtioNet {
    fn model(&self) -> &str {
        "virtio-net"
    }

    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn link_up(&mut self) -> bool {
        match (&self.virtio.device_cfg, self.has_status) {
            // Status is a u16 after the 6-byte MAC.
            (Some(cfg), true) if cfg.len() >= 8 => cfg.read16(6) & 1 != 0,
            _ => true,
        }
    }

    fn send(&mut self, frames: &[&[u8]]) -> Result<usize, DeviceError> {
        check_frames(frames)?;
        self.reclaim()?;
        let mut taken = 0;
        for frame in frames {
            let Some(i) = self.tx_busy.iter().position(Option::is_none) else { break };
            let p = self.tx_buf(i).ok_or(DeviceError::NoDevice)?;
            // SAFETY: buffer i is free (not in flight) and ours alone.
            let buf = unsafe { core::slice::from_raw_parts_mut(p, BUFFER) };
            let header = self.net.fill_buffer_header(buf).map_err(|e| DeviceError::Device(format!("{e}")))?;
            let len = header + frame.len();
            buf[header..len].copy_from_slice(frame);
            // SAFETY: the buffer stays untouched until `reclaim` pops it.
            let token = unsafe { self.net.transmit_begin(&buf[..len]) };
            match token {
                Ok(token) => self.tx_busy[i] = Some((token, len)),
                Err(virtio_drivers::Error::QueueFull) => break,
                Err(e) => return Err(DeviceError::Device(format!("transmit queue: {e}"))),
            }
            taken += 1;
        }
        Ok(taken)
    }

    fn receive(&mut self, max: usize) -> Result<Vec<Vec<u8>>, DeviceError> {
        let mut frames = Vec::new();
        while frames.len() < max {
            let Some(token) = self.net.poll_receive() else { break };
            let Some(i) = self.rx_posted.iter().position(|t| *t == Some(token)) else {
                return Err(DeviceError::Device(format!(
                    "device completed receive descriptor {token}, which is not posted"
                )));
            };
            let p = self.rx_buf(i).ok_or(DeviceError::NoDevice)?;
            // SAFETY: the buffer posted under this token; the device is done.
            let buf = unsafe { core::slice::from_raw_parts_mut(p, BUFFER) };
            // SAFETY: `buf` is the buffer `post` gave the device under `token`.
            let completed = unsafe { self.net.receive_complete(token, buf) };
            match completed {
                Ok((header, len)) => {
                    self.rx_posted[i] = None;
                    match header.checked_add(len).filter(|end| *end <= BUFFER) {
                        Some(end) if (MIN_FRAME..=MAX_FRAME + 4).contains(&len) => {
                            frames.push(buf[header..end].to_vec())
                        }
                        _ => self.dropped += 1,
                    }
                }
                // The chain was popped but its length was shorter than the
                // header: drop the frame, keep the buffer.
                Err(virtio_drivers::Error::IoError) => {
                    self.rx_posted[i] = None;
                    self.dropped += 1;
                }
                Err(e) => return Err(DeviceError::Device(format!("receive queue: {e}"))),
            }
            self.post(i)?;
        }
        Ok(frames)
    }

    fn wait(&mut self, timeout_ns: u64) {
        let deadline = Deadline::after(timeout_ns);
        // Look at the used ring between slices: a lost interrupt costs one
        // slice.
        while self.net.poll_receive().is_none() && !deadline.expired() {
            if self.virtio.irq.wait(deadline.slice()) {
                self.ack();
                return;
            }
        }
    }
}
