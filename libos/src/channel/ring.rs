//! The shared-memory layout of a channel and its two single-producer,
//! single-consumer record rings.
//!
//! Layout of a channel's memory object: one control page, then the ring of
//! direction 0 (side A writes, side B reads), then the ring of direction 1.
//! Each ring is a power-of-two byte array holding 8-byte-aligned records:
//! a `u32` payload length, a `u32` handle count, then the payload. A record
//! never wraps; a pad record fills the end of the array instead.
//!
//! Positions are free-running `u32` byte counters. Each side keeps its own
//! position privately and only publishes it, and everything read from the
//! shared page is checked: the peer is another process and may be broken or
//! hostile, so a bad position or length is [`RingError::Corrupt`], never an
//! out-of-bounds access. Payloads are copied out before they are decoded, so
//! the peer cannot change them under the decoder.

use alloc::vec::Vec;
use core::sync::atomic::{fence, AtomicU32, Ordering};

/// Size of the control page.
pub const CONTROL_BYTES: usize = 4096;
const MAGIC: u32 = 0x4b43_484e; // "KCHN"
const PAD: u32 = u32::MAX;
const HEADER: usize = 8;

/// Per-direction shared state (two cache lines: producer's, consumer's).
#[repr(C)]
struct Direction {
    head: AtomicU32,
    tx_waiting: AtomicU32,
    _producer: [u32; 14],
    tail: AtomicU32,
    rx_waiting: AtomicU32,
    _consumer: [u32; 14],
}

/// The control page.
#[repr(C)]
struct Control {
    magic: AtomicU32,
    ring_bytes: AtomicU32,
    _pad: [u32; 14],
    dirs: [Direction; 2],
}

/// Ring failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// Not enough free space now.
    Full,
    /// The record can never fit.
    TooBig,
    /// The shared state is inconsistent (the peer broke it).
    Corrupt,
}

/// One side's view of a channel's shared memory.
pub struct Rings {
    base: *mut u8,
    ring_bytes: u32,
    /// 0 for side A, 1 for side B.
    side: usize,
    /// Our private copy of the position we publish as producer.
    tx_head: u32,
    /// Our private copy of the position we publish as consumer.
    rx_tail: u32,
}

// SAFETY: the memory is shared with another process by design; all access
// goes through atomics (positions) or copies bounded by validated lengths.
unsafe impl Send for Rings {}

/// Bytes of shared memory a channel with `ring_bytes` per direction needs.
pub const fn total_bytes(ring_bytes: usize) -> usize {
    CONTROL_BYTES + 2 * ring_bytes
}

impl Rings {
    /// Initialise fresh (zeroed) memory of [`total_bytes`]`(ring_bytes)` and
    /// return side A's view.
    ///
    /// # Safety
    /// `base` must point at that many writable bytes that stay mapped while
    /// any view exists.
    pub unsafe fn create(base: *mut u8, ring_bytes: usize) -> Rings {
        assert!(ring_bytes.is_power_of_two() && (64..=1 << 30).contains(&ring_bytes));
        // SAFETY: per the contract, base is valid for the control page.
        let ctl = unsafe { &*(base as *const Control) };
        ctl.ring_bytes.store(ring_bytes as u32, Ordering::Relaxed);
        ctl.magic.store(MAGIC, Ordering::Release);
        Rings { base, ring_bytes: ring_bytes as u32, side: 0, tx_head: 0, rx_tail: 0 }
    }

    /// Attach to memory set up by [`Rings::create`], as `side` (0 = A,
    /// 1 = B), checking that the control page fits `mapped_bytes`.
    ///
    /// # Safety
    /// `base` must point at `mapped_bytes` writable bytes that stay mapped
    /// while the view exists.
    pub unsafe fn attach(base: *mut u8, mapped_bytes: usize, side: usize) -> Result<Rings, RingError> {
        if mapped_bytes < CONTROL_BYTES || side > 1 {
            return Err(RingError::Corrupt);
        }
        // SAFETY: per the contract, base is valid for the control page.
        let ctl = unsafe { &*(base as *const Control) };
        let ring_bytes = ctl.ring_bytes.load(Ordering::Acquire);
        if ctl.magic.load(Ordering::Acquire) != MAGIC
            || !ring_bytes.is_power_of_two()
            || ring_bytes < 64
            || total_bytes(ring_bytes as usize) > mapped_bytes
        {
            return Err(RingError::Corrupt);
        }
        let mut r = Rings { base, ring_bytes, side, tx_head: 0, rx_tail: 0 };
        r.tx_head = r.dir(side).head.load(Ordering::Acquire);
        r.rx_tail = r.dir(1 - side).tail.load(Ordering::Acquire);
        if !r.tx_head.is_multiple_of(8) || !r.rx_tail.is_multiple_of(8) {
            return Err(RingError::Corrupt);
        }
        Ok(r)
    }

