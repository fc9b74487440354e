//! Channels: typed, bidirectional connections between two processes.
//!
//! A channel is a shared memory object holding two record rings (see
//! [`ring`]), a kernel link whose two ends carry handles and report a dead
//! peer, and one event per side, bound to that side's link end: bit
//! [`SIGNAL_BIT`] when the peer wrote (or freed space) while we slept,
//! bit [`CLOSED_BIT`] when the peer's end is gone (closed, or its process
//! died). An [`Endpoint`] is one side; [`EndpointHandles`] is a side in
//! transit, which can itself be sent over a channel. [`Channel`] adds
//! message types; [`select`] waits on many endpoints (and events) at once.
//!
//! The wake-up protocol avoids a system call per message: a reader about to
//! sleep sets a flag in shared memory and re-checks the ring; a writer
//! signals the link only when that flag is set. Event bits are sticky, so a
//! signal between the re-check and the sleep is not lost. A send followed
//! by a wait for the answer ([`Channel::call`], [`Endpoint::send_recv_raw`])
//! wakes the peer and sleeps in one kernel entry (`LinkSignalWait`,
//! [`sys::link_signal_wait`]); a server that answers and goes back to
//! waiting on many endpoints sends with [`Channel::send_deferred`] and
//! waits with [`select_waking`], which does the same.
//!
//! A channel to a resilient service can carry its session over a restart
//! of the companion ([`resume`]), share a buffer with the service for bulk
//! data ([`Channel::resumable_shared`]), and send idempotent requests past
//! the companion on a lane ([`lane`], [`Channel::with_lane`]).

pub mod lane;
pub mod resume;
pub mod ring;

use crate::handle::{Event, Mapping, Memory, OwnedHandle};
use crate::sys;
use crate::wire::{DecodeError, Reader, Writer};
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::cell::Cell;
use core::marker::PhantomData;
use core::time::Duration;
use kintsugi_abi::{Error, Handle, MapFlags, MemFlags, Rights, PAGE_SIZE};
use ring::{RingError, Rings};

/// Event bit: the peer wrote or freed space.
pub const SIGNAL_BIT: u64 = 1;
/// Event bit: the peer's end is gone.
pub const CLOSED_BIT: u64 = 2;
/// Default ring size per direction.
pub const DEFAULT_RING_BYTES: usize = 16 * 1024;

/// Why a channel operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelError {
    /// The other side is gone and nothing is left to read.
    PeerClosed,
    /// The shared memory or the handle queue is inconsistent: the peer is
    /// broken. The channel should be dropped.
    Corrupt,
    /// The message is larger than the ring can carry.
    TooBig,
    /// The bytes received are not a valid message.
    Decode(DecodeError),
    /// The wait ended first.
    TimedOut,
    /// A system call failed.
    Sys(Error),
}

impl From<Error> for ChannelError {
    fn from(e: Error) -> Self {
        match e {
            Error::PeerClosed => ChannelError::PeerClosed,
            Error::TimedOut => ChannelError::TimedOut,
            e => ChannelError::Sys(e),
        }
    }
}

impl From<DecodeError> for ChannelError {
    fn from(e: DecodeError) -> Self {
        ChannelError::Decode(e)
    }
}

impl From<RingError> for ChannelError {
    fn from(e: RingError) -> Self {
        match e {
            RingError::TooBig => ChannelError::TooBig,
            RingError::Full | RingError::Corrupt => ChannelError::Corrupt,
        }
    }
}

impl core::fmt::Display for ChannelError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ChannelError::PeerClosed => f.write_str("peer closed"),
            ChannelError::Corrupt => f.write_str("channel corrupt"),
            ChannelError::TooBig => f.write_str("message too big"),
            ChannelError::Decode(e) => write!(f, "{e}"),
            ChannelError::TimedOut => f.write_str("timed out"),
            ChannelError::Sys(e) => write!(f, "{e}"),
        }
    }
}

/// Handles received with a message, taken in order by its decoder.
pub struct HandleQueue {
    handles: VecDeque<OwnedHandle>,
}

impl HandleQueue {
    /// A queue over received handles.
    pub fn new(handles: Vec<OwnedHandle>) -> HandleQueue {
        HandleQueue { handles: handles.into() }
    }

    /// The next handle.
    pub fn take(&mut self) -> Result<OwnedHandle, DecodeError> {
        self.handles.pop_front().ok_or(DecodeError::MissingHandle)
    }

    /// Whether every handle was used.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }
}

/// Handles to send with a message, with the rights the receiver gets.
#[derive(Default)]
pub struct HandleList {
    handles: Vec<(OwnedHandle, Rights)>,
}

impl HandleList {
    /// Attach a handle, keeping all its rights.
    pub fn push(&mut self, h: OwnedHandle) {
        let rights = h.rights().unwrap_or(Rights::empty());
        self.handles.push((h, rights));
    }

    /// Attach a handle with reduced rights.
    pub fn push_with(&mut self, h: OwnedHandle, rights: Rights) {
        self.handles.push((h, rights));
    }

    /// Attach the handles of an endpoint in transit.
    pub fn push_endpoint(&mut self, e: EndpointHandles) -> u8 {
        self.push(e.memory);
        self.push(e.link);
        self.push(e.event);
        e.side
    }
}

/// A message as it travels: its bytes and the handles it carries.
pub type RawMessage = (Vec<u8>, Vec<OwnedHandle>);

