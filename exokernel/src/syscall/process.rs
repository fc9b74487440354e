//! Process calls: spawn from an image, start, kill, read status, watch for
//! the end, map a child's pages, and (for the root holder) open and list
//! every process.

use super::memory::user_pages;
use super::{caller, caller_mut, get, subset, target, Ret, SysResult};
use crate::mem::paging::PageAccess;
use crate::mem::user;
use crate::object::KObject;
use crate::process::{self, Blueprint, EndInfo, Pid};
use crate::sched::Kernel;
use alloc::vec::Vec;
use kintsugi_abi::{
    Error, HandleGrant, MapFlags, ObjectKind, ProcessInfo, ResourceKind, Rights, SchedClass, SpawnFlags, SpawnParams,
    MAX_ARGS, MAX_NAME, MAX_PROCESSES, MAX_START_HANDLES, PAGE_SIZE,
};

const PROCESS_RIGHTS: Rights = Rights::KILL
    .union(Rights::INFO)
    .union(Rights::START)
    .union(Rights::MAP)
    .union(Rights::DUPLICATE)
    .union(Rights::TRANSFER);

/// `(image, params_ptr, params_len) -> process handle`
pub(super) fn spawn(k: &mut Kernel, pid: Pid, a: [u64; 6]) -> SysResult {
    let [image_h, params_ptr, params_len, ..] = a;
    if params_len != core::mem::size_of::<SpawnParams>() as u64 {
        return Err(Error::InvalidArgument);
    }
    if k.count() >= MAX_PROCESSES {
        return Err(Error::LimitReached);
    }
    let p = caller(k, pid)?;
    if !p.handles.has_room() {
        return Err(Error::LimitReached);
    }
    let params: SpawnParams = user::read_struct(&p.space, params_ptr)?;
    let flags = SpawnFlags::from_bits(params.flags).ok_or(Error::InvalidArgument)?;
    let (image, _) = get(p, image_h, Rights::READ, Some(ObjectKind::Memory))?;
    let image = image.memory()?.clone();
    let bytes = image.contiguous_bytes().ok_or(Error::BadImage)?;
    let name = user::read_vec(&p.space, params.name_ptr, params.name_len, MAX_NAME)?;
    let args = user::read_vec(&p.space, params.args_ptr, params.args_len, MAX_ARGS)?;
    if params.grants_len > MAX_START_HANDLES as u64 {
        return Err(Error::TooLarge);
    }
    let mut grants = Vec::with_capacity(params.grants_len as usize);
    let size = core::mem::size_of::<HandleGrant>() as u64;
    for i in 0..params.grants_len {
        let g: HandleGrant = user::read_struct(&p.space, params.grants_ptr.wrapping_add(i * size))?;
        let (object, rights) = get(p, g.handle as u64, Rights::TRANSFER, None)?;
        grants.push((object, subset(rights, g.rights as u64)?));
    }
    let class = if flags.contains(SpawnFlags::SERVICE) {
        if p.shared.class != SchedClass::Service {
            return Err(Error::AccessDenied);
        }
        SchedClass::Service
    } else {
        SchedClass::Normal
    };
    let child_pid = k.alloc_pid();
    let child = process::create(Blueprint {
        image: bytes,
        image_object: Some(image.clone()),
        pid: child_pid,
        parent: pid,
        name: &name,
        args: &args,
        grants,
        stack_pages: params.stack_pages,
        page_limit: params.page_limit,
        suspended: flags.contains(SpawnFlags::SUSPENDED),
        class,
    })?;
    let shared = child.shared.clone();
    k.add(child);
    let p = caller_mut(k, pid)?;
    match p.handles.insert(KObject::Process(shared), PROCESS_RIGHTS) {
        Ok(h) => Ok(Ret::One(h.raw() as u64)),
        Err(e) => {
            k.end(child_pid, EndInfo::killed());
            Err(e)
        }
    }
}

/// `(process) -> 0`
pub(super) fn start(k: &mut Kernel, pid: Pid, a: [u64; 6]) -> SysResult {
    let t = target(k, pid, a[0], Rights::START)?;
    k.start(t)?;
    Ok(Ret::One(0))
}

/// `(process) -> 0`
pub(super) fn kill(k: &mut Kernel, pid: Pid, a: [u64; 6]) -> SysResult {
    let t = match target(k, pid, a[0], Rights::KILL) {
        Err(Error::ProcessDead) => return Ok(Ret::One(0)),
        r => r?,
    };
    k.end(t, EndInfo::killed());
    Ok(if t == pid { Ret::Gone } else { Ret::One(0) })
}

