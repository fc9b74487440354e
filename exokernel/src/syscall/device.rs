//! Device calls: derive resources from the root, port I/O, MMIO mapping,
//! interrupt binding, the console, power, and machine-wide figures.

use super::memory::user_pages;
use super::{caller, caller_mut, get, Ret, SysResult};
use crate::mem::paging::PageAccess;
use crate::mem::user;
use crate::object::{KObject, Resource};
use crate::process::Pid;
use crate::sched::Kernel;
use alloc::sync::Arc;
use kintsugi_abi::{Error, IrqFlags, ObjectKind, ResourceKind, Rights, SystemInfo, PAGE_SIZE};

const RESOURCE_RIGHTS: Rights = Rights::USE.union(Rights::DUPLICATE).union(Rights::TRANSFER);

/// I/O ports the kernel drives itself: PIC, PIT, PC speaker gate, second PIC.
const KERNEL_PORTS: &[(u64, u64)] = &[(0x20, 2), (0x40, 4), (0x61, 1), (0xa0, 2)];

fn resource(k: &Kernel, pid: Pid, raw: u64, kind: ResourceKind) -> Result<Arc<Resource>, Error> {
    let (object, _) = get(caller(k, pid)?, raw, Rights::USE, Some(ObjectKind::Resource))?;
    let r = object.resource()?.clone();
    if r.kind != kind {
        return Err(Error::WrongType);
    }
    Ok(r)
}

/// `(resource, kind, base, len) -> handle`
pub(super) fn derive(k: &mut Kernel, pid: Pid, a: [u64; 6]) -> SysResult {
    let [parent, kind, base, len, ..] = a;
    let (object, _) = get(caller(k, pid)?, parent, Rights::DERIVE, Some(ObjectKind::Resource))?;
    if object.resource()?.kind != ResourceKind::Root {
        return Err(Error::AccessDenied);
    }
    let kind = u32::try_from(kind).ok().and_then(ResourceKind::from_u32).ok_or(Error::InvalidArgument)?;
    let overlaps = |start: u64, n: u64, s: u64, l: u64| start < s + l && s < start + n;
    match kind {
        ResourceKind::Root => return Err(Error::InvalidArgument),
        ResourceKind::IoPorts => {
            if len == 0 || base.checked_add(len).is_none_or(|end| end > 0x1_0000) {
                return Err(Error::InvalidArgument);
            }
            let console = (crate::console::PORTS.start as u64, crate::console::PORTS.len() as u64);
            let pci = crate::arch::cpu::PCI_CONFIG_PORTS;
            let pci = (pci.start as u64, pci.len() as u64);
            if KERNEL_PORTS.iter().chain([&console, &pci]).any(|&(s, l)| overlaps(base, len, s, l)) {
                return Err(Error::AccessDenied);
            }
        }
        ResourceKind::Mmio => {
            if len == 0 || base % PAGE_SIZE != 0 || len % PAGE_SIZE != 0 || base.checked_add(len).is_none() {
                return Err(Error::InvalidArgument);
            }
            let ram = crate::start::RAM.get().map(|v| v.as_slice()).unwrap_or(&[]);
            let platform = crate::arch::acpi::platform();
            let mut kernel_mmio = platform.ioapics.iter().map(|io| io.address & !(PAGE_SIZE - 1));
            let lapic = platform.lapic_address & !(PAGE_SIZE - 1);
            if crate::mem::frames::overlaps_ram(base, base + len, ram)
                || overlaps(base, len, lapic, PAGE_SIZE)
                || kernel_mmio.any(|io| overlaps(base, len, io, PAGE_SIZE))
            {
                return Err(Error::AccessDenied);
            }
        }
        ResourceKind::Irq => {
            if IrqFlags::from_bits(len).is_none() || !crate::irq::is_assignable(u32::try_from(base).unwrap_or(u32::MAX))
            {
                return Err(Error::InvalidArgument);
            }
        }
        ResourceKind::Console => {}
        ResourceKind::PciConfig => {
            if len == 0 || base.checked_add(len).is_none_or(|end| end > 0x1_0000) {
                return Err(Error::InvalidArgument);
            }
        }
        ResourceKind::Msi => {}
    }
    let p = caller_mut(k, pid)?;
    if !p.handles.has_room() {
        return Err(Error::LimitReached);
    }
    let (base, len) = match kind {
        ResourceKind::Msi => (crate::irq::alloc_msi().ok_or(Error::LimitReached)?, 1),
        _ => (base, len),
    };
    let r = Resource::new(kind, base, len);
    Ok(Ret::One(p.handles.insert(KObject::Resource(Arc::new(r)), RESOURCE_RIGHTS)?.raw() as u64))
}

fn port_args(port: u64, width: u64) -> Result<(u16, u8), Error> {
    let width = match width {
        1 | 2 | 4 => width as u8,
        _ => return Err(Error::InvalidArgument),
    };
    Ok((u16::try_from(port).map_err(|_| Error::InvalidArgument)?, width))
}