/// A message type: how it becomes bytes plus handles, and back.
pub trait Message: Sized {
    /// Append the message to `w`, moving its handles into `handles`.
    fn encode(self, w: &mut Writer, handles: &mut HandleList);
    /// Rebuild a message from bytes and the handles that came with them.
    fn decode(r: &mut Reader, handles: &mut HandleQueue) -> Result<Self, DecodeError>;
}

/// A message as its bytes, for code that forwards messages it does not
/// decode (a companion's calls on behalf of its service).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opaque(pub Vec<u8>);

impl Message for Opaque {
    fn encode(self, w: &mut Writer, _handles: &mut HandleList) {
        w.raw(&self.0);
    }

    fn decode(r: &mut Reader, _handles: &mut HandleQueue) -> Result<Self, DecodeError> {
        Ok(Opaque(r.rest().to_vec()))
    }
}

/// Implement [`Message`] for a plain zerocopy struct (no handles), copied
/// as its bytes.
#[macro_export]
macro_rules! pod_message {
    ($t:ty) => {
        impl $crate::channel::Message for $t {
            fn encode(self, w: &mut $crate::wire::Writer, _h: &mut $crate::channel::HandleList) {
                w.raw(zerocopy::IntoBytes::as_bytes(&self));
            }
            fn decode(
                r: &mut $crate::wire::Reader,
                _h: &mut $crate::channel::HandleQueue,
            ) -> Result<Self, $crate::wire::DecodeError> {
                <$t as zerocopy::FromBytes>::read_from_bytes(r.rest()).map_err(|_| $crate::wire::DecodeError::Invalid)
            }
        }
    };
}

/// One side of a channel in transit: its three handles and which side it is.
pub struct EndpointHandles {
    /// The shared memory.
    pub memory: OwnedHandle,
    /// This side's link end.
    pub link: OwnedHandle,
    /// This side's event (bound to the link end).
    pub event: OwnedHandle,
    /// 0 = side A, 1 = side B.
    pub side: u8,
}

impl EndpointHandles {
    /// Rebuild from handles taken off a message (or the start info).
    pub fn take(q: &mut HandleQueue, side: u8) -> Result<EndpointHandles, DecodeError> {
        Ok(EndpointHandles { memory: q.take()?, link: q.take()?, event: q.take()?, side })
    }

    /// Build from three raw handles this program owns.
    pub fn from_raw(memory: Handle, link: Handle, event: Handle, side: u8) -> EndpointHandles {
        EndpointHandles {
            memory: OwnedHandle::from_raw(memory),
            link: OwnedHandle::from_raw(link),
            event: OwnedHandle::from_raw(event),
            side,
        }
    }
}

/// One side of a channel, attached (mapped) in this process.
pub struct Endpoint {
    rings: Rings,
    _mapping: Mapping,
    memory: Memory,
    link: OwnedHandle,
    event: Event,
    side: u8,
    closed: Cell<bool>,
}

impl Endpoint {
    /// A new channel with `ring_bytes` per direction (a power of two):
    /// side A attached here, side B ready to be sent elsewhere.
    pub fn pair_with(ring_bytes: usize) -> Result<(Endpoint, EndpointHandles), Error> {
        if !ring_bytes.is_power_of_two() || ring_bytes < 4096 {
            return Err(Error::InvalidArgument);
        }
        let pages = (ring::total_bytes(ring_bytes) as u64).div_ceil(PAGE_SIZE);
        let memory = Memory::alloc(pages, MemFlags::empty())?;
        let memory_b = memory.0.duplicate(Rights::READ | Rights::WRITE | Rights::MAP | Rights::TRANSFER)?;
        let (la, lb) = sys::link_create()?;
        let (la, lb) = (OwnedHandle::from_raw(la), OwnedHandle::from_raw(lb));
        let (ea, eb) = (Event::new()?, Event::new()?);
        sys::link_bind(la.raw(), ea.raw(), SIGNAL_BIT, CLOSED_BIT)?;
        sys::link_bind(lb.raw(), eb.raw(), SIGNAL_BIT, CLOSED_BIT)?;
        let mapping = memory.map(MapFlags::WRITE)?;
        // SAFETY: the mapping is fresh, zeroed, large enough, and lives as
        // long as the endpoint.
        let rings = unsafe { Rings::create(mapping.as_ptr(), ring_bytes) };
        let a = Endpoint { rings, _mapping: mapping, memory, link: la, event: ea, side: 0, closed: Cell::new(false) };
        let b = EndpointHandles { memory: memory_b, link: lb, event: eb.0, side: 1 };
        Ok((a, b))
    }

    /// A new channel with the default ring size.
    pub fn pair() -> Result<(Endpoint, EndpointHandles), Error> {
        Self::pair_with(DEFAULT_RING_BYTES)
    }

    /// Attach a side received from elsewhere.
    pub fn attach(h: EndpointHandles) -> Result<Endpoint, Error> {
        let memory = Memory(h.memory);
        let mapping = memory.map(MapFlags::WRITE)?;
        // SAFETY: the mapping covers the whole object and lives as long as
        // the endpoint; `attach` validates the control page.
        let rings = unsafe { Rings::attach(mapping.as_ptr(), mapping.len(), h.side as usize) }
            .map_err(|_| Error::InvalidArgument)?;
        Ok(Endpoint {
            rings,
            _mapping: mapping,
            memory,
            link: h.link,
            event: Event(h.event),
            side: h.side,
            closed: Cell::new(false),
        })
    }

