//! A crash of the stack in the middle of two TCP streams, recovered as the
//! service will be: the stack lives in one fixed memory region (as in the
//! state arena: every allocation the stack makes goes there, the
//! allocator's own state included), a byte copy of the region is taken as
//! the checkpoint, the stack runs on, "crashes" (the region is overwritten
//! with the checkpoint), and the inputs it had since the checkpoint are
//! replayed. The replay must produce exactly the frames and replies the
//! stack produced the first time; the frames go out again as duplicates;
//! and the peer sees no reset: both streams arrive complete and in order.

#[path = "../../tests/common/mod.rs"]
mod common;

use buddy_system_allocator::Heap;
use common::*;
use net::protocol::{Reply, Request};
use net::{NetCore, Output};
use smoltcp::wire::{EthernetFrame, EthernetProtocol, Ipv4Packet, TcpPacket};
use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

const REGION_BYTES: usize = 32 << 20;

#[repr(C, align(4096))]
struct Region([u8; REGION_BYTES]);

static mut REGION: Region = Region([0; REGION_BYTES]);
/// Allocations go to the region while this is set (frees go where the
/// pointer points, always).
static IN_REGION: AtomicBool = AtomicBool::new(false);
static LOCK: spin::Mutex<()> = spin::Mutex::new(());

fn region_base() -> usize {
    (&raw const REGION) as usize
}

/// The region's allocator lives at its start, so a byte copy of the region
/// holds it too.
fn heap() -> *mut Heap<32> {
    region_base() as *mut Heap<32>
}

fn in_region(p: *mut u8) -> bool {
    (region_base()..region_base() + REGION_BYTES).contains(&(p as usize))
}

struct Switch;

unsafe impl GlobalAlloc for Switch {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if IN_REGION.load(Ordering::Relaxed) {
            let _g = LOCK.lock();
            // SAFETY: the heap was initialised before IN_REGION was set.
            unsafe { (*heap()).alloc(layout).map(|p| p.as_ptr()).unwrap_or(std::ptr::null_mut()) }
        } else {
            // SAFETY: forwarding.
            unsafe { System.alloc(layout) }
        }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if in_region(ptr) {
            let _g = LOCK.lock();
            // SAFETY: allocated from this heap with this layout.
            unsafe { (*heap()).dealloc(NonNull::new_unchecked(ptr), layout) }
        } else {
            // SAFETY: forwarding.
            unsafe { System.dealloc(ptr, layout) }
        }
    }
}

#[global_allocator]
static ALLOCATOR: Switch = Switch;

fn init_region() {
    let header = std::mem::size_of::<Heap<32>>().next_multiple_of(4096);
    // SAFETY: the region is ours; nothing is allocated from it yet.
    unsafe {
        std::ptr::write(heap(), Heap::new());
        (*heap()).init(region_base() + header, REGION_BYTES - header);
    }
}

fn with_region<R>(f: impl FnOnce() -> R) -> R {
    IN_REGION.store(true, Ordering::Relaxed);
    let r = f();
    IN_REGION.store(false, Ordering::Relaxed);
    r
}

fn snapshot() -> Vec<u8> {
    // SAFETY: a plain read of the region's bytes (single-threaded test).
    unsafe { std::slice::from_raw_parts(region_base() as *const u8, REGION_BYTES).to_vec() }
}

fn restore(bytes: &[u8]) {
    // SAFETY: nothing outside the region points into it while it is
    // overwritten (outputs are copied out of it after every call).
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), region_base() as *mut u8, REGION_BYTES) }
}

/// A NetCore whose every byte is in the region.
struct RegionCore(*mut NetCore);

impl RegionCore {
    fn new() -> RegionCore {
        RegionCore(with_region(|| Box::into_raw(Box::new(NetCore::new(config(IP_A), MAC_A, 1, 0).unwrap()))))
    }
}

impl Stack for RegionCore {
    fn input(&mut self, input: &Input) -> Output {
        // The input is copied into the region first: what the stack keeps of
        // it (data waiting to be sent) must be there too.
        // SAFETY: the core lives in the region for the whole test.
        let out = with_region(|| apply(unsafe { &mut *self.0 }, &input.clone()));
        let copy = out.clone();
        drop(out);
        copy
    }
}

const STREAM: u64 = 2 << 20;

/// Whether any frame is a TCP reset.
fn has_reset(frames: &[Vec<u8>]) -> bool {
    frames.iter().any(|f| {
        let Ok(eth) = EthernetFrame::new_checked(&f[..]) else { return false };
        if eth.ethertype() != EthernetProtocol::Ipv4 {
            return false;
        }
        let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else { return false };
        TcpPacket::new_checked(ip.payload()).is_ok_and(|t| t.rst())
    })
}

struct Streams {
    a_sock: u32,
    b_sock: u32,
    a_sent: u64,
    b_sent: u64,
    a_got: Vec<u8>,
    b_got: Vec<u8>,
}

