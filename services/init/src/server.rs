//! init as the directory: it answers the requests children send on their
//! sessions: registering and connecting services, starting programs,
//! listing and killing processes, handing out device resources the
//! manifest grants, and powering off.
//!
//! Authority comes from the manifest: a program connects only to the
//! services its `connects` allows and registers only its own names and its
//! `provides` (refused with `AccessDenied` and a message naming both);
//! every connection tells the service who connected (the client's program,
//! its identity); a companion process gets no devices, and only init starts
//! companions.
//!
//! A service that does not take its connections fast enough (many clients
//! at once, or its companion busy recovering) is never taken for a dead
//! one: init leaves at most [`INCOMING_UNREAD_MAX`] bytes of connection
//! requests unread in its listener (each carries an endpoint's handles on
//! the listener's link, whose kernel queue is bounded) and keeps the rest
//! queued, in order, retrying them as the service reads; their clients
//! wait (back-pressure). Only a listener whose service is gone is
//! unregistered.

use crate::boot::Boot;
use crate::children::{Children, Launch};
use crate::pci::Pci;
use crate::shutdown::Shutdown;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use kintsugi_manifest::DeviceSpec;
use libos::abi::{Error, IrqFlags, ProcessInfo, ResourceKind, Rights, MAX_PROCESSES};
use libos::channel::{Channel, ChannelError, Endpoint, EndpointHandles};
use libos::directory::listener;
use libos::directory::{Reply, Request};
use libos::handle::{Memory, OwnedHandle};
use libos::sys;
use resiliency_lib::control::{Reply as ControlReply, Request as ControlRequest};
use zerocopy::IntoBytes;

struct Service {
    listener: Channel<listener::Request, listener::Reply>,
    owner: u32,
    /// Ring size of each connection's channel, per direction.
    ring_bytes: usize,
}

/// The identity init's own connections carry (the final checkpoints at
/// power-off).
const INIT: &str = "init";

/// The largest connection ring a service may ask for.
const MAX_RING_BYTES: u32 = 1 << 20;

/// The most bytes of connection requests init leaves unread in a service's
/// listener. Each request carries the three handles of an endpoint on the
/// listener's link, whose queue holds `MAX_LINK_QUEUE` handles; a record
/// takes at least [`MIN_RECORD`] bytes of the ring, so the requests unread,
/// the one sent after them and the one the service is taking stay within it.
pub const INCOMING_UNREAD_MAX: usize = 256;
/// The smallest record a channel ring holds (an 8-byte header, a payload
/// padded to 8 bytes).
const MIN_RECORD: usize = 16;
/// Handles one connection request carries (an endpoint: memory, link,
/// event).
const HANDLES_PER_INCOMING: usize = 3;
const _: () = assert!((INCOMING_UNREAD_MAX / MIN_RECORD + 2) * HANDLES_PER_INCOMING <= libos::abi::MAX_LINK_QUEUE);

/// How long init sleeps before retrying the connection requests a busy
/// service could not take yet.
pub const QUEUED_RETRY: core::time::Duration = core::time::Duration::from_millis(5);

/// What became of a connection request.
enum Connect {
    /// Answered (connected, or refused).
    Done(Reply),
    /// The service is registered but has not read the requests before this
    /// one: keep it and try again.
    Busy,
    /// No such service (now).
    Missing,
}

/// A connection request waiting for a busy service.
struct Queued {
    pid: u32,
    name: String,
    /// The requester's program (its identity).
    program: String,
    /// Wait for the service if it goes away meanwhile.
    wait: bool,
}

/// The directory's state.
pub struct Directory {
    services: BTreeMap<String, Service>,
    /// Connections waiting for their service to register: the requesting
    /// pid, the service name and the requester's program (its identity).
    pending: Vec<(u32, String, String)>,
    /// The PCI bus and which program owns which function.
    pci: Option<Pci>,
    /// MSI vectors handed out, by pid (a restarted driver asks again).
    msi_given: BTreeMap<u32, u32>,
    /// A power-off waiting for the final checkpoints.
    shutdown: Option<Shutdown>,
    /// Connection requests waiting for a busy service, oldest first.
    queued: VecDeque<Queued>,
}

/// Most MSI vectors one process may hold.
const MSI_PER_PROCESS: u32 = 32;

fn refuse(code: Error, message: String) -> Reply {
    Reply::Refused { code: code as u32, message }
}

