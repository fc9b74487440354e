//! `fanin [CLIENTS] [REQUESTS]`: one server, several client processes.
//! The driver starts `fanin server` (which registers the service
//! `fanin-echo` with init) and CLIENTS × `fanin client ID REQUESTS`; each
//! client connects through the directory and sends numbered requests with
//! payloads of varying size; the server answers each with the client's id,
//! the number and a checksum of the payload, so crossed or lost replies are
//! caught. The driver reports whether every client saw only right answers.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use libos::channel::{select, Channel, ChannelError, HandleList, HandleQueue, Message, Signal, Waitable};
use libos::directory;
use libos::println;
use libos::wire::{DecodeError, Reader, Writer};
use testprogs::{arg, arg_u64, Rng};

const SERVICE: &str = "fanin-echo";

struct Request {
    client: u64,
    seq: u64,
    payload: Vec<u8>,
}

struct Reply {
    client: u64,
    seq: u64,
    sum: u64,
}

impl Message for Request {
    fn encode(self, w: &mut Writer, _h: &mut HandleList) {
        w.u64(self.client).u64(self.seq).bytes(&self.payload);
    }
    fn decode(r: &mut Reader, _h: &mut HandleQueue) -> Result<Self, DecodeError> {
        Ok(Request { client: r.u64()?, seq: r.u64()?, payload: r.bytes_vec(4096)? })
    }
}

impl Message for Reply {
    fn encode(self, w: &mut Writer, _h: &mut HandleList) {
        w.u64(self.client).u64(self.seq).u64(self.sum);
    }
    fn decode(r: &mut Reader, _h: &mut HandleQueue) -> Result<Self, DecodeError> {
        Ok(Reply { client: r.u64()?, seq: r.u64()?, sum: r.u64()? })
    }
}

fn checksum(p: &[u8]) -> u64 {
    p.iter().enumerate().fold(0u64, |a, (i, b)| a.wrapping_mul(31).wrapping_add(*b as u64 ^ i as u64))
}

libos::main!(main);

fn main() -> i32 {
    match arg(0) {
        Some("server") => server(),
        Some("client") => client(arg_u64(1, 0), arg_u64(2, 100)),
        _ => driver(arg_u64(0, 4), arg_u64(1, 1000)),
    }
}

fn server() -> i32 {
    let mut listener = match directory::register(SERVICE) {
        Ok(l) => l,
        Err(e) => {
            println!("fanin server: {e}");
            return 1;
        }
    };
    let mut sessions: Vec<Channel<Reply, Request>> = Vec::new();
    loop {
        let ready = {
            let mut items: Vec<&dyn Waitable> = Vec::from([&listener as &dyn Waitable]);
            items.extend(sessions.iter().map(|s| s as &dyn Waitable));
            select(&items, None)
        };
        match ready {
            Ok(0) => {
                while let Ok(Some((_, ep))) = listener.try_accept() {
                    sessions.push(Channel::new(ep));
                }
            }
            Ok(i) => {
                let s = &mut sessions[i - 1];
                loop {
                    match s.try_recv() {
                        Ok(Some(r)) => {
                            let reply = Reply { client: r.client, seq: r.seq, sum: checksum(&r.payload) };
                            if s.send(reply).is_err() {
                                break;
                            }
                        }
                        Ok(None) => break,
                        Err(ChannelError::PeerClosed) => {
                            sessions.remove(i - 1);
                            break;
                        }
                        Err(e) => {
                            println!("fanin server: dropping a session: {e}");
                            sessions.remove(i - 1);
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                println!("fanin server: {e}");
                return 1;
            }
        }
    }
}

fn client(id: u64, requests: u64) -> i32 {
    let mut ch: Channel<Request, Reply> = match directory::connect(SERVICE, true) {
        Ok(ep) => Channel::new(ep),
        Err(e) => {
            println!("fanin client {id}: {e}");
            return 1;
        }
    };
    let mut rng = Rng::new(id * 7919 + 1);
    for seq in 0..requests {
        let len = rng.below(600) as usize;
        let payload: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let want = checksum(&payload);
        match ch.call(Request { client: id, seq, payload }) {
            Ok(r) if r.client == id && r.seq == seq && r.sum == want => {}
            Ok(r) => {
                println!("fanin client {id}: request {seq} got reply for client {} seq {} sum {}", r.client, r.seq, r.sum);
                return 1;
            }
            Err(e) => {
                println!("fanin client {id}: request {seq}: {e}");
                return 1;
            }
        }
    }
    0
}

fn driver(clients: u64, requests: u64) -> i32 {
    let (_, server) = match directory::run("fanin", "server") {
        Ok(p) => p,
        Err(e) => {
            println!("fanin: cannot start the server: {e}");
            return 1;
        }
    };
    let done = Signal::new().expect("event");
    let mut procs = Vec::new();
    for id in 0..clients {
        match directory::run("fanin", &format!("client {id} {requests}")) {
            Ok((_, p)) => {
                let _ = p.watch(done.event(), 1 << id.min(63));
                procs.push(p);
            }
            Err(e) => {
                println!("fanin: cannot start client {id}: {e}");
                return 1;
            }
        }
    }
    let mut failed = String::new();
    for (id, p) in procs.iter().enumerate() {
        loop {
            let info = p.info().unwrap_or_default();
            if info.state().is_ended() {
                if !(info.state() == libos::abi::ProcessState::Exited && info.exit_code == 0) {
                    let mut how = String::new();
                    let _ = info.describe_end(&mut how);
                    failed.push_str(&format!(" client {id} {how};"));
                }
                break;
            }
            let _ = done.event().wait(1_000_000_000);
        }
    }
    let _ = server.kill();
    if failed.is_empty() {
        println!("fanin: {clients} clients x {requests} requests: every reply right");
        0
    } else {
        println!("fanin: FAILED:{failed}");
        1
    }
}
