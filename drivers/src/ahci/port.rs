//! One AHCI port with an ATA disk: its command list, received-FIS area and
//! command tables (one DMA page pair), a staging buffer per command slot,
//! and transfers cut into requests that occupy several command slots at
//! once (non-queued commands; the HBA runs them in turn without the driver
//! waiting in between).
//!
//! A slot is done when the HBA clears its bit in PxCI. Then the byte count
//! the HBA reports (PRDBC) must equal what was asked; an error
//! bit in PxIS fails the transfer and restarts the port (clearing PxCI and
//! so every command in flight); a timeout does the same. Staging buffers
//! are only reused after the port has stopped or the slot completed.

use super::fis::{self, ata, Command};
use super::identify::{self, Identity};
use super::{regs, Hba};
use crate::block::{extent_bytes, split_extents, BlockDevice, BlockInfo, DeviceError};
use crate::dma::{DmaBuffer, PAGE};
use crate::irq::{poll_until, Deadline};
use crate::mmio::Mmio;
use crate::slots::Slots;
use crate::transfer::Io;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;

/// Command slots used per port.
pub const SLOTS: usize = 8;
/// Largest single request.
pub const MAX_REQUEST: usize = 64 * 1024;
/// Received FIS area, after the 1 KiB command list.
const FIS_AREA: usize = 0x400;
/// Command tables, in the second page.
const TABLES: usize = PAGE;
/// Bytes per command table: the FIS area and 16 PRDT entries.
const TABLE_SIZE: usize = fis::PRDT_OFFSET + MAX_PRDS * fis::PRD_SIZE;
/// PRDT entries per table (a 64 KiB staging buffer is at most 16 pages).
const MAX_PRDS: usize = 16;
/// Time limits.
const IO_TIMEOUT_NS: u64 = 10_000_000_000;
const FLUSH_TIMEOUT_NS: u64 = 30_000_000_000;
const SETUP_TIMEOUT_NS: u64 = 1_000_000_000;

#[derive(Clone, Copy, Debug)]
struct Job {
    /// Offset in the caller's buffer.
    offset: usize,
    /// Data bytes.
    len: usize,
    /// Whether the device writes the data (a read).
    inbound: bool,
}

#[derive(Clone, Copy, Debug)]
struct Request {
    cmd: Command,
    write: bool,
    offset: usize,
    len: usize,
}

/// A SATA disk on an AHCI port.
pub struct AhciDisk {
    hba: Rc<Hba>,
    port: usize,
    pr: Mmio,
    /// Command list, received FIS, command tables.
    ctl: DmaBuffer,
    data: Vec<DmaBuffer>,
    slots: Slots<Job>,
    info: BlockInfo,
    identity: Option<Identity>,
    broken: Option<String>,
}

/// Stop a port's command processing and FIS reception.
fn stop(pr: &Mmio) -> Result<(), DeviceError> {
    let cmd = pr.read32(regs::P_CMD);
    if cmd & (regs::CMD_ST | regs::CMD_CR) != 0 {
        pr.write32(regs::P_CMD, cmd & !regs::CMD_ST);
        poll_until(500_000_000, || pr.read32(regs::P_CMD) & regs::CMD_CR == 0)
            .map_err(|_| DeviceError::device("the port did not stop"))?;
    }
    let cmd = pr.read32(regs::P_CMD);
    if cmd & (regs::CMD_FRE | regs::CMD_FR) != 0 {
        pr.write32(regs::P_CMD, cmd & !regs::CMD_FRE);
        poll_until(500_000_000, || pr.read32(regs::P_CMD) & regs::CMD_FR == 0)
            .map_err(|_| DeviceError::device("FIS reception did not stop"))?;
    }
    Ok(())
}

/// Whether the link has a device with communication established.
fn linked(pr: &Mmio) -> bool {
    pr.read32(regs::P_SSTS) & 0xf == 3
}

/// Reset the link (COMRESET) and wait for it to come back.
fn comreset(pr: &Mmio) -> Result<(), DeviceError> {
    let sctl = pr.read32(regs::P_SCTL) & !0xf;
    pr.write32(regs::P_SCTL, sctl | 1);
    crate::irq::sleep(2_000_000);
    pr.write32(regs::P_SCTL, sctl);
    poll_until(SETUP_TIMEOUT_NS, || linked(pr)).map_err(|_| DeviceError::device("no link after COMRESET"))?;
    pr.write32(regs::P_SERR, u32::MAX);
    Ok(())
}

