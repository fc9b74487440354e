//! init as supervisor: starting programs from boot modules, giving each a
//! directory session, noticing when they end (one shared exit event), and
//! starting the ones the manifest marks `restart` again.

use crate::boot::Boot;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use libos::abi::{Error, HandleGrant, ProcessInfo, SpawnFlags, SpawnParams};
use libos::channel::{Channel, Endpoint, Signal};
use libos::directory::proto::Directory;
use libos::directory::{Reply, Request};
use libos::handle::{OwnedHandle, Process};
use libos::protocol::Checker;
use libos::sys;

/// The exit-event bit every child is watched with.
const EXIT_BIT: u64 = 1;
/// A restarted program that ends this many times in [`RESTART_WINDOW_NS`]
/// is given up on.
const RESTART_LIMIT: usize = 5;
const RESTART_WINDOW_NS: u64 = 10_000_000_000;

/// What init's side of a directory session is.
pub type Session = Channel<Reply, Request>;

/// A process init started.
pub struct Child {
    /// Its pid.
    pub pid: u32,
    /// Process name.
    pub name: String,
    /// Boot program it runs.
    pub program: String,
    /// Argument string it was started with.
    pub args: String,
    /// Its process handle.
    pub process: Process,
    /// init's side of its directory session (None once the child closed it).
    pub session: Option<Session>,
    /// The session's protocol state.
    pub checker: Checker<Directory>,
    /// Start again when it ends.
    pub restart: bool,
    /// Started by init from the manifest (not on request).
    pub boot: bool,
    /// Runs its program in the companion role (arguments `companion ...`):
    /// it gets no devices.
    pub companion: bool,
    /// The pid of the process whose request started it (None: init
    /// started it itself).
    pub spawned_by: Option<u32>,
}

/// How to start a program.
pub struct Launch<'a> {
    /// Boot program.
    pub program: &'a str,
    /// Process name ("" = program).
    pub name: &'a str,
    /// Argument string.
    pub args: &'a str,
    /// Start suspended.
    pub suspended: bool,
    /// Extra named handles for the child.
    pub extra: Vec<(String, OwnedHandle)>,
    /// Restart when it ends.
    pub restart: bool,
    /// Started from the manifest at boot.
    pub boot: bool,
    /// The pid of the process that asked for it (None: init's own start).
    pub spawned_by: Option<u32>,
}

/// All of init's children.
pub struct Children {
    /// The children alive now.
    pub list: Vec<Child>,
    /// Fires when any child ends.
    pub exit: Signal,
    recent_restarts: Vec<(String, u64)>,
}

impl Children {
    /// No children yet.
    pub fn new() -> Result<Children, Error> {
        Ok(Children { list: Vec::new(), exit: Signal::new()?, recent_restarts: Vec::new() })
    }

    /// Start a program; returns its pid and a second handle to it.
    pub fn spawn(&mut self, boot: &Boot, l: Launch) -> Result<(u32, OwnedHandle), (Error, String)> {
        if l.program == "init" || l.program == "manifest" {
            return Err((Error::InvalidArgument, format!("'{}' cannot be started", l.program)));
        }
        let module = boot
            .modules
            .get(l.program)
            .ok_or_else(|| (Error::NotFound, format!("no program named '{}'", l.program)))?;
        let fail = |e: Error| (e, format!("cannot start {}: {e}", l.program));
        let (session, child_end) = Endpoint::pair().map_err(fail)?;
        let names: Vec<&str> = l.extra.iter().map(|(n, _)| n.as_str()).collect();
        let args = libos::start::encode_args(&names, l.args);
        let name = if l.name.is_empty() { l.program } else { l.name };
        let mut grants = Vec::new();
        for h in
            [&child_end.memory, &child_end.link, &child_end.event].into_iter().chain(l.extra.iter().map(|(_, h)| h))
        {
            let rights = h.rights().map_err(fail)?;
            grants.push(HandleGrant { handle: h.raw().raw(), rights: rights.bits() });
        }
        let declared = boot.manifest.program(l.program);
        let memory = declared.map(|p| p.memory).unwrap_or(0);
        let mut flags = SpawnFlags::empty();
        flags.set(SpawnFlags::SUSPENDED, l.suspended);
        flags.set(SpawnFlags::SERVICE, declared.is_some_and(|p| p.service));
        let params = SpawnParams {
            name_ptr: name.as_ptr() as u64,
            name_len: name.len() as u64,
            args_ptr: args.as_ptr() as u64,
            args_len: args.len() as u64,
            grants_ptr: grants.as_ptr() as u64,
            grants_len: grants.len() as u64,
            stack_pages: 0,
            page_limit: memory,
            flags: flags.bits(),
        };
        let handle = sys::process_spawn(module.memory.raw(), &params).map_err(fail)?;
        // The child has its own copies now; ours must go so the child's
        // death closes the session's link.
        drop(child_end);
        drop(l.extra);
        let process = Process(OwnedHandle::from_raw(handle));
        process.watch(self.exit.event(), EXIT_BIT).map_err(fail)?;
        let pid = process.info().map(|i| i.pid).map_err(fail)?;
        let rights = process.0.rights().map_err(fail)?;
        let requester = process.0.duplicate(rights).map_err(fail)?;
        self.list.push(Child {
            pid,
            name: String::from(name),
            program: String::from(l.program),
            args: String::from(l.args),
            process,
            session: Some(Channel::new(session)),
            checker: Checker::new(),
            restart: l.restart,
            boot: l.boot,
            companion: kintsugi_manifest::is_companion_args(l.args),
            spawned_by: l.spawned_by,
        });
        Ok((pid, requester))
    }