impl Directory {
    /// An empty directory over the scanned PCI bus (if it could be read).
    pub fn new(pci: Option<Pci>) -> Directory {
        Directory {
            services: BTreeMap::new(),
            pending: Vec::new(),
            pci,
            msi_given: BTreeMap::new(),
            shutdown: None,
            queued: VecDeque::new(),
        }
    }

    /// Serve every request waiting on `pid`'s session.
    pub fn serve(&mut self, boot: &Boot, children: &mut Children, pid: u32) {
        loop {
            let Some(child) = children.get_mut(pid) else { return };
            let Some(session) = child.session.as_mut() else { return };
            let req = match session.try_recv() {
                Ok(Some(r)) => r,
                Ok(None) => return,
                Err(ChannelError::PeerClosed) => {
                    child.session = None;
                    return;
                }
                Err(e) => {
                    log::warn!("dropping the session of pid {pid} ({}): {e}", child.name);
                    child.session = None;
                    return;
                }
            };
            if let Err(v) = child.checker.on_request(&req) {
                log::warn!("dropping the session of pid {pid} ({}): {v}", child.name);
                child.session = None;
                return;
            }
            let program = child.program.clone();
            let companion = child.companion;
            let entry = boot.manifest.program(&program);
            let reply = match req {
                Request::Connect { name, .. } if !entry.is_some_and(|p| p.may_connect(&name)) => {
                    log::warn!("refused: '{program}' (pid {pid}) may not connect to '{name}'");
                    Some(refuse(
                        Error::AccessDenied,
                        format!("'{program}' may not connect to '{name}' (not in its connects in the manifest)"),
                    ))
                }
                // Behind the requests already waiting for a busy service.
                Request::Connect { name, wait } if self.queued.iter().any(|q| q.name == name) => {
                    self.queued.push_back(Queued { pid, name, program, wait });
                    None
                }
                Request::Connect { name, wait } => match self.connect(&name, &program) {
                    Connect::Done(r) => Some(r),
                    Connect::Busy => {
                        self.queued.push_back(Queued { pid, name, program, wait });
                        None
                    }
                    Connect::Missing if wait => {
                        self.pending.push((pid, name, program));
                        None
                    }
                    Connect::Missing => Some(refuse(Error::NotFound, format!("no service named '{name}'"))),
                },
                Request::Register { name, .. } if !entry.is_some_and(|p| p.may_register(&name)) => {
                    log::warn!("refused: '{program}' (pid {pid}) may not register '{name}'");
                    Some(refuse(
                        Error::AccessDenied,
                        format!(
                            "'{program}' may not register '{name}' (only '{program}', '{program}.control', \
                             '{program}.notices' and the names in its provides in the manifest)"
                        ),
                    ))
                }
                Request::Register { name, listener, ring_bytes } => {
                    Some(self.register(children, pid, name, listener, ring_bytes))
                }
                Request::Spawn { program: p, args, .. } if kintsugi_manifest::is_companion_args(&args) => Some(refuse(
                    Error::AccessDenied,
                    format!(
                        "'{p}' cannot be started as a companion on request: init starts companions from the manifest"
                    ),
                )),
                Request::Spawn { program: p, .. } if !entry.is_some_and(|e| e.may_spawn(&p)) => {
                    log::warn!("refused: '{program}' (pid {pid}) may not start '{p}'");
                    Some(refuse(
                        Error::AccessDenied,
                        format!("'{program}' may not start '{p}' (only itself and its spawns in the manifest)"),
                    ))
                }
                Request::Spawn { program, name, args, suspended, handle_names, handles } => {
                    let handles = handle_names.into_iter().zip(handles).collect();
                    Some(spawn(boot, children, pid, (&program, &name, &args), suspended, handles))
                }
                Request::List => Some(list(boot)),
                Request::Kill { target } if !entry.is_some_and(|e| e.has_power("kill")) => {
                    log::warn!("refused: '{program}' (pid {pid}) may not kill '{target}'");
                    Some(refuse(
                        Error::AccessDenied,
                        format!("'{program}' may not kill processes (no \"kill\" in its powers in the manifest)"),
                    ))
                }
                Request::Kill { target } => Some(kill(boot, &target)),
                Request::Device { .. } | Request::PciFunctions if companion => Some(refuse(
                    Error::AccessDenied,
                    format!("the companion of '{program}' gets no devices: they go to the service process only"),
                )),
                Request::Device { name } => Some(self.device(boot, children, pid, &program, &name)),
                Request::PciFunctions => Some(self.pci_functions(boot, children, &program)),
                Request::Services => Some(Reply::Names { names: self.services.keys().cloned().collect() }),
                Request::PowerOff { .. } if !entry.is_some_and(|e| e.has_power("poweroff")) => {
                    log::warn!("refused: '{program}' (pid {pid}) may not power off the machine");
                    Some(refuse(
                        Error::AccessDenied,
                        format!("'{program}' may not power off (no \"poweroff\" in its powers in the manifest)"),
                    ))
                }
                Request::PowerOff { reset } => {
                    log::info!("{} by pid {pid}", crate::shutdown::action(reset));
                    match self.shutdown.as_mut() {
                        Some(s) => s.requesters.push(pid),
                        None => {
                            let (controls, in_memory, unreachable) = self.controls(boot);
                            self.shutdown = Some(Shutdown::start(reset, pid, controls, &in_memory, unreachable));
                        }
                    }
                    None
                }
            };
            if let Some(reply) = reply {
                send(children, pid, reply);
            }
        }
    }

