//! `fuzz [CALLS] [SEED] [WORKERS] [busy]`: at least CALLS random system calls
//! against the kernel from WORKERS (default 3, at most 8) worker processes
//! at once (`fuzz worker SEED SLOT BUDGET`, started through init with a
//! page limit from the manifest); a worker that ends is replaced by a new
//! one with the next seed, and the calls a worker did not make (it ended
//! itself by a call, unmapping its own stack, say) go to its successor,
//! until the total is reached. The kernel must neither panic nor hang (a
//! worker blocked for 30 s without progress counts as a hang, since every
//! wait it asks is bounded; one that runs for 30 s without a call spins in
//! memory its own calls scribbled on, and is killed and counted as ended by
//! its own calls, unless the kill does not end it) nor leak.
//!
//! # What the workers share
//! One page, mapped by every worker: a call counter per slot (bumped after
//! every call, read by the driver for the hang check and the total) and a
//! board of handle numbers the workers publish, which their siblings use
//! as arguments (handles of other processes: meaningless, or something
//! else, in the caller's table). And one link: half of the workers hold
//! one end, half the other, and send each other real handles through it,
//! so objects pass between processes and outlive the worker that made
//! them (the queue is dropped with the link at the end of the run).
//!
//! # Arguments
//! Call numbers are mostly the real ones; arguments a mix of small
//! numbers, random words, the worker's live handles, handles it closed a
//! moment ago (kept to be used again), the board's handles, pointers into
//! its own buffer and at every edge of the address space: the last bytes
//! of its own mappings and the first bytes after them, around its stack
//! and its guard page, the start-info and clock pages, the top of user
//! space, the non-canonical hole, the bottom of the kernel half, the
//! kernel image and the null page. Three constraints keep a worker
//! useful: no `Exit`, waits time out within a millisecond, and console
//! writes get bad pointers (no garbage printed).
//!
//! # The leak check
//! Kernel memory in use (frames taken from the allocator and bytes of the
//! kernel heap, read through `SystemInfo`) is read after a warm-up round
//! and again after the last worker has ended and been reaped (the reading
//! is repeated for up to 10 s, as init collects ended workers when it gets
//! to them); it must be back at or below its level, else `fuzz: FAIL ...
//! leak` and exit code 1. The warm-up rounds (the same number of workers
//! at once, a few calls each, repeated until one leaves the figures
//! unchanged) are there because some kernel structures grow on first use
//! and are kept at their high-water mark: the cached load plan of the
//! `fuzz` image, the slot and free lists of the handle tables of the
//! long-lived processes that hand workers their handles (init, this
//! driver), the waiter lists of long-lived events; and user memory of
//! this driver and of init, which keep their heaps. (The run queue and the
//! wake lists are reserved for every process at boot.) It is not slack:
//! every object a measured worker makes must be gone for the check to
//! pass. Other programs running meanwhile (the soak's clients) move the
//! figures both ways, so there (`busy`: the soak's runs during its boots) the figures
//! are printed but not judged; a quiet system (the isolation test, the
//! soak's final boot) measures the fuzzer alone.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use libos::abi::{
    Error, Handle, MapFlags, MemFlags, ProcessState, Rights, Syscall, SystemInfo, CLOCK_PAGE_ADDR, DEFAULT_STACK_PAGES,
    PAGE_SIZE, STACK_TOP, START_INFO_ADDR, USER_BASE, USER_END,
};
use libos::directory::{self, SpawnRequest};
use libos::handle::{Event, Memory, OwnedHandle, Process};
use libos::println;
use libos::sys::{self, raw};
use testprogs::{arg, arg_u64, Rng};

libos::main!(main);

/// Calls one worker makes at most.
const CALLS_PER_WORKER: u64 = 25_000;
/// Calls per worker in a warm-up round.
const WARM_UP_CALLS: u64 = 2_000;
/// Most warm-up rounds.
const WARM_UP_ROUNDS: u64 = 4;
/// Most workers at once (the counters' slots in the shared page).
const MAX_WORKERS: usize = 8;
/// Where the board of published handle numbers starts in the shared page.
const BOARD_OFFSET: usize = 1024;
/// Handle numbers on the board.
const BOARD_SLOTS: usize = 256;
/// A worker without progress for this long counts as a hang.
const HANG_NS: u64 = 30_000_000_000;
/// How long the driver waits for the memory to come back after a run.
const SETTLE_NS: u64 = 10_000_000_000;
/// And after a warm-up round.
const WARM_UP_SETTLE_NS: u64 = 2_000_000_000;

