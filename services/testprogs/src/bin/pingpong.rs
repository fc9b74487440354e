//! `pingpong [N]`: a ping-pong over a channel between two processes. The
//! parent sends N numbered pings, the child (started as `pingpong child`)
//! answers each with a pong carrying the same number; the parent checks
//! every answer and prints the median round trip.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use libos::channel::ChannelError;
use libos::println;
use testprogs::{arg, arg_u64, median, peer, spawn_with_channel};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct Ping {
    seq: u64,
}
libos::pod_message!(Ping);

#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct Pong {
    seq: u64,
    double: u64,
}
libos::pod_message!(Pong);

libos::main!(main);

fn main() -> i32 {
    if arg(0) == Some("child") {
        return child();
    }
    let n = arg_u64(0, 1000);
    let (process, mut ch) = match spawn_with_channel::<Ping, Pong>("pingpong", "child") {
        Ok(p) => p,
        Err(e) => {
            println!("pingpong: cannot start the child: {e}");
            return 1;
        }
    };
    let mut samples = Vec::with_capacity(n as usize);
    for seq in 0..n {
        let t0 = libos::time::now_ns();
        let reply = ch.send(Ping { seq }).and_then(|_| ch.recv());
        samples.push(libos::time::now_ns() - t0);
        match reply {
            Ok(p) if p.seq == seq && p.double == seq * 2 => {}
            Ok(p) => {
                println!("pingpong: wrong answer to ping {seq}: pong {} ({})", p.seq, p.double);
                return 1;
            }
            Err(e) => {
                println!("pingpong: ping {seq} failed: {e}");
                return 1;
            }
        }
    }
    drop(ch);
    let done = libos::handle::Event::new().expect("event");
    let _ = process.watch(&done, 1);
    let _ = done.wait(5_000_000_000);
    let code = process.info().map(|i| i.exit_code).unwrap_or(-1);
    println!("pingpong: {n} round trips OK, median {} ns; child exited with {code}", median(&mut samples));
    0
}

fn child() -> i32 {
    let Some(mut ch) = peer::<Pong, Ping>() else {
        println!("pingpong child: no channel to the parent");
        return 2;
    };
    loop {
        match ch.recv() {
            Ok(p) => {
                if ch.send(Pong { seq: p.seq, double: p.seq * 2 }).is_err() {
                    return 3;
                }
            }
            Err(ChannelError::PeerClosed) => return 0,
            Err(e) => {
                println!("pingpong child: {e}");
                return 4;
            }
        }
    }
}
