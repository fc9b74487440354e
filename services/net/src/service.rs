//! The net service on today's runtime.
//!
//! TEMPORARY (the lead's event-driven runtime replaces this module): the
//! program serves its clients itself under the name `net`, without a
//! companion, and runs the stack's events by polling: it takes every
//! waiting client request, fires the stack's timer when due, and asks
//! `nic` for frames with a short wait (at most [`POLL_MS`], none while
//! there is work). The new runtime will deliver requests, frames (replies
//! to its asynchronous `Receive`) and timer expiries as logged events, so
//! only this loop goes; [`NetCore`] stays as it is.
//!
//! What already holds for the new runtime: the whole stack lives in the
//! state arena (the program gives the arena its global heap before it
//! builds the stack, and the arena's root points at the [`NetCore`]), so a
//! byte copy of the arena is a copy of the stack; its time and randomness
//! are inputs (`now_ns`, the seed).

use crate::protocol::{Net, Reply, Request};
use crate::{NetConfig, NetCore, Output, SERVICE};
use alloc::boxed::Box;
use alloc::vec::Vec;
use libos::channel::Channel;
use libos::protocol::{Checker, Protocol};

/// Longest wait for frames when the stack has nothing to do (ms): how long
/// a client request may wait for the loop to see it.
pub const POLL_MS: u32 = 10;
/// Bytes of arena besides the socket buffers (interface, tables, queues).
const ARENA_OVERHEAD: usize = 4 << 20;

struct Session {
    id: u64,
    channel: Channel<Reply, Request>,
    checker: Checker<Net>,
    seq: u64,
}

/// Pages of arena the stack needs for `config`: every socket with full
/// buffers, plus the rest.
pub fn arena_pages(config: &NetConfig) -> u64 {
    let bytes = config.max_sockets * 2 * config.tcp_buffer.max(config.udp_buffer) + ARENA_OVERHEAD;
    (bytes as u64).div_ceil(libos::abi::PAGE_SIZE)
}

fn connect_nic() -> Option<nic::NicClient> {
    match nic::connect() {
        Ok(c) => Some(c),
        Err(e) => {
            log::error!("cannot reach nic: {e}");
            None
        }
    }
}

/// Run the service; the exit code.
pub fn run() -> i32 {
    let config = match NetConfig::parse(libos::start::args()) {
        Ok(c) => c,
        Err(e) => {
            log::error!("bad configuration: {e}");
            return 1;
        }
    };
    let Some(mut card) = connect_nic() else { return 1 };
    let mac = match card.info() {
        Ok(nic::Reply::Status { mac, .. }) if mac.len() == 6 => {
            let mut m = [0u8; 6];
            m.copy_from_slice(&mac);
            m
        }
        other => {
            // Nothing to run on (a machine without a card): stay, idle, so
            // init does not restart the program in a loop.
            log::warn!("no network card ({other:?}); the network stays down");
            loop {
                libos::time::sleep(core::time::Duration::from_secs(3600));
            }
        }
    };
    if let Err(e) = libos::arena::init(arena_pages(&config), false).and_then(|_| libos::arena::hold_global_heap()) {
        log::error!("no state arena: {e}");
        return 1;
    }
    let now = libos::time::now_ns();
    let seed = now ^ ((libos::start::pid() as u64) << 32) ^ 0x6e65_7473_7461_636b;
    let core = match NetCore::new(config, mac, seed, now) {
        Ok(c) => Box::leak(Box::new(c)),
        Err(e) => {
            log::error!("{e}");
            return 1;
        }
    };
    libos::arena::set_root(core as *mut NetCore as u64);
    let max = <Net as Protocol>::MAX_REQUEST_BYTES.max(<Net as Protocol>::MAX_REPLY_BYTES);
    let mut listener = match libos::directory::register_for(SERVICE, max) {
        Ok(l) => l,
        Err(e) => {
            log::error!("cannot register {SERVICE}: {e}");
            return 1;
        }
    };
    let (_, pages) = libos::arena::range().unwrap_or_default();
    log::info!(
        "net is up: the stack lives in the state arena ({} KiB used of {} KiB)",
        libos::arena::used_bytes() / 1024,
        pages * libos::abi::PAGE_SIZE / 1024
    );
    let mut sessions: Vec<Session> = Vec::new();
    let mut next_id = 1u64;
    let mut timer = Some(0u64);
    loop {
        let mut busy = false;
        while let Ok(Some(connection)) = listener.try_accept() {
            sessions.push(Session {
                id: next_id,
                channel: Channel::new(connection.endpoint),
                checker: Checker::new(),
                seq: 0,
            });
            next_id += 1;
        }
        // One request per session per pass, so no session starves the others.
        let mut i = 0;
        while i < sessions.len() {
            let s = &mut sessions[i];
            let out = match s.channel.try_recv() {
                Ok(Some(request)) => {
                    busy = true;
                    if let Err(v) = s.checker.on_request(&request) {
                        log::warn!("session {}: {v}", s.id);
                        let id = s.id;
                        sessions.remove(i);
                        Some(core.session_closed(id, libos::time::now_ns()))
                    } else {
                        s.seq += 1;
                        let (id, seq) = (s.id, s.seq);
                        i += 1;
                        Some(core.on_request(id, seq, request, libos::time::now_ns()))
                    }
                }
                Ok(None) => {
                    i += 1;
                    None
                }
                Err(_) => {
                    let id = s.id;
                    sessions.remove(i);
                    Some(core.session_closed(id, libos::time::now_ns()))
                }
            };
            if let Some(out) = out {
                deliver(out, &mut card, &mut sessions, &mut timer);
            }
        }
        let now = libos::time::now_ns();
        if timer.is_some_and(|t| t <= now) {
            let out = core.on_timer(now);
            deliver(out, &mut card, &mut sessions, &mut timer);
        }
        let now = libos::time::now_ns();
        let wait_ms = match (busy, timer) {
            (true, _) => 0,
            (false, Some(t)) => (t.saturating_sub(now) / 1_000_000).min(POLL_MS as u64) as u32,
            (false, None) => POLL_MS,
        };
        match card.receive(nic::MAX_BATCH as u32, wait_ms) {
            Ok(nic::Reply::Frames { frames }) => {
                if !frames.is_empty() {
                    let out = core.on_frames(frames, libos::time::now_ns());
                    deliver(out, &mut card, &mut sessions, &mut timer);
                }
            }
            Ok(other) => log::warn!("nic receive: {other:?}"),
            Err(e) => {
                log::warn!("nic receive: {e}; reconnecting");
                libos::time::sleep(core::time::Duration::from_millis(100));
                if let Some(c) = connect_nic() {
                    card = c;
                }
            }
        }
    }
}

/// Put the output's frames on the wire and its replies to their sessions.
fn deliver(out: Output, card: &mut nic::NicClient, sessions: &mut [Session], timer: &mut Option<u64>) {
    let mut frames = out.frames;
    while !frames.is_empty() {
        let rest = frames.split_off(frames.len().min(nic::MAX_BATCH));
        match card.send(frames) {
            Ok(nic::Reply::Sent { .. }) => {}
            other => log::warn!("nic send: {other:?}"),
        }
        frames = rest;
    }
    for a in out.replies {
        let Some(s) = sessions.iter_mut().find(|s| s.id == a.session) else { continue };
        if let Err(v) = s.checker.on_reply(&a.reply) {
            log::error!("reply breaks the contract: {v}");
            continue;
        }
        if let Err(e) = s.channel.send(a.reply) {
            log::warn!("session {}: {e}", s.id);
        }
    }
    *timer = out.timer_ns;
}
