//! The companion's handle on its service process: starting it (fresh or
//! from a checkpoint), talking to it over the private companion channel
//! with the contract checked on every message, noticing its death or a
//! hang, and copying its state arena for image checkpoints.

use super::Failure;
use crate::link::{Companion, Reply, Request};
use crate::store::Checkpoint;
use crate::Distillation;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use libos::abi::{Error, MapFlags, MemFlags, PAGE_SIZE};
use libos::channel::{select, Channel, ChannelError, Endpoint, Signal, Waitable};
use libos::directory::{self, SpawnRequest};
use libos::handle::{Mapping, Memory, OwnedHandle, Process};
use libos::protocol::Checker;
use libos::sys;
use libos::vm::ARENA_BASE;

/// How much longer than its deadline (the contract's `deadline`, 3 s by
/// default) the service may stay silent while it is blocked (waiting for
/// an event, such as the answer of a service below it that is itself being
/// recovered: fs behind a hung blk is found hung 3 s later, which is the
/// time blk's companion takes to find blk hung, and a restart of fs for it
/// is a crash nobody injected). A service that spins is found at its
/// deadline; one blocked for good within this much more.
pub const BLOCKED_EXTRA_NS: u64 = 27_000_000_000;
/// Past the deadline, how often the companion looks whether the service is
/// blocked, and how many looks in a row finding it running make a hang.
const LOOK_NS: u64 = 100_000_000;
/// When the looks start, at the latest: a request with a long deadline
/// (blk's writes and flushes, 30 s) is found spinning as soon as one with
/// the default deadline, not at its own deadline. (A spinning blk found
/// only after 30 s had fs above it, blocked for as long, found hung at the
/// same moment: a restart nobody injected.)
const LOOKS_FROM_NS: u64 = 3_000_000_000;
const SPIN_LOOKS: u32 = 10;
/// Ring size of the companion channel per direction: room for the largest
/// message of the companion contract (192 KiB of wrapped request, reply or
/// input, enough for 64 KiB block transfers with room to spare).
const RING_BYTES: usize = 512 * 1024;
const EXIT_BIT: u64 = 1;

/// A running service process.
pub struct ServiceProcess {
    /// Its pid.
    pub pid: u32,
    process: Process,
    exit: Signal,
    channel: Channel<Request, Reply>,
    checker: Checker<Companion>,
    /// The service's state arena, mapped here read-only (image
    /// distillation).
    arena: Option<Mapping>,
    /// Arena size in pages.
    pub arena_pages: u64,
    /// The next image capture takes every page (the previous capture's
    /// pages were not committed).
    whole_arena: bool,
}

fn sys_failure(what: &str) -> impl Fn(Error) -> Failure + '_ {
    move |e| Failure::Broken(format!("{what}: {e}"))
}

impl ServiceProcess {
    /// A copy of the whole state arena (image distillation), or None if it
    /// has none.
    pub fn arena_copy(&self) -> Result<Option<Vec<u8>>, Failure> {
        let Some(arena) = self.arena.as_ref() else { return Ok(None) };
        let mut bytes = vec![0u8; (self.arena_pages * PAGE_SIZE) as usize];
        arena.copy_out(0, &mut bytes).map_err(sys_failure("read the arena"))?;
        Ok(Some(bytes))
    }

