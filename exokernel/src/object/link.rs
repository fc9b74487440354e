//! Links: a pair of peered endpoints that carry handles from one process to
//! another and wake each other. The data of a channel lives in shared
//! memory; the link is how handles move (a queue per end) and how a side
//! learns that its peer is gone (the "closed" bits, set when the last
//! handle to the peer end disappears, including when its process dies).

use super::{Event, KObject};
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use kintsugi_abi::{Error, Rights, MAX_LINK_QUEUE};
use spin::Mutex;

#[derive(Default)]
struct Side {
    closed: bool,
    binding: Option<(Arc<Event>, u64, u64)>,
    queue: VecDeque<(KObject, Rights)>,
}

struct Shared {
    sides: Mutex<[Side; 2]>,
}

/// Which end (0 or 1).
pub type LinkSide = usize;

/// One end of a link.
pub struct LinkEnd {
    shared: Arc<Shared>,
    side: LinkSide,
}

impl LinkEnd {
    /// A new link's two ends.
    pub fn pair() -> (Arc<LinkEnd>, Arc<LinkEnd>) {
        let shared = Arc::new(Shared { sides: Mutex::new([Side::default(), Side::default()]) });
        (Arc::new(LinkEnd { shared: shared.clone(), side: 0 }), Arc::new(LinkEnd { shared, side: 1 }))
    }

    fn peer(&self) -> LinkSide {
        1 - self.side
    }

    /// Whether `other` belongs to the same link.
    pub fn same_link(&self, other: &LinkEnd) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// Signal `event` with `signal_bits` when the peer signals, and with
    /// `closed_bits` when the peer closes (at once if it already has).
    pub fn bind(&self, event: Arc<Event>, signal_bits: u64, closed_bits: u64) {
        let peer_closed = {
            let mut sides = self.shared.sides.lock();
            sides[self.side].binding = Some((event.clone(), signal_bits, closed_bits));
            sides[self.peer()].closed
        };
        if peer_closed {
            event.signal(closed_bits);
        }
    }

    /// Set the signal bits on the event bound to the peer end.
    pub fn signal_peer(&self) -> Result<(), Error> {
        let target = {
            let sides = self.shared.sides.lock();
            let peer = &sides[self.peer()];
            if peer.closed {
                return Err(Error::PeerClosed);
            }
            peer.binding.as_ref().map(|(e, bits, _)| (e.clone(), *bits))
        };
        if let Some((event, bits)) = target {
            event.signal(bits);
        }
        Ok(())
    }

    /// Queue a handle's object for the peer. On failure the object comes
    /// back so the caller can keep it.
    pub fn send(&self, object: KObject, rights: Rights) -> Result<(), (Error, KObject)> {
        if let KObject::Link(l) = &object {
            if self.same_link(l) {
                return Err((Error::InvalidArgument, object));
            }
        }
        let mut sides = self.shared.sides.lock();
        let peer = &mut sides[1 - self.side];
        if peer.closed {
            return Err((Error::PeerClosed, object));
        }
        if peer.queue.len() >= MAX_LINK_QUEUE {
            return Err((Error::LimitReached, object));
        }
        peer.queue.push_back((object, rights));
        Ok(())
    }

    /// Take the oldest handle queued for this end.
    pub fn recv(&self) -> Option<(KObject, Rights)> {
        self.shared.sides.lock()[self.side].queue.pop_front()
    }

    /// Put a received handle back at the front (when the receiver's table
    /// was full).
    pub fn unrecv(&self, object: KObject, rights: Rights) {
        self.shared.sides.lock()[self.side].queue.push_front((object, rights));
    }
}

impl Drop for LinkEnd {
    fn drop(&mut self) {
        let (queue, notify) = {
            let mut sides = self.shared.sides.lock();
            sides[self.side].closed = true;
            sides[self.side].binding = None;
            let queue = core::mem::take(&mut sides[self.side].queue);
            let notify = sides[1 - self.side].binding.as_ref().map(|(e, _, closed)| (e.clone(), *closed));
            (queue, notify)
        };
        if let Some((event, bits)) = notify {
            event.signal(bits);
        }
        drop(queue);
    }
}