fn main() -> i32 {
    match arg(0) {
        Some("worker") => worker(arg_u64(1, 1), arg_u64(2, 0) as usize, arg_u64(3, CALLS_PER_WORKER)),
        _ => driver(arg_u64(0, 100_000), arg_u64(1, 1), arg_u64(2, 3), arg(3) == Some("busy")),
    }
}

/// Kernel memory in use: frames taken from the allocator and heap bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
struct InUse {
    pages: u64,
    heap: u64,
}

impl InUse {
    fn now() -> Option<InUse> {
        let i: SystemInfo = sys::system_info().ok()?;
        Some(InUse { pages: i.total_pages - i.free_pages, heap: i.kernel_heap_used })
    }

    fn at_most(&self, base: &InUse) -> bool {
        self.pages <= base.pages && self.heap <= base.heap
    }
}

impl core::fmt::Display for InUse {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} pages + {} heap bytes", self.pages, self.heap)
    }
}

/// What one round of workers did.
struct Round {
    calls: u64,
    workers: u64,
    died: u64,
}

/// A running worker.
struct Slot {
    process: Process,
    number: u64,
    budget: u64,
    last: u64,
    last_change: u64,
}

fn driver(total: u64, seed: u64, workers: u64, busy: bool) -> i32 {
    let workers = (workers as usize).clamp(1, MAX_WORKERS);
    if busy {
        return busy_driver(total, seed, workers);
    }
    // Warm-up: the same machinery (twice as many workers as slots, so
    // that workers are started while others run, as in the measured
    // round), so that structures kept at their high-water mark reach it
    // before the baseline is read; again until a warm-up round leaves the
    // figures where it found them (at most WARM_UP_ROUNDS).
    let mut before = InUse::now();
    for n in 0..WARM_UP_ROUNDS {
        let calls = WARM_UP_CALLS * 2 * workers as u64;
        if let Err(code) = round(calls, WARM_UP_CALLS, (seed ^ 0x5eed_0000_0000).wrapping_add(n), workers, false) {
            return code;
        }
        let now = settled(before, WARM_UP_SETTLE_NS);
        let stable = matches!((now, before), (Some(n), Some(b)) if n.at_most(&b));
        before = now;
        if stable {
            break;
        }
    }
    let Some(before) = before else {
        println!("fuzz: cannot read the system info");
        return 1;
    };
    let start = libos::time::now_ns();
    let r = match round(total, CALLS_PER_WORKER, seed, workers, false) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let elapsed = (libos::time::now_ns() - start).max(1);
    let after = settled(Some(before), SETTLE_NS).unwrap_or(InUse { pages: u64::MAX, heap: u64::MAX });
    let rate = r.calls as u128 * 1_000_000_000 / elapsed as u128;
    println!(
        "fuzz: {} random system calls from {} workers, {workers} at a time ({} ended by their own calls), in {}.{:03} s, {rate} calls/s; kernel memory in use before {before}, after {after}; the kernel survived",
        r.calls,
        r.workers,
        r.died,
        elapsed / 1_000_000_000,
        elapsed / 1_000_000 % 1000
    );
    if !after.at_most(&before) {
        println!(
            "fuzz: FAIL kernel memory in use went from {before} to {after} and did not come back within 10 s: leak"
        );
        return 1;
    }
    0
}

/// `busy`: other programs run meanwhile and move kernel memory in use both
/// ways, so the figures are printed but not judged (no warm-up, no wait).
fn busy_driver(total: u64, seed: u64, workers: usize) -> i32 {
    let before = InUse::now();
    let start = libos::time::now_ns();
    let r = match round(total, CALLS_PER_WORKER, seed, workers, true) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let elapsed = (libos::time::now_ns() - start).max(1);
    let after = InUse::now();
    let figure = |f: Option<InUse>| f.map_or(String::from("?"), |f| format!("{f}"));
    println!(
        "fuzz: {} random system calls from {} workers, {workers} at a time ({} ended by their own calls), in {}.{:03} s, {} calls/s; kernel memory in use before {}, after {} (not judged: other programs ran); the kernel survived",
        r.calls,
        r.workers,
        r.died,
        elapsed / 1_000_000_000,
        elapsed / 1_000_000 % 1000,
        r.calls as u128 * 1_000_000_000 / elapsed as u128,
        figure(before),
        figure(after)
    );
    0
}

