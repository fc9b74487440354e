//! The httpd service: the [`Server`] core as a resilient service under its
//! companion, serving `/www` on the data disk ([`FsFiles`]) over the `net`
//! service's sockets.
//!
//! It is driven by timer ticks: on each tick its companion sends (every
//! [`Httpd::TICK_MS`] while a connection is open, every [`IDLE_TICK_MS`]
//! while none is), it asks net which of its sockets are ready (one `Wait`
//! for the listener and every connection, which net holds for up to a
//! tick interval and answers as soon as one is ready),
//! accepts, receives, feeds the server, and sends what the sockets take,
//! reading files a chunk at a time. Then it waits on net again and goes
//! on (a `Wait` of [`BURST_WAIT_MS`] while output is left that net did not
//! take, else of a tick), for at most [`BURST_ROUNDS`] rounds, until a
//! round finds nothing ready, or until the tick has handed net
//! [`TICK_BYTES`] (what one tick records must stay small): a download is
//! not held to one socket send buffer per tick, nor a kept-alive
//! connection to one request. Every call to net and fs goes through
//! the companion (`resiliency_lib::service::call`), which makes and
//! records it, on sessions that outlive httpd's process. The whole state
//! (the listener, each connection with its socket number, its unparsed
//! input, queued responses with their files and offsets, output not yet
//! taken by net; the open file handles; the `/status` figures) is saved
//! as bytes at each checkpoint, so after a crash the companion restores it
//! and replays the ticks since with their recorded answers: every
//! connection carries on where it was, and no byte is sent twice.
//!
//! If net answers that the sockets are unknown (net started a new session
//! for the companion: the old one and its sockets are gone), httpd drops
//! its connections and listens again. If httpd starts fresh while net
//! keeps its old sockets (its state was lost), the port is in use: it
//! closes the lost sockets and listens again.
//!
//! A missing `/www` is created with the default [`site`](crate::site)
//! (built in `/www-new`, then renamed); an existing `/www` is served as it
//! is. `/status` shows the figures of the resilient services named in
//! [`STATUS_SERVICES`], asked of their companions once a second.

use crate::codec::{Damaged, Dec, Enc};
use crate::files::{FileSource, FsError};
use crate::fsfiles::FsFiles;
use crate::protocol::{dispatch, Httpd as HttpdProtocol, HttpdHandler, Reply as HttpdReply};
use crate::status::ServiceFigures;
use crate::{Config, Server};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use libos::channel::{HandleList, HandleQueue, Message};
use libos::protocol::ReplySink;
use net::protocol::{Reply, Request};
use net::{code, ready};
use resiliency_lib::control::{Reply as ControlReply, Request as ControlRequest};
use resiliency_lib::service::{self, Event, RequestOf, Service};

/// The port served.
const PORT: u16 = 80;
/// Most bytes handed to one `Send`.
const SEND_MAX: usize = 60 * 1024;
/// Connections waiting to be accepted.
const BACKLOG: u16 = 16;
/// Most connections served at once (one `Wait` names at most 256 sockets,
/// the listener included); more wait in net's backlog.
const MAX_CONNECTIONS: usize = 250;
/// Rounds of waiting on net and sending after a tick's first, at most
/// (see `Httpd::tick`).
const BURST_ROUNDS: usize = 32;
/// How long one of those rounds waits for a socket to be ready (ms).
const BURST_WAIT_MS: u32 = 5;
/// Most bytes one tick hands to net. Every file chunk a tick reads is
/// recorded in the companion's log until the tick ends (a checkpoint
/// comes only between ticks), so a tick is bounded by bytes, not only by
/// rounds: 50 connections draining 60 KiB a round for 33 rounds recorded
/// about 100 MiB in one tick, and the companion ran out of memory
/// replaying it after a crash. Well under the companion's 3 MiB log
/// threshold, so a checkpoint follows within a tick or two.
const TICK_BYTES: usize = 1 << 20;
/// How often the status figures are refreshed (ms).
const FIGURES_MS: u64 = 1000;
/// The resilient services whose figures `/status` shows (their companions
/// are asked through `NAME.control`; absent ones are left out). httpd's
/// own companion answers httpd's own call itself: it is busy delivering
/// the tick that asks.
pub const STATUS_SERVICES: [&str; 9] = ["blk", "nic", "net", "httpd", "vault", "kv", "fs", "tally", "waiter"];
/// The folder served, and where a missing one is built first.
const ROOT: &str = "/www";
const ROOT_NEW: &str = "/www-new";

/// At the start of the saved state ("HTTPD001").
const MAGIC: u64 = 0x3130_3044_5054_5448;