    /// Detach this side so it can be sent to another process. Anything
    /// unread stays in the ring for the next owner.
    pub fn into_handles(self) -> EndpointHandles {
        let Endpoint { memory, link, event, side, _mapping, .. } = self;
        drop(_mapping);
        EndpointHandles { memory: memory.0, link, event: event.0, side }
    }

    fn note_bits(&self, bits: u64) {
        if bits & CLOSED_BIT != 0 {
            self.closed.set(true);
        }
    }

    /// Whether the peer is known to be gone.
    pub fn peer_closed(&self) -> bool {
        if !self.closed.get() {
            self.note_bits(self.event.poll());
        }
        self.closed.get()
    }

    /// Bytes this side sent that the peer has not read yet.
    pub fn unread_sent(&self) -> Result<usize, ChannelError> {
        Ok(self.rings.tx_unread()?)
    }

    /// Whether a message of `len` bytes fits in the ring now: sending it
    /// would not wait (until this side sends something else).
    pub fn can_send(&self, len: usize) -> Result<bool, ChannelError> {
        Ok(self.rings.can_write(len)?)
    }

    /// Whether a message (or the peer's end) is waiting.
    pub fn is_ready(&self) -> bool {
        self.rings.can_read() || self.closed.get()
    }

    fn wake_peer(&self) {
        if sys::link_signal(self.link.raw()) == Err(Error::PeerClosed) {
            self.closed.set(true);
        }
    }

    /// Send bytes plus handles, waiting while the ring is full.
    pub fn send_raw(&mut self, bytes: &[u8], handles: HandleList) -> Result<(), ChannelError> {
        if self.write_message(bytes, handles)? {
            self.wake_peer();
        }
        Ok(())
    }

    /// Send bytes (no handles) only if the ring has room for them now:
    /// `Ok(false)` when it is full and nothing was sent. For a server that
    /// must never wait on a client that does not read.
    pub fn try_send_raw(&mut self, bytes: &[u8]) -> Result<bool, ChannelError> {
        if self.closed.get() {
            return Err(ChannelError::PeerClosed);
        }
        if !self.rings.can_write(bytes.len())? {
            return Ok(false);
        }
        self.rings.try_write(bytes, 0)?;
        if self.rings.peer_wants_data() {
            self.wake_peer();
        }
        Ok(true)
    }

    /// Send bytes plus handles, but leave waking the peer (if it sleeps
    /// waiting for data) to the returned [`PendingWake`], to be folded into
    /// the caller's next wait by [`select_waking`].
    pub fn send_raw_deferred(&mut self, bytes: &[u8], handles: HandleList) -> Result<PendingWake, ChannelError> {
        let wake = self.write_message(bytes, handles)?;
        Ok(PendingWake { link: wake.then(|| self.link.raw()) })
    }

    /// Put a message in the ring (waiting while it is full) and its handles
    /// on the link; whether the peer sleeps waiting for data (and so must
    /// be woken).
    fn write_message(&mut self, bytes: &[u8], handles: HandleList) -> Result<bool, ChannelError> {
        loop {
            if self.closed.get() {
                return Err(ChannelError::PeerClosed);
            }
            if self.rings.can_write(bytes.len())? {
                break;
            }
            self.rings.arm_tx();
            if !self.rings.can_write(bytes.len())? {
                let bits = self.event.wait(u64::MAX)?;
                self.note_bits(bits);
            }
            self.rings.disarm_tx();
        }
        let count = handles.handles.len() as u32;
        for (h, rights) in handles.handles {
            sys::link_send(self.link.raw(), h.raw(), rights)?;
            let _ = h.into_raw(); // moved to the peer
        }
        self.rings.try_write(bytes, count)?;
        Ok(self.rings.peer_wants_data())
    }

    /// Send bytes plus handles, then wait for the next message (up to
    /// `timeout`): a request and its answer, or a reply and the next
    /// request. When the peer sleeps waiting for data and nothing has come
    /// for us yet, waking it and going to sleep are one kernel entry
    /// (`LinkSignalWait`) instead of two.
    pub fn send_recv_raw(
        &mut self,
        bytes: &[u8],
        handles: HandleList,
        timeout: Option<Duration>,
    ) -> Result<RawMessage, ChannelError> {
        let mut buf = Vec::new();
        let handles = self.send_recv_into(bytes, handles, timeout, &mut buf)?;
        Ok((buf, handles))
    }

    /// Take the next message if one is waiting; `PeerClosed` once nothing
    /// is left and the peer is known to be gone.
    pub fn try_recv_raw(&mut self) -> Result<Option<RawMessage>, ChannelError> {
        let mut buf = Vec::new();
        Ok(self.try_recv_into(&mut buf)?.map(|handles| (buf, handles)))
    }