    /// For the final checkpoints: the control channels of every resilient
    /// service's companion (each registers `NAME.control`) that keeps its
    /// checkpoints in the vault; the services whose manifest entry says
    /// `store = "memory"` (nothing of theirs outlives the power); and the
    /// companions that could not be reached, with why.
    #[allow(clippy::type_complexity)]
    fn controls(
        &mut self,
        boot: &Boot,
    ) -> (Vec<(String, Channel<ControlRequest, ControlReply>)>, Vec<String>, Vec<(String, String)>) {
        let names: Vec<String> = self.services.keys().filter(|n| n.ends_with(".control")).cloned().collect();
        let (mut out, mut in_memory, mut unreachable) = (Vec::new(), Vec::new(), Vec::new());
        for name in names {
            let service = String::from(name.trim_end_matches(".control"));
            let entry = boot.manifest.program(&service);
            if entry.is_some_and(|p| p.resilient && p.store == kintsugi_manifest::Store::Memory) {
                in_memory.push(service);
                continue;
            }
            // A control endpoint too busy to take a connection now is
            // given a moment (init serves nobody meanwhile).
            let mut tries = 0;
            let connected = loop {
                match self.connect(&name, INIT) {
                    Connect::Busy if tries < 100 => {
                        tries += 1;
                        libos::time::sleep(QUEUED_RETRY);
                    }
                    other => break other,
                }
            };
            match connected {
                Connect::Done(Reply::Connected { endpoint }) => match Channel::attach(endpoint) {
                    Ok(c) => out.push((service, c)),
                    Err(e) => unreachable.push((service, format!("{e}"))),
                },
                Connect::Done(Reply::Refused { message, .. }) => unreachable.push((service, message)),
                Connect::Busy => unreachable.push((service, String::from("its control endpoint takes no connection"))),
                _ => unreachable.push((service, String::from("its control endpoint is gone"))),
            }
        }
        (out, in_memory, unreachable)
    }

    /// The power-off in progress, if any.
    pub fn shutdown(&self) -> Option<&Shutdown> {
        self.shutdown.as_ref()
    }

    /// Collect final checkpoints; once they are in, turn the power off (or
    /// reset). Only if that fails does anyone get an answer.
    pub fn progress_shutdown(&mut self, boot: &Boot, children: &mut Children) {
        let Some(s) = self.shutdown.as_mut() else { return };
        if !s.poll() {
            return;
        }
        let Some(s) = self.shutdown.take() else { return };
        let e = sys::system_power(boot.root, s.reset).err().unwrap_or(Error::Unsupported);
        log::error!("power {} failed: {e}", if s.reset { "reset" } else { "off" });
        for pid in s.requesters {
            send(children, pid, refuse(e, format!("power {}: {e}", if s.reset { "reset" } else { "off" })));
        }
    }