fn not_busy(pr: &Mmio) -> bool {
    pr.read32(regs::P_TFD) & (regs::TFD_BSY | regs::TFD_DRQ) == 0
}

impl AhciDisk {
    /// Bring up port `port`; None if no ATA disk is attached.
    pub(super) fn probe(hba: Rc<Hba>, port: usize) -> Result<Option<AhciDisk>, DeviceError> {
        let pr = hba.port_regs(port).ok_or(DeviceError::NoDevice)?;
        if !linked(&pr) && poll_until(20_000_000, || linked(&pr)).is_err() {
            if pr.read32(regs::P_SSTS) & 0xf != 1 {
                return Ok(None); // nothing attached
            }
            comreset(&pr)?;
        }
        stop(&pr)?;
        let ctl = DmaBuffer::contiguous(2 * PAGE)?;
        let n = hba.slots.clamp(1, SLOTS);
        let data = (0..n).map(|_| DmaBuffer::scattered(MAX_REQUEST)).collect::<Result<Vec<_>, _>>()?;
        let (Some(clb), Some(fb)) = (ctl.phys(0), ctl.phys(FIS_AREA)) else { return Err(DeviceError::NoDevice) };
        if !hba.s64a && clb >> 32 != 0 {
            return Err(DeviceError::device("DMA memory above 4 GiB for a 32-bit HBA"));
        }
        pr.write32(regs::P_CLB, clb as u32);
        pr.write32(regs::P_CLBU, (clb >> 32) as u32);
        pr.write32(regs::P_FB, fb as u32);
        pr.write32(regs::P_FBU, (fb >> 32) as u32);
        pr.write32(regs::P_SERR, u32::MAX);
        pr.write32(regs::P_IS, u32::MAX);
        pr.write32(regs::P_CMD, pr.read32(regs::P_CMD) | regs::CMD_FRE | regs::CMD_SUD | regs::CMD_POD);
        if poll_until(SETUP_TIMEOUT_NS, || not_busy(&pr)).is_err() {
            comreset(&pr)?;
            poll_until(SETUP_TIMEOUT_NS, || not_busy(&pr)).map_err(|_| DeviceError::device("the device stays busy"))?;
        }
        let sig = pr.read32(regs::P_SIG);
        if sig != regs::SIG_ATA {
            // ATAPI (a CD drive), a port multiplier, an enclosure: not ours.
            log::debug!("AHCI port {port}: device signature {sig:#010x}, not a disk; skipped");
            let _ = stop(&pr);
            return Ok(None);
        }
        pr.write32(regs::P_IE, regs::IE_MASK);
        pr.write32(regs::P_CMD, pr.read32(regs::P_CMD) | regs::CMD_ST);
        let info = BlockInfo { sectors: 0, sector_size: 512, model: String::new(), serial: String::new() };
        let mut disk = AhciDisk { hba, port, pr, ctl, data, slots: Slots::new(n), info, identity: None, broken: None };
        let identity = disk.identify()?;
        disk.info = BlockInfo {
            sectors: identity.sectors,
            sector_size: identity.sector_size,
            model: identity.model.clone(),
            serial: identity.serial.clone(),
        };
        log::info!(
            "AHCI port {port}: '{}' '{}' firmware '{}', {} sectors of {} bytes{}",
            identity.model,
            identity.serial,
            identity.firmware,
            identity.sectors,
            identity.sector_size,
            if identity.lba48 { "" } else { " (28-bit LBA)" }
        );
        disk.identity = Some(identity);
        Ok(Some(disk))
    }

    fn identify(&mut self) -> Result<Identity, DeviceError> {
        let cmd = Command { command: ata::IDENTIFY, lba: 0, count: 0, lba_mode: false, lba28: false };
        let mut raw = [0u8; 512];
        self.run(&[Request { cmd, write: false, offset: 0, len: 512 }], Io::Read(&mut raw), SETUP_TIMEOUT_NS * 5)?;
        let mut words = [0u16; 256];
        for (w, b) in words.iter_mut().zip(raw.chunks_exact(2)) {
            *w = u16::from_le_bytes([b[0], b[1]]);
        }
        identify::parse(&words).map_err(DeviceError::Device)
    }

