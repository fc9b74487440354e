//! The e1000's descriptor rings as plain data: the legacy receive and
//! transmit descriptors (16 bytes each), what a written-back receive
//! descriptor means, and the transmit ring's head/tail bookkeeping. Pure,
//! so unit-tested on the host.

/// Bytes per descriptor.
pub const DESC_SIZE: usize = 16;

/// Receive status: descriptor done.
pub const RX_DD: u8 = 1 << 0;
/// Receive status: end of packet.
pub const RX_EOP: u8 = 1 << 1;
/// Transmit command: end of packet.
pub const TX_EOP: u8 = 1 << 0;
/// Transmit command: insert the FCS.
pub const TX_IFCS: u8 = 1 << 1;
/// Transmit command: report status (write back DD).
pub const TX_RS: u8 = 1 << 3;
/// Transmit status: descriptor done.
pub const TX_DD: u8 = 1 << 0;

/// A receive descriptor as the device wrote it back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxDesc {
    /// Buffer address (the driver's).
    pub addr: u64,
    /// Bytes received into the buffer.
    pub length: u16,
    /// Status bits.
    pub status: u8,
    /// Error bits.
    pub errors: u8,
}

impl RxDesc {
    /// Decode the 16 bytes of a descriptor.
    pub fn from_bytes(b: &[u8; DESC_SIZE]) -> RxDesc {
        RxDesc {
            addr: u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
            length: u16::from_le_bytes([b[8], b[9]]),
            status: b[12],
            errors: b[13],
        }
    }
}

/// A fresh receive descriptor for the buffer at `addr`.
pub fn rx_desc(addr: u64) -> [u8; DESC_SIZE] {
    let mut d = [0u8; DESC_SIZE];
    d[..8].copy_from_slice(&addr.to_le_bytes());
    d
}

/// A transmit descriptor sending `len` bytes at `addr` as one frame.
pub fn tx_desc(addr: u64, len: u16) -> [u8; DESC_SIZE] {
    let mut d = [0u8; DESC_SIZE];
    d[..8].copy_from_slice(&addr.to_le_bytes());
    d[8..10].copy_from_slice(&len.to_le_bytes());
    d[11] = TX_EOP | TX_IFCS | TX_RS;
    d
}

/// What a receive descriptor holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rx {
    /// The device has not filled it yet.
    Empty,
    /// A whole frame of this many bytes.
    Frame(usize),
    /// Something to throw away (the reason).
    Drop(&'static str),
}

/// Judge a receive descriptor whose buffer holds `buffer` bytes.
/// `discarding` carries across descriptors: a frame spread over several
/// (never, with 2 KiB buffers and long packets off, unless the device is
/// broken) is dropped whole.
pub fn classify(d: &RxDesc, buffer: usize, discarding: &mut bool) -> Rx {
    if d.status & RX_DD == 0 {
        return Rx::Empty;
    }
    if d.status & RX_EOP == 0 {
        *discarding = true;
        return Rx::Drop("frame spans descriptors");
    }
    if core::mem::take(discarding) {
        return Rx::Drop("end of a frame that spans descriptors");
    }
    if d.errors != 0 {
        return Rx::Drop("receive error");
    }
    let len = d.length as usize;
    if len > buffer {
        return Rx::Drop("length beyond the buffer");
    }
    if len < crate::net::MIN_FRAME {
        return Rx::Drop("runt");
    }
    Rx::Frame(len)
}

/// A transmit ring: descriptors `head..tail` (mod size) are with the
/// device; one is always left empty so a full ring differs from an empty
/// one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxRing {
    size: usize,
    head: usize,
    tail: usize,
}

impl TxRing {
    /// An empty ring of `size` descriptors.
    pub fn new(size: usize) -> TxRing {
        TxRing { size: size.max(2), head: 0, tail: 0 }
    }

    /// Descriptors with the device.
    pub fn in_flight(&self) -> usize {
        (self.tail + self.size - self.head) % self.size
    }

