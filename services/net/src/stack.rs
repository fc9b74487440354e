//! [`NetCore`]: the whole network stack as an event-driven core.
//!
//! Three kinds of event feed it, each with the time it happened: a client
//! request (`on_request`), frames from the wire (`on_frames`), and a timer
//! (`on_timer`); plus a session's end (`session_closed`). Each returns an
//! [`Output`]: frames to put on the wire, replies to deliver (the answer to
//! the request just made, if it could be answered at once, and the answers
//! to earlier requests that waited and can now be answered), and when the
//! core next wants `on_timer`.
//!
//! Nothing else goes in: no clock is read and no random number is drawn
//! but from the seed given to [`NetCore::new`], so the same events give the
//! same outputs, byte for byte (a replay after a crash rebuilds the exact
//! TCP sequence numbers and windows). Everything the core owns (smoltcp's
//! interface, sockets and buffers, the socket table, the waiting requests)
//! is allocated with the global allocator, which the service points at its
//! state arena, so a byte copy of the arena is a copy of the stack.
//!
//! Bad input never panics: a request naming a socket it does not own, a
//! used port, an oversized datagram, a malformed address gets `Failed`;
//! a malformed or foreign frame is dropped and counted.

use crate::addr;
use crate::config::{Ipv4Mode, NetConfig};
use crate::device::{DropReason, FrameCounters, FrameDevice};
use crate::protocol::{Reply, Request};
use crate::sockets::{Connection, Entry, Table};
use crate::{code, ready, WAIT_FOREVER};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use libos::rand::Rng;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::socket::{dhcpv4, dns, icmp, tcp, udp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    DnsQueryType, EthernetAddress, HardwareAddress, Icmpv4Packet, Icmpv4Repr, Icmpv6Packet, Icmpv6Repr, IpAddress,
    IpCidr, IpEndpoint, Ipv4Address, Ipv4Cidr, Ipv6Address,
};

/// How long a connection a client closed may take to finish closing
/// before it is reset.
const LINGER: Duration = Duration::from_secs(30);
/// How long a connection attempt may take when the client waits without
/// a limit.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
/// Most payload of a ping (no fragmentation).
const MAX_PING: u16 = 1472;
/// Most payload of a UDP datagram (no fragmentation).
const MAX_DATAGRAM: usize = 1472;
/// Most bytes one `Receive` returns.
const MAX_RECEIVE: usize = 65536;
/// Most connections a listener may hold back.
const MAX_BACKLOG: u16 = 64;
/// First ephemeral port.
const EPHEMERAL: u16 = 49152;

/// A reply for a request of a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The session.
    pub session: u64,
    /// The request's number in its session.
    pub seq: u64,
    /// The reply.
    pub reply: Reply,
}

/// What an event produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// Frames to send, in order.
    pub frames: Vec<Vec<u8>>,
    /// Replies to deliver, in order.
    pub replies: Vec<Answer>,
    /// When to call `on_timer` next (ns on the clock the events carry;
    /// possibly already past: at once).
    pub timer_ns: Option<u64>,
}

/// A request that waits.
enum Op {
    Accept { socket: u32 },
    Connect { socket: u32 },
    Send { socket: u32, data: Vec<u8> },
    Receive { socket: u32, max: usize },
    ReceiveFrom { socket: u32 },
    Wait { sockets: Vec<u32>, interests: Vec<u8> },
    Ping { icmp: SocketHandle, ident: u16, sent_at: Instant },
    Resolve { dns: SocketHandle, query: dns::QueryHandle, name: String },
}

impl Op {
    fn socket(&self) -> Option<u32> {
        match self {
            Op::Accept { socket }
            | Op::Connect { socket }
            | Op::Send { socket, .. }
            | Op::Receive { socket, .. }
            | Op::ReceiveFrom { socket } => Some(*socket),
            Op::Wait { .. } | Op::Ping { .. } | Op::Resolve { .. } => None,
        }
    }
}

struct Pending {
    session: u64,
    seq: u64,
    deadline: Option<Instant>,
    op: Op,
}

/// A connection a client closed, finishing its close.
struct Closing {
    handle: SocketHandle,
    deadline: Instant,
}

/// The longest `Failed` message the contract carries (`string[256]`).
const MAX_FAILED_MESSAGE: usize = 256;

/// A `Failed` reply; a message past the contract's limit (it may quote a
/// client's name or address) is cut at a character boundary, so that the
/// reply still encodes.
fn failed(code: u32, message: impl Into<String>) -> Reply {
    let mut message = message.into();
    if message.len() > MAX_FAILED_MESSAGE {
        let end = libos::wire::char_prefix(&message, MAX_FAILED_MESSAGE - 3).len();
        message.truncate(end);
        message.push_str("...");
    }
    Reply::Failed { code, message }
}

fn micros(now_ns: u64) -> Instant {
    Instant::from_micros((now_ns / 1000) as i64)
}

fn tcp_state_name(s: tcp::State) -> &'static str {
    use tcp::State::*;
    match s {
        Closed => "closed",
        Listen => "listen",
        SynSent => "syn-sent",
        SynReceived => "syn-received",
        Established => "established",
        FinWait1 => "fin-wait-1",
        FinWait2 => "fin-wait-2",
        CloseWait => "close-wait",
        Closing => "closing",
        LastAck => "last-ack",
        TimeWait => "time-wait",
    }
}

/// The network stack.
pub struct NetCore {
    config: NetConfig,
    mac: EthernetAddress,
    iface: Interface,
    set: SocketSet<'static>,
    device: FrameDevice,
    dhcp: Option<SocketHandle>,
    dns: Vec<IpAddress>,
    gateway: Option<Ipv4Address>,
    table: Table,
    pending: Vec<Pending>,
    closing: Vec<Closing>,
    /// smoltcp sockets in the set (for the limit).
    in_set: usize,
    rng: Rng,
    now: Instant,
    failed_requests: u64,
    replies: Vec<Answer>,
}