    /// Fill slot `slot`'s command table and header and issue it.
    fn issue(&mut self, slot: usize, r: &Request) -> Result<(), DeviceError> {
        let bad = |e: fis::FisError| DeviceError::Device(format!("cannot describe the command: {e:?}"));
        let table = TABLES + slot * TABLE_SIZE;
        let h2d = fis::h2d(&r.cmd).map_err(bad)?;
        let prds = if r.len == 0 {
            Vec::new()
        } else {
            let segments = self.data[slot].segments(0, r.len).ok_or(DeviceError::OutOfRange)?;
            fis::prdt(&segments, MAX_PRDS).map_err(bad)?
        };
        self.ctl.zero(table, fis::PRDT_OFFSET);
        self.ctl.copy_in(table, &h2d);
        for (i, e) in prds.iter().enumerate() {
            for (j, dw) in e.iter().enumerate() {
                self.ctl.write32(table + fis::PRDT_OFFSET + i * fis::PRD_SIZE + 4 * j, *dw);
            }
        }
        let table_phys = self.ctl.phys(table).ok_or(DeviceError::NoDevice)?;
        let header = fis::header(r.write, prds.len() as u16, table_phys);
        let at = slot * fis::HEADER_SIZE;
        self.ctl.zero(at, fis::HEADER_SIZE);
        for (j, dw) in header.iter().enumerate() {
            self.ctl.write32(at + 4 * j, *dw);
        }
        // The tables must be visible before the HBA is told to fetch them.
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
        self.pr.write32(regs::P_CI, 1 << slot);
        Ok(())
    }

    /// Stop and restart the port after an error or a timeout: stopping
    /// clears PxCI, so nothing is in flight afterwards.
    fn recover(&mut self) -> Result<(), DeviceError> {
        let pr = self.pr;
        let cmd = pr.read32(regs::P_CMD);
        pr.write32(regs::P_CMD, cmd & !regs::CMD_ST);
        if poll_until(500_000_000, || pr.read32(regs::P_CMD) & regs::CMD_CR == 0).is_err() {
            // The HBA may still be moving data: keep every slot's buffer.
            self.slots.abandon_all();
            self.broken = Some(String::from("the port does not stop"));
            return Err(DeviceError::device("the port does not stop"));
        }
        self.slots.clear();
        pr.write32(regs::P_SERR, u32::MAX);
        pr.write32(regs::P_IS, u32::MAX);
        self.hba.take_latched(self.port);
        if !not_busy(&pr) {
            comreset(&pr)?;
            poll_until(SETUP_TIMEOUT_NS, || not_busy(&pr)).map_err(|_| DeviceError::device("the device stays busy"))?;
        }
        pr.write32(regs::P_CMD, pr.read32(regs::P_CMD) | regs::CMD_ST);
        Ok(())
    }

    /// Collect finished slots; how many of the current transfer's finished
    /// (failed ones included, with the error in `first_error`).
    fn reap(&mut self, io: &mut Io, first_error: &mut Option<DeviceError>) -> Result<usize, DeviceError> {
        let is = self.pr.read32(regs::P_IS) | self.hba.take_latched(self.port);
        if is != 0 {
            self.pr.write32(regs::P_IS, is);
        }
        if is & regs::IS_ERRORS != 0 {
            let tfd = self.pr.read32(regs::P_TFD);
            let live = self.slots.live();
            first_error.get_or_insert(DeviceError::Device(format!(
                "port {}: command failed (status {:#04x}, error {:#04x}, interrupt status {is:#x})",
                self.port,
                tfd & 0xff,
                (tfd >> 8) & 0xff
            )));
            self.recover()?;
            return Ok(live);
        }
        let ci = self.pr.read32(regs::P_CI);
        let mut finished = 0;
        for slot in 0..self.slots.capacity() {
            if !self.slots.is_busy(slot) || ci & (1 << slot) != 0 {
                continue;
            }
            let Some((job, live)) = self.slots.finish(slot) else { continue };
            if !live {
                continue;
            }
            finished += 1;
            let done = self.ctl.read32(slot * fis::HEADER_SIZE + 4) as usize;
            if done != job.len {
                first_error.get_or_insert(DeviceError::Device(format!(
                    "port {}: the HBA moved {done} bytes of {}",
                    self.port, job.len
                )));
                continue;
            }
            if job.inbound {
                if let Err(e) = io.unstage(&self.data[slot], job.offset, job.len) {
                    first_error.get_or_insert(e);
                }
            }
        }
        Ok(finished)
    }

