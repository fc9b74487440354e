//! The scheduling policy: which ready process gets the CPU, and for how
//! long. Pure logic over process ids and tick counts, so it is unit-tested
//! on the host; `sched` applies it to the live processes.
//!
//! Three ready levels, served best first, round robin within each with a
//! fixed time slice of [`SLICE_TICKS`]:
//!
//! 0. [`Level::Service`]: processes of the service class (init, the vault,
//!    companions, drivers, services), so the work a message hands a service
//!    runs ahead of CPU-bound programs. A service that has run
//!    [`SERVICE_SPIN_SLICES`] whole slices in a row without waiting joins
//!    the woken level until it next waits: a hung service spinning (its
//!    companion needs seconds to tell a spin from long work) shares the CPU
//!    with the programs that mostly wait instead of taking it from them,
//!    and still runs ahead of the CPU-bound ones. (The soak's hangs, at
//!    service priority, took 95 % of the CPU for their 3 s each, and the
//!    clients, the shell and the other services' callers nearly stopped.)
//! 1. [`Level::Woken`]: ordinary processes just woken from a wait (or just
//!    started): programs that mostly wait, such as the shell or a client
//!    waiting for replies, run ahead of the CPU-bound ones.
//! 2. [`Level::Batch`]: ordinary processes that used up a whole slice or
//!    yielded.
//!
//! A process woken by an interrupt or a timer into a better level than the
//! running one's takes the CPU at once; the running one goes back to the
//! front of its level with the rest of its slice. (A wake-up caused by the
//! running process's own system call does not preempt it: see `trap`.) The boost is bounded both ways: a level that has gone
//! [`STARVE_TICKS`] without being served gets the next slice ahead of the
//! better levels, and that slice is not preempted. So a busy service cannot
//! starve ordinary programs (they keep at least a slice in every
//! `STARVE_TICKS + SLICE_TICKS`), nor can a crowd of woken programs starve
//! the CPU-bound ones.

use alloc::collections::{BTreeMap, VecDeque};
use kintsugi_abi::SchedClass;

/// A process id.
pub type Pid = u32;

/// Timer ticks a process may run before the next ready one gets the CPU.
pub const SLICE_TICKS: u32 = 10;

/// Ticks a non-empty level may go unserved before it gets a slice ahead of
/// the better levels.
pub const STARVE_TICKS: u64 = 100;

/// Whole slices a service may run in a row without waiting before it
/// leaves [`Level::Service`] for [`Level::Woken`] (until it next waits):
/// 50 ms of CPU, several times what the work of one message takes (a
/// checkpoint's capture, an epoch's encoding, a burst of frames).
pub const SERVICE_SPIN_SLICES: u32 = 5;

/// The ready levels, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Service-class processes.
    Service = 0,
    /// Ordinary processes woken from a wait, or just started.
    Woken = 1,
    /// Ordinary processes that used a whole slice or yielded.
    Batch = 2,
}

const LEVELS: usize = 3;

/// Why a process joins a ready level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reason {
    /// Started, or woken from a wait.
    Woken,
    /// Used up its slice.
    Expired,
    /// Gave up the rest of its slice.
    Yielded,
    /// A better level's process took the CPU from it.
    Preempted,
}

/// The level a process of `class` joins for `reason`, given the level it
/// was at and the whole slices it has run in a row without waiting.
fn level_for(class: SchedClass, reason: Reason, was: Level, spun: u32) -> Level {
    match (class, reason) {
        (SchedClass::Service, Reason::Woken) => Level::Service,
        (SchedClass::Service, Reason::Expired) if spun >= SERVICE_SPIN_SLICES => Level::Woken,
        (SchedClass::Service, Reason::Expired) => Level::Service,
        (SchedClass::Service, Reason::Yielded | Reason::Preempted) => was,
        (SchedClass::Normal, Reason::Woken) => Level::Woken,
        (SchedClass::Normal, Reason::Expired | Reason::Yielded) => Level::Batch,
        (SchedClass::Normal, Reason::Preempted) => was,
    }
}

