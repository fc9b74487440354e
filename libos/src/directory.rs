//! Naming and supervision through init: the directory protocol's client
//! side, and the generated protocols themselves ([`proto`], [`listener`]).
//!
//! Every program spawned by init holds a directory endpoint (start handles
//! 0..3). Over it a program registers a service name (handing init a
//! listener channel on which new connections arrive), connects to a name,
//! asks init to spawn a program, lists or kills processes, asks for a device
//! resource its manifest entry grants, or powers the machine off. init
//! allows connections and registrations by the manifest (`connects`,
//! `provides`), and tells a service who connected ([`Connection::client`]:
//! the client's manifest program, its identity).

use crate::channel::{Channel, ChannelError, Endpoint, EndpointHandles, HasEndpoint};
use crate::handle::{Memory, OwnedHandle, Process};
use crate::protocol::ClientError;
use alloc::string::String;
use alloc::vec::Vec;
use kintsugi_abi::{Error, Handle, ProcessInfo, PAGE_SIZE};

/// The directory protocol, generated from `libos/contracts/directory.contract`.
#[allow(clippy::all, missing_docs)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/directory.rs"));
}

/// The listener protocol, generated from `libos/contracts/listener.contract`.
#[allow(clippy::all, missing_docs)]
pub mod listener {
    include!(concat!(env!("OUT_DIR"), "/listener.rs"));
}

pub use proto::{DirectoryClient, Reply, Request};

/// Longest service or program name.
pub const MAX_NAME: usize = 64;

/// A request to start a program.
pub struct SpawnRequest {
    /// Boot program (module) name.
    pub program: String,
    /// Process name (empty = the program name).
    pub name: String,
    /// Argument string.
    pub args: String,
    /// Start suspended (the requester starts it).
    pub suspended: bool,
    /// Extra handles for the child, by name.
    pub handles: Vec<(String, OwnedHandle)>,
}

/// Why a directory request failed.
#[derive(Debug)]
pub enum DirError {
    /// The directory channel failed.
    Channel(ChannelError),
    /// Init refused.
    Refused(Error, String),
    /// Init answered something unexpected.
    Protocol,
    /// This program has no directory endpoint (init itself).
    NoDirectory,
}

impl From<ChannelError> for DirError {
    fn from(e: ChannelError) -> Self {
        DirError::Channel(e)
    }
}

impl From<ClientError> for DirError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Channel(c) => DirError::Channel(c),
            ClientError::Violation(_) => DirError::Protocol,
        }
    }
}

impl core::fmt::Display for DirError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DirError::Channel(e) => write!(f, "directory: {e}"),
            DirError::Refused(_, m) => f.write_str(m),
            DirError::Protocol => f.write_str("directory: unexpected reply"),
            DirError::NoDirectory => f.write_str("no directory endpoint"),
        }
    }
}

static DIRECTORY: spin::Mutex<Option<DirectoryClient>> = spin::Mutex::new(None);

fn with_directory<T>(f: impl FnOnce(&mut DirectoryClient) -> Result<T, DirError>) -> Result<T, DirError> {
    let mut g = DIRECTORY.lock();
    if g.is_none() {
        if crate::start::is_init() {
            return Err(DirError::NoDirectory);
        }
        let (m, l, e) = (crate::start::take_handle(0), crate::start::take_handle(1), crate::start::take_handle(2));
        let (Some(m), Some(l), Some(e)) = (m, l, e) else { return Err(DirError::NoDirectory) };
        let ch = Channel::attach(EndpointHandles::from_raw(m, l, e, 1))
            .map_err(|e| DirError::Refused(e, String::from("cannot attach the directory endpoint")))?;
        *g = Some(DirectoryClient::new(ch));
    }
    f(g.as_mut().ok_or(DirError::NoDirectory)?)
}

/// Turn the contract's error reply into a `DirError`.
fn answer(reply: Reply) -> Result<Reply, DirError> {
    match reply {
        Reply::Refused { code, message } => {
            Err(DirError::Refused(Error::from_code(code as i32).unwrap_or(Error::InvalidArgument), message))
        }
        other => Ok(other),
    }
}

/// Connect to service `name` (waiting for it to register if `wait`).
pub fn connect(name: &str, wait: bool) -> Result<Endpoint, DirError> {
    match with_directory(|d| answer(d.connect(String::from(name), wait)?))? {
        Reply::Connected { endpoint } => {
            Endpoint::attach(endpoint).map_err(|e| DirError::Refused(e, String::from("cannot attach connection")))
        }
        _ => Err(DirError::Protocol),
    }
}

/// Connect to service `name`, giving it up to `patience` to register (a
/// service that is still starting, e.g. right after boot); `NotFound` if it
/// has not registered by then.
pub fn connect_within(name: &str, patience: core::time::Duration) -> Result<Endpoint, DirError> {
    let deadline = crate::time::now_ns().saturating_add(patience.as_nanos() as u64);
    loop {
        match connect(name, false) {
            Err(DirError::Refused(Error::NotFound, _)) if crate::time::now_ns() < deadline => {
                crate::time::sleep(core::time::Duration::from_millis(50))
            }
            other => return other,
        }
    }
}

/// A registered service's source of new connections (the service side of
/// a `listener` channel).
pub struct Listener {
    channel: Channel<listener::Reply, listener::Request>,
}

/// A new connection to a registered service.
pub struct Connection {
    /// The name the client connected to.
    pub name: String,
    /// Who connected: the client's manifest program as init knows it
    /// (`init` for init itself). Not chosen by the client.
    pub client: String,
    /// The service's end of the new channel.
    pub endpoint: Endpoint,
}