impl NetCore {
    /// A stack for the card with address `mac`, drawing every random number
    /// from `seed`, started at `now_ns`. Fails on a MAC that is not a
    /// unicast address.
    pub fn new(config: NetConfig, mac: [u8; 6], seed: u64, now_ns: u64) -> Result<NetCore, String> {
        let ether = EthernetAddress(mac);
        if !ether.is_unicast() {
            return Err(format!("{ether} is not a unicast MAC address"));
        }
        let mut rng = Rng::new(seed);
        let now = micros(now_ns);
        let mut device = FrameDevice::new();
        let mut cfg = Config::new(HardwareAddress::Ethernet(ether));
        cfg.random_seed = rng.next();
        cfg.slaac = config.ipv6;
        let mut iface = Interface::new(cfg, &mut device, now);
        let mut set = SocketSet::new(Vec::new());
        let mut dhcp = None;
        let mut dns = Vec::new();
        let mut gateway = None;
        let mut in_set = 0;
        if config.ipv6 {
            let ll = link_local(mac);
            iface.update_ip_addrs(|a| {
                let _ = a.push(IpCidr::new(IpAddress::Ipv6(ll), 64));
            });
        }
        match &config.ipv4 {
            Ipv4Mode::Dhcp => {
                dhcp = Some(set.add(dhcpv4::Socket::new()));
                in_set += 1;
            }
            Ipv4Mode::Static { address, prefix, gateway: gw, dns: servers } => {
                let a = Ipv4Address::from(*address);
                iface.update_ip_addrs(|addrs| {
                    let _ = addrs.push(IpCidr::Ipv4(Ipv4Cidr::new(a, *prefix)));
                });
                if let Some(g) = gw {
                    let g = Ipv4Address::from(*g);
                    let _ = iface.routes_mut().add_default_ipv4_route(g);
                    gateway = Some(g);
                }
                dns = servers.iter().map(|d| IpAddress::Ipv4(Ipv4Address::from(*d))).collect();
            }
        }
        Ok(NetCore {
            config,
            mac: ether,
            iface,
            set,
            device,
            dhcp,
            dns,
            gateway,
            table: Table::default(),
            pending: Vec::new(),
            closing: Vec::new(),
            in_set,
            rng,
            now,
            failed_requests: 0,
            replies: Vec::new(),
        })
    }

    /// The interface's IPv4 address, once it has one.
    pub fn ipv4(&self) -> Option<Ipv4Address> {
        self.iface.ipv4_addr()
    }

    /// The frame counters.
    pub fn counters(&self) -> &FrameCounters {
        &self.device.counters
    }

