//! Naming and supervision through init: the directory protocol and its
//! client side.
//!
//! Every program spawned by init holds a directory endpoint (start handles
//! 0..3). Over it a program registers a service name (handing init a
//! listener channel on which new connections arrive), connects to a name,
//! asks init to spawn a program, lists or kills processes, asks for a device
//! resource its manifest entry grants, or powers the machine off.

use crate::channel::{
    Channel, ChannelError, Endpoint, EndpointHandles, HandleList, HandleQueue, HasEndpoint, Message,
};
use crate::handle::{Memory, OwnedHandle, Process};
use crate::wire::{DecodeError, Reader, Writer};
use alloc::string::String;
use alloc::vec::Vec;
use kintsugi_abi::{Error, Handle, MapFlags, ProcessInfo};

/// Longest service or program name.
pub const MAX_NAME: usize = 64;
const MAX_TEXT: usize = 3000;

/// What a client asks init.
pub enum Request {
    /// Connect to service `name`; if `wait`, until it registers.
    Connect {
        /// Service name.
        name: String,
        /// Wait for the service to appear.
        wait: bool,
    },
    /// Register service `name`; connections arrive on `listener`.
    Register {
        /// Service name.
        name: String,
        /// Init's side of the listener channel.
        listener: EndpointHandles,
    },
    /// Start boot program `program`.
    Spawn(SpawnRequest),
    /// Every live process.
    List,
    /// Kill processes by name or pid.
    Kill {
        /// A process name or a decimal pid.
        target: String,
    },
    /// A device resource the caller's manifest entry grants.
    Device {
        /// Resource name (e.g. "console").
        name: String,
    },
    /// Power off (or reset) the machine.
    PowerOff {
        /// Reset instead of powering off.
        reset: bool,
    },
    /// The registered service names.
    Services,
}

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

/// What init answers.
pub enum Reply {
    /// Done.
    Ok,
    /// Refused, with the reason.
    Error {
        /// ABI error code.
        code: u32,
        /// Human-readable detail.
        message: String,
    },
    /// A connection (side B of a new channel).
    Connected(EndpointHandles),
    /// A started process.
    Spawned {
        /// Its pid.
        pid: u32,
        /// Its process handle.
        process: OwnedHandle,
    },
    /// Process records: `count` [`ProcessInfo`] in a memory object.
    List {
        /// Number of records.
        count: u32,
        /// The records.
        memory: OwnedHandle,
    },
    /// Processes killed.
    Killed {
        /// How many.
        count: u32,
    },
    /// A device resource.
    Device(OwnedHandle),
    /// Registered service names, one per line.
    Names(String),
}

/// What init sends on a service's listener channel.
pub enum Incoming {
    /// A client connected to `name`: side B of its channel.
    Connection {
        /// The service name the client asked for.
        name: String,
        /// The server side of the new channel.
        endpoint: EndpointHandles,
    },
}

/// Nothing: the type of a direction that carries no messages.
pub enum Nothing {}

impl Message for Nothing {
    fn encode(self, _w: &mut Writer, _h: &mut HandleList) {
        match self {}
    }
    fn decode(_r: &mut Reader, _h: &mut HandleQueue) -> Result<Self, DecodeError> {
        Err(DecodeError::Invalid)
    }
}

impl Message for Request {
    fn encode(self, w: &mut Writer, h: &mut HandleList) {
        match self {
            Request::Connect { name, wait } => {
                w.u8(1).str(&name).bool(wait);
            }
            Request::Register { name, listener } => {
                w.u8(2).str(&name);
                let side = h.push_endpoint(listener);
                w.u8(side);
            }
            Request::Spawn(s) => {
                w.u8(3).str(&s.program).str(&s.name).str(&s.args).bool(s.suspended).u32(s.handles.len() as u32);
                for (name, handle) in s.handles {
                    w.str(&name);
                    h.push(handle);
                }
            }
            Request::List => {
                w.u8(4);
            }
            Request::Kill { target } => {
                w.u8(5).str(&target);
            }
            Request::Device { name } => {
                w.u8(6).str(&name);
            }
            Request::PowerOff { reset } => {
                w.u8(7).bool(reset);
            }
            Request::Services => {
                w.u8(8);
            }
        }
    }