fn attach(request: listener::Request) -> Result<Connection, DirError> {
    let listener::Request::Incoming { name, client, endpoint } = request;
    Endpoint::attach(endpoint)
        .map(|endpoint| Connection { name, client, endpoint })
        .map_err(|e| DirError::Refused(e, String::from("cannot attach connection")))
}

impl Listener {
    /// Take a pending connection, if any.
    pub fn try_accept(&mut self) -> Result<Option<Connection>, DirError> {
        match self.channel.try_recv()? {
            Some(request) => attach(request).map(Some),
            None => Ok(None),
        }
    }

    /// Wait for the next connection.
    pub fn accept(&mut self) -> Result<Connection, DirError> {
        attach(self.channel.recv()?)
    }
}

impl HasEndpoint for Listener {
    fn endpoint(&self) -> &Endpoint {
        self.channel.endpoint()
    }
}

/// Register service `name`; its connections get the default ring size.
pub fn register(name: &str) -> Result<Listener, DirError> {
    register_for(name, 0)
}

/// The ring size (per direction) a channel needs so that messages of up to
/// `max_message` bytes always fit: at least the default, and room for two
/// of the largest.
pub fn ring_bytes_for(max_message: usize) -> usize {
    (2 * (max_message + 64)).next_power_of_two().max(crate::channel::DEFAULT_RING_BYTES)
}

/// Register service `name` whose messages are up to `max_message` bytes:
/// init makes each connection's channel large enough for them.
pub fn register_for(name: &str, max_message: usize) -> Result<Listener, DirError> {
    let ring = if max_message == 0 { 0 } else { ring_bytes_for(max_message) as u32 };
    let (mine, theirs) = Endpoint::pair().map_err(|e| DirError::Refused(e, String::from("cannot create listener")))?;
    match with_directory(|d| answer(d.register(String::from(name), theirs, ring)?))? {
        Reply::Ok => Ok(Listener { channel: Channel::new(mine) }),
        _ => Err(DirError::Protocol),
    }
}

/// Ask init to start a program; its pid and process handle.
pub fn spawn(req: SpawnRequest) -> Result<(u32, Process), DirError> {
    let (names, handles): (Vec<String>, Vec<OwnedHandle>) = req.handles.into_iter().unzip();
    let reply = with_directory(|d| answer(d.spawn(req.program, req.name, req.args, req.suspended, names, handles)?))?;
    match reply {
        Reply::Spawned { pid, process } => Ok((pid, Process(process))),
        _ => Err(DirError::Protocol),
    }
}

/// Start `program` with `args` and no extra handles.
pub fn run(program: &str, args: &str) -> Result<(u32, Process), DirError> {
    spawn(SpawnRequest {
        program: String::from(program),
        name: String::new(),
        args: String::from(args),
        suspended: false,
        handles: Vec::new(),
    })
}

/// Every live process.
pub fn list() -> Result<Vec<ProcessInfo>, DirError> {
    match with_directory(|d| answer(d.list()?))? {
        Reply::Processes { count, memory } => {
            let memory = Memory(memory);
            let size = core::mem::size_of::<ProcessInfo>();
            let pages = memory.pages().map_err(|e| DirError::Refused(e, String::from("cannot size list")))?;
            let count = (count as usize).min((pages * PAGE_SIZE) as usize / size);
            let bytes = memory
                .read((count * size) as u64)
                .map_err(|e| DirError::Refused(e, String::from("cannot read list")))?;
            let mut out = Vec::with_capacity(count);
            for i in 0..count {
                if let Ok(info) =
                    <ProcessInfo as zerocopy::FromBytes>::read_from_bytes(&bytes[i * size..(i + 1) * size])
                {
                    out.push(info);
                }
            }
            Ok(out)
        }
        _ => Err(DirError::Protocol),
    }
}

/// Kill processes by name or pid; how many.
pub fn kill(target: &str) -> Result<u32, DirError> {
    match with_directory(|d| answer(d.kill(String::from(target))?))? {
        Reply::Killed { count } => Ok(count),
        _ => Err(DirError::Protocol),
    }
}

/// A device resource granted to this program.
pub fn device(name: &str) -> Result<Handle, DirError> {
    match with_directory(|d| answer(d.device(String::from(name))?))? {
        Reply::Resource { resource } => Ok(resource.into_raw()),
        _ => Err(DirError::Protocol),
    }
}

/// The registered service names.
pub fn services() -> Result<Vec<String>, DirError> {
    match with_directory(|d| answer(d.services()?))? {
        Reply::Names { names } => Ok(names),
        _ => Err(DirError::Protocol),
    }
}

/// A PCI function granted to this program.
pub struct PciFunction {
    /// `bus << 8 | device << 3 | function`.
    pub address: u32,
    /// Vendor id.
    pub vendor: u16,
    /// Device id.
    pub device: u16,
    /// Class, subclass, programming interface.
    pub class: (u8, u8, u8),
    /// Handle to its configuration space (a `PciConfig` resource).
    pub config: Handle,
}

/// The PCI functions this program's manifest entry grants.
pub fn pci_functions() -> Result<Vec<PciFunction>, DirError> {
    match with_directory(|d| answer(d.pci_functions()?))? {
        Reply::Functions { addresses, ids, classes, configs } => Ok(addresses
            .into_iter()
            .zip(ids)
            .zip(classes)
            .zip(configs)
            .map(|(((address, id), class), config)| PciFunction {
                address,
                vendor: (id >> 16) as u16,
                device: id as u16,
                class: ((class >> 16) as u8, (class >> 8) as u8, class as u8),
                config: config.into_raw(),
            })
            .collect()),
        _ => Err(DirError::Protocol),
    }
}

/// Power the machine off (returns only on failure).
pub fn power_off(reset: bool) -> Result<(), DirError> {
    with_directory(|d| answer(d.power_off(reset)?)).map(|_| ())
}
