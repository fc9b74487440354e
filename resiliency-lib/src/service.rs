//! The runtime inside a resilient service process.
//!
//! A service implements [`Service`]: its handler (the contract's generated
//! dispatch) and its distillation (logical: `save`/`restore`; image: keep
//! the state in the libos arena and find it again with `adopt_arena`).
//! [`serve`] runs it under its companion: it starts fresh or restores from
//! what the companion hands over, handles delivered requests one at a
//! time, answers checkpoint requests when quiescent (after checking its
//! invariants), and carries out crash injections. Inputs from the outside
//! world go through [`now_ns`] and [`call`], which ask the companion, so a
//! replay sees the same values. A request may be held and answered later,
//! and the companion may send events (timer ticks): see [`crate::held`].
//! Started with arguments `direct NAME`, the
//! same service serves clients itself under NAME, without a companion (to
//! measure what resiliency costs); started with `companion ...` (by init,
//! from the manifest's `resilient = true`), the program is its own
//! companion.

use crate::chaos::{self, Kind, Point};
pub use crate::held::{answer, hold, release, Event, Held};
use crate::link::{Companion, Reply as LinkReply, Request as LinkRequest};
use crate::Resilient;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use libos::channel::{select, Channel, ChannelError, EndpointHandles, HandleList, HandleQueue, Message, Waitable};
use libos::handle::Memory;
use libos::protocol::{Checker, Protocol, ReplySink};
use libos::wire::{Reader, Writer};

/// Input kind: the monotonic clock.
pub const INPUT_TIME: u8 = 1;
/// Input kind: a call to another service.
pub const INPUT_CALL: u8 = 2;
/// Input kind: the next reply of the last call to a service (`data` is its
/// name), for answers of several replies.
pub const INPUT_CALL_NEXT: u8 = 3;

/// A service's requests.
pub type RequestOf<S> = <<S as Service>::Protocol as Protocol>::Request;
/// A service's replies.
pub type ReplyOf<S> = <<S as Service>::Protocol as Protocol>::Reply;