    fn decode(r: &mut Reader, h: &mut HandleQueue) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            1 => Request::Connect { name: r.string(MAX_NAME)?, wait: r.bool()? },
            2 => {
                let name = r.string(MAX_NAME)?;
                let side = r.u8()?;
                Request::Register { name, listener: EndpointHandles::take(h, side)? }
            }
            3 => {
                let program = r.string(MAX_NAME)?;
                let name = r.string(MAX_NAME)?;
                let args = r.string(MAX_TEXT)?;
                let suspended = r.bool()?;
                let n = r.u32()?;
                if n > 16 {
                    return Err(DecodeError::Invalid);
                }
                let mut handles = Vec::new();
                for _ in 0..n {
                    handles.push((r.string(MAX_NAME)?, h.take()?));
                }
                Request::Spawn(SpawnRequest { program, name, args, suspended, handles })
            }
            4 => Request::List,
            5 => Request::Kill { target: r.string(MAX_NAME)? },
            6 => Request::Device { name: r.string(MAX_NAME)? },
            7 => Request::PowerOff { reset: r.bool()? },
            8 => Request::Services,
            _ => return Err(DecodeError::Invalid),
        })
    }
}

impl Message for Reply {
    fn encode(self, w: &mut Writer, h: &mut HandleList) {
        match self {
            Reply::Ok => {
                w.u8(1);
            }
            Reply::Error { code, message } => {
                w.u8(2).u32(code).str(&message);
            }
            Reply::Connected(e) => {
                w.u8(3);
                let side = h.push_endpoint(e);
                w.u8(side);
            }
            Reply::Spawned { pid, process } => {
                w.u8(4).u32(pid);
                h.push(process);
            }
            Reply::List { count, memory } => {
                w.u8(5).u32(count);
                h.push(memory);
            }
            Reply::Killed { count } => {
                w.u8(6).u32(count);
            }
            Reply::Device(d) => {
                w.u8(7);
                h.push(d);
            }
            Reply::Names(n) => {
                w.u8(8).str(&n);
            }
        }
    }

    fn decode(r: &mut Reader, h: &mut HandleQueue) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            1 => Reply::Ok,
            2 => Reply::Error { code: r.u32()?, message: r.string(MAX_TEXT)? },
            3 => {
                let side = r.u8()?;
                Reply::Connected(EndpointHandles::take(h, side)?)
            }
            4 => Reply::Spawned { pid: r.u32()?, process: h.take()? },
            5 => Reply::List { count: r.u32()?, memory: h.take()? },
            6 => Reply::Killed { count: r.u32()? },
            7 => Reply::Device(h.take()?),
            8 => Reply::Names(r.string(MAX_TEXT)?),
            _ => return Err(DecodeError::Invalid),
        })
    }
}

impl Message for Incoming {
    fn encode(self, w: &mut Writer, h: &mut HandleList) {
        let Incoming::Connection { name, endpoint } = self;
        w.u8(1).str(&name);
        let side = h.push_endpoint(endpoint);
        w.u8(side);
    }

