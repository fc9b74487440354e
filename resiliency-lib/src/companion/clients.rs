//! The companion's side facing the world: the three names it registers
//! (the service's own, `NAME.control`, `NAME.notices`), the client sessions
//! with their protocol checkers and sequence numbers, controllers, notice
//! subscribers, and the connections for the service's outbound calls.

use crate::control;
use crate::log::{Log, RequestId};
use crate::notices;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;
use libos::channel::{
    select, Channel, ChannelError, Endpoint, HandleList, HandleQueue, Message, Opaque, Signal, Waitable,
};
use libos::directory::{self, Listener};
use libos::handle::Memory;
use libos::protocol::{Checker, Protocol};
use libos::wire::Reader;

/// Ring bytes per direction of the lanes of the service's calls: room for
/// nic's largest messages (32 frames).
const OUTBOUND_LANE_RING_BYTES: usize = 128 * 1024;

/// Work for the service, in arrival order.
pub enum Work {
    /// A session opened.
    Open(u64),
    /// A session closed.
    Close(u64),
    /// A session's hello brought its shared buffer: hand it to the service.
    Attach(u64),
    /// A session opened a lane: hand its far side to the service.
    Lane(u64, libos::channel::EndpointHandles),
    /// Close every lane (chaos or verification turned on).
    CloseLanes,
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
        /// How long the service may take to answer it (the contract's
        /// `deadline`).
        deadline_ns: u64,
        /// A re-run after a crash (its client may have some replies).
        rerun: bool,
    },
    /// An event the companion originated (`crate::held::Event`).
    Event {
        /// Its number (of session `crate::held::EVENT_SESSION`).
        seq: u64,
        /// Its kind.
        kind: u8,
        /// Its data.
        data: Vec<u8>,
    },
}

/// What woke the companion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// Replies waiting for a client that does not read beyond which its
/// session is dropped at once (the companion's memory is not the client's).
const OUTBOX_MAX_BYTES: usize = 16 << 20;
/// How long a client may leave its replies unread (none taken while some
/// wait) before its session is dropped.
const OUTBOX_STALL_NS: u64 = 10_000_000_000;
/// How often replies waiting for a slow client are tried again.
const OUTBOX_RETRY: Duration = Duration::from_millis(10);
/// Sessions served at most; connections beyond are refused (closed at
/// once, said in the log).
pub const MAX_SESSIONS: usize = 1024;
/// The most sessions one client (by init's identity) may hold open; a
/// connection past it is refused, so one client cannot take them all.
pub const MAX_SESSIONS_PER_CLIENT: usize = 128;

struct Session<P: Protocol> {
    id: u64,
    /// Who connected (the identity init gave).
    client: String,
    endpoint: Endpoint,
    checker: Checker<P>,
    next_seq: u64,
    /// Replies the client's ring had no room for, oldest first: the
    /// companion never waits on a client.
    outbox: VecDeque<Vec<u8>>,
    outbox_bytes: usize,
    /// Since when the client has taken none of its waiting replies.
    stalled_since_ns: u64,
    /// The service was told of the session (at its first message: a
    /// session hello may name it first).
    opened: bool,
    /// A resumed session's request that the previous companion applied:
    /// its number and the replies the replay produced, sent instead of
    /// applying it again when the client sends it again.
    answered: Option<(u64, Vec<Vec<u8>>)>,
    /// The shared buffer the client's hello brought, if any (handed to
    /// every service process; see `crate::shared`).
    shared: Option<Memory>,
}

/// How long sessions of an earlier companion (open in the log it restored)
/// wait for their clients to resume them before they are closed.
const RESUME_GRACE_NS: u64 = 15_000_000_000;

/// A connection to `NAME.control`, and a request read from it that must
/// wait until the service's request in flight is done (see
/// [`Clients::next_control`]).
struct Controller {
    channel: Channel<control::Reply, control::Request>,
    stashed: Option<control::Request>,
}

