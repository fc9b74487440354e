//! Event and link calls: create, signal and wait on events; create links,
//! bind them to events, signal the peer, move handles across.

use super::{caller, caller_mut, get, handle_arg, subset, Ret, SysResult};
use crate::mem::user;
use crate::object::{Event, KObject, LinkEnd};
use crate::process::{Pid, Process, Wait, WaitEvents};
use crate::sched::Kernel;
use alloc::sync::Arc;
use kintsugi_abi::{Error, ObjectKind, Rights, MAX_WAIT_HANDLES};

const EVENT_RIGHTS: Rights = Rights::SIGNAL.union(Rights::WAIT).union(Rights::DUPLICATE).union(Rights::TRANSFER);
const LINK_RIGHTS: Rights =
    Rights::SIGNAL.union(Rights::READ).union(Rights::WRITE).union(Rights::TRANSFER).union(Rights::DUPLICATE);

/// `() -> event handle`
pub(super) fn create(k: &mut Kernel, pid: Pid) -> SysResult {
    let p = caller_mut(k, pid)?;
    Ok(Ret::One(p.handles.insert(KObject::Event(Arc::new(Event::new())), EVENT_RIGHTS)?.raw() as u64))
}

/// `(event, bits) -> 0`
pub(super) fn signal(k: &mut Kernel, pid: Pid, a: [u64; 6]) -> SysResult {
    let (object, _) = get(caller(k, pid)?, a[0], Rights::SIGNAL, Some(ObjectKind::Event))?;
    object.event()?.signal(a[1]);
    Ok(Ret::One(0))
}

/// `(handles_ptr, count, timeout_ns) -> (index, bits)`
pub(super) fn wait(k: &mut Kernel, pid: Pid, a: [u64; 6]) -> SysResult {
    let [ptr, count, timeout, ..] = a;
    let events = wait_events(k, pid, ptr, count)?;
    wait_on(k, pid, events, timeout)
}

/// The events named by a wait's handle array, each with `WAIT`.
fn wait_events(k: &Kernel, pid: Pid, ptr: u64, count: u64) -> Result<WaitEvents, Error> {
    if count == 0 || count > MAX_WAIT_HANDLES as u64 {
        return Err(Error::InvalidArgument);
    }
    let p = caller(k, pid)?;
    let mut events = WaitEvents::with_capacity(count as usize);
    read_wait_handles(p, ptr, count, &mut events)?;
    Ok(events)
}

/// Append the events of a user array of `count` `u32` handles (each with
/// `WAIT`) to `events`.
fn read_wait_handles(p: &Process, ptr: u64, count: u64, events: &mut WaitEvents) -> Result<(), Error> {
    // The handle array, a few at a time (no large buffer to clear).
    const CHUNK: usize = 8;
    let mut raw = [0u8; CHUNK * 4];
    let mut done = 0;
    while done < count as usize {
        let n = CHUNK.min(count as usize - done);
        user::read(&p.space, ptr.wrapping_add(done as u64 * 4), &mut raw[..n * 4])?;
        for h in raw[..n * 4].chunks_exact(4) {
            let h = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
            let (object, _) = get(p, h as u64, Rights::WAIT, Some(ObjectKind::Event))?;
            events.push(object.event()?.clone());
        }
        done += n;
    }
    Ok(())
}

/// Take the first event with bits set, or block until one is signalled or
/// `timeout` nanoseconds pass (0 polls, `u64::MAX` waits forever).
fn wait_on(k: &mut Kernel, pid: Pid, events: WaitEvents, timeout: u64) -> SysResult {
    for (i, e) in events.iter().enumerate() {
        let bits = e.take();
        if bits != 0 {
            return Ok(Ret::Two(i as u64, bits));
        }
    }
    if timeout == 0 {
        return Err(Error::TimedOut);
    }
    let deadline = (timeout != u64::MAX).then(|| crate::clock::now_ns().saturating_add(timeout));
    k.block(pid, Wait { events, deadline });
    Ok(Ret::Blocked)
}