    fn decode(r: &mut Reader, h: &mut HandleQueue) -> Result<Self, DecodeError> {
        match r.u8()? {
            1 => {
                let name = r.string(MAX_NAME)?;
                let side = r.u8()?;
                Ok(Incoming::Connection { name, endpoint: EndpointHandles::take(h, side)? })
            }
            _ => Err(DecodeError::Invalid),
        }
    }
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

/// The client side of the directory protocol.
pub type DirectoryChannel = Channel<Request, Reply>;

static DIRECTORY: spin::Mutex<Option<DirectoryChannel>> = spin::Mutex::new(None);

fn with_directory<T>(f: impl FnOnce(&mut DirectoryChannel) -> Result<T, DirError>) -> Result<T, DirError> {
    let mut g = DIRECTORY.lock();
    if g.is_none() {
        if crate::start::is_init() {
            return Err(DirError::NoDirectory);
        }
        let (m, l, e) = (crate::start::take_handle(0), crate::start::take_handle(1), crate::start::take_handle(2));
        let (Some(m), Some(l), Some(e)) = (m, l, e) else { return Err(DirError::NoDirectory) };
        let ch = Channel::attach(EndpointHandles::from_raw(m, l, e, 1)).map_err(|e| DirError::Refused(e, String::from("cannot attach the directory endpoint")))?;
        *g = Some(ch);
    }
    f(g.as_mut().ok_or(DirError::NoDirectory)?)
}

fn call(req: Request) -> Result<Reply, DirError> {
    with_directory(|d| match d.call(req)? {
        Reply::Error { code, message } => {
            Err(DirError::Refused(Error::from_code(code as i32).unwrap_or(Error::InvalidArgument), message))
        }
        other => Ok(other),
    })
}

/// Connect to service `name` (waiting for it to register if `wait`).
pub fn connect(name: &str, wait: bool) -> Result<Endpoint, DirError> {
    match call(Request::Connect { name: String::from(name), wait })? {
        Reply::Connected(h) => Endpoint::attach(h).map_err(|e| DirError::Refused(e, String::from("cannot attach connection"))),
        _ => Err(DirError::Protocol),
    }
}

/// A registered service's source of new connections.
pub struct Listener {
    channel: Channel<Nothing, Incoming>,
}

impl Listener {
    /// Take a pending connection, if any, as `(service name, endpoint)`.
    pub fn try_accept(&mut self) -> Result<Option<(String, Endpoint)>, DirError> {
        match self.channel.try_recv()? {
            Some(Incoming::Connection { name, endpoint }) => Endpoint::attach(endpoint)
                .map(|e| Some((name, e)))
                .map_err(|e| DirError::Refused(e, String::from("cannot attach connection"))),
            None => Ok(None),
        }
    }

    /// Wait for the next connection.
    pub fn accept(&mut self) -> Result<(String, Endpoint), DirError> {
        let Incoming::Connection { name, endpoint } = self.channel.recv()?;
        Endpoint::attach(endpoint)
            .map(|e| (name, e))
            .map_err(|e| DirError::Refused(e, String::from("cannot attach connection")))
    }
}

impl HasEndpoint for Listener {
    fn endpoint(&self) -> &Endpoint {
        self.channel.endpoint()
    }
}

/// Register service `name`.
pub fn register(name: &str) -> Result<Listener, DirError> {
    let (mine, theirs) = Endpoint::pair().map_err(|e| DirError::Refused(e, String::from("cannot create listener")))?;
    match call(Request::Register { name: String::from(name), listener: theirs })? {
        Reply::Ok => Ok(Listener { channel: Channel::new(mine) }),
        _ => Err(DirError::Protocol),
    }
}

/// Ask init to start a program; its pid and process handle.
pub fn spawn(req: SpawnRequest) -> Result<(u32, Process), DirError> {
    match call(Request::Spawn(req))? {
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
    match call(Request::List)? {
        Reply::List { count, memory } => {
            let memory = Memory(memory);
            let map = memory.map(MapFlags::empty()).map_err(|e| DirError::Refused(e, String::from("cannot map list")))?;
            let size = core::mem::size_of::<ProcessInfo>();
            let count = (count as usize).min(map.len() / size);
            // SAFETY: init wrote the records before replying and no longer
            // writes the object; the mapping lives while we read.
            let bytes = unsafe { map.as_slice() };
            let mut out = Vec::with_capacity(count);
            for i in 0..count {
                if let Ok(info) = <ProcessInfo as zerocopy::FromBytes>::read_from_bytes(&bytes[i * size..(i + 1) * size]) {
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
    match call(Request::Kill { target: String::from(target) })? {
        Reply::Killed { count } => Ok(count),
        _ => Err(DirError::Protocol),
    }
}

/// A device resource granted to this program.
pub fn device(name: &str) -> Result<Handle, DirError> {
    match call(Request::Device { name: String::from(name) })? {
        Reply::Device(h) => Ok(h.into_raw()),
        _ => Err(DirError::Protocol),
    }
}

/// The registered service names.
pub fn services() -> Result<Vec<String>, DirError> {
    match call(Request::Services)? {
        Reply::Names(n) => Ok(n.lines().map(String::from).collect()),
        _ => Err(DirError::Protocol),
    }
}

/// Power the machine off (returns only on failure).
pub fn power_off(reset: bool) -> Result<(), DirError> {
    call(Request::PowerOff { reset }).map(|_| ())
}