/// A resilient service.
pub trait Service: Sized {
    /// Its contract.
    type Protocol: Resilient;
    /// Pages of state arena to create before `new` (image distillation).
    const ARENA_PAGES: u64 = 0;
    /// Interval of the timer ticks the companion sends as events, in
    /// milliseconds (0: none).
    const TICK_MS: u64 = 0;
    /// Clients may send idempotent requests straight to the service on
    /// lanes (libos `channel::lane`), past the companion. Only for a
    /// service whose idempotent requests are answered at once (never
    /// held), make no calls and read no recorded inputs, and whose
    /// contract has no durable requests (a lane's reply would not wait
    /// behind them).
    const LANES: bool = false;
    /// A fresh service.
    fn new() -> Self;
    /// Handle one request; replies go to `out`.
    fn handle(&mut self, request: RequestOf<Self>, out: &mut dyn ReplySink<ReplyOf<Self>>);
    /// Handle one request of client session `session` (services whose
    /// state is per session, such as fs's handles); by default `handle`.
    fn handle_in_session(&mut self, _session: u64, request: RequestOf<Self>, out: &mut dyn ReplySink<ReplyOf<Self>>) {
        self.handle(request, out)
    }
    /// Logical distillation: the state that matters, as bytes.
    fn save(&self) -> Vec<u8> {
        Vec::new()
    }
    /// Logical distillation: a service from saved bytes.
    fn restore(_bytes: &[u8]) -> Result<Self, String> {
        Err(String::from("this service has no logical distillation"))
    }
    /// Image distillation: a service whose state is already in the arena.
    fn adopt_arena() -> Result<Self, String> {
        Err(String::from("this service has no image distillation"))
    }
    /// Invariants checked before every checkpoint.
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
    /// Crash injection: damage the state so that `check` fails.
    fn chaos_corrupt(&mut self) {}
    /// Epochs (DESIGN.md 5.3), for a service whose state is mostly on a
    /// disk it writes (fs): between two checkpoints it holds its writes
    /// (reading them back from where it holds them), so the disk does not
    /// move under a replay. At a checkpoint, before `save`: the held
    /// writes as an encoded `checkpoint-record` redo list (empty: none).
    /// The companion commits it with the state, then asks for
    /// [`Service::apply_epoch`].
    fn take_epoch(&mut self) -> Result<Vec<u8>, String> {
        Ok(Vec::new())
    }
    /// The epoch last taken is committed: write it to the disk, then let
    /// the held writes go. An error keeps them held (the next epoch carries
    /// them again).
    fn apply_epoch(&mut self) -> Result<(), String> {
        Ok(())
    }
    /// Before restoring from a checkpoint: write its epoch (a committed
    /// redo list that may not have reached the disk, or only partly) to
    /// the disk. Writing it again is harmless: nothing newer reaches the
    /// disk before a newer checkpoint commits.
    fn redo_epoch(_epoch: &[u8]) -> Result<(), String> {
        Err(String::from("this service keeps no epochs"))
    }
    /// A client session opened; `client` is who connected, the client's
    /// program as init knows it (its identity: not chosen by the client;
    /// empty when a replay opens a session whose client is gone). A service
    /// that grants by identity keeps it in its state, as sessions opened
    /// before its last checkpoint are not opened again after a restart.
    fn session_opened(&mut self, _session: u64, _client: &str) {}
    /// A client session closed.
    fn session_closed(&mut self, _session: u64) {}
    /// The client sessions the state holds something for (open files,
    /// say): after a restore from a checkpoint of an earlier boot, the
    /// companion closes those whose clients are gone with the boot. A
    /// service that keeps nothing per session answers none.
    fn sessions(&self) -> Vec<u64> {
        Vec::new()
    }
    /// An event the companion originated (a timer tick): handled like a
    /// request, replayed in the same place after a crash; it may answer
    /// held requests.
    fn event(&mut self, _event: Event) {}
}

/// The service's link to its companion (None in direct mode).
static LINK: spin::Mutex<Option<Channel<LinkReply, LinkRequest>>> = spin::Mutex::new(None);

/// Set by [`want_checkpoint`], told to the companion when the request ends.
static CHECKPOINT_WANTED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Bytes of held writes the service said last, and whether that changed
/// since the companion was told.
static HELD: spin::Mutex<(u64, bool)> = spin::Mutex::new((0, false));

/// The interval of timer ticks the service asked for last (ms; 0: none
/// yet), and whether the companion is still to be told. Starting at 0,
/// a restarted process's first wish is always told, so a companion that
/// heard its predecessor's learns it.
static TICK_WISH: spin::Mutex<(u64, bool)> = spin::Mutex::new((0, false));

/// Ask for timer ticks every `ms` milliseconds from now on (a service that
/// is idle asks for fewer, one that is busy for its `TICK_MS` again); the
/// companion is told when the request or event ends, if the wish changed.
/// Not an input: a replay asks again, which is harmless.
pub fn tick_every(ms: u64) {
    let mut wish = TICK_WISH.lock();
    if wish.0 != ms {
        *wish = (ms, true);
    }
}

/// The tick interval wished last, for direct mode (0: none wished yet).
fn tick_wish() -> u64 {
    TICK_WISH.lock().0
}

/// Say how many bytes of disk writes the service holds for its next epoch
/// (shown by `ps`); the companion is told when the request ends, if the
/// figure changed.
pub fn report_held(bytes: u64) {
    let mut held = HELD.lock();
    if held.0 != bytes {
        *held = (bytes, true);
    }
}

