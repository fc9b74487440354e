//! The net service: [`NetCore`] as a resilient service under its
//! companion (`resilient = true` in the manifest).
//!
//! **State.** The whole stack lives in the state arena: the service gives
//! the arena the program's global heap before it builds anything, and
//! keeps its [`NetState`] (the core, the held requests, frames waiting to
//! go out, the last time seen) at the arena's root (`libos::arena::keep_root`).
//! A checkpoint is a copy of the arena's dirty pages (image distillation);
//! a restart maps the copy back and finds the state again at the root
//! (`adopt_kept`). The checkpoints stay in the companion's memory
//! (`store = "memory"`): the state is live TCP connections, which a reboot
//! ends anyway (the peers reset them, the DHCP lease starts again), so a
//! copy in the vault could only restore sockets whose peers are gone, and
//! writing the dirty pages of a 20 MiB arena to the checkpoint disk every
//! second would cost the stack its throughput.
//!
//! **Inputs.** Everything the core is fed comes through the companion and
//! is logged, so a replay after a crash feeds it the same: client requests
//! (delivered by the companion), the time (`service::now_ns` for a request,
//! the tick's own time for a tick), and frames: on every timer tick (every
//! [`TICK_MS`] while the stack is busy, every [`HELD_TICK_MS`] once it
//! has been quiet for a second but holds a client's request, every
//! [`IDLE_TICK_MS`] when it holds none either; the service tells its companion with
//! `service::tick_every`) the service asks nic for what it received with a recorded
//! call (`service::call("nic", Receive { wait_ms: 0 })`) and hands the
//! frames to the core. The core's randomness comes from its seed, drawn
//! from recorded inputs (the first time and the card's address). Given the
//! same inputs the core gives the same outputs byte for byte, so a replay
//! rebuilds the exact TCP sequence numbers and windows the peers know.
//!
//! **Frames out.** The core's frames go to nic with a recorded call
//! (`Send`) in the request or tick that produced them. During a replay a
//! recorded call is not made again: the companion answers it from its log
//! (checked in `companion::Companion::input`: a replayed input is taken
//! from the recorded ones and only a call past them, one the crashed
//! process never made, reaches nic). So no frame goes out twice because of
//! a replay, and a frame the crashed process had not sent yet is sent by
//! the replay. A session's end cannot make calls (the companion does not
//! answer inputs there), so the frames it produces wait in the state and
//! go out with the next tick.
//!
//! **Waiting requests.** A request the core cannot answer at once
//! (`Receive`, `Accept`, `Wait`, `Send`, `Connect`... with `wait_ms` > 0)
//! is held (`service::hold`); the core keeps it under the session and a
//! number of the service's own, mapped here to its `Held` token, and the
//! answer goes out when the core produces it (`service::answer` and
//! `release`), while a later request or tick is handled. A request with
//! `wait_ms = 0` is answered at once. The idempotent requests (`Status`,
//! `Sockets`, `LocalAddress`, `PeerAddress`) only read the core
//! ([`NetCore::query`]): the companion does not log or replay them.
//! Until the stack is up (nic has told the card's address), requests
//! other than those wait, held, and go to the stack in order when it
//! comes up, or are answered that the network is down after
//! [`WAIT_FOR_CARD_NS`]; on a machine without a card they are answered so
//! at once (`Status` says why). They must not wait for good: a caller
//! such as httpd makes its calls through its companion, which waits for
//! the answer and serves nobody else meanwhile (`ps` waited a minute for
//! httpd's companion on every machine without a card).
//!
//! Started with `direct net`, the same service runs without a companion
//! (the runtime's direct mode, its ticks from the real clock).

use crate::protocol::{Net, Reply, Request};
use crate::{code, NetConfig, NetCore, Output};
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use libos::channel::{HandleList, HandleQueue, Message};
use libos::protocol::ReplySink;
use libos::wire::{Reader, Writer};
use resiliency_lib::service::{self, CallError, Event, Held, RequestOf, Service};