    /// Received frames dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.device.counters.dropped[reason as usize]
    }

    /// Requests waiting for an answer.
    pub fn waiting(&self) -> usize {
        self.pending.len()
    }

    /// Sockets in smoltcp's set (clients' sockets, listening slots,
    /// connections closing, pings, DHCP).
    pub fn smoltcp_sockets(&self) -> usize {
        self.in_set
    }

    /// The answer to a request that only reads (`Status`, `Sockets`,
    /// `LocalAddress`, `PeerAddress`: the contract's idempotent ones),
    /// without touching the stack: no time passes, no frame goes out, no
    /// counter moves, so a service that does not replay such requests
    /// after a crash still ends in the same state. None for other requests.
    pub fn query(&self, session: u64, request: &Request) -> Option<Reply> {
        match request {
            Request::Status => Some(self.status()),
            Request::Sockets => Some(self.socket_list()),
            Request::LocalAddress { socket } => Some(self.address(session, *socket, true)),
            Request::PeerAddress { socket } => Some(self.address(session, *socket, false)),
            _ => None,
        }
    }

    /// Check the core's own bookkeeping: every socket in smoltcp's set is
    /// counted, and every socket of the table, listening slot, connection
    /// closing and waiting ping or lookup names a socket in the set.
    pub fn check(&self) -> Result<(), String> {
        let count = self.set.iter().count();
        if count != self.in_set {
            return Err(format!("{count} sockets in the set, {} counted", self.in_set));
        }
        let has = |h: SocketHandle| self.set.iter().any(|(x, _)| x == h);
        for ((session, id), e) in self.table.iter() {
            let handles: Vec<SocketHandle> = match e {
                Entry::Listener { slots, queue, .. } => slots.iter().chain(queue.iter()).copied().collect(),
                Entry::Tcp(c) => vec![c.handle],
                Entry::Udp { handle, .. } => vec![*handle],
            };
            if let Some(h) = handles.into_iter().find(|h| !has(*h)) {
                return Err(format!("socket {id} of session {session} names {h}, which is not in the set"));
            }
        }
        if let Some(c) = self.closing.iter().find(|c| !has(c.handle)) {
            return Err(format!("a closing connection names {}, which is not in the set", c.handle));
        }
        for p in &self.pending {
            if let Op::Ping { icmp: h, .. } | Op::Resolve { dns: h, .. } = &p.op {
                if !has(*h) {
                    return Err(format!("request {} of session {} waits on {h}, not in the set", p.seq, p.session));
                }
            }
        }
        Ok(())
    }

    /// Damage the bookkeeping so that [`NetCore::check`] fails (crash
    /// injection).
    pub fn chaos_corrupt(&mut self) {
        self.in_set += 1;
    }

    /// A client request, numbered `seq` in `session`.
    pub fn on_request(&mut self, session: u64, seq: u64, request: Request, now_ns: u64) -> Output {
        self.advance(now_ns);
        if let Some(reply) = self.start(session, seq, request) {
            self.answer(session, seq, reply);
        }
        self.run()
    }

    /// Frames from the wire. A connection request (SYN) to a listening
    /// port with no free slot left (its backlog full of connections its
    /// client has not accepted yet) is dropped, as Linux drops it when its
    /// accept queue is full, and not left to smoltcp, which would answer
    /// with a reset for want of a listening socket: the peer sends its SYN
    /// again a moment later, by when the client may have accepted some,
    /// so a burst of more connections than the backlog (50 at once to
    /// httpd, whose backlog is 16) waits instead of being refused. Each
    /// SYN in the batch takes one slot (a retransmitted SYN of a
    /// connection already under way is counted too: at worst a fresh one
    /// waits for its own retransmission).
    pub fn on_frames(&mut self, frames: Vec<Vec<u8>>, now_ns: u64) -> Output {
        self.advance(now_ns);
        let mut free = self.free_listen_slots();
        for f in frames {
            if let Some(n) = crate::device::syn_port(&f).and_then(|port| free.get_mut(&port)) {
                if *n == 0 {
                    self.device.refuse(&f, DropReason::Backlog);
                    continue;
                }
                *n -= 1;
            }
            self.device.deliver(f, self.mac);
        }
        self.run()
    }

    /// For each port listened on, its listeners' slots still listening.
    fn free_listen_slots(&self) -> alloc::collections::BTreeMap<u16, usize> {
        let mut free = alloc::collections::BTreeMap::new();
        for (_, e) in self.table.iter() {
            if let Entry::Listener { port, slots, .. } = e {
                let listening =
                    slots.iter().filter(|h| self.set.get::<tcp::Socket>(**h).state() == tcp::State::Listen).count();
                *free.entry(*port).or_insert(0) += listening;
            }
        }
        free
    }

    /// The timer asked for fired (or any time: harmless).
    pub fn on_timer(&mut self, now_ns: u64) -> Output {
        self.advance(now_ns);
        self.run()
    }

    /// A session ended: its waiting requests go, its sockets close
    /// (connections gracefully).
    pub fn session_closed(&mut self, session: u64, now_ns: u64) -> Output {
        self.advance(now_ns);
        self.pending.retain(|p| p.session != session);
        for id in self.table.of_session(session) {
            self.close(session, id, false);
        }
        self.table.end_session(session);
        self.run()
    }

    fn advance(&mut self, now_ns: u64) {
        let t = micros(now_ns);
        if t > self.now {
            self.now = t;
        }
    }

    fn answer(&mut self, session: u64, seq: u64, reply: Reply) {
        if matches!(reply, Reply::Failed { .. }) {
            self.failed_requests += 1;
        }
        self.replies.push(Answer { session, seq, reply });
    }

    fn deadline(&self, wait_ms: u32) -> Option<Instant> {
        (wait_ms != WAIT_FOREVER).then(|| self.now + Duration::from_millis(wait_ms as u64))
    }

    /// Handle a request: its reply now, or None if it waits (then it is
    /// in `pending`).
    fn start(&mut self, session: u64, seq: u64, request: Request) -> Option<Reply> {
        let (op, wait_ms) = match request {
            Request::Listen { port, backlog } => return Some(self.listen(session, port, backlog)),
            Request::Accept { socket, wait_ms } => (Op::Accept { socket }, wait_ms),
            Request::Connect { address, port, wait_ms } => match self.connect(session, &address, port, wait_ms) {
                Ok(socket) if wait_ms == 0 => return Some(Reply::Opened { socket, established: false }),
                Ok(socket) => (Op::Connect { socket }, wait_ms),
                Err(r) => return Some(r),
            },
            Request::Send { socket, data, wait_ms } => (Op::Send { socket, data }, wait_ms),
            Request::Receive { socket, max, wait_ms } => {
                if max == 0 {
                    return Some(failed(code::BAD_REQUEST, "receive of at most 0 bytes"));
                }
                (Op::Receive { socket, max: (max as usize).min(MAX_RECEIVE) }, wait_ms)
            }
            Request::Shutdown { socket } => return Some(self.shutdown(session, socket)),
            Request::Close { socket, abort } => {
                if self.table.get(session, socket).is_none() {
                    return Some(failed(code::NO_SOCKET, format!("no socket {socket}")));
                }
                self.close(session, socket, abort);
                return Some(Reply::Done);
            }
            Request::Bind { port } => return Some(self.bind(session, port)),
            Request::SendTo { socket, address, port, data } => {
                return Some(self.send_to(session, socket, &address, port, &data))
            }
            Request::ReceiveFrom { socket, wait_ms } => (Op::ReceiveFrom { socket }, wait_ms),
            Request::LocalAddress { socket } => return Some(self.address(session, socket, true)),
            Request::PeerAddress { socket } => return Some(self.address(session, socket, false)),
            Request::Wait { sockets, interests, timeout_ms } => {
                if sockets.len() != interests.len() {
                    return Some(failed(code::BAD_REQUEST, "sockets and interests differ in length"));
                }
                if let Some(s) = sockets.iter().find(|s| self.table.get(session, **s).is_none()) {
                    return Some(failed(code::NO_SOCKET, format!("no socket {s}")));
                }
                (Op::Wait { sockets, interests }, timeout_ms)
            }
            Request::Ping { address, size, wait_ms } => match self.ping(&address, size) {
                Ok(op) => (op, wait_ms),
                Err(r) => return Some(r),
            },
            Request::Resolve { name, wait_ms } => match self.resolve(name) {
                Ok(op) => (op, wait_ms),
                Err(r) => return Some(r),
            },
            Request::Status => return Some(self.status()),
            Request::Sockets => return Some(self.socket_list()),
        };
        let mut op = op;
        match self.attempt(session, &mut op) {
            Some(reply) => {
                self.finish(&op);
                Some(reply)
            }
            None if wait_ms == 0 => {
                let r = self.timed_out(session, &op);
                self.finish(&op);
                Some(r)
            }
            None => {
                let deadline = match op {
                    Op::Connect { .. } => Some(self.deadline(wait_ms).unwrap_or(self.now + CONNECT_TIMEOUT)),
                    _ => self.deadline(wait_ms),
                };
                self.pending.push(Pending { session, seq, deadline, op });
                None
            }
        }
    }

    /// Whether packets to `remote` have a way out: on a local network, or
    /// through a default route.
    fn routable(&self, remote: IpAddress) -> bool {
        let on_link = self.iface.ip_addrs().iter().any(|c| c.contains_addr(&remote));
        on_link
            || match remote {
                IpAddress::Ipv4(_) => {
                    self.iface.ipv4_addr().is_some() && self.iface.routes().get_default_ipv4_route().is_some()
                }
                IpAddress::Ipv6(a) => {
                    a.is_unicast_link_local() || self.iface.routes().get_default_ipv6_route().is_some()
                }
            }
    }

    /// The refusal for an address with no way out.
    fn no_route(&self, remote: IpAddress) -> Reply {
        let why = match remote {
            IpAddress::Ipv4(_) if self.iface.ipv4_addr().is_none() => {
                format!(
                    "no IPv4 address yet ({})",
                    if self.dhcp.is_some() { "DHCP has not answered" } else { "none configured" }
                )
            }
            _ => format!("no route to {remote}"),
        };
        failed(code::UNREACHABLE, why)
    }

    fn room_for(&self, sockets: usize) -> bool {
        self.in_set + sockets <= self.config.max_sockets
    }

    fn new_tcp(&self) -> tcp::Socket<'static> {
        let (rx, tx) = (self.config.tcp_buffer, self.config.tcp_send_buffer);
        let mut s = tcp::Socket::new(tcp::SocketBuffer::new(vec![0; rx]), tcp::SocketBuffer::new(vec![0; tx]));
        s.set_nagle_enabled(false);
        s
    }

    fn add_tcp(&mut self) -> SocketHandle {
        let s = self.new_tcp();
        self.in_set += 1;
        self.set.add(s)
    }

    fn remove_socket(&mut self, handle: SocketHandle) {
        if let smoltcp::socket::Socket::Tcp(t) = self.set.remove(handle) {
            if let (Some(l), Some(r)) = (t.local_endpoint(), t.remote_endpoint()) {
                self.device.retransmits.forget(l.port, r.addr, r.port);
            }
        }
        self.in_set -= 1;
    }

    fn tcp_port_used(&self, port: u16) -> bool {
        self.table.tcp_port_listened(port)
            || self.set.iter().any(|(_, s)| match s {
                smoltcp::socket::Socket::Tcp(t) => t.local_endpoint().is_some_and(|e| e.port == port),
                _ => false,
            })
    }

    fn ephemeral_port(&mut self, used: impl Fn(&Self, u16) -> bool) -> Option<u16> {
        let span = (u16::MAX - EPHEMERAL) as u64 + 1;
        for _ in 0..64 {
            let p = EPHEMERAL + self.rng.below(span) as u16;
            if !used(self, p) {
                return Some(p);
            }
        }
        (EPHEMERAL..=u16::MAX).find(|p| !used(self, *p))
    }

    fn listen(&mut self, session: u64, port: u16, backlog: u16) -> Reply {
        if port == 0 {
            return failed(code::BAD_REQUEST, "listen on port 0");
        }
        if !(1..=MAX_BACKLOG).contains(&backlog) {
            return failed(code::BAD_REQUEST, format!("backlog {backlog} (1 to {MAX_BACKLOG})"));
        }
        if self.tcp_port_used(port) {
            return failed(code::IN_USE, format!("TCP port {port} is in use"));
        }
        if !self.room_for(1) {
            return failed(code::TOO_MANY, "too many sockets");
        }
        let entry = Entry::Listener {
            port,
            backlog: backlog as usize,
            slots: Vec::new(),
            queue: alloc::collections::VecDeque::new(),
        };
        let id = self.table.insert(session, entry);
        self.refresh_listeners();
        Reply::Socket { socket: id }
    }

    // The error is the reply itself, sent at once: boxing it buys nothing.
    #[allow(clippy::result_large_err)]
    fn connect(&mut self, session: u64, address: &[u8], port: u16, wait_ms: u32) -> Result<u32, Reply> {
        let Some(remote) = addr::from_bytes(address) else {
            return Err(failed(code::BAD_REQUEST, "an address is 4 or 16 bytes"));
        };
        if port == 0 || remote.is_unspecified() || remote.is_multicast() || remote.is_broadcast() {
            return Err(failed(code::BAD_REQUEST, format!("cannot connect to {}", addr::show_endpoint(address, port))));
        }
        if !self.routable(remote) {
            return Err(self.no_route(remote));
        }
        if !self.room_for(1) {
            return Err(failed(code::TOO_MANY, "too many sockets"));
        }
        let Some(local) = self.ephemeral_port(|c, p| c.tcp_port_used(p)) else {
            return Err(failed(code::IN_USE, "no free local port"));
        };
        let mut s = self.new_tcp();
        if let Err(e) = s.connect(self.iface.context(), (remote, port), local) {
            let _ = wait_ms;
            return Err(failed(code::UNREACHABLE, format!("cannot reach {}: {e}", addr::show(address))));
        }
        let state = s.state();
        self.in_set += 1;
        let handle = self.set.add(s);
        Ok(self.table.insert(session, Entry::Tcp(Connection::new(handle, state))))
    }

    fn shutdown(&mut self, session: u64, socket: u32) -> Reply {
        match self.table.get_mut(session, socket) {
            Some(Entry::Tcp(c)) => {
                c.shut = true;
                self.set.get_mut::<tcp::Socket>(c.handle).close();
                Reply::Done
            }
            Some(_) => failed(code::WRONG_KIND, "shutdown is for connections"),
            None => failed(code::NO_SOCKET, format!("no socket {socket}")),
        }
    }

    /// Close a client's socket (which exists); its waiting requests fail.
    fn close(&mut self, session: u64, socket: u32, abort: bool) {
        let Some(entry) = self.table.remove(session, socket) else { return };
        let mut i = 0;
        while i < self.pending.len() {
            let p = &self.pending[i];
            if p.session == session && p.op.socket() == Some(socket) {
                let p = self.pending.remove(i);
                self.answer(p.session, p.seq, failed(code::CLOSED, format!("socket {socket} was closed")));
            } else {
                i += 1;
            }
        }
        match entry {
            Entry::Tcp(c) => {
                let s = self.set.get_mut::<tcp::Socket>(c.handle);
                if abort {
                    s.abort();
                } else {
                    s.close();
                }
                let deadline = if abort { self.now } else { self.now + LINGER };
                self.closing.push(Closing { handle: c.handle, deadline });
            }
            Entry::Listener { slots, queue, .. } => {
                for h in slots.into_iter().chain(queue) {
                    self.set.get_mut::<tcp::Socket>(h).abort();
                    self.closing.push(Closing { handle: h, deadline: self.now });
                }
            }
            Entry::Udp { handle, .. } => {
                self.set.get_mut::<udp::Socket>(handle).close();
                self.remove_socket(handle);
            }
        }
    }

    fn bind(&mut self, session: u64, port: u16) -> Reply {
        if port != 0 && self.table.udp_port_bound(port) || self.dhcp.is_some() && port == 68 {
            return failed(code::IN_USE, format!("UDP port {port} is in use"));
        }
        if !self.room_for(1) {
            return failed(code::TOO_MANY, "too many sockets");
        }
        let port = match port {
            0 => match self.ephemeral_port(|c, p| c.table.udp_port_bound(p)) {
                Some(p) => p,
                None => return failed(code::IN_USE, "no free UDP port"),
            },
            p => p,
        };
        let n = self.config.udp_buffer;
        let meta = vec![udp::PacketMetadata::EMPTY; 64];
        let meta2 = vec![udp::PacketMetadata::EMPTY; 64];
        let mut s =
            udp::Socket::new(udp::PacketBuffer::new(meta, vec![0; n]), udp::PacketBuffer::new(meta2, vec![0; n]));
        if let Err(e) = s.bind(port) {
            return failed(code::BAD_REQUEST, format!("bind {port}: {e}"));
        }
        self.in_set += 1;
        let handle = self.set.add(s);
        Reply::Socket { socket: self.table.insert(session, Entry::Udp { handle, port }) }
    }

    fn send_to(&mut self, session: u64, socket: u32, address: &[u8], port: u16, data: &[u8]) -> Reply {
        let handle = match self.table.get(session, socket) {
            Some(Entry::Udp { handle, .. }) => *handle,
            Some(_) => return failed(code::WRONG_KIND, "send-to is for UDP sockets"),
            None => return failed(code::NO_SOCKET, format!("no socket {socket}")),
        };
        let Some(remote) = addr::from_bytes(address) else {
            return failed(code::BAD_REQUEST, "an address is 4 or 16 bytes");
        };
        if port == 0 || remote.is_unspecified() {
            return failed(code::BAD_REQUEST, format!("cannot send to {}", addr::show_endpoint(address, port)));
        }
        if data.len() > MAX_DATAGRAM {
            return failed(code::TOO_LARGE, format!("a datagram of {} bytes (at most {MAX_DATAGRAM})", data.len()));
        }
        if !self.routable(remote) || self.iface.get_source_address(&remote).is_none() {
            return self.no_route(remote);
        }
        let s = self.set.get_mut::<udp::Socket>(handle);
        match s.send_slice(data, IpEndpoint::new(remote, port)) {
            Ok(()) => Reply::Sent { count: data.len() as u32 },
            Err(udp::SendError::BufferFull) => Reply::Sent { count: 0 },
            Err(e) => failed(code::UNREACHABLE, format!("send to {}: {e}", addr::show_endpoint(address, port))),
        }
    }

    fn address(&self, session: u64, socket: u32, local: bool) -> Reply {
        let endpoint = match self.table.get(session, socket) {
            None => return failed(code::NO_SOCKET, format!("no socket {socket}")),
            Some(Entry::Listener { port, .. }) if local => Some((None, *port)),
            Some(Entry::Udp { port, .. }) if local => Some((None, *port)),
            Some(Entry::Tcp(c)) => {
                let s = self.set.get::<tcp::Socket>(c.handle);
                let e = if local { s.local_endpoint() } else { s.remote_endpoint() };
                e.map(|e| (Some(e.addr), e.port))
            }
            Some(_) => None,
        };
        match endpoint {
            Some((a, port)) => Reply::Address { address: a.map(addr::to_bytes).unwrap_or_default(), port },
            None => failed(code::NOT_CONNECTED, format!("socket {socket} has no peer")),
        }
    }

    // The error is the reply itself, sent at once: boxing it buys nothing.
    #[allow(clippy::result_large_err)]
    fn ping(&mut self, address: &[u8], size: u16) -> Result<Op, Reply> {
        let Some(remote) = addr::from_bytes(address) else {
            return Err(failed(code::BAD_REQUEST, "an address is 4 or 16 bytes"));
        };
        if size > MAX_PING {
            return Err(failed(code::TOO_LARGE, format!("a ping of {size} bytes (at most {MAX_PING})")));
        }
        if remote.is_unspecified() {
            return Err(failed(code::BAD_REQUEST, "cannot ping the unspecified address"));
        }
        let source = self.iface.get_source_address(&remote).filter(|_| self.routable(remote));
        let Some(source) = source else {
            return Err(self.no_route(remote));
        };
        if !self.room_for(1) {
            return Err(failed(code::TOO_MANY, "too many sockets"));
        }
        let ident = self.rng.next() as u16;
        let payload: Vec<u8> = (0..size).map(|i| i as u8).collect();
        let len = size as usize + 64;
        let mut s = icmp::Socket::new(
            icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 4], vec![0; 4 * len]),
            icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 1], vec![0; len]),
        );
        if let Err(e) = s.bind(icmp::Endpoint::Ident(ident)) {
            return Err(failed(code::BAD_REQUEST, format!("ping: {e}")));
        }
        let caps = ChecksumCapabilities::default();
        let sent = match (remote, source) {
            (IpAddress::Ipv4(_), _) => {
                let repr = Icmpv4Repr::EchoRequest { ident, seq_no: 1, data: &payload };
                s.send(repr.buffer_len(), remote).map(|buf| repr.emit(&mut Icmpv4Packet::new_unchecked(buf), &caps))
            }
            (IpAddress::Ipv6(dst), IpAddress::Ipv6(src)) => {
                let repr = Icmpv6Repr::EchoRequest { ident, seq_no: 1, data: &payload };
                s.send(repr.buffer_len(), remote)
                    .map(|buf| repr.emit(&src, &dst, &mut Icmpv6Packet::new_unchecked(buf), &caps))
            }
            _ => return Err(failed(code::UNREACHABLE, "no IPv6 address")),
        };
        if let Err(e) = sent {
            return Err(failed(code::UNREACHABLE, format!("ping: {e}")));
        }
        self.in_set += 1;
        let icmp = self.set.add(s);
        Ok(Op::Ping { icmp, ident, sent_at: self.now })
    }

    /// Start asking the DNS server for `name` (or answer an address at once).
    // The error is the reply itself, sent at once: boxing it buys nothing.
    #[allow(clippy::result_large_err)]
    fn resolve(&mut self, name: String) -> Result<Op, Reply> {
        if let Some(a) = addr::parse(&name) {
            return Err(Reply::Resolved { addresses: alloc::vec![a] });
        }
        let servers: Vec<IpAddress> = self.dns.clone();
        if servers.is_empty() {
            let why = if self.dhcp.is_some() {
                "no DNS server yet (DHCP has not answered)"
            } else {
                "no DNS server configured"
            };
            return Err(failed(code::UNREACHABLE, why));
        }
        if !self.room_for(1) {
            return Err(failed(code::TOO_MANY, "too many sockets"));
        }
        let mut s = dns::Socket::new(&servers, alloc::vec![None]);
        let query = match s.start_query(self.iface.context(), &name, DnsQueryType::A) {
            Ok(q) => q,
            Err(e) => return Err(failed(code::BAD_REQUEST, format!("'{name}': {e}"))),
        };
        self.in_set += 1;
        let dns = self.set.add(s);
        Ok(Op::Resolve { dns, query, name })
    }

    /// Try to complete `op` now.
    fn attempt(&mut self, session: u64, op: &mut Op) -> Option<Reply> {
        let no_socket = |s: u32| Some(failed(code::NO_SOCKET, format!("no socket {s}")));
        match op {
            Op::Accept { socket } => {
                let socket = *socket;
                let taken = match self.table.get_mut(session, socket) {
                    None => return no_socket(socket),
                    Some(Entry::Listener { queue, .. }) => {
                        let set = &self.set;
                        let at = queue.iter().position(|h| {
                            let s = set.get::<tcp::Socket>(*h);
                            s.may_send() || s.may_recv() || s.state() == tcp::State::CloseWait
                        })?;
                        queue.remove(at)?
                    }
                    Some(_) => return Some(failed(code::WRONG_KIND, "accept is for listening sockets")),
                };
                let s = self.set.get::<tcp::Socket>(taken);
                let state = s.state();
                let (address, port) = s.remote_endpoint().map(|e| (addr::to_bytes(e.addr), e.port)).unwrap_or_default();
                let id = self.table.insert(session, Entry::Tcp(Connection::new(taken, state)));
                self.refresh_listeners();
                Some(Reply::Accepted { socket: id, address, port })
            }
            Op::Connect { socket } => {
                let Some(Entry::Tcp(c)) = self.table.get(session, *socket) else { return no_socket(*socket) };
                if c.reset || self.set.get::<tcp::Socket>(c.handle).state() == tcp::State::Closed {
                    Some(failed(code::REFUSED, "connection refused"))
                } else if c.established {
                    Some(Reply::Opened { socket: *socket, established: true })
                } else {
                    None
                }
            }
            Op::Send { socket, data } => {
                let c = match self.table.get(session, *socket) {
                    Some(Entry::Tcp(c)) => c,
                    Some(_) => return Some(failed(code::WRONG_KIND, "send is for connections; use send-to")),
                    None => return no_socket(*socket),
                };
                let (reset, shut, established) = (c.reset, c.shut, c.established);
                let s = self.set.get_mut::<tcp::Socket>(c.handle);
                if reset {
                    return Some(failed(code::RESET, "connection reset by peer"));
                }
                if shut {
                    return Some(failed(code::NOT_CONNECTED, "the sending half is shut down"));
                }
                if data.is_empty() {
                    return Some(Reply::Sent { count: 0 });
                }
                if s.may_send() {
                    if !s.can_send() {
                        return None;
                    }
                    let n = s.send_slice(data).unwrap_or(0);
                    return (n > 0).then_some(Reply::Sent { count: n as u32 });
                }
                if !established && matches!(s.state(), tcp::State::SynSent | tcp::State::SynReceived) {
                    return None;
                }
                Some(failed(code::NOT_CONNECTED, format!("the connection is {}", tcp_state_name(s.state()))))
            }
            Op::Receive { socket, max } => {
                let c = match self.table.get(session, *socket) {
                    Some(Entry::Tcp(c)) => c,
                    Some(_) => return Some(failed(code::WRONG_KIND, "receive is for connections; use receive-from")),
                    None => return no_socket(*socket),
                };
                let (reset, established) = (c.reset, c.established);
                let s = self.set.get_mut::<tcp::Socket>(c.handle);
                let mut data = Vec::new();
                if s.can_recv() {
                    let want = (*max).min(s.recv_queue());
                    data.resize(want, 0);
                    let n = s.recv_slice(&mut data).unwrap_or(0);
                    data.truncate(n);
                }
                let ended = established && !s.may_recv() && s.recv_queue() == 0;
                if !data.is_empty() {
                    return Some(Reply::Received { data, end: ended && !reset });
                }
                if reset {
                    return Some(failed(code::RESET, "connection reset by peer"));
                }
                if ended {
                    return Some(Reply::Received { data, end: true });
                }
                if !established && s.state() == tcp::State::Closed {
                    return Some(failed(code::NOT_CONNECTED, "the connection is closed"));
                }
                None
            }
            Op::ReceiveFrom { socket } => {
                let handle = match self.table.get(session, *socket) {
                    Some(Entry::Udp { handle, .. }) => *handle,
                    Some(_) => return Some(failed(code::WRONG_KIND, "receive-from is for UDP sockets")),
                    None => return no_socket(*socket),
                };
                let s = self.set.get_mut::<udp::Socket>(handle);
                let (data, meta) = s.recv().ok()?;
                let data = data.to_vec();
                Some(Reply::Datagram { address: addr::to_bytes(meta.endpoint.addr), port: meta.endpoint.port, data })
            }
            Op::Wait { sockets, interests } => {
                let mut ready_sockets = Vec::new();
                let mut events = Vec::new();
                for (s, want) in sockets.iter().zip(interests.iter()) {
                    let Some(now) = self.readiness(session, *s) else {
                        // Closed by the client since (another request in flight).
                        ready_sockets.push(*s);
                        events.push(ready::ENDED);
                        continue;
                    };
                    let e = now & (want | ready::ENDED);
                    if e != 0 {
                        ready_sockets.push(*s);
                        events.push(e);
                    }
                }
                (!ready_sockets.is_empty()).then_some(Reply::Events { sockets: ready_sockets, events })
            }
            Op::Ping { icmp, ident, sent_at } => {
                let s = self.set.get_mut::<icmp::Socket>(*icmp);
                while let Ok((payload, from)) = s.recv() {
                    let echo = match from {
                        IpAddress::Ipv4(_) => Icmpv4Packet::new_checked(payload).ok().and_then(|p| {
                            match Icmpv4Repr::parse(&p, &ChecksumCapabilities::ignored()).ok()? {
                                Icmpv4Repr::EchoReply { ident: i, seq_no: 1, data } if i == *ident => Some(data.len()),
                                _ => None,
                            }
                        }),
                        IpAddress::Ipv6(_) => Icmpv6Packet::new_checked(payload).ok().and_then(|p| {
                            let (u, d) = (Ipv6Address::UNSPECIFIED, Ipv6Address::UNSPECIFIED);
                            match Icmpv6Repr::parse(&u, &d, &p, &ChecksumCapabilities::ignored()).ok()? {
                                Icmpv6Repr::EchoReply { ident: i, seq_no: 1, data } if i == *ident => Some(data.len()),
                                _ => None,
                            }
                        }),
                    };
                    if let Some(size) = echo {
                        let rtt = (self.now - *sent_at).total_micros();
                        return Some(Reply::Pong { rtt_us: rtt, size: size as u16 });
                    }
                }
                None
            }
            Op::Resolve { dns, query, name } => match self.set.get_mut::<dns::Socket>(*dns).get_query_result(*query) {
                Err(dns::GetQueryResultError::Pending) => None,
                Ok(found) => Some(Reply::Resolved { addresses: found.iter().map(|a| addr::to_bytes(*a)).collect() }),
                Err(dns::GetQueryResultError::Failed) => {
                    Some(failed(code::NO_NAME, format!("no address for '{name}'")))
                }
            },
        }
    }

    /// The answer to `op` when its time ran out.
    fn timed_out(&mut self, session: u64, op: &Op) -> Reply {
        match op {
            Op::Connect { socket } => {
                if let Some(Entry::Tcp(c)) = self.table.get(session, *socket) {
                    let h = c.handle;
                    self.table.remove(session, *socket);
                    self.set.get_mut::<tcp::Socket>(h).abort();
                    self.closing.push(Closing { handle: h, deadline: self.now });
                }
                failed(code::TIMED_OUT, "connection timed out")
            }
            Op::Ping { .. } => failed(code::TIMED_OUT, "no echo reply"),
            Op::Resolve { name, .. } => failed(code::TIMED_OUT, format!("no answer for '{name}' in time")),
            Op::Wait { .. } => Reply::Events { sockets: Vec::new(), events: Vec::new() },
            _ => Reply::NotReady,
        }
    }

    /// Release what `op` held once it is answered.
    fn finish(&mut self, op: &Op) {
        match op {
            Op::Ping { icmp, .. } => self.remove_socket(*icmp),
            Op::Resolve { dns, .. } => self.remove_socket(*dns),
            _ => {}
        }
    }

    /// What socket `id` of `session` is ready for (None: no such socket).
    fn readiness(&self, session: u64, id: u32) -> Option<u8> {
        let r = match self.table.get(session, id)? {
            Entry::Listener { queue, .. } => {
                let any = queue.iter().any(|h| {
                    let s = self.set.get::<tcp::Socket>(*h);
                    s.may_send() || s.may_recv() || s.state() == tcp::State::CloseWait
                });
                if any {
                    ready::ACCEPTABLE | ready::READABLE
                } else {
                    0
                }
            }
            Entry::Tcp(c) => {
                let s = self.set.get::<tcp::Socket>(c.handle);
                let mut r = 0;
                let rx_ended = c.established && !s.may_recv();
                if s.can_recv() || rx_ended || c.reset {
                    r |= ready::READABLE;
                }
                if (s.may_send() && s.can_send()) || c.reset || (c.established && !s.may_send()) {
                    r |= ready::WRITABLE;
                }
                if c.reset || (c.established && matches!(s.state(), tcp::State::Closed | tcp::State::TimeWait)) {
                    r |= ready::ENDED;
                }
                if !c.established && s.state() == tcp::State::Closed {
                    r |= ready::ENDED | ready::WRITABLE | ready::READABLE;
                }
                r
            }
            Entry::Udp { handle, .. } => {
                let s = self.set.get::<udp::Socket>(*handle);
                (if s.can_recv() { ready::READABLE } else { 0 }) | (if s.can_send() { ready::WRITABLE } else { 0 })
            }
        };
        Some(r)
    }

    /// Keep each listener's slots listening and its queue clean.
    fn refresh_listeners(&mut self) {
        let keys: Vec<(u64, u32)> =
            self.table.iter().filter(|(_, e)| matches!(e, Entry::Listener { .. })).map(|(k, _)| *k).collect();
        for (session, id) in keys {
            let mut gone = Vec::new();
            let mut wanted = 0;
            let mut port = 0;
            if let Some(Entry::Listener { port: p, backlog, slots, queue }) = self.table.get_mut(session, id) {
                port = *p;
                let set = &self.set;
                let mut i = 0;
                while i < slots.len() {
                    if set.get::<tcp::Socket>(slots[i]).state() != tcp::State::Listen {
                        queue.push_back(slots.remove(i));
                    } else {
                        i += 1;
                    }
                }
                queue.retain(|h| {
                    let dead = matches!(set.get::<tcp::Socket>(*h).state(), tcp::State::Closed | tcp::State::TimeWait);
                    if dead {
                        gone.push(*h);
                    }
                    !dead
                });
                wanted = backlog.saturating_sub(slots.len() + queue.len());
            }
            for h in gone {
                self.remove_socket(h);
            }
            let mut fresh = Vec::new();
            for _ in 0..wanted {
                if !self.room_for(1) {
                    break;
                }
                let h = self.add_tcp();
                if self.set.get_mut::<tcp::Socket>(h).listen(port).is_err() {
                    self.remove_socket(h);
                    break;
                }
                fresh.push(h);
            }
            if let Some(Entry::Listener { slots, .. }) = self.table.get_mut(session, id) {
                slots.extend(fresh);
            }
        }
    }

    /// Apply DHCP's news to the interface.
    fn dhcp_events(&mut self) {
        let Some(h) = self.dhcp else { return };
        let event = self.set.get_mut::<dhcpv4::Socket>(h).poll();
        match event {
            Some(dhcpv4::Event::Configured(cfg)) => {
                let address = cfg.address;
                let router = cfg.router;
                let dns: Vec<IpAddress> = cfg.dns_servers.iter().map(|d| IpAddress::Ipv4(*d)).collect();
                match router {
                    Some(r) => log::info!("dhcp: address {address}, gateway {r}"),
                    None => log::info!("dhcp: address {address}, no gateway"),
                }
                self.iface.update_ip_addrs(|addrs| {
                    addrs.retain(|a| !matches!(a, IpCidr::Ipv4(_)));
                    let _ = addrs.push(IpCidr::Ipv4(address));
                });
                match router {
                    Some(r) => {
                        let _ = self.iface.routes_mut().add_default_ipv4_route(r);
                    }
                    None => {
                        self.iface.routes_mut().remove_default_ipv4_route();
                    }
                }
                self.gateway = router;
                self.dns = dns;
            }
            Some(dhcpv4::Event::Deconfigured) => {
                if self.iface.ipv4_addr().is_some() {
                    log::warn!("dhcp: address lost");
                }
                self.iface.update_ip_addrs(|addrs| addrs.retain(|a| !matches!(a, IpCidr::Ipv4(_))));
                self.iface.routes_mut().remove_default_ipv4_route();
                self.gateway = None;
                self.dns.clear();
            }
            None => {}
        }
    }

    /// Note every connection's state (to recognise resets).
    fn observe_connections(&mut self) {
        let set = &self.set;
        for (_, e) in self.table.iter_mut() {
            if let Entry::Tcp(c) = e {
                c.observe(set.get::<tcp::Socket>(c.handle).state());
            }
        }
    }

    /// Reset closing connections whose time is up (before a poll, which
    /// sends the resets).
    fn expire_closing(&mut self) {
        for c in &self.closing {
            if self.now >= c.deadline {
                let s = self.set.get_mut::<tcp::Socket>(c.handle);
                if s.state() != tcp::State::Closed {
                    s.abort();
                }
            }
        }
    }

    /// Forget closing connections that are done (after a poll).
    fn reap_closing(&mut self) {
        let mut done = Vec::new();
        let set = &self.set;
        self.closing.retain(|c| {
            let over = matches!(set.get::<tcp::Socket>(c.handle).state(), tcp::State::Closed | tcp::State::TimeWait);
            if over {
                done.push(c.handle);
            }
            !over
        });
        for h in done {
            self.remove_socket(h);
        }
    }

    /// Answer the waiting requests that can be answered; true if any was.
    fn complete_pending(&mut self) -> bool {
        let mut any = false;
        let mut i = 0;
        while i < self.pending.len() {
            let session = self.pending[i].session;
            let mut op =
                core::mem::replace(&mut self.pending[i].op, Op::Wait { sockets: Vec::new(), interests: Vec::new() });
            let r = self.attempt(session, &mut op);
            match r {
                Some(reply) => {
                    let p = self.pending.remove(i);
                    self.finish(&op);
                    self.answer(p.session, p.seq, reply);
                    any = true;
                }
                None => {
                    self.pending[i].op = op;
                    i += 1;
                }
            }
        }
        any
    }

    /// Answer the waiting requests whose time ran out.
    fn expire_pending(&mut self) {
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending[i].deadline.is_some_and(|d| self.now >= d) {
                let p = self.pending.remove(i);
                let r = self.timed_out(p.session, &p.op);
                self.finish(&p.op);
                self.answer(p.session, p.seq, r);
            } else {
                i += 1;
            }
        }
    }

    /// Run the interface and everything that follows from it; the output.
    fn run(&mut self) -> Output {
        for _ in 0..3 {
            self.expire_closing();
            self.iface.poll(self.now, &mut self.device, &mut self.set);
            self.dhcp_events();
            self.observe_connections();
            self.refresh_listeners();
            self.reap_closing();
            if !self.complete_pending() {
                break;
            }
        }
        self.expire_pending();
        let mut timer = self.iface.poll_at(self.now, &self.set);
        let mut earliest = |t: Instant| {
            if timer.is_none_or(|x| t < x) {
                timer = Some(t);
            }
        };
        for p in &self.pending {
            if let Some(d) = p.deadline {
                earliest(d);
            }
        }
        for c in &self.closing {
            earliest(c.deadline);
        }
        if self.device.tx_full() {
            earliest(self.now);
        }
        Output {
            frames: self.device.take_tx(),
            replies: core::mem::take(&mut self.replies),
            timer_ns: timer.map(|t| (t.total_micros().max(0) as u64) * 1000),
        }
    }

    fn status(&self) -> Reply {
        let (ipv4, prefix) = self
            .iface
            .ip_addrs()
            .iter()
            .find_map(|c| match c {
                IpCidr::Ipv4(c) => Some((c.address().octets().to_vec(), c.prefix_len())),
                _ => None,
            })
            .unwrap_or_default();
        let ipv6 = self
            .iface
            .ip_addrs()
            .iter()
            .filter_map(|c| match c {
                IpCidr::Ipv6(c) => Some(c.address().octets().to_vec()),
                _ => None,
            })
            .take(4)
            .collect();
        let config = match (&self.config.ipv4, ipv4.is_empty()) {
            (Ipv4Mode::Static { .. }, _) => "static",
            (Ipv4Mode::Dhcp, true) => "waiting for dhcp",
            (Ipv4Mode::Dhcp, false) => "dhcp",
        };
        let c = &self.device.counters;
        Reply::Interface {
            mac: self.mac.0.to_vec(),
            config: config.to_string(),
            ipv4,
            prefix,
            gateway: self.gateway.map(|g| g.octets().to_vec()).unwrap_or_default(),
            dns: self.dns.iter().take(3).map(|d| addr::to_bytes(*d)).collect(),
            ipv6,
            frames_in: c.frames_in,
            frames_out: c.frames_out,
            bytes_in: c.bytes_in,
            bytes_out: c.bytes_out,
            dropped: c.dropped_total(),
            retransmissions: c.retransmissions,
            failed_requests: self.failed_requests,
            sockets: self.table.len() as u32,
        }
    }

    fn socket_list(&self) -> Reply {
        let mut sessions = Vec::new();
        let mut sockets = Vec::new();
        let mut states = Vec::new();
        let mut local = Vec::new();
        let mut remote = Vec::new();
        let mut send_queue = Vec::new();
        let mut recv_queue = Vec::new();
        let show = |e: Option<IpEndpoint>| match e {
            Some(e) => addr::show_endpoint(&addr::to_bytes(e.addr), e.port),
            None => String::from("-"),
        };
        for ((session, id), e) in self.table.iter().take(256) {
            sessions.push(*session);
            sockets.push(*id);
            match e {
                Entry::Listener { port, queue, .. } => {
                    states.push(format!("listen ({} queued)", queue.len()));
                    local.push(format!("*:{port}"));
                    remote.push(String::from("-"));
                    send_queue.push(0);
                    recv_queue.push(0);
                }
                Entry::Tcp(c) => {
                    let s = self.set.get::<tcp::Socket>(c.handle);
                    let state = if c.reset { "reset" } else { tcp_state_name(s.state()) };
                    states.push(format!("tcp {state}"));
                    local.push(show(s.local_endpoint()));
                    remote.push(show(s.remote_endpoint()));
                    send_queue.push(s.send_queue() as u32);
                    recv_queue.push(s.recv_queue() as u32);
                }
                Entry::Udp { handle, port } => {
                    let s = self.set.get::<udp::Socket>(*handle);
                    states.push(String::from("udp"));
                    local.push(format!("*:{port}"));
                    remote.push(String::from("-"));
                    send_queue.push(s.send_queue() as u32);
                    recv_queue.push(s.recv_queue() as u32);
                }
            }
        }
        for c in self.closing.iter().take(256usize.saturating_sub(sockets.len())) {
            let s = self.set.get::<tcp::Socket>(c.handle);
            sessions.push(0);
            sockets.push(0);
            states.push(format!("closing {}", tcp_state_name(s.state())));
            local.push(show(s.local_endpoint()));
            remote.push(show(s.remote_endpoint()));
            send_queue.push(s.send_queue() as u32);
            recv_queue.push(s.recv_queue() as u32);
        }
        Reply::SocketList { sessions, sockets, states, local, remote, send_queue, recv_queue }
    }
}

/// The IPv6 link-local address of `mac` (modified EUI-64).
fn link_local(mac: [u8; 6]) -> Ipv6Address {
    let mut b = [0u8; 16];
    b[0] = 0xfe;
    b[1] = 0x80;
    b[8] = mac[0] ^ 0x02;
    b[9] = mac[1];
    b[10] = mac[2];
    b[11] = 0xff;
    b[12] = 0xfe;
    b[13] = mac[3];
    b[14] = mac[4];
    b[15] = mac[5];
    Ipv6Address::from(b)
}