    /// Whether no descriptor can be added.
    pub fn is_full(&self) -> bool {
        self.in_flight() == self.size - 1
    }

    /// Claim the next descriptor; its index.
    pub fn push(&mut self) -> Option<usize> {
        if self.is_full() {
            return None;
        }
        let i = self.tail;
        self.tail = (self.tail + 1) % self.size;
        Some(i)
    }

    /// The oldest descriptor with the device.
    pub fn oldest(&self) -> Option<usize> {
        (self.in_flight() > 0).then_some(self.head)
    }

    /// Give the oldest descriptor back (the device is done with it).
    pub fn pop(&mut self) -> Option<usize> {
        let i = self.oldest()?;
        self.head = (self.head + 1) % self.size;
        Some(i)
    }

    /// The value for the tail register.
    pub fn tail(&self) -> usize {
        self.tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(length: u16, status: u8, errors: u8) -> RxDesc {
        RxDesc { addr: 0x1000, length, status, errors }
    }

    #[test]
    fn descriptors_encode_and_decode() {
        let t = tx_desc(0x1234_5678_9abc, 1514);
        assert_eq!(&t[..8], &0x1234_5678_9abcu64.to_le_bytes());
        assert_eq!(&t[8..10], &1514u16.to_le_bytes());
        assert_eq!(t[11], 0b1011);
        assert_eq!(t[12], 0, "status clear");
        let mut b = rx_desc(0xdead_b000);
        b[8..10].copy_from_slice(&60u16.to_le_bytes());
        b[12] = RX_DD | RX_EOP;
        b[13] = 0x80;
        assert_eq!(RxDesc::from_bytes(&b), RxDesc { addr: 0xdead_b000, length: 60, status: 3, errors: 0x80 });
    }

    #[test]
    fn receive_descriptors_are_judged() {
        let mut d = false;
        assert_eq!(classify(&done(60, 0, 0), 2048, &mut d), Rx::Empty);
        assert_eq!(classify(&done(60, RX_DD | RX_EOP, 0), 2048, &mut d), Rx::Frame(60));
        assert_eq!(classify(&done(2049, RX_DD | RX_EOP, 0), 2048, &mut d), Rx::Drop("length beyond the buffer"));
        assert_eq!(classify(&done(13, RX_DD | RX_EOP, 0), 2048, &mut d), Rx::Drop("runt"));
        assert_eq!(classify(&done(60, RX_DD | RX_EOP, 1), 2048, &mut d), Rx::Drop("receive error"));
        // A frame over three descriptors is dropped whole.
        assert!(matches!(classify(&done(2048, RX_DD, 0), 2048, &mut d), Rx::Drop(_)));
        assert!(matches!(classify(&done(2048, RX_DD, 0), 2048, &mut d), Rx::Drop(_)));
        assert!(matches!(classify(&done(100, RX_DD | RX_EOP, 0), 2048, &mut d), Rx::Drop(_)));
        assert!(!d);
        assert_eq!(classify(&done(64, RX_DD | RX_EOP, 0), 2048, &mut d), Rx::Frame(64));
    }

    #[test]
    fn transmit_ring_wraps_and_fills() {
        let mut r = TxRing::new(4);
        assert_eq!((r.push(), r.push(), r.push()), (Some(0), Some(1), Some(2)));
        assert!(r.is_full());
        assert_eq!(r.push(), None);
        assert_eq!(r.tail(), 3);
        assert_eq!(r.pop(), Some(0));
        assert_eq!(r.push(), Some(3));
        assert_eq!(r.tail(), 0, "wrapped");
        assert_eq!(r.in_flight(), 3);
        assert_eq!((r.pop(), r.pop(), r.pop(), r.pop()), (Some(1), Some(2), Some(3), None));
        assert_eq!(r.oldest(), None);
        assert_eq!(r.push(), Some(0));
    }
}