/// Tell the companion, at the end of a request or event, what the service
/// asked for meanwhile: a checkpoint ([`want_checkpoint`]), and the bytes
/// it holds for its next epoch if that changed ([`report_held`]).
fn send_wishes(checker: &mut Checker<Companion>) {
    if CHECKPOINT_WANTED.swap(false, core::sync::atomic::Ordering::Relaxed) {
        let _ = checker.on_reply(&LinkReply::CheckpointWanted);
        send(LinkReply::CheckpointWanted);
    }
    let changed = {
        let mut h = HELD.lock();
        core::mem::replace(&mut h.1, false).then_some(h.0)
    };
    if let Some(bytes) = changed {
        let _ = checker.on_reply(&LinkReply::HeldBytes { bytes });
        send(LinkReply::HeldBytes { bytes });
    }
    let tick = {
        let mut t = TICK_WISH.lock();
        core::mem::replace(&mut t.1, false).then_some(t.0)
    };
    if let Some(ms) = tick {
        let _ = checker.on_reply(&LinkReply::TickEvery { ms });
        send(LinkReply::TickEvery { ms });
    }
}

/// Ask the companion for a checkpoint after the request being handled (a
/// service that holds many writes in its epoch wants them committed and
/// applied). Not an input: a replay asks again, which is harmless.
pub fn want_checkpoint() {
    CHECKPOINT_WANTED.store(true, core::sync::atomic::Ordering::Relaxed);
}

/// Replies collected from a handler.
struct Collect<R>(Vec<R>);

impl<R> ReplySink<R> for Collect<R> {
    fn reply(&mut self, reply: R) {
        self.0.push(reply);
    }
}

fn encode<M: Message>(m: M) -> Vec<u8> {
    let mut w = Writer::new();
    let mut h = HandleList::default();
    m.encode(&mut w, &mut h);
    w.finish()
}

fn decode<M: Message>(bytes: &[u8]) -> Result<M, String> {
    let mut q = HandleQueue::new(Vec::new());
    let mut r = Reader::new(bytes);
    let m = M::decode(&mut r, &mut q).map_err(|e| format!("{e}"))?;
    r.finish().map_err(|e| format!("{e}"))?;
    Ok(m)
}

fn send(m: LinkReply) {
    if let Some(ch) = LINK.lock().as_mut() {
        if ch.send(m).is_err() {
            // The companion is gone: nothing is left to serve.
            libos::sys::exit(2);
        }
    }
}

fn recv() -> LinkRequest {
    let r = match LINK.lock().as_mut() {
        Some(ch) => ch.recv(),
        None => Err(ChannelError::PeerClosed),
    };
    r.unwrap_or_else(|_| libos::sys::exit(2))
}

/// Ask the companion for an input (recorded, so a replay gets the same).
fn input(kind: u8, data: Vec<u8>) -> Vec<u8> {
    send(LinkReply::Input { kind, data });
    match recv() {
        LinkRequest::InputValue { data } => data,
        _ => {
            log::error!("companion answered an input with something else");
            libos::sys::exit(2)
        }
    }
}

/// The time (ns since boot), as recorded by the companion.
pub fn now_ns() -> u64 {
    if LINK.lock().is_none() {
        return libos::time::now_ns();
    }
    let v = input(INPUT_TIME, Vec::new());
    v.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes).unwrap_or(0)
}

/// Why a call to another service failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallError {
    /// No such service.
    NoService,
    /// The call failed on the way: the request was not delivered, or the
    /// callee is gone for good.
    Failed,
    /// No answer within the companion's patience (a minute): the callee
    /// may still have applied the request.
    TimedOut,
    /// `call_next` without a call whose answer goes on.
    NoCall,
}

/// Call service `name` with an encoded request; its (first) encoded reply.
/// Under a companion the call is made (and recorded) by the companion,
/// over a session that survives a restart of the callee's companion. For
/// an answer of several replies, [`call_next`] takes the others.
pub fn call(name: &str, request: &[u8]) -> Result<Vec<u8>, CallError> {
    let mut w = Writer::new();
    w.str(name).raw(request);
    let answer = if LINK.lock().is_none() { direct_call(name, request) } else { input(INPUT_CALL, w.finish()) };
    call_answer(&answer)
}

