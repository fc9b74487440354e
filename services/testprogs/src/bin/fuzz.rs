//! `fuzz [CALLS] [SEED]`: at least CALLS random system calls against the
//! kernel. The driver starts workers (`fuzz worker SEED`) through init,
//! each with a page-limit from the manifest and a shared counter page it
//! bumps after every call; a worker that ends itself by a call (unmapping
//! its own stack, say) is replaced by a new one with the next seed, until
//! the total is reached. The kernel must neither panic nor hang; a worker
//! that stops making progress for 30 s counts as a hang.
//!
//! Workers choose call numbers mostly among the real ones and arguments
//! from a mix of small numbers, random words, their own handles, pointers
//! into their own memory, kernel and non-canonical addresses. Three
//! constraints keep a worker useful: no `Exit`, waits time out within a
//! millisecond, and console writes get bad pointers (no garbage printed).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use libos::abi::{Error, Handle, MapFlags, MemFlags, ProcessState, Syscall};
use libos::directory::{self, SpawnRequest};
use libos::handle::{Event, Memory, OwnedHandle};
use libos::println;
use libos::sys::{self, raw};
use testprogs::{arg, arg_u64, Rng};

libos::main!(main);

const CALLS_PER_WORKER: u64 = 25_000;

fn main() -> i32 {
    match arg(0) {
        Some("worker") => worker(arg_u64(1, 1)),
        _ => driver(arg_u64(0, 100_000), arg_u64(1, 1)),
    }
}

fn driver(total: u64, seed: u64) -> i32 {
    let mut done = 0u64;
    let mut workers = 0u64;
    let mut died = 0u64;
    while done < total {
        let counter = match Memory::alloc(1, MemFlags::empty()) {
            Ok(m) => m,
            Err(e) => {
                println!("fuzz: no memory for the counter: {e}");
                return 1;
            }
        };
        let map = counter.map(MapFlags::WRITE).expect("map counter");
        let for_child = counter.0.duplicate(counter.0.rights().expect("rights")).expect("dup");
        let req = SpawnRequest {
            program: String::from("fuzz"),
            name: String::from("fuzz-worker"),
            args: format!("worker {}", seed.wrapping_mul(1000).wrapping_add(workers)),
            suspended: false,
            handles: Vec::from([(String::from("counter"), for_child)]),
        };
        let (_, process) = match directory::spawn(req) {
            Ok(p) => p,
            Err(e) => {
                println!("fuzz: cannot start a worker: {e}");
                return 1;
            }
        };
        workers += 1;
        // SAFETY: the counter page is mapped for `map`'s lifetime; the
        // worker only increments it atomically.
        let count = unsafe { &*(map.as_ptr() as *const AtomicU64) };
        let ended = Event::new().expect("event");
        let _ = process.watch(&ended, 1);
        let mut last = 0;
        let mut last_change = libos::time::now_ns();
        let info = loop {
            let _ = ended.wait(500_000_000);
            let info = process.info().unwrap_or_default();
            if info.state().is_ended() {
                break info;
            }
            let now_count = count.load(Ordering::Relaxed);
            if now_count != last {
                last = now_count;
                last_change = libos::time::now_ns();
            } else if libos::time::now_ns() - last_change > 30_000_000_000 {
                println!("fuzz: worker {workers} made no progress for 30 s after {now_count} calls (hang)");
                let _ = process.kill();
                return 1;
            }
        };
        done += count.load(Ordering::Relaxed);
        if !(info.state() == ProcessState::Exited && info.exit_code == 0) {
            died += 1;
        }
    }
    println!("fuzz: {done} random system calls from {workers} workers ({died} ended by their own calls); the kernel survived");
    0
}

struct Pool {
    handles: Vec<u64>,
    buf: Vec<u8>,
}

fn pick_arg(rng: &mut Rng, pool: &Pool) -> u64 {
    match rng.below(10) {
        0 => rng.below(16),
        1 => rng.next(),
        2 | 3 => pool.handles[rng.below(pool.handles.len() as u64) as usize],
        4 => Handle::SELF.0 as u64,
        5 => pool.buf.as_ptr() as u64 + rng.below(pool.buf.len() as u64),
        6 => [0xffff_ffff_8020_0000, 0xffff_8000_0000_0000, 0x8000_0000_0000_0000, 0, 0x1000][rng.below(5) as usize],
        7 => rng.below(1 << 20) << 12,
        8 => 1 << rng.below(64),
        _ => rng.below(4096),
    }
}

fn worker(seed: u64) -> i32 {
    let Some(counter) = libos::start::take_named("counter") else { return 2 };
    let counter = Memory(OwnedHandle::from_raw(counter));
    let Ok(map) = counter.map(MapFlags::WRITE) else { return 3 };
    // SAFETY: the counter page stays mapped for the worker's life.
    let count = unsafe { &*(map.as_ptr() as *const AtomicU64) };
    let mut rng = Rng::new(seed);
    let mut pool = Pool { handles: Vec::new(), buf: alloc::vec![0u8; 8192] };
    for _ in 0..4 {
        if let Ok(h) = sys::event_create() {
            pool.handles.push(h.0 as u64);
        }
    }
    if let Ok(h) = sys::mem_alloc(4, MemFlags::empty()) {
        pool.handles.push(h.0 as u64);
    }
    if let Ok((a, b)) = sys::link_create() {
        pool.handles.extend([a.0 as u64, b.0 as u64]);
    }
    let numbers: Vec<usize> =
        (0..64).filter_map(Syscall::from_number).filter(|s| *s != Syscall::Exit).map(|s| s as usize).collect();
    for _ in 0..CALLS_PER_WORKER {
        let nr =
            if rng.below(10) == 0 { rng.below(80) as usize } else { numbers[rng.below(numbers.len() as u64) as usize] };
        if nr == Syscall::Exit as usize {
            continue;
        }
        let mut a = [0u64; 6];
        for x in a.iter_mut() {
            *x = pick_arg(&mut rng, &pool);
        }
        if nr == Syscall::EventWait as usize || nr == Syscall::LinkSignalWait as usize {
            // Waits are bounded (both take the timeout third).
            a[2] = rng.below(1_000_000);
        }
        if nr == Syscall::DebugWrite as usize {
            a[0] = 0xffff_ffff_8020_0000 + rng.below(1 << 20);
        }
        if nr == Syscall::ProcessKill as usize && a[0] == Handle::SELF.0 as u64 {
            continue;
        }
        // SAFETY: this is a fuzzer: the call may unmap or overwrite this
        // program's own memory, which can only end this process.
        let (rax, rdx) = unsafe { raw::syscall6(nr, a) };
        if rax > 0 && pool.handles.len() < 256 && Error::check(rax).is_ok() && rax < (1 << 32) {
            pool.handles.push(rax as u64);
            if nr == Syscall::LinkCreate as usize {
                pool.handles.push(rdx);
            }
        }
        count.fetch_add(1, Ordering::Relaxed);
    }
    0
}