/// Kernel memory in use once it has come back to `base` (or stopped
/// moving, without a base): read every 100 ms for up to `patience` ns;
/// the last reading (the first at or below `base`).
fn settled(base: Option<InUse>, patience: u64) -> Option<InUse> {
    let deadline = libos::time::now_ns() + patience;
    let mut last = InUse::now()?;
    let mut same = 0;
    loop {
        match base {
            Some(b) if last.at_most(&b) => return Some(last),
            None if same >= 3 => return Some(last),
            _ => {}
        }
        if libos::time::now_ns() >= deadline {
            return Some(last);
        }
        libos::time::sleep(core::time::Duration::from_millis(100));
        let now = InUse::now()?;
        same = if now == last { same + 1 } else { 0 };
        last = now;
    }
}

/// Run workers of at most `per_worker` calls, `slots` at a time, until
/// `total` calls are made.
/// Every this many ns a `busy` run says how many calls it has made (see
/// [`round`]).
const PROGRESS_EVERY_NS: u64 = 2_000_000_000;

/// One run of `total` calls from `slots` workers at once. With `progress`,
/// a line `fuzz: N calls so far` every [`PROGRESS_EVERY_NS`]: a run that a
/// power cut ends in the soak still made those calls.
fn round(total: u64, per_worker: u64, seed: u64, slots: usize, progress: bool) -> Result<Round, i32> {
    let shared = Memory::alloc(1, MemFlags::empty()).map_err(|e| {
        println!("fuzz: no memory for the shared page: {e}");
        1
    })?;
    let map = shared.map(MapFlags::WRITE).map_err(|e| {
        println!("fuzz: cannot map the shared page: {e}");
        1
    })?;
    let (end_a, end_b) = match sys::link_create() {
        Ok((a, b)) => (OwnedHandle::from_raw(a), OwnedHandle::from_raw(b)),
        Err(e) => {
            println!("fuzz: cannot create the workers' link: {e}");
            return Err(1);
        }
    };
    let ended = Event::new().map_err(|e| {
        println!("fuzz: cannot create an event: {e}");
        1
    })?;
    // SAFETY: the shared page is mapped (and page-aligned) for `map`'s
    // lifetime; the workers only touch it atomically.
    let counters = unsafe { core::slice::from_raw_parts(map.as_ptr() as *const AtomicU64, MAX_WORKERS) };
    let mut running: Vec<Option<Slot>> = (0..slots).map(|_| None).collect();
    let mut r = Round { calls: 0, workers: 0, died: 0 };
    // Calls given to workers, less what ended workers did not make.
    let mut assigned = 0u64;
    let mut last_progress = libos::time::now_ns();
    loop {
        for (i, s) in running.iter_mut().enumerate() {
            if s.is_some() || assigned >= total {
                continue;
            }
            let budget = per_worker.min(total - assigned);
            counters[i].store(0, Ordering::Relaxed);
            let give = |h: &OwnedHandle| h.rights().and_then(|r| h.duplicate(r));
            let link = if i % 2 == 0 { &end_a } else { &end_b };
            let (Ok(for_child), Ok(link)) = (give(&shared.0), give(link)) else {
                println!("fuzz: cannot duplicate handles for a worker");
                return Err(1);
            };
            let req = SpawnRequest {
                program: String::from("fuzz"),
                name: String::from("fuzz-worker"),
                args: format!("worker {} {i} {budget}", seed.wrapping_mul(1000).wrapping_add(r.workers)),
                suspended: false,
                handles: Vec::from([(String::from("shared"), for_child), (String::from("link"), link)]),
            };
            let process = match directory::spawn(req) {
                Ok((_, p)) => p,
                Err(e) => {
                    println!("fuzz: cannot start a worker: {e}");
                    return Err(1);
                }
            };
            let _ = process.watch(&ended, 1 << i);
            r.workers += 1;
            assigned += budget;
            *s = Some(Slot { process, number: r.workers, budget, last: 0, last_change: libos::time::now_ns() });
        }
        if running.iter().all(Option::is_none) {
            return Ok(r);
        }
        let _ = ended.wait(200_000_000);
        let now = libos::time::now_ns();
        if progress && now - last_progress >= PROGRESS_EVERY_NS {
            last_progress = now;
            let so_far: u64 = r.calls
                + running
                    .iter()
                    .enumerate()
                    .filter_map(|(i, s)| s.as_ref().map(|w| counters[i].load(Ordering::Relaxed).min(w.budget)))
                    .sum::<u64>();
            println!("fuzz: {so_far} calls so far");
        }
        for (i, s) in running.iter_mut().enumerate() {
            let Some(w) = s else { continue };
            let info = w.process.info().unwrap_or_default();
            // A worker may scribble on its own counter through a call: at
            // most its budget counts.
            let count = counters[i].load(Ordering::Relaxed).min(w.budget);
            if info.state().is_ended() {
                r.calls += count;
                assigned -= w.budget - count;
                if !(info.state() == ProcessState::Exited && info.exit_code == 0) {
                    r.died += 1;
                }
                *s = None;
            } else if count != w.last {
                w.last = count;
                w.last_change = now;
            } else if now - w.last_change > HANG_NS && info.state() == ProcessState::Runnable {
                // Running its own code without making calls: a worker whose
                // calls scribbled over its own memory (a loop in a heap it
                // broke, say) spins. That is the worker's doing, not the
                // kernel's; the kernel's part is that a kill still ends it.
                let _ = w.process.kill();
                let ended_by_kill = (0..50).any(|_| {
                    let _ = ended.wait(100_000_000);
                    w.process.info().unwrap_or_default().state().is_ended()
                });
                if !ended_by_kill {
                    println!("fuzz: worker {} spun for 30 s and a kill did not end it (hang)", w.number);
                    return Err(1);
                }
                // The next pass counts it as ended (killed: by its own
                // calls), as any worker that ends.
            } else if now - w.last_change > HANG_NS {
                println!(
                    "fuzz: worker {} made no progress for 30 s after {count} calls, blocked in the kernel though every wait it asks is bounded (hang)",
                    w.number
                );
                for w in running.iter().flatten() {
                    let _ = w.process.kill();
                }
                return Err(1);
            }
        }
    }
}

