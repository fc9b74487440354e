//! The httpd program on today's runtime: the [`Server`] core over the
//! `net` service's sockets, one session, non-blocking operations plus one
//! `Wait` for every connection, so a slow client holds up no one.
//!
//! Its files come from [`site`], an in-memory tree, until the file service
//! (issue "a resilient file service") provides `/www` from the data disk:
//! the [`FileSource`] the server reads through stays the same. It is not
//! yet a resilient service with a companion (the lead's runtime rewrite);
//! `/status` already shows every resilient service's figures, asked of
//! their companions (`NAME.control`) once a second.

use crate::files::{FileSource, MemoryTree};
use crate::status::ServiceFigures;
use crate::{Config, Server};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use net::protocol::{NetClient, Reply};
use net::{code, ready};
use resiliency_lib::control::{ControlClient, Reply as ControlReply};

/// Most bytes handed to one `Send`.
const SEND_MAX: usize = 60 * 1024;
/// Connections waiting to be accepted.
const BACKLOG: u16 = 16;
/// Most connections served at once (one `Wait` names at most 256 sockets,
/// the listener included); more wait in net's backlog.
const MAX_CONNECTIONS: usize = 250;
/// The longest `Wait` (ms), so the figures stay fresh.
const TICK_MS: u64 = 1000;
/// The in-memory files' modification time (seconds since 1970): they are
/// made when the program starts, and the guest has no calendar clock yet.
const SITE_TIME: u64 = 1_767_225_600; // 2026-01-01

/// Byte `i` of `/www/files/pattern.bin` (the system tests compute it too).
pub fn pattern_byte(i: u64) -> u8 {
    (i.wrapping_mul(31).wrapping_add(i >> 8).wrapping_add(7)) as u8
}

/// Bytes of `/www/files/pattern.bin`.
pub const PATTERN_LEN: u64 = 256 * 1024;

/// The site served until the file service lands.
pub fn site() -> MemoryTree {
    let mut t = MemoryTree::new();
    t.add(
        "/www/index.html",
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Kintsugi</title></head><body>\n\
         <h1>Kintsugi</h1>\n<p>An exokernel whose services crash and come back without their clients noticing.</p>\n\
         <ul><li><a href=\"/status.html\">the resilient services, live</a></li><li><a href=\"/files/\">files</a></li></ul>\n\
         </body></html>\n",
        SITE_TIME,
    );
    t.add("/www/hello.txt", "Hello from Kintsugi.\n", SITE_TIME);
    t.add("/www/files/notes.txt", "This folder has no index.html, so the server lists it.\n", SITE_TIME);
    t.add("/www/files/pattern.bin", (0..PATTERN_LEN).map(pattern_byte).collect::<Vec<u8>>(), SITE_TIME);
    t
}

struct Figures {
    sessions: BTreeMap<String, ControlClient>,
}

impl Figures {
    /// Every resilient service's figures, from its companion.
    fn collect(&mut self) -> Vec<ServiceFigures> {
        let Ok(names) = libos::directory::services() else { return Vec::new() };
        let mut out = Vec::new();
        for name in names.iter().filter_map(|n| n.strip_suffix(".control")) {
            if !self.sessions.contains_key(name) {
                let Ok(ep) = libos::directory::connect(&format!("{name}.control"), false) else { continue };
                self.sessions.insert(String::from(name), ControlClient::new(libos::channel::Channel::new(ep)));
            }
            let Some(c) = self.sessions.get_mut(name) else { continue };
            match c.stats() {
                Ok(ControlReply::Figures {
                    pid,
                    restarts,
                    checkpoints,
                    log_len,
                    last_recovery_ns,
                    requests,
                    injected,
                    ..
                }) => out.push(ServiceFigures {
                    name: String::from(name),
                    pid,
                    restarts,
                    checkpoints,
                    log_len,
                    last_recovery_ns,
                    requests,
                    injected,
                }),
                _ => {
                    self.sessions.remove(name);
                }
            }
        }
        out
    }
}

fn now_ms() -> u64 {
    libos::time::now_ns() / 1_000_000
}

fn connect_net() -> NetClient {
    loop {
        match net::connect() {
            Ok(c) => return c,
            Err(e) => {
                log::warn!("cannot reach net: {e}; trying again");
                libos::time::sleep(core::time::Duration::from_secs(1));
            }
        }
    }
}

