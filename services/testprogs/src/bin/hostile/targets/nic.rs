//! nic under attack through its contract. Its one real client is net, so
//! the attack takes nothing from it: no `Receive` that could take a frame
//! (only `max = 0`), no `ReceiveType` of a type the host sends (it claims
//! only the made-up `ORIGIN_ETHERTYPE`, and tries to claim the stack's
//! IPv4, which must be refused), and every frame it sends carries the tests' made-up
//! EtherType (`ORIGIN_ETHERTYPE`) and a made-up source address, which
//! QEMU's user network and every stack drop. Frames of bad lengths,
//! batches over the contract's limit and lying length fields must be
//! refused without a crash.

use super::{Seed, Target};
use crate::probe::{call, connect, encode, Expect};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use nic::{Reply, Request, MAX_BATCH, MAX_FRAME, MIN_FRAME, ORIGIN_ETHERTYPE, STACK_ETHERTYPES};
use testprogs::Rng;

/// nic.
pub struct Nic;

/// A frame of `len` bytes (at least the header) to nobody: broadcast,
/// from a locally administered address no card has, of the tests'
/// EtherType.
fn frame(len: usize) -> Vec<u8> {
    let mut f = vec![0x5a; len];
    let header = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x6b, 0x69, 0x6e, 0x74, 0x73];
    let n = header.len().min(len);
    f[..n].copy_from_slice(&header[..n]);
    if len >= MIN_FRAME {
        f[12..14].copy_from_slice(&ORIGIN_ETHERTYPE.to_be_bytes());
    }
    f
}

fn send(frames: Vec<Vec<u8>>) -> Vec<u8> {
    encode(Request::Send { frames })
}

fn receive(max: u32, wait_ms: u32) -> Vec<u8> {
    encode(Request::Receive { max, wait_ms })
}

fn receive_type(ethertype: u32, max: u32, wait_ms: u32) -> Vec<u8> {
    encode(Request::ReceiveType { ethertype, max, wait_ms })
}

impl Target for Nic {
    type P = nic::Nic;
    const NAME: &'static str = "nic";
    const LAST_TAG: u8 = 4;

    fn safe(r: &Request) -> bool {
        match r {
            Request::Info => true,
            // Frames no stack takes (a frame too short for its EtherType is
            // refused whole by nic before anything is sent).
            Request::Send { frames } => {
                frames.iter().all(|f| f.len() < MIN_FRAME || f[12..14] == ORIGIN_ETHERTYPE.to_be_bytes())
            }
            // A receive that asks for frames would take them from net.
            Request::Receive { max, .. } => *max == 0,
            // A claim of a type the host sends would keep its frames from
            // net; the stack's own types are refused.
            Request::ReceiveType { ethertype, .. } => {
                *ethertype == ORIGIN_ETHERTYPE as u32
                    || u16::try_from(*ethertype).map_or(true, |t| t < 0x0600 || STACK_ETHERTYPES.contains(&t))
            }
        }
    }

    fn seeds() -> Vec<Seed> {
        vec![
            Seed { name: "Info", bytes: encode(Request::Info), lengths: vec![], flags: vec![] },
            Seed { name: "Send", bytes: send(vec![frame(60)]), lengths: vec![1, 5], flags: vec![] },
            Seed {
                name: "Send of two frames",
                bytes: send(vec![frame(60), frame(100)]),
                lengths: vec![1, 5, 69],
                flags: vec![],
            },
            Seed { name: "Receive of none", bytes: receive(0, 0), lengths: vec![], flags: vec![] },
            Seed {
                name: "ReceiveType of the made-up type",
                bytes: receive_type(ORIGIN_ETHERTYPE as u32, 1, 0),
                lengths: vec![],
                flags: vec![],
            },
        ]
    }

    fn crafted() -> Vec<(&'static str, Vec<u8>, Option<Expect>)> {
        let e = Some(Expect::Error);
        let any = Some(Expect::Any);
        vec![
            ("Send of 33 frames", send(vec![frame(60); MAX_BATCH + 1]), Some(Expect::Rejected)),
            ("Send of a 1515-byte frame", send(vec![frame(MAX_FRAME + 1)]), Some(Expect::Rejected)),
            ("Send of an empty frame", send(vec![Vec::new()]), e),
            ("Send of a 13-byte frame", send(vec![frame(MIN_FRAME - 1)]), e),
            ("Send of a good frame and an empty one", send(vec![frame(60), Vec::new()]), e),
            ("Send of no frames", send(Vec::new()), any),
            ("Send of a header-only frame", send(vec![frame(MIN_FRAME)]), any),
            ("Send of 32 longest frames", send(vec![frame(MAX_FRAME); MAX_BATCH]), any),
            ("Receive of none", receive(0, 0), any),
            ("Receive of none waiting u32::MAX ms", receive(0, u32::MAX), any),
            ("ReceiveType of IPv4, the stack's", receive_type(0x0800, 32, 0), e),
            ("ReceiveType of ARP, the stack's", receive_type(0x0806, 32, 0), e),
            ("ReceiveType of a length, not a type", receive_type(0x05dc, 32, 0), e),
            ("ReceiveType of a type over 16 bits", receive_type(0x1_0800, 32, 0), e),
            (
                "ReceiveType of the made-up type, waiting u32::MAX ms",
                receive_type(ORIGIN_ETHERTYPE as u32, 32, u32::MAX),
                any,
            ),
        ]
    }

    fn random_valid(rng: &mut Rng) -> Vec<u8> {
        match rng.below(5) {
            0 => encode(Request::Info),
            1 => receive(0, super::edgy(rng, 50) as u32),
            2 => receive_type(
                ORIGIN_ETHERTYPE as u32,
                rng.below(MAX_BATCH as u64 + 1) as u32,
                super::edgy(rng, 50) as u32,
            ),
            _ => {
                let n = rng.below(MAX_BATCH as u64 + 1) as usize;
                let frames =
                    (0..n).map(|_| frame((super::edgy(rng, MAX_FRAME as u64 + 1) as usize).min(MAX_FRAME))).collect();
                send(frames)
            }
        }
    }

    fn cheap() -> Vec<u8> {
        encode(Request::Info)
    }

    fn never_read() -> Result<(Vec<u8>, bool), String> {
        Ok((encode(Request::Info), false))
    }

    fn healthy() -> Result<(), String> {
        let mut c = connect(nic::SERVICE)?;
        match call::<nic::Nic>(&mut c, Request::Info) {
            Ok(Reply::Status { mac, .. }) if mac.len() == 6 => {}
            other => return Err(format!("info: {other:?}")),
        }
        match call::<nic::Nic>(&mut c, Request::Send { frames: vec![frame(64)] }) {
            Ok(Reply::Sent { count: 1 }) => Ok(()),
            other => Err(format!("send of one frame: {other:?}")),
        }
    }
}