    fn ctl(&self) -> &Control {
        // SAFETY: base points at the control page for the view's lifetime.
        unsafe { &*(self.base as *const Control) }
    }

    fn dir(&self, d: usize) -> &Direction {
        &self.ctl().dirs[d]
    }

    fn data(&self, d: usize) -> *mut u8 {
        // SAFETY: within the mapping: control page + d rings.
        unsafe { self.base.add(CONTROL_BYTES + d * self.ring_bytes as usize) }
    }

    /// Largest payload one record can carry.
    pub fn max_payload(&self) -> usize {
        self.ring_bytes as usize / 2 - HEADER
    }

    fn write_u32(&self, d: usize, at: u32, v: u32) {
        // SAFETY: `at` is an 8-aligned offset inside ring `d` with room for
        // a header (callers compute it from validated positions).
        unsafe { core::ptr::write_volatile(self.data(d).add(at as usize) as *mut u32, v) }
    }

    fn read_u32(&self, d: usize, at: u32) -> u32 {
        // SAFETY: as in write_u32.
        unsafe { core::ptr::read_volatile(self.data(d).add(at as usize) as *const u32) }
    }

    /// Whether a record with `len` payload bytes fits now (`TooBig` if it
    /// never will).
    pub fn can_write(&self, len: usize) -> Result<bool, RingError> {
        if len > self.max_payload() {
            return Err(RingError::TooBig);
        }
        let cap = self.ring_bytes;
        let need = (HEADER + len).next_multiple_of(8) as u32;
        let used = self.tx_head.wrapping_sub(self.dir(self.side).tail.load(Ordering::Acquire));
        if used > cap {
            return Err(RingError::Corrupt);
        }
        let to_end = cap - (self.tx_head & (cap - 1));
        let pad = if need > to_end { to_end } else { 0 };
        Ok(pad + need <= cap - used)
    }

    /// Append a record to our outgoing ring.
    pub fn try_write(&mut self, payload: &[u8], handles: u32) -> Result<(), RingError> {
        let d = self.side;
        let cap = self.ring_bytes;
        if payload.len() > self.max_payload() {
            return Err(RingError::TooBig);
        }
        let need = (HEADER + payload.len()).next_multiple_of(8) as u32;
        let tail = self.dir(d).tail.load(Ordering::Acquire);
        let used = self.tx_head.wrapping_sub(tail);
        if used > cap {
            return Err(RingError::Corrupt);
        }
        let free = cap - used;
        let at = self.tx_head & (cap - 1);
        let to_end = cap - at;
        let pad = if need > to_end { to_end } else { 0 };
        if pad + need > free {
            return Err(RingError::Full);
        }
        if pad > 0 {
            self.write_u32(d, at, PAD);
            self.write_u32(d, at + 4, 0);
        }
        let at = (self.tx_head + pad) & (cap - 1);
        self.write_u32(d, at, payload.len() as u32);
        self.write_u32(d, at + 4, handles);
        // SAFETY: at + need <= cap (no wrap, checked above); payload fits.
        unsafe {
            core::ptr::copy_nonoverlapping(payload.as_ptr(), self.data(d).add(at as usize + HEADER), payload.len());
        }
        self.tx_head = self.tx_head.wrapping_add(pad + need);
        self.dir(d).head.store(self.tx_head, Ordering::Release);
        Ok(())
    }