    /// Start `program` and bring it to `Ready`: fresh, or from `checkpoint`
    /// (with `redo_epoch`, after the service wrote the checkpoint's epoch
    /// to its disk again).
    pub fn start(
        program: &str,
        checkpoint: Option<&Checkpoint>,
        redo_epoch: bool,
        distillation: Distillation,
        deadline_ns: u64,
    ) -> Result<ServiceProcess, Failure> {
        // Generation 0 holds only a log (durable requests before the first
        // checkpoint): the service starts fresh.
        let checkpoint = checkpoint.filter(|c| c.generation > 0);
        let (mine, theirs) = Endpoint::pair_with(RING_BYTES).map_err(sys_failure("companion channel"))?;
        let handles: Vec<(String, OwnedHandle)> = vec![
            ("companion.memory".to_string(), theirs.memory),
            ("companion.link".to_string(), theirs.link),
            ("companion.event".to_string(), theirs.event),
        ];
        let request = SpawnRequest {
            program: program.to_string(),
            name: program.to_string(),
            args: service_args(libos::start::args()),
            suspended: true,
            handles,
        };
        let (pid, process) =
            directory::spawn(request).map_err(|e| Failure::Broken(format!("cannot start {program}: {e}")))?;
        let exit = Signal::new().map_err(sys_failure("exit event"))?;
        process.watch(exit.event(), EXIT_BIT).map_err(sys_failure("watch"))?;
        // An image checkpoint goes into the arena before the service runs.
        let image = checkpoint.filter(|c| c.kind == Distillation::Image && distillation == Distillation::Image);
        if let Some(cp) = image {
            let pages = (cp.data.len() as u64).div_ceil(PAGE_SIZE);
            let memory = Memory::alloc(pages, MemFlags::empty()).map_err(sys_failure("arena"))?;
            memory.map(MapFlags::WRITE).and_then(|m| m.copy_in(0, &cp.data)).map_err(sys_failure("arena"))?;
            sys::mem_map(process.raw(), memory.raw(), 0, ARENA_BASE, pages, MapFlags::WRITE)
                .map_err(sys_failure("arena into the service"))?;
        }
        process.start().map_err(sys_failure("start"))?;
        let mut sp = ServiceProcess {
            pid,
            process,
            exit,
            channel: Channel::new(mine),
            checker: Checker::new(),
            arena: None,
            arena_pages: 0,
            whole_arena: false,
        };
        let first = match checkpoint {
            Some(_) if image.is_some() => Request::RestoreImage,
            Some(cp) if cp.kind == Distillation::Logical => {
                let epoch: &[u8] = if redo_epoch { &cp.epoch } else { &[] };
                let mut bytes = Vec::with_capacity(cp.data.len() + epoch.len());
                bytes.extend_from_slice(&cp.data);
                bytes.extend_from_slice(epoch);
                let memory = Memory::from_bytes(&bytes).map_err(sys_failure("checkpoint"))?;
                Request::RestoreLogical { memory: memory.0, len: cp.data.len() as u64, epoch_len: epoch.len() as u64 }
            }
            _ => Request::Start,
        };
        sp.send(first)?;
        match sp.recv(deadline_ns)? {
            Reply::Ready { arena_pages } => sp.arena_pages = arena_pages,
            other => return Err(Failure::Violation(format!("expected Ready, got {}", reply_name(&other)))),
        }
        if distillation == Distillation::Image && sp.arena_pages > 0 {
            let va = libos::vm::reserve(sp.arena_pages).map_err(sys_failure("address space"))?;
            sys::process_map_child(sp.process.raw(), ARENA_BASE, sp.arena_pages, va, MapFlags::empty())
                .map_err(sys_failure("map the service's arena"))?;
            sp.arena = Some(Mapping::adopt(va, sp.arena_pages));
        }
        Ok(sp)
    }

    /// Send a message, checking the contract.
    pub fn send(&mut self, m: Request) -> Result<(), Failure> {
        self.checker.on_request(&m).map_err(|v| Failure::Broken(v.to_string()))?;
        match self.channel.send(m) {
            Ok(()) => Ok(()),
            Err(ChannelError::PeerClosed) => Err(self.death()),
            Err(e) => Err(Failure::Broken(format!("companion channel: {e}"))),
        }
    }

