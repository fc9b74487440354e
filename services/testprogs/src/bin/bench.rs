//! `bench`: Kintsugi's side of `cargo xtask bench`. Prints `BENCH name
//! value` lines: the median cost of a trivial system call, of a channel
//! round trip between two processes, and of starting a program and seeing
//! it end. `bench exit` is the program started for the last one.
//!
//! `bench channel [N]` and `bench spawn [N]`: one of those alone, N times
//! (for profiling); `bench yield [N]`: the cost of a switch between two
//! processes that yield to each other.
//!
//! `bench kv [N]`: N (default 20000) `get`s of one key through the kv
//! companion, for profiling a round trip (`cargo xtask profile --exec 'run
//! bench kv'`); prints the median and the mean round trip.
//!
//! `bench copy [N]`: what a 64 KiB copy costs when its two sides collide
//! in the emulator's software TLB, beside one that does not.
//!
//! `bench sched [OPS]`: how CPU-bound programs slow the services down. The
//! time `kvload 1 OPS` (default 1000) takes alone, with one `spin` running
//! and with fifty, three runs each (the runs alone before and after the
//! others); prints the medians as `kvload_ns_0`, `kvload_ns_1` and
//! `kvload_ns_50`.
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
        Some("sched") => sched(testprogs::arg_u64(1, 1000)),
        Some("kv") => kv_round_trips(testprogs::arg_u64(1, 20_000)),
        Some("channel") => channel_round_trips(testprogs::arg_u64(1, 20_000)),
        Some("yield") => yields(testprogs::arg_u64(1, 20_000)),
        Some("yielder") => loop {
            sys::yield_now();
        },
        Some("spawn") => spawn_and_reap(testprogs::arg_u64(1, 1000)),
        Some("copy") => copies(testprogs::arg_u64(1, 200)),
        _ => run(),
    }
}

fn echo() -> i32 {
    let Some(mut ch) = peer::<Msg, Msg>() else { return 2 };
    let mut next = ch.recv();
    loop {
        // Answer and wait for the next request in one kernel entry.
        next = match next {
            Ok(m) => ch.call(m),
            Err(ChannelError::PeerClosed) => return 0,
            Err(_) => return 4,
        };
    }
}

fn run() -> i32 {
    null_syscall();
    if channel_round_trips(2000) != 0 {
        return 1;
    }
    if copies(200) != 0 {
        return 1;
    }
    spawn_and_reap(200)
}

/// Null system call: a handle lookup, the cheapest real call.
fn null_syscall() {
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
}

