//! The clients' sockets: which smoltcp sockets each session's socket
//! numbers stand for, and what kind each is (a listener with its backlog, a
//! TCP connection, a UDP socket). Numbers are per session and never
//! reused within one, so a stale number finds nothing.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;

/// A socket a client holds.
pub enum Entry {
    /// A TCP listener: smoltcp sockets listening on the port, and
    /// connections they took, waiting for `Accept`.
    Listener {
        /// The port.
        port: u16,
        /// Most connections in `slots` and `queue` together.
        backlog: usize,
        /// Sockets in the LISTEN state.
        slots: Vec<SocketHandle>,
        /// Sockets that left LISTEN (being set up, or established), oldest first.
        queue: VecDeque<SocketHandle>,
    },
    /// A TCP connection.
    Tcp(Connection),
    /// A UDP socket.
    Udp {
        /// The smoltcp socket.
        handle: SocketHandle,
        /// Its port.
        port: u16,
    },
}

/// A TCP connection and what the stack learned about how it went.
pub struct Connection {
    /// The smoltcp socket.
    pub handle: SocketHandle,
    /// The state seen at the last look (to tell a reset from a close).
    pub last: tcp::State,
    /// Whether it ever got established.
    pub established: bool,
    /// The peer reset it (or it failed before being established).
    pub reset: bool,
    /// The client shut down its sending half.
    pub shut: bool,
}

impl Connection {
    /// A connection on `handle`, now in `state`.
    pub fn new(handle: SocketHandle, state: tcp::State) -> Connection {
        let established = !matches!(state, tcp::State::Listen | tcp::State::SynSent | tcp::State::SynReceived);
        Connection { handle, last: state, established, reset: false, shut: false }
    }

    /// Note the socket's state now: a jump to CLOSED from a state where the
    /// close was not under way is a reset (or, before establishment, a
    /// refusal).
    pub fn observe(&mut self, state: tcp::State) {
        use tcp::State::*;
        if state == Closed && !matches!(self.last, Closed | TimeWait | LastAck | Closing) {
            self.reset = true;
        }
        if matches!(state, Established | FinWait1 | FinWait2 | CloseWait | Closing | LastAck | TimeWait) {
            self.established = true;
        }
        self.last = state;
    }
}

/// Every session's sockets.
#[derive(Default)]
pub struct Table {
    entries: BTreeMap<(u64, u32), Entry>,
    next: BTreeMap<u64, u32>,
}

impl Table {
    /// Add a socket for `session`; its number.
    pub fn insert(&mut self, session: u64, entry: Entry) -> u32 {
        let n = self.next.entry(session).or_insert(1);
        let id = *n;
        *n = n.wrapping_add(1).max(1);
        self.entries.insert((session, id), entry);
        id
    }

    /// The socket `id` of `session`.
    pub fn get(&self, session: u64, id: u32) -> Option<&Entry> {
        self.entries.get(&(session, id))
    }

    /// The same, mutably.
    pub fn get_mut(&mut self, session: u64, id: u32) -> Option<&mut Entry> {
        self.entries.get_mut(&(session, id))
    }

    /// Take socket `id` of `session` out.
    pub fn remove(&mut self, session: u64, id: u32) -> Option<Entry> {
        self.entries.remove(&(session, id))
    }

    /// The numbers of `session`'s sockets.
    pub fn of_session(&self, session: u64) -> Vec<u32> {
        self.entries.range((session, 0)..=(session, u32::MAX)).map(|((_, id), _)| *id).collect()
    }

    /// Forget a session's numbering (its sockets must be gone).
    pub fn end_session(&mut self, session: u64) {
        self.next.remove(&session);
    }

    /// Every socket, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&(u64, u32), &Entry)> {
        self.entries.iter()
    }

    /// Every socket, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&(u64, u32), &mut Entry)> {
        self.entries.iter_mut()
    }

    /// How many sockets clients hold.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether a TCP listener holds `port`.
    pub fn tcp_port_listened(&self, port: u16) -> bool {
        self.entries.values().any(|e| matches!(e, Entry::Listener { port: p, .. } if *p == port))
    }

    /// Whether a UDP socket holds `port`.
    pub fn udp_port_bound(&self, port: u16) -> bool {
        self.entries.values().any(|e| matches!(e, Entry::Udp { port: p, .. } if *p == port))
    }
}