/// The next reply of the answer to the last [`call`] to `name` (the caller
/// knows from the callee's protocol whether one is owed).
pub fn call_next(name: &str) -> Result<Vec<u8>, CallError> {
    if LINK.lock().is_none() {
        return direct_call_next(name);
    }
    let mut w = Writer::new();
    w.str(name);
    call_answer(&input(INPUT_CALL_NEXT, w.finish()))
}

/// A call's answer as the companion encodes it: a status byte (0 ok, 1 a
/// malformed call, 2 no such service, 3 failed, 4 timed out, 5 no call)
/// then the reply.
fn call_answer(answer: &[u8]) -> Result<Vec<u8>, CallError> {
    match answer.split_first() {
        Some((0, reply)) => Ok(reply.to_vec()),
        Some((2, _)) => Err(CallError::NoService),
        Some((4, _)) => Err(CallError::TimedOut),
        Some((5, _)) => Err(CallError::NoCall),
        _ => Err(CallError::Failed),
    }
}

/// The connection of the last direct call (a service run without its
/// companion), kept for `call_next`.
static DIRECT_CALL: spin::Mutex<Option<(alloc::string::String, libos::channel::Endpoint)>> = spin::Mutex::new(None);

fn direct_call(name: &str, request: &[u8]) -> Vec<u8> {
    let Ok(mut ep) = libos::directory::connect(name, false) else { return Vec::from([2]) };
    let answer = ep.send_raw(request, HandleList::default()).and_then(|_| ep.recv_raw(None));
    *DIRECT_CALL.lock() = Some((alloc::string::String::from(name), ep));
    match answer {
        Ok((bytes, _)) => {
            let mut v = Vec::from([0u8]);
            v.extend_from_slice(&bytes);
            v
        }
        Err(_) => Vec::from([3]),
    }
}

fn direct_call_next(name: &str) -> Result<Vec<u8>, CallError> {
    let mut last = DIRECT_CALL.lock();
    let Some((called, ep)) = last.as_mut().filter(|(called, _)| called == name) else { return Err(CallError::NoCall) };
    let _ = called;
    ep.recv_raw(None).map(|(bytes, _)| bytes).map_err(|_| CallError::Failed)
}

/// Carry out a crash injection.
fn misbehave<S: Service>(kind: Kind, service: Option<&mut S>, id: Option<(u64, u64)>) {
    log::info!("chaos: {}", kind.as_str());
    match kind {
        Kind::Fault => libos::sys::fault(0x8),
        Kind::Panic => panic!("chaos: injected panic"),
        Kind::Hang => loop {
            core::hint::spin_loop();
        },
        Kind::Exit => libos::sys::exit(3),
        Kind::Violation => {
            let (session, seq) = id.unwrap_or((0, 0));
            send(LinkReply::Reply { session, seq, reply: Vec::from([0xff, 0xff, 0xff]) });
        }
        Kind::Corrupt => {
            if let Some(s) = service {
                s.chaos_corrupt();
            }
        }
        Kind::Kill => {}
    }
}

fn start<S: Service>(first: LinkRequest) -> Result<S, String> {
    let image = <S::Protocol as Resilient>::POLICY.distillation == crate::Distillation::Image;
    match first {
        LinkRequest::Start => {
            if image {
                libos::arena::init(S::ARENA_PAGES, false).map_err(|e| format!("arena: {e}"))?;
            }
            Ok(S::new())
        }
        LinkRequest::RestoreLogical { memory, len, epoch_len } => {
            let total = len.checked_add(epoch_len).ok_or("checkpoint length overflows")?;
            let bytes = Memory(memory).read(total).map_err(|e| format!("checkpoint of {total} bytes: {e}"))?;
            let (state, epoch) = bytes.split_at(len as usize);
            if !epoch.is_empty() {
                S::redo_epoch(epoch).map_err(|e| format!("the committed epoch cannot be written: {e}"))?;
                log::info!(
                    "{}: the committed epoch ({epoch_len} bytes) is on the disk",
                    <S::Protocol as Protocol>::NAME
                );
            }
            S::restore(state)
        }
        LinkRequest::RestoreImage => {
            libos::arena::init(S::ARENA_PAGES, true).map_err(|e| format!("arena: {e}"))?;
            S::adopt_arena()
        }
        _ => Err(String::from("the companion did not start with Start or Restore")),
    }
}

