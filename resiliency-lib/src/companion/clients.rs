//! The companion's side facing the world: the three names it registers
//! (the service's own, `NAME.control`, `NAME.notices`), the client sessions
//! with their protocol checkers and sequence numbers, controllers, notice
//! subscribers, and the connections for the service's outbound calls.
//!
//! Nothing here waits on a client: a reply that does not fit in a
//! session's ring now waits in the session's outbox, and a session whose
//! client stops reading (no progress for [`STALL_NS`], or more than
//! [`OUTBOX_LIMIT`] bytes waiting) is closed. A notice subscriber or a
//! controller whose ring is full is dropped. (A client that never read its
//! replies used to block the companion in a full ring, and with it every
//! other client.) A client may hold at most [`MAX_SESSIONS_PER_CLIENT`]
//! sessions; with more sessions than one wait can name, the companion
//! polls them all (a client holding hundreds of idle sessions used to hide
//! later clients' requests from the companion's wait).

use crate::control;
use crate::log::{Log, RequestId};
use crate::notices;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;
use libos::channel::{select, Channel, ChannelError, Endpoint, HandleList, HandleQueue, Message, Signal, Waitable};
use libos::directory::{self, Listener};
use libos::protocol::{Checker, Protocol};
use libos::wire::Reader;

/// Work for the service, in arrival order.
pub enum Work {
    /// A session opened.
    Open(u64),
    /// A session closed.
    Close(u64),
    /// A client request.
    Request {
        /// (session, seq).
        id: RequestId,
        /// The request as the client encoded it.
        bytes: Vec<u8>,
        /// The contract says it changes nothing.
        idempotent: bool,
        /// The contract says its reply waits until it is on the disk.
        durable: bool,
        /// The contract asks for a checkpoint after it.
        checkpoint_after: bool,
        /// A re-run after a crash (its client may have some replies).
        rerun: bool,
    },
}

/// What woke the companion.
pub enum Event {
    /// The service process ended.
    ServiceEnded,
    /// Client traffic or new connections.
    Clients,
    /// A control request.
    Control,
    /// The timeout passed.
    Timeout,
    /// The checkpoint store's connection needs attention (the vault went
    /// away).
    Store,
}

/// How long a session's replies may wait for its client to read (ns)
/// before the companion closes the session.
pub const STALL_NS: u64 = 5_000_000_000;
/// The most reply bytes that may wait for one session's client.
pub const OUTBOX_LIMIT: usize = 1 << 20;
/// How often the outboxes are tried again while replies wait in them.
const OUTBOX_RETRY: Duration = Duration::from_millis(10);
/// The most sessions one client (by init's identity) may hold open; a
/// connection past it is closed at once.
pub const MAX_SESSIONS_PER_CLIENT: usize = 128;
/// How often every session is polled while there are more of them than
/// one wait can name (their own wake-ups would be missed).
const CROWD_POLL: Duration = Duration::from_millis(5);

struct Session<P: Protocol> {
    id: u64,
    /// Who connected (the identity init gave).
    client: String,
    endpoint: Endpoint,
    checker: Checker<P>,
    next_seq: u64,
    /// Replies that did not fit in the ring yet, in order.
    outbox: VecDeque<Vec<u8>>,
    /// Their bytes.
    outbox_bytes: usize,
    /// Since when the outbox has made no progress (ns), if it holds any.
    stalled_since: Option<u64>,
    /// The client stopped reading: close the session at the next collect.
    stuck: bool,
}

impl<P: Protocol> Session<P> {
    /// Move waiting replies into the ring while they fit.
    fn flush(&mut self, name: &str) {
        if self.outbox.is_empty() {
            self.stalled_since = None;
            return;
        }
        let mut moved = false;
        while let Some(bytes) = self.outbox.front() {
            match self.endpoint.can_send(bytes.len()) {
                Ok(true) => {}
                Ok(false) => break,
                Err(_) => {
                    // The client is gone (or broke its ring): nothing more
                    // reaches it; reading notices the end.
                    self.outbox.clear();
                    self.outbox_bytes = 0;
                    break;
                }
            }
            let len = bytes.len();
            let sent = self.endpoint.send_raw(bytes, HandleList::default());
            self.outbox.pop_front();
            self.outbox_bytes -= len;
            moved = true;
            if sent.is_err() {
                self.outbox.clear();
                self.outbox_bytes = 0;
            }
        }
        let now = libos::time::now_ns();
        if self.outbox.is_empty() {
            self.stalled_since = None;
        } else if moved || self.stalled_since.is_none() {
            self.stalled_since = Some(now);
        } else if self.stalled_since.is_some_and(|t| now.saturating_sub(t) > STALL_NS) && !self.stuck {
            log::warn!(
                "{name}: session {} ({}): the client has read no reply for {} s ({} bytes waiting); closing it",
                self.id,
                self.client,
                STALL_NS / 1_000_000_000,
                self.outbox_bytes
            );
            self.stuck = true;
        }
    }

