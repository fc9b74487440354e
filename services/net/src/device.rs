//! The stack's side of the wire: a smoltcp [`Device`] over two frame
//! queues (frames received, waiting for the interface; frames the
//! interface produced, waiting to go to `nic`), the checks a received
//! frame passes before smoltcp sees it (each failure dropped and counted by
//! reason, so bad input from the wire is visible in `net`'s figures), and
//! the count of TCP segments sent again.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec;
use alloc::vec::Vec;
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::{
    ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol, Icmpv4Packet, Icmpv6Packet, IpAddress,
    IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket, UdpPacket,
};

/// Shortest Ethernet frame (the header).
pub const MIN_FRAME: usize = 14;
/// Longest Ethernet frame without the CRC.
pub const MAX_FRAME: usize = 1514;
/// Most frames one event may produce before the interface waits for the
/// next (the rest follow at once on the next timer).
const TX_LIMIT: usize = 512;
/// Most received frames held for the interface at once; a flood beyond it
/// is dropped.
const RX_LIMIT: usize = 1024;
/// Most connections whose highest sequence number sent is kept.
const MAX_TRACKED: usize = 4096;

/// Why a received frame was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Shorter than an Ethernet header or longer than 1514 bytes.
    Length,
    /// Addressed to another station.
    NotForUs,
    /// An EtherType the stack does not speak.
    Protocol,
    /// A truncated or inconsistent header.
    Malformed,
    /// A bad checksum.
    Checksum,
    /// An IPv4 fragment (the stack does not reassemble).
    Fragment,
    /// More frames than the stack holds at once.
    Overflow,
    /// A connection request (TCP SYN) to a port whose listener has no free
    /// slot: its backlog is full of connections not yet accepted.
    Backlog,
}

/// Frame counters.
#[derive(Clone, Debug, Default)]
pub struct FrameCounters {
    /// Frames received (before any check).
    pub frames_in: u64,
    /// Their bytes.
    pub bytes_in: u64,
    /// Frames sent.
    pub frames_out: u64,
    /// Their bytes.
    pub bytes_out: u64,
    /// Received frames dropped, by reason (indexed as [`DropReason`]).
    pub dropped: [u64; 8],
    /// TCP segments that carried sequence space already sent once.
    pub retransmissions: u64,
}

impl FrameCounters {
    /// Every dropped frame.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }
}

/// Where the highest sequence number sent on each connection is kept, to
/// recognise segments sent again: `(local port, remote address, remote
/// port)` -> one past the last sequence number sent.
#[derive(Default)]
pub struct Retransmits {
    sent_up_to: BTreeMap<(u16, [u8; 16], u16), i32>,
}

fn addr16(a: IpAddress) -> [u8; 16] {
    let mut out = [0u8; 16];
    match a {
        IpAddress::Ipv4(v) => out[..4].copy_from_slice(&v.octets()),
        IpAddress::Ipv6(v) => out.copy_from_slice(&v.octets()),
    }
    out
}

impl Retransmits {
    /// Look at one outgoing frame; true if it is a TCP segment sent again.
    fn observe(&mut self, frame: &[u8]) -> bool {
        let Ok(eth) = EthernetFrame::new_checked(frame) else { return false };
        let (src, dst, proto, payload) = match eth.ethertype() {
            EthernetProtocol::Ipv4 => {
                let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else { return false };
                (IpAddress::Ipv4(ip.src_addr()), IpAddress::Ipv4(ip.dst_addr()), ip.next_header(), ip.payload())
            }
            EthernetProtocol::Ipv6 => {
                let Ok(ip) = Ipv6Packet::new_checked(eth.payload()) else { return false };
                (IpAddress::Ipv6(ip.src_addr()), IpAddress::Ipv6(ip.dst_addr()), ip.next_header(), ip.payload())
            }
            _ => return false,
        };
        let _ = src;
        if proto != IpProtocol::Tcp {
            return false;
        }
        let Ok(tcp) = TcpPacket::new_checked(payload) else { return false };
        let len = tcp.payload().len() as i32 + tcp.syn() as i32 + tcp.fin() as i32;
        if tcp.rst() || len == 0 {
            return false;
        }
        let seq = tcp.seq_number().0;
        let end = seq.wrapping_add(len);
        let key = (tcp.src_port(), addr16(dst), tcp.dst_port());
        match self.sent_up_to.get_mut(&key) {
            Some(high) if !tcp.syn() => {
                let again = end.wrapping_sub(*high) <= 0;
                if end.wrapping_sub(*high) > 0 {
                    *high = end;
                }
                again
            }
            Some(high) => {
                // A SYN again (same initial sequence number) or a new connection on the same ports.
                let again = *high == end;
                *high = end;
                again
            }
            None => {
                if self.sent_up_to.len() >= MAX_TRACKED {
                    // Connections that ended without being forgotten: start over.
                    self.sent_up_to.clear();
                }
                self.sent_up_to.insert(key, end);
                false
            }
        }
    }