    /// Issue `requests` into free slots as they become free and wait for
    /// all of them.
    fn run(&mut self, requests: &[Request], mut io: Io, timeout_ns: u64) -> Result<(), DeviceError> {
        if let Some(why) = &self.broken {
            return Err(DeviceError::Device(format!("port {} unusable: {why}", self.port)));
        }
        let deadline = Deadline::after(timeout_ns);
        let (mut next, mut outstanding) = (0, 0);
        let mut first_error = None;
        loop {
            while first_error.is_none() && next < requests.len() {
                let Some(slot) = self.slots.free_slot() else { break };
                let r = requests[next];
                io.stage(&self.data[slot], r.offset, r.len)?;
                self.issue(slot, &r)?;
                self.slots.start(slot, slot as u32, Job { offset: r.offset, len: r.len, inbound: !r.write });
                next += 1;
                outstanding += 1;
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
                self.recover()?;
                return Err(DeviceError::Timeout);
            }
            self.hba.wait(deadline.slice());
        }
    }

    /// A read or write of the extents `(lba, bytes)` (their data one after
    /// another in `io`), cut into commands issued together.
    fn transfer(&mut self, extents: &[(u64, usize)], io: Io) -> Result<(), DeviceError> {
        let pieces = split_extents(extents, self.info.sectors, self.info.sector_size, MAX_REQUEST)?;
        let write = io.is_write();
        let lba48 = self.identity.as_ref().is_some_and(|i| i.lba48);
        let command = match (write, lba48) {
            (false, true) => ata::READ_DMA_EXT,
            (true, true) => ata::WRITE_DMA_EXT,
            (false, false) => ata::READ_DMA,
            (true, false) => ata::WRITE_DMA,
        };
        let sector = self.info.sector_size as usize;
        let requests: Vec<Request> = pieces
            .into_iter()
            .map(|p| Request {
                cmd: Command { command, lba: p.lba, count: (p.len / sector) as u16, lba_mode: true, lba28: !lba48 },
                write,
                offset: p.offset,
                len: p.len,
            })
            .collect();
        if requests.is_empty() {
            return Ok(());
        }
        self.run(&requests, io, IO_TIMEOUT_NS)
    }
}

impl BlockDevice for AhciDisk {
    fn info(&self) -> &BlockInfo {
        &self.info
    }

    fn transfer_extents(&mut self, extents: &[(u64, u32)], io: Io) -> Result<(), DeviceError> {
        let extents = extent_bytes(extents, self.info.sector_size, io.len())?;
        self.transfer(&extents, io)
    }

    fn flush(&mut self) -> Result<(), DeviceError> {
        let lba48 = self.identity.as_ref().is_some_and(|i| i.lba48);
        let command = if lba48 { ata::FLUSH_CACHE_EXT } else { ata::FLUSH_CACHE };
        let cmd = Command { command, lba: 0, count: 0, lba_mode: false, lba28: false };
        self.run(&[Request { cmd, write: false, offset: 0, len: 0 }], Io::None, FLUSH_TIMEOUT_NS)
    }
}

impl Drop for AhciDisk {
    fn drop(&mut self) {
        // The HBA must stop using the command list, FIS area and buffers
        // before they are freed.
        self.pr.write32(regs::P_IE, 0);
        if stop(&self.pr).is_err() {
            log::warn!("AHCI port {}: did not stop; resetting the HBA", self.port);
            self.hba.regs.write32(regs::GHC, regs::GHC_AE | regs::GHC_HR);
            let _ = poll_until(1_000_000_000, || self.hba.regs.read32(regs::GHC) & regs::GHC_HR == 0);
        }
    }
}
