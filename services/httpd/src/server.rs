//! [`Server`]: HTTP/1.1 over connections, as a state machine that does not
//! know where bytes come from. The program feeds it each connection's
//! received bytes (`on_data`, `on_end`), takes the bytes it has to send
//! (`pending`, then `sent` with how many the socket took), closes a
//! connection when it is `finished`, and calls `on_timer` for the
//! deadlines: a request left half-sent is answered 408 and closed after
//! [`Config::request_timeout_ms`], an idle keep-alive connection closed
//! after [`Config::idle_timeout_ms`], a client that stops reading dropped
//! after [`Config::send_timeout_ms`]. Each connection is handled on its
//! own, so a slow or silent client holds up no one. The deadlines count
//! the time the server was there to see: a gap between two `on_timer`
//! calls longer than [`Config::absence_ms`] (the program's tick held up
//! behind a stalled net or fs, or its own recovery) counts as that much,
//! so a client is not dropped for the server's own absence.
//!
//! Files are read through a [`FileSource`] a chunk at a time as the
//! connection drains, so a large download costs one chunk of memory.

use crate::codec::{Damaged, Dec, Enc};
use crate::files::{FileSource, FsError, Meta};
use crate::request::{self, Head};
use crate::response::{self, content_type, error_page};
use crate::status::StatusBoard;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

/// A connection's number (the program uses its socket's).
pub type ConnId = u32;

/// Responses queued per connection before it stops reading (pipelining).
const MAX_QUEUED: usize = 8;
/// Bytes of unparsed input a connection buffers at most.
const MAX_INPUT: usize = 64 * 1024;
/// Bytes of a file read at once.
const CHUNK: usize = 64 * 1024;

/// The server's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// The folder served (`/www`).
    pub root: String,
    /// How long a started request may take to arrive whole.
    pub request_timeout_ms: u64,
    /// How long a keep-alive connection may sit idle.
    pub idle_timeout_ms: u64,
    /// How long a client may take no bytes while a response waits.
    pub send_timeout_ms: u64,
    /// The most time between two `on_timer` calls that counts towards
    /// the deadlines: beyond it, the server was away, not its clients.
    pub absence_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            root: String::from("/www"),
            request_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            send_timeout_ms: 60_000,
            absence_ms: 1000,
        }
    }
}

enum Body {
    Empty,
    Bytes(Vec<u8>, usize),
    File { path: String, offset: u64, end: u64 },
}

struct Response {
    head: Option<Vec<u8>>,
    body: Body,
    close: bool,
}

struct Conn {
    input: Vec<u8>,
    discard: u64,
    queue: VecDeque<Response>,
    out: Vec<u8>,
    closing: bool,
    broken: bool,
    partial_since: Option<u64>,
    last_activity: u64,
    last_progress: u64,
}

/// Counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Connections opened.
    pub connections: u64,
    /// Responses queued, by class: 2xx and 3xx, 4xx, 5xx.
    pub ok: u64,
    /// Responses with a 4xx status.
    pub client_errors: u64,
    /// Responses with a 5xx status.
    pub server_errors: u64,
    /// Body bytes of files sent.
    pub file_bytes: u64,
    /// Connections closed for a request left half-sent.
    pub timed_out: u64,
}

/// The web server.
pub struct Server {
    config: Config,
    conns: BTreeMap<ConnId, Conn>,
    /// The figures `/status` shows (the program updates them).
    pub board: StatusBoard,
    counters: Counters,
    /// The time of the last `on_timer` call.
    last_look_ms: Option<u64>,
}

impl Server {
    /// A server with `config`.
    pub fn new(config: Config) -> Server {
        Server {
            config,
            conns: BTreeMap::new(),
            board: StatusBoard::default(),
            counters: Counters::default(),
            last_look_ms: None,
        }
    }

