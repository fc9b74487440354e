//! One hostile exchange with a service: a fresh raw connection, bytes sent
//! as they are (no encoder, no checker on our side), and what came back:
//! the contract's error reply, some other reply, the session dropped, or
//! nothing at all.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;
use libos::channel::{ChannelError, Endpoint, HandleList, HandleQueue, Message};
use libos::protocol::Protocol;
use libos::wire::{Reader, Writer};

/// What a service did with a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The contract's error reply.
    Error,
    /// Another reply (named).
    Answered(&'static str),
    /// The session was closed.
    Dropped,
    /// Nothing within the wait.
    Silent,
    /// A reply that does not decode as the contract's.
    Undecodable,
    /// Our side of the channel failed.
    Broken(String),
}

/// What a case needs from the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// A malformed or misplaced message: the error reply or a dropped
    /// session.
    Rejected,
    /// A well-formed request that cannot be carried out: the error reply.
    Error,
    /// A well-formed request: any answer (it must neither hang nor crash
    /// the service).
    Any,
}

impl Expect {
    /// Whether `outcome` is what this expectation allows.
    pub fn allows(self, outcome: &Outcome) -> bool {
        match (self, outcome) {
            (_, Outcome::Silent | Outcome::Undecodable | Outcome::Broken(_)) => false,
            (Expect::Rejected, o) => matches!(o, Outcome::Error | Outcome::Dropped),
            (Expect::Error, o) => matches!(o, Outcome::Error),
            (Expect::Any, o) => matches!(o, Outcome::Error | Outcome::Answered(_)),
        }
    }
}

/// A fresh connection to `service`.
pub fn connect(service: &str) -> Result<Endpoint, String> {
    libos::directory::connect_within(service, Duration::from_secs(10)).map_err(|e| format!("connect {service}: {e}"))
}

/// `message` encoded.
pub fn encode<M: Message>(message: M) -> Vec<u8> {
    let mut w = Writer::new();
    let mut h = HandleList::default();
    message.encode(&mut w, &mut h);
    w.finish()
}

/// `bytes` decoded as a whole message, if they are one.
pub fn decode<M: Message>(bytes: &[u8]) -> Option<M> {
    let mut q = HandleQueue::new(Vec::new());
    let mut r = Reader::new(bytes);
    let m = M::decode(&mut r, &mut q).ok()?;
    r.finish().ok()?;
    Some(m)
}

/// The next message from the service, judged.
pub fn next<P: Protocol>(ep: &mut Endpoint, wait: Duration) -> Outcome {
    match ep.recv_raw(Some(wait)) {
        Ok((bytes, _)) => match decode::<P::Reply>(&bytes) {
            Some(r) if P::is_error_reply(&r) => Outcome::Error,
            Some(r) => Outcome::Answered(P::reply_name(&r)),
            None => Outcome::Undecodable,
        },
        Err(ChannelError::PeerClosed) => Outcome::Dropped,
        Err(ChannelError::TimedOut) => Outcome::Silent,
        Err(e) => Outcome::Broken(format!("{e}")),
    }
}

/// Send `bytes` (with a handle attached if `with_handle`) on a fresh
/// connection and judge the first thing that comes back.
pub fn exchange<P: Protocol>(service: &str, bytes: &[u8], with_handle: bool, wait: Duration) -> Outcome {
    let mut ep = match connect(service) {
        Ok(ep) => ep,
        Err(e) => return Outcome::Broken(e),
    };
    let mut handles = HandleList::default();
    if with_handle {
        match libos::handle::Event::new() {
            Ok(e) => handles.push(e.0),
            Err(e) => return Outcome::Broken(format!("no event to attach: {e}")),
        }
    }
    if let Err(e) = ep.send_raw(bytes, handles) {
        return Outcome::Broken(format!("send: {e}"));
    }
    next::<P>(&mut ep, wait)
}

/// Read until the session is dropped or quiet for `wait`: the replies'
/// count, and whether it ended dropped.
pub fn drain<P: Protocol>(ep: &mut Endpoint, wait: Duration) -> (usize, bool) {
    let mut replies = 0;
    loop {
        match next::<P>(ep, wait) {
            Outcome::Error | Outcome::Answered(_) | Outcome::Undecodable => replies += 1,
            Outcome::Dropped => return (replies, true),
            Outcome::Silent | Outcome::Broken(_) => return (replies, false),
        }
    }
}

/// The next reply on `ep`, decoded; an error if none comes within `WAIT`
/// (the service hangs) or the session ends.
pub fn recv<P: Protocol>(ep: &mut Endpoint) -> Result<P::Reply, String> {
    match ep.recv_raw(Some(crate::WAIT)) {
        Ok((bytes, _)) => decode::<P::Reply>(&bytes).ok_or_else(|| String::from("a reply that does not decode")),
        Err(ChannelError::TimedOut) => Err(format!("no answer in {} s", crate::WAIT.as_secs())),
        Err(e) => Err(format!("{e}")),
    }
}

/// Send a request on `ep` and wait (up to `WAIT`) for its first reply.
pub fn call<P: Protocol>(ep: &mut Endpoint, request: P::Request) -> Result<P::Reply, String> {
    ep.send_raw(&encode(request), HandleList::default()).map_err(|e| format!("send: {e}"))?;
    recv::<P>(ep)
}