    /// Like [`Endpoint::try_recv_raw`], the bytes into `buf` (replacing its
    /// contents, reusing its capacity).
    pub fn try_recv_into(&mut self, buf: &mut Vec<u8>) -> Result<Option<Vec<OwnedHandle>>, ChannelError> {
        let Some(count) = self.rings.try_read(buf)? else {
            return if self.closed.get() { Err(ChannelError::PeerClosed) } else { Ok(None) };
        };
        if self.rings.peer_wants_space() {
            self.wake_peer();
        }
        if count > kintsugi_abi::MAX_LINK_QUEUE as u32 {
            return Err(ChannelError::Corrupt);
        }
        let mut handles = Vec::with_capacity(count as usize);
        for _ in 0..count {
            match sys::link_recv(self.link.raw()) {
                Ok(h) => handles.push(OwnedHandle::from_raw(h)),
                Err(_) => return Err(ChannelError::Corrupt),
            }
        }
        Ok(Some(handles))
    }

    /// Wait for the next message (up to `timeout`).
    pub fn recv_raw(&mut self, timeout: Option<Duration>) -> Result<RawMessage, ChannelError> {
        let mut buf = Vec::new();
        let handles = self.recv_waking(false, timeout, &mut buf)?;
        Ok((buf, handles))
    }

    /// Like [`Endpoint::recv_raw`], the bytes into `buf`.
    pub fn recv_into(
        &mut self,
        timeout: Option<Duration>,
        buf: &mut Vec<u8>,
    ) -> Result<Vec<OwnedHandle>, ChannelError> {
        self.recv_waking(false, timeout, buf)
    }

    /// Like [`Endpoint::send_recv_raw`], the answer's bytes into `buf`.
    pub fn send_recv_into(
        &mut self,
        bytes: &[u8],
        handles: HandleList,
        timeout: Option<Duration>,
        buf: &mut Vec<u8>,
    ) -> Result<Vec<OwnedHandle>, ChannelError> {
        let wake = self.write_message(bytes, handles)?;
        self.recv_waking(wake, timeout, buf)
    }

    /// Wait for the next message into `buf`; if `wake`, the peer must be
    /// woken first (folded into the wait when we have to sleep).
    fn recv_waking(
        &mut self,
        mut wake: bool,
        timeout: Option<Duration>,
        buf: &mut Vec<u8>,
    ) -> Result<Vec<OwnedHandle>, ChannelError> {
        let deadline = timeout.map(|t| crate::time::now() + t);
        loop {
            if let Some(m) = self.try_recv_into(buf)? {
                if wake {
                    self.wake_peer();
                }
                return Ok(m);
            }
            let wait = match deadline {
                Some(d) => {
                    let now = crate::time::now();
                    if now >= d {
                        if wake {
                            self.wake_peer();
                        }
                        return Err(ChannelError::TimedOut);
                    }
                    (d - now).as_nanos() as u64
                }
                None => u64::MAX,
            };
            if !self.rings.arm_rx() {
                let woken = if core::mem::take(&mut wake) {
                    sys::link_signal_wait(self.link.raw(), self.event.raw(), wait)
                } else {
                    self.event.wait(wait)
                };
                match woken {
                    Ok(bits) => self.note_bits(bits),
                    Err(Error::TimedOut) => {}
                    // The signal found the peer gone (nothing was waited
                    // for): what it left can still be read.
                    Err(Error::PeerClosed) => self.closed.set(true),
                    Err(e) => {
                        self.rings.disarm_rx();
                        return Err(e.into());
                    }
                }
            } else if core::mem::take(&mut wake) {
                self.wake_peer();
            }
            self.rings.disarm_rx();
        }
    }

    /// Which side this is.
    pub fn side(&self) -> u8 {
        self.side
    }

    /// Largest message payload.
    pub fn max_message(&self) -> usize {
        self.rings.max_payload()
    }
}

/// Anything built on an [`Endpoint`] (typed channels, listeners); such
/// things can be passed to [`select`].
pub trait HasEndpoint {
    /// The endpoint underneath.
    fn endpoint(&self) -> &Endpoint;
}

impl HasEndpoint for Endpoint {
    fn endpoint(&self) -> &Endpoint {
        self
    }
}

/// Something [`select`] can wait on: it names a kernel event and knows how
/// to tell whether it is ready.
pub trait Waitable {
    /// The event the kernel waits on.
    fn wait_handle(&self) -> Handle;
    /// Prepare to sleep; true if already ready (then do not sleep).
    fn arm(&self) -> bool;
    /// Awake again.
    fn disarm(&self) {}
    /// The kernel returned `bits` for this item's event.
    fn fired(&self, bits: u64);
    /// Whether the item is ready now.
    fn is_ready(&self) -> bool;
}

impl<T: HasEndpoint> Waitable for T {
    fn wait_handle(&self) -> Handle {
        self.endpoint().event.raw()
    }
    fn arm(&self) -> bool {
        let e = self.endpoint();
        e.rings.arm_rx() || e.closed.get()
    }
    fn disarm(&self) {
        self.endpoint().rings.disarm_rx();
    }
    fn fired(&self, bits: u64) {
        self.endpoint().note_bits(bits);
    }
    fn is_ready(&self) -> bool {
        self.endpoint().is_ready()
    }
}

/// An event to [`select`] on beside channels; the bits it delivered
/// accumulate until taken.
pub struct Signal {
    event: Event,
    pending: Cell<u64>,
}

impl Signal {
    /// A new event.
    pub fn new() -> Result<Signal, Error> {
        Ok(Signal { event: Event::new()?, pending: Cell::new(0) })
    }

    /// Wrap an existing event.
    pub fn from_event(event: Event) -> Signal {
        Signal { event, pending: Cell::new(0) }
    }

