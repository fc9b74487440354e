//! Floods and a client that never reads: many requests sent at once on one
//! session (out of turn after the first: the service must drop the
//! session, not serve them), many sessions each with a request at once
//! (all must be served), and a session whose answers are never read while
//! a well-behaved client must still be served (and, if those answers
//! overflow the session's ring, the session must be dropped).

use crate::probe::{self, Outcome};
use crate::targets::Target;
use crate::{Report, WAIT};
use alloc::format;
use alloc::vec::Vec;
use core::time::Duration;
use libos::channel::HandleList;
use libos::protocol::Protocol;

/// Requests sent at once on one session.
const PIPELINED: usize = 64;
/// Sessions opened at once.
const SESSIONS: usize = 24;

/// `PIPELINED` requests without reading: the session must be dropped.
pub fn pipelined<T: Target>(report: &mut Report) {
    report.cases += 1;
    let mut ep = match probe::connect(T::NAME) {
        Ok(ep) => ep,
        Err(e) => return report.fail(e),
    };
    let request = T::cheap();
    let mut sent = 0;
    for _ in 0..PIPELINED {
        if ep.send_raw(&request, HandleList::default()).is_err() {
            break; // dropped already
        }
        sent += 1;
    }
    let (replies, dropped) = probe::drain::<T::P>(&mut ep, WAIT);
    if !dropped {
        report
            .fail(format!("{}: {sent} requests sent at once: {replies} answered and the session still open", T::NAME));
    }
}

/// `SESSIONS` sessions, a request on each before any answer is read.
pub fn sessions<T: Target>(report: &mut Report) {
    report.cases += 1;
    let mut eps = Vec::new();
    for _ in 0..SESSIONS {
        match probe::connect(T::NAME) {
            Ok(mut ep) => {
                if let Err(e) = ep.send_raw(&T::cheap(), HandleList::default()) {
                    return report.fail(format!("{}: flood of sessions: send: {e}", T::NAME));
                }
                eps.push(ep);
            }
            Err(e) => return report.fail(format!("{}: flood of sessions: {e}", T::NAME)),
        }
    }
    for (i, ep) in eps.iter_mut().enumerate() {
        match probe::next::<T::P>(ep, WAIT) {
            Outcome::Answered(_) => {}
            other => report.fail(format!("{}: flood of sessions: session {i}: {other:?}", T::NAME)),
        }
    }
}

/// A request whose answers are never read, and a well-behaved client
/// meanwhile.
pub fn never_reads<T: Target>(report: &mut Report) {
    report.cases += 1;
    let (request, overflows) = match T::never_read() {
        Ok(r) => r,
        Err(e) => return report.fail(format!("{}: preparing the client that never reads: {e}", T::NAME)),
    };
    let mut ep = match probe::connect(T::NAME) {
        Ok(ep) => ep,
        Err(e) => return report.fail(e),
    };
    if let Err(e) = ep.send_raw(&request, HandleList::default()) {
        return report.fail(format!("{}: the client that never reads: send: {e}", T::NAME));
    }
    libos::time::sleep(Duration::from_millis(200));
    if let Err(e) = T::healthy() {
        report.fail(format!("{}: a client beside one that never reads: {e}", T::NAME));
    }
    if overflows {
        let deadline = libos::time::now_ns() + WAIT.as_nanos() as u64;
        while !ep.peer_closed() && libos::time::now_ns() < deadline {
            libos::time::sleep(Duration::from_millis(100));
        }
        if !ep.peer_closed() {
            report.fail(format!("{}: a session whose answers overflow its ring unread was not dropped", T::NAME));
        }
    }
}

/// Sessions one client opens and holds, idle (fewer for services with
/// large rings: see [`hoard_size`]).
const HOARD: usize = 300;
/// The ring memory a hoard may take in all (init allocates the rings).
const HOARD_BYTES: usize = 24 << 20;

/// How many sessions to hoard on service `T`: [`HOARD`], or fewer when
/// their rings would take more than [`HOARD_BYTES`] of the machine's
/// memory (a client without a page limit can run the machine out of
/// memory through connections; that is a finding of its own, not tested
/// here).
pub fn hoard_size<T: Target>() -> usize {
    let per = 2 * libos::directory::ring_bytes_for(T::P::MAX_REQUEST_BYTES.max(T::P::MAX_REPLY_BYTES)) + 4096;
    HOARD.min(HOARD_BYTES / per)
}

/// Open up to `n` idle sessions to `service`.
pub fn open_many(service: &str, n: usize) -> Vec<libos::channel::Endpoint> {
    let mut held = Vec::new();
    for _ in 0..n {
        match probe::connect(service) {
            Ok(ep) => held.push(ep),
            Err(e) => {
                libos::println!("hostile: {service}: connection {} of {n}: {e}", held.len() + 1);
                break;
            }
        }
    }
    held
}

/// Many idle sessions held open (the companion closes those past its
/// per-client limit); with a few of them closed again, a well-behaved
/// session of the same client must be served.
pub fn hoard<T: Target>(report: &mut Report) {
    report.cases += 1;
    let mut held = open_many(T::NAME, hoard_size::<T>());
    let opened = held.len();
    libos::time::sleep(Duration::from_millis(200));
    let dropped = held.iter().filter(|ep| ep.peer_closed()).count();
    held.retain(|ep| !ep.peer_closed());
    for _ in 0..8 {
        held.pop();
    }
    libos::time::sleep(Duration::from_millis(100));
    if let Err(e) = T::healthy() {
        report.fail(format!("{}: a session beside {} idle ones: {e}", T::NAME, held.len()));
    }
    libos::println!("hostile: {}: {opened} sessions opened, {dropped} of them closed by the service", T::NAME);
}