    /// Forget a connection.
    pub fn forget(&mut self, local_port: u16, remote: IpAddress, remote_port: u16) {
        self.sent_up_to.remove(&(local_port, addr16(remote), remote_port));
    }
}

/// The interface's device: frames in, frames out.
pub struct FrameDevice {
    /// Received frames that passed the checks, for the interface.
    pub rx: VecDeque<Vec<u8>>,
    /// Frames the interface produced.
    pub tx: Vec<Vec<u8>>,
    /// The counters.
    pub counters: FrameCounters,
    /// Segments sent again.
    pub retransmits: Retransmits,
}

impl FrameDevice {
    /// An idle device.
    pub fn new() -> FrameDevice {
        FrameDevice {
            rx: VecDeque::new(),
            tx: Vec::new(),
            counters: FrameCounters::default(),
            retransmits: Retransmits::default(),
        }
    }

    /// Take a received frame for the interface if it passes the checks
    /// (counted either way).
    pub fn deliver(&mut self, frame: Vec<u8>, mac: EthernetAddress) {
        self.counters.frames_in += 1;
        self.counters.bytes_in += frame.len() as u64;
        let verdict = if self.rx.len() >= RX_LIMIT { Err(DropReason::Overflow) } else { check(&frame, mac) };
        match verdict {
            Ok(()) => self.rx.push_back(frame),
            Err(reason) => self.counters.dropped[reason as usize] += 1,
        }
    }

    /// Count a frame received and dropped for `reason` before the checks.
    pub fn refuse(&mut self, frame: &[u8], reason: DropReason) {
        self.counters.frames_in += 1;
        self.counters.bytes_in += frame.len() as u64;
        self.counters.dropped[reason as usize] += 1;
    }

    /// Take the frames produced so far.
    pub fn take_tx(&mut self) -> Vec<Vec<u8>> {
        core::mem::take(&mut self.tx)
    }

    /// Whether the transmit queue is full (the interface has more to send).
    pub fn tx_full(&self) -> bool {
        self.tx.len() >= TX_LIMIT
    }
}

/// Check that a received frame is for us and well-formed down to the
/// transport header and its checksum (the IP layers smoltcp would otherwise
/// drop silently).
pub fn check(frame: &[u8], mac: EthernetAddress) -> Result<(), DropReason> {
    if !(MIN_FRAME..=MAX_FRAME).contains(&frame.len()) {
        return Err(DropReason::Length);
    }
    let eth = EthernetFrame::new_checked(frame).map_err(|_| DropReason::Length)?;
    let dst = eth.dst_addr();
    if dst != mac && !dst.is_broadcast() && !dst.is_multicast() {
        return Err(DropReason::NotForUs);
    }
    match eth.ethertype() {
        EthernetProtocol::Arp => {
            let p = ArpPacket::new_checked(eth.payload()).map_err(|_| DropReason::Malformed)?;
            ArpRepr::parse(&p).map(|_| ()).map_err(|_| DropReason::Malformed)
        }
        EthernetProtocol::Ipv4 => {
            let ip = Ipv4Packet::new_checked(eth.payload()).map_err(|_| DropReason::Malformed)?;
            if !ip.verify_checksum() {
                return Err(DropReason::Checksum);
            }
            if ip.more_frags() || ip.frag_offset() != 0 {
                return Err(DropReason::Fragment);
            }
            let (src, dst) = (IpAddress::Ipv4(ip.src_addr()), IpAddress::Ipv4(ip.dst_addr()));
            check_transport(ip.next_header(), ip.payload(), src, dst)
        }
        EthernetProtocol::Ipv6 => {
            let ip = Ipv6Packet::new_checked(eth.payload()).map_err(|_| DropReason::Malformed)?;
            let (src, dst) = (IpAddress::Ipv6(ip.src_addr()), IpAddress::Ipv6(ip.dst_addr()));
            check_transport(ip.next_header(), ip.payload(), src, dst)
        }
        _ => Err(DropReason::Protocol),
    }
}

