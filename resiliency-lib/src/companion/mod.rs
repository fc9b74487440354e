//! The companion: the process clients of a resilient service actually talk
//! to (DESIGN.md 5.1 to 5.4).
//!
//! It registers the service's name, `NAME.control` and `NAME.notices` in
//! the directory, starts the service, and then, request by request: checks
//! the client's request against the contract, logs it (unless idempotent)
//! with a sequence number, delivers it, checks every reply against the
//! contract and forwards it. It takes checkpoints at the contract's points
//! and periodically, and trims the log when one commits. When the service
//! dies, hangs, breaks the contract or fails its invariant check, it starts
//! a new process from the last checkpoint, replays the log (suppressing
//! replies the clients already have), and carries on; clients only wait.
//! A request that crashes the service on every attempt is failed with the
//! contract's error. Requests the service holds are answered later
//! ([`held`]); events the companion originates (timer ticks, [`events`])
//! are logged and replayed in order with the requests.

mod clients;
mod events;
mod held;
mod service;

pub use events::EventSources;

use crate::chaos::{self, Kind, Point, Rng};
use crate::link::{Reply as SvcReply, Request as SvcRequest};
use crate::log::{Entry, Log, RequestId};
use crate::store::{Capture, CheckpointStore, MemoryStore};
use crate::Resilient;
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use clients::{Clients, Work};
use libos::channel::ChannelError;
use service::{reply_name, ServiceProcess};

/// Attempts a request gets before it is failed with the contract's error.
pub const MAX_ATTEMPTS: u32 = 3;

/// Replies held for durability before the companion stops taking more
/// work and makes them durable at once.
const MAX_HELD_REPLIES: usize = 256;

/// Log bytes beyond which the companion stops reading client requests
/// (back-pressure) until a checkpoint or an append relieves it: a store
/// that keeps failing never makes the companion run out of memory.
const LOG_LIMIT_BYTES: usize = 16 << 20;

/// Most payload bytes of the log kept after a commit (see
/// `Companion::previous_log`); a longer one is not kept.
const PREVIOUS_LOG_LIMIT_BYTES: usize = 4 << 20;

/// Log payload bytes at which a checkpoint is due whatever the contract's
/// policy says: well under [`PREVIOUS_LOG_LIMIT_BYTES`], so the log between
/// two checkpoints is always kept, and a fall-back from a checkpoint the
/// service cannot restore loses nothing. (net's log carries the data it
/// sends; at 6 MiB/s its once-a-second checkpoint left more than 4 MiB
/// between two, and a fall-back then lost state: RELIABILITY finding 18.)
const LOG_BYTES_CHECKPOINT: usize = 3 << 20;

/// How often held replies try the store again when it failed.
const APPEND_RETRY_NS: u64 = 100_000_000;
/// How long a service may take to write an epoch to its disk (megabytes
/// through blk, which may itself be recovering).
const EPOCH_DEADLINE_NS: u64 = 30_000_000_000;

/// Why the service is considered failed.
#[derive(Clone, Debug)]
pub enum Failure {
    /// The process ended.
    Died(String),
    /// No progress within its deadline (milliseconds) while an answer was
    /// owed.
    Hung(u64),
    /// A message broke the contract.
    Violation(String),
    /// Its own invariant check failed at a checkpoint.
    Invariant(String),
    /// Something else went wrong talking to it.
    Broken(String),
}

impl core::fmt::Display for Failure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Failure::Died(how) => write!(f, "died ({how})"),
            Failure::Hung(ms) if ms % 1000 == 0 => write!(f, "hung (no progress for {} s)", ms / 1000),
            Failure::Hung(ms) => write!(f, "hung (no progress for {ms} ms)"),
            Failure::Violation(m) => write!(f, "broke the contract: {m}"),
            Failure::Invariant(m) => write!(f, "failed its invariant check: {m}"),
            Failure::Broken(m) => write!(f, "{m}"),
        }
    }
}

/// The companion's figures (see the control contract).
#[derive(Default, Clone, Copy)]
pub struct Stats {
    /// Restarts so far.
    pub restarts: u64,
    /// Checkpoints committed.
    pub checkpoints: u64,
    /// Duration of the last recovery.
    pub last_recovery_ns: u64,
    /// Crashes injected.
    pub injected: u64,
    /// Restarts not caused by an injection.
    pub unexplained: u64,
    /// Replayed replies that differed from what the client had.
    pub divergences: u64,
    /// Idempotent requests found changing the state.
    pub idempotence_violations: u64,
    /// Requests failed with the contract's error.
    pub abandoned: u64,
    /// Client requests served.
    pub requests: u64,
    /// Size of the last checkpoint's capture.
    pub checkpoint_bytes: u64,
    /// Duration of the last checkpoint.
    pub checkpoint_ns: u64,
    /// Bytes of epochs written to the service's disk after their commit.
    pub epoch_bytes: u64,
    /// Bytes of writes the service holds for its next epoch.
    pub held_bytes: u64,
    /// Bytes handed to the checkpoint store: states (or image pages) and
    /// epochs committed, log batches appended.
    pub stored_bytes: u64,
}

/// The request being handled.
struct InFlight {
    id: RequestId,
    /// The crash was injected on purpose (it does not count as an attempt).
    injected: bool,
    /// Not logged: re-run it after a recovery.
    rerun: Option<Vec<u8>>,
}

/// Durable acknowledgements (the contract's `durable` requests): replies
/// produced since a durable request was logged wait here until the log
/// entries up to it are in the checkpoint store. Later replies of any
/// request wait behind them, so no client sees an effect that a power cut
/// could still undo. One append carries every entry logged since the last,
/// from all clients (group commit).
#[derive(Default)]
struct Durability {
    /// Log entries already in the store (an index into the log).
    appended: usize,
    /// A durable request was logged after `appended`.
    pending: bool,
    /// Checked replies waiting for the append: (session, bytes).
    held: VecDeque<(u64, Vec<u8>)>,
    /// When a failed append may be tried again.
    retry_at_ns: u64,
    /// The store refused the last append (said once, not per retry).
    failing: bool,
    /// The store has been durable at some point of this companion's life:
    /// when it is not now, it is coming back (the vault restarts), and
    /// replies wait for it rather than be sent undurable.
    was_durable: bool,
}

/// A companion for the service of protocol `P`.
pub struct Companion<P: Resilient> {
    program: String,
    service: Option<ServiceProcess>,
    store: Box<dyn CheckpointStore>,
    generation: u64,
    log: Log,
    /// The whole log between the checkpoint before the newest (its
    /// generation, 0: the service's fresh start) and the newest, non-durable
    /// entries and recorded inputs included: when the newest checkpoint
    /// cannot be restored, replaying it on the older record (if the store
    /// kept that) rebuilds the state the newest one held, so nothing is
    /// lost. The store's own log after the older record holds only the
    /// durable part of it: the service would come back in a state behind
    /// what it had done to others (bytes it had sent through net). Kept for
    /// images too (net's: the memory store puts back the pages a rejected
    /// image wrote over), only up to [`PREVIOUS_LOG_LIMIT_BYTES`].
    previous_log: Option<(u64, Vec<Entry>)>,
    clients: Clients<P>,
    queue: VecDeque<Work>,
    in_flight: Option<InFlight>,
    attempts: BTreeMap<RequestId, u32>,
    /// Inputs recorded for the request being replayed.
    replay_inputs: VecDeque<Vec<u8>>,
    chaos: Option<(u32, Rng)>,
    requests_since_checkpoint: u32,
    last_checkpoint_ns: u64,
    /// A crash was injected and has not shown yet: no further injection
    /// until it has (one injection, one restart).
    injection_pending: bool,
    /// Replies waiting for their requests to be durable.
    durability: Durability,
    /// The first entries of the log came from an older checkpoint's log
    /// (a fallback): replayed for their effects, their replies are not
    /// anyone's to receive.
    quiet_prefix: usize,
    /// The last restart failed while the new process restored the
    /// checkpoint (not while replaying the log).
    restore_failed: bool,
    /// Take a checkpoint as soon as the service is up (after a fallback).
    checkpoint_soon: bool,
    /// The next checkpoint is damaged on purpose (crash kind 7, poison).
    poison_next: bool,
    /// How long the service may take over the request in hand (the
    /// contract's `deadline` for it).
    deadline_ns: u64,
    /// Compare the state before and after every idempotent request.
    verify_idempotence: bool,
    /// The next idempotent request changes the state (crash kind 8).
    mutate_next_idempotent: bool,
    /// A damaged checkpoint was committed on purpose: the restores that
    /// fail on it until the fallback are explained.
    poisoned: bool,
    /// A fall-back lost what the rejected checkpoint held beyond the log:
    /// once the service is back, held requests the replay did not hold
    /// again are given up (see `held`).
    lossy_fall_back: bool,
    /// The last commit failed (the store is away): the log's length alone
    /// does not make a checkpoint due then, or every request would capture
    /// the state again for a store that cannot take it.
    last_commit_failed: bool,
    /// The generation whose epoch is known to be on the disk (0: none
    /// known, so a start from the newest checkpoint writes its epoch again:
    /// at boot, a committed epoch may be partly applied).
    epoch_applied: u64,
    /// Requests the service held, to be answered later.
    held: held::HeldRequests,
    /// The events the companion originates (timer ticks).
    events: events::Events,
    /// The service takes lanes (see `EventSources::lanes`).
    lanes: bool,
    /// Whether the companion looked at its clients and controllers since
    /// the last event it delivered: a service whose ticks take longer
    /// than their interval would otherwise keep it delivering ticks and
    /// starve them.
    polled_since_event: bool,
    /// Stats shown by `ps`.
    pub stats: Stats,
}