/// `(process, out_ptr) -> 0`
pub(super) fn info(k: &mut Kernel, pid: Pid, a: [u64; 6]) -> SysResult {
    let p = caller(k, pid)?;
    let shared = if super::handle_arg(a[0]) == kintsugi_abi::Handle::SELF {
        p.shared.clone()
    } else {
        let (object, _) = get(p, a[0], Rights::INFO, Some(ObjectKind::Process))?;
        object.process()?.clone()
    };
    let info = shared.info(k.procs.get(&shared.pid).map(|p| &**p));
    user::write_struct(&p.space, a[1], &info)?;
    Ok(Ret::One(0))
}

/// `(process, event, bits) -> 0`
pub(super) fn watch(k: &mut Kernel, pid: Pid, a: [u64; 6]) -> SysResult {
    let p = caller(k, pid)?;
    let (object, _) = get(p, a[0], Rights::INFO, Some(ObjectKind::Process))?;
    let (event, _) = get(p, a[1], Rights::WAIT, Some(ObjectKind::Event))?;
    object.process()?.watch(event.event()?.clone(), a[2])?;
    Ok(Ret::One(0))
}

/// `(process, child_vaddr, pages, my_vaddr, flags) -> 0`
pub(super) fn map_child(k: &mut Kernel, pid: Pid, a: [u64; 6]) -> SysResult {
    let [proc_h, child_va, pages, my_va, flags, _] = a;
    let flags = MapFlags::from_bits(flags).ok_or(Error::InvalidArgument)?;
    if flags.contains(MapFlags::EXECUTE) {
        return Err(Error::InvalidArgument);
    }
    user_pages(child_va, pages)?;
    user_pages(my_va, pages)?;
    let t = target(k, pid, proc_h, Rights::MAP)?;
    let write = flags.contains(MapFlags::WRITE);
    let child = &k.procs.get(&t).ok_or(Error::ProcessDead)?.space;
    let mut frames = Vec::new();
    frames.try_reserve_exact(pages as usize).map_err(|_| Error::OutOfMemory)?;
    for i in 0..pages {
        let m = child.translate(child_va + i * PAGE_SIZE).ok_or(Error::NotFound)?;
        if m.device {
            return Err(Error::InvalidArgument);
        }
        if write && !m.write {
            return Err(Error::AccessDenied);
        }
        frames.push(m.pa);
    }
    let space = &mut caller_mut(k, pid)?.space;
    space.map_range(my_va, pages, PageAccess { write, execute: false }, false, |i| frames[i as usize])?;
    Ok(Ret::One(0))
}

fn require_root(k: &Kernel, pid: Pid, raw: u64) -> Result<(), Error> {
    let (object, _) = get(caller(k, pid)?, raw, Rights::USE, Some(ObjectKind::Resource))?;
    if object.resource()?.kind != ResourceKind::Root {
        return Err(Error::AccessDenied);
    }
    Ok(())
}

/// `(root, pid) -> process handle`
pub(super) fn open(k: &mut Kernel, pid: Pid, a: [u64; 6]) -> SysResult {
    require_root(k, pid, a[0])?;
    let wanted = u32::try_from(a[1]).map_err(|_| Error::NotFound)?;
    let shared = k.procs.get(&wanted).ok_or(Error::NotFound)?.shared.clone();
    let p = caller_mut(k, pid)?;
    Ok(Ret::One(p.handles.insert(KObject::Process(shared), PROCESS_RIGHTS)?.raw() as u64))
}

/// `(root, out_ptr, max) -> total`
pub(super) fn list(k: &mut Kernel, pid: Pid, a: [u64; 6]) -> SysResult {
    require_root(k, pid, a[0])?;
    let max = a[2].min(MAX_PROCESSES as u64) as usize;
    let size = core::mem::size_of::<ProcessInfo>();
    let p = caller(k, pid)?;
    user::check_writable(&p.space, a[1], max * size)?;
    for (i, q) in k.procs.values().take(max).enumerate() {
        let info = q.shared.info(Some(q));
        user::write_struct(&p.space, a[1] + (i * size) as u64, &info)?;
    }
    Ok(Ret::One(k.procs.len() as u64))
}