    /// Take the next record from our incoming ring into `out` (replacing its
    /// contents); returns its handle count, or `None` if the ring is empty.
    pub fn try_read(&mut self, out: &mut Vec<u8>) -> Result<Option<u32>, RingError> {
        let d = 1 - self.side;
        let cap = self.ring_bytes;
        loop {
            let head = self.dir(d).head.load(Ordering::Acquire);
            let avail = head.wrapping_sub(self.rx_tail);
            if avail > cap || !avail.is_multiple_of(8) {
                return Err(RingError::Corrupt);
            }
            if avail == 0 {
                return Ok(None);
            }
            let at = self.rx_tail & (cap - 1);
            let len = self.read_u32(d, at);
            if len == PAD {
                let to_end = cap - at;
                if to_end > avail {
                    return Err(RingError::Corrupt);
                }
                self.rx_tail = self.rx_tail.wrapping_add(to_end);
                continue;
            }
            let handles = self.read_u32(d, at + 4);
            let need = (HEADER as u64 + len as u64).next_multiple_of(8);
            if need > avail as u64 || need > (cap - at) as u64 {
                return Err(RingError::Corrupt);
            }
            out.clear();
            out.reserve(len as usize);
            // SAFETY: at + HEADER + len <= cap (checked against need), so
            // the source is inside the ring; `out` has room for `len`
            // bytes (reserved, not zeroed first: a memset as long as the
            // copy), every one of which the copy writes before `set_len`.
            unsafe {
                core::ptr::copy_nonoverlapping(self.data(d).add(at as usize + HEADER), out.as_mut_ptr(), len as usize);
                out.set_len(len as usize);
            }
            self.rx_tail = self.rx_tail.wrapping_add(need as u32);
            self.dir(d).tail.store(self.rx_tail, Ordering::Release);
            return Ok(Some(handles));
        }
    }

    /// Bytes of our outgoing ring the peer has not read yet (records and
    /// pads).
    pub fn tx_unread(&self) -> Result<usize, RingError> {
        let used = self.tx_head.wrapping_sub(self.dir(self.side).tail.load(Ordering::Acquire));
        if used > self.ring_bytes {
            return Err(RingError::Corrupt);
        }
        Ok(used as usize)
    }

    /// Whether a record (or pad) is waiting in our incoming ring.
    pub fn can_read(&self) -> bool {
        self.dir(1 - self.side).head.load(Ordering::Acquire) != self.rx_tail
    }

    /// Say we are about to sleep until the peer writes; returns whether
    /// something is already there (then do not sleep).
    pub fn arm_rx(&self) -> bool {
        self.dir(1 - self.side).rx_waiting.store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        self.can_read()
    }

    /// We are awake again.
    pub fn disarm_rx(&self) {
        self.dir(1 - self.side).rx_waiting.store(0, Ordering::Relaxed);
    }

