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
use libos::channel::{select_waking, Channel, ChannelError, PendingWake, Signal, Waitable};
use libos::directory;
use libos::println;
use libos::protocol::ReplySink;
use testprogs::fanin::{dispatch, FaninClient, FaninHandler, Reply, Request};
use testprogs::{arg, arg_u64, Rng};

const SERVICE: &str = "fanin-echo";

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

/// The server's handler: stateless.
struct Echo;

impl FaninHandler for Echo {
    fn echo(&mut self, client: u64, seq: u64, payload: Vec<u8>, out: &mut dyn ReplySink<Reply>) {
        out.reply(Reply::Echoed { client, seq, sum: checksum(&payload) });
    }
}

/// Sends replies straight down a session; the client's wake-up waits for
/// the server's next `select_waking`, which wakes it and sleeps in one
/// kernel entry.
struct Session<'a>(&'a mut Channel<Reply, Request>, &'a mut PendingWake);

impl ReplySink<Reply> for Session<'_> {
    fn reply(&mut self, reply: Reply) {
        if let Ok(wake) = self.0.send_deferred(reply) {
            // An earlier reply's wake-up (same client) happens as it drops.
            *self.1 = wake;
        }
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
    let mut pending = PendingWake::none();
    loop {
        let ready = {
            let mut items: Vec<&dyn Waitable> = Vec::from([&listener as &dyn Waitable]);
            items.extend(sessions.iter().map(|s| s as &dyn Waitable));
            select_waking(core::mem::replace(&mut pending, PendingWake::none()), &items, None)
        };
        match ready {
            Ok(0) => {
                while let Ok(Some(c)) = listener.try_accept() {
                    let ep = c.endpoint;
                    sessions.push(Channel::new(ep));
                }
            }
            Ok(i) => {
                let s = &mut sessions[i - 1];
                loop {
                    match s.try_recv() {
                        Ok(Some(r)) => dispatch(&mut Echo, r, &mut Session(s, &mut pending)),
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
    let mut ch = match directory::connect(SERVICE, true) {
        Ok(ep) => FaninClient::new(Channel::new(ep)),
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
        match ch.echo(id, seq, payload) {
            Ok(Reply::Echoed { client, seq: s, sum }) if client == id && s == seq && sum == want => {}
            Ok(Reply::Echoed { client, seq: s, sum }) => {
                println!("fanin client {id}: request {seq} got reply for client {client} seq {s} sum {sum}");
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