/// The service's state.
pub struct Httpd {
    server: Server,
    files: FsFiles,
    /// `/www` exists.
    site_ready: bool,
    /// The listening socket.
    listener: Option<u32>,
    /// After a refused `Listen` (no network yet, or none at all), the time
    /// of the next try (ms).
    listen_at_ms: Option<u64>,
    /// When the figures were last refreshed (ms).
    refreshed_ms: Option<u64>,
    /// Connections opened and closed (the invariant: their difference is
    /// the server's open connections).
    opened: u64,
    closed: u64,
    /// The last problem logged (each is logged once, not every tick).
    problem: String,
    /// Bytes handed to net in this tick (see [`TICK_BYTES`]); a tick
    /// starts at 0 and checkpoints fall between ticks, so it is not saved.
    tick_bytes: usize,
}

fn encode<M: Message>(m: M) -> Vec<u8> {
    let mut w = libos::wire::Writer::new();
    m.encode(&mut w, &mut HandleList::default());
    w.finish()
}

fn decode<M: Message>(bytes: &[u8]) -> Option<M> {
    let mut r = libos::wire::Reader::new(bytes);
    let mut q = HandleQueue::new(Vec::new());
    M::decode(&mut r, &mut q).ok()
}

/// Ask net (a recorded call); its reply, or why there is none.
fn net_call(request: Request) -> Result<Reply, String> {
    let bytes = service::call(net::SERVICE, &encode(request)).map_err(|e| format!("net did not answer ({e:?})"))?;
    decode(&bytes).ok_or_else(|| String::from("net's answer does not decode"))
}

/// The figures of every service in [`STATUS_SERVICES`] that answers.
fn figures() -> Vec<ServiceFigures> {
    let ask = encode(ControlRequest::Stats {});
    let mut out = Vec::new();
    for name in STATUS_SERVICES {
        let Ok(bytes) = service::call(&format!("{name}.control"), &ask) else { continue };
        if let Some(ControlReply::Figures {
            pid,
            restarts,
            checkpoints,
            log_len,
            last_recovery_ns,
            requests,
            injected,
            ..
        }) = decode(&bytes)
        {
            out.push(ServiceFigures {
                name: String::from(name),
                pid,
                restarts,
                checkpoints,
                log_len,
                last_recovery_ns,
                requests,
                injected,
            });
        }
    }
    out
}

impl Httpd {
    /// Log a problem once (until another one, or none, comes).
    fn problem(&mut self, what: String) {
        if self.problem != what {
            log::warn!("{what}");
            self.problem = what;
        }
    }

    /// `/www` exists, or is made with the default site.
    fn prepare_site(&mut self) -> Result<(), String> {
        match self.files.stat(ROOT) {
            Ok(m) if m.is_dir => return Ok(()),
            Ok(_) => return Err(format!("{ROOT} on the data disk is a file, not a folder")),
            Err(FsError::NotFound) => {}
            Err(FsError::Other(e)) => return Err(format!("{ROOT}: {e}")),
        }
        let err = |e: FsError| format!("making the site in {ROOT_NEW}: {e:?}");
        self.files.mkdir(ROOT_NEW).map_err(err)?;
        for folder in crate::site::FOLDERS {
            self.files.mkdir(&format!("{ROOT_NEW}{folder}")).map_err(err)?;
        }
        for (path, data) in crate::site::files() {
            self.files.create(&format!("{ROOT_NEW}{path}"), &data).map_err(err)?;
        }
        self.files.rename(ROOT_NEW, ROOT).map_err(err)?;
        self.files.sync().map_err(err)?;
        log::info!("{ROOT} was missing on the data disk: made it with the default site");
        Ok(())
    }

    /// The interval between ticks (ms), which is also how long a tick's
    /// first wait on net lasts: [`IDLE_TICK_MS`] with no connection open
    /// (a new one is accepted as soon as net sees it, since httpd waits on
    /// the listener in net), else [`Httpd::TICK_MS`].
    fn tick_interval_ms(&self) -> u64 {
        if self.server.connections() == 0 {
            IDLE_TICK_MS
        } else {
            Self::TICK_MS
        }
    }

