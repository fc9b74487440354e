//! Intel 8254x gigabit Ethernet (QEMU's `e1000`, 82540EM, 8086:100e),
//! written by hand.
//!
//! One receive and one transmit ring of legacy descriptors ([`ring`]) in a
//! DMA page, and a 2 KiB buffer per descriptor (frames up to 1518 bytes fit
//! one buffer; long packets stay off). Interrupts: the 8254x has no MSI,
//! so its INTx line through the I/O APIC: a wake-up reads ICR (which clears
//! the cause and lowers the line), then acknowledges the line.
//!
//! The driver keeps its own ring indexes and reads only what the device
//! writes back into descriptors (done bits, lengths, errors), each checked
//! before use; buffer addresses are rewritten on every refill.

pub mod regs;
pub mod ring;

use crate::block::DeviceError;
use crate::dma::{DmaBuffer, PAGE};
use crate::irq::{poll_until, Deadline, Interrupt};
use crate::mmio::Mmio;
use crate::net::{check_frames, NetDevice};
use crate::pcidev::PciDevice;
use alloc::format;
use alloc::vec::Vec;
use ring::{classify, Rx, RxDesc, TxRing, DESC_SIZE, TX_DD};

/// Device ids this driver takes (82540EM, 82544GC, 82545EM: QEMU's models).
pub const DEVICE_IDS: [u16; 3] = [0x100e, 0x100c, 0x100f];
/// Receive descriptors.
pub const RX_COUNT: usize = 64;
/// Transmit descriptors.
pub const TX_COUNT: usize = 64;
/// Bytes per buffer.
pub const BUFFER: usize = 2048;
/// The transmit ring's place in the ring page.
const TX_RING: usize = RX_COUNT * DESC_SIZE;
/// Bytes of registers mapped (the whole 128 KiB BAR).
const REGS_LEN: usize = 0x20000;

/// An e1000 network card.
pub struct E1000 {
    regs: Mmio,
    irq: Interrupt,
    rings: DmaBuffer,
    rx_bufs: DmaBuffer,
    tx_bufs: DmaBuffer,
    rx_next: usize,
    discarding: bool,
    tx: TxRing,
    mac: [u8; 6],
    dev: PciDevice,
    /// Frames dropped (errors, bad lengths).
    pub dropped: u64,
}

impl E1000 {
    /// Set up the card on a granted function.
    pub fn new(dev: PciDevice) -> Result<E1000, DeviceError> {
        let regs = dev.map_bar(0, 0, REGS_LEN)?;
        dev.enable();
        regs.write32(regs::IMC, u32::MAX);
        regs.write32(regs::CTRL, regs.read32(regs::CTRL) | regs::CTRL_RST);
        crate::irq::sleep(1_000_000);
        poll_until(100_000_000, || regs.read32(regs::CTRL) & regs::CTRL_RST == 0)
            .map_err(|_| DeviceError::device("reset did not finish"))?;
        regs.write32(regs::IMC, u32::MAX);
        let _ = regs.read32(regs::ICR);
        let ctrl = regs.read32(regs::CTRL) & !(regs::CTRL_LRST | regs::CTRL_PHY_RST | regs::CTRL_ILOS | regs::CTRL_VME);
        regs.write32(regs::CTRL, ctrl | regs::CTRL_SLU | regs::CTRL_ASDE);
        let mac = read_mac(&regs)?;
        regs.write32(regs::RAL0, u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]));
        regs.write32(regs::RAH0, u16::from_le_bytes([mac[4], mac[5]]) as u32 | regs::RAH_AV);
        for i in 0..128 {
            regs.write32(regs::MTA + 4 * i, 0);
        }

        let rings = DmaBuffer::contiguous(PAGE)?;
        let rx_bufs = DmaBuffer::scattered(RX_COUNT * BUFFER)?;
        let tx_bufs = DmaBuffer::scattered(TX_COUNT * BUFFER)?;
        let phys = |b: &DmaBuffer, at: usize| b.phys(at).ok_or(DeviceError::NoDevice);
        for i in 0..RX_COUNT {
            rings.copy_in(i * DESC_SIZE, &ring::rx_desc(phys(&rx_bufs, i * BUFFER)?));
        }
        let base = phys(&rings, 0)?;
        regs.write32(regs::RDBAL, base as u32);
        regs.write32(regs::RDBAH, (base >> 32) as u32);
        regs.write32(regs::RDLEN, (RX_COUNT * DESC_SIZE) as u32);
        regs.write32(regs::RDH, 0);
        regs.write32(regs::RDT, RX_COUNT as u32 - 1);
        regs.write32(regs::RDTR, 0);
        let tx = phys(&rings, TX_RING)?;
        regs.write32(regs::TDBAL, tx as u32);
        regs.write32(regs::TDBAH, (tx >> 32) as u32);
        regs.write32(regs::TDLEN, (TX_COUNT * DESC_SIZE) as u32);
        regs.write32(regs::TDH, 0);
        regs.write32(regs::TDT, 0);
        regs.write32(regs::TIPG, regs::TIPG_DEFAULT);
        regs.write32(regs::TCTL, regs::TCTL_EN | regs::TCTL_PSP | regs::TCTL_CT | regs::TCTL_COLD | regs::TCTL_RTLC);
        regs.write32(regs::RCTL, regs::RCTL_EN | regs::RCTL_BAM | regs::RCTL_SECRC);
        regs.write32(regs::ITR, 0);

        let irq = dev.interrupt()?;
        let _ = regs.read32(regs::ICR);
        regs.write32(regs::IMS, regs::INT_RXT0 | regs::INT_RXO | regs::INT_RXDMT0 | regs::INT_LSC);
        log::info!(
            "e1000 {}: MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}, interrupts: {}",
            dev.name(),
            mac[0],
            mac[1],
            mac[2],
            mac[3],
            mac[4],
            mac[5],
            irq.describe()
        );
        Ok(E1000 {
            regs,
            irq,
            rings,
            rx_bufs,
            tx_bufs,
            rx_next: 0,
            discarding: false,
            tx: TxRing::new(TX_COUNT),
            mac,
            dev,
            dropped: 0,
        })
    }

    fn rx_desc(&self, i: usize) -> RxDesc {
        let at = i * DESC_SIZE;
        // Status first: the rest is only meaningful once DD is set.
        let status = self.rings.read8(at + 12);
        core::sync::atomic::fence(core::sync::atomic::Ordering::Acquire);
        RxDesc { addr: 0, length: self.rings.read16(at + 8), status, errors: self.rings.read8(at + 13) }
    }

    /// Take back transmit descriptors the device is done with.
    fn reclaim(&mut self) {
        while let Some(i) = self.tx.oldest() {
            if self.rings.read8(TX_RING + i * DESC_SIZE + 12) & TX_DD == 0 {
                break;
            }
            self.tx.pop();
        }
    }
}