fn save_logical<S: Service>(service: &mut S) -> LinkReply {
    let epoch = match service.take_epoch() {
        Ok(e) => e,
        Err(e) => return LinkReply::InvariantFailed { message: format!("cannot take the epoch: {e}") },
    };
    let mut bytes = service.save();
    let len = bytes.len() as u64;
    bytes.extend_from_slice(&epoch);
    match Memory::from_bytes(&bytes) {
        Ok(m) => LinkReply::Saved { memory: m.0, len, epoch_len: epoch.len() as u64 },
        Err(e) => LinkReply::InvariantFailed { message: format!("cannot save: {e}") },
    }
}

/// Run service `S`: under its companion, or directly (arguments
/// `direct NAME`). Returns the exit code.
pub fn serve<S: Service>() -> i32 {
    let mut args = libos::start::args().split_whitespace();
    match args.next() {
        Some("direct") => return serve_direct::<S>(args.next().unwrap_or(<S::Protocol as Protocol>::NAME)),
        // init starts the program as its own companion (`NAME-companion`).
        Some("companion") => {
            let sources = crate::companion::EventSources { tick_ms: S::TICK_MS, lanes: S::LANES };
            return crate::companion::run_with::<S::Protocol>(crate::companion::own_program(), sources);
        }
        _ => {}
    }
    let handles = (
        libos::start::take_named("companion.memory"),
        libos::start::take_named("companion.link"),
        libos::start::take_named("companion.event"),
    );
    let (Some(m), Some(l), Some(e)) = handles else {
        log::error!("started without a companion (use `direct NAME` to run alone)");
        return 2;
    };
    match Channel::attach(EndpointHandles::from_raw(m, l, e, 1)) {
        Ok(ch) => *LINK.lock() = Some(ch),
        Err(e) => {
            log::error!("cannot attach the companion channel: {e}");
            return 2;
        }
    }
    let mut checker = Checker::<Companion>::new();
    let first = recv();
    let _ = checker.on_request(&first);
    let mut service = match start::<S>(first) {
        Ok(s) => s,
        Err(e) => {
            log::error!("cannot start: {e}");
            return 1;
        }
    };
    let arena_pages = libos::arena::range().map_or(0, |(_, p)| p);
    let ready = LinkReply::Ready { arena_pages };
    let _ = checker.on_reply(&ready);
    send(ready);
    let mut lanes = crate::lanes::Lanes::<S::Protocol>::new();
    loop {
        let request = match next_input(&lanes) {
            Input::Link(request) => request,
            Input::Lane(i) => {
                serve_lane::<S>(&mut service, &mut lanes, i);
                continue;
            }
        };
        if let Err(v) = checker.on_request(&request) {
            log::error!("{v}");
            return 2;
        }
        match request {
            LinkRequest::Open { session, client } => service.session_opened(session, &client),
            LinkRequest::Close { session } => {
                crate::shared::detach(session);
                lanes.close(session);
                service.session_closed(session)
            }
            LinkRequest::Attach { session, memory } => crate::shared::attach(session, memory),
            LinkRequest::CloseLanes => lanes.close_all(),
            LinkRequest::Lane { session, memory, link, event, side } => {
                if S::LANES {
                    lanes.open(session, memory, link, event, side);
                } else {
                    log::warn!("session {session}: a lane for a service that takes none; closed");
                }
            }
            LinkRequest::Deliver { session, seq, chaos, request, .. } => {
                let directive = chaos::decode(chaos);
                let at = |p: Point| directive.filter(|(dp, _)| *dp == p).map(|(_, k)| k);
                if let Some(k) = at(Point::Before) {
                    misbehave(k, Some(&mut service), Some((session, seq)));
                }
                let mut out = Collect(Vec::new());
                crate::held::begin(Some((session, seq)));
                match decode::<RequestOf<S>>(&request) {
                    Ok(r) => service.handle_in_session(session, r, &mut out),
                    Err(e) => log::error!("undecodable request from the companion: {e}"),
                }
                let (answers, held) = crate::held::end();
                if let Some(k) = at(Point::Mid) {
                    misbehave(k, Some(&mut service), Some((session, seq)));
                }
                send_answers(answers, &mut checker);
                for r in out.0 {
                    let reply = LinkReply::Reply { session, seq, reply: encode(r) };
                    let _ = checker.on_reply(&reply);
                    send(reply);
                }
                send_wishes(&mut checker);
                let done = if held { LinkReply::Held { session, seq } } else { LinkReply::Done { session, seq } };
                let _ = checker.on_reply(&done);
                send(done);
                if let Some(k) = at(Point::After) {
                    misbehave(k, Some(&mut service), None);
                }
            }
            LinkRequest::Event { seq, chaos, kind, data, .. } => {
                let id = (crate::held::EVENT_SESSION, seq);
                let directive = chaos::decode(chaos);
                let at = |p: Point| directive.filter(|(dp, _)| *dp == p).map(|(_, k)| k);
                if let Some(k) = at(Point::Before) {
                    misbehave(k, Some(&mut service), Some(id));
                }
                crate::held::begin(None);
                match Event::decode(kind, &data) {
                    Some(event) => service.event(event),
                    None => log::error!("an event of unknown kind {kind} from the companion"),
                }
                let (answers, _) = crate::held::end();
                if let Some(k) = at(Point::Mid) {
                    misbehave(k, Some(&mut service), Some(id));
                }
                send_answers(answers, &mut checker);
                send_wishes(&mut checker);
                let done = LinkReply::Done { session: id.0, seq };
                let _ = checker.on_reply(&done);
                send(done);
                if let Some(k) = at(Point::After) {
                    misbehave(k, Some(&mut service), None);
                }
            }
            LinkRequest::Checkpoint { chaos } => {
                if let Some((_, k)) = chaos::decode(chaos) {
                    misbehave(k, Some(&mut service), None);
                }
                let image = <S::Protocol as Resilient>::POLICY.distillation == crate::Distillation::Image;
                let answer = match service.check() {
                    Err(message) => LinkReply::InvariantFailed { message },
                    Ok(()) if image => LinkReply::Quiescent,
                    Ok(()) => save_logical(&mut service),
                };
                let _ = checker.on_reply(&answer);
                send(answer);
            }
            LinkRequest::ApplyEpoch => {
                let answer = match service.apply_epoch() {
                    Ok(()) => {
                        let mut h = HELD.lock();
                        h.1 = false;
                        LinkReply::EpochApplied { held: h.0 }
                    }
                    Err(message) => LinkReply::EpochFailed { message },
                };
                let _ = checker.on_reply(&answer);
                send(answer);
            }
            LinkRequest::Sessions => {
                // At most as many as the reply holds (8192); the rest are
                // found at the next restore from an earlier boot.
                let sessions: Vec<u8> = service.sessions().iter().take(8192).flat_map(|s| s.to_le_bytes()).collect();
                let answer = LinkReply::SessionList { sessions };
                let _ = checker.on_reply(&answer);
                send(answer);
            }
            LinkRequest::Inject { kind } => {
                if let Some(k) = Kind::from_u8(kind) {
                    misbehave(k, Some(&mut service), None);
                }
            }
            LinkRequest::InputValue { .. }
            | LinkRequest::Start
            | LinkRequest::RestoreImage
            | LinkRequest::RestoreLogical { .. } => {
                log::error!("unexpected message from the companion");
            }
        }
    }
}