    fn tick(&mut self, now_ms: u64) {
        self.tick_bytes = 0;
        self.files.tick(now_ms);
        if !self.site_ready {
            match self.prepare_site() {
                Ok(()) => self.site_ready = true,
                Err(e) => return self.problem(e),
            }
        }
        let listener = match self.listener {
            Some(l) => l,
            None if self.listen_at_ms.is_some_and(|t| now_ms < t) => return,
            None => match self.listen() {
                Some(l) => l,
                None => {
                    self.listen_at_ms = Some(now_ms + LISTEN_RETRY_MS);
                    return;
                }
            },
        };
        if self.refreshed_ms.is_none_or(|t| now_ms >= t + FIGURES_MS) {
            self.server.board.update(now_ms, figures());
            self.refreshed_ms = Some(now_ms);
        }
        // Every round waits on net (net holds the `Wait` and answers as
        // soon as a socket is ready): httpd spends its time waiting there
        // rather than between ticks, so a new connection or a request is
        // taken within a tick of net's, not at httpd's next tick (up to
        // 100 ms while idle). The first round waits about a tick. Rounds
        // go on while each finds something ready, for a bounded number of
        // rounds and bytes: a tick then moves as much as net drains (not
        // one socket send buffer per tick, which held a download to 32 KiB
        // per 10 ms tick), and a kept-alive connection's next request is
        // taken in the same tick. While output waits for room a round
        // waits [`BURST_WAIT_MS`], else a tick. The rounds are counted,
        // not timed, so a replay makes the same calls; a round in which
        // nothing became ready ends the tick, so a slow reader holds it up
        // for one wait at most.
        let mut ready = self.poll(listener, now_ms, self.tick_interval_ms() as u32);
        for _ in 0..BURST_ROUNDS {
            if !ready || self.listener != Some(listener) || self.tick_bytes >= TICK_BYTES {
                break;
            }
            let writing = self.server.connection_ids().any(|c| self.server.wants_write(c));
            ready = self.poll(listener, now_ms, if writing { BURST_WAIT_MS } else { Self::TICK_MS as u32 });
        }
    }

    fn listen(&mut self) -> Option<u32> {
        let mut answer = net_call(Request::Listen { port: PORT, backlog: BACKLOG });
        let mut reclaimed = 0;
        if matches!(answer, Ok(Reply::Failed { code: code::IN_USE, .. })) {
            reclaimed = self.reclaim_port();
            if reclaimed > 0 {
                answer = net_call(Request::Listen { port: PORT, backlog: BACKLOG });
            }
        }
        match answer {
            Ok(Reply::Socket { socket }) => {
                if reclaimed > 0 {
                    log::warn!("httpd started afresh while net kept its sockets: closed {reclaimed} lost ones");
                }
                log::info!("serving http on port {PORT}");
                self.problem.clear();
                self.listener = Some(socket);
                Some(socket)
            }
            Ok(other) => {
                self.problem(format!("cannot listen on port {PORT}: {other:?}"));
                None
            }
            Err(e) => {
                self.problem(e);
                None
            }
        }
    }

    /// The port is in use, and httpd knows no socket (it starts fresh: its
    /// state was lost, while net kept the sockets of the companion's
    /// session, its old listener among them, and connections nobody serves
    /// any more). If a listener on the port is in the list net gives, close
    /// every socket of that listener's session by number: in httpd's own
    /// session, which holds no socket httpd knows, each is a lost one; a
    /// number it does not hold closes nothing. How many were closed.
    fn reclaim_port(&mut self) -> usize {
        if self.server.connections() > 0 {
            return 0;
        }
        let Ok(Reply::SocketList { sessions, sockets, states, local, .. }) = net_call(Request::Sockets {}) else {
            return 0;
        };
        let port = format!(":{PORT}");
        let held = (0..sessions.len().min(states.len()).min(local.len()))
            .find(|&i| states[i].starts_with("listen") && local[i].ends_with(&port));
        let Some(owner) = held.map(|i| sessions[i]) else { return 0 };
        let lost: Vec<u32> = sessions.iter().zip(&sockets).filter(|(s, _)| **s == owner).map(|(_, n)| *n).collect();
        for socket in &lost {
            let _ = net_call(Request::Close { socket: *socket, abort: true });
        }
        lost.len()
    }

    /// Net no longer knows the sockets: forget them, listen again.
    fn sockets_lost(&mut self) {
        log::warn!("net no longer knows httpd's sockets (a new session): its connections are dropped");
        let conns: Vec<u32> = self.server.connection_ids().collect();
        for c in conns {
            self.server.close(c);
            self.closed += 1;
        }
        self.listener = None;
    }

