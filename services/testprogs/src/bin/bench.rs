//! `bench`: Kintsugi's side of `cargo xtask bench`. Prints `BENCH name
//! value` lines: the median cost of a trivial system call, of a channel
//! round trip between two processes, and of starting a program and seeing
//! it end. `bench exit` is the program started for the last one.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use libos::abi::MemFlags;
use libos::channel::ChannelError;
use libos::handle::Event;
use libos::{println, sys};
use testprogs::{arg, median, peer, spawn_with_channel};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct Msg {
    seq: u64,
}
libos::pod_message!(Msg);

libos::main!(main);

fn main() -> i32 {
    match arg(0) {
        Some("exit") => 0,
        Some("echo") => echo(),
        _ => run(),
    }
}

fn echo() -> i32 {
    let Some(mut ch) = peer::<Msg, Msg>() else { return 2 };
    loop {
        match ch.recv() {
            Ok(m) => {
                if ch.send(m).is_err() {
                    return 3;
                }
            }
            Err(ChannelError::PeerClosed) => return 0,
            Err(_) => return 4,
        }
    }
}

fn run() -> i32 {
    // Null system call: a handle lookup, the cheapest real call.
    let h = sys::mem_alloc(1, MemFlags::empty()).expect("memory");
    let mut per_call = Vec::with_capacity(2000);
    for _ in 0..2000 {
        let t0 = libos::time::now_ns();
        for _ in 0..50 {
            let _ = core::hint::black_box(sys::handle_info(h));
        }
        per_call.push((libos::time::now_ns() - t0) / 50);
    }
    println!("BENCH null_syscall_ns {}", median(&mut per_call));

    // Channel round trip between two processes.
    let (process, mut ch) = spawn_with_channel::<Msg, Msg>("bench", "echo").expect("start echo");
    for seq in 0..200 {
        let _ = ch.call(Msg { seq });
    }
    let mut rtt = Vec::with_capacity(2000);
    for seq in 0..2000 {
        let t0 = libos::time::now_ns();
        let r = ch.call(Msg { seq });
        rtt.push(libos::time::now_ns() - t0);
        if !matches!(r, Ok(m) if m.seq == seq) {
            println!("bench: round trip {seq} failed");
            return 1;
        }
    }
    println!("BENCH channel_rtt_ns {}", median(&mut rtt));
    drop(ch);
    let _ = process.kill();

    // Spawn: start a program through init and see it end.
    let mut spawn = Vec::with_capacity(200);
    let ended = Event::new().expect("event");
    for _ in 0..200 {
        let t0 = libos::time::now_ns();
        let Ok((_, p)) = libos::directory::run("bench", "exit") else {
            println!("bench: spawn failed");
            return 1;
        };
        let _ = p.watch(&ended, 1);
        let _ = ended.wait(u64::MAX);
        spawn.push(libos::time::now_ns() - t0);
    }
    println!("BENCH spawn_ns {}", median(&mut spawn));
    0
}