/// The MAC address: from receive address 0 if valid, else the EEPROM.
fn read_mac(regs: &Mmio) -> Result<[u8; 6], DeviceError> {
    let (lo, hi) = (regs.read32(regs::RAL0), regs.read32(regs::RAH0));
    let mac = if hi & regs::RAH_AV != 0 {
        let l = lo.to_le_bytes();
        let h = hi.to_le_bytes();
        [l[0], l[1], l[2], l[3], h[0], h[1]]
    } else {
        let mut m = [0u8; 6];
        for word in 0..3u32 {
            regs.write32(regs::EERD, word << 8 | regs::EERD_START);
            poll_until(10_000_000, || regs.read32(regs::EERD) & regs::EERD_DONE != 0)
                .map_err(|_| DeviceError::device("EEPROM read timed out"))?;
            let v = (regs.read32(regs::EERD) >> 16) as u16;
            m[2 * word as usize..2 * word as usize + 2].copy_from_slice(&v.to_le_bytes());
        }
        m
    };
    if mac == [0; 6] || mac[0] & 1 != 0 {
        return Err(DeviceError::Device(format!("implausible MAC address {mac:02x?}")));
    }
    Ok(mac)
}

impl NetDevice for E1000 {
    fn model(&self) -> &str {
        match self.dev.function.device {
            0x100c => "Intel 82544GC (e1000)",
            0x100f => "Intel 82545EM (e1000)",
            _ => "Intel 82540EM (e1000)",
        }
    }

    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn link_up(&mut self) -> bool {
        self.regs.read32(regs::STATUS) & regs::STATUS_LU != 0
    }

    fn send(&mut self, frames: &[&[u8]]) -> Result<usize, DeviceError> {
        check_frames(frames)?;
        self.reclaim();
        let mut taken = 0;
        for frame in frames {
            let Some(i) = self.tx.push() else { break };
            let at = i * BUFFER;
            let addr = self.tx_bufs.phys(at).ok_or(DeviceError::NoDevice)?;
            self.tx_bufs.copy_in(at, frame);
            self.rings.copy_in(TX_RING + i * DESC_SIZE, &ring::tx_desc(addr, frame.len() as u16));
            taken += 1;
        }
        if taken > 0 {
            core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
            self.regs.write32(regs::TDT, self.tx.tail() as u32);
        }
        Ok(taken)
    }

    fn receive(&mut self, max: usize) -> Result<Vec<Vec<u8>>, DeviceError> {
        let mut frames = Vec::new();
        while frames.len() < max {
            let i = self.rx_next;
            match classify(&self.rx_desc(i), BUFFER, &mut self.discarding) {
                Rx::Empty => break,
                Rx::Frame(len) => {
                    let mut f = alloc::vec![0u8; len];
                    self.rx_bufs.copy_out(i * BUFFER, &mut f);
                    frames.push(f);
                }
                Rx::Drop(_) => self.dropped += 1,
            }
            // Give the descriptor back, its buffer address rewritten.
            let addr = self.rx_bufs.phys(i * BUFFER).ok_or(DeviceError::NoDevice)?;
            self.rings.copy_in(i * DESC_SIZE, &ring::rx_desc(addr));
            core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
            self.regs.write32(regs::RDT, i as u32);
            self.rx_next = (i + 1) % RX_COUNT;
        }
        Ok(frames)
    }

    fn wait(&mut self, timeout_ns: u64) {
        let deadline = Deadline::after(timeout_ns);
        // Look at the ring between slices: a lost interrupt costs one slice.
        while self.rx_desc(self.rx_next).status & ring::RX_DD == 0 && !deadline.expired() {
            if self.irq.wait(deadline.slice()) {
                // Reading ICR clears the causes and lowers the line.
                let _ = self.regs.read32(regs::ICR);
                self.irq.ack();
                return;
            }
        }
    }
}

impl Drop for E1000 {
    fn drop(&mut self) {
        // Stop all DMA before the rings and buffers are freed.
        self.regs.write32(regs::IMC, u32::MAX);
        self.regs.write32(regs::RCTL, 0);
        self.regs.write32(regs::TCTL, 0);
        self.regs.write32(regs::CTRL, self.regs.read32(regs::CTRL) | regs::CTRL_RST);
        crate::irq::sleep(1_000_000);
    }
}