/// What the loop takes next: a message of the companion, or a request
/// waiting on lane `i`.
enum Input {
    Link(LinkRequest),
    Lane(usize),
}

/// The companion's next message, or a lane with a request waiting: the
/// companion first, then the lanes in order; waits for either.
fn next_input<P: Resilient>(lanes: &crate::lanes::Lanes<P>) -> Input {
    if lanes.is_empty() {
        return Input::Link(recv());
    }
    loop {
        {
            let mut link = LINK.lock();
            let Some(ch) = link.as_mut() else { libos::sys::exit(2) };
            match ch.try_recv() {
                Ok(Some(request)) => return Input::Link(request),
                Ok(None) => {}
                Err(_) => libos::sys::exit(2),
            }
        }
        if let Some(i) = lanes.ready() {
            return Input::Lane(i);
        }
        let link = LINK.lock();
        let Some(ch) = link.as_ref() else { libos::sys::exit(2) };
        let mut items: Vec<&dyn Waitable> = Vec::with_capacity(lanes.list.len() + 1);
        items.push(ch);
        items.extend(lanes.list.iter().map(|l| &l.channel as &dyn Waitable));
        if select(&items, None).is_err() {
            libos::sys::exit(2);
        }
    }
}

/// Serve the requests waiting on lane `i` (see [`crate::lanes`]); a lane
/// whose client left or misbehaved is closed.
fn serve_lane<S: Service>(service: &mut S, lanes: &mut crate::lanes::Lanes<S::Protocol>, i: usize) {
    let Some(lane) = lanes.list.get_mut(i) else { return };
    let session = lane.session;
    let keep = loop {
        let request = match lane.channel.try_recv() {
            Ok(Some(r)) => r,
            Ok(None) => break true,
            Err(_) => break false,
        };
        if !<S::Protocol as Resilient>::idempotent(&request) {
            log::warn!("session {session}: a request that is not idempotent on a lane; the lane is closed");
            break false;
        }
        if let Err(v) = lane.checker.on_request(&request) {
            log::warn!("session {session}: on a lane: {v}; the lane is closed");
            break false;
        }
        let mut out = Collect(Vec::new());
        crate::held::begin(None);
        service.handle_in_session(session, request, &mut out);
        let (answers, held) = crate::held::end();
        if held || !answers.is_empty() {
            log::error!("a lane request was held or answered held ones: this service must not take lanes");
            break false;
        }
        for reply in out.0 {
            let _ = lane.checker.on_reply(&reply);
            if lane.channel.send(reply).is_err() {
                break;
            }
        }
    };
    if !keep {
        lanes.close(session);
    }
}