/// The destination port of `frame` if it is a TCP connection request
/// (SYN without ACK) over IPv4 or IPv6 (without extension headers);
/// nothing for any other frame, or one too short to say.
pub fn syn_port(frame: &[u8]) -> Option<u16> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let (proto, payload) = match eth.ethertype() {
        EthernetProtocol::Ipv4 => {
            let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
            (ip.next_header(), ip.payload())
        }
        EthernetProtocol::Ipv6 => {
            let ip = Ipv6Packet::new_checked(eth.payload()).ok()?;
            (ip.next_header(), ip.payload())
        }
        _ => return None,
    };
    if proto != IpProtocol::Tcp {
        return None;
    }
    let tcp = TcpPacket::new_checked(payload).ok()?;
    (tcp.syn() && !tcp.ack()).then(|| tcp.dst_port())
}

fn check_transport(proto: IpProtocol, payload: &[u8], src: IpAddress, dst: IpAddress) -> Result<(), DropReason> {
    let ok = match proto {
        IpProtocol::Tcp => {
            TcpPacket::new_checked(payload).map_err(|_| DropReason::Malformed)?.verify_checksum(&src, &dst)
        }
        IpProtocol::Udp => {
            UdpPacket::new_checked(payload).map_err(|_| DropReason::Malformed)?.verify_checksum(&src, &dst)
        }
        IpProtocol::Icmp => Icmpv4Packet::new_checked(payload).map_err(|_| DropReason::Malformed)?.verify_checksum(),
        IpProtocol::Icmpv6 => match (src, dst) {
            (IpAddress::Ipv6(s), IpAddress::Ipv6(d)) => {
                Icmpv6Packet::new_checked(payload).map_err(|_| DropReason::Malformed)?.verify_checksum(&s, &d)
            }
            _ => false,
        },
        // Other protocols (and IPv6 extension headers): smoltcp answers or drops them itself.
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(DropReason::Checksum)
    }
}

/// A received frame handed to the interface.
pub struct RxToken(Vec<u8>);

/// Room for one frame the interface sends.
pub struct TxToken<'a> {
    tx: &'a mut Vec<Vec<u8>>,
    counters: &'a mut FrameCounters,
    retransmits: &'a mut Retransmits,
}

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0u8; len];
        let r = f(&mut frame);
        self.counters.frames_out += 1;
        self.counters.bytes_out += len as u64;
        if self.retransmits.observe(&frame) {
            self.counters.retransmissions += 1;
        }
        self.tx.push(frame);
        r
    }
}

impl Device for FrameDevice {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxToken, TxToken<'_>)> {
        let frame = self.rx.pop_front()?;
        let tx = TxToken { tx: &mut self.tx, counters: &mut self.counters, retransmits: &mut self.retransmits };
        Some((RxToken(frame), tx))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'_>> {
        if self.tx.len() >= TX_LIMIT {
            return None;
        }
        Some(TxToken { tx: &mut self.tx, counters: &mut self.counters, retransmits: &mut self.retransmits })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MAX_FRAME;
        caps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runts_giants_and_strangers_are_dropped() {
        let mac = EthernetAddress([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
        assert_eq!(check(&[0u8; 10], mac), Err(DropReason::Length));
        assert_eq!(check(&[0u8; 1600], mac), Err(DropReason::Length));
        let mut f = vec![0u8; 60];
        f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 9]);
        assert_eq!(check(&f, mac), Err(DropReason::NotForUs));
        f[..6].copy_from_slice(&mac.0);
        f[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
        assert_eq!(check(&f, mac), Err(DropReason::Protocol));
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        assert_eq!(check(&f, mac), Err(DropReason::Malformed));
    }

    #[test]
    fn connection_requests_are_told_apart() {
        // Ethernet, IPv4 (20 bytes, TCP), TCP (20 bytes) to port 80.
        let mut f = vec![0u8; 14 + 40];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        f[14] = 0x45;
        f[16..18].copy_from_slice(&40u16.to_be_bytes());
        f[14 + 8] = 64;
        f[14 + 9] = 6;
        f[34..36].copy_from_slice(&40000u16.to_be_bytes());
        f[36..38].copy_from_slice(&80u16.to_be_bytes());
        f[34 + 12] = 0x50;
        f[34 + 13] = 0x02; // SYN
        assert_eq!(syn_port(&f), Some(80));
        f[34 + 13] = 0x12; // SYN and ACK: an answer, not a request
        assert_eq!(syn_port(&f), None);
        f[34 + 13] = 0x10;
        assert_eq!(syn_port(&f), None);
        f[14 + 9] = 17; // UDP
        assert_eq!(syn_port(&f), None);
        assert_eq!(syn_port(&f[..30]), None);
    }
}