    /// How long a connection with something to send may go without
    /// sending any of it before [`Server::on_timer`] breaks it off (ms).
    pub fn send_timeout_ms(&self) -> u64 {
        self.config.send_timeout_ms
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Connections open.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// A new connection.
    pub fn open(&mut self, conn: ConnId, now_ms: u64) {
        self.counters.connections += 1;
        self.conns.insert(
            conn,
            Conn {
                input: Vec::new(),
                discard: 0,
                queue: VecDeque::new(),
                out: Vec::new(),
                closing: false,
                broken: false,
                partial_since: None,
                last_activity: now_ms,
                last_progress: now_ms,
            },
        );
    }

    /// Whether `conn` is open.
    pub fn is_open(&self, conn: ConnId) -> bool {
        self.conns.contains_key(&conn)
    }

    /// Forget a connection (the program closed it).
    pub fn close(&mut self, conn: ConnId) {
        self.conns.remove(&conn);
    }

    /// Whether the program should take more bytes from the connection.
    pub fn wants_read(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| !c.closing && c.queue.len() < MAX_QUEUED && c.input.len() < MAX_INPUT)
    }

    /// Whether the connection has bytes to send.
    pub fn wants_write(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| !c.out.is_empty() || !c.queue.is_empty())
    }

    /// Whether the program should close the connection now: everything
    /// was sent and no more requests are taken (or it broke).
    pub fn finished(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_none_or(|c| c.broken || (c.closing && c.queue.is_empty() && c.out.is_empty()))
    }

    /// Bytes received on `conn`.
    pub fn on_data(&mut self, conn: ConnId, data: &[u8], now_ms: u64, fs: &mut dyn FileSource) {
        let Some(c) = self.conns.get_mut(&conn) else { return };
        c.last_activity = now_ms;
        if c.closing {
            return;
        }
        c.input.extend_from_slice(data);
        self.parse_requests(conn, now_ms, fs);
    }

    /// The peer will send no more: answer what was asked, then close.
    pub fn on_end(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.closing = true;
            c.input.clear();
            c.partial_since = None;
        }
    }

    fn parse_requests(&mut self, conn: ConnId, now_ms: u64, fs: &mut dyn FileSource) {
        loop {
            let Some(c) = self.conns.get_mut(&conn) else { return };
            if c.discard > 0 {
                let n = (c.discard.min(c.input.len() as u64)) as usize;
                c.input.drain(..n);
                c.discard -= n as u64;
                if c.discard > 0 {
                    return;
                }
            }
            if c.closing || c.queue.len() >= MAX_QUEUED || c.input.is_empty() {
                if c.input.is_empty() {
                    c.partial_since = None;
                }
                return;
            }
            let head = match request::head_end(&c.input) {
                Ok(None) => {
                    c.partial_since.get_or_insert(now_ms);
                    return;
                }
                Ok(Some(end)) => {
                    let parsed = request::parse(&c.input[..end]);
                    c.input.drain(..end);
                    c.partial_since = if c.input.is_empty() { None } else { Some(now_ms) };
                    parsed
                }
                Err(refusal) => Err(refusal),
            };
            match head {
                Ok(head) => {
                    c.discard = head.body;
                    let r = self.respond(&head, now_ms, fs);
                    self.push(conn, r);
                }
                Err(refusal) => {
                    let r = error(refusal.status, &refusal.why, true);
                    self.push(conn, r);
                }
            }
        }
    }

    fn push(&mut self, conn: ConnId, r: Response) {
        let status =
            r.head.as_ref().and_then(|h| core::str::from_utf8(&h[9..12]).ok()?.parse::<u16>().ok()).unwrap_or(0);
        match status {
            400..=499 => self.counters.client_errors += 1,
            500..=599 => self.counters.server_errors += 1,
            _ => self.counters.ok += 1,
        }
        let Some(c) = self.conns.get_mut(&conn) else { return };
        if r.close {
            c.closing = true;
            c.input.clear();
            c.partial_since = None;
        }
        c.queue.push_back(r);
    }

    fn respond(&mut self, h: &Head, now_ms: u64, fs: &mut dyn FileSource) -> Response {
        let keep = h.keep_alive;
        let head_only = h.method == "HEAD";
        if h.method != "GET" && !head_only {
            let body = error_page(405, &format!("{} is not served here", h.method));
            let allow = [String::from("Allow: GET, HEAD")];
            let head = response::head(405, body.len() as u64, Some("text/html; charset=utf-8"), keep, &allow);
            return Response { head: Some(head), body: Body::Bytes(body, 0), close: !keep };
        }
        let generated = match h.path.as_str() {
            "/status" => Some((self.board.json(now_ms).into_bytes(), "application/json")),
            "/status.html" => Some((self.board.html(now_ms).into_bytes(), "text/html; charset=utf-8")),
            _ => None,
        };
        if let Some((body, ty)) = generated {
            let head =
                response::head(200, body.len() as u64, Some(ty), keep, &[String::from("Cache-Control: no-store")]);
            return Response {
                head: Some(head),
                body: if head_only { Body::Empty } else { Body::Bytes(body, 0) },
                close: !keep,
            };
        }
        let fs_path = format!("{}{}", self.config.root, h.path.trim_end_matches('/'));
        let meta = match fs.stat(&fs_path) {
            Ok(m) => m,
            Err(FsError::NotFound) => {
                return error(404, &format!("{} is not here", h.path), !keep).head_only(head_only)
            }
            Err(FsError::Other(e)) => return error(500, &e, !keep).head_only(head_only),
        };
        if meta.is_dir {
            if !h.path.ends_with('/') {
                let location: Vec<String> = h.path.split('/').map(response::percent_encode).collect();
                let location = format!("{}/", location.join("/"));
                let body = error_page(301, &format!("moved to {location}"));
                let head = response::head(
                    301,
                    body.len() as u64,
                    Some("text/html; charset=utf-8"),
                    keep,
                    &[format!("Location: {location}")],
                );
                return Response {
                    head: Some(head),
                    body: if head_only { Body::Empty } else { Body::Bytes(body, 0) },
                    close: !keep,
                };
            }
            let index = format!("{fs_path}/index.html");
            if let Ok(m) = fs.stat(&index) {
                if !m.is_dir {
                    return self.file(h, &index, m, head_only);
                }
            }
            return match fs.list(&fs_path) {
                Ok(entries) => {
                    let body = response::listing(&h.path, &entries);
                    let head = response::head(200, body.len() as u64, Some("text/html; charset=utf-8"), keep, &[]);
                    Response {
                        head: Some(head),
                        body: if head_only { Body::Empty } else { Body::Bytes(body, 0) },
                        close: !keep,
                    }
                }
                Err(FsError::NotFound) => error(404, &format!("{} is not here", h.path), !keep).head_only(head_only),
                Err(FsError::Other(e)) => error(500, &e, !keep).head_only(head_only),
            };
        }
        self.file(h, &fs_path, meta, head_only)
    }

    fn file(&mut self, h: &Head, path: &str, meta: Meta, head_only: bool) -> Response {
        let keep = h.keep_alive;
        let ty = content_type(path);
        let mut extra = vec![
            format!("Last-Modified: {}", crate::date::format(meta.modified)),
            String::from("Accept-Ranges: bytes"),
        ];
        if let Some(since) = h.if_modified_since.as_deref().and_then(crate::date::parse) {
            if meta.modified <= since && h.range.is_none() {
                let mut head = format!("HTTP/1.1 304 Not Modified\r\nServer: {}\r\n", response::SERVER);
                for e in &extra {
                    head.push_str(e);
                    head.push_str("\r\n");
                }
                head.push_str(if keep { "Connection: keep-alive\r\n\r\n" } else { "Connection: close\r\n\r\n" });
                return Response { head: Some(head.into_bytes()), body: Body::Empty, close: !keep };
            }
        }
        let (status, first, last) = match h.range.as_deref().map(|r| request::byte_range(r, meta.size)) {
            Some(Ok(Some((f, l)))) => {
                extra.push(format!("Content-Range: bytes {f}-{l}/{}", meta.size));
                (206, f, l + 1)
            }
            Some(Err(request::Unsatisfiable)) => {
                let body = error_page(416, "the range is outside the file");
                let head = response::head(
                    416,
                    body.len() as u64,
                    Some("text/html; charset=utf-8"),
                    keep,
                    &[format!("Content-Range: bytes */{}", meta.size)],
                );
                return Response {
                    head: Some(head),
                    body: if head_only { Body::Empty } else { Body::Bytes(body, 0) },
                    close: !keep,
                };
            }
            _ => (200, 0, meta.size),
        };
        let head = response::head(status, last - first, Some(ty), keep, &extra);
        let body =
            if head_only { Body::Empty } else { Body::File { path: path.to_string(), offset: first, end: last } };
        Response { head: Some(head), body, close: !keep }
    }

    /// The bytes to send on `conn` now (at most about `max`), reading files
    /// as needed. Call [`Server::sent`] with how many went out.
    pub fn pending(&mut self, conn: ConnId, max: usize, fs: &mut dyn FileSource) -> &[u8] {
        let Some(c) = self.conns.get_mut(&conn) else { return &[] };
        while c.out.len() < max && !c.broken {
            let Some(r) = c.queue.front_mut() else { break };
            if let Some(head) = r.head.take() {
                c.out.extend_from_slice(&head);
                continue;
            }
            let room = max - c.out.len();
            let done = match &mut r.body {
                Body::Empty => true,
                Body::Bytes(data, at) => {
                    let n = room.min(data.len() - *at);
                    c.out.extend_from_slice(&data[*at..*at + n]);
                    *at += n;
                    *at == data.len()
                }
                Body::File { path, offset, end } => {
                    let want = room.min(CHUNK).min((*end - *offset) as usize);
                    let start = c.out.len();
                    c.out.resize(start + want, 0);
                    match fs.read(path, *offset, &mut c.out[start..]) {
                        Ok(n) if n > 0 || want == 0 => {
                            c.out.truncate(start + n);
                            *offset += n as u64;
                            self.counters.file_bytes += n as u64;
                        }
                        other => {
                            // The file shrank or failed under us: the length
                            // promised cannot be kept, so the connection ends.
                            log::warn!("{path} at {offset}: {other:?}");
                            c.out.truncate(start);
                            c.broken = true;
                        }
                    }
                    *offset >= *end
                }
            };
            if done {
                let r = c.queue.pop_front();
                if r.is_some_and(|r| r.close) {
                    c.closing = true;
                    c.queue.clear();
                }
            }
        }
        &c.out
    }

    /// `n` bytes of what `pending` gave went out.
    pub fn sent(&mut self, conn: ConnId, n: usize, now_ms: u64, fs: &mut dyn FileSource) {
        let Some(c) = self.conns.get_mut(&conn) else { return };
        let n = n.min(c.out.len());
        c.out.drain(..n);
        if n > 0 {
            c.last_progress = now_ms;
            c.last_activity = now_ms;
        }
        // A response finished: pipelined requests waiting in the input go on.
        if !c.input.is_empty() && c.queue.len() < MAX_QUEUED {
            self.parse_requests(conn, now_ms, fs);
        }
    }

    /// Deadlines: half-sent requests get 408 and the connection closes,
    /// idle connections close; the connections to drop at once (their
    /// client stopped taking bytes) are returned. Time beyond
    /// [`Config::absence_ms`] since the last call does not count.
    pub fn on_timer(&mut self, now_ms: u64) -> Vec<ConnId> {
        self.discount_absence(now_ms);
        let mut drop = Vec::new();
        let mut late = Vec::new();
        for (id, c) in self.conns.iter_mut() {
            let busy = !c.out.is_empty() || !c.queue.is_empty();
            if busy && now_ms.saturating_sub(c.last_progress) >= self.config.send_timeout_ms {
                drop.push(*id);
            } else if let Some(t) = c.partial_since.filter(|_| !busy && !c.closing) {
                if now_ms.saturating_sub(t) >= self.config.request_timeout_ms {
                    late.push(*id);
                }
            } else if !busy
                && !c.closing
                && c.input.is_empty()
                && now_ms.saturating_sub(c.last_activity) >= self.config.idle_timeout_ms
            {
                c.closing = true;
            }
        }
        for id in late {
            self.counters.timed_out += 1;
            self.push(id, error(408, "the request did not arrive in time", true));
        }
        drop
    }

    /// Move every deadline on by the time since the last look beyond
    /// [`Config::absence_ms`] (the server was away: a tick held up for a
    /// minute behind a net that was being crashed over and over broke a
    /// download off for "not reading", RELIABILITY finding 31). Only
    /// times from before the last look move, and never past now.
    fn discount_absence(&mut self, now_ms: u64) {
        let last = self.last_look_ms.replace(now_ms);
        let Some(last) = last else { return };
        let away = now_ms.saturating_sub(last).saturating_sub(self.config.absence_ms);
        if away == 0 {
            return;
        }
        let shift = |t: &mut u64| {
            if *t <= last {
                *t = t.saturating_add(away).min(now_ms);
            }
        };
        for c in self.conns.values_mut() {
            shift(&mut c.last_progress);
            shift(&mut c.last_activity);
            if let Some(t) = c.partial_since.as_mut() {
                shift(t);
            }
        }
    }

    /// When `on_timer` has something to do next (ms).
    pub fn next_timer(&self) -> Option<u64> {
        self.conns
            .values()
            .filter_map(|c| {
                let busy = !c.out.is_empty() || !c.queue.is_empty();
                if busy {
                    Some(c.last_progress + self.config.send_timeout_ms)
                } else if c.closing {
                    None
                } else if let Some(t) = c.partial_since {
                    Some(t + self.config.request_timeout_ms)
                } else {
                    Some(c.last_activity + self.config.idle_timeout_ms)
                }
            })
            .min()
    }
}

