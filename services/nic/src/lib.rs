//! The nic protocol, generated from `nic.contract` by companion-gen: message
//! types, the client stub [`protocol::NicClient`], the handler trait the
//! service implements, protocol checking, the resiliency annotations and
//! the companion; plus the contract's constants.
#![no_std]

extern crate alloc;

/// Generated from `nic.contract`.
#[allow(clippy::all, missing_docs)]
pub mod protocol {
    include!(concat!(env!("OUT_DIR"), "/nic.rs"));
}

pub mod sorter;

pub use protocol::{Nic, NicClient, Reply, Request};

/// The name the nic companion registers.
pub const SERVICE: &str = "nic";
/// Shortest frame: the Ethernet header.
pub const MIN_FRAME: usize = 14;
/// Longest frame (without the CRC).
pub const MAX_FRAME: usize = 1514;
/// Most frames in one request or reply.
pub const MAX_BATCH: usize = 32;
/// Longest the service waits on the card in one request (ms): for frames
/// in a `Receive`, for room in the transmit ring in a `Send`. The
/// companion takes a second's silence for a hang (`nic.contract`).
pub const MAX_WAIT_MS: u32 = 200;

/// `Failed` codes (see `nic.contract`).
pub mod code {
    /// A frame of a bad length.
    pub const BAD_FRAME: u32 = 400;
    /// No network card.
    pub const NO_DEVICE: u32 = 404;
    /// The card reported an error.
    pub const DEVICE: u32 = 500;
    /// The request crashed the service on every attempt.
    pub const UNRECOVERABLE: u32 = 503;
}

/// Connect a client stub to the nic service (waiting for it to register),
/// with a session that survives a restart of nic's companion and sends
/// its requests by a lane, straight to the service (every nic request is
/// idempotent and of one reply; libos `channel::lane`).
pub fn connect() -> Result<NicClient, libos::directory::DirError> {
    let ep = libos::directory::connect(SERVICE, true)?;
    let channel = libos::channel::Channel::resumable_over(ep, SERVICE)?;
    let largest =
        <Nic as libos::protocol::Protocol>::MAX_REQUEST_BYTES.max(<Nic as libos::protocol::Protocol>::MAX_REPLY_BYTES);
    Ok(NicClient::new(channel.with_lane(|_| true, libos::directory::ring_bytes_for(largest))))
}

/// The EtherTypes the network stack (`net`, a plain `Receive`r) speaks:
/// IPv4, ARP and IPv6. No session may claim them with `ReceiveType`, so
/// no client can take the stack's frames away from it.
pub const STACK_ETHERTYPES: [u16; 3] = [0x0800, 0x0806, 0x86dd];

/// The EtherType of frames the host sends the NIC tests' echo program.
pub const TEST_ETHERTYPE: u16 = 0x88b5;
/// The EtherType of the echoes.
pub const ECHO_ETHERTYPE: u16 = 0x88b6;
/// The EtherType of frames the echo program makes up itself.
pub const ORIGIN_ETHERTYPE: u16 = 0x88b7;

/// Byte `i` of the payload of made-up test frame `seq` (the host tests
/// compute the same function, tests/tests/nic.rs).
pub fn pattern_byte(seq: u32, i: usize) -> u8 {
    let x = (seq as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(i as u64 / 8);
    let x = (x ^ (x >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (x >> (8 * (i % 8))) as u8
}

/// The length of made-up test frame `seq` (60 to 1514 bytes).
pub fn origin_len(seq: u32) -> usize {
    60 + (seq as usize * 97) % (MAX_FRAME - 60 + 1)
}

/// Made-up test frame `seq` from `mac`: broadcast, [`ORIGIN_ETHERTYPE`],
/// then `seq` (little-endian) and the pattern.
pub fn origin_frame(mac: &[u8], seq: u32) -> alloc::vec::Vec<u8> {
    let len = origin_len(seq);
    let mut f = alloc::vec::Vec::with_capacity(len);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&mac[..6.min(mac.len())]);
    f.resize(12, 0);
    f.extend_from_slice(&ORIGIN_ETHERTYPE.to_be_bytes());
    f.extend_from_slice(&seq.to_le_bytes());
    let start = f.len();
    f.extend((start..len).map(|i| pattern_byte(seq, i)));
    f
}