/// Everything on the client side of a companion.
pub struct Clients<P: Protocol> {
    name: String,
    public: Listener,
    control: Listener,
    notices: Listener,
    sessions: Vec<Session<P>>,
    next_session: u64,
    controllers: Vec<Controller>,
    subscribers: Vec<(bool, Channel<notices::Reply, notices::Request>)>,
    outbound: BTreeMap<String, Channel<Opaque, Opaque>>,
    /// Sessions dropped for not reading, for the service to be told.
    dropped: Vec<u64>,
    /// Sessions an earlier companion had open (the log restored at start
    /// opened them and did not close them), until their clients resume
    /// them or the grace passes: session -> when it is closed.
    orphans: BTreeMap<u64, u64>,
    /// The last request of each session without a connection and the
    /// replies produced for it (by the replay at start): what a resuming
    /// client gets instead of a second application.
    unclaimed: BTreeMap<u64, (u64, Vec<Vec<u8>>)>,
}

/// Decode a client's request or the service's reply to check it against
/// the protocol and classify it (idempotent, durable, its deadline): its
/// byte strings are checked and skipped, not copied (the message goes on
/// as the bytes it came in).
pub(super) fn decode<M: Message>(bytes: &[u8]) -> Result<M, String> {
    let mut q = HandleQueue::new(Vec::new());
    let mut r = Reader::checking(bytes);
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
            dropped: Vec::new(),
            orphans: BTreeMap::new(),
            unclaimed: BTreeMap::new(),
        })
    }

    /// Wait for the service to end, a client or a controller to need
    /// something, or the timeout.
    pub fn wait(&self, exit: &Signal, store: Option<&dyn Waitable>, timeout: Option<Duration>) -> Event {
        let mut items: Vec<&dyn Waitable> =
            Vec::from([exit as &dyn Waitable, &self.public, &self.notices, &self.control]);
        let store_at = items.len();
        if let Some(s) = store {
            items.push(s);
        }
        let control_from = items.len();
        items.extend(self.controllers.iter().map(|c| &c.channel as &dyn Waitable));
        let clients_from = items.len();
        items.extend(self.sessions.iter().map(|s| &s.endpoint as &dyn Waitable));
        items.extend(self.subscribers.iter().map(|(_, s)| s as &dyn Waitable));
        items.truncate(libos::abi::MAX_WAIT_HANDLES);
        match select(&items, timeout) {
            Ok(0) => Event::ServiceEnded,
            Ok(i) if store.is_some() && i == store_at => Event::Store,
            Ok(i) if (control_from..clients_from).contains(&i) => Event::Control,
            Ok(_) => Event::Clients,
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
            if self.sessions.len() >= MAX_SESSIONS {
                log::warn!(
                    "{}: {MAX_SESSIONS} sessions are open; the connection of {} is refused",
                    self.name,
                    c.client
                );
                continue;
            }
            let client: String = c.client.chars().take(64).collect();
            if self.sessions.iter().filter(|s| s.client == client).count() >= MAX_SESSIONS_PER_CLIENT {
                log::warn!(
                    "{}: {client} already holds {MAX_SESSIONS_PER_CLIENT} sessions; its new connection is refused",
                    self.name
                );
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
                stalled_since_ns: 0,
                opened: false,
                answered: None,
                shared: None,
            });
        }
        work.extend(self.dropped.drain(..).map(Work::Close));
        let now = libos::time::now_ns();
        let expired: Vec<u64> = self.orphans.iter().filter(|(_, until)| **until <= now).map(|(s, _)| *s).collect();
        for session in expired {
            self.orphans.remove(&session);
            self.unclaimed.remove(&session);
            log::info!("{}: session {session} of an earlier companion was not resumed; closing it", self.name);
            work.push_back(Work::Close(session));
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
        let live: Vec<u64> = self.sessions.iter().filter(|s| s.opened).map(|s| s.id).collect();
        let (orphans, unclaimed) = (&mut self.orphans, &mut self.unclaimed);
        let mut answers: Vec<(u64, Vec<Vec<u8>>)> = Vec::new();
        self.sessions.retain_mut(|s| loop {
            match s.endpoint.try_recv_raw() {
                Ok(Some((bytes, mut handles))) => {
                    if !s.opened {
                        s.opened = true;
                        match libos::channel::resume::parse_hello(&bytes) {
                            Some((token, _)) if live.contains(&token) || token == 0 => {
                                log::warn!("{name}: a session hello names session {token}, which is open; refused");
                                break false;
                            }
                            Some((token, next_seq)) => {
                                let shared = match hello_buffer(core::mem::take(&mut handles)) {
                                    Ok(shared) => shared,
                                    Err(why) => {
                                        log::warn!("{name}: session {token}'s hello: {why}; refused");
                                        break false;
                                    }
                                };
                                s.id = token;
                                s.next_seq = next_seq;
                                // A session the restored log mentions is
                                // open in the service; one opened before the
                                // checkpoint it restored is too, but the log
                                // cannot tell: opening it again is harmless.
                                if orphans.remove(&token).is_some() {
                                    log::info!("{name}: session {token} resumed at request {next_seq}");
                                } else {
                                    work.push_back(Work::Open(token));
                                }
                                s.answered = unclaimed.remove(&token).filter(|(seq, _)| *seq == next_seq);
                                if shared.is_some() {
                                    s.shared = shared;
                                    work.push_back(Work::Attach(token));
                                }
                                continue;
                            }
                            None => work.push_back(Work::Open(s.id)),
                        }
                    }
                    if libos::channel::lane::is_lane_frame(&bytes) {
                        let mut q = libos::channel::HandleQueue::new(core::mem::take(&mut handles));
                        match libos::channel::EndpointHandles::take(&mut q, 1) {
                            Ok(lane) if q.is_empty() => work.push_back(Work::Lane(s.id, lane)),
                            _ => {
                                log::warn!(
                                    "{name}: session {}: a lane frame without a lane's handles; closing it",
                                    s.id
                                );
                                work.push_back(Work::Close(s.id));
                                break false;
                            }
                        }
                        continue;
                    }
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
                            if s.answered.as_ref().is_some_and(|(seq, _)| *seq == id.1) {
                                if let Some((_, replies)) = s.answered.take() {
                                    log::info!(
                                        "{name}: request {} of session {} was applied before; answered again",
                                        id.1,
                                        id.0
                                    );
                                    answers.push((id.0, replies));
                                }
                                continue;
                            }
                            let idempotent = P::idempotent(&r);
                            let durable = P::durable(&r);
                            let checkpoint_after = P::checkpoint_after(&r);
                            let deadline_ns = P::deadline_ms(&r) as u64 * 1_000_000;
                            work.push_back(Work::Request {
                                id,
                                bytes,
                                idempotent,
                                durable,
                                checkpoint_after,
                                deadline_ns,
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
                    if s.opened {
                        work.push_back(Work::Close(s.id));
                    }
                    break false;
                }
            }
        });
        for (session, replies) in answers {
            for reply in replies {
                if let Err(m) = self.check(session, &reply) {
                    log::warn!("{}: a stored reply for session {session} does not follow the protocol: {m}", self.name);
                    break;
                }
                self.send(session, &reply);
            }
        }
        work
    }

    /// Sessions an earlier companion left open (the log restored at start
    /// opened them): they wait a while for their clients to resume them.
    pub fn await_resumes(&mut self, sessions: impl IntoIterator<Item = u64>) {
        let until = libos::time::now_ns() + RESUME_GRACE_NS;
        for session in sessions {
            self.orphans.insert(session, until);
        }
    }

    /// Whether `session` has a connection now.
    pub fn is_live(&self, session: u64) -> bool {
        self.sessions.iter().any(|s| s.id == session)
    }

    /// Keep a reply produced for `id` while its session has no connection
    /// (the replay at start): a resuming client gets it instead of a second
    /// application of the request. Only the last request of a session is
    /// kept (a client has one request unanswered at most).
    pub fn keep_unclaimed(&mut self, id: RequestId, reply: &[u8]) {
        let entry = self.unclaimed.entry(id.0).or_insert_with(|| (id.1, Vec::new()));
        if entry.0 != id.1 {
            *entry = (id.1, Vec::new());
        }
        entry.1.push(reply.to_vec());
    }

    /// Session `session` closed: nothing it left unclaimed is kept.
    pub fn forget(&mut self, session: u64) {
        self.unclaimed.remove(&session);
        self.orphans.remove(&session);
    }

    /// Accept waiting controllers (`NAME.control` connections).
    pub fn accept_control(&mut self) {
        while let Ok(Some(c)) = self.control.try_accept() {
            self.controllers.push(Controller { channel: Channel::new(c.endpoint), stashed: None });
        }
    }

    /// A new handle to session `session`'s shared buffer, if it has one.
    pub fn shared_buffer(&self, session: u64) -> Option<libos::handle::OwnedHandle> {
        let s = self.sessions.iter().find(|s| s.id == session)?;
        s.shared.as_ref()?.0.duplicate(libos::channel::resume::SHARED_RIGHTS).ok()
    }

    /// The sessions that have a shared buffer.
    pub fn sessions_sharing(&self) -> Vec<u64> {
        self.sessions.iter().filter(|s| s.shared.is_some()).map(|s| s.id).collect()
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

    /// Send a checked reply to the client (dropped if the client is gone).
    /// Never waits: a reply the client's ring has no room for waits in the
    /// session's outbox ([`Clients::flush_outboxes`]).
    pub fn send(&mut self, session: u64, bytes: &[u8]) {
        let Some(i) = self.sessions.iter().position(|s| s.id == session) else { return };
        let s = &mut self.sessions[i];
        if s.outbox.is_empty() {
            match s.endpoint.try_send_raw(bytes) {
                Ok(true) | Err(_) => return,
                Ok(false) => s.stalled_since_ns = libos::time::now_ns(),
            }
        }
        s.outbox_bytes += bytes.len();
        s.outbox.push_back(bytes.to_vec());
        if s.outbox_bytes > OUTBOX_MAX_BYTES {
            let s = self.sessions.swap_remove(i);
            self.drop_session(s, "has more than 16 MiB of replies unread");
        }
    }

    /// Send what waits in the outboxes as far as the clients made room;
    /// drop the sessions of clients that took nothing for too long.
    pub fn flush_outboxes(&mut self) {
        let now = libos::time::now_ns();
        let mut stalled = Vec::new();
        for (i, s) in self.sessions.iter_mut().enumerate().filter(|(_, s)| !s.outbox.is_empty()) {
            while let Some(front) = s.outbox.front() {
                match s.endpoint.try_send_raw(front) {
                    Ok(true) => {
                        s.outbox_bytes -= front.len();
                        s.outbox.pop_front();
                        s.stalled_since_ns = now;
                    }
                    Ok(false) => break,
                    Err(_) => {
                        // The client is gone: collect closes the session.
                        s.outbox.clear();
                        s.outbox_bytes = 0;
                    }
                }
            }
            if !s.outbox.is_empty() && now.saturating_sub(s.stalled_since_ns) > OUTBOX_STALL_NS {
                stalled.push(i);
            }
        }
        for i in stalled.into_iter().rev() {
            let s = self.sessions.swap_remove(i);
            self.drop_session(s, "has not read its replies for 10 s");
        }
    }

    /// Drop session `s` of a client that does not read its replies: its
    /// endpoint closes now (the client sees the connection end) and the
    /// service is told the session closed at the next collect; everyone
    /// else carries on.
    fn drop_session(&mut self, s: Session<P>, why: &str) {
        log::warn!("{}: session {} of {} {why}; dropping it", self.name, s.id, s.client);
        self.dropped.push(s.id);
    }

    /// How soon the companion must look again: replies wait for a slow
    /// client, or more sessions are open than one wait can watch (those
    /// beyond are read at every wake-up, so a short timeout serves them).
    pub fn poll_interval(&self) -> Option<Duration> {
        let watched = 4 + self.controllers.len() + self.sessions.len() + self.subscribers.len();
        let waiting = self.sessions.iter().any(|s| !s.outbox.is_empty()) || !self.dropped.is_empty();
        if waiting || watched >= libos::abi::MAX_WAIT_HANDLES {
            return Some(OUTBOX_RETRY);
        }
        // Sessions waiting to be resumed are closed when their grace ends.
        (!self.orphans.is_empty()).then_some(Duration::from_millis(500))
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
        items.extend(self.controllers.iter().map(|c| &c.channel as &dyn Waitable));
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
                let _ = s.endpoint.send_raw(w.as_slice(), h);
            }
        }
    }

    /// The next waiting control request of a kind `allowed` lets through,
    /// and which controller sent it (a controller's request of another
    /// kind is stashed until a later call allows it).
    pub fn next_control(&mut self, allowed: impl Fn(&control::Request) -> bool) -> Option<(usize, control::Request)> {
        let mut i = 0;
        while i < self.controllers.len() {
            let c = &mut self.controllers[i];
            if let Some(r) = c.stashed.take() {
                if allowed(&r) {
                    return Some((i, r));
                }
                c.stashed = Some(r);
                i += 1;
                continue;
            }
            match c.channel.try_recv() {
                Ok(Some(r)) if allowed(&r) => return Some((i, r)),
                Ok(Some(r)) => {
                    c.stashed = Some(r);
                    i += 1;
                }
                Ok(None) => i += 1,
                Err(_) => {
                    self.controllers.swap_remove(i);
                }
            }
        }
        None
    }

    /// Whether a control request waits for the request in flight to end.
    pub fn control_stashed(&self) -> bool {
        self.controllers.iter().any(|c| c.stashed.is_some())
    }

    /// Answer controller `index` (one that does not read its answers is
    /// dropped rather than waited for).
    pub fn answer_control(&mut self, index: usize, reply: control::Reply) {
        if let Some(c) = self.controllers.get_mut(index) {
            match c.channel.try_send(reply) {
                Ok(true) => {}
                // It stopped waiting (`ps` gives up on a busy companion).
                Err(ChannelError::PeerClosed) => {
                    self.controllers.swap_remove(index);
                }
                _ => {
                    log::warn!("{}: a controller does not read its answers; dropping it", self.name);
                    self.controllers.swap_remove(index);
                }
            }
        }
    }

    /// Tell the subscribers the service was recovered (one that does not
    /// read its notices is dropped rather than waited for).
    pub fn notify_recovered(&mut self, restarts: u64, recovery_ns: u64, replayed: u64) {
        let name = &self.name;
        self.subscribers.retain_mut(|(subscribed, ch)| {
            if !*subscribed {
                return true;
            }
            let sent = matches!(ch.try_send(notices::Reply::Recovered { restarts, recovery_ns, replayed }), Ok(true));
            if !sent {
                log::warn!("{name}: a notices subscriber does not read its notices (or is gone); dropping it");
            }
            sent
        });
    }

    /// Start one of the service's calls to another service: `data` is the
    /// service name (u32 length + bytes) then the request bytes. Returns
    /// the callee's name, whose answer [`Clients::outbound_poll`] takes,
    /// or at once the answer of a call that failed. An answer is a status
    /// byte (0 ok, 1 malformed, 2 no such service, 3 failed, 4 timed out:
    /// the callee may have applied it, 5 no such call) then the reply
    /// bytes. A callee behind a companion is called over a resumable
    /// session (a restart of its companion costs only delay), with a lane
    /// (libos `channel::lane`) for a callee that takes lanes; the
    /// connection is kept for the next call and for
    /// [`Clients::outbound_next`].
    pub fn outbound_call(&mut self, data: &[u8]) -> Result<String, Vec<u8>> {
        let mut r = Reader::new(data);
        let (Ok(name), request) = (r.string(64), r.rest()) else { return Err(Vec::from([1])) };
        if !self.outbound.contains_key(&name) {
            let resilient = directory::services().is_ok_and(|names| names.contains(&format!("{name}.control")));
            let channel = match directory::connect(&name, false) {
                // A lane is tried for every request: a callee that takes
                // lanes (nic, blk: all their requests idempotent) answers
                // on it, past its companion; one that does not closes it,
                // and the request goes through its companion.
                Ok(ep) if resilient => Channel::resumable_over(ep, &name)
                    .map(|c| c.with_lane(|_| true, OUTBOUND_LANE_RING_BYTES))
                    .map_err(|_| ()),
                Ok(ep) => Ok(Channel::new(ep)),
                Err(_) => Err(()),
            };
            match channel {
                Ok(ch) => {
                    self.outbound.insert(name.clone(), ch);
                }
                Err(()) => return Err(Vec::from([2])),
            }
        }
        let Some(ch) = self.outbound.get_mut(&name) else { return Err(Vec::from([2])) };
        if ch.send(Opaque(request.to_vec())).is_err() {
            self.outbound.remove(&name);
            return Err(Vec::from([3]));
        }
        Ok(name)
    }

    /// Wait for the next reply of the answer to the last call to the
    /// service named in `data`: the name, as [`Clients::outbound_call`].
    pub fn outbound_next(&mut self, data: &[u8]) -> Result<String, Vec<u8>> {
        let Ok(name) = Reader::new(data).string(64) else { return Err(Vec::from([1])) };
        if !self.outbound.contains_key(&name) {
            return Err(Vec::from([5]));
        }
        Ok(name)
    }

    /// The answer of the call to `name` if it is there (or the call failed).
    pub fn outbound_poll(&mut self, name: &str) -> Option<Vec<u8>> {
        let Some(ch) = self.outbound.get_mut(name) else { return Some(Vec::from([5])) };
        // A zero wait rather than `try_recv`: a resumable channel resumes
        // its session (the callee's companion restarted) in a receive.
        match ch.recv_timeout(Duration::ZERO) {
            Ok(Opaque(bytes)) => {
                let mut out = Vec::from([0u8]);
                out.extend_from_slice(&bytes);
                Some(out)
            }
            Err(ChannelError::TimedOut) => None,
            Err(_) => {
                // Later replies would answer the wrong call: a new
                // connection for the next one.
                self.outbound.remove(name);
                Some(Vec::from([3]))
            }
        }
    }

    /// The call to `name` waited too long: its answer, if it comes, would
    /// answer the wrong call, so the connection goes.
    pub fn outbound_abandon(&mut self, name: &str) -> Vec<u8> {
        self.outbound.remove(name);
        Vec::from([4])
    }

    /// Wait while the service waits for the answer of its call to `name`:
    /// for that answer, and for clients and controllers, which the
    /// companion serves meanwhile as far as it can without the service.
    pub fn wait_during_call(&self, name: &str, timeout: Duration) -> Event {
        let mut items: Vec<&dyn Waitable> = Vec::new();
        if let Some(ch) = self.outbound.get(name) {
            items.push(ch);
        }
        let call_items = items.len();
        items.extend([&self.public as &dyn Waitable, &self.control]);
        items.extend(self.controllers.iter().map(|c| &c.channel as &dyn Waitable));
        items.extend(self.sessions.iter().map(|s| &s.endpoint as &dyn Waitable));
        items.truncate(libos::abi::MAX_WAIT_HANDLES);
        match select(&items, Some(timeout)) {
            Ok(i) if i < call_items => Event::Timeout,
            Ok(_) => Event::Clients,
            Err(_) => Event::Timeout,
        }
    }
}

/// The shared buffer among the handles of a session hello: none, or one
/// memory object of at most `MAX_SHARED_BYTES`.
fn hello_buffer(handles: Vec<libos::handle::OwnedHandle>) -> Result<Option<Memory>, &'static str> {
    let mut handles = handles.into_iter();
    let Some(h) = handles.next() else { return Ok(None) };
    if handles.next().is_some() {
        return Err("more than one handle in a session hello");
    }
    let memory = Memory(h);
    match memory.pages() {
        Ok(pages) if pages as usize * libos::abi::PAGE_SIZE as usize <= libos::channel::resume::MAX_SHARED_BYTES => {
            Ok(Some(memory))
        }
        Ok(_) => Err("a shared buffer larger than a session may have"),
        Err(_) => Err("a hello's handle that is not a memory object"),
    }
}