/// Interval of the timer ticks on which the service takes nic's frames
/// and fires the core's timer (ms).
pub const TICK_MS: u64 = 5;
/// Pages of state arena (20 MiB): the stack with the default
/// configuration (96 sockets of 32 KiB to receive and 128 KiB to send),
/// every socket with full buffers, plus [`ARENA_OVERHEAD`]
/// for the interface, the tables and the runtime's passing allocations
/// (requests, batches of frames). Memory counts twice (the arena, and its
/// copy in the companion's memory store), so it is no larger than that.
pub const ARENA_PAGES: u64 = 5120;
/// Bytes of arena besides the socket buffers.
const ARENA_OVERHEAD: usize = 4 << 20;
/// Requests waiting for the stack to come up, at most.
const MAX_WAITING: usize = 256;
/// How long a request waits for the stack to come up (ns) before it is
/// answered that the network is down: a caller whose companion makes the
/// call waits for the answer, and must not wait for good.
const WAIT_FOR_CARD_NS: u64 = 10_000_000_000;
/// Batches of frames taken from nic on one tick, at most.
const BATCHES_PER_TICK: usize = 8;
/// Interval of the ticks while the stack is idle (ms): nothing received,
/// sent or asked for in [`IDLE_AFTER_NS`], no client waiting. A frame that
/// arrives then waits for the next tick (at most this long), after which
/// the ticks are fast again; an idle stack costs the machine a twentieth
/// of a busy one.
pub const IDLE_TICK_MS: u64 = 100;
/// Quiet time after which the stack counts as idle (ns).
const IDLE_AFTER_NS: u64 = 1_000_000_000;
/// Interval of the ticks while the stack is quiet but holds requests
/// (ms): a client waits for a connection or for data (httpd waits on its
/// listener all the time). Frames reach the stack only on ticks, so this
/// is how long the first frame after a quiet second may wait; five
/// milliseconds cost an idle machine twice the CPU of twenty (`cargo
/// xtask profile --seconds 10`: 6.9 % against 3.6 % busy).
pub const HELD_TICK_MS: u64 = 20;
/// While nic cannot be reached or says nothing of its card, time between
/// two tries (ns).
const PROBE_NS: u64 = 1_000_000_000;
/// Tag of the state at the arena's root.
const TAG: u64 = 0x6e65_7473_7461_7465; // "netstate"
/// The state's check value; `chaos_corrupt` changes it.
const MAGIC: u64 = 0x4b49_4e54_5355_4749;

/// Pages of arena the stack needs for `config`: every socket with full
/// buffers, plus the rest.
pub fn arena_pages(config: &NetConfig) -> u64 {
    let per_socket = (config.tcp_buffer + config.tcp_send_buffer).max(2 * config.udp_buffer);
    let bytes = config.max_sockets * per_socket + ARENA_OVERHEAD;
    (bytes as u64).div_ceil(libos::abi::PAGE_SIZE)
}

/// What the service keeps in the arena.
pub struct NetState {
    magic: u64,
    /// The configuration (None: the arguments were refused, or there is
    /// no card; `down` says why).
    config: Option<NetConfig>,
    /// The stack, once the card's address is known.
    core: Option<NetCore>,
    /// Why there is no stack yet.
    down: String,
    /// The time of the last try to reach the card (ns).
    probed_at: Option<u64>,
    /// The time of the last frame in or out (ns). A client's request that
    /// sends nothing (a `Wait` that finds nothing ready) is not activity.
    active_ns: u64,
    /// The latest time an input carried (ns since boot).
    now_ns: u64,
    /// When the core wants its timer.
    timer_ns: Option<u64>,
    /// Frames produced where no call could be made (a session's end).
    outbox: Vec<Vec<u8>>,
    /// Requests numbered per session, for the core.
    numbers: BTreeMap<u64, u64>,
    /// Held requests by the core's (session, number).
    held: BTreeMap<(u64, u64), Held>,
    /// The last call to nic failed (said once).
    nic_failing: bool,
    /// Requests that came before the stack was up, waiting for it: the
    /// held request, its session, the request, and when it came (ns).
    waiting: Vec<(Held, u64, Request, u64)>,
}

/// The service: its state in the arena.
pub struct NetService {
    state: &'static mut NetState,
}

fn encode<M: Message>(m: M) -> Vec<u8> {
    let mut w = Writer::new();
    m.encode(&mut w, &mut HandleList::default());
    w.finish()
}

fn decode_nic(bytes: &[u8]) -> Result<nic::Reply, String> {
    let mut r = Reader::new(bytes);
    let m = nic::Reply::decode(&mut r, &mut HandleQueue::new(Vec::new())).map_err(|e| format!("{e}"))?;
    r.finish().map_err(|e| format!("{e}"))?;
    Ok(m)
}

/// Call nic (recorded); its reply.
fn call_nic(request: nic::Request) -> Result<nic::Reply, String> {
    match service::call(nic::SERVICE, &encode(request)) {
        Ok(bytes) => decode_nic(&bytes).map_err(|e| format!("nic's reply does not decode: {e}")),
        Err(CallError::NoService) => Err(String::from("no nic service")),
        Err(e) => Err(format!("the call to nic failed ({e:?})")),
    }
}