/// `(ports, port, width) -> value`
pub(super) fn port_read(k: &mut Kernel, pid: Pid, a: [u64; 6]) -> SysResult {
    let r = resource(k, pid, a[0], ResourceKind::IoPorts)?;
    let (port, width) = port_args(a[1], a[2])?;
    if !r.covers(port as u64, width as u64) {
        return Err(Error::AccessDenied);
    }
    Ok(Ret::One(crate::arch::cpu::port_read(port, width) as u64))
}

/// `(ports, port, width, value) -> 0`
pub(super) fn port_write(k: &mut Kernel, pid: Pid, a: [u64; 6]) -> SysResult {
    let r = resource(k, pid, a[0], ResourceKind::IoPorts)?;
    let (port, width) = port_args(a[1], a[2])?;
    if !r.covers(port as u64, width as u64) {
        return Err(Error::AccessDenied);
    }
    crate::arch::cpu::port_write(port, width, a[3] as u32);
    Ok(Ret::One(0))
}

/// `(mmio, phys, pages, vaddr) -> 0`
pub(super) fn mmio_map(k: &mut Kernel, pid: Pid, a: [u64; 6]) -> SysResult {
    let r = resource(k, pid, a[0], ResourceKind::Mmio)?;
    let [_, phys, pages, va, ..] = a;
    user_pages(va, pages)?;
    if phys % PAGE_SIZE != 0 || !r.covers(phys, pages * PAGE_SIZE) {
        return Err(Error::AccessDenied);
    }
    let space = &mut caller_mut(k, pid)?.space;
    space.map_range(va, pages, PageAccess { write: true, execute: false }, true, |i| phys + i * PAGE_SIZE)?;
    Ok(Ret::One(0))
}

/// `(irq or msi, event, bits) -> 0`
pub(super) fn irq_bind(k: &mut Kernel, pid: Pid, a: [u64; 6]) -> SysResult {
    let (object, _) = get(caller(k, pid)?, a[0], Rights::USE, Some(ObjectKind::Resource))?;
    let r = object.resource()?.clone();
    let (event, _) = get(caller(k, pid)?, a[1], Rights::WAIT, Some(ObjectKind::Event))?;
    match r.kind {
        ResourceKind::Irq => {
            let flags = IrqFlags::from_bits_truncate(r.len);
            crate::irq::bind(r.base as u32, flags, event.event()?.clone(), a[2])?;
        }
        ResourceKind::Msi => crate::irq::bind_msi(r.base, event.event()?.clone(), a[2])?,
        _ => return Err(Error::WrongType),
    }
    Ok(Ret::One(0))
}

/// `(msi) -> (address, data)`
pub(super) fn msi_message(k: &mut Kernel, pid: Pid, a: [u64; 6]) -> SysResult {
    let r = resource(k, pid, a[0], ResourceKind::Msi)?;
    let (address, data) = crate::irq::msi_message(r.base);
    Ok(Ret::Two(address, data))
}

fn pci_args(r: &Resource, function: u64, offset: u64, width: u64) -> Result<(u32, u16, u8), Error> {
    if !r.covers(function, 1) {
        return Err(Error::AccessDenied);
    }
    let width = match width {
        1 | 2 | 4 => width as u8,
        _ => return Err(Error::InvalidArgument),
    };
    if offset >= 256 || !offset.is_multiple_of(width as u64) {
        return Err(Error::InvalidArgument);
    }
    Ok((function as u32, offset as u16, width))
}

/// `(pci, function, offset, width) -> value`
pub(super) fn pci_read(k: &mut Kernel, pid: Pid, a: [u64; 6]) -> SysResult {
    let r = resource(k, pid, a[0], ResourceKind::PciConfig)?;
    let (function, offset, width) = pci_args(&r, a[1], a[2], a[3])?;
    Ok(Ret::One(crate::arch::cpu::pci_config_read(function, offset, width) as u64))
}

/// `(pci, function, offset, width, value) -> 0`
pub(super) fn pci_write(k: &mut Kernel, pid: Pid, a: [u64; 6]) -> SysResult {
    let r = resource(k, pid, a[0], ResourceKind::PciConfig)?;
    let (function, offset, width) = pci_args(&r, a[1], a[2], a[3])?;
    crate::arch::cpu::pci_config_write(function, offset, width, a[4] as u32);
    Ok(Ret::One(0))
}

/// `(irq) -> 0` (a no-op for an MSI vector)
pub(super) fn irq_ack(k: &mut Kernel, pid: Pid, a: [u64; 6]) -> SysResult {
    let (object, _) = get(caller(k, pid)?, a[0], Rights::USE, Some(ObjectKind::Resource))?;
    let r = object.resource()?;
    match r.kind {
        ResourceKind::Irq => crate::irq::ack(r.base as u32),
        ResourceKind::Msi => {}
        _ => return Err(Error::WrongType),
    }
    Ok(Ret::One(0))
}

/// `(console, buf, len) -> bytes`
pub(super) fn console_read(k: &mut Kernel, pid: Pid, a: [u64; 6]) -> SysResult {
    resource(k, pid, a[0], ResourceKind::Console)?;
    let len = a[2].min(4096) as usize;
    let p = caller(k, pid)?;
    user::check_writable(&p.space, a[1], len)?;
    let mut buf = [0u8; 4096];
    let n = crate::console::read(&mut buf[..len]);
    user::write(&p.space, a[1], &buf[..n])?;
    Ok(Ret::One(n as u64))
}