/// `(link, event, timeout_ns, more_ptr, more_count) -> (index, bits)`:
/// signal the peer, then wait on `event` and the `more` events; every
/// handle is checked first. The first event comes in a register, so the
/// usual one-event call reads no user memory.
pub(super) fn link_signal_wait(k: &mut Kernel, pid: Pid, a: [u64; 6]) -> SysResult {
    let [link, event, timeout, more_ptr, more_count, _] = a;
    if more_count >= MAX_WAIT_HANDLES as u64 {
        return Err(Error::InvalidArgument);
    }
    let p = caller(k, pid)?;
    let (link, _) = get(p, link, Rights::SIGNAL, Some(ObjectKind::Link))?;
    let (event, _) = get(p, event, Rights::WAIT, Some(ObjectKind::Event))?;
    let mut events = WaitEvents::with_capacity(1 + more_count as usize);
    events.push(event.event()?.clone());
    if more_count > 0 {
        read_wait_handles(p, more_ptr, more_count, &mut events)?;
    }
    link.link()?.signal_peer()?;
    wait_on(k, pid, events, timeout)
}

/// `() -> (end0, end1)`
pub(super) fn link_create(k: &mut Kernel, pid: Pid) -> SysResult {
    let p = caller_mut(k, pid)?;
    let (a, b) = LinkEnd::pair();
    let ha = p.handles.insert(KObject::Link(a), LINK_RIGHTS)?;
    match p.handles.insert(KObject::Link(b), LINK_RIGHTS) {
        Ok(hb) => Ok(Ret::Two(ha.raw() as u64, hb.raw() as u64)),
        Err(e) => {
            let _ = p.handles.remove(ha);
            Err(e)
        }
    }
}

/// `(link, event, signal_bits, closed_bits) -> 0`
pub(super) fn link_bind(k: &mut Kernel, pid: Pid, a: [u64; 6]) -> SysResult {
    let p = caller(k, pid)?;
    let (link, _) = get(p, a[0], Rights::READ, Some(ObjectKind::Link))?;
    let (event, _) = get(p, a[1], Rights::WAIT, Some(ObjectKind::Event))?;
    link.link()?.bind(event.event()?.clone(), a[2], a[3]);
    Ok(Ret::One(0))
}

/// `(link) -> 0`
pub(super) fn link_signal(k: &mut Kernel, pid: Pid, a: [u64; 6]) -> SysResult {
    let (link, _) = get(caller(k, pid)?, a[0], Rights::SIGNAL, Some(ObjectKind::Link))?;
    link.link()?.signal_peer()?;
    Ok(Ret::One(0))
}

/// `(link, handle, rights) -> 0`
pub(super) fn link_send(k: &mut Kernel, pid: Pid, a: [u64; 6]) -> SysResult {
    let p = caller_mut(k, pid)?;
    let (link, _) = get(p, a[0], Rights::WRITE, Some(ObjectKind::Link))?;
    if handle_arg(a[1]) == handle_arg(a[0]) {
        return Err(Error::InvalidArgument);
    }
    let (object, rights) = get(p, a[1], Rights::TRANSFER, None)?;
    let wanted = subset(rights, a[2])?;
    link.link()?.send(object, wanted).map_err(|(e, _)| e)?;
    p.handles.remove(handle_arg(a[1]))?;
    Ok(Ret::One(0))
}

/// `(link) -> handle`
pub(super) fn link_recv(k: &mut Kernel, pid: Pid, a: [u64; 6]) -> SysResult {
    let p = caller_mut(k, pid)?;
    let (link, _) = get(p, a[0], Rights::READ, Some(ObjectKind::Link))?;
    let link = link.link()?;
    if !p.handles.has_room() {
        return Err(Error::LimitReached);
    }
    let (object, rights) = link.recv().ok_or(Error::WouldBlock)?;
    match p.handles.insert(object.clone(), rights) {
        Ok(h) => Ok(Ret::One(h.raw() as u64)),
        Err(e) => {
            link.unrecv(object, rights);
            Err(e)
        }
    }
}
