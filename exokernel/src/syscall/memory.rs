//! Memory calls: allocate memory objects, map and unmap them in a process,
//! learn physical addresses, read and clear dirty bits.

use super::{caller, caller_mut, get, target, Ret, SysResult};
use crate::mem::paging::PageAccess;
use crate::mem::user;
use crate::object::{KObject, MemoryObject};
use crate::process::Pid;
use crate::sched::Kernel;
use alloc::sync::Arc;
use alloc::vec;
use kintsugi_abi::{
    is_user_range, Error, MapFlags, MemFlags, ObjectKind, Rights, MAX_DIRTY_PAGES, MAX_MEM_PAGES, PAGE_SIZE,
};

/// Check a page-aligned user range of `pages` pages at `va`.
pub(super) fn user_pages(va: u64, pages: u64) -> Result<(), Error> {
    if pages == 0 || pages > MAX_MEM_PAGES || !va.is_multiple_of(PAGE_SIZE) || !is_user_range(va, pages * PAGE_SIZE) {
        return Err(Error::InvalidArgument);
    }
    Ok(())
}

/// `(pages, flags) -> memory handle`
pub(super) fn alloc(k: &mut Kernel, pid: Pid, a: [u64; 6]) -> SysResult {
    let flags = MemFlags::from_bits(a[1]).ok_or(Error::InvalidArgument)?;
    let p = caller_mut(k, pid)?;
    if !p.handles.has_room() {
        return Err(Error::LimitReached);
    }
    let object = MemoryObject::alloc(a[0], flags, &p.account)?;
    let rights = Rights::READ
        | Rights::WRITE
        | Rights::EXECUTE
        | Rights::MAP
        | Rights::PHYS
        | Rights::DUPLICATE
        | Rights::TRANSFER;
    Ok(Ret::One(p.handles.insert(KObject::Memory(Arc::new(object)), rights)?.raw() as u64))
}

/// `(process, memory, first_page, vaddr, pages, flags) -> 0`
pub(super) fn map(k: &mut Kernel, pid: Pid, a: [u64; 6]) -> SysResult {
    let [proc_h, mem_h, first, va, pages, flags] = a;
    let flags = MapFlags::from_bits(flags).ok_or(Error::InvalidArgument)?;
    let mut needed = Rights::MAP | Rights::READ;
    if flags.contains(MapFlags::WRITE) {
        needed |= Rights::WRITE;
    }
    if flags.contains(MapFlags::EXECUTE) {
        needed |= Rights::EXECUTE;
    }
    let (object, _) = get(caller(k, pid)?, mem_h, needed, Some(ObjectKind::Memory))?;
    let memory = object.memory()?.clone();
    user_pages(va, pages)?;
    if first.checked_add(pages).is_none_or(|end| end > memory.pages()) {
        return Err(Error::InvalidArgument);
    }
    let t = target(k, pid, proc_h, Rights::MAP)?;
    let access = PageAccess { write: flags.contains(MapFlags::WRITE), execute: flags.contains(MapFlags::EXECUTE) };
    let process = k.procs.get_mut(&t).ok_or(Error::ProcessDead)?;
    process.mapped.reserve()?;
    process.space.map_range(va, pages, access, false, |i| memory.frame(first + i).unwrap_or(0))?;
    // The mapping holds the object: its frames stay charged to the account
    // that allocated them until the last of these pages is unmapped.
    process.mapped.add(va, pages, memory);
    Ok(Ret::One(0))
}

/// `(process, vaddr, pages) -> pages unmapped`
pub(super) fn unmap(k: &mut Kernel, pid: Pid, a: [u64; 6]) -> SysResult {
    let [proc_h, va, pages, ..] = a;
    user_pages(va, pages)?;
    let t = target(k, pid, proc_h, Rights::MAP)?;
    let process = k.procs.get_mut(&t).ok_or(Error::ProcessDead)?;
    let mut removed = 0;
    for i in 0..pages {
        let page = va + i * PAGE_SIZE;
        if process.space.unmap(page) {
            process.mapped.unmapped(page);
            removed += 1;
        }
    }
    Ok(Ret::One(removed))
}

/// `(memory, page_index) -> physical address`
pub(super) fn phys(k: &mut Kernel, pid: Pid, a: [u64; 6]) -> SysResult {
    let (object, _) = get(caller(k, pid)?, a[0], Rights::PHYS, Some(ObjectKind::Memory))?;
    Ok(Ret::One(object.memory()?.frame(a[1]).ok_or(Error::InvalidArgument)?))
}

/// `(memory) -> pages`
pub(super) fn size(k: &mut Kernel, pid: Pid, a: [u64; 6]) -> SysResult {
    let (object, _) = get(caller(k, pid)?, a[0], Rights::empty(), Some(ObjectKind::Memory))?;
    Ok(Ret::One(object.memory()?.pages()))
}

/// `(process, vaddr, pages, bitmap_ptr) -> dirty pages`
pub(super) fn dirty(k: &mut Kernel, pid: Pid, a: [u64; 6]) -> SysResult {
    let [proc_h, va, pages, bitmap, ..] = a;
    if pages > MAX_DIRTY_PAGES {
        return Err(Error::TooLarge);
    }
    user_pages(va, pages)?;
    let bytes = pages.div_ceil(8) as usize;
    // The bitmap must be writable before any dirty bit is cleared.
    user::check_writable(&caller(k, pid)?.space, bitmap, bytes)?;
    let t = target(k, pid, proc_h, Rights::MAP)?;
    let mut map = vec![0u8; bytes];
    let space = &mut k.procs.get_mut(&t).ok_or(Error::ProcessDead)?.space;
    let mut count = 0;
    for i in 0..pages {
        if space.take_dirty(va + i * PAGE_SIZE) {
            map[(i / 8) as usize] |= 1 << (i % 8);
            count += 1;
        }
    }
    user::write(&caller(k, pid)?.space, bitmap, &map)?;
    Ok(Ret::One(count))
}