/// What the policy keeps per live process.
struct Entry {
    class: SchedClass,
    level: Level,
    slice_left: u32,
    /// Whole slices run in a row since it last waited.
    spun: u32,
    /// In a ready level.
    queued: bool,
}

/// The ready levels and the running process.
pub struct RunQueue {
    entries: BTreeMap<Pid, Entry>,
    ready: [VecDeque<Pid>; LEVELS],
    /// Per level: the tick it was last served, or became non-empty.
    served_at: [u64; LEVELS],
    current: Option<Pid>,
    /// The running process got its slice by the starvation rule: it is not
    /// preempted before the slice ends.
    guaranteed: bool,
}

impl Default for RunQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl RunQueue {
    /// Nothing registered, nothing running.
    pub fn new() -> RunQueue {
        RunQueue {
            entries: BTreeMap::new(),
            // Room for every process in each level from the start: a level
            // never grows later, so the kernel heap in use moves only with
            // the objects programs hold (the syscall fuzzer's leak check).
            ready: core::array::from_fn(|_| VecDeque::with_capacity(kintsugi_abi::MAX_PROCESSES)),
            served_at: [0; LEVELS],
            current: None,
            guaranteed: false,
        }
    }

    /// Register a live process of `class` (not ready yet).
    pub fn add(&mut self, pid: Pid, class: SchedClass) {
        self.entries.insert(pid, Entry { class, level: Level::Woken, slice_left: SLICE_TICKS, spun: 0, queued: false });
    }

    /// Forget an ended process: off the CPU and out of every level.
    pub fn remove(&mut self, pid: Pid) {
        self.entries.remove(&pid);
        for level in self.ready.iter_mut() {
            level.retain(|q| *q != pid);
        }
        if self.current == Some(pid) {
            self.current = None;
        }
    }

    /// The running process.
    pub fn current(&self) -> Option<Pid> {
        self.current
    }

    /// The level `pid` runs or waits at.
    pub fn level_of(&self, pid: Pid) -> Option<Level> {
        self.entries.get(&pid).map(|e| e.level)
    }

    fn enqueue(&mut self, pid: Pid, reason: Reason, now: u64) {
        let Some(e) = self.entries.get_mut(&pid) else { return };
        if e.queued {
            return;
        }
        e.queued = true;
        match reason {
            Reason::Woken => e.spun = 0,
            Reason::Expired => e.spun = e.spun.saturating_add(1),
            Reason::Yielded | Reason::Preempted => {}
        }
        e.level = level_for(e.class, reason, e.level, e.spun);
        if reason != Reason::Preempted {
            e.slice_left = SLICE_TICKS;
        }
        let queue = &mut self.ready[e.level as usize];
        if queue.is_empty() {
            self.served_at[e.level as usize] = now;
        }
        if reason == Reason::Preempted {
            queue.push_front(pid);
        } else {
            queue.push_back(pid);
        }
    }

    /// A registered process became ready (started, or woken from a wait).
    pub fn wake(&mut self, pid: Pid, now: u64) {
        if self.current != Some(pid) {
            self.enqueue(pid, Reason::Woken, now);
        }
    }

    /// The running process stopped being ready (it blocked).
    pub fn stop_current(&mut self) {
        self.current = None;
    }

    /// The running process gives up the rest of its slice.
    pub fn yield_current(&mut self, now: u64) {
        if let Some(pid) = self.current.take() {
            self.enqueue(pid, Reason::Yielded, now);
        }
    }

    fn any_ready(&self) -> bool {
        self.ready.iter().any(|q| !q.is_empty())
    }

    fn best_ready(&self) -> Option<usize> {
        self.ready.iter().position(|q| !q.is_empty())
    }

