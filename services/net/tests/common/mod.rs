//! Two NetCores wired back to back on a simulated wire and clock, and
//! clients that talk to them as sessions would.
#![allow(dead_code)]

use net::protocol::{Reply, Request};
use net::{Ipv4Mode, NetConfig, NetCore, Output};
use std::collections::BTreeMap;

pub const MAC_A: [u8; 6] = [0x52, 0x54, 0, 0, 0, 0x0a];
pub const MAC_B: [u8; 6] = [0x52, 0x54, 0, 0, 0, 0x0b];
pub const IP_A: [u8; 4] = [10, 0, 0, 1];
pub const IP_B: [u8; 4] = [10, 0, 0, 2];

pub fn config(ip: [u8; 4]) -> NetConfig {
    NetConfig { ipv4: Ipv4Mode::Static { address: ip, prefix: 24, gateway: None, dns: vec![] }, ..NetConfig::default() }
}

/// Which core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Side {
    A,
    B,
}

/// An input one core got, in order (what a companion would log).
#[derive(Clone, Debug)]
pub enum Input {
    Request { session: u64, seq: u64, request: Request, now: u64 },
    Frames { frames: Vec<Vec<u8>>, now: u64 },
    Timer { now: u64 },
    Closed { session: u64, now: u64 },
}

/// Something that can take a core's inputs (a plain core, or one in an
/// arena).
pub trait Stack {
    fn input(&mut self, input: &Input) -> Output;
}

impl Stack for NetCore {
    fn input(&mut self, input: &Input) -> Output {
        apply(self, input)
    }
}

pub fn apply(core: &mut NetCore, input: &Input) -> Output {
    match input.clone() {
        Input::Request { session, seq, request, now } => core.on_request(session, seq, request, now),
        Input::Frames { frames, now } => core.on_frames(frames, now),
        Input::Timer { now } => core.on_timer(now),
        Input::Closed { session, now } => core.session_closed(session, now),
    }
}

/// Two stacks on one wire. Frames each sends reach the other after one
/// step; `filter` may drop or change them on the way.
pub struct Link<SA: Stack, SB: Stack> {
    pub a: SA,
    pub b: SB,
    pub now: u64,
    to_a: Vec<Vec<u8>>,
    to_b: Vec<Vec<u8>>,
    timer: [Option<u64>; 2],
    /// Replies per (side, session, seq).
    pub replies: BTreeMap<(Side, u64, u64), Reply>,
    seqs: BTreeMap<(Side, u64), u64>,
    /// Every input of A, in order.
    pub log_a: Vec<Input>,
    /// Every output of A, in order (for determinism checks).
    pub out_a: Vec<Output>,
    /// Frames A sent.
    pub frames_a: u64,
    /// Drop every frame from A to B while true.
    pub cut_a_to_b: bool,
}

pub fn pair() -> Link<NetCore, NetCore> {
    let a = NetCore::new(config(IP_A), MAC_A, 1, 0).unwrap();
    let b = NetCore::new(config(IP_B), MAC_B, 2, 0).unwrap();
    Link::new(a, b)
}

impl<SA: Stack, SB: Stack> Link<SA, SB> {
    pub fn new(a: SA, b: SB) -> Self {
        Link {
            a,
            b,
            now: 0,
            to_a: vec![],
            to_b: vec![],
            timer: [Some(0), Some(0)],
            replies: BTreeMap::new(),
            seqs: BTreeMap::new(),
            log_a: vec![],
            out_a: vec![],
            frames_a: 0,
            cut_a_to_b: false,
        }
    }

    fn feed(&mut self, side: Side, input: Input) {
        let out = match side {
            Side::A => {
                self.log_a.push(input.clone());
                let o = self.a.input(&input);
                self.out_a.push(o.clone());
                o
            }
            Side::B => self.b.input(&input),
        };
        self.take(side, out);
    }

    pub fn take(&mut self, side: Side, out: Output) {
        for r in out.replies {
            let old = self.replies.insert((side, r.session, r.seq), r.reply);
            assert!(old.is_none(), "two replies to {side:?} {} {}", r.session, r.seq);
        }
        match side {
            Side::A => {
                self.frames_a += out.frames.len() as u64;
                if !self.cut_a_to_b {
                    self.to_b.extend(out.frames)
                }
            }
            Side::B => self.to_a.extend(out.frames),
        }
        self.timer[side as usize] = out.timer_ns;
    }

    /// Send a request; its seq.
    pub fn send(&mut self, side: Side, session: u64, request: Request) -> u64 {
        let seq = self.seqs.entry((side, session)).or_insert(0);
        *seq += 1;
        let seq = *seq;
        let now = self.now;
        self.feed(side, Input::Request { session, seq, request, now });
        seq
    }

    /// Close a session.
    pub fn close_session(&mut self, side: Side, session: u64) {
        let now = self.now;
        self.feed(side, Input::Closed { session, now });
    }

    /// One step: deliver the frames in flight, fire due timers, advance the
    /// clock by `dt_us` (or to the next timer if nothing is in flight).
    pub fn step(&mut self) {
        let now = self.now;
        if !self.to_b.is_empty() {
            let frames = std::mem::take(&mut self.to_b);
            self.feed(Side::B, Input::Frames { frames, now });
        }
        if !self.to_a.is_empty() {
            let frames = std::mem::take(&mut self.to_a);
            self.feed(Side::A, Input::Frames { frames, now });
        }
        for side in [Side::A, Side::B] {
            if self.timer[side as usize].is_some_and(|t| t <= self.now) {
                self.feed(side, Input::Timer { now });
            }
        }
        if self.to_a.is_empty() && self.to_b.is_empty() {
            let next = self.timer.iter().flatten().copied().min().unwrap_or(self.now + 10_000_000);
            self.now = next.max(self.now + 100_000).min(self.now + 10_000_000);
        } else {
            // 100 us per hop.
            self.now += 100_000;
        }
    }

    /// Step until `done` or `limit_ms` of simulated time passed.
    pub fn run_until(&mut self, limit_ms: u64, mut done: impl FnMut(&mut Self) -> bool) -> bool {
        let end = self.now + limit_ms * 1_000_000;
        while self.now < end {
            if done(self) {
                return true;
            }
            self.step();
        }
        done(self)
    }

    /// Run for `ms` of simulated time.
    pub fn run_for(&mut self, ms: u64) {
        self.run_until(ms, |_| false);
    }

    pub fn reply(&mut self, side: Side, session: u64, seq: u64) -> Option<Reply> {
        self.replies.remove(&(side, session, seq))
    }

    /// Send a request and run until its reply (within 60 s simulated).
    pub fn call(&mut self, side: Side, session: u64, request: Request) -> Reply {
        let seq = self.send(side, session, request.clone());
        let key = (side, session, seq);
        assert!(self.run_until(60_000, |l| l.replies.contains_key(&key)), "no reply to {request:?}");
        self.replies.remove(&key).unwrap()
    }
}

/// Byte `i` of test stream `n`.
pub fn pattern(n: u64, i: u64) -> u8 {
    let x = (n.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_add(i / 8);
    let x = (x ^ (x >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (x >> (8 * (i % 8))) as u8
}

pub fn socket_of(r: Reply) -> u32 {
    match r {
        Reply::Socket { socket } | Reply::Opened { socket, .. } | Reply::Accepted { socket, .. } => socket,
        other => panic!("expected a socket, got {other:?}"),
    }
}