/// Run the companion of `P`'s service, supervising the boot program
/// `service`. Returns only on a fatal error (the exit code).
///
/// Its checkpoints go to the vault when the companion was started with the
/// argument `store=vault` (and the vault is usable), to memory otherwise.
pub fn run<P: Resilient>(service: &str) -> i32 {
    run_with::<P>(service, EventSources::default())
}

/// [`run`], originating the events `sources` asks for (timer ticks).
pub fn run_with<P: Resilient>(service: &str, sources: EventSources) -> i32 {
    let store = open_store(P::NAME, libos::start::args());
    match Companion::<P>::new_with(service, store, sources) {
        Ok(mut c) => c.serve(),
        Err(e) => {
            log::error!("{e}");
            1
        }
    }
}

/// The program this companion runs (and starts its service from): init
/// names a companion process `PROGRAM-companion`.
pub fn own_program() -> &'static str {
    let name = libos::start::name();
    name.strip_suffix("-companion").unwrap_or(name)
}

/// Whether the companion's arguments ask for the vault.
pub fn wants_vault(args: &str) -> bool {
    args.split_whitespace().any(|a| a == "store=vault")
}

/// The checkpoint store the arguments ask for: the vault (which, when it
/// cannot be used, says so and keeps trying; it never falls back to memory)
/// or memory.
fn open_store(name: &str, args: &str) -> Box<dyn CheckpointStore> {
    if !wants_vault(args) {
        return Box::new(MemoryStore::new());
    }
    Box::new(crate::vault_store::VaultStore::open(name))
}

/// What became of a checkpoint the service handed over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Commit {
    /// Committed; the log was trimmed.
    Done,
    /// The store refused it (the message says why); the log is kept, so a
    /// recovery still replays everything since the last committed one.
    NotCommitted(String),
}

impl<P: Resilient> Companion<P> {
    /// Register the names and start the service.
    pub fn new(program: &str, store: Box<dyn CheckpointStore>) -> Result<Self, String> {
        Self::new_with(program, store, EventSources::default())
    }

    /// [`Companion::new`], originating the events `sources` asks for.
    pub fn new_with(program: &str, store: Box<dyn CheckpointStore>, sources: EventSources) -> Result<Self, String> {
        let mut clients = Clients::register(P::NAME)?;
        // A fresh range of session numbers each boot (see
        // `number_sessions_from`): the clock at start, mixed.
        let boot_mix = libos::rand::Rng::new(libos::time::now_ns() | 1).next();
        clients.number_sessions_from(((boot_mix & 0xffff_ffff) << 24) | 1);
        let generation = store.latest().map_or(0, |c| c.generation);
        // The durable log after the newest checkpoint, replayed below by
        // the first start (a power cut came after these requests were
        // acknowledged).
        let mut log = Log::new();
        for (i, batch) in store.latest().map_or(&[][..], |c| &c.log[..]).iter().enumerate() {
            match crate::log::decode_batch(batch) {
                Ok(entries) => entries.into_iter().for_each(|e| log.push(e)),
                Err(e) => {
                    log::error!("{}: entry {i} of the durable log is damaged ({e}); the rest is not replayed", P::NAME);
                    break;
                }
            }
        }
        let recovered = log.requests();
        let appended = log.len();
        let events = events::Events::new(sources, libos::time::now_ns(), log.last_event() + 1);
        let mut c = Companion {
            lanes: sources.lanes,
            program: program.to_string(),
            service: None,
            store,
            generation,
            log,
            previous_log: None,
            clients,
            queue: VecDeque::new(),
            in_flight: None,
            attempts: BTreeMap::new(),
            replay_inputs: VecDeque::new(),
            chaos: None,
            requests_since_checkpoint: 0,
            last_checkpoint_ns: libos::time::now_ns(),
            injection_pending: false,
            durability: Durability { appended, ..Durability::default() },
            quiet_prefix: 0,
            restore_failed: false,
            checkpoint_soon: false,
            poison_next: false,
            poisoned: false,
            lossy_fall_back: false,
            last_commit_failed: false,
            verify_idempotence: false,
            mutate_next_idempotent: false,
            epoch_applied: 0,
            deadline_ns: service_deadline_ns::<P>(),
            held: held::HeldRequests::new(),
            events,
            polled_since_event: true,
            stats: Stats::default(),
        };
        // For a service kept in memory (net, say) the first start is a
        // cold start: nothing to restore, no log to replay. Its time is
        // logged for `cargo xtask bench` to put beside the recovery times
        // `crash` prints.
        let t0 = libos::time::now_ns();
        if let Err(f) = c.restart() {
            log::warn!("{}: first start failed: {f}", P::NAME);
            c.recover(f);
        }
        let first_start_ns = libos::time::now_ns() - t0;
        if c.store.restored_from_earlier_boot() {
            c.close_sessions_of_earlier_boots();
        }
        if appended > 0 {
            c.await_resumes();
            log::info!("{}: replayed {recovered} requests from the durable log", P::NAME);
            if let Err(f) = c.checkpoint().map(|_| ()) {
                c.recover(f);
            }
        }
        log::info!(
            "{} is up (service pid {}, first start in {}.{:03} ms)",
            P::NAME,
            c.pid(),
            first_start_ns / 1_000_000,
            (first_start_ns / 1000) % 1000
        );
        Ok(c)
    }

    /// The checkpoint restored was taken in an earlier boot: the sessions
    /// its state holds (open files, say) belong to clients the power cut or
    /// reboot ended, except those the log after it opened in this boot
    /// (which wait for their clients to resume them, see
    /// [`Companion::await_resumes`]). Close the others, as logged closes,
    /// so they do not pile up from boot to boot.
    fn close_sessions_of_earlier_boots(&mut self) {
        let in_log = self.log_sessions();
        let held = match self.service_sessions() {
            Ok(s) => s,
            Err(f) => {
                log::warn!("{}: cannot ask the service for its sessions: {f}", P::NAME);
                self.recover(f);
                return;
            }
        };
        let gone: Vec<u64> = held.into_iter().filter(|s| !in_log.contains(s)).collect();
        if gone.is_empty() {
            return;
        }
        log::info!("{}: closing {} sessions of an earlier boot that the checkpoint holds", P::NAME, gone.len());
        self.queue.extend(gone.into_iter().map(Work::Close));
    }