    /// Account a timer tick to the running process. When its slice is over
    /// and another is ready, it goes back to a level (true: the caller
    /// saves its registers); alone, it keeps the CPU but now counts as
    /// CPU-bound, so a woken program preempts it.
    pub fn tick(&mut self, now: u64) -> bool {
        let Some(pid) = self.current else { return false };
        let others_ready = self.any_ready();
        let Some(e) = self.entries.get_mut(&pid) else { return false };
        e.slice_left = e.slice_left.saturating_sub(1);
        if e.slice_left > 0 {
            return false;
        }
        self.guaranteed = false;
        if others_ready {
            self.current = None;
            self.enqueue(pid, Reason::Expired, now);
            true
        } else {
            e.slice_left = SLICE_TICKS;
            e.spun = e.spun.saturating_add(1);
            e.level = level_for(e.class, Reason::Expired, e.level, e.spun);
            false
        }
    }

    /// If a process waits in a better level than the running one's (and
    /// the running one did not get its slice by the starvation rule), put
    /// the running one back at the front of its level; true if so (the
    /// caller saves its registers).
    pub fn preempt_if_outranked(&mut self, now: u64) -> bool {
        let Some(pid) = self.current else { return false };
        if self.guaranteed {
            return false;
        }
        let Some(level) = self.level_of(pid) else { return false };
        if self.best_ready().is_none_or(|best| best >= level as usize) {
            return false;
        }
        self.current = None;
        self.enqueue(pid, Reason::Preempted, now);
        true
    }

    /// The level whose turn it is: the one starving longest past
    /// [`STARVE_TICKS`] (and true: the starvation rule chose it), else the
    /// best non-empty one.
    fn level_to_serve(&self, now: u64) -> Option<(usize, bool)> {
        let best = self.best_ready()?;
        let starving = (1..LEVELS)
            .filter(|l| *l != best && !self.ready[*l].is_empty())
            .filter(|l| now.saturating_sub(self.served_at[*l]) >= STARVE_TICKS)
            .min_by_key(|l| self.served_at[*l]);
        Some(starving.map_or((best, false), |l| (l, true)))
    }