/// Send the answers to held requests given during a handling.
fn send_answers(answers: Vec<crate::held::Out>, checker: &mut Checker<Companion>) {
    for a in answers {
        let m = match a {
            crate::held::Out::Reply(to, reply) => LinkReply::Reply { session: to.session, seq: to.seq, reply },
            crate::held::Out::Release(to) => LinkReply::Release { session: to.session, seq: to.seq },
        };
        let _ = checker.on_reply(&m);
        send(m);
    }
}

/// A client session in direct mode: its number, channel, contract checker
/// and the number of its next request.
struct DirectSession<S: Service> {
    id: u64,
    channel: Channel<ReplyOf<S>, RequestOf<S>>,
    checker: Checker<<S as Service>::Protocol>,
    next_seq: u64,
}

/// Send answers to held requests in direct mode, to their sessions.
fn direct_answers<S: Service>(sessions: &mut [DirectSession<S>], answers: Vec<crate::held::Out>) {
    for a in answers {
        let crate::held::Out::Reply(to, bytes) = a else { continue };
        let Some(s) = sessions.iter_mut().find(|s| s.id == to.session) else { continue };
        if let Ok(reply) = decode::<ReplyOf<S>>(&bytes) {
            let _ = s.checker.on_reply(&reply);
            let _ = s.channel.send(reply);
        }
    }
}