    /// The next message from the service, within `within_ns` (its
    /// deadline; more while it is blocked, see [`BLOCKED_EXTRA_NS`]).
    pub fn recv(&mut self, within_ns: u64) -> Result<Reply, Failure> {
        let start = libos::time::now_ns();
        let blocked_deadline = start.saturating_add(within_ns).saturating_add(BLOCKED_EXTRA_NS);
        // The first look; before the request's own deadline only a spin is
        // a hang (a blocked service has until `blocked_deadline`).
        let mut deadline = start.saturating_add(within_ns.min(LOOKS_FROM_NS));
        // Looks past the deadline that found the service running in a row.
        let mut running = 0;
        loop {
            match self.channel.try_recv() {
                Ok(Some(m)) => {
                    self.checker.on_reply(&m).map_err(|v| Failure::Violation(v.message))?;
                    return Ok(m);
                }
                Ok(None) => {}
                Err(ChannelError::PeerClosed) => return Err(self.death()),
                Err(ChannelError::Decode(e)) => return Err(Failure::Violation(format!("undecodable message: {e}"))),
                Err(e) => return Err(Failure::Broken(format!("companion channel: {e}"))),
            }
            let now = libos::time::now_ns();
            if now >= deadline {
                // Blocked between bursts of work (a driver below it being
                // restarted, one answer at a time) is waiting; running at
                // every look for a second is a spin.
                running = if self.blocked() { 0 } else { running + 1 };
                // Before the request's own deadline, a longer run of looks
                // (a long request may compute between its waits).
                let looks = if now < start.saturating_add(within_ns) { 3 * SPIN_LOOKS } else { SPIN_LOOKS };
                if now >= blocked_deadline || running >= looks {
                    // Whole seconds without progress.
                    return Err(Failure::Hung((now - start) / 1_000_000_000 * 1000));
                }
                deadline = (now + LOOK_NS).min(blocked_deadline);
            }
            let items: [&dyn Waitable; 2] = [&self.channel, &self.exit];
            match select(&items, Some(core::time::Duration::from_nanos(deadline - now))) {
                Ok(1) if !self.channel.endpoint().is_ready() => return Err(self.death()),
                Ok(_) | Err(ChannelError::TimedOut) => {}
                Err(e) => return Err(Failure::Broken(format!("select: {e}"))),
            }
        }
    }

    /// Whether the process is blocked (waiting for an event or a timeout)
    /// rather than running.
    fn blocked(&self) -> bool {
        self.process.info().is_ok_and(|i| i.state() == libos::abi::ProcessState::Blocked)
    }

    /// Whether the process has ended (its exit event fired).
    pub fn exit_signal(&self) -> &Signal {
        &self.exit
    }

    /// How the process ended (or that it is gone).
    pub fn death(&self) -> Failure {
        let info = self.process.info().unwrap_or_default();
        if info.state().is_ended() {
            let mut how = String::new();
            let _ = info.describe_end(&mut how);
            Failure::Died(how)
        } else {
            Failure::Broken(String::from("the service closed its channel"))
        }
    }

    /// Kill the process (the kernel ends it at once).
    pub fn kill(&self) {
        let _ = self.process.kill();
    }

    /// Make the next [`ServiceProcess::dirty_arena_pages`] return every
    /// page (after a capture that was not committed).
    pub fn capture_whole_arena(&mut self) {
        self.whole_arena = true;
    }

    /// The pages of the arena written since the last call, with their
    /// bytes (all written pages the first time; every page after
    /// [`ServiceProcess::capture_whole_arena`]).
    pub fn dirty_arena_pages(&mut self) -> Result<Vec<(u64, Vec<u8>)>, Failure> {
        let whole = core::mem::take(&mut self.whole_arena);
        let Some(arena) = &self.arena else { return Err(Failure::Broken(String::from("no arena mapped"))) };
        let pages = self.arena_pages;
        let mut bitmap = vec![0u8; pages.div_ceil(8) as usize];
        sys::mem_dirty(self.process.raw(), ARENA_BASE, pages, &mut bitmap).map_err(sys_failure("dirty bits"))?;
        let mut out = Vec::new();
        for i in 0..pages {
            if whole || bitmap[(i / 8) as usize] & (1 << (i % 8)) != 0 {
                // The service waits for our next message, but its pages are
                // copied as bytes it could write all the same.
                let mut page = vec![0u8; PAGE_SIZE as usize];
                arena.copy_out((i * PAGE_SIZE) as usize, &mut page).map_err(sys_failure("arena page"))?;
                out.push((i, page));
            }
        }
        Ok(out)
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A reply's message name, for diagnostics.
pub fn reply_name(r: &Reply) -> &'static str {
    <Companion as libos::protocol::Protocol>::reply_name(r)
}

/// The service process's arguments: `service`, then the program's own
/// arguments from the manifest, which init gave the companion after
/// `companion store=...`.
fn service_args(companion_args: &str) -> String {
    let mut args = String::from("service");
    for word in companion_args.split_whitespace().skip(1).filter(|w| !w.starts_with("store=")) {
        args.push(' ');
        args.push_str(word);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::service_args;

    #[test]
    fn the_service_gets_the_programs_own_arguments() {
        assert_eq!(service_args("companion store=memory ipv4=dhcp ipv6=off"), "service ipv4=dhcp ipv6=off");
        assert_eq!(service_args("companion store=vault"), "service");
        assert_eq!(service_args(""), "service");
    }
}
