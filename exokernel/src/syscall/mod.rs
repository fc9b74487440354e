//! System call dispatch: decode the number and arguments from the caller's
//! saved registers, run the call, and write the result back.
//!
//! Every argument is untrusted: handles are looked up with their rights,
//! pointers go through `mem::user`, sizes are bounded before anything is
//! allocated. A call either completes, blocks the caller (its result is
//! written later by whoever wakes it), or ends the caller.

mod device;
mod event;
mod memory;
mod process;

use crate::arch::trapframe::TrapFrame;
use crate::object::KObject;
use crate::process::{Pid, Process};
use crate::sched::Kernel;
use kintsugi_abi::{Error, Handle, ObjectKind, Rights, Syscall};

/// What a call produced.
pub enum Ret {
    /// One value in `rax`.
    One(u64),
    /// Values for `rax` and `rdx`.
    Two(u64, u64),
    /// The caller is blocked; its result comes later.
    Blocked,
    /// The caller no longer exists.
    Gone,
}

type SysResult = Result<Ret, Error>;

/// Run the syscall that `pid` (the current process, whose registers are in
/// `frame`) just made; its results go into `frame`.
pub fn handle(k: &mut Kernel, pid: Pid, frame: &mut TrapFrame) {
    let result = match Syscall::from_number(frame.rax as usize) {
        Some(call) => run(k, pid, call, frame.syscall_args()),
        None => Err(Error::InvalidSyscall),
    };
    match result {
        Ok(Ret::One(v)) => frame.rax = v,
        Ok(Ret::Two(a, b)) => {
            frame.rax = a;
            frame.rdx = b;
        }
        Ok(Ret::Blocked) | Ok(Ret::Gone) => {}
        Err(e) => frame.rax = e.to_raw() as u64,
    }
}

fn run(k: &mut Kernel, pid: Pid, call: Syscall, a: [u64; 6]) -> SysResult {
    use Syscall::*;
    let creates_objects = matches!(
        call,
        HandleDuplicate | MemAlloc | EventCreate | LinkCreate | LinkRecv | ProcessSpawn | ProcessOpen | ResourceDerive
    );
    if creates_objects && !crate::mem::heap::has_headroom() {
        return Err(Error::OutOfMemory);
    }
    match call {
        DebugWrite => debug_write(caller(k, pid)?, a[0], a[1]),
        Exit => {
            k.end(pid, crate::process::EndInfo::exited(a[0] as i32));
            Ok(Ret::Gone)
        }
        Yield => {
            k.yield_current();
            Ok(Ret::One(0))
        }
        ClockNow => Ok(Ret::One(crate::clock::now_ns())),
        HandleClose => {
            let object = caller_mut(k, pid)?.handles.remove(handle_arg(a[0]))?;
            drop(object);
            Ok(Ret::One(0))
        }
        HandleDuplicate => {
            let p = caller_mut(k, pid)?;
            let (object, rights) = get(p, a[0], Rights::DUPLICATE, None)?;
            let wanted = subset(rights, a[1])?;
            Ok(Ret::One(p.handles.insert(object, wanted)?.raw() as u64))
        }
        HandleInfo => {
            let p = caller(k, pid)?;
            let (object, rights) = p.handles.get(handle_arg(a[0]))?;
            Ok(Ret::One(((object.kind() as u64) << 32) | rights.bits() as u64))
        }
        MemAlloc => memory::alloc(k, pid, a),
        MemMap => memory::map(k, pid, a),
        MemUnmap => memory::unmap(k, pid, a),
        MemPhys => memory::phys(k, pid, a),
        MemSize => memory::size(k, pid, a),
        MemDirty => memory::dirty(k, pid, a),
        EventCreate => event::create(k, pid),
        EventSignal => event::signal(k, pid, a),
        EventWait => event::wait(k, pid, a),
        LinkCreate => event::link_create(k, pid),
        LinkBind => event::link_bind(k, pid, a),
        LinkSignal => event::link_signal(k, pid, a),
        LinkSend => event::link_send(k, pid, a),
        LinkRecv => event::link_recv(k, pid, a),
        LinkSignalWait => event::link_signal_wait(k, pid, a),
        ProcessSpawn => process::spawn(k, pid, a),
        ProcessStart => process::start(k, pid, a),
        ProcessKill => process::kill(k, pid, a),
        ProcessInfo => process::info(k, pid, a),
        ProcessWatch => process::watch(k, pid, a),
        ProcessMapChild => process::map_child(k, pid, a),
        ProcessOpen => process::open(k, pid, a),
        ProcessList => process::list(k, pid, a),
        ResourceDerive => device::derive(k, pid, a),
        IoPortRead => device::port_read(k, pid, a),
        IoPortWrite => device::port_write(k, pid, a),
        MmioMap => device::mmio_map(k, pid, a),
        IrqBind => device::irq_bind(k, pid, a),
        IrqAck => device::irq_ack(k, pid, a),
        ConsoleRead => device::console_read(k, pid, a),
        ConsoleBind => device::console_bind(k, pid, a),
        SystemPower => device::power(k, pid, a),
        SystemInfo => device::system_info(k, pid, a),
        PciConfigRead => device::pci_read(k, pid, a),
        PciConfigWrite => device::pci_write(k, pid, a),
        IrqMsiMessage => device::msi_message(k, pid, a),
        Console => device::console(k, pid, a),
        Profile => {
            let mut live = k.procs.iter().map(|(pid, p)| (*pid, p.shared.name()));
            crate::profile::control(a[0], &mut live).map(Ret::One)
        }
    }
}