/// What a worker draws its arguments from.
struct Pool {
    /// Handles it holds (or held, if a random call closed them).
    handles: Vec<u64>,
    /// Handles it closed or sent away itself, kept to be used again.
    stale: Vec<u64>,
    /// Addresses at the edges of its own mappings and of the address space.
    edges: Vec<u64>,
    buf: Vec<u8>,
}

fn pick_arg(rng: &mut Rng, pool: &Pool, board: &[AtomicU32]) -> u64 {
    match rng.below(14) {
        0 => rng.below(16),
        1 => rng.next(),
        2 | 3 => pool.handles[rng.below(pool.handles.len() as u64) as usize],
        4 if !pool.stale.is_empty() => pool.stale[rng.below(pool.stale.len() as u64) as usize],
        5 => board[rng.below(BOARD_SLOTS as u64) as usize].load(Ordering::Relaxed) as u64,
        6 => Handle::SELF.0 as u64,
        7 => pool.buf.as_ptr() as u64 + rng.below(pool.buf.len() as u64),
        8 | 9 => pool.edges[rng.below(pool.edges.len() as u64) as usize],
        10 => rng.below(1 << 20) << 12,
        11 => 1 << rng.below(64),
        _ => rng.below(4096),
    }
}

/// The addresses around a mapping `[start, end)`: its first and last
/// bytes and the bytes just outside it.
fn around(edges: &mut Vec<u64>, start: u64, end: u64) {
    edges.extend([start.wrapping_sub(8), start.wrapping_sub(1), start, end - 8, end - 1, end, end + 1]);
}