    /// One round: ask net which sockets are ready (waiting up to
    /// `wait_ms` for one), accept, receive, send what can go, drop what is
    /// done. Whether any socket was ready.
    fn poll(&mut self, listener: u32, now_ms: u64, wait_ms: u32) -> bool {
        let conns: Vec<u32> = self.server.connection_ids().collect();
        let mut sockets = Vec::from([listener]);
        let mut interests = Vec::from([if conns.len() < MAX_CONNECTIONS { ready::ACCEPTABLE } else { 0 }]);
        for c in &conns {
            let mut i = 0;
            if self.server.wants_read(*c) {
                i |= ready::READABLE;
            }
            if self.server.wants_write(*c) {
                i |= ready::WRITABLE;
            }
            sockets.push(*c);
            interests.push(i);
        }
        let events = match net_call(Request::Wait { sockets, interests, timeout_ms: wait_ms }) {
            Ok(Reply::Events { sockets, events }) => sockets.into_iter().zip(events).collect::<Vec<_>>(),
            Ok(Reply::Failed { code: code::NO_SOCKET, .. }) => {
                self.sockets_lost();
                return false;
            }
            Ok(other) => {
                self.problem(format!("wait: {other:?}"));
                return false;
            }
            Err(e) => {
                self.problem(e);
                return false;
            }
        };
        let any = !events.is_empty();
        for (socket, ev) in events {
            if socket == listener {
                self.accept_all(listener, now_ms);
                continue;
            }
            if ev & (ready::READABLE | ready::ENDED) != 0 {
                if let Err(why) = self.receive(socket, now_ms) {
                    self.drop_conn(socket, Some(why));
                    continue;
                }
            }
            if ev & ready::ENDED != 0 && !self.server.wants_write(socket) {
                self.drop_conn(socket, None);
            }
        }
        // Send what can go now, on every connection with something to
        // send, until the tick's bytes are spent. Which connection goes
        // first turns with the tick's time (a recorded input, so a replay
        // makes the same calls): the budget does not always go to the
        // same few.
        let mut busy: Vec<u32> = self.server.connection_ids().filter(|c| self.server.wants_write(*c)).collect();
        if !busy.is_empty() {
            let first = (now_ms / Self::TICK_MS) as usize % busy.len();
            busy.rotate_left(first);
        }
        for c in busy {
            if let Err(why) = self.pump(c, now_ms) {
                self.drop_conn(c, Some(why));
            }
        }
        for c in self.server.on_timer(now_ms) {
            let why = format!("nothing sent for {} s", self.server.send_timeout_ms() / 1000);
            self.drop_conn(c, Some(why));
        }
        let done: Vec<u32> = self.server.connection_ids().filter(|c| self.server.finished(*c)).collect();
        for c in done {
            self.drop_conn(c, None);
        }
        any
    }

    fn accept_all(&mut self, listener: u32, now_ms: u64) {
        while self.server.connections() < MAX_CONNECTIONS {
            match net_call(Request::Accept { socket: listener, wait_ms: 0 }) {
                Ok(Reply::Accepted { socket, .. }) => {
                    self.server.open(socket, now_ms);
                    self.opened += 1;
                }
                Ok(Reply::NotReady) => return,
                Ok(Reply::Failed { code: code::NO_SOCKET, .. }) => return self.sockets_lost(),
                Ok(other) => return self.problem(format!("accept: {other:?}")),
                Err(e) => return self.problem(e),
            }
        }
    }

    /// Take what arrived on `socket`; why not if the connection broke.
    fn receive(&mut self, socket: u32, now_ms: u64) -> Result<(), String> {
        if !self.server.wants_read(socket) {
            return Ok(());
        }
        match net_call(Request::Receive { socket, max: 65536, wait_ms: 0 }) {
            Ok(Reply::Received { data, end }) => {
                self.server.on_data(socket, &data, now_ms, &mut self.files);
                if end {
                    self.server.on_end(socket);
                }
                Ok(())
            }
            Ok(Reply::NotReady) => Ok(()),
            Ok(other) => Err(format!("net answered a receive with {other:?}")),
            // Net is gone or restarting: try again on the next tick.
            Err(e) => {
                self.problem(e);
                Ok(())
            }
        }
    }

    /// Send what the server has for `socket` while the socket takes it;
    /// why not if the connection broke.
    fn pump(&mut self, socket: u32, now_ms: u64) -> Result<(), String> {
        loop {
            if self.tick_bytes >= TICK_BYTES {
                return Ok(());
            }
            let out = self.server.pending(socket, SEND_MAX, &mut self.files);
            if out.is_empty() {
                return Ok(());
            }
            let len = out.len().min(SEND_MAX);
            let data = out[..len].to_vec();
            match net_call(Request::Send { socket, data, wait_ms: 0 }) {
                Ok(Reply::Sent { count }) => {
                    self.tick_bytes += count as usize;
                    self.server.sent(socket, count as usize, now_ms, &mut self.files);
                    if (count as usize) < len {
                        return Ok(());
                    }
                }
                Ok(Reply::NotReady) => return Ok(()),
                Ok(other) => return Err(format!("net answered a send with {other:?}")),
                Err(e) => {
                    self.problem(e);
                    return Ok(());
                }
            }
        }
    }