fn is_query(request: &Request) -> bool {
    matches!(request, Request::Status | Request::Sockets | Request::LocalAddress { .. } | Request::PeerAddress { .. })
}

impl NetState {
    /// Make the stack if it is not there yet: ask nic for the card's
    /// address (a recorded call; only where calls may be made). The seed
    /// mixes the time and the address, both recorded inputs.
    fn start_core(&mut self, now_ns: u64) {
        if self.core.is_some() {
            return;
        }
        let Some(config) = self.config.clone() else { return };
        if self.probed_at.is_some_and(|t| now_ns < t.saturating_add(PROBE_NS)) {
            return;
        }
        let first = self.probed_at.is_none();
        self.probed_at = Some(now_ns);
        let mac = match call_nic(nic::Request::Info) {
            Ok(nic::Reply::Status { mac, .. }) if mac.len() == 6 => {
                let mut m = [0u8; 6];
                m.copy_from_slice(&mac);
                m
            }
            Ok(nic::Reply::Failed { code: nic::code::NO_DEVICE, .. }) => {
                // A machine without a card: no card comes later, so nic
                // is not asked again (each try would be a warning of its).
                log::warn!("no network card: the network stays down");
                self.down = String::from("no network card");
                self.config = None;
                return;
            }
            other => {
                let why = match other {
                    Ok(r) => format!("nic answered {r:?}"),
                    Err(e) => e,
                };
                if first {
                    log::warn!("the network stays down for now: {why}");
                }
                self.down = why;
                return;
            }
        };
        let seed = now_ns ^ u64::from_le_bytes([mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], 0x6e, 0x65]);
        match NetCore::new(config, mac, seed, now_ns) {
            Ok(core) => {
                self.core = Some(core);
                // The core's timer is due at once: DHCP and the IPv6
                // router solicitation start now. (The stack used to wait
                // for its first frame or client request: on QEMU's quiet
                // user network it took no address until httpd listened,
                // or until a peer's first SYN, which it could not answer.)
                self.timer_ns = Some(now_ns);
                log::info!("the stack is up on the card");
            }
            Err(e) => {
                log::error!("{e}");
                self.down = e;
                self.config = None;
            }
        }
    }

    /// A call to nic failed: said once, not on every tick, until one
    /// succeeds again.
    fn nic_trouble(&mut self, what: String) {
        if !self.nic_failing {
            log::warn!("{what} (said once until nic answers again)");
            self.nic_failing = true;
        }
    }

    /// A call to nic succeeded.
    fn nic_ok(&mut self) {
        if core::mem::take(&mut self.nic_failing) {
            log::info!("nic answers again");
        }
    }

    fn see(&mut self, now_ns: u64) {
        self.now_ns = self.now_ns.max(now_ns);
    }

    /// Put an output's frames on the wire (or in the outbox where calls
    /// cannot be made), its answers to held requests out, and note its
    /// timer. The reply to request `current` (the core's numbering) if the
    /// output has it.
    fn deliver(&mut self, out: Output, current: Option<(u64, u64)>, may_call: bool) -> Option<Reply> {
        self.timer_ns = out.timer_ns;
        if !out.frames.is_empty() {
            self.active_ns = self.now_ns;
        }
        self.outbox.extend(out.frames);
        if may_call {
            self.flush();
        }
        let mut mine = None;
        for a in out.replies {
            if Some((a.session, a.seq)) == current {
                mine = Some(a.reply);
            } else if let Some(held) = self.held.remove(&(a.session, a.seq)) {
                service::answer(held, a.reply);
                service::release(held);
            }
        }
        mine
    }

    /// Send the waiting frames to nic, a batch per call. A batch nic
    /// refuses is lost, as on a wire: TCP sends it again.
    fn flush(&mut self) {
        while !self.outbox.is_empty() {
            let rest = self.outbox.split_off(self.outbox.len().min(nic::MAX_BATCH));
            let frames = core::mem::replace(&mut self.outbox, rest);
            match call_nic(nic::Request::Send { frames }) {
                Ok(nic::Reply::Sent { .. }) => {}
                Ok(other) => self.nic_trouble(format!("nic send: {other:?}")),
                Err(e) => self.nic_trouble(format!("nic send: {e}")),
            }
        }
    }

    /// A tick: take what nic received, fire the core's timer if due, send
    /// what waited.
    fn tick(&mut self, now_ns: u64) {
        self.see(now_ns);
        self.start_core(now_ns);
        if self.core.is_none() {
            self.expire_waiting();
            return;
        }
        self.run_waiting();
        self.flush();
        let mut ran = false;
        for _ in 0..BATCHES_PER_TICK {
            let frames = match call_nic(nic::Request::Receive { max: nic::MAX_BATCH as u32, wait_ms: 0 }) {
                Ok(nic::Reply::Frames { frames }) => {
                    self.nic_ok();
                    frames
                }
                Ok(other) => {
                    self.nic_trouble(format!("nic receive: {other:?}"));
                    break;
                }
                Err(e) => {
                    self.nic_trouble(format!("nic receive: {e}"));
                    break;
                }
            };
            if frames.is_empty() {
                break;
            }
            let full = frames.len() >= nic::MAX_BATCH;
            let now = self.now_ns;
            let Some(core) = self.core.as_mut() else { return };
            let out = core.on_frames(frames, now);
            self.active_ns = now;
            self.deliver(out, None, true);
            ran = true;
            if !full {
                break;
            }
        }
        // Frames ran the core at this time already, timers included.
        if !ran && self.timer_ns.is_some_and(|t| t <= self.now_ns) {
            let now = self.now_ns;
            let Some(core) = self.core.as_mut() else { return };
            let out = core.on_timer(now);
            self.deliver(out, None, true);
        }
    }

    /// A client request: its reply now, or None if it was held.
    fn request(&mut self, session: u64, request: Request) -> Option<Reply> {
        if is_query(&request) {
            return Some(match self.core.as_ref() {
                Some(core) => core.query(session, &request).unwrap_or(Reply::NotReady),
                None => self.down_reply(),
            });
        }
        let now = service::now_ns();
        self.see(now);
        self.start_core(now);
        if self.core.is_none() {
            if self.config.is_none() {
                // No card (or a configuration refused): no stack comes.
                return Some(self.down_reply());
            }
            return self.wait_for_core(session, request);
        }
        self.run_waiting();
        match self.feed(session, request) {
            Ok(reply) => Some(reply),
            Err(number) => match service::hold() {
                Some(held) => {
                    self.held.insert((session, number), held);
                    None
                }
                None => {
                    Some(Reply::Failed { code: code::UNRECOVERABLE, message: String::from("cannot hold the request") })
                }
            },
        }
    }

    /// Give the core a request of `session`: its reply, or the number the
    /// core knows it by while it waits.
    fn feed(&mut self, session: u64, request: Request) -> Result<Reply, u64> {
        let number = {
            let n = self.numbers.entry(session).or_insert(0);
            *n += 1;
            *n
        };
        let now = self.now_ns;
        let Some(core) = self.core.as_mut() else { return Ok(self.down_reply()) };
        let out = core.on_request(session, number, request, now);
        self.deliver(out, Some((session, number)), true).ok_or(number)
    }

    /// No stack yet (nic has not answered yet): the request waits for it,
    /// for at most [`WAIT_FOR_CARD_NS`], as a client of the network waits
    /// for the network to come up at boot. Only so many wait; the rest
    /// fail. (On a machine without a card, requests fail at once: a caller
    /// whose companion makes the call would wait for nothing, and its
    /// companion with it.)
    fn wait_for_core(&mut self, session: u64, request: Request) -> Option<Reply> {
        if self.waiting.len() >= MAX_WAITING {
            return Some(self.down_reply());
        }
        match service::hold() {
            Some(held) => {
                self.waiting.push((held, session, request, self.now_ns));
                None
            }
            None => Some(self.down_reply()),
        }
    }

    /// The requests that waited too long for the stack, or for a card
    /// that turned out to be missing, are answered that the network is
    /// down.
    fn expire_waiting(&mut self) {
        let now = self.now_ns;
        let gone = self.config.is_none();
        let (expired, kept) = core::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|(_, _, _, since)| gone || now.saturating_sub(*since) >= WAIT_FOR_CARD_NS);
        self.waiting = kept;
        for (held, ..) in expired {
            service::answer(held, self.down_reply());
            service::release(held);
        }
    }

    /// The stack is up: the requests that waited for it go to it, in the
    /// order they came.
    fn run_waiting(&mut self) {
        for (held, session, request, _) in core::mem::take(&mut self.waiting) {
            match self.feed(session, request) {
                Ok(reply) => {
                    service::answer(held, reply);
                    service::release(held);
                }
                Err(number) => {
                    self.held.insert((session, number), held);
                }
            }
        }
    }

    /// Ask for fast ticks while the stack is busy or a client waits, slow
    /// ones while it is idle (said to the companion only when it changes).
    /// A stack that waits for its card probes it at the slow rate.
    fn wish_ticks(&self) {
        let quiet = self.now_ns.saturating_sub(self.active_ns) >= IDLE_AFTER_NS;
        let ms = if !quiet || !self.waiting.is_empty() || !self.outbox.is_empty() {
            TICK_MS
        } else if !self.held.is_empty() {
            HELD_TICK_MS
        } else {
            IDLE_TICK_MS
        };
        service::tick_every(ms);
    }

    fn down_reply(&self) -> Reply {
        let message = format!("the network is down: {}", self.down);
        Reply::Failed { code: code::UNREACHABLE, message: libos::wire::char_prefix(&message, 200).into() }
    }
}