    /// The sessions the service's state holds, as it says.
    fn service_sessions(&mut self) -> Result<Vec<u64>, Failure> {
        self.service()?.send(SvcRequest::Sessions)?;
        match self.service()?.recv(lifecycle_deadline_ns::<P>())? {
            SvcReply::SessionList { sessions } => {
                Ok(sessions.chunks_exact(8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]))).collect())
            }
            other => Err(Failure::Violation(format!("{} in answer to Sessions", reply_name(&other)))),
        }
    }

    /// The sessions the log mentions (opened, or sending requests) and
    /// does not close.
    fn log_sessions(&self) -> alloc::collections::BTreeSet<u64> {
        let mut open = alloc::collections::BTreeSet::new();
        for e in self.log.entries() {
            match e {
                // A request shows its session open too: it may have opened
                // before the checkpoint the log follows.
                Entry::Open(s) | Entry::Request { session: s, .. } => {
                    open.insert(*s);
                }
                Entry::Close(s) => {
                    open.remove(s);
                }
                Entry::Input(_) | Entry::Event { .. } => {}
            }
        }
        open
    }

    /// The service's pid (0 if none).
    pub fn pid(&self) -> u32 {
        self.service.as_ref().map_or(0, |s| s.pid)
    }

    /// Sessions the durable log opened (in an earlier incarnation of this
    /// companion, or an earlier boot) and never closed: their clients may
    /// resume them (a companion restart) or be gone (a power cut); they
    /// wait a while, then the service is told they closed.
    fn await_resumes(&mut self) {
        let open = self.log_sessions();
        self.clients.await_resumes(open);
    }

    /// Serve forever.
    pub fn serve(&mut self) -> i32 {
        loop {
            let held = self.durability.held.len();
            if held > 0 && (self.queue.is_empty() || held >= MAX_HELD_REPLIES) {
                self.make_durable();
                if self.durability.held.len() >= MAX_HELD_REPLIES {
                    self.wait_for_the_store();
                    continue;
                }
            }
            if self.log.payload_bytes() > LOG_LIMIT_BYTES {
                self.wait_for_the_store();
                continue;
            }
            if self.polled_since_event {
                if let Some(event) = self.events.due(libos::time::now_ns()) {
                    self.queue.push_back(event);
                    self.polled_since_event = false;
                }
            }
            if self.clients.control_stashed() {
                self.serve_control();
            }
            if let Some(work) = self.queue.pop_front() {
                if let Err(f) = self.do_work(work) {
                    self.recover(f);
                }
                continue;
            }
            if self.checkpoint_due() {
                if let Err(f) = self.checkpoint().map(|_| ()) {
                    self.recover(f);
                }
                continue;
            }
            self.clients.flush_outboxes();
            let mut timeout = P::POLICY.every_ms.map(|ms| core::time::Duration::from_millis(ms as u64));
            if !self.durability.held.is_empty() {
                timeout = Some(core::time::Duration::from_nanos(APPEND_RETRY_NS));
            }
            if let Some(poll) = self.clients.poll_interval() {
                timeout = Some(timeout.map_or(poll, |t| t.min(poll)));
            }
            if let Some(tick) = self.events.timeout(libos::time::now_ns()) {
                timeout = Some(timeout.map_or(tick, |t| t.min(tick)));
            }
            let Some(service) = self.service.as_ref() else {
                self.recover(Failure::Broken(String::from("no service")));
                continue;
            };
            let event = self.clients.wait(service.exit_signal(), self.store.waitable(), timeout);
            self.polled_since_event = true;
            match event {
                clients::Event::ServiceEnded => {
                    let f = self.service.as_ref().map(|s| s.death()).unwrap_or(Failure::Hung(0));
                    self.recover(f);
                }
                // A timeout also reads every session: those beyond what one
                // wait can watch are served this way.
                clients::Event::Clients | clients::Event::Timeout => {
                    let mut work = self.clients.collect(&mut self.log);
                    self.queue.append(&mut work);
                    self.serve_control();
                }
                clients::Event::Control => self.serve_control(),
                clients::Event::Store => self.store.attend(),
            }
        }
    }

    /// Back-pressure: the log or the held replies are at their bound
    /// because the store keeps failing. Serve controllers and watch the
    /// service, read no client requests, and try the store again.
    fn wait_for_the_store(&mut self) {
        let Some(service) = self.service.as_ref() else {
            self.recover(Failure::Broken(String::from("no service")));
            return;
        };
        match self.clients.wait_without_requests(service.exit_signal(), Some(core::time::Duration::from_millis(100))) {
            clients::Event::ServiceEnded => {
                let f = self.service.as_ref().map(|s| s.death()).unwrap_or(Failure::Hung(0));
                self.recover(f);
            }
            clients::Event::Control => {
                self.clients.accept_control();
                self.serve_control();
            }
            _ => {}
        }
        if self.log.payload_bytes() > LOG_LIMIT_BYTES && self.store_retry_due() {
            if let Err(f) = self.checkpoint().map(|_| ()) {
                self.recover(f);
            }
        }
        self.make_durable();
    }

    /// Whether a retry of a failed store is due.
    fn store_retry_due(&self) -> bool {
        libos::time::now_ns() >= self.durability.retry_at_ns
    }

    /// Put every log entry since the last append into the store, then send
    /// the replies that waited for it. A full store log is relieved by a
    /// checkpoint; a store that fails keeps the replies held (the clients
    /// wait) and is tried again later.
    fn make_durable(&mut self) {
        let d = &mut self.durability;
        if d.held.is_empty() {
            return;
        }
        if !d.pending {
            self.release_held();
            return;
        }
        d.was_durable |= self.store.durable();
        if libos::time::now_ns() < d.retry_at_ns {
            if d.failing && !d.was_durable {
                self.release_held();
            }
            return;
        }
        let start = d.appended.min(self.log.len());
        let batch = crate::log::encode_batch(&self.log.entries()[start..]);
        match self.store.append(self.generation, &batch) {
            Ok(()) => {
                self.stats.stored_bytes += batch.len() as u64;
                if self.durability.failing {
                    log::info!("{}: durable appends work again", P::NAME);
                }
                self.durability.failing = false;
                self.durability.appended = self.log.len();
                self.durability.pending = false;
                self.release_held();
            }
            Err(e) => {
                // A full store log, or a store whose newest record is not
                // the one this log follows (a commit whose answer was
                // lost): a checkpoint of the live state settles both.
                if matches!(e.kind(), crate::store::StoreErrorKind::LogFull | crate::store::StoreErrorKind::Stale) {
                    match self.commit_checkpoint() {
                        Ok(Commit::Done) => return,
                        Ok(Commit::NotCommitted(_)) => {}
                        Err(f) => {
                            self.recover(f);
                            return;
                        }
                    }
                }
                self.durability.retry_at_ns = libos::time::now_ns() + APPEND_RETRY_NS;
                if !self.durability.was_durable && !self.store.durable() {
                    // No persistent store at all since this companion
                    // started (no vault, or a vault without a usable disk;
                    // the store has said so loudly and `ps` shows the
                    // service as not durable): clients are answered rather
                    // than made to wait for a disk that may never come. The
                    // log is kept for the next append. A store that was
                    // durable and is gone for now (the vault restarts)
                    // keeps the replies held until it is back.
                    if !self.durability.failing {
                        log::error!("{}: requests are answered without being durable: {}", P::NAME, e.0);
                    }
                    self.durability.failing = true;
                    self.release_held();
                    return;
                }
                if !self.durability.failing {
                    log::error!(
                        "{}: cannot make requests durable ({}); their replies wait until the store takes them",
                        P::NAME,
                        e.0
                    );
                }
                self.durability.failing = true;
            }
        }
    }

    /// Send the replies that waited for durability, in order.
    fn release_held(&mut self) {
        while let Some((session, bytes)) = self.durability.held.pop_front() {
            self.clients.send(session, &bytes);
        }
    }

    /// Whether lanes may be opened now: the service takes them, and no
    /// chaos or verification wants to see every request.
    fn lanes_open(&self) -> bool {
        self.lanes && self.chaos.is_none() && !self.verify_idempotence
    }

    /// Chaos or verification changed: if lanes may no longer be open,
    /// have the service close them (when it is between requests).
    fn close_lanes_unless_open(&mut self) {
        if !self.lanes_open() {
            self.queue.push_back(Work::CloseLanes);
        }
    }

    fn service(&mut self) -> Result<&mut ServiceProcess, Failure> {
        self.service.as_mut().ok_or(Failure::Broken(String::from("no service running")))
    }

    fn do_work(&mut self, work: Work) -> Result<(), Failure> {
        match work {
            Work::Open(session) => {
                self.log.push(Entry::Open(session));
                let client = self.clients.identity(session);
                self.service()?.send(SvcRequest::Open { session, client })
            }
            Work::Attach(session) => match self.clients.shared_buffer(session) {
                Some(memory) => self.service()?.send(SvcRequest::Attach { session, memory }),
                None => Ok(()),
            },
            Work::CloseLanes if self.lanes => self.service()?.send(SvcRequest::CloseLanes),
            Work::CloseLanes => Ok(()),
            Work::Lane(session, lane) if self.lanes_open() => self.service()?.send(SvcRequest::Lane {
                session,
                memory: lane.memory,
                link: lane.link,
                event: lane.event,
                side: lane.side,
            }),
            // Dropped: the client's side sees the lane closed and stops.
            Work::Lane(..) => Ok(()),
            Work::Close(session) => {
                self.clients.forget(session);
                self.held.session_closed(session);
                self.log.push(Entry::Close(session));
                self.service()?.send(SvcRequest::Close { session })
            }
            Work::Request { id, bytes, idempotent, durable, checkpoint_after, deadline_ns, rerun } => {
                self.deadline_ns = deadline_ns;
                self.handle(id, bytes, idempotent, durable && !idempotent, checkpoint_after, rerun)
            }
            Work::Event { seq, kind, data } => self.handle_event(seq, kind, data),
        }
    }

    /// Deliver one event the companion originated (logged first, so a
    /// replay delivers it in the same place); it may answer held requests.
    /// Chaos injects crashes into events as into requests.
    fn handle_event(&mut self, seq: u64, kind: u8, data: Vec<u8>) -> Result<(), Failure> {
        let id = (crate::held::EVENT_SESSION, seq);
        let directive = self.roll_chaos(false);
        self.deadline_ns = service_deadline_ns::<P>();
        self.in_flight = Some(InFlight { id, injected: directive.is_some(), rerun: None });
        self.log.push(Entry::Event { seq, kind, data: data.clone() });
        let chaos = directive.map_or(0, |(p, k)| chaos::encode(p, k));
        self.service()?.send(SvcRequest::Event { seq, replay: false, chaos, kind, data })?;
        if let Some((_, Kind::Kill)) = directive {
            self.service()?.kill();
        }
        self.collect(id, false)?;
        self.in_flight = None;
        self.requests_since_checkpoint += 1;
        if matches!(directive, Some((_, Kind::Corrupt))) || self.count_due() {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Deliver one client request and forward its replies. A `rerun` (an
    /// idempotent request cut short by a crash) skips the replies its client
    /// already has.
    fn handle(
        &mut self,
        id: RequestId,
        bytes: Vec<u8>,
        idempotent: bool,
        durable: bool,
        checkpoint_after: bool,
        rerun: bool,
    ) -> Result<(), Failure> {
        if self.held.is_held(id) {
            // A resumed client sent again a request the replay of the
            // durable log held again: it is answered when the service
            // answers the held one, not applied twice.
            log::info!("{}: request {} of session {} is held already; it waits for its answer", P::NAME, id.1, id.0);
            return Ok(());
        }
        let mut directive = if rerun { None } else { self.roll_chaos(false) };
        if idempotent && !rerun && core::mem::take(&mut self.mutate_next_idempotent) {
            log::info!("{}: chaos: this idempotent request changes the state", P::NAME);
            directive = Some((Point::Mid, Kind::Corrupt));
            self.stats.injected += 1;
            self.injection_pending = true;
        }
        let before = if idempotent && self.verify_idempotence { Some(self.state_copy()?) } else { None };
        self.in_flight = Some(InFlight { id, injected: directive.is_some(), rerun: idempotent.then(|| bytes.clone()) });
        if !idempotent {
            self.log.push(Entry::Request { session: id.0, seq: id.1, bytes: bytes.clone() });
        }
        if durable {
            self.durability.pending = true;
        }
        let chaos = directive.map_or(0, |(p, k)| chaos::encode(p, k));
        self.service()?.send(SvcRequest::Deliver { session: id.0, seq: id.1, replay: false, chaos, request: bytes })?;
        if let Some((_, Kind::Kill)) = directive {
            self.service()?.kill();
        }
        self.collect(id, rerun)?;
        self.in_flight = None;
        if idempotent {
            if self.held.is_held(id) {
                self.held.release(id);
                return Err(Failure::Violation(format!("held request {id:?}, which the contract says is idempotent")));
            }
            self.log.forget_delivered(id);
        }
        if let Some(before) = before {
            if self.state_copy()? != before {
                self.stats.idempotence_violations += 1;
                log::error!(
                    "{}: request {} of session {} is idempotent in the contract but changed the service's state",
                    P::NAME,
                    id.1,
                    id.0
                );
                return Err(Failure::Violation(String::from("an idempotent request changed the state")));
            }
        }
        self.stats.requests += 1;
        if !idempotent {
            self.requests_since_checkpoint += 1;
        }
        let corrupted = matches!(directive, Some((_, Kind::Corrupt)));
        if checkpoint_after || corrupted || self.count_due() {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Forward the service's replies to request `id` until `Done`.
    fn collect(&mut self, id: RequestId, replay: bool) -> Result<(), Failure> {
        self.collect_replies(id, replay, false)
    }

    /// Replay request `id` of an older checkpoint's log: its replies went
    /// to their clients long ago (or to a boot that is over); only its
    /// effect and recorded inputs matter.
    fn collect_quietly(&mut self, id: RequestId) -> Result<(), Failure> {
        self.collect_replies(id, true, true)
    }

    /// Answer the service's input requests for request (or event) `id`
    /// until `Done` (or `Held`), forwarding its replies unless `quiet`, and
    /// the answers it gives meanwhile to requests it held.
    fn collect_replies(&mut self, id: RequestId, replay: bool, quiet: bool) -> Result<(), Failure> {
        let mut index = 0;
        let event = id.0 == crate::held::EVENT_SESSION;
        loop {
            let within = self.deadline_ns;
            match self.service()?.recv(within)? {
                SvcReply::Reply { session, seq, .. } if quiet && (session, seq) == id && !event => {}
                SvcReply::Reply { session, seq, reply } if (session, seq) == id && !event => {
                    self.forward(id, index, reply, replay)?;
                    index += 1;
                }
                // Replaying an older checkpoint's log after a fall-back: an
                // answer to another request (held then, whether or not the
                // table still has it) went to its client when the log was
                // made. (A table entry goes at the first commit after its
                // release; with httpd's `Wait` always held in net, a
                // poisoned net checkpoint broke the contract on every such
                // answer the table had let go, a restart storm.)
                SvcReply::Reply { session, seq, .. } if quiet && (session, seq) != id => {}
                SvcReply::Reply { session, seq, reply } if self.held.is_held((session, seq)) => {
                    self.forward_held((session, seq), reply)?;
                }
                SvcReply::Release { session, seq } if self.held.is_held((session, seq)) => {
                    self.held.release((session, seq));
                }
                // A request given up after a fall-back that lost state (its
                // client has the contract's error): an answer the restored
                // state still gives it is owed to nobody.
                SvcReply::Reply { session, seq, .. } | SvcReply::Release { session, seq }
                    if (session, seq) != id && self.held.is_abandoned((session, seq)) =>
                {
                    log::info!("{}: an answer to abandoned request {seq} of session {session}: dropped", P::NAME);
                }
                // Its release, in that older log, when the table let it go.
                SvcReply::Release { session, seq } if quiet && (session, seq) != id => {}
                // A request held in a state this companion did not see it
                // hold (its predecessor's, restored from the vault), of a
                // client that is gone: nobody is owed the answer.
                SvcReply::Reply { session, seq, .. } | SvcReply::Release { session, seq }
                    if (session, seq) != id
                        && session != crate::held::EVENT_SESSION
                        && !self.clients.is_live(session)
                        && !self.held.is_held((session, seq)) =>
                {
                    log::info!("{}: an answer to request {seq} of session {session}, which is gone: dropped", P::NAME);
                }
                SvcReply::Input { kind, data } => {
                    let value = self.input(kind, data, replay)?;
                    self.service()?.send(SvcRequest::InputValue { data: value })?;
                }
                SvcReply::Done { session, seq } if (session, seq) == id => return Ok(()),
                SvcReply::CheckpointWanted => self.checkpoint_soon = true,
                SvcReply::HeldBytes { bytes } => self.stats.held_bytes = bytes,
                SvcReply::TickEvery { ms } => self.events.tick_every(ms, libos::time::now_ns()),
                SvcReply::Held { session, seq } if (session, seq) == id && !event => {
                    self.held.hold(id);
                    return Ok(());
                }
                other => {
                    return Err(Failure::Violation(format!("{} while handling request {id:?}", reply_name(&other))));
                }
            }
        }
    }

    /// One reply from the service: check it, then send it to the client
    /// unless a replay produced it again for a client that already has it.
    fn forward(&mut self, id: RequestId, index: usize, bytes: Vec<u8>, replay: bool) -> Result<(), Failure> {
        if replay {
            if let Some(same) = self.log.matches_delivered(id, index, &bytes) {
                if !same {
                    self.stats.divergences += 1;
                    log::warn!("{}: replayed reply {index} to request {id:?} differs from the one delivered", P::NAME);
                }
                return Ok(());
            }
        }
        self.clients.check(id.0, &bytes).map_err(Failure::Violation)?;
        self.log.record_delivered(id, &bytes);
        if !self.clients.is_live(id.0) {
            self.clients.keep_unclaimed(id, &bytes);
            return Ok(());
        }
        self.send_to_client(id.0, bytes);
        Ok(())
    }

    /// A reply to held request `id`, given while the service handled
    /// something else: as [`Companion::forward`], recognising by its index
    /// among the request's replies one that a replay produced again.
    fn forward_held(&mut self, id: RequestId, bytes: Vec<u8>) -> Result<(), Failure> {
        match self.held.produced(id, &bytes) {
            held::Answer::Same => return Ok(()),
            held::Answer::Differs => {
                self.stats.divergences += 1;
                log::warn!("{}: a replayed reply to held request {id:?} differs from the one delivered", P::NAME);
                return Ok(());
            }
            held::Answer::New => {}
        }
        self.clients.check(id.0, &bytes).map_err(Failure::Violation)?;
        self.held.delivered(id, &bytes);
        if self.clients.is_live(id.0) {
            self.send_to_client(id.0, bytes);
        }
        Ok(())
    }

    /// Send a checked reply to its client, behind the replies waiting for
    /// durability if any.
    fn send_to_client(&mut self, session: u64, bytes: Vec<u8>) {
        if self.durability.pending || !self.durability.held.is_empty() {
            self.durability.held.push_back((session, bytes));
        } else {
            self.clients.send(session, &bytes);
        }
    }

    /// An input the service asked for: recorded ones during a replay, live
    /// ones otherwise (and recorded if the request is logged).
    fn input(&mut self, kind: u8, data: Vec<u8>, replay: bool) -> Result<Vec<u8>, Failure> {
        if replay {
            if let Some(v) = self.replay_inputs.pop_front() {
                return Ok(v);
            }
        }
        let value = match kind {
            crate::service::INPUT_TIME => libos::time::now_ns().to_le_bytes().to_vec(),
            crate::service::INPUT_CALL => match own_control::<P>(&data) {
                Some(request) => self.own_figures(request),
                None => match self.clients.outbound_call(&data) {
                    Ok(callee) => self.await_call(&callee),
                    Err(answer) => answer,
                },
            },
            crate::service::INPUT_CALL_NEXT => match self.clients.outbound_next(&data) {
                Ok(callee) => self.await_call(&callee),
                Err(answer) => answer,
            },
            _ => return Err(Failure::Violation(format!("unknown input kind {kind}"))),
        };
        let logged = self.in_flight.as_ref().is_some_and(|f| f.rerun.is_none());
        if logged {
            self.log.push(Entry::Input(value.clone()));
        }
        Ok(value)
    }

    /// Wait for the answer of the service's call to `callee` (status byte
    /// as for [`Clients::outbound_call`]), up to a minute: a resilient
    /// callee answers once the request is done, which may take its
    /// recovery or the vault coming back. Meanwhile the companion is not
    /// deaf: it accepts connections and reads requests (queued behind the
    /// one in flight; one that breaks the contract closes its session at
    /// once), and answers `Stats` (`ps`) and `Chaos` (a new rate; `chaos
    /// httpd 2` waited for a whole tick of httpd's reads, up to a minute
    /// in the soak); other control requests wait for the request in flight
    /// to end.
    fn await_call(&mut self, callee: &str) -> Vec<u8> {
        /// How long a call waits for the callee's answer.
        const OUTBOUND_CALL_WAIT_NS: u64 = 60_000_000_000;
        /// How often the companion looks at everything while it waits.
        const LOOK_EVERY: core::time::Duration = core::time::Duration::from_millis(100);
        let deadline = libos::time::now_ns().saturating_add(OUTBOUND_CALL_WAIT_NS);
        loop {
            if let Some(answer) = self.clients.outbound_poll(callee) {
                return answer;
            }
            let now = libos::time::now_ns();
            if now >= deadline {
                return self.clients.outbound_abandon(callee);
            }
            let wait = core::time::Duration::from_nanos(deadline - now).min(LOOK_EVERY);
            if self.clients.wait_during_call(callee, wait) == clients::Event::Clients {
                let mut work = self.clients.collect(&mut self.log);
                self.queue.append(&mut work);
                // Figures, and a new chaos rate (it takes effect at the
                // next roll and touches nothing in flight) unless an
                // injection is still to show, which needs a checkpoint.
                let pending = self.injection_pending;
                let now = |r: &crate::control::Request| {
                    use crate::control::Request;
                    matches!(r, Request::Stats) || (!pending && matches!(r, Request::Chaos { .. }))
                };
                while let Some((index, request)) = self.clients.next_control(now) {
                    let reply = self.control(request);
                    self.clients.answer_control(index, reply);
                }
            }
        }
    }

    /// The service's call to its own companion's control channel
    /// (`NAME.control`; `request`: the control request's bytes), which the
    /// companion is too busy delivering the service's request to serve:
    /// answered here, for `Stats` only (a service's figures, e.g. for
    /// httpd's `/status`; status byte as for [`Clients::outbound_call`], 3
    /// for any other control request).
    fn own_figures(&mut self, request: &[u8]) -> Vec<u8> {
        use libos::channel::{HandleList, HandleQueue, Message};
        let mut handles = HandleQueue::new(Vec::new());
        match crate::control::Request::decode(&mut libos::wire::Reader::new(request), &mut handles) {
            Ok(crate::control::Request::Stats) => {
                let mut w = libos::wire::Writer::new();
                self.control(crate::control::Request::Stats).encode(&mut w, &mut HandleList::default());
                let mut out = Vec::from([0u8]);
                out.extend_from_slice(&w.finish());
                out
            }
            _ => Vec::from([3]),
        }
    }

    fn count_due(&self) -> bool {
        P::POLICY.every_requests.is_some_and(|n| self.requests_since_checkpoint >= n)
    }

    fn checkpoint_due(&self) -> bool {
        let timed = P::POLICY
            .every_ms
            .is_some_and(|ms| libos::time::now_ns().saturating_sub(self.last_checkpoint_ns) >= ms as u64 * 1_000_000);
        let long = !self.last_commit_failed && self.log.payload_bytes() >= LOG_BYTES_CHECKPOINT;
        self.checkpoint_soon || (!self.log.is_empty() && (timed || long || self.count_due()))
    }

    /// Capture the service's state and commit it; trim the log. A commit
    /// the store refuses is not a failure of the service: the log is kept
    /// (and an image capture is taken whole next time, since the pages it
    /// held are no longer dirty). A service that fails while saving is
    /// recovered by the caller, and the next checkpoint waits for the next
    /// checkpoint point rather than follow at once (a failure that repeats
    /// must not become a restart storm).
    fn checkpoint(&mut self) -> Result<Commit, Failure> {
        self.checkpoint_soon = false;
        // Replies held for durability go out after an append, not after
        // the commit: a reply released by a commit belongs to a request
        // the new generation's log does not hold, so a companion that died
        // between the commit and the release could not recognise the
        // request when its client sent it again.
        if self.durability.pending && !self.durability.held.is_empty() {
            self.make_durable();
        }
        self.commit_checkpoint()
    }

    /// [`Companion::checkpoint`] without the append first (what a full
    /// store log calls for).
    fn commit_checkpoint(&mut self) -> Result<Commit, Failure> {
        let result = self.capture_and_commit();
        if result.is_err() {
            self.requests_since_checkpoint = 0;
            self.last_checkpoint_ns = libos::time::now_ns();
        }
        result
    }

    fn capture_and_commit(&mut self) -> Result<Commit, Failure> {
        let t0 = libos::time::now_ns();
        let directive = self.roll_chaos(true);
        let chaos = directive.map_or(0, |(p, k)| chaos::encode(p, k));
        self.service()?.send(SvcRequest::Checkpoint { chaos })?;
        let mut epoch = Vec::new();
        let capture = match self.service()?.recv(lifecycle_deadline_ns::<P>())? {
            SvcReply::Saved { memory, len, epoch_len } => {
                let (state, held) = read_memory_split(memory, len, len.saturating_add(epoch_len))?;
                epoch = held;
                Capture::Logical(state)
            }
            SvcReply::Quiescent => {
                let service = self.service()?;
                Capture::Image { pages: service.arena_pages, dirty: service.dirty_arena_pages()? }
            }
            SvcReply::InvariantFailed { message } => return Err(Failure::Invariant(message)),
            other => return Err(Failure::Violation(format!("{} in answer to Checkpoint", reply_name(&other)))),
        };
        let capture = if core::mem::take(&mut self.poison_next) { poisoned(capture) } else { capture };
        let size = capture.len() as u64;
        let image = matches!(capture, Capture::Image { .. });
        let epoch_len = epoch.len();
        if let Err(e) = self.store.commit(self.generation + 1, capture, t0, epoch) {
            if image {
                self.service()?.capture_whole_arena();
            }
            // Try again at the next checkpoint point, not at once.
            self.requests_since_checkpoint = 0;
            self.last_checkpoint_ns = libos::time::now_ns();
            self.last_commit_failed = true;
            log::warn!("{}: checkpoint not committed ({}); the log is kept", P::NAME, e.0);
            return Ok(Commit::NotCommitted(e.0));
        }
        self.last_commit_failed = false;
        let followed = self.generation;
        self.generation = self.store.latest().map_or(self.generation + 1, |c| c.generation);
        let keep = self.log.payload_bytes() <= PREVIOUS_LOG_LIMIT_BYTES;
        let entries = self.log.take();
        self.previous_log = keep.then_some((followed, entries));
        self.held.committed();
        self.quiet_prefix = 0;
        // The checkpoint holds every effect the held replies speak of.
        self.durability.appended = 0;
        self.durability.pending = false;
        self.release_held();
        self.attempts.clear();
        self.requests_since_checkpoint = 0;
        self.last_checkpoint_ns = libos::time::now_ns();
        self.stats.checkpoints += 1;
        self.stats.checkpoint_bytes = size;
        self.stats.stored_bytes += size + epoch_len as u64;
        if epoch_len > 0 {
            self.apply_epoch(epoch_len)?;
        }
        self.stats.checkpoint_ns = libos::time::now_ns() - t0;
        Ok(Commit::Done)
    }

    /// The checkpoint just committed carries an epoch: have the service
    /// write it to its disk now. Until it says it did, a restart writes it
    /// again first; a write that fails keeps the epoch held in the service,
    /// so the next checkpoint's epoch carries it again.
    fn apply_epoch(&mut self, bytes: usize) -> Result<(), Failure> {
        self.service()?.send(SvcRequest::ApplyEpoch)?;
        match self.service()?.recv(EPOCH_DEADLINE_NS.max(lifecycle_deadline_ns::<P>()))? {
            SvcReply::EpochApplied { held } => {
                self.epoch_applied = self.generation;
                self.stats.held_bytes = held;
                self.stats.epoch_bytes += bytes as u64;
                Ok(())
            }
            SvcReply::EpochFailed { message } => {
                log::warn!(
                    "{}: the epoch of generation {} is not on the disk yet: {message}",
                    P::NAME,
                    self.generation
                );
                Ok(())
            }
            other => Err(Failure::Violation(format!("{} in answer to ApplyEpoch", reply_name(&other)))),
        }
    }

    /// The service's state as it would be captured: the whole arena (image
    /// distillation) or the saved logical state.
    fn state_copy(&mut self) -> Result<Vec<u8>, Failure> {
        if let Some(arena) = self.service()?.arena_copy()? {
            return Ok(arena);
        }
        self.service()?.send(SvcRequest::Checkpoint { chaos: 0 })?;
        match self.service()?.recv(lifecycle_deadline_ns::<P>())? {
            SvcReply::Saved { memory, len, .. } => read_memory(memory, len),
            SvcReply::Quiescent => Ok(Vec::new()),
            SvcReply::InvariantFailed { message } => Err(Failure::Invariant(message)),
            other => Err(Failure::Violation(format!("{} in answer to Checkpoint", reply_name(&other)))),
        }
    }

    /// Decide whether to inject a crash now (chaos mode, never in replay).
    fn roll_chaos(&mut self, at_checkpoint: bool) -> Option<(Point, Kind)> {
        if self.injection_pending {
            return None;
        }
        let (per_mille, rng) = self.chaos.as_mut()?;
        if !rng.chance(*per_mille) {
            return None;
        }
        let d = if at_checkpoint {
            (Point::Checkpoint, rng.pick(&chaos::CHECKPOINT_KINDS))
        } else {
            let point = rng.pick(&chaos::REQUEST_POINTS);
            let kind = rng.pick(&chaos::REQUEST_KINDS);
            (chaos::point_for(point, kind), kind)
        };
        self.stats.injected += 1;
        self.injection_pending = true;
        log::info!("{}: chaos: {} {:?}", P::NAME, d.1.as_str(), d.0);
        Some(d)
    }

    /// Start a service process from the newest checkpoint and replay the log.
    fn restart(&mut self) -> Result<(), Failure> {
        self.service = None; // kills the old process, if any
        let distillation = P::POLICY.distillation;
        self.restore_failed = true;
        let latest = self.store.latest();
        let generation = latest.map_or(0, |c| c.generation);
        let redo = latest.is_some_and(|c| !c.epoch.is_empty()) && self.epoch_applied != generation;
        let within =
            if redo { EPOCH_DEADLINE_NS.max(lifecycle_deadline_ns::<P>()) } else { lifecycle_deadline_ns::<P>() };
        self.service = Some(ServiceProcess::start(&self.program, latest, redo, distillation, within)?);
        if redo {
            self.epoch_applied = generation;
        }
        self.restore_failed = false;
        self.held.restarted();
        for session in self.clients.sessions_sharing() {
            if let Some(memory) = self.clients.shared_buffer(session) {
                self.service()?.send(SvcRequest::Attach { session, memory })?;
            }
        }
        let entries: Vec<Entry> = self.log.entries().to_vec();
        let mut i = 0;
        while i < entries.len() {
            match &entries[i] {
                Entry::Open(session) => {
                    let client = self.clients.identity(*session);
                    self.service()?.send(SvcRequest::Open { session: *session, client })?
                }
                Entry::Close(session) => {
                    self.held.session_closed(*session);
                    self.service()?.send(SvcRequest::Close { session: *session })?
                }
                Entry::Event { seq, kind, data } => {
                    let id = (crate::held::EVENT_SESSION, *seq);
                    self.replay_inputs = recorded_inputs(&entries[i + 1..]);
                    self.in_flight = Some(InFlight { id, injected: false, rerun: None });
                    self.deadline_ns = service_deadline_ns::<P>();
                    let event =
                        SvcRequest::Event { seq: *seq, replay: true, chaos: 0, kind: *kind, data: data.clone() };
                    self.service()?.send(event)?;
                    // Answers to held requests are theirs to receive,
                    // unless the event is of an older checkpoint's log.
                    self.collect_replies(id, true, i < self.quiet_prefix)?;
                    self.in_flight = None;
                }
                Entry::Request { session, seq, bytes } => {
                    let id = (*session, *seq);
                    self.replay_inputs = recorded_inputs(&entries[i + 1..]);
                    self.in_flight = Some(InFlight { id, injected: false, rerun: None });
                    self.deadline_ns = request_deadline_ns::<P>(bytes);
                    let request = SvcRequest::Deliver {
                        session: id.0,
                        seq: id.1,
                        replay: true,
                        chaos: 0,
                        request: bytes.clone(),
                    };
                    self.service()?.send(request)?;
                    if i < self.quiet_prefix {
                        self.collect_quietly(id)?;
                    } else {
                        self.collect(id, true)?;
                    }
                    self.in_flight = None;
                }
                Entry::Input(_) => {}
            }
            i += 1;
        }
        self.replay_inputs.clear();
        Ok(())
    }

    /// Bring the service back after `failure`.
    fn recover(&mut self, failure: Failure) {
        let t0 = libos::time::now_ns();
        let mut failure = failure;
        let mut rerun: Option<(RequestId, Vec<u8>)> = None;
        let mut failed_starts = 0u64;
        let mut failed_restores = 0u32;
        loop {
            self.stats.restarts += 1;
            let injected = core::mem::take(&mut self.injection_pending);
            let expected_restore_failure = failed_starts > 0 && self.poisoned && self.restore_failed;
            if !injected && !expected_restore_failure {
                self.stats.unexplained += 1;
            }
            log::warn!("{}: the service {failure}; restart #{}", P::NAME, self.stats.restarts);
            if let Some(f) = self.in_flight.take() {
                if let Some(bytes) = f.rerun {
                    rerun = Some((f.id, bytes));
                }
                if !f.injected && !matches!(failure, Failure::Broken(_)) {
                    let n = self.attempts.entry(f.id).or_insert(0);
                    *n += 1;
                    if *n >= MAX_ATTEMPTS {
                        self.abandon(f.id);
                        if rerun.as_ref().is_some_and(|(id, _)| *id == f.id) {
                            rerun = None;
                        }
                    }
                }
            }
            match self.restart() {
                Ok(()) => {
                    if core::mem::take(&mut self.lossy_fall_back) {
                        self.abandon_unseen_held();
                    }
                    if !self.held.is_empty() {
                        log::info!("{}: {} held requests carried over the restart", P::NAME, self.held.len());
                    }
                    break;
                }
                Err(f) => failure = f,
            }
            let restoring = self.store.latest().is_some_and(|c| c.generation > 0);
            if self.restore_failed && restoring && !matches!(failure, Failure::Broken(_)) {
                failed_restores += 1;
                if failed_restores >= MAX_ATTEMPTS {
                    self.fall_back(&failure);
                    failed_restores = 0;
                }
            }
            failed_starts += 1;
            if failed_starts > 3 {
                // Something outside the service is wrong (no memory, no
                // program): do not spin.
                libos::time::sleep(core::time::Duration::from_millis(100 * failed_starts.min(10)));
            }
        }
        if let Some((id, bytes)) = rerun {
            let deadline_ns = request_deadline_ns::<P>(&bytes);
            self.queue.push_front(Work::Request {
                id,
                bytes,
                idempotent: true,
                durable: false,
                checkpoint_after: false,
                deadline_ns,
                rerun: true,
            });
        }
        self.stats.last_recovery_ns = libos::time::now_ns() - t0;
        let replayed = self.log.requests() as u64;
        self.clients.notify_recovered(self.stats.restarts, self.stats.last_recovery_ns, replayed);
    }

    /// The service failed to restore the newest checkpoint on every
    /// attempt: set it aside, restore the one before it (the store's older
    /// record and the log after that, replayed quietly: the whole log kept
    /// in [`Companion::previous_log`] when it follows that record, which
    /// rebuilds what the rejected one held, else the store's durable part)
    /// and replay the log after the rejected one on top; without an older
    /// record, start the service fresh. Said loudly either way, and
    /// checkpointed at once.
    fn fall_back(&mut self, why: &Failure) {
        let rejected = self.store.latest().map_or(0, |c| c.generation);
        log::error!(
            "{}: the service cannot restore checkpoint generation {rejected} ({why}; {MAX_ATTEMPTS} times); falling back",
            P::NAME
        );
        if self.store.latest().is_some_and(|c| !c.epoch.is_empty()) {
            // Its epoch may be on the disk already: the older record's
            // epoch is not written again over it (that would put older
            // blocks over newer ones), and the older state may not match
            // the disk in every detail.
            log::error!(
                "{}: the rejected checkpoint carried an epoch; the disk keeps it, under an older state",
                P::NAME
            );
        }
        if let Err(e) = self.store.reject_latest(&why.to_string()) {
            log::error!("{}: the store could not set the checkpoint aside ({})", P::NAME, e.0);
        }
        let older = self.store.latest();
        let generation = older.map_or(0, |c| c.generation);
        let mut prefix = Vec::new();
        for (i, batch) in older.map_or(&[][..], |c| &c.log[..]).iter().enumerate() {
            match crate::log::decode_batch(batch) {
                Ok(entries) => prefix.extend(entries),
                Err(e) => {
                    log::error!("{}: entry {i} of the older log is damaged ({e}); the rest is not replayed", P::NAME);
                    break;
                }
            }
        }
        // The store's log after the older record is the durable part of
        // the whole log this companion kept (its first entries): the whole
        // one, when it has it, loses nothing.
        let durable = prefix.len();
        let previous = self.previous_log.take();
        let whole = match previous {
            Some((g, whole)) if g == generation && whole.get(..durable) == Some(&prefix[..]) => Some(whole),
            _ => None,
        };
        if let Some(whole) = whole {
            log::warn!(
                "{}: restoring generation {generation} and the whole log after it ({} entries): nothing is lost",
                P::NAME,
                whole.len()
            );
            prefix = whole;
        } else if generation == 0 && prefix.is_empty() {
            self.lossy_fall_back = true;
            log::error!(
                "{}: no older checkpoint: the service starts FRESH, and the state before generation {rejected} is lost",
                P::NAME
            );
        } else {
            self.lossy_fall_back = true;
            log::error!(
                "{}: restoring generation {generation} and the {} log entries after it; what generation {rejected} \
                 held beyond them is lost",
                P::NAME,
                prefix.len()
            );
        }
        self.generation = generation;
        self.epoch_applied = generation;
        self.quiet_prefix = prefix.len();
        // The durable part of the older record's log is in the store; the
        // rest, and the entries after the rejected record, are not.
        self.durability.appended = durable;
        self.durability.pending |= !self.log.is_empty() || prefix.len() > durable;
        self.log.prepend(prefix);
        self.checkpoint_soon = true;
        self.poisoned = false;
    }

    /// After a fall-back that lost state: the held requests the replay did
    /// not hold again may be unknown to the restored service, and their
    /// clients would wait for good. Each gets the contract's error now.
    fn abandon_unseen_held(&mut self) {
        let gone = self.held.abandon_unseen();
        if gone.is_empty() {
            return;
        }
        log::error!(
            "{}: {} held requests the restored state may not know are failed with the contract's error",
            P::NAME,
            gone.len()
        );
        for (session, _) in gone {
            self.clients.fail_request(session, P::unrecoverable());
        }
    }

    /// Give up on a request that crashes the service every time.
    fn abandon(&mut self, id: RequestId) {
        if let Some((at, count)) = self.log.remove_request(id) {
            if at < self.quiet_prefix {
                self.quiet_prefix = self.quiet_prefix.saturating_sub(count).max(at);
            }
            if at < self.durability.appended {
                self.durability.appended = self.durability.appended.saturating_sub(count).max(at);
            }
        }
        self.attempts.remove(&id);
        self.stats.abandoned += 1;
        log::error!(
            "{}: request {} of session {} crashed the service {MAX_ATTEMPTS} times; it is failed with the contract's error",
            P::NAME,
            id.1,
            id.0
        );
        self.clients.fail_request(id.0, P::unrecoverable());
    }

    fn serve_control(&mut self) {
        while let Some((index, request)) = self.clients.next_control(|_| true) {
            let reply = self.control(request);
            self.clients.answer_control(index, reply);
        }
    }

    fn control(&mut self, request: crate::control::Request) -> crate::control::Reply {
        use crate::control::{Reply, Request};
        match request {
            Request::Stats => Reply::Figures {
                pid: self.pid(),
                restarts: self.stats.restarts,
                checkpoints: self.stats.checkpoints,
                log_len: self.log.len() as u64,
                last_recovery_ns: self.stats.last_recovery_ns,
                injected: self.stats.injected,
                unexplained: self.stats.unexplained,
                divergences: self.stats.divergences,
                idempotence_violations: self.stats.idempotence_violations,
                abandoned: self.stats.abandoned,
                requests: self.stats.requests,
                checkpoint_bytes: self.stats.checkpoint_bytes,
                held_bytes: self.stats.held_bytes,
                stored_bytes: self.stats.stored_bytes,
                chaos_per_mille: self.chaos.as_ref().map_or(0, |(per_mille, _)| *per_mille),
                durable: self.store.durable(),
            },
            Request::Chaos { per_mille, seed } => {
                self.settle_injection();
                self.chaos = (per_mille > 0).then(|| (per_mille.min(1000), Rng::new(seed)));
                self.close_lanes_unless_open();
                log::info!("{}: chaos {} per mille", P::NAME, per_mille);
                Reply::Done { restarts: self.stats.restarts, recovery_ns: 0 }
            }
            Request::Verify { on } => {
                self.verify_idempotence = on;
                self.close_lanes_unless_open();
                log::info!("{}: {} idempotent requests", P::NAME, if on { "verifying" } else { "no longer verifying" });
                Reply::Done { restarts: self.stats.restarts, recovery_ns: 0 }
            }
            Request::Checkpoint => {
                self.settle_injection();
                match self.checkpoint() {
                    // Checkpointed means in persistent storage (what
                    // init's power-off reports); a memory store is not.
                    Ok(Commit::Done) if !self.store.durable() => Reply::Refused {
                        message: String::from("committed in memory only: the checkpoint store is not durable"),
                    },
                    Ok(Commit::Done) => {
                        Reply::Checkpointed { bytes: self.stats.checkpoint_bytes, ns: self.stats.checkpoint_ns }
                    }
                    Ok(Commit::NotCommitted(why)) => {
                        Reply::Refused { message: format!("checkpoint not committed: {why}") }
                    }
                    Err(f) => {
                        let message = format!("checkpoint failed: the service {f}");
                        self.recover(f);
                        Reply::Refused { message }
                    }
                }
            }
            Request::Crash { kind } => {
                self.settle_injection();
                let inject = match kind {
                    1 => Kind::Kill,
                    2 => Kind::Fault,
                    3 => Kind::Hang,
                    4 => Kind::Panic,
                    5 => Kind::Violation,
                    6 => Kind::Corrupt,
                    7 => return self.poison(),
                    8 => {
                        self.mutate_next_idempotent = true;
                        return Reply::Done { restarts: self.stats.restarts, recovery_ns: 0 };
                    }
                    _ => return Reply::Refused { message: format!("unknown crash kind {kind}") },
                };
                log::info!("{}: injecting {}", P::NAME, inject.as_str());
                self.stats.injected += 1;
                self.injection_pending = true;
                let failure = match inject {
                    Kind::Kill => self.service().map(|s| s.kill()).and_then(|_| Err(self.wait_failure())),
                    Kind::Corrupt => self
                        .service()
                        .and_then(|s| s.send(SvcRequest::Inject { kind: inject as u8 }))
                        .and_then(|_| self.checkpoint().map(|_| ())),
                    _ => self
                        .service()
                        .and_then(|s| s.send(SvcRequest::Inject { kind: inject as u8 }))
                        .and_then(|_| Err(self.wait_failure())),
                };
                if let Err(f) = failure {
                    self.recover(f);
                }
                Reply::Done { restarts: self.stats.restarts, recovery_ns: self.stats.last_recovery_ns }
            }
        }
    }

    /// Crash kind 7: commit a checkpoint damaged on purpose, then kill the
    /// service, so that its restores fail and the companion falls back.
    fn poison(&mut self) -> crate::control::Reply {
        use crate::control::Reply;
        log::info!("{}: injecting a checkpoint that cannot be restored", P::NAME);
        self.poison_next = true;
        match self.checkpoint() {
            Ok(Commit::Done) => {}
            Ok(Commit::NotCommitted(why)) => {
                return Reply::Refused { message: format!("the damaged checkpoint was not committed: {why}") }
            }
            Err(f) => {
                let message = format!("checkpoint failed: the service {f}");
                self.recover(f);
                return Reply::Refused { message };
            }
        }
        self.stats.injected += 1;
        self.injection_pending = true;
        self.poisoned = true;
        let failure = match self.service() {
            Ok(s) => {
                s.kill();
                self.wait_failure()
            }
            Err(f) => f,
        };
        self.recover(failure);
        Reply::Done { restarts: self.stats.restarts, recovery_ns: self.stats.last_recovery_ns }
    }

    /// If an injected crash has not shown yet (a hang or a bad reply after
    /// the last request), make it show now with a checkpoint, so injections
    /// and restarts stay one to one.
    fn settle_injection(&mut self) {
        if self.injection_pending {
            if let Err(f) = self.checkpoint().map(|_| ()) {
                self.recover(f);
            }
        }
    }

    /// Wait for the service to show it failed (after an injection).
    fn wait_failure(&mut self) -> Failure {
        let within = service_deadline_ns::<P>();
        match self.service().and_then(|s| s.recv(within)) {
            Ok(m) => Failure::Violation(format!("unexpected {} after a crash injection", reply_name(&m))),
            Err(f) => f,
        }
    }
}

/// The request bytes of a service's call (`data`: the callee's name, u32
/// length + bytes, then the request) when the callee is the service's own
/// control channel.
fn own_control<P: Resilient>(data: &[u8]) -> Option<&[u8]> {
    let mut r = libos::wire::Reader::new(data);
    let name = r.string(64).ok()?;
    let own = name.strip_suffix(".control").is_some_and(|n| n == P::NAME);
    own.then(|| r.rest())
}

/// The inputs recorded at the start of `entries` (those of the request or
/// event before them).
fn recorded_inputs(entries: &[Entry]) -> VecDeque<Vec<u8>> {
    entries.iter().map_while(|e| if let Entry::Input(v) = e { Some(v.clone()) } else { None }).collect()
}

/// How long `P`'s service may go without progress while it owes an
/// answer to an event, or after a crash injection, before it counts as
/// hung (the contract's `deadline N ms;`).
fn service_deadline_ns<P: Resilient>() -> u64 {
    P::DEADLINE_MS as u64 * 1_000_000
}

/// The least time a service process gets to start, restore, save or list
/// its sessions, whatever its contract's deadline: that is the process's
/// own work (loading, copying its state), which a deadline meant for
/// requests (nic's second, RELIABILITY finding 32) must not cut short.
const LIFECYCLE_DEADLINE_NS: u64 = 3_000_000_000;

/// How long `P`'s service may take to start, restore, save or list its
/// sessions.
fn lifecycle_deadline_ns<P: Resilient>() -> u64 {
    service_deadline_ns::<P>().max(LIFECYCLE_DEADLINE_NS)
}

/// How long `P`'s service may take over the logged request `bytes`.
fn request_deadline_ns<P: Resilient>(bytes: &[u8]) -> u64 {
    clients::decode::<P::Request>(bytes).map_or(service_deadline_ns::<P>(), |r| P::deadline_ms(&r) as u64 * 1_000_000)
}

/// `capture` damaged so that no service can restore it (crash kind 7): a
/// logical state of bytes that decode as nothing, an image arena without
/// its header.
fn poisoned(capture: Capture) -> Capture {
    match capture {
        Capture::Logical(_) => Capture::Logical(alloc::vec![0xff; 16]),
        Capture::Image { pages, .. } => {
            Capture::Image { pages, dirty: (0..pages).map(|p| (p, alloc::vec![0u8; 4096])).collect() }
        }
    }
}

/// Copy `len` bytes out of a memory object the service handed over.
fn read_memory(memory: libos::handle::OwnedHandle, len: u64) -> Result<Vec<u8>, Failure> {
    libos::handle::Memory(memory).read(len).map_err(|e| memory_failure(e, len))
}

/// The first `len` bytes of `memory` as two buffers split at `at`.
fn read_memory_split(memory: libos::handle::OwnedHandle, at: u64, len: u64) -> Result<(Vec<u8>, Vec<u8>), Failure> {
    libos::handle::Memory(memory).read_split(at, len).map_err(|e| memory_failure(e, len))
}

fn memory_failure(e: libos::abi::Error, len: u64) -> Failure {
    match e {
        libos::abi::Error::InvalidArgument => {
            Failure::Violation(format!("checkpoint of {len} bytes in a smaller object"))
        }
        e => Failure::Broken(format!("checkpoint memory: {e}")),
    }
}

impl From<ChannelError> for Failure {
    fn from(e: ChannelError) -> Self {
        Failure::Broken(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::wants_vault;

    #[test]
    fn the_vault_is_asked_for_by_argument() {
        assert!(wants_vault("store=vault"));
        assert!(wants_vault("--verbose store=vault"));
        assert!(!wants_vault(""));
        assert!(!wants_vault("store=memory"));
        assert!(!wants_vault("store=vaults"));
    }
}
