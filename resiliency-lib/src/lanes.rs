//! Lanes inside a resilient service: idempotent requests straight from
//! clients (libos `channel::lane` has the client's side and the why).
//!
//! The companion hands the service the far side of each lane a client
//! opens (`Lane` on the link); the runtime's loop ([`crate::service`])
//! waits on its link and every lane, serves the companion first, and takes
//! a lane's requests between the companion's messages, so a lane request
//! never runs in the middle of a delivered request, a checkpoint or a
//! recovery. Each lane keeps its own protocol checker; a request that is
//! not idempotent, breaks the protocol or does not decode closes the lane
//! (its client sends it through the companion then), and so does a
//! handler that holds a lane request or answers held ones: only services
//! whose idempotent requests are answered at once and make no calls
//! (`Service::LANES`) take lanes.

use crate::Resilient;
use alloc::vec::Vec;
use libos::channel::{Channel, EndpointHandles};
use libos::handle::OwnedHandle;
use libos::protocol::{Checker, Protocol};

/// One lane: its session, its channel (replies out, requests in), and
/// the protocol as this lane has seen it.
pub(crate) struct Lane<P: Protocol> {
    pub session: u64,
    pub channel: Channel<P::Reply, P::Request>,
    pub checker: Checker<P>,
}

/// The lanes of a service.
pub(crate) struct Lanes<P: Protocol> {
    pub list: Vec<Lane<P>>,
}

impl<P: Resilient> Lanes<P> {
    pub fn new() -> Self {
        Lanes { list: Vec::new() }
    }

    /// Attach the far side of session `session`'s new lane (replacing one
    /// it had).
    pub fn open(&mut self, session: u64, memory: OwnedHandle, link: OwnedHandle, event: OwnedHandle, side: u8) {
        let handles = EndpointHandles { memory, link, event, side };
        match Channel::attach(handles) {
            Ok(channel) => {
                self.close(session);
                self.list.push(Lane { session, channel, checker: Checker::new() });
            }
            Err(e) => log::warn!("session {session}: its lane cannot be attached: {e}"),
        }
    }

    /// Close session `session`'s lane, if it has one.
    pub fn close(&mut self, session: u64) {
        self.list.retain(|l| l.session != session);
    }

    /// Close every lane.
    pub fn close_all(&mut self) {
        self.list.clear();
    }

    /// The index of a lane with a request waiting (or whose client left).
    pub fn ready(&self) -> Option<usize> {
        self.list.iter().position(|l| l.channel.endpoint().is_ready() || l.channel.endpoint().peer_closed())
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}
