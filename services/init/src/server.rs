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

use crate::boot::Boot;
use crate::children::{Children, Launch};
use crate::pci::Pci;
use crate::shutdown::Shutdown;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use kintsugi_manifest::DeviceSpec;
use libos::abi::{Error, IrqFlags, MapFlags, MemFlags, ProcessInfo, ResourceKind, Rights, MAX_PROCESSES, PAGE_SIZE};
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
}

/// Most MSI vectors one process may hold.
const MSI_PER_PROCESS: u32 = 32;

fn refuse(code: Error, message: String) -> Reply {
    Reply::Refused { code: code as u32, message }
}

impl Directory {
    /// An empty directory over the scanned PCI bus (if it could be read).
    pub fn new(pci: Option<Pci>) -> Directory {
        Directory { services: BTreeMap::new(), pending: Vec::new(), pci, msi_given: BTreeMap::new(), shutdown: None }
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
                Request::Connect { name, wait } => match self.connect(&name, &program) {
                    Some(r) => Some(r),
                    None if wait => {
                        self.pending.push((pid, name, program));
                        None
                    }
                    None => Some(refuse(Error::NotFound, format!("no service named '{name}'"))),
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
                Request::Spawn { program, name, args, suspended, handle_names, handles } => {
                    let handles = handle_names.into_iter().zip(handles).collect();
                    Some(spawn(boot, children, &program, &name, &args, suspended, handles))
                }
                Request::List => Some(list(boot)),
                Request::Kill { target } => Some(kill(boot, &target)),
                Request::Device { .. } | Request::PciFunctions if companion => Some(refuse(
                    Error::AccessDenied,
                    format!("the companion of '{program}' gets no devices: they go to the service process only"),
                )),
                Request::Device { name } => Some(self.device(boot, children, pid, &program, &name)),
                Request::PciFunctions => Some(self.pci_functions(boot, children, &program)),
                Request::Services => Some(Reply::Names { names: self.services.keys().cloned().collect() }),
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
            match self.connect(&name, INIT) {
                Some(Reply::Connected { endpoint }) => match Channel::attach(endpoint) {
                    Ok(c) => out.push((service, c)),
                    Err(e) => unreachable.push((service, format!("{e}"))),
                },
                Some(Reply::Refused { message, .. }) => unreachable.push((service, message)),
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
    /// to service `name`; None if it is not registered.
    fn connect(&mut self, name: &str, client: &str) -> Option<Reply> {
        let service = self.services.get_mut(name)?;
        let (server_end, client_end) = match Endpoint::pair_with(service.ring_bytes) {
            Ok(p) => p,
            Err(e) => return Some(refuse(e, format!("cannot connect to '{name}': {e}"))),
        };
        let incoming = listener::Request::Incoming {
            name: String::from(name),
            client: String::from(client),
            endpoint: server_end.into_handles(),
        };
        match service.listener.send(incoming) {
            Ok(()) => Some(Reply::Connected { endpoint: client_end }),
            Err(e) => {
                log::warn!("service '{name}' stopped listening ({e}); unregistering it");
                self.services.remove(name);
                None
            }
        }
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
            if let Some(reply) = self.connect(&name, &program) {
                send(children, client, reply);
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
    program: &str,
    name: &str,
    args: &str,
    suspended: bool,
    handles: Vec<(String, OwnedHandle)>,
) -> Reply {
    let launch = Launch { program, name, args, suspended, extra: handles, restart: false, boot: false };
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
    let pages = (bytes.len() as u64).div_ceil(PAGE_SIZE).max(1);
    let result = (|| {
        let memory = Memory::alloc(pages, MemFlags::empty())?;
        {
            let map = memory.map(MapFlags::WRITE)?;
            // SAFETY: a fresh private mapping of the new object.
            unsafe { map.as_mut_slice()[..bytes.len()].copy_from_slice(bytes) };
        }
        memory.0.duplicate(Rights::READ | Rights::MAP | Rights::TRANSFER)
    })();
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