/// Run the server; the exit code.
pub fn run() -> i32 {
    let mut port = 80u16;
    for word in libos::start::args().split_whitespace() {
        match word.split_once('=') {
            Some(("port", p)) => match p.parse() {
                Ok(p) => port = p,
                Err(_) => {
                    log::error!("bad port '{p}'");
                    return 1;
                }
            },
            _ => {
                log::error!("unknown argument '{word}' (port=N)");
                return 1;
            }
        }
    }
    let mut fs = site();
    let mut net = connect_net();
    let listener = match net.listen(port, BACKLOG) {
        Ok(Reply::Socket { socket }) => socket,
        other => {
            log::error!("cannot listen on port {port}: {other:?}");
            return 1;
        }
    };
    log::info!("serving http on port {port}");
    let mut server = Server::new(Config::default());
    let mut figures = Figures { sessions: BTreeMap::new() };
    let mut conns: BTreeSet<u32> = BTreeSet::new();
    let mut refreshed = 0u64;
    loop {
        let now = now_ms();
        if now >= refreshed + TICK_MS {
            server.board.update(now, figures.collect());
            refreshed = now;
        }
        let mut sockets = Vec::from([listener]);
        let accepting = if conns.len() < MAX_CONNECTIONS { ready::ACCEPTABLE } else { 0 };
        let mut interests = Vec::from([accepting]);
        for c in &conns {
            let mut i = 0;
            if server.wants_read(*c) {
                i |= ready::READABLE;
            }
            if server.wants_write(*c) {
                i |= ready::WRITABLE;
            }
            sockets.push(*c);
            interests.push(i);
        }
        let timeout = server.next_timer().map_or(TICK_MS, |t| t.saturating_sub(now)).min(TICK_MS) as u32;
        let events = match net.wait(sockets, interests, timeout) {
            Ok(Reply::Events { sockets, events }) => sockets.into_iter().zip(events).collect::<Vec<_>>(),
            Ok(other) => {
                log::error!("wait: {other:?}");
                return 1;
            }
            Err(e) => {
                log::error!("net is gone ({e}); ending (init starts httpd again)");
                return 1;
            }
        };
        for (socket, ev) in events {
            if socket == listener {
                accept_all(&mut net, listener, &mut server, &mut conns);
                continue;
            }
            if ev & (ready::READABLE | ready::ENDED) != 0 && !receive(&mut net, socket, &mut server, &mut fs) {
                drop_conn(&mut net, socket, &mut server, &mut conns, true);
                continue;
            }
            if ev & ready::ENDED != 0 && !server.wants_write(socket) {
                drop_conn(&mut net, socket, &mut server, &mut conns, false);
            }
        }
        // Send what can go now, on every connection with something to send.
        let busy: Vec<u32> = conns.iter().copied().filter(|c| server.wants_write(*c)).collect();
        for c in busy {
            if !pump(&mut net, c, &mut server, &mut fs) {
                drop_conn(&mut net, c, &mut server, &mut conns, true);
            }
        }
        for c in server.on_timer(now_ms()) {
            drop_conn(&mut net, c, &mut server, &mut conns, true);
        }
        let done: Vec<u32> = conns.iter().copied().filter(|c| server.finished(*c)).collect();
        for c in done {
            drop_conn(&mut net, c, &mut server, &mut conns, false);
        }
    }
}

fn accept_all(net: &mut NetClient, listener: u32, server: &mut Server, conns: &mut BTreeSet<u32>) {
    while conns.len() < MAX_CONNECTIONS {
        match net.accept(listener, 0) {
            Ok(Reply::Accepted { socket, .. }) => {
                server.open(socket, now_ms());
                conns.insert(socket);
            }
            Ok(Reply::NotReady) => return,
            other => {
                log::warn!("accept: {other:?}");
                return;
            }
        }
    }
}

/// Take what arrived on `socket`; false if the connection broke.
fn receive(net: &mut NetClient, socket: u32, server: &mut Server, fs: &mut dyn FileSource) -> bool {
    if !server.wants_read(socket) {
        return true;
    }
    match net.receive(socket, 65536, 0) {
        Ok(Reply::Received { data, end }) => {
            server.on_data(socket, &data, now_ms(), fs);
            if end {
                server.on_end(socket);
            }
            true
        }
        Ok(Reply::NotReady) => true,
        Ok(Reply::Failed { code: code::RESET, .. }) => false,
        other => {
            log::warn!("receive on {socket}: {other:?}");
            false
        }
    }
}

/// Send what the server has for `socket` while the socket takes it; false
/// if the connection broke.
fn pump(net: &mut NetClient, socket: u32, server: &mut Server, fs: &mut dyn FileSource) -> bool {
    loop {
        let out = server.pending(socket, SEND_MAX, fs);
        if out.is_empty() {
            return true;
        }
        let len = out.len().min(SEND_MAX);
        let data = out[..len].to_vec();
        match net.send(socket, data, 0) {
            Ok(Reply::Sent { count }) => {
                server.sent(socket, count as usize, now_ms(), fs);
                if (count as usize) < len {
                    return true;
                }
            }
            Ok(Reply::NotReady) => return true,
            Ok(Reply::Failed { code: code::RESET | code::NOT_CONNECTED, .. }) => return false,
            other => {
                log::warn!("send on {socket}: {other:?}");
                return false;
            }
        }
    }
}

fn drop_conn(net: &mut NetClient, socket: u32, server: &mut Server, conns: &mut BTreeSet<u32>, abort: bool) {
    let _ = net.close(socket, abort);
    server.close(socket);
    conns.remove(&socket);
}