/// Serve clients directly under `name`, with no companion.
fn serve_direct<S: Service>(name: &str) -> i32 {
    let largest = <S::Protocol as Protocol>::MAX_REQUEST_BYTES.max(<S::Protocol as Protocol>::MAX_REPLY_BYTES);
    let mut listener = match libos::directory::register_for(name, largest) {
        Ok(l) => l,
        Err(e) => {
            log::error!("cannot register {name}: {e}");
            return 1;
        }
    };
    if <S::Protocol as Resilient>::POLICY.distillation == crate::Distillation::Image {
        if let Err(e) = libos::arena::init(S::ARENA_PAGES, false) {
            log::error!("arena: {e}");
            return 1;
        }
    }
    let mut service = S::new();
    let mut sessions: Vec<DirectSession<S>> = Vec::new();
    let mut next_id = 1;
    let mut ticks = 0;
    loop {
        // The service's wish, once it said one; its `TICK_MS` before.
        let tick_ms = match tick_wish() {
            0 => S::TICK_MS,
            wish => wish,
        };
        let tick = (S::TICK_MS > 0).then(|| core::time::Duration::from_millis(tick_ms));
        let ready = {
            let mut items: Vec<&dyn Waitable> = Vec::from([&listener as &dyn Waitable]);
            items.extend(sessions.iter().map(|s| &s.channel as &dyn Waitable));
            select(&items, tick)
        };
        match ready {
            Ok(0) => {
                while let Ok(Some(c)) = listener.try_accept() {
                    let channel = Channel::new(c.endpoint);
                    sessions.push(DirectSession { id: next_id, channel, checker: Checker::new(), next_seq: 0 });
                    next_id += 1;
                }
            }
            Ok(i) => {
                let mut answers = Vec::new();
                let s = &mut sessions[i - 1];
                let keep = loop {
                    match s.channel.try_recv() {
                        Ok(Some(r)) => {
                            if s.checker.on_request(&r).is_err() {
                                break false;
                            }
                            let mut out = Collect(Vec::new());
                            crate::held::begin(Some((s.id, s.next_seq)));
                            s.next_seq += 1;
                            let checkpoint_after = <S::Protocol as Resilient>::checkpoint_after(&r);
                            service.handle_in_session(s.id, r, &mut out);
                            answers.extend(crate::held::end().0);
                            // No checkpoints here: where one would be taken,
                            // the held writes go straight to the disk.
                            if CHECKPOINT_WANTED.swap(false, core::sync::atomic::Ordering::Relaxed) || checkpoint_after
                            {
                                if let Err(e) = service.take_epoch().and_then(|_| service.apply_epoch()) {
                                    log::error!("the held writes could not reach the disk: {e}");
                                }
                            }
                            for reply in out.0 {
                                let _ = s.checker.on_reply(&reply);
                                let _ = s.channel.send(reply);
                            }
                        }
                        Ok(None) => break true,
                        Err(_) => break false,
                    }
                };
                if !keep {
                    let gone = sessions.remove(i - 1);
                    service.session_closed(gone.id);
                }
                direct_answers(&mut sessions, answers);
            }
            // Direct mode has no replay: the clock is read directly.
            Err(ChannelError::TimedOut) if tick.is_some() => {
                ticks += 1;
                crate::held::begin(None);
                service.event(Event::Tick { number: ticks, now_ns: libos::time::now_ns() });
                direct_answers(&mut sessions, crate::held::end().0);
            }
            Err(e) => {
                log::error!("select: {e}");
                return 1;
            }
        }
    }
}