impl Service for NetService {
    type Protocol = Net;
    const ARENA_PAGES: u64 = ARENA_PAGES;
    const TICK_MS: u64 = TICK_MS;

    fn new() -> Self {
        if let Err(e) = libos::arena::hold_global_heap() {
            panic!("the state arena cannot take the heap: {e}");
        }
        let args = libos::start::args();
        // Under a companion the arguments start with `service`.
        let args = args.strip_prefix("service").unwrap_or(args).trim_start();
        let (config, down) = match NetConfig::parse(args) {
            Ok(c) if arena_pages(&c) > ARENA_PAGES => {
                let e = format!(
                    "the configuration needs {} pages of state arena, more than the {ARENA_PAGES} net has",
                    arena_pages(&c)
                );
                log::error!("bad configuration: {e}");
                (None, e)
            }
            Ok(c) => (Some(c), String::from("the card has not answered yet")),
            Err(e) => {
                log::error!("bad configuration: {e}");
                (None, e)
            }
        };
        let state = NetState {
            magic: MAGIC,
            config,
            core: None,
            down,
            probed_at: None,
            active_ns: 0,
            now_ns: 0,
            timer_ns: None,
            outbox: Vec::new(),
            numbers: BTreeMap::new(),
            held: BTreeMap::new(),
            nic_failing: false,
            waiting: Vec::new(),
        };
        match libos::arena::keep_root(TAG, state) {
            Ok(state) => NetService { state },
            Err(e) => panic!("the state arena cannot hold the stack: {e}"),
        }
    }