    /// Connect `client` (a program name: the identity the service is told)
    /// to service `name`: `Busy` while the service has too many requests
    /// unread (see [`INCOMING_UNREAD_MAX`]), `Missing` if it is not
    /// registered or its listener is gone.
    fn connect(&mut self, name: &str, client: &str) -> Connect {
        let Some(service) = self.services.get_mut(name) else { return Connect::Missing };
        // The request's encoding is its two names and a few bytes more.
        let bound = name.len() + client.len() + 64;
        let room = service
            .listener
            .endpoint()
            .unread_sent()
            .and_then(|unread| Ok(unread <= INCOMING_UNREAD_MAX && service.listener.endpoint().can_send(bound)?));
        match room {
            Ok(true) => {}
            Ok(false) if !service.listener.endpoint().peer_closed() => return Connect::Busy,
            Ok(false) => return self.gone(name, "its listener is closed"),
            Err(e) => return self.gone(name, &format!("{e}")),
        }
        let (server_end, client_end) = match Endpoint::pair_with(service.ring_bytes) {
            Ok(p) => p,
            Err(e) => return Connect::Done(refuse(e, format!("cannot connect to '{name}': {e}"))),
        };
        let incoming = listener::Request::Incoming {
            name: String::from(name),
            client: String::from(client),
            endpoint: server_end.into_handles(),
        };
        match service.listener.send(incoming) {
            Ok(()) => Connect::Done(Reply::Connected { endpoint: client_end }),
            // Its link's handle queue is full: a service that takes its
            // requests but not their handles. Wait, as for a full ring.
            Err(ChannelError::Sys(Error::LimitReached)) => Connect::Busy,
            Err(e @ (ChannelError::PeerClosed | ChannelError::Corrupt)) => self.gone(name, &format!("{e}")),
            Err(e) => Connect::Done(refuse(Error::InvalidArgument, format!("cannot connect to '{name}': {e}"))),
        }
    }

    /// Unregister `name`, whose listener is gone or broken.
    fn gone(&mut self, name: &str, why: &str) -> Connect {
        log::warn!("service '{name}' stopped listening ({why}); unregistering it");
        self.services.remove(name);
        Connect::Missing
    }

    /// Whether connection requests wait for a busy service (then call
    /// [`Directory::retry_queued`] within [`QUEUED_RETRY`]).
    pub fn has_queued(&self) -> bool {
        !self.queued.is_empty()
    }

    /// Try the connection requests waiting for busy services again, oldest
    /// first; a service's requests stay in order (after one that is still
    /// busy, the later ones for that service wait too).
    pub fn retry_queued(&mut self, children: &mut Children) {
        let mut still: VecDeque<Queued> = VecDeque::new();
        while let Some(q) = self.queued.pop_front() {
            if still.iter().any(|s| s.name == q.name) {
                still.push_back(q);
                continue;
            }
            match self.connect(&q.name, &q.program) {
                Connect::Done(reply) => send(children, q.pid, reply),
                Connect::Busy => still.push_back(q),
                Connect::Missing if q.wait => self.pending.push((q.pid, q.name, q.program)),
                Connect::Missing => {
                    let name = q.name;
                    send(children, q.pid, refuse(Error::NotFound, format!("no service named '{name}'")));
                }
            }
        }
        self.queued = still;
    }

    fn register(
        &mut self,
        children: &mut Children,
        pid: u32,
        name: String,
        listener: EndpointHandles,
        ring_bytes: u32,
    ) -> Reply {
        if name.is_empty() || name.len() > libos::directory::MAX_NAME {
            return refuse(Error::InvalidArgument, String::from("bad service name"));
        }
        let ring_bytes = match ring_bytes {
            0 => libos::channel::DEFAULT_RING_BYTES,
            n if n.is_power_of_two() && (4096..=MAX_RING_BYTES).contains(&n) => n as usize,
            n => return refuse(Error::InvalidArgument, format!("bad ring size {n} for '{name}'")),
        };
        if let Some(s) = self.services.get(&name) {
            if !s.listener.endpoint().peer_closed() {
                return refuse(Error::AlreadyExists, format!("service '{name}' is already registered"));
            }
        }
        let listener = match Channel::attach(listener) {
            Ok(l) => l,
            Err(e) => return refuse(e, format!("bad listener: {e}")),
        };
        self.services.insert(name.clone(), Service { listener, owner: pid, ring_bytes });
        // Answer the clients that were waiting for this name.
        let waiting: Vec<(u32, String)> =
            self.pending.iter().filter(|(_, n, _)| *n == name).map(|(p, _, c)| (*p, c.clone())).collect();
        self.pending.retain(|(_, n, _)| *n != name);
        for (client, program) in waiting {
            if self.queued.iter().any(|q| q.name == name) {
                self.queued.push_back(Queued { pid: client, name: name.clone(), program, wait: true });
                continue;
            }
            match self.connect(&name, &program) {
                Connect::Done(reply) => send(children, client, reply),
                Connect::Busy => self.queued.push_back(Queued { pid: client, name: name.clone(), program, wait: true }),
                Connect::Missing => self.pending.push((client, name.clone(), program)),
            }
        }
        Reply::Ok
    }