impl Server {
    /// The whole state (connections, their input, queued responses and
    /// output, deadlines; the figures), for a checkpoint; the settings are
    /// not saved (the program gives them again).
    pub fn save(&self, e: &mut Enc) {
        e.u64(SAVED_MAGIC);
        e.u64(self.conns.len() as u64);
        for (id, c) in &self.conns {
            e.u64(*id as u64).bytes(&c.input).u64(c.discard).u64(c.queue.len() as u64);
            for r in &c.queue {
                e.bool(r.head.is_some()).bytes(r.head.as_deref().unwrap_or(&[]));
                match &r.body {
                    Body::Empty => e.u64(0),
                    Body::Bytes(data, at) => e.u64(1).bytes(data).u64(*at as u64),
                    Body::File { path, offset, end } => e.u64(2).str(path).u64(*offset).u64(*end),
                };
                e.bool(r.close);
            }
            e.bytes(&c.out).bool(c.closing).bool(c.broken).opt(c.partial_since);
            e.u64(c.last_activity).u64(c.last_progress);
        }
        let n = &self.counters;
        e.u64(n.connections).u64(n.ok).u64(n.client_errors).u64(n.server_errors).u64(n.file_bytes).u64(n.timed_out);
        e.opt(self.last_look_ms);
        self.board.save(e);
    }