    /// Close `socket`: gracefully, or broken off (a reset) for `broken`'s
    /// reason, which the console gets.
    fn drop_conn(&mut self, socket: u32, broken: Option<String>) {
        if !self.server.is_open(socket) {
            return;
        }
        let abort = broken.is_some();
        if let Some(why) = broken {
            log::warn!("connection {socket} broken off: {why}");
        }
        let _ = net_call(Request::Close { socket, abort });
        self.server.close(socket);
        self.closed += 1;
    }

    fn save_to(&self, e: &mut Enc) {
        e.u64(MAGIC).bool(self.site_ready).opt(self.listener.map(u64::from)).opt(self.listen_at_ms);
        e.opt(self.refreshed_ms);
        e.u64(self.opened).u64(self.closed).str(&self.problem);
        self.files.save(e);
        self.server.save(e);
    }

    fn restore_from(d: &mut Dec) -> Result<Httpd, Damaged> {
        if d.u64()? != MAGIC {
            return Err(Damaged("not a saved httpd"));
        }
        let site_ready = d.bool()?;
        let listener = match d.opt()? {
            Some(l) => Some(u32::try_from(l).map_err(|_| Damaged("a socket number is out of range"))?),
            None => None,
        };
        let h = Httpd {
            site_ready,
            listener,
            listen_at_ms: d.opt()?,
            refreshed_ms: d.opt()?,
            opened: d.u64()?,
            closed: d.u64()?,
            problem: d.str()?,
            tick_bytes: 0,
            files: FsFiles::restore(d)?,
            server: Server::restore(Config::default(), d)?,
        };
        d.end()?;
        Ok(h)
    }
}

impl HttpdHandler for Httpd {
    fn figures(&mut self, out: &mut dyn ReplySink<HttpdReply>) {
        let c = self.server.counters();
        out.reply(HttpdReply::Counts {
            open: self.server.connections() as u32,
            connections: c.connections,
            ok: c.ok,
            client_errors: c.client_errors,
            server_errors: c.server_errors,
            file_bytes: c.file_bytes,
            timed_out: c.timed_out,
            listening: self.listener.is_some(),
        });
    }
}

/// Interval of the ticks while no connection is open (ms).
const IDLE_TICK_MS: u64 = 100;
/// Time between two tries to listen while net refuses (ms).
const LISTEN_RETRY_MS: u64 = 2000;

impl Service for Httpd {
    type Protocol = HttpdProtocol;
    const TICK_MS: u64 = 10;

    fn new() -> Self {
        Httpd {
            server: Server::new(Config::default()),
            files: FsFiles::new(),
            site_ready: false,
            listener: None,
            listen_at_ms: None,
            refreshed_ms: None,
            opened: 0,
            closed: 0,
            problem: String::new(),
            tick_bytes: 0,
        }
    }

    fn handle(&mut self, request: RequestOf<Self>, out: &mut dyn ReplySink<HttpdReply>) {
        dispatch(self, request, out);
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Tick { now_ns, .. } => {
                self.tick(now_ns / 1_000_000);
                service::tick_every(self.tick_interval_ms());
            }
            other => log::warn!("httpd: an event it does not use: {other:?}"),
        }
    }

    fn save(&self) -> Vec<u8> {
        let mut e = Enc::new();
        self.save_to(&mut e);
        e.finish()
    }

    fn restore(bytes: &[u8]) -> Result<Self, String> {
        Httpd::restore_from(&mut Dec::new(bytes)).map_err(|e| format!("damaged checkpoint: {}", e.0))
    }

    fn check(&self) -> Result<(), String> {
        let open = self.opened.wrapping_sub(self.closed);
        if open != self.server.connections() as u64 {
            return Err(format!(
                "httpd state damaged: {} connections opened and {} closed, but {} open",
                self.opened,
                self.closed,
                self.server.connections()
            ));
        }
        if self.files.open_handles() > 16 {
            return Err(format!("httpd state damaged: {} file handles", self.files.open_handles()));
        }
        Ok(())
    }

    fn chaos_corrupt(&mut self) {
        self.closed = self.closed.wrapping_add(1);
    }
}

/// Run the service (under its companion, as init starts it).
pub fn run() -> i32 {
    service::serve::<Httpd>()
}