    fn pci_functions(&mut self, boot: &Boot, children: &Children, program: &str) -> Reply {
        let specs = granted_specs(boot, program);
        let Some(pci) = self.pci.as_mut() else {
            return refuse(Error::NotFound, String::from("the PCI bus could not be read"));
        };
        match pci.grant(boot.root, program, &specs, |owner| children.runs_program(owner)) {
            Ok(granted) => {
                let mut addresses = Vec::new();
                let mut ids = Vec::new();
                let mut classes = Vec::new();
                let mut configs = Vec::new();
                for (f, config) in granted.into_iter().take(32) {
                    addresses.push(f.address);
                    ids.push(((f.vendor as u32) << 16) | f.device as u32);
                    classes.push(((f.class.0 as u32) << 16) | ((f.class.1 as u32) << 8) | f.class.2 as u32);
                    configs.push(config);
                }
                Reply::Functions { addresses, ids, classes, configs }
            }
            Err(e) => refuse(e, format!("pci: {e}")),
        }
    }

    /// A device resource for `program`: one its manifest entry names, or a
    /// BAR, port range or interrupt line of a PCI function it owns, or an
    /// MSI vector if its entry allows `msi`.
    fn device(&mut self, boot: &Boot, children: &Children, pid: u32, program: &str, name: &str) -> Reply {
        let specs = granted_specs(boot, program);
        let Ok(spec) = DeviceSpec::parse(name) else {
            return refuse(Error::InvalidArgument, format!("'{name}' is not a device"));
        };
        let listed = specs.contains(&spec);
        let pci = self.pci.as_ref();
        let allowed = listed
            || match spec {
                DeviceSpec::Mmio { base, len } => pci.is_some_and(|p| p.owns_memory(program, base, len)),
                DeviceSpec::IoPorts { base, count } => pci.is_some_and(|p| p.owns_ports(program, base, count)),
                DeviceSpec::Irq { gsi, level: true, active_low: true } => pci.is_some_and(|p| p.owns_gsi(program, gsi)),
                _ => false,
            };
        if !allowed {
            return refuse(Error::AccessDenied, format!("the manifest grants '{program}' no device '{name}'"));
        }
        let derived = match spec {
            DeviceSpec::Console => sys::resource_derive(boot.root, ResourceKind::Console, 0, 0),
            DeviceSpec::IoPorts { base, count } => {
                sys::resource_derive(boot.root, ResourceKind::IoPorts, base as u64, count as u64)
            }
            DeviceSpec::Mmio { base, len } => sys::resource_derive(boot.root, ResourceKind::Mmio, base, len),
            DeviceSpec::Irq { gsi, level, active_low } => {
                let mut flags = IrqFlags::empty();
                flags.set(IrqFlags::LEVEL, level);
                flags.set(IrqFlags::ACTIVE_LOW, active_low);
                sys::resource_derive(boot.root, ResourceKind::Irq, gsi as u64, flags.bits())
            }
            DeviceSpec::Msi => {
                self.msi_given.retain(|p, _| children.is_alive(*p));
                let given = self.msi_given.entry(pid).or_insert(0);
                if *given >= MSI_PER_PROCESS {
                    return refuse(
                        Error::LimitReached,
                        format!("'{program}' holds {MSI_PER_PROCESS} MSI vectors already"),
                    );
                }
                *given += 1;
                sys::resource_derive(boot.root, ResourceKind::Msi, 0, 0)
            }
            DeviceSpec::Framebuffer => framebuffer(boot.root),
            DeviceSpec::Pci { .. } | DeviceSpec::PciClass { .. } => Err(Error::InvalidArgument),
        };
        match derived {
            Ok(h) => Reply::Resource { resource: OwnedHandle::from_raw(h) },
            Err(e) => refuse(e, format!("device '{name}': {e}")),
        }
    }