/// Channel round trip between two processes (`bench channel [N]` alone).
fn channel_round_trips(n: u64) -> i32 {
    let (process, mut ch) = spawn_with_channel::<Msg, Msg>("bench", "echo").expect("start echo");
    for seq in 0..200 {
        let _ = ch.call(Msg { seq });
    }
    let mut rtt = Vec::with_capacity(n as usize);
    for seq in 0..n {
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
    0
}

/// Spawn: start a program through init and see it end (`bench spawn [N]`
/// alone).
fn spawn_and_reap(n: u64) -> i32 {
    let mut spawn = Vec::with_capacity(n as usize);
    let ended = Event::new().expect("event");
    for _ in 0..n {
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

/// Run `kvload 1 ops` to its end; the time it took, or why it failed.
fn time_kvload(ops: u64) -> Result<u64, alloc::string::String> {
    use alloc::format;
    let ended = Event::new().map_err(|e| format!("event: {e}"))?;
    let t0 = libos::time::now_ns();
    let (_, p) = libos::directory::run("kvload", &format!("1 {ops}")).map_err(|e| format!("kvload: {e}"))?;
    p.watch(&ended, 1).map_err(|e| format!("watch: {e}"))?;
    let info = loop {
        let info = p.info().unwrap_or_default();
        if info.state().is_ended() {
            break info;
        }
        let _ = ended.wait(1_000_000_000);
    };
    let took = libos::time::now_ns() - t0;
    if info.state() != libos::abi::ProcessState::Exited || info.exit_code != 0 {
        return Err(format!("kvload ended badly (state {:?}, code {})", info.state(), info.exit_code));
    }
    Ok(took)
}

fn sched(ops: u64) -> i32 {
    const RUNS: usize = 3;
    let result = |spinners: &mut Vec<libos::handle::Process>, want: usize, into: &mut Vec<u64>| -> bool {
        while spinners.len() < want {
            match libos::directory::run("spin", "") {
                Ok((_, p)) => spinners.push(p),
                Err(e) => {
                    println!("bench: cannot start spin: {e}");
                    return false;
                }
            }
        }
        for _ in 0..RUNS {
            match time_kvload(ops) {
                Ok(ns) => into.push(ns),
                Err(e) => {
                    println!("bench: {e}");
                    return false;
                }
            }
        }
        true
    };
    // A first run warms kv up (its first checkpoints, the vault's slots).
    let mut spinners = Vec::new();
    let mut alone = Vec::new();
    let mut warm = Vec::new();
    let mut one = Vec::new();
    let mut fifty = Vec::new();
    let ok = result(&mut spinners, 0, &mut warm)
        && result(&mut spinners, 0, &mut alone)
        && result(&mut spinners, 1, &mut one)
        && result(&mut spinners, 50, &mut fifty);
    for p in spinners.drain(..) {
        let _ = p.kill();
    }
    if !ok || !result(&mut spinners, 0, &mut alone) {
        return 1;
    }
    println!("BENCH kvload_ns_0 {}", median(&mut alone));
    println!("BENCH kvload_ns_1 {}", median(&mut one));
    println!("BENCH kvload_ns_50 {}", median(&mut fifty));
    0
}

fn kv_round_trips(n: u64) -> i32 {
    let mut kv = match kv::connect() {
        Ok(c) => c,
        Err(e) => {
            println!("bench: {e}");
            return 1;
        }
    };
    let key = alloc::string::String::from("bench/rtt");
    if kv.put(key.clone(), Vec::from(*b"0123456789abcdef0123456789abcdef")).is_err() {
        println!("bench: kv put failed");
        return 1;
    }
    let mut rtt = Vec::with_capacity(n as usize);
    let start = libos::time::now_ns();
    for _ in 0..n {
        let t0 = libos::time::now_ns();
        if kv.get(key.clone()).is_err() {
            println!("bench: kv get failed");
            return 1;
        }
        rtt.push(libos::time::now_ns() - t0);
    }
    let mean = (libos::time::now_ns() - start) / n.max(1);
    println!("BENCH kv_rtt_median_ns {}", median(&mut rtt));
    println!("BENCH kv_rtt_mean_ns {mean}");
    0
}

/// The cost of a switch between two processes: both yield in turn.
fn yields(n: u64) -> i32 {
    let Ok((_, other)) = libos::directory::run("bench", "yielder") else { return 1 };
    for _ in 0..100 {
        sys::yield_now();
    }
    let t0 = libos::time::now_ns();
    for _ in 0..n {
        sys::yield_now();
    }
    println!("BENCH yield_switch_ns {}", (libos::time::now_ns() - t0) / n.max(1) / 2);
    let _ = other.kill();
    0
}

/// `bench copy [N]`: the median time of a 64 KiB copy from the heap into
/// another heap buffer (the reference) and into a mapping placed so that
/// its pages fall on the same entries of the emulator's software TLB as the
/// source's (see `libos::memcpy`); prints `copy_heap_64k_ns` and
/// `copy_colliding_64k_ns`.
fn copies(n: u64) -> i32 {
    const LEN: usize = 65536;
    let src: Vec<u8> = (0..LEN as u32).map(|i| i as u8).collect();
    let mut heap = alloc::vec![0u8; LEN];
    // A mapping whose pages fall on the same TLB entries as the source's
    // whatever the TLB's size (QEMU resizes it; at most 2^20 entries here):
    // page numbers equal modulo 2^20, inside a reserved range of 2^20
    // pages (4 GiB of address space, no memory) more than needed.
    const SPAN: u64 = 1 << 20;
    let pages = (LEN / 4096) as u64;
    let Ok(memory) = libos::handle::Memory::alloc(pages, MemFlags::empty()) else { return 1 };
    let Ok(range) = libos::vm::reserve(pages + SPAN) else { return 1 };
    let want = (src.as_ptr() as u64 >> 12) % SPAN;
    let va = range + ((want + SPAN - (range >> 12) % SPAN) % SPAN) * 4096;
    if sys::mem_map(libos::abi::Handle::SELF, memory.raw(), 0, va, pages, libos::abi::MapFlags::WRITE).is_err() {
        println!("bench: cannot map the colliding buffer");
        return 1;
    }
    let time = |dst: *mut u8| {
        let mut v = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let t0 = libos::time::now_ns();
            // SAFETY: both buffers hold LEN bytes and do not overlap.
            unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), dst, LEN) };
            v.push(libos::time::now_ns() - t0);
        }
        median(&mut v)
    };
    println!("BENCH copy_heap_64k_ns {}", time(heap.as_mut_ptr()));
    println!("BENCH copy_colliding_64k_ns {}", time(va as *mut u8));
    core::hint::black_box(&mut heap);
    // SAFETY: nothing refers to the mapping any more.
    let _ = unsafe { sys::mem_unmap(libos::abi::Handle::SELF, va, pages) };
    libos::vm::release(range, pages + SPAN);
    0
}