    /// The event (to bind or watch with).
    pub fn event(&self) -> &Event {
        &self.event
    }

    /// Take the delivered bits (also polling the kernel).
    pub fn take(&self) -> u64 {
        self.pending.replace(0) | self.event.poll()
    }
}

impl Waitable for Signal {
    fn wait_handle(&self) -> Handle {
        self.event.raw()
    }
    fn arm(&self) -> bool {
        self.pending.get() != 0
    }
    fn fired(&self, bits: u64) {
        self.pending.set(self.pending.get() | bits);
    }
    fn is_ready(&self) -> bool {
        self.pending.get() != 0
    }
}

/// A peer that still has to be woken for a message sent with
/// [`Endpoint::send_raw_deferred`] (or [`Channel::send_deferred`]). Hand it
/// to [`select_waking`], which wakes the peer and sleeps in one kernel
/// entry (`LinkSignalWait`); dropped unused, it wakes the peer at once, so
/// a message is never left unannounced.
#[must_use = "the peer is woken only when this is passed to select_waking or dropped"]
pub struct PendingWake {
    link: Option<Handle>,
}

impl PendingWake {
    /// Nothing to wake.
    pub fn none() -> PendingWake {
        PendingWake { link: None }
    }

    /// Whether a peer is waiting to be woken.
    pub fn is_pending(&self) -> bool {
        self.link.is_some()
    }

    /// Wake the peer now.
    pub fn wake(mut self) {
        if let Some(link) = self.link.take() {
            let _ = sys::link_signal(link);
        }
    }
}

impl Drop for PendingWake {
    fn drop(&mut self) {
        if let Some(link) = self.link.take() {
            let _ = sys::link_signal(link);
        }
    }
}

/// Wait until one of `items` is ready (a message, a closed peer, a fired
/// event); its index. Items earlier in the slice win ties.
pub fn select(items: &[&dyn Waitable], timeout: Option<Duration>) -> Result<usize, ChannelError> {
    select_waking(PendingWake::none(), items, timeout)
}