    /// Forget what the ended processes registered or waited for.
    pub fn forget(&mut self, ended: &[u32]) {
        self.services.retain(|_, s| !ended.contains(&s.owner));
        self.pending.retain(|(p, _, _)| !ended.contains(p));
        self.queued.retain(|q| !ended.contains(&q.pid));
    }
}

fn send(children: &mut Children, pid: u32, reply: Reply) {
    if let Some(child) = children.get_mut(pid) {
        if let Err(v) = child.checker.on_reply(&reply) {
            log::error!("init would break the directory contract with pid {pid}: {v}");
            return;
        }
        if let Some(session) = child.session.as_mut() {
            if let Err(e) = session.send(reply) {
                log::warn!("cannot answer pid {pid}: {e}");
                child.session = None;
            }
        }
    }
}

fn spawn(
    boot: &Boot,
    children: &mut Children,
    requester: u32,
    (program, name, args): (&str, &str, &str),
    suspended: bool,
    handles: Vec<(String, OwnedHandle)>,
) -> Reply {
    let launch = Launch {
        program,
        name,
        args,
        suspended,
        extra: handles,
        restart: false,
        boot: false,
        spawned_by: Some(requester),
    };
    match children.spawn(boot, launch) {
        Ok((pid, process)) => Reply::Spawned { pid, process },
        Err((e, m)) => refuse(e, m),
    }
}

fn all_processes(boot: &Boot) -> Result<Vec<ProcessInfo>, Error> {
    let mut infos = vec![ProcessInfo::default(); MAX_PROCESSES];
    let n = sys::process_list(boot.root, &mut infos)?;
    infos.truncate(n.min(MAX_PROCESSES));
    Ok(infos)
}

fn list(boot: &Boot) -> Reply {
    let infos = match all_processes(boot) {
        Ok(i) => i,
        Err(e) => return refuse(e, format!("cannot list processes: {e}")),
    };
    let bytes = infos.as_slice().as_bytes();
    let result = Memory::from_bytes(bytes).and_then(|m| m.0.duplicate(Rights::READ | Rights::MAP | Rights::TRANSFER));
    match result {
        Ok(h) => Reply::Processes { count: infos.len() as u32, memory: h },
        Err(e) => refuse(e, format!("cannot list processes: {e}")),
    }
}

fn kill(boot: &Boot, target: &str) -> Reply {
    let infos = match all_processes(boot) {
        Ok(i) => i,
        Err(e) => return refuse(e, format!("cannot list processes: {e}")),
    };
    let pids: Vec<u32> = match target.parse::<u32>() {
        Ok(pid) => infos.iter().filter(|i| i.pid == pid).map(|i| i.pid).collect(),
        Err(_) => infos.iter().filter(|i| i.name() == target).map(|i| i.pid).collect(),
    };
    if pids.is_empty() {
        return refuse(Error::NotFound, format!("no process '{target}'"));
    }
    if pids.contains(&libos::start::pid()) {
        return refuse(Error::AccessDenied, String::from("init cannot be killed"));
    }
    let mut count = 0;
    for pid in pids {
        if let Ok(h) = sys::process_open(boot.root, pid) {
            let h = OwnedHandle::from_raw(h);
            if sys::process_kill(h.raw()).is_ok() {
                count += 1;
            }
        }
    }
    Reply::Killed { count }
}

/// The display memory the boot loader handed over, as an MMIO resource
/// (whole pages).
fn framebuffer(root: libos::abi::Handle) -> Result<libos::abi::Handle, Error> {
    let console = OwnedHandle::from_raw(sys::resource_derive(root, ResourceKind::Console, 0, 0)?);
    let info = sys::console_display(console.raw())?;
    if libos::console::display_geometry_known(&info) {
        let base = info.address & !(libos::abi::PAGE_SIZE - 1);
        let end = (info.address + info.span()).div_ceil(libos::abi::PAGE_SIZE) * libos::abi::PAGE_SIZE;
        return sys::resource_derive(root, ResourceKind::Mmio, base, end - base);
    }
    Err(Error::NotFound)
}

/// The device specs `program`'s manifest entry lists.
fn granted_specs(boot: &Boot, program: &str) -> Vec<DeviceSpec> {
    boot.manifest
        .program(program)
        .map(|p| p.devices.iter().filter_map(|d| DeviceSpec::parse(d).ok()).collect())
        .unwrap_or_default()
}
