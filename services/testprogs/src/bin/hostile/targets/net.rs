//! net under attack: socket numbers that do not exist (or belong to no
//! one), requests that do not suit the socket (send on a listener, accept
//! on a UDP socket, sending before a connection is up), fields past the
//! contract's limits (65537 bytes to send, 257 sockets to wait for),
//! backlogs and ports out of range, interest lists that do not match.
//!
//! It leaves the network alone: it listens and binds only on ports from
//! 1024 up with small backlogs (port 80 is httpd's, 68 DHCP's; the socket
//! table is shared), connects, pings and sends datagrams only to
//! addresses net must refuse (unspecified, multicast, broadcast, lengths
//! that are no address) or to the gateway's discard port, and waits at
//! most [`MAX_WAIT`] for anything.

use super::{edgy, text, Seed, Target};
use crate::probe::{call, connect, encode, Expect};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use net::code;
use net::{Net as Contract, Reply, Request};
use testprogs::Rng;

/// net.
pub struct Net;

/// The longest wait a request may ask for (ms).
const MAX_WAIT: u32 = 2000;
/// The gateway (QEMU's user network), and its port that discards.
const GATEWAY: [u8; 4] = [10, 0, 2, 2];
const DISCARD: u16 = 9;

/// An address net must refuse to reach (or that is no address).
fn harmless(a: &[u8]) -> bool {
    match a.len() {
        4 => a == [0; 4] || a == [255; 4] || (224..=239).contains(&a[0]),
        16 => a.iter().all(|&b| b == 0) || a[0] == 0xff,
        _ => true,
    }
}