    /// Say we are about to sleep until the peer frees space.
    pub fn arm_tx(&self) {
        self.dir(self.side).tx_waiting.store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// We are awake again.
    pub fn disarm_tx(&self) {
        self.dir(self.side).tx_waiting.store(0, Ordering::Relaxed);
    }

    /// After writing: whether the peer sleeps waiting for data (so it must be
    /// woken).
    pub fn peer_wants_data(&self) -> bool {
        fence(Ordering::SeqCst);
        self.dir(self.side).rx_waiting.load(Ordering::Relaxed) != 0
    }

    /// After reading: whether the peer sleeps waiting for space.
    pub fn peer_wants_space(&self) -> bool {
        fence(Ordering::SeqCst);
        self.dir(1 - self.side).tx_waiting.load(Ordering::Relaxed) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn unread_bytes_count_what_the_peer_has_not_read() {
        let mut mem = Mem::new(256);
        let (mut a, mut b) = pair(&mut mem, 256);
        assert_eq!(a.tx_unread(), Ok(0));
        a.try_write(&[1; 5], 0).unwrap();
        a.try_write(&[2; 8], 0).unwrap();
        assert_eq!(a.tx_unread(), Ok(16 + 16));
        let mut buf = Vec::new();
        b.try_read(&mut buf).unwrap();
        assert_eq!(a.tx_unread(), Ok(16));
        b.try_read(&mut buf).unwrap();
        assert_eq!(a.tx_unread(), Ok(0));
    }

    struct Mem(Vec<u64>);

    impl Mem {
        fn new(ring: usize) -> Mem {
            Mem(alloc::vec![0u64; total_bytes(ring) / 8])
        }
        fn ptr(&mut self) -> *mut u8 {
            self.0.as_mut_ptr() as *mut u8
        }
        fn len(&self) -> usize {
            self.0.len() * 8
        }
    }

    fn pair(mem: &mut Mem, ring: usize) -> (Rings, Rings) {
        let len = mem.len();
        // SAFETY: the test memory outlives both views.
        unsafe { (Rings::create(mem.ptr(), ring), Rings::attach(mem.ptr(), len, 1).unwrap()) }
    }

    #[test]
    fn messages_arrive_in_order_both_ways() {
        let mut mem = Mem::new(256);
        let (mut a, mut b) = pair(&mut mem, 256);
        let mut out = Vec::new();
        for i in 0..1000u32 {
            let msg = i.to_le_bytes().repeat((i % 7) as usize + 1);
            a.try_write(&msg, i % 3).unwrap();
            assert_eq!(b.try_read(&mut out).unwrap(), Some(i % 3));
            assert_eq!(out, msg);
            b.try_write(&msg, 0).unwrap();
            assert_eq!(a.try_read(&mut out).unwrap(), Some(0));
            assert_eq!(out, msg);
        }
        assert_eq!(a.try_read(&mut out).unwrap(), None);
    }

    #[test]
    fn full_and_too_big() {
        let mut mem = Mem::new(64);
        let (mut a, mut b) = pair(&mut mem, 64);
        assert_eq!(a.try_write(&[0; 40], 0), Err(RingError::TooBig));
        a.try_write(&[1; 24], 0).unwrap();
        a.try_write(&[2; 24], 0).unwrap();
        assert_eq!(a.try_write(&[3; 8], 0), Err(RingError::Full));
        let mut out = Vec::new();
        b.try_read(&mut out).unwrap();
        assert_eq!(out, [1; 24]);
        a.try_write(&[3; 8], 0).unwrap();
        b.try_read(&mut out).unwrap();
        assert_eq!(out, [2; 24]);
        b.try_read(&mut out).unwrap();
        assert_eq!(out, [3; 8]);
    }

    #[test]
    fn corrupt_positions_are_detected() {
        let mut mem = Mem::new(64);
        let (mut a, mut b) = pair(&mut mem, 64);
        a.try_write(b"hello", 0).unwrap();
        // The peer scribbles a huge length into the record header.
        // SAFETY: writing inside the test's own memory.
        unsafe { *(mem.ptr().add(CONTROL_BYTES) as *mut u32) = 1000 };
        let mut out = Vec::new();
        assert_eq!(b.try_read(&mut out), Err(RingError::Corrupt));
        // The peer moves its head far beyond the tail.
        // SAFETY: as above; head of direction 0 is at offset 64.
        unsafe { *(mem.ptr().add(64) as *mut u32) = 10_000 };
        assert_eq!(b.try_read(&mut out), Err(RingError::Corrupt));
    }

    #[test]
    fn attach_checks_the_control_page() {
        let mut mem = Mem::new(64);
        let len = mem.len();
        // SAFETY: test memory.
        unsafe {
            assert!(Rings::attach(mem.ptr(), len, 1).is_err(), "no magic yet");
            Rings::create(mem.ptr(), 64);
            assert!(Rings::attach(mem.ptr(), 100, 1).is_err(), "mapping too small");
            assert!(Rings::attach(mem.ptr(), len, 2).is_err(), "no such side");
            *(mem.ptr().add(4) as *mut u32) = 1 << 20;
            assert!(Rings::attach(mem.ptr(), len, 1).is_err(), "ring larger than mapping");
        }
    }

    proptest! {
        #[test]
        fn random_traffic_matches_a_queue(sizes in proptest::collection::vec(0usize..100, 1..200)) {
            let mut mem = Mem::new(256);
            let (mut a, mut b) = pair(&mut mem, 256);
            let mut model = std::collections::VecDeque::new();
            let mut out = Vec::new();
            for (i, n) in sizes.into_iter().enumerate() {
                let msg = alloc::vec![i as u8; n];
                match a.try_write(&msg, 0) {
                    Ok(()) => model.push_back(msg),
                    Err(RingError::Full) => {
                        while let Some(m) = model.pop_front() {
                            prop_assert_eq!(b.try_read(&mut out).unwrap(), Some(0));
                            prop_assert_eq!(&out, &m);
                        }
                    }
                    Err(e) => prop_assert!(false, "{:?}", e),
                }
            }
            while let Some(m) = model.pop_front() {
                prop_assert_eq!(b.try_read(&mut out).unwrap(), Some(0));
                prop_assert_eq!(&out, &m);
            }
            prop_assert_eq!(b.try_read(&mut out).unwrap(), None);
        }

        #[test]
        fn scribbled_memory_never_panics(writes in proptest::collection::vec((0usize..(4096 + 512), any::<u8>()), 0..50)) {
            let mut mem = Mem::new(256);
            let (mut a, mut b) = pair(&mut mem, 256);
            let _ = a.try_write(b"some payload", 1);
            for (at, v) in writes {
                // SAFETY: inside the test memory.
                unsafe { *mem.ptr().add(at) = v };
            }
            let mut out = Vec::new();
            for _ in 0..10 {
                let _ = b.try_read(&mut out);
                let _ = b.try_write(b"x", 0);
                let _ = a.try_read(&mut out);
            }
        }
    }
}