    /// If nothing runs, choose the next process (it leaves its level).
    /// Returns the running process, if any.
    pub fn pick(&mut self, now: u64) -> Option<Pid> {
        while self.current.is_none() {
            let (level, guaranteed) = self.level_to_serve(now)?;
            let pid = self.ready[level].pop_front()?;
            if let Some(e) = self.entries.get_mut(&pid) {
                e.queued = false;
                self.current = Some(pid);
                self.guaranteed = guaranteed;
                self.served_at[level] = now;
            }
        }
        self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn queue(procs: &[(Pid, SchedClass)]) -> RunQueue {
        let mut rq = RunQueue::new();
        for (pid, class) in procs {
            rq.add(*pid, *class);
            rq.wake(*pid, 0);
        }
        rq
    }

    const S: SchedClass = SchedClass::Service;
    const N: SchedClass = SchedClass::Normal;

    #[test]
    fn services_first_then_woken_then_cpu_bound() {
        let mut rq = queue(&[(1, N), (2, S)]);
        assert_eq!(rq.pick(0), Some(2), "the service runs first");
        // The service uses its whole slice: still ahead of the ordinary one
        // only while it is the only service; it goes to the back of level 0.
        for t in 1..=SLICE_TICKS as u64 {
            rq.tick(t);
        }
        assert_eq!(rq.pick(10), Some(2), "alone in its level, the service keeps the CPU");
        rq.stop_current(); // the service waits
        assert_eq!(rq.pick(11), Some(1));
        // The ordinary one runs a whole slice with nobody else ready: it is
        // now CPU-bound; a woken ordinary process preempts it.
        for t in 12..12 + SLICE_TICKS as u64 {
            assert!(!rq.tick(t));
        }
        assert_eq!(rq.level_of(1), Some(Level::Batch));
        rq.add(3, N);
        rq.wake(3, 30);
        assert!(rq.preempt_if_outranked(30));
        assert_eq!(rq.pick(30), Some(3));
    }

    /// Run the current process for a whole slice; whether it left the CPU.
    fn run_slice(rq: &mut RunQueue, now: &mut u64) -> bool {
        let mut left = false;
        for _ in 0..SLICE_TICKS {
            *now += 1;
            left = rq.tick(*now);
        }
        left
    }

    #[test]
    fn a_spinning_service_shares_the_cpu_with_waiting_programs_until_it_waits() {
        let mut rq = queue(&[(1, S), (2, N)]);
        let mut now = 0;
        assert_eq!(rq.pick(now), Some(1));
        // Whole slices in a row: the service keeps the CPU over the
        // ordinary program while it is under the bound...
        for _ in 1..SERVICE_SPIN_SLICES {
            assert!(run_slice(&mut rq, &mut now));
            assert_eq!(rq.level_of(1), Some(Level::Service));
            assert_eq!(rq.pick(now), Some(1));
        }
        // ...then it joins the woken level behind the ordinary program.
        assert!(run_slice(&mut rq, &mut now));
        assert_eq!(rq.level_of(1), Some(Level::Woken));
        assert_eq!(rq.pick(now), Some(2), "the waiting program's turn comes at once");
        rq.stop_current();
        assert_eq!(rq.pick(now), Some(1));
        // A service woken from a wait preempts it.
        rq.add(3, S);
        rq.wake(3, now);
        assert!(rq.preempt_if_outranked(now));
        assert_eq!(rq.pick(now), Some(3));
        rq.stop_current();
        assert_eq!(rq.pick(now), Some(1));
        // Once it waits, the next message's work is at service level again.
        rq.stop_current();
        rq.wake(1, now);
        assert_eq!(rq.level_of(1), Some(Level::Service));
        rq.wake(2, now);
        assert_eq!(rq.pick(now), Some(1));
    }

    #[test]
    fn a_woken_service_preempts_and_the_preempted_keeps_its_place() {
        let mut rq = queue(&[(1, N), (2, N), (3, S)]);
        assert_eq!(rq.pick(0), Some(3));
        rq.stop_current();
        assert_eq!(rq.pick(0), Some(1));
        rq.tick(1);
        rq.tick(2);
        assert!(!rq.preempt_if_outranked(2), "nothing better is ready");
        rq.wake(3, 3);
        assert!(rq.preempt_if_outranked(3));
        assert_eq!(rq.pick(3), Some(3));
        rq.stop_current();
        assert_eq!(rq.pick(4), Some(1), "the preempted process goes first in its level");
        // ...with the rest of its slice, not a new one.
        let mut ticks = 0;
        while !rq.tick(5 + ticks) {
            ticks += 1;
        }
        assert_eq!(ticks + 1, SLICE_TICKS as u64 - 2);
    }

    #[test]
    fn yielding_goes_behind_the_cpu_bound() {
        let mut rq = queue(&[(1, N), (2, N)]);
        assert_eq!(rq.pick(0), Some(1));
        rq.yield_current(1);
        assert_eq!(rq.level_of(1), Some(Level::Batch));
        assert_eq!(rq.pick(1), Some(2));
        rq.yield_current(2);
        assert_eq!(rq.pick(2), Some(1));
    }

    /// Run `ticks` timer ticks; `busy` says whether a process stays ready
    /// when it could block (here: always). Returns the ticks each pid got.
    fn simulate(rq: &mut RunQueue, ticks: u64) -> BTreeMap<Pid, u64> {
        let mut got = BTreeMap::new();
        for now in 0..ticks {
            if let Some(pid) = rq.pick(now) {
                *got.entry(pid).or_insert(0) += 1;
            }
            rq.tick(now + 1);
        }
        got
    }

    #[test]
    fn a_busy_service_does_not_starve_ordinary_programs() {
        let mut rq = queue(&[(1, S), (2, N), (3, N)]);
        let got = simulate(&mut rq, 100_000);
        // The two ordinary programs share at least one slice in every
        // STARVE_TICKS + SLICE_TICKS.
        let floor = 100_000 * SLICE_TICKS as u64 / (STARVE_TICKS + SLICE_TICKS as u64);
        let ordinary = got.get(&2).unwrap_or(&0) + got.get(&3).unwrap_or(&0);
        assert!(ordinary >= floor * 9 / 10, "{got:?}");
        assert!(got[&2] > 0 && got[&3] > 0, "{got:?}");
        // ...and the service still gets most of the CPU.
        assert!(got[&1] >= 100_000 * 8 / 10, "{got:?}");
    }

    #[test]
    fn many_cpu_bound_programs_do_not_starve_a_service() {
        let mut procs: Vec<(Pid, SchedClass)> = (10..60).map(|p| (p, N)).collect();
        procs.push((1, S));
        let mut rq = queue(&procs);
        let got = simulate(&mut rq, 100_000);
        assert!(got[&1] >= 100_000 * 8 / 10, "{got:?}");
        assert!((10..60).all(|p| got.get(&p).is_some_and(|t| *t > 0)), "a spinner starved: {got:?}");
    }

    #[test]
    fn the_starvation_slice_is_not_preempted() {
        let mut rq = queue(&[(1, S), (2, N)]);
        let mut now = 0;
        // The service, busy with one message after another (it waits
        // between them, so it stays at service level), runs until the
        // ordinary one has starved.
        while rq.pick(now) == Some(1) {
            now += 1;
            rq.tick(now);
            if now % 3 == 0 && rq.current() == Some(1) {
                rq.stop_current();
                rq.wake(1, now);
            }
        }
        assert_eq!(rq.current(), Some(2));
        assert!(now >= STARVE_TICKS);
        // The service is ready (it is at the back of level 0) and outranks
        // it, but the guaranteed slice runs to its end.
        assert!(!rq.preempt_if_outranked(now));
        let mut slice = 0;
        loop {
            slice += 1;
            now += 1;
            if rq.tick(now) {
                break;
            }
        }
        assert_eq!(slice, SLICE_TICKS);
        assert_eq!(rq.pick(now), Some(1));
    }

    #[test]
    fn interactive_work_beats_fifty_spinners() {
        // A client that wakes, runs a little, and waits again, among fifty
        // CPU-bound programs: when it wakes it runs next, unless a
        // spinner holds a starvation slice, which delays it by at most
        // one slice.
        let procs: Vec<(Pid, SchedClass)> = (10..60).map(|p| (p, N)).collect();
        let mut rq = queue(&procs);
        rq.add(1, N);
        let mut now = 0;
        while now < 1000 {
            rq.pick(now);
            now += 1;
            rq.tick(now);
        }
        let mut delayed = 0;
        for round in 0..1000u64 {
            rq.wake(1, now);
            let mut waited = 0;
            if !rq.preempt_if_outranked(now) && rq.current().is_some() {
                assert!(rq.guaranteed, "round {round}: a spinner kept the CPU");
                while rq.current() != Some(1) {
                    now += 1;
                    rq.tick(now);
                    rq.pick(now);
                    waited += 1;
                }
                delayed += 1;
            }
            assert!(waited <= SLICE_TICKS, "round {round}: waited {waited} ticks");
            assert_eq!(rq.pick(now), Some(1), "round {round}");
            // It works for a tick and waits; the spinners run a while.
            now += 1;
            rq.tick(now);
            rq.stop_current();
            for _ in 0..round % 7 {
                rq.pick(now);
                now += 1;
                rq.tick(now);
            }
        }
        assert!(delayed < 100, "{delayed} delays in 1000 rounds");
    }

    #[test]
    fn removed_processes_are_never_picked() {
        let mut rq = queue(&[(1, N), (2, N)]);
        rq.remove(1);
        assert_eq!(rq.pick(0), Some(2));
        rq.remove(2);
        assert_eq!(rq.current(), None);
        assert_eq!(rq.pick(1), None);
    }
}