fn worker(seed: u64, slot: usize, budget: u64) -> i32 {
    let Some(shared) = libos::start::take_named("shared") else { return 2 };
    let shared = Memory(OwnedHandle::from_raw(shared));
    let Ok(map) = shared.map(MapFlags::WRITE) else { return 3 };
    if slot >= MAX_WORKERS {
        return 4;
    }
    // SAFETY: the shared page stays mapped for the worker's life (unless a
    // random call unmaps it, which faults this process only); its words
    // are only touched atomically.
    let (count, board) = unsafe {
        (
            &*(map.as_ptr() as *const AtomicU64).add(slot),
            core::slice::from_raw_parts(map.as_ptr().add(BOARD_OFFSET) as *const AtomicU32, BOARD_SLOTS),
        )
    };
    let link = libos::start::take_named("link").map_or(0, |h| h.0 as u64);
    let mut rng = Rng::new(seed);
    let mut pool = Pool { handles: Vec::new(), stale: Vec::new(), edges: Vec::new(), buf: alloc::vec![0u8; 8192] };
    pool.handles.extend([shared.raw().0 as u64, link]);
    for _ in 0..4 {
        if let Ok(h) = sys::event_create() {
            pool.handles.push(h.0 as u64);
        }
    }
    // A mapping of its own whose edges the calls aim at.
    let own = Memory::alloc(4, MemFlags::empty()).ok().and_then(|m| {
        pool.handles.push(m.raw().0 as u64);
        let at = m.map(MapFlags::WRITE).ok()?;
        core::mem::forget(m);
        Some(at)
    });
    if let Ok((a, b)) = sys::link_create() {
        pool.handles.extend([a.0 as u64, b.0 as u64]);
    }
    if let Some(own) = &own {
        around(&mut pool.edges, own.addr(), own.addr() + own.len() as u64);
    }
    around(&mut pool.edges, map.addr(), map.addr() + PAGE_SIZE);
    let buf = pool.buf.as_ptr() as u64;
    around(&mut pool.edges, buf, buf + pool.buf.len() as u64);
    // The stack, its guard page, the start-info and clock pages.
    around(&mut pool.edges, STACK_TOP - DEFAULT_STACK_PAGES * PAGE_SIZE, STACK_TOP);
    around(&mut pool.edges, START_INFO_ADDR, CLOCK_PAGE_ADDR + PAGE_SIZE);
    pool.edges.extend([
        // The null page and the lowest mappable page.
        0,
        8,
        USER_BASE - 8,
        USER_BASE,
        // This program's code (read-only) and data.
        main as fn() -> i32 as usize as u64,
        &CALLS_PER_WORKER as *const u64 as u64,
        // The top of user space and the non-canonical hole above it.
        USER_END - PAGE_SIZE,
        USER_END - 8,
        USER_END - 1,
        USER_END,
        0x0000_8000_0000_1000,
        0xffff_7fff_ffff_f000,
        0xffff_7fff_ffff_fff8,
        // The bottom of the kernel half (the direct map) and the kernel image.
        0xffff_8000_0000_0000,
        0xffff_8000_0010_0000,
        0xffff_ffff_8000_0000,
        0xffff_ffff_8020_0000,
        // The very top: a length wraps.
        u64::MAX - 7,
        u64::MAX,
    ]);
    let numbers: Vec<usize> =
        (0..64).filter_map(Syscall::from_number).filter(|s| *s != Syscall::Exit).map(|s| s as usize).collect();
    for _ in 0..budget {
        match rng.below(100) {
            // Close a handle and keep its number (valid a moment ago).
            0 => {
                let i = rng.below(pool.handles.len() as u64) as usize;
                let h = pool.handles[i];
                if h != link && sys::handle_close(Handle(h as u32)).is_ok() {
                    pool.handles.swap_remove(i);
                    keep_stale(&mut pool.stale, h);
                    if pool.handles.is_empty() {
                        pool.handles.push(link);
                    }
                }
            }
            // Publish a handle number for the siblings.
            1 | 2 => {
                let h = pool.handles[rng.below(pool.handles.len() as u64) as usize];
                board[rng.below(BOARD_SLOTS as u64) as usize].store(h as u32, Ordering::Relaxed);
            }
            // Send a real handle to a sibling through the shared link.
            3 => {
                let i = rng.below(pool.handles.len() as u64) as usize;
                let h = pool.handles[i];
                let rights = Rights::from_bits_truncate(rng.next() as u32);
                if h != link && sys::link_send(Handle(link as u32), Handle(h as u32), rights).is_ok() {
                    pool.handles.swap_remove(i);
                    keep_stale(&mut pool.stale, h);
                    if pool.handles.is_empty() {
                        pool.handles.push(link);
                    }
                }
            }
            // And take one a sibling sent.
            4 => {
                if let Ok(h) = sys::link_recv(Handle(link as u32)) {
                    if pool.handles.len() < 256 {
                        pool.handles.push(h.0 as u64);
                    }
                }
            }
            _ => {}
        }
        let nr =
            if rng.below(10) == 0 { rng.below(80) as usize } else { numbers[rng.below(numbers.len() as u64) as usize] };
        if nr == Syscall::Exit as usize {
            continue;
        }
        let mut a = [0u64; 6];
        for x in a.iter_mut() {
            *x = pick_arg(&mut rng, &pool, board);
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
    // Straight out: the calls may have scribbled over this process's heap
    // and statics, which the destructors of a return would walk.
    sys::exit(0)
}

/// Remember a handle number that was valid a moment ago (a few dozen).
fn keep_stale(stale: &mut Vec<u64>, h: u64) {
    if stale.len() >= 64 {
        stale.swap_remove(0);
    }
    stale.push(h);
}