/// `(console, event, bits) -> 0`
pub(super) fn console_bind(k: &mut Kernel, pid: Pid, a: [u64; 6]) -> SysResult {
    resource(k, pid, a[0], ResourceKind::Console)?;
    let (event, _) = get(caller(k, pid)?, a[1], Rights::WAIT, Some(ObjectKind::Event))?;
    crate::console::bind(event.event()?.clone(), a[2]);
    Ok(Ret::One(0))
}

/// `(root, action) -> never returns on success`
pub(super) fn power(k: &mut Kernel, pid: Pid, a: [u64; 6]) -> SysResult {
    resource(k, pid, a[0], ResourceKind::Root)?;
    match a[1] {
        0 => {
            kprintln!("kernel: powering off");
            crate::arch::acpi::power_off();
            // The machine stops asynchronously; give it a moment.
            let start = crate::clock::now_ns();
            while crate::clock::now_ns() - start < 500_000_000 {
                core::hint::spin_loop();
            }
            kprintln!("kernel: error: power-off did not take effect; halting");
            crate::arch::cpu::halt_forever()
        }
        1 => {
            kprintln!("kernel: resetting");
            crate::arch::acpi::reset();
            Err(Error::Unsupported)
        }
        _ => Err(Error::InvalidArgument),
    }
}

/// `(out_ptr) -> 0`
pub(super) fn system_info(k: &mut Kernel, pid: Pid, a: [u64; 6]) -> SysResult {
    let (total, free) = crate::mem::frames::stats();
    let info = SystemInfo {
        total_pages: total,
        free_pages: free,
        processes: k.count() as u64,
        uptime_ns: crate::clock::now_ns(),
        tick_hz: crate::clock::TICK_HZ,
        kernel_heap_used: crate::mem::heap::used() as u64,
        kernel_heap_size: crate::mem::heap::SIZE as u64,
        boot_id: crate::clock::boot_id(),
    };
    user::write_struct(&caller(k, pid)?.space, a[0], &info)?;
    Ok(Ret::One(0))
}

/// `(console, op, a, b, c)`: see `kintsugi_abi::ConsoleOp`.
pub(super) fn console(k: &mut Kernel, pid: Pid, a: [u64; 6]) -> SysResult {
    use kintsugi_abi::{ConsoleOp, MAX_CONSOLE_INJECT, MAX_LOG_RECORD};
    resource(k, pid, a[0], ResourceKind::Console)?;
    let op = ConsoleOp::from_u64(a[1]).ok_or(Error::InvalidArgument)?;
    let [_, _, x, y, z, w] = a;
    let event_arg = |k: &Kernel, raw: u64| -> Result<Arc<crate::object::Event>, Error> {
        let (event, _) = get(caller(k, pid)?, raw, Rights::WAIT, Some(ObjectKind::Event))?;
        Ok(event.event()?.clone())
    };
    match op {
        ConsoleOp::LogRead => {
            let len = (z as usize).min(4 * MAX_LOG_RECORD);
            let space = &caller(k, pid)?.space;
            user::check_writable(space, y, len)?;
            let mut buf = alloc::vec![0u8; len];
            let (next, n) = crate::console::log_read(x, &mut buf)?;
            user::write(space, y, &buf[..n])?;
            Ok(Ret::Two(next, n as u64))
        }
        ConsoleOp::LogWatch => {
            let event = event_arg(k, x)?;
            crate::console::log_watch(&event, y)?;
            Ok(Ret::One(0))
        }
        ConsoleOp::DisplayInfo => {
            user::write_struct(&caller(k, pid)?.space, x, &crate::console::display())?;
            Ok(Ret::One(0))
        }
        ConsoleOp::DisplayClaim => {
            let event = event_arg(k, x)?;
            crate::console::claim_display(&event);
            Ok(Ret::One(0))
        }
        ConsoleOp::InputInject => {
            let bytes = user::read_vec(&caller(k, pid)?.space, x, y, MAX_CONSOLE_INJECT)?;
            crate::console::inject(&bytes);
            Ok(Ret::One(0))
        }
        ConsoleOp::OutputAbove => {
            let name = caller(k, pid)?.shared.name();
            if x == 0 {
                crate::console::output_above(pid, name, None);
            } else {
                let event = event_arg(k, x)?;
                crate::console::output_above(pid, name, Some((&event, y)));
            }
            Ok(Ret::One(0))
        }
        ConsoleOp::Echo => {
            let p = caller(k, pid)?;
            let echo = user::read_vec(&p.space, x, y, kintsugi_abi::MAX_DEBUG_WRITE)?;
            let redraw = user::read_vec(&p.space, z, w, kintsugi_abi::MAX_DEBUG_WRITE)?;
            Ok(Ret::One(u64::from(crate::console::echo(pid, p.shared.name(), &echo, &redraw))))
        }
    }
}