/// [`select`], first waking the peer `wake` names: when the wait has to
/// sleep, waking and sleeping are one kernel entry (`LinkSignalWait`).
/// The way for a server to send its replies and requests and go back to
/// waiting on all its endpoints.
pub fn select_waking(
    mut wake: PendingWake,
    items: &[&dyn Waitable],
    timeout: Option<Duration>,
) -> Result<usize, ChannelError> {
    if items.is_empty() || items.len() > kintsugi_abi::MAX_WAIT_HANDLES {
        return Err(ChannelError::Sys(Error::InvalidArgument));
    }
    let deadline = timeout.map(|t| crate::time::now() + t);
    let events: Vec<Handle> = items.iter().map(|it| it.wait_handle()).collect();
    let disarm = || items.iter().for_each(|it| it.disarm());
    loop {
        // Returning without sleeping: `wake` (dropped) wakes the peer.
        if let Some(i) = items.iter().position(|it| it.is_ready()) {
            return Ok(i);
        }
        if let Some(i) = items.iter().position(|it| it.arm()) {
            disarm();
            return Ok(i);
        }
        let wait = match deadline {
            Some(d) => {
                let now = crate::time::now();
                if now >= d {
                    disarm();
                    return Err(ChannelError::TimedOut);
                }
                (d - now).as_nanos() as u64
            }
            None => u64::MAX,
        };
        let r = match wake.link.take() {
            Some(link) => match sys::link_signal_wait_any(link, &events, wait) {
                // The signal failed (the peer or the link is gone): nothing
                // was waited for; wait now.
                Err(e) if e != Error::TimedOut => sys::event_wait(&events, wait),
                r => r,
            },
            None => sys::event_wait(&events, wait),
        };
        disarm();
        match r {
            Ok((i, bits)) => items[i].fired(bits),
            Err(Error::TimedOut) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// A typed endpoint: sends `Tx`, receives `Rx`. It keeps one buffer for
/// encoding and one for receiving, so small messages cost no allocation
/// (a buffer grown past [`KEPT_BUFFER_BYTES`] by a large one is let go).
pub struct Channel<Tx: Message, Rx: Message> {
    ep: Endpoint,
    tx: Vec<u8>,
    /// Bytes of the last message sent: the next encode starts with room
    /// for as many, so a stream of large messages is not copied again and
    /// again as its buffer grows (the buffer itself is still let go).
    last_tx_len: usize,
    rx: Vec<u8>,
    /// For a channel opened with [`Channel::resumable`]: what carries its
    /// session over a restart of the server.
    resume: Option<alloc::boxed::Box<resume::Resume>>,
    /// For a channel given one with [`Channel::with_lane`]: the lane its
    /// idempotent requests take past the companion.
    lane: Option<alloc::boxed::Box<lane::Lane<Tx>>>,
    _types: PhantomData<fn(Tx) -> Rx>,
}

/// How long a resumable channel waits for its server to come back.
const RESUME_PATIENCE: Duration = Duration::from_secs(60);

/// Largest buffer a [`Channel`] keeps between messages.
pub const KEPT_BUFFER_BYTES: usize = 4096;

/// Let a buffer a large message grew go.
fn trim(buf: &mut Vec<u8>) {
    if buf.capacity() > KEPT_BUFFER_BYTES {
        *buf = Vec::new();
    }
}

impl<Tx: Message, Rx: Message> Channel<Tx, Rx> {
    /// Type an endpoint.
    pub fn new(ep: Endpoint) -> Self {
        Channel { ep, tx: Vec::new(), last_tx_len: 0, rx: Vec::new(), resume: None, lane: None, _types: PhantomData }
    }

    /// Connect to the resilient service `name` (waiting for it to
    /// register) with a session that survives a restart of its companion:
    /// when the connection ends, the channel connects again, names the
    /// same session, sends the unanswered request again and skips the
    /// replies it already had (see [`resume`]). Only for services behind a
    /// companion: others do not know the session hello.
    pub fn resumable(name: &str) -> Result<Self, ChannelError> {
        let ep = crate::directory::connect(name, true).map_err(dir_error)?;
        Self::resumable_over(ep, name)
    }

    /// [`Channel::resumable`] over `ep`, a new connection to `name`.
    pub fn resumable_over(ep: Endpoint, name: &str) -> Result<Self, ChannelError> {
        Self::resumable_with(ep, name, None)
    }

    /// [`Channel::resumable_over`] with a shared buffer of `bytes` bytes
    /// (whole pages, at most [`resume::MAX_SHARED_BYTES`]) that the
    /// service maps too: requests of contracts that name places in it
    /// move their data through it instead of through the rings
    /// ([`Channel::shared`]).
    pub fn resumable_shared(ep: Endpoint, name: &str, bytes: usize) -> Result<Self, ChannelError> {
        if bytes == 0 || bytes > resume::MAX_SHARED_BYTES {
            return Err(ChannelError::TooBig);
        }
        let memory = Memory::alloc((bytes as u64).div_ceil(PAGE_SIZE), MemFlags::empty())?;
        let mapping = memory.map(MapFlags::WRITE)?;
        Self::resumable_with(ep, name, Some((memory, mapping)))
    }

    fn resumable_with(ep: Endpoint, name: &str, shared: Option<(Memory, Mapping)>) -> Result<Self, ChannelError> {
        let mut ch = Channel::new(ep);
        let token = resume::new_token();
        ch.ep.send_raw(&resume::hello(token, 0), hello_handles(shared.as_ref())?)?;
        ch.resume = Some(alloc::boxed::Box::new(resume::Resume {
            name: alloc::string::String::from(name),
            token,
            next_seq: 0,
            pending: None,
            taken: 0,
            fruitless: 0,
            shared,
        }));
        Ok(ch)
    }

    /// Send the requests `goes_by_lane` picks (idempotent ones, of one
    /// reply each) over a lane of `ring_bytes` per direction, straight to
    /// the service (see [`lane`]); only for a resumable channel to a
    /// service that takes lanes.
    pub fn with_lane(mut self, goes_by_lane: fn(&Tx) -> bool, ring_bytes: usize) -> Self {
        if self.resume.is_some() {
            self.lane = Some(alloc::boxed::Box::new(lane::Lane {
                goes_by_lane,
                ring_bytes: ring_bytes.next_power_of_two().max(DEFAULT_RING_BYTES),
                ep: None,
                in_flight: false,
                sent_at_ns: 0,
                kept: Vec::new(),
                taken: 0,
                reopen_at_ns: 0,
                fruitless: 0,
            }));
            self.open_lane();
        }
        self
    }

    /// Open a lane and send its far side over the session (a lane frame).
    /// Failing is harmless: requests go through the companion meanwhile.
    fn open_lane(&mut self) {
        let Some(theirs) = self.lane.as_mut().and_then(|l| l.open()) else { return };
        let mut handles = HandleList::default();
        // Always side B of a new pair: the companion takes it as such.
        handles.push_endpoint(theirs);
        if self.ep.send_raw(&lane::LANE_MAGIC, handles).is_err() {
            if let Some(l) = self.lane.as_mut() {
                l.broke(crate::time::now_ns());
            }
        }
    }

    /// The session's shared buffer (see [`Channel::resumable_shared`]), as
    /// this side maps it.
    pub fn shared(&self) -> Option<&Mapping> {
        self.resume.as_ref().and_then(|r| r.shared.as_ref()).map(|(_, mapping)| mapping)
    }

    /// The server went away: connect again (waiting while it restarts),
    /// name the session, send the unanswered request again and skip the
    /// replies already taken. `Err` if it does not come back.
    fn resume(&mut self) -> Result<(), ChannelError> {
        let Some(r) = self.resume.as_mut() else { return Err(ChannelError::PeerClosed) };
        r.fruitless += 1;
        if r.fruitless > resume::MAX_FRUITLESS_RESUMES {
            log::warn!("{}: the service closed the session {} times without answering; giving up", r.name, r.fruitless);
            return Err(ChannelError::PeerClosed);
        }
        let backoff = Duration::from_millis(50 << r.fruitless.saturating_sub(1).min(4));
        if r.fruitless > 1 {
            crate::time::sleep(backoff);
        }
        let name = r.name.clone();
        let (token, taken) = (r.token, r.taken);
        let seq = r.pending.as_ref().map_or(r.next_seq, |(seq, _)| *seq);
        let pending = r.pending.as_ref().map(|(_, bytes)| bytes.clone());
        let deadline = crate::time::now_ns().saturating_add(RESUME_PATIENCE.as_nanos() as u64);
        loop {
            let attempt = (|| -> Result<Endpoint, ChannelError> {
                let mut fresh = crate::directory::connect(&name, true).map_err(dir_error)?;
                let shared = self.resume.as_ref().and_then(|r| r.shared.as_ref());
                fresh.send_raw(&resume::hello(token, seq), hello_handles(shared)?)?;
                if let Some(bytes) = &pending {
                    fresh.send_raw(bytes, HandleList::default())?;
                }
                let mut skip = Vec::new();
                for _ in 0..taken {
                    fresh.recv_into(None, &mut skip)?;
                }
                Ok(fresh)
            })();
            match attempt {
                Ok(fresh) => {
                    self.ep = fresh;
                    log::info!("{name}: the session was resumed after the service's companion restarted");
                    return Ok(());
                }
                Err(e) if crate::time::now_ns() >= deadline => return Err(e),
                Err(_) => crate::time::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Attach a side in transit and type it.
    pub fn attach(h: EndpointHandles) -> Result<Self, Error> {
        Endpoint::attach(h).map(Self::new)
    }

    /// Encode `m` into the send buffer; its handles.
    fn encode(&mut self, m: Tx) -> HandleList {
        let mut buf = core::mem::take(&mut self.tx);
        buf.clear();
        buf.reserve(self.last_tx_len);
        let mut w = Writer::reuse(buf);
        let mut handles = HandleList::default();
        m.encode(&mut w, &mut handles);
        self.tx = w.finish();
        self.last_tx_len = self.tx.len();
        handles
    }

    /// Send a message.
    pub fn send(&mut self, m: Tx) -> Result<(), ChannelError> {
        let by_lane = match self.lane.as_mut() {
            Some(l) => {
                l.in_flight = false;
                (l.goes_by_lane)(&m)
            }
            None => false,
        };
        if by_lane && self.lane.as_ref().is_some_and(|l| l.wants_reopen(crate::time::now_ns())) {
            self.open_lane();
        }
        let handles = self.encode(m);
        if by_lane && handles.handles.is_empty() && self.send_by_lane() {
            trim(&mut self.tx);
            return Ok(());
        }
        self.send_encoded(handles)
    }

    /// Send the encoded request by the lane, if it is open and the request
    /// fits; false if it did not go (it goes through the companion then).
    fn send_by_lane(&mut self) -> bool {
        let Some(l) = self.lane.as_mut() else { return false };
        let Some(ep) = l.ep.as_mut() else { return false };
        if self.tx.len() > ep.max_message() {
            return false;
        }
        match ep.send_raw(&self.tx, HandleList::default()) {
            Ok(()) => {
                l.in_flight = true;
                l.sent_at_ns = crate::time::now_ns();
                l.taken = 0;
                // Kept by swapping buffers, not by a copy.
                core::mem::swap(&mut l.kept, &mut self.tx);
                true
            }
            Err(_) => {
                l.broke(crate::time::now_ns());
                false
            }
        }
    }

    /// The lane's answer did not come (the lane broke, or was too slow):
    /// send its request again through the companion and skip the replies
    /// the lane gave.
    fn lane_fell_through(&mut self) -> Result<(), ChannelError> {
        let Some(l) = self.lane.as_mut() else { return Err(ChannelError::PeerClosed) };
        l.broke(crate::time::now_ns());
        let skip = l.taken;
        self.tx = core::mem::take(&mut l.kept);
        self.send_encoded(HandleList::default())?;
        for _ in 0..skip {
            self.recv_main(None)?;
        }
        Ok(())
    }

    /// Send what is encoded in the send buffer through the session.
    fn send_encoded(&mut self, handles: HandleList) -> Result<(), ChannelError> {
        if let Some(r) = self.resume.as_mut() {
            // A new request: the previous one is answered. One that
            // carries handles cannot be sent again, so it is not kept.
            // The kept bytes are the send buffer itself, swapped with the
            // previous request's (not a copy of a 64 KiB write each time).
            let spare = r.pending.take().map(|(_, mut b)| {
                b.clear();
                b
            });
            if handles.handles.is_empty() {
                r.pending = Some((r.next_seq, core::mem::replace(&mut self.tx, spare.unwrap_or_default())));
            }
            r.taken = 0;
            r.next_seq += 1;
        }
        // Kept bytes exist only for a request without handles.
        let bytes = self.resume.as_ref().and_then(|r| r.pending.as_ref()).map_or(&self.tx, |(_, kept)| kept);
        let mut sent = self.ep.send_raw(bytes, handles);
        if matches!(sent, Err(ChannelError::PeerClosed)) && self.resume.as_ref().is_some_and(|r| r.pending.is_some()) {
            // resume() sends the pending request again.
            sent = self.resume();
        }
        trim(&mut self.tx);
        sent
    }

    /// Send a message without handles only if the ring has room now
    /// (`Ok(false)`: full, nothing sent); see [`Endpoint::try_send_raw`].
    pub fn try_send(&mut self, m: Tx) -> Result<bool, ChannelError> {
        let handles = self.encode(m);
        if !handles.handles.is_empty() {
            return Err(ChannelError::Sys(Error::InvalidArgument));
        }
        let sent = self.ep.try_send_raw(&self.tx);
        trim(&mut self.tx);
        sent
    }

    /// Send a message, leaving the peer's wake-up to the returned
    /// [`PendingWake`] (see [`select_waking`]).
    pub fn send_deferred(&mut self, m: Tx) -> Result<PendingWake, ChannelError> {
        let handles = self.encode(m);
        let sent = self.ep.send_raw_deferred(&self.tx, handles);
        trim(&mut self.tx);
        sent
    }

    fn decode(bytes: &[u8], handles: Vec<OwnedHandle>) -> Result<Rx, ChannelError> {
        let mut q = HandleQueue::new(handles);
        let mut r = Reader::new(bytes);
        let m = Rx::decode(&mut r, &mut q)?;
        r.finish()?;
        // Handles it does not name would be dropped unseen (a hostile
        // sender's, or a peer that does not speak this protocol).
        if !q.is_empty() {
            return Err(ChannelError::Decode(DecodeError::ExtraHandles));
        }
        Ok(m)
    }

    /// Decode what was received into the receive buffer.
    fn decode_received(&mut self, handles: Vec<OwnedHandle>) -> Result<Rx, ChannelError> {
        let m = Self::decode(&self.rx, handles);
        trim(&mut self.rx);
        m
    }

    /// Wait for a message.
    pub fn recv(&mut self) -> Result<Rx, ChannelError> {
        self.recv_within(None)
    }

    /// Wait for a message up to `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Rx, ChannelError> {
        self.recv_within(Some(timeout))
    }

    fn recv_within(&mut self, timeout: Option<Duration>) -> Result<Rx, ChannelError> {
        if let Some(l) = self.lane.as_mut().filter(|l| l.in_flight) {
            let patience = timeout.map_or(lane::LANE_PATIENCE, |t| t.min(lane::LANE_PATIENCE));
            let got = match l.ep.as_mut() {
                Some(ep) => ep.recv_into(Some(patience), &mut self.rx),
                None => Err(ChannelError::PeerClosed),
            };
            match got {
                Ok(handles) => {
                    l.taken += 1;
                    l.fruitless = 0;
                    return self.decode_received(handles);
                }
                // The caller's own wait ended first, and the lane's
                // patience since the request went has not (a caller that
                // polls with short waits runs it out over several).
                Err(ChannelError::TimedOut)
                    if timeout.is_some_and(|t| t < lane::LANE_PATIENCE)
                        && crate::time::now_ns().saturating_sub(l.sent_at_ns)
                            < lane::LANE_PATIENCE.as_nanos() as u64 =>
                {
                    return Err(ChannelError::TimedOut)
                }
                Err(_) => self.lane_fell_through()?,
            }
        }
        self.recv_main(timeout)
    }

    /// Wait for a message on the session (not the lane) up to `timeout`.
    fn recv_main(&mut self, timeout: Option<Duration>) -> Result<Rx, ChannelError> {
        loop {
            match self.ep.recv_into(timeout, &mut self.rx) {
                Ok(handles) => {
                    if let Some(r) = self.resume.as_mut() {
                        r.taken += 1;
                        r.fruitless = 0;
                    }
                    return self.decode_received(handles);
                }
                Err(ChannelError::PeerClosed) if self.resume.as_ref().is_some_and(|r| r.pending.is_some()) => {
                    self.resume()?
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Take a message if one is waiting.
    pub fn try_recv(&mut self) -> Result<Option<Rx>, ChannelError> {
        match self.ep.try_recv_into(&mut self.rx)? {
            Some(handles) => self.decode_received(handles).map(Some),
            None => Ok(None),
        }
    }

    /// Send a request and wait for the reply (or, for a server, send a
    /// reply and wait for the next request): one kernel entry for the
    /// wake-up and the wait (see [`Endpoint::send_recv_raw`]).
    pub fn call(&mut self, m: Tx) -> Result<Rx, ChannelError> {
        if self.lane.is_some() {
            self.send(m)?;
            return self.recv();
        }
        let handles = self.encode(m);
        let sent = self.ep.send_recv_into(&self.tx, handles, None, &mut self.rx);
        trim(&mut self.tx);
        self.decode_received(sent?)
    }

    /// The endpoint underneath.
    pub fn endpoint(&self) -> &Endpoint {
        &self.ep
    }

    /// The endpoint, mutably.
    pub fn endpoint_mut(&mut self) -> &mut Endpoint {
        &mut self.ep
    }

    /// Untype.
    pub fn into_endpoint(self) -> Endpoint {
        self.ep
    }
}

impl<Tx: Message, Rx: Message> HasEndpoint for Channel<Tx, Rx> {
    /// The endpoint a wait watches: the lane's while the last request went
    /// by lane (its answer comes there), else the session's.
    fn endpoint(&self) -> &Endpoint {
        match self.lane.as_ref().filter(|l| l.in_flight).and_then(|l| l.ep.as_ref()) {
            Some(lane) => lane,
            None => &self.ep,
        }
    }
}

/// The handles a session hello carries: a duplicate of the shared
/// buffer's, if the session has one.
fn hello_handles(shared: Option<&(Memory, Mapping)>) -> Result<HandleList, ChannelError> {
    let mut list = HandleList::default();
    if let Some((memory, _)) = shared {
        list.push(memory.0.duplicate(resume::SHARED_RIGHTS)?);
    }
    Ok(list)
}

/// A directory error as a channel error (a resumable channel connects by
/// name).
fn dir_error(e: crate::directory::DirError) -> ChannelError {
    match e {
        crate::directory::DirError::Refused(e, _) => ChannelError::Sys(e),
        _ => ChannelError::PeerClosed,
    }
}