    /// Queue a reply (sent at once if it fits and nothing waits before it).
    fn send(&mut self, name: &str, bytes: &[u8]) {
        if self.stuck {
            return;
        }
        if self.outbox.is_empty() && self.endpoint.can_send(bytes.len()) != Ok(false) {
            // It fits (or the client is gone, which sending notices).
            let _ = self.endpoint.send_raw(bytes, HandleList::default());
            return;
        }
        self.outbox.push_back(Vec::from(bytes));
        self.outbox_bytes += bytes.len();
        self.flush(name);
        if self.outbox_bytes > OUTBOX_LIMIT && !self.stuck {
            log::warn!(
                "{name}: session {} ({}): {} reply bytes wait for a client that does not read; closing it",
                self.id,
                self.client,
                self.outbox_bytes
            );
            self.stuck = true;
            self.outbox.clear();
            self.outbox_bytes = 0;
        }
    }
}

/// Send `message` on `channel` only if it fits in the ring now; false if
/// it does not (or the channel failed).
fn send_if_room<Tx: Message, Rx: Message>(channel: &mut Channel<Tx, Rx>, message: Tx) -> bool {
    let mut w = libos::wire::Writer::new();
    let mut handles = HandleList::default();
    message.encode(&mut w, &mut handles);
    match channel.endpoint().can_send(w.as_slice().len()) {
        Ok(true) => channel.endpoint_mut().send_raw(w.as_slice(), handles).is_ok(),
        _ => false,
    }
}

/// Everything on the client side of a companion.
pub struct Clients<P: Protocol> {
    name: String,
    public: Listener,
    control: Listener,
    notices: Listener,
    sessions: Vec<Session<P>>,
    next_session: u64,
    controllers: Vec<Channel<control::Reply, control::Request>>,
    subscribers: Vec<(bool, Channel<notices::Reply, notices::Request>)>,
    outbound: BTreeMap<String, Endpoint>,
}

fn decode<M: Message>(bytes: &[u8]) -> Result<M, String> {
    let mut q = HandleQueue::new(Vec::new());
    let mut r = Reader::new(bytes);
    let m = M::decode(&mut r, &mut q).map_err(|e| format!("{e}"))?;
    r.finish().map_err(|e| format!("{e}"))?;
    Ok(m)
}

impl<P: crate::Resilient> Clients<P> {
    /// Register `name`, `name.control` and `name.notices`.
    pub fn register(name: &str) -> Result<Self, String> {
        let reg = |n: String| directory::register(&n).map_err(|e| format!("cannot register {n}: {e}"));
        Ok(Clients {
            name: String::from(name),
            public: directory::register_for(name, P::MAX_REQUEST_BYTES.max(P::MAX_REPLY_BYTES))
                .map_err(|e| format!("cannot register {name}: {e}"))?,
            control: reg(format!("{name}.control"))?,
            notices: reg(format!("{name}.notices"))?,
            sessions: Vec::new(),
            next_session: 1,
            controllers: Vec::new(),
            subscribers: Vec::new(),
            outbound: BTreeMap::new(),
        })
    }

    /// Wait for the service to end, a client or a controller to need
    /// something, or the timeout.
    pub fn wait(&mut self, exit: &Signal, store: Option<&dyn Waitable>, timeout: Option<Duration>) -> Event {
        let name = &self.name;
        let mut waiting = false;
        for s in self.sessions.iter_mut().filter(|s| !s.outbox.is_empty()) {
            s.flush(name);
            waiting |= !s.outbox.is_empty();
        }
        if self.sessions.iter().any(|s| s.stuck) {
            return Event::Clients;
        }
        let crowded =
            5 + self.controllers.len() + self.sessions.len() + self.subscribers.len() > libos::abi::MAX_WAIT_HANDLES;
        let poll = match (waiting, crowded) {
            (_, true) => Some(CROWD_POLL),
            (true, false) => Some(OUTBOX_RETRY),
            (false, false) => None,
        };
        let waiting = poll.is_some();
        let timeout = match (poll, timeout) {
            (None, t) => t,
            (Some(p), Some(t)) => Some(t.min(p)),
            (Some(p), None) => Some(p),
        };
        let mut items: Vec<&dyn Waitable> =
            Vec::from([exit as &dyn Waitable, &self.public, &self.notices, &self.control]);
        let store_at = items.len();
        if let Some(s) = store {
            items.push(s);
        }
        let control_from = items.len();
        items.extend(self.controllers.iter().map(|c| c as &dyn Waitable));
        let clients_from = items.len();
        items.extend(self.sessions.iter().map(|s| &s.endpoint as &dyn Waitable));
        items.extend(self.subscribers.iter().map(|(_, s)| s as &dyn Waitable));
        items.truncate(libos::abi::MAX_WAIT_HANDLES);
        match select(&items, timeout) {
            Ok(0) => Event::ServiceEnded,
            Ok(i) if store.is_some() && i == store_at => Event::Store,
            Ok(i) if (control_from..clients_from).contains(&i) => Event::Control,
            Ok(_) => Event::Clients,
            Err(ChannelError::TimedOut) if waiting => Event::Clients,
            Err(ChannelError::TimedOut) => Event::Timeout,
            Err(e) => {
                log::warn!("{}: select: {e}", self.name);
                Event::Timeout
            }
        }
    }