    /// Collect the children that ended, logging how, and start the
    /// restartable ones again.
    pub fn reap(&mut self, boot: &Boot) -> Vec<u32> {
        self.exit.take();
        let mut ended = Vec::new();
        let mut i = 0;
        while i < self.list.len() {
            let info = self.list[i].process.info().unwrap_or_default();
            if info.state().is_ended() {
                let child = self.list.swap_remove(i);
                // Programs started on request are reported by whoever asked;
                // init speaks for the ones it started itself.
                if child.restart || child.boot {
                    report(&child, &info);
                }
                ended.push(child.pid);
                if child.companion {
                    self.kill_service_of(&child);
                }
                if child.restart {
                    self.restart(boot, child);
                }
            } else {
                i += 1;
            }
        }
        ended
    }

    /// A companion ended: end the service process it started too, before a
    /// new companion starts another. Left alone, the orphan would drive the
    /// same device as its successor until it noticed its companion was gone
    /// (a blk service orphaned in the middle of a request, and its device
    /// state torn down at its end, left the new blk's disk timing out).
    fn kill_service_of(&mut self, companion: &Child) {
        for c in self.list.iter().filter(|c| c.spawned_by == Some(companion.pid) && c.program == companion.program) {
            match c.process.kill() {
                Ok(()) => log::info!("ended {} (pid {}) with its companion", c.name, c.pid),
                Err(e) => log::warn!("cannot end {} (pid {}) with its companion: {e}", c.name, c.pid),
            }
        }
    }

    fn restart(&mut self, boot: &Boot, child: Child) {
        let now = libos::time::now_ns();
        self.recent_restarts.retain(|(_, t)| now - *t < RESTART_WINDOW_NS);
        let recent = self.recent_restarts.iter().filter(|(n, _)| *n == child.name).count();
        if recent >= RESTART_LIMIT {
            log::error!("{} ended {RESTART_LIMIT} times in 10 s; not restarting it", child.name);
            return;
        }
        self.recent_restarts.push((child.name.clone(), now));
        let launch = Launch {
            program: &child.program,
            name: &child.name,
            args: &child.args,
            suspended: false,
            extra: Vec::new(),
            restart: true,
            boot: true,
            spawned_by: None,
        };
        match self.spawn(boot, launch) {
            Ok((pid, _)) => log::info!("restarted {} as pid {pid}", child.name),
            Err((_, m)) => log::error!("{m}"),
        }
    }

    /// Whether any child still running is an instance of `program`.
    pub fn runs_program(&self, program: &str) -> bool {
        self.list.iter().any(|c| c.program == program && !c.process.info().unwrap_or_default().state().is_ended())
    }

    /// Whether `pid` is a child still running.
    pub fn is_alive(&self, pid: u32) -> bool {
        self.list.iter().any(|c| c.pid == pid)
    }

    /// The child with this pid.
    pub fn get_mut(&mut self, pid: u32) -> Option<&mut Child> {
        self.list.iter_mut().find(|c| c.pid == pid)
    }
}

fn report(child: &Child, info: &ProcessInfo) {
    use libos::abi::ProcessState;
    let quiet =
        matches!(info.state(), ProcessState::Killed) || (info.state() == ProcessState::Exited && info.exit_code == 0);
    if !quiet {
        let mut how = String::new();
        let _ = info.describe_end(&mut how);
        log::info!("pid {} ({}) {how}", child.pid, child.name);
    }
}