fn debug_write(p: &Process, ptr: u64, len: u64) -> SysResult {
    let bytes = crate::mem::user::read_vec(&p.space, ptr, len, kintsugi_abi::MAX_DEBUG_WRITE)?;
    crate::console::write_from(p.pid(), p.shared.name(), &bytes);
    Ok(Ret::One(0))
}

/// The calling process.
fn caller(k: &Kernel, pid: Pid) -> Result<&Process, Error> {
    k.procs.get(&pid).map(|p| &**p).ok_or(Error::ProcessDead)
}

/// The calling process, mutably.
fn caller_mut(k: &mut Kernel, pid: Pid) -> Result<&mut Process, Error> {
    k.procs.get_mut(&pid).map(|p| &mut **p).ok_or(Error::ProcessDead)
}

/// A handle argument (handles are 32-bit; higher bits make it invalid).
fn handle_arg(raw: u64) -> Handle {
    u32::try_from(raw).map(Handle).unwrap_or(Handle::NULL)
}

/// Look up a handle, requiring `needed` rights and, if given, a kind.
fn get(p: &Process, raw: u64, needed: Rights, kind: Option<ObjectKind>) -> Result<(KObject, Rights), Error> {
    let (object, rights) = p.handles.get(handle_arg(raw))?;
    if let Some(kind) = kind {
        if object.kind() != kind {
            return Err(Error::WrongType);
        }
    }
    if !rights.contains(needed) {
        return Err(Error::AccessDenied);
    }
    Ok((object.clone(), rights))
}

/// `raw` as rights that must be a subset of `have`.
fn subset(have: Rights, raw: u64) -> Result<Rights, Error> {
    let wanted = u32::try_from(raw).ok().and_then(Rights::from_bits).ok_or(Error::InvalidArgument)?;
    if !have.contains(wanted) {
        return Err(Error::AccessDenied);
    }
    Ok(wanted)
}

/// The pid named by a process-handle argument ([`Handle::SELF`] is the
/// caller), requiring `needed` rights on a real handle, and alive.
fn target(k: &Kernel, pid: Pid, raw: u64, needed: Rights) -> Result<Pid, Error> {
    if handle_arg(raw) == Handle::SELF {
        return Ok(pid);
    }
    let (object, _) = get(caller(k, pid)?, raw, needed, Some(ObjectKind::Process))?;
    let target = object.process()?.pid;
    if !k.procs.contains_key(&target) {
        return Err(Error::ProcessDead);
    }
    Ok(target)
}