/// One round of both applications: send what fits, take what came.
fn round(l: &mut Link<RegionCore, NetCore>, s: &mut Streams) {
    for (side, sock, sent, stream) in [(Side::A, s.a_sock, &mut s.a_sent, 1), (Side::B, s.b_sock, &mut s.b_sent, 2)] {
        if *sent < STREAM {
            let data: Vec<u8> = (*sent..(*sent + 8000).min(STREAM)).map(|i| pattern(stream, i)).collect();
            let seq = l.send(side, 1, Request::Send { socket: sock, data, wait_ms: 0 });
            match l.reply(side, 1, seq) {
                Some(Reply::Sent { count }) => *sent += count as u64,
                Some(Reply::NotReady) => {}
                other => panic!("{side:?} send: {other:?}"),
            }
        }
    }
    for (side, sock, got) in [(Side::A, s.a_sock, &mut s.a_got), (Side::B, s.b_sock, &mut s.b_got)] {
        let seq = l.send(side, 1, Request::Receive { socket: sock, max: 65536, wait_ms: 0 });
        match l.reply(side, 1, seq) {
            Some(Reply::Received { data, end }) => {
                assert!(!end, "{side:?}: the stream ended early");
                got.extend(data);
            }
            Some(Reply::NotReady) => {}
            other => panic!("{side:?} receive: {other:?} (a reset?)"),
        }
    }
    l.step();
}

/// Checkpoint once B has `checkpoint_at` bytes of A's stream, run `run_on`
/// rounds more, crash, replay.
fn crash_and_replay(checkpoint_at: u64, run_on: usize) {
    init_region();
    let a = RegionCore::new();
    let b = NetCore::new(config(IP_B), MAC_B, 2, 0).unwrap();
    let mut l = Link::new(a, b);
    let lst = socket_of(l.call(Side::B, 1, Request::Listen { port: 80, backlog: 2 }));
    let a_sock = socket_of(l.call(Side::A, 1, Request::Connect { address: IP_B.to_vec(), port: 80, wait_ms: 5000 }));
    let b_sock = socket_of(l.call(Side::B, 1, Request::Accept { socket: lst, wait_ms: 5000 }));
    let mut s = Streams { a_sock, b_sock, a_sent: 0, b_sent: 0, a_got: vec![], b_got: vec![] };
    while (s.b_got.len() as u64) < checkpoint_at {
        round(&mut l, &mut s);
    }
    // The checkpoint: the region's bytes, where the log starts again.
    let checkpoint = snapshot();
    let from = l.log_a.len();
    for _ in 0..run_on {
        round(&mut l, &mut s);
    }
    assert!(s.a_got.len() < STREAM as usize && s.b_got.len() < STREAM as usize, "crash after the end");
    let inputs = l.log_a[from..].to_vec();
    let outputs = l.out_a[from..].to_vec();
    // The crash: everything since the checkpoint is gone from the stack.
    restore(&checkpoint);
    let mut resent = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let out = l.a.input(input);
        let kind = match input {
            Input::Request { request, .. } => {
                format!("request {}", format!("{request:?}").chars().take(60).collect::<String>())
            }
            Input::Frames { frames, .. } => format!("{} frames", frames.len()),
            Input::Timer { .. } => String::from("timer"),
            Input::Closed { .. } => String::from("session closed"),
        };
        assert!(out == outputs[i], "replay diverged at input {i} of {} ({kind})", inputs.len());
        resent.extend(out.frames);
    }
    assert!(!has_reset(&resent));
    // The frames of the replay reach the peer again (duplicates).
    let now = l.now;
    let out = l.b.on_frames(resent, now);
    l.take(Side::B, out);
    let mut rounds = 0;
    while s.a_got.len() < STREAM as usize || s.b_got.len() < STREAM as usize {
        round(&mut l, &mut s);
        rounds += 1;
        assert!(rounds < 200_000, "stalled at {} and {} bytes", s.a_got.len(), s.b_got.len());
    }
    assert!(s.b_got.iter().enumerate().all(|(i, x)| *x == pattern(1, i as u64)), "A to B differs");
    assert!(s.a_got.iter().enumerate().all(|(i, x)| *x == pattern(2, i as u64)), "B to A differs");
    let a_frames: Vec<Vec<u8>> = l.out_a.iter().flat_map(|o| o.frames.clone()).collect();
    assert!(!has_reset(&a_frames), "A sent a reset");
    println!(
        "checkpoint at {checkpoint_at} bytes, {run_on} rounds lost and replayed ({} inputs, {} requests): both 2 MiB streams complete",
        inputs.len(),
        inputs.iter().filter(|i| matches!(i, Input::Request { .. })).count()
    );
}

fn main() {
    // Early in the streams, and deep into them with a longer replay.
    crash_and_replay(1, 30);
    crash_and_replay(STREAM / 3, 100);
    crash_and_replay(STREAM * 2 / 3, 40);
    // The test binary is not run by libtest; the line cargo reads:
    println!("test result: ok. 3 passed; 0 failed");
}