    /// Accept connections and read every waiting request; returns the work
    /// in order. Requests that break the contract close their session.
    pub fn collect(&mut self, _log: &mut Log) -> VecDeque<Work> {
        let mut work = VecDeque::new();
        while let Ok(Some(c)) = self.public.try_accept() {
            let endpoint = c.endpoint;
            let client: String = c.client.chars().take(64).collect();
            if self.sessions.iter().filter(|s| s.client == client).count() >= MAX_SESSIONS_PER_CLIENT {
                log::warn!(
                    "{}: '{client}' already holds {MAX_SESSIONS_PER_CLIENT} sessions; closing its new connection",
                    self.name
                );
                drop(endpoint);
                continue;
            }
            let id = self.next_session;
            self.next_session += 1;
            self.sessions.push(Session {
                id,
                client,
                endpoint,
                checker: Checker::new(),
                next_seq: 0,
                outbox: VecDeque::new(),
                outbox_bytes: 0,
                stalled_since: None,
                stuck: false,
            });
            work.push_back(Work::Open(id));
        }
        self.accept_control();
        while let Ok(Some(c)) = self.notices.try_accept() {
            let endpoint = c.endpoint;
            self.subscribers.push((false, Channel::new(endpoint)));
        }
        self.subscribers.retain_mut(|(subscribed, ch)| loop {
            match ch.try_recv() {
                Ok(Some(notices::Request::Subscribe)) if !*subscribed => *subscribed = true,
                Ok(Some(_)) => break false,
                Ok(None) => break true,
                Err(_) => break false,
            }
        });
        let name = &self.name;
        self.sessions.retain_mut(|s| {
            s.flush(name);
            if s.stuck {
                work.push_back(Work::Close(s.id));
            }
            !s.stuck
        });
        self.sessions.retain_mut(|s| loop {
            match s.endpoint.try_recv_raw() {
                Ok(Some((bytes, handles))) => {
                    let request = if handles.is_empty() {
                        decode::<P::Request>(&bytes)
                    } else {
                        Err(String::from("handles in a request to a resilient service"))
                    };
                    let checked = request.and_then(|r| s.checker.on_request(&r).map(|_| r).map_err(|v| v.message));
                    match checked {
                        Ok(r) => {
                            let id = (s.id, s.next_seq);
                            s.next_seq += 1;
                            let idempotent = P::idempotent(&r);
                            let durable = P::durable(&r);
                            let checkpoint_after = P::checkpoint_after(&r);
                            work.push_back(Work::Request {
                                id,
                                bytes,
                                idempotent,
                                durable,
                                checkpoint_after,
                                rerun: false,
                            });
                        }
                        Err(m) => {
                            log::warn!("{name}: session {}: {m}; closing it", s.id);
                            work.push_back(Work::Close(s.id));
                            break false;
                        }
                    }
                }
                Ok(None) => break true,
                Err(_) => {
                    work.push_back(Work::Close(s.id));
                    break false;
                }
            }
        });
        work
    }

    /// Accept waiting controllers (`NAME.control` connections).
    pub fn accept_control(&mut self) {
        while let Ok(Some(c)) = self.control.try_accept() {
            self.controllers.push(Channel::new(c.endpoint));
        }
    }

    /// Who connected session `session` (the identity init gave), or empty
    /// if it is closed.
    pub fn identity(&self, session: u64) -> String {
        self.sessions.iter().find(|s| s.id == session).map(|s| s.client.clone()).unwrap_or_default()
    }