    fn adopt_arena() -> Result<Self, String> {
        libos::arena::hold_global_heap().map_err(|e| format!("the state arena cannot take the heap: {e}"))?;
        let state = libos::arena::adopt_kept::<NetState>(TAG)
            .map_err(|e| format!("the arena's root is not the stack's state: {e}"))?;
        let s = NetService { state };
        s.check()?;
        Ok(s)
    }

    fn handle(&mut self, _request: RequestOf<Self>, out: &mut dyn ReplySink<Reply>) {
        // Every request comes with its session (`handle_in_session`).
        out.reply(Reply::Failed { code: code::BAD_REQUEST, message: String::from("a request without a session") });
    }

    fn handle_in_session(&mut self, session: u64, request: RequestOf<Self>, out: &mut dyn ReplySink<Reply>) {
        if let Some(reply) = self.state.request(session, request) {
            out.reply(reply);
        }
        self.state.wish_ticks();
    }

    fn session_closed(&mut self, session: u64) {
        let s = &mut *self.state;
        s.numbers.remove(&session);
        s.held.retain(|(owner, _), _| *owner != session);
        s.waiting.retain(|(_, owner, ..)| *owner != session);
        let now = s.now_ns;
        if let Some(core) = s.core.as_mut() {
            let out = core.session_closed(session, now);
            s.deliver(out, None, false);
        }
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Tick { now_ns, .. } => {
                self.state.tick(now_ns);
                self.state.wish_ticks();
            }
            other => log::warn!("net: an event it does not use: {other:?}"),
        }
    }

    fn check(&self) -> Result<(), String> {
        let s = &*self.state;
        if s.magic != MAGIC {
            return Err(String::from("net state damaged: its check value changed"));
        }
        match s.core.as_ref() {
            Some(core) => core.check().map_err(|e| format!("net state damaged: {e}")),
            None => Ok(()),
        }
    }

    fn chaos_corrupt(&mut self) {
        self.state.magic ^= 1;
        if let Some(core) = self.state.core.as_mut() {
            core.chaos_corrupt();
        }
    }
}

/// Run the service; the exit code.
pub fn run() -> i32 {
    service::serve::<NetService>()
}