/// Addresses to try: refused ones and, where allowed, the gateway.
const ADDRESSES: [&[u8]; 8] = [
    &[0; 4],
    &[255; 4],
    &[224, 0, 0, 1],
    &[0; 16],
    &[0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
    &[],
    &[10, 0, 2],
    &[1; 17],
];

fn port_ok(port: u16) -> bool {
    port >= 1024
}

impl Target for Net {
    type P = Contract;
    const NAME: &'static str = "net";
    const LAST_TAG: u8 = 17;

    fn safe(r: &Request) -> bool {
        match r {
            Request::Listen { port, backlog } => port_ok(*port) && *backlog <= 8,
            Request::Bind { port } => *port == 0 || port_ok(*port),
            Request::Connect { address, wait_ms, .. } => harmless(address) && *wait_ms <= MAX_WAIT,
            Request::Ping { address, wait_ms, .. } => {
                (harmless(address) || address == &GATEWAY) && *wait_ms <= MAX_WAIT
            }
            Request::SendTo { address, port, .. } => harmless(address) || (address == &GATEWAY && *port == DISCARD),
            Request::Accept { wait_ms, .. }
            | Request::Send { wait_ms, .. }
            | Request::Receive { wait_ms, .. }
            | Request::ReceiveFrom { wait_ms, .. }
            | Request::Resolve { wait_ms, .. } => *wait_ms <= MAX_WAIT,
            Request::Wait { timeout_ms, .. } => *timeout_ms <= MAX_WAIT,
            Request::Shutdown { .. }
            | Request::Close { .. }
            | Request::LocalAddress { .. }
            | Request::PeerAddress { .. }
            | Request::Status
            | Request::Sockets => true,
        }
    }

    fn seeds() -> Vec<Seed> {
        let s = |name, r, lengths: Vec<usize>, flags: Vec<usize>| Seed { name, bytes: encode(r), lengths, flags };
        vec![
            s("Listen", Request::Listen { port: 4321, backlog: 2 }, vec![], vec![]),
            s("Accept", Request::Accept { socket: 1, wait_ms: 0 }, vec![], vec![]),
            s("Connect", Request::Connect { address: vec![0; 4], port: 1, wait_ms: 0 }, vec![1], vec![]),
            s("Send", Request::Send { socket: 1, data: vec![7; 10], wait_ms: 0 }, vec![5], vec![]),
            s("Receive", Request::Receive { socket: 1, max: 100, wait_ms: 0 }, vec![5], vec![]),
            s("Close", Request::Close { socket: 1, abort: true }, vec![], vec![5]),
            s(
                "SendTo",
                Request::SendTo { socket: 1, address: vec![0; 4], port: 9, data: vec![1; 8] },
                vec![5, 15],
                vec![],
            ),
            s("Wait", Request::Wait { sockets: vec![1, 2], interests: vec![1, 2], timeout_ms: 0 }, vec![1, 13], vec![]),
            s("Ping", Request::Ping { address: vec![0; 4], size: 8, wait_ms: 0 }, vec![1], vec![]),
            s("Resolve", Request::Resolve { name: String::from("a.b"), wait_ms: 0 }, vec![1], vec![]),
            s("Status", Request::Status, vec![], vec![]),
        ]
    }

    fn crafted() -> Vec<(&'static str, Vec<u8>, Option<Expect>)> {
        let e = Some(Expect::Error);
        let any = Some(Expect::Any);
        let rejected = Some(Expect::Rejected);
        vec![
            ("Send of 65537 bytes", encode(Request::Send { socket: 1, data: vec![0; 65537], wait_ms: 0 }), rejected),
            (
                "SendTo of 65508 bytes",
                encode(Request::SendTo { socket: 1, address: vec![0; 4], port: 9, data: vec![0; 65508] }),
                rejected,
            ),
            (
                "Wait for 257 sockets",
                encode(Request::Wait { sockets: vec![1; 257], interests: vec![1; 257], timeout_ms: 0 }),
                rejected,
            ),
            ("Resolve of a 254-byte name", encode(Request::Resolve { name: "a".repeat(254), wait_ms: 0 }), rejected),
            ("Connect to a 17-byte address", encode(Request::Connect { address: vec![1; 17], port: 1, wait_ms: 0 }), {
                rejected
            }),
            (
                "Send of 65536 bytes to no socket",
                encode(Request::Send { socket: 7, data: vec![0; 65536], wait_ms: 0 }),
                e,
            ),
            ("Receive from no socket", encode(Request::Receive { socket: 0, max: u32::MAX, wait_ms: 0 }), e),
            ("Accept on no socket", encode(Request::Accept { socket: u32::MAX, wait_ms: MAX_WAIT }), e),
            ("Close of no socket", encode(Request::Close { socket: 3, abort: false }), e),
            ("Shutdown of no socket", encode(Request::Shutdown { socket: 0 }), e),
            ("LocalAddress of no socket", encode(Request::LocalAddress { socket: 1 }), e),
            ("PeerAddress of no socket", encode(Request::PeerAddress { socket: u32::MAX }), e),
            ("ReceiveFrom no socket", encode(Request::ReceiveFrom { socket: 9, wait_ms: 0 }), e),
            ("Listen on port 0", encode(Request::Listen { port: 0, backlog: 1 }), e),
            ("Listen with backlog 0", encode(Request::Listen { port: 4322, backlog: 0 }), e),
            ("Listen with backlog 65", encode(Request::Listen { port: 4322, backlog: 65 }), e),
            ("Listen with backlog 65535", encode(Request::Listen { port: 4322, backlog: u16::MAX }), e),
            ("Connect to 0.0.0.0", encode(Request::Connect { address: vec![0; 4], port: 80, wait_ms: 0 }), e),
            ("Connect to port 0", encode(Request::Connect { address: vec![255; 4], port: 0, wait_ms: 0 }), e),
            (
                "Connect to a multicast address",
                encode(Request::Connect { address: vec![224, 0, 0, 1], port: 1, wait_ms: 0 }),
                e,
            ),
            (
                "Connect to a 3-byte address",
                encode(Request::Connect { address: vec![10, 0, 2], port: 1, wait_ms: 0 }),
                e,
            ),
            ("Connect to an empty address", encode(Request::Connect { address: vec![], port: 1, wait_ms: 0 }), e),
            ("Ping a 5-byte address", encode(Request::Ping { address: vec![1; 5], size: 8, wait_ms: 0 }), e),
            (
                "Wait with 2 sockets and 1 interest",
                encode(Request::Wait { sockets: vec![1, 2], interests: vec![1], timeout_ms: 0 }),
                e,
            ),
            (
                "Wait for 256 sockets that do not exist",
                encode(Request::Wait { sockets: (0..256).collect(), interests: vec![0xff; 256], timeout_ms: 10 }),
                any,
            ),
            ("Wait for nothing", encode(Request::Wait { sockets: vec![], interests: vec![], timeout_ms: 10 }), any),
            (
                "Ping of 65535 bytes to 0.0.0.0",
                encode(Request::Ping { address: vec![0; 4], size: u16::MAX, wait_ms: 10 }),
                any,
            ),
            ("Resolve of an empty name", encode(Request::Resolve { name: String::new(), wait_ms: 0 }), any),
            ("Resolve of 1.2.3.4", encode(Request::Resolve { name: String::from("1.2.3.4"), wait_ms: 0 }), any),
            ("Bind on port 0", encode(Request::Bind { port: 0 }), any),
            ("Sockets", encode(Request::Sockets), any),
        ]
    }

    fn cheap() -> Vec<u8> {
        encode(Request::Status)
    }

    fn never_read() -> Result<(Vec<u8>, bool), String> {
        Ok((encode(Request::Sockets), false))
    }

    fn healthy() -> Result<(), String> {
        let mut c = connect(net::SERVICE)?;
        match call::<Contract>(&mut c, Request::Status) {
            Ok(Reply::Interface { .. }) => {}
            other => return Err(format!("status: {other:?}")),
        }
        let socket = match call::<Contract>(&mut c, Request::Bind { port: 0 }) {
            Ok(Reply::Socket { socket }) => socket,
            other => return Err(format!("bind: {other:?}")),
        };
        match call::<Contract>(&mut c, Request::Close { socket, abort: false }) {
            Ok(Reply::Done) => Ok(()),
            other => Err(format!("close: {other:?}")),
        }
    }

    fn random_valid(rng: &mut Rng) -> Vec<u8> {
        let socket = edgy(rng, 8) as u32;
        let wait = |rng: &mut Rng| [0, 1, 10, MAX_WAIT, u32::MAX][rng.below(5) as usize];
        let address = |rng: &mut Rng| Vec::from(ADDRESSES[rng.below(ADDRESSES.len() as u64) as usize]);
        let port = |rng: &mut Rng| edgy(rng, 65536) as u16;
        let data = |rng: &mut Rng, max: u64| -> Vec<u8> {
            let n = edgy(rng, max + 1).min(max) as usize;
            (0..n).map(|_| rng.next() as u8).collect()
        };
        encode(match rng.below(17) {
            0 => Request::Listen { port: 1024 + rng.below(60000) as u16, backlog: edgy(rng, 9) as u16 },
            1 => Request::Accept { socket, wait_ms: wait(rng) },
            2 => Request::Connect { address: address(rng), port: port(rng), wait_ms: wait(rng) },
            3 => Request::Send { socket, data: data(rng, 65536), wait_ms: wait(rng) },
            4 => Request::Receive { socket, max: edgy(rng, 70000) as u32, wait_ms: wait(rng) },
            5 => Request::Shutdown { socket },
            6 => Request::Close { socket, abort: rng.chance(500) },
            7 => Request::Bind { port: [0, 1024 + rng.below(60000) as u16][rng.below(2) as usize] },
            8 => Request::SendTo { socket, address: address(rng), port: port(rng), data: data(rng, 65507) },
            9 => Request::ReceiveFrom { socket, wait_ms: wait(rng) },
            10 => Request::LocalAddress { socket },
            11 => Request::PeerAddress { socket },
            12 => {
                let n = rng.below(257) as usize;
                let m = if rng.chance(800) { n } else { rng.below(257) as usize };
                Request::Wait {
                    sockets: (0..n).map(|_| edgy(rng, 8) as u32).collect(),
                    interests: (0..m).map(|_| rng.next() as u8).collect(),
                    timeout_ms: wait(rng),
                }
            }
            13 => Request::Ping { address: address(rng), size: edgy(rng, 65536) as u16, wait_ms: wait(rng) },
            14 => Request::Resolve { name: text(rng, 253), wait_ms: wait(rng) },
            15 => Request::Status,
            _ => Request::Sockets,
        })
    }

    fn scripts(rng: &mut Rng, rounds: u64) -> Vec<String> {
        let mut f = Vec::new();
        let mut c = match connect(net::SERVICE) {
            Ok(c) => c,
            Err(e) => return vec![format!("net: scripts: {e}")],
        };
        let mut go = |f: &mut Vec<String>, what: &str, r: Request, want: Want| -> Option<Reply> {
            let got = call::<Contract>(&mut c, r);
            let ok = match (&got, want) {
                (Ok(Reply::Failed { code, .. }), Want::Code(w)) => *code == w,
                (Ok(Reply::Failed { .. }), Want::Failed | Want::Any) => true,
                (Ok(_), Want::Any) => true,
                _ => false,
            };
            if !ok {
                f.push(format!("net: {what}: {got:?} (wanted {want:?})"));
            }
            got.ok()
        };
        use Want::{Any, Code, Failed};
        let port = 20_000 + rng.below(20_000) as u16;
        let l = match go(&mut f, "listen", Request::Listen { port, backlog: 2 }, Any) {
            Some(Reply::Socket { socket }) => socket,
            other => return vec![format!("net: scripts: listen on {port}: {other:?}")],
        };
        go(&mut f, "listen on the same port", Request::Listen { port, backlog: 1 }, Code(code::IN_USE));
        go(&mut f, "send on a listener", Request::Send { socket: l, data: vec![1; 100], wait_ms: 0 }, Failed);
        go(&mut f, "receive on a listener", Request::Receive { socket: l, max: 100, wait_ms: 10 }, Failed);
        go(&mut f, "shutdown of a listener", Request::Shutdown { socket: l }, Any);
        go(&mut f, "peer of a listener", Request::PeerAddress { socket: l }, Failed);
        go(&mut f, "receive-from on a listener", Request::ReceiveFrom { socket: l, wait_ms: 0 }, Failed);
        go(&mut f, "accept with none waiting", Request::Accept { socket: l, wait_ms: 10 }, Any);
        go(&mut f, "local address of a listener", Request::LocalAddress { socket: l }, Any);
        go(&mut f, "close", Request::Close { socket: l, abort: false }, Any);
        go(&mut f, "close again", Request::Close { socket: l, abort: true }, Code(code::NO_SOCKET));
        go(&mut f, "accept on the closed listener", Request::Accept { socket: l, wait_ms: 0 }, Code(code::NO_SOCKET));
        let u = match go(&mut f, "bind", Request::Bind { port: 0 }, Any) {
            Some(Reply::Socket { socket }) => socket,
            other => return vec![format!("net: scripts: bind: {other:?}")],
        };
        go(&mut f, "accept on a UDP socket", Request::Accept { socket: u, wait_ms: 0 }, Failed);
        go(&mut f, "send on a UDP socket", Request::Send { socket: u, data: vec![1], wait_ms: 0 }, Failed);
        go(&mut f, "receive on a UDP socket", Request::Receive { socket: u, max: 10, wait_ms: 0 }, Failed);
        go(&mut f, "shutdown of a UDP socket", Request::Shutdown { socket: u }, Any);
        go(
            &mut f,
            "datagram to a 3-byte address",
            Request::SendTo { socket: u, address: vec![1, 2, 3], port: 9, data: vec![1] },
            Failed,
        );
        go(
            &mut f,
            "datagram to port 0",
            Request::SendTo { socket: u, address: Vec::from(GATEWAY), port: 0, data: vec![1] },
            Any,
        );
        go(
            &mut f,
            "the largest datagram to the discard port",
            Request::SendTo { socket: u, address: Vec::from(GATEWAY), port: DISCARD, data: vec![0x5a; 65507] },
            Any,
        );
        go(&mut f, "receive-from with nothing there", Request::ReceiveFrom { socket: u, wait_ms: 10 }, Any);
        go(
            &mut f,
            "wait on a UDP socket for a connection",
            Request::Wait { sockets: vec![u, u, l], interests: vec![4, 0xff, 1], timeout_ms: 10 },
            Any,
        );
        go(&mut f, "close the UDP socket", Request::Close { socket: u, abort: true }, Any);
        go(
            &mut f,
            "send on the closed socket",
            Request::Send { socket: u, data: vec![1], wait_ms: 0 },
            Code(code::NO_SOCKET),
        );
        // A connection to the gateway's port 1 (refused by the host), used
        // before it is up and after it failed.
        let t = match go(
            &mut f,
            "connect without waiting",
            Request::Connect { address: Vec::from(GATEWAY), port: 1, wait_ms: 0 },
            Any,
        ) {
            Some(Reply::Opened { socket, .. }) => Some(socket),
            _ => None,
        };
        if let Some(t) = t {
            go(
                &mut f,
                "send before the connection is up",
                Request::Send { socket: t, data: vec![2; 65536], wait_ms: 0 },
                Any,
            );
            go(&mut f, "accept on a connection", Request::Accept { socket: t, wait_ms: 0 }, Failed);
            go(&mut f, "receive on a refused connection", Request::Receive { socket: t, max: 1, wait_ms: 500 }, Any);
            go(&mut f, "peer of it", Request::PeerAddress { socket: t }, Any);
            go(&mut f, "shutdown of it", Request::Shutdown { socket: t }, Any);
            go(&mut f, "shutdown again", Request::Shutdown { socket: t }, Any);
            go(&mut f, "send after shutdown", Request::Send { socket: t, data: vec![3], wait_ms: 0 }, Any);
            go(&mut f, "abort it", Request::Close { socket: t, abort: true }, Any);
        }
        // Random requests on the session's own sockets (and none).
        let mut mine: Vec<u32> = Vec::new();
        for i in 0..rounds {
            let bytes = Self::random_valid(rng);
            let Some(mut r) = crate::probe::decode::<Request>(&bytes) else { continue };
            if !Self::safe(&r) {
                continue;
            }
            if let (Some(&s), true) = (mine.last(), rng.chance(700)) {
                match &mut r {
                    Request::Accept { socket, .. }
                    | Request::Send { socket, .. }
                    | Request::Receive { socket, .. }
                    | Request::Shutdown { socket }
                    | Request::Close { socket, .. }
                    | Request::SendTo { socket, .. }
                    | Request::ReceiveFrom { socket, .. }
                    | Request::LocalAddress { socket }
                    | Request::PeerAddress { socket } => *socket = s,
                    _ => {}
                }
            }
            if let Some(Reply::Socket { socket } | Reply::Opened { socket, .. }) =
                go(&mut f, &format!("random request {i}"), r, Any)
            {
                mine.push(socket);
            }
        }
        f
    }
}

/// What a scripted request must get.
#[derive(Clone, Copy, Debug)]
enum Want {
    /// Any answer.
    Any,
    /// The error reply.
    Failed,
    /// The error reply with this code.
    Code(u32),
}