    /// Check a reply of the service against the session's protocol (a
    /// reply that does not decode is the service's fault even when its
    /// client is gone).
    pub fn check(&mut self, session: u64, bytes: &[u8]) -> Result<(), String> {
        let reply = decode::<P::Reply>(bytes).map_err(|e| format!("undecodable reply: {e}"))?;
        let Some(s) = self.sessions.iter_mut().find(|s| s.id == session) else { return Ok(()) };
        s.checker.on_reply(&reply).map_err(|v| v.message)
    }

    /// Send a checked reply to the client (dropped if the client is gone;
    /// kept in the session's outbox while its ring is full).
    pub fn send(&mut self, session: u64, bytes: &[u8]) {
        let name = &self.name;
        if let Some(s) = self.sessions.iter_mut().find(|s| s.id == session) {
            s.send(name, bytes);
        }
    }

    /// Number sessions from `first` on (a fresh range each boot, so a
    /// session of this boot never takes the number of one that a
    /// checkpoint or the log from an earlier boot still mentions).
    pub fn number_sessions_from(&mut self, first: u64) {
        self.next_session = first;
    }

    /// Wait as [`Clients::wait`] does, but leave client requests unread
    /// (back-pressure: the log is full).
    pub fn wait_without_requests(&self, exit: &Signal, timeout: Option<Duration>) -> Event {
        let mut items: Vec<&dyn Waitable> = Vec::from([exit as &dyn Waitable, &self.control]);
        items.extend(self.controllers.iter().map(|c| c as &dyn Waitable));
        items.truncate(libos::abi::MAX_WAIT_HANDLES);
        match select(&items, timeout) {
            Ok(0) => Event::ServiceEnded,
            Ok(_) => Event::Control,
            Err(_) => Event::Timeout,
        }
    }

    /// Answer a request that cannot be recovered with the contract's error.
    pub fn fail_request(&mut self, session: u64, reply: P::Reply) {
        if let Some(s) = self.sessions.iter_mut().find(|s| s.id == session) {
            if s.checker.on_reply(&reply).is_ok() {
                let mut w = libos::wire::Writer::new();
                let mut h = HandleList::default();
                reply.encode(&mut w, &mut h);
                s.send(&self.name, w.as_slice());
            }
        }
    }

    /// The next waiting control request and which controller sent it.
    pub fn next_control(&mut self) -> Option<(usize, control::Request)> {
        let mut i = 0;
        while i < self.controllers.len() {
            match self.controllers[i].try_recv() {
                Ok(Some(r)) => return Some((i, r)),
                Ok(None) => i += 1,
                Err(_) => {
                    self.controllers.swap_remove(i);
                }
            }
        }
        None
    }

    /// Answer controller `index` (a controller that does not read its
    /// answers, so that the next one does not fit, is dropped).
    pub fn answer_control(&mut self, index: usize, reply: control::Reply) {
        if let Some(c) = self.controllers.get_mut(index) {
            if !send_if_room(c, reply) {
                log::warn!("{}: a controller does not read its answers; dropping it", self.name);
                self.controllers.swap_remove(index);
            }
        }
    }

    /// Tell the subscribers the service was recovered.
    pub fn notify_recovered(&mut self, restarts: u64, recovery_ns: u64, replayed: u64) {
        let name = &self.name;
        self.subscribers.retain_mut(|(subscribed, ch)| {
            let kept = !*subscribed || send_if_room(ch, notices::Reply::Recovered { restarts, recovery_ns, replayed });
            if !kept {
                log::warn!("{name}: a notice subscriber does not read its notices; dropping it");
            }
            kept
        });
    }

    /// Perform one of the service's calls to another service: `data` is the
    /// service name (u32 length + bytes) then the request bytes; the answer
    /// is a status byte (0 = ok) then the reply bytes.
    pub fn outbound_call(&mut self, data: &[u8]) -> Vec<u8> {
        let mut r = Reader::new(data);
        let (Ok(name), request) = (r.string(64), r.rest()) else { return Vec::from([1]) };
        if !self.outbound.contains_key(&name) {
            match directory::connect(&name, false) {
                Ok(ep) => {
                    self.outbound.insert(name.clone(), ep);
                }
                Err(_) => return Vec::from([2]),
            }
        }
        let Some(ep) = self.outbound.get_mut(&name) else { return Vec::from([2]) };
        let answer =
            ep.send_raw(request, HandleList::default()).and_then(|_| ep.recv_raw(Some(Duration::from_secs(10))));
        match answer {
            Ok((bytes, _)) => {
                let mut out = Vec::from([0u8]);
                out.extend_from_slice(&bytes);
                out
            }
            Err(_) => {
                self.outbound.remove(&name);
                Vec::from([3])
            }
        }
    }
}