    /// A server with `config` from what [`Server::save`] wrote.
    pub fn restore(config: Config, d: &mut Dec) -> Result<Server, Damaged> {
        if d.u64()? != SAVED_MAGIC {
            return Err(Damaged("not a saved web server"));
        }
        let mut conns = BTreeMap::new();
        for _ in 0..d.count(1 << 16)? {
            let id = d.u32()?;
            let input = d.bytes()?;
            let discard = d.u64()?;
            let mut queue = VecDeque::new();
            for _ in 0..d.count(1 << 16)? {
                let has_head = d.bool()?;
                let head = d.bytes()?;
                let body = match d.u64()? {
                    0 => Body::Empty,
                    1 => {
                        let data = d.bytes()?;
                        let at = d.count(data.len())?;
                        Body::Bytes(data, at)
                    }
                    2 => {
                        let path = d.str()?;
                        let (offset, end) = (d.u64()?, d.u64()?);
                        if offset > end {
                            return Err(Damaged("a file body's offset is past its end"));
                        }
                        Body::File { path, offset, end }
                    }
                    _ => return Err(Damaged("an unknown kind of body")),
                };
                queue.push_back(Response { head: has_head.then_some(head), body, close: d.bool()? });
            }
            let c = Conn {
                input,
                discard,
                queue,
                out: d.bytes()?,
                closing: d.bool()?,
                broken: d.bool()?,
                partial_since: d.opt()?,
                last_activity: d.u64()?,
                last_progress: d.u64()?,
            };
            conns.insert(id, c);
        }
        let counters = Counters {
            connections: d.u64()?,
            ok: d.u64()?,
            client_errors: d.u64()?,
            server_errors: d.u64()?,
            file_bytes: d.u64()?,
            timed_out: d.u64()?,
        };
        let last_look_ms = d.opt()?;
        let board = StatusBoard::restore(d)?;
        Ok(Server { config, conns, board, counters, last_look_ms })
    }

    /// The connections open.
    pub fn connection_ids(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.conns.keys().copied()
    }
}

/// At the start of a saved server ("HTTPSV01").
const SAVED_MAGIC: u64 = 0x3130_5653_5054_5448;

impl Response {
    fn head_only(mut self, head_only: bool) -> Response {
        if head_only {
            self.body = Body::Empty;
        }
        self
    }
}

fn error(status: u16, detail: &str, close: bool) -> Response {
    let body = error_page(status, detail);
    let head = response::head(status, body.len() as u64, Some("text/html; charset=utf-8"), !close, &[]);
    Response { head: Some(head), body: Body::Bytes(body, 0), close }
}
