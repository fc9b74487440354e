//! The kernel's state and the scheduler: live processes, the run queue,
//! timed waits and wake-ups.
//!
//! Which ready process runs is the policy in `runqueue` (three levels:
//! services, woken programs, CPU-bound programs; bounded boosts); this
//! module applies it to the live processes. When nothing is ready the CPU
//! idles in `hlt` with interrupts on. Waits are completed here: the waker
//! computes the wait's result and writes it into the waiter's saved
//! registers.

use crate::arch::trapframe::TrapFrame;
use crate::clock;
use crate::process::{EndInfo, Pid, Process, RunState, Wait};
use crate::runqueue::RunQueue;
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use kintsugi_abi::Error;
use spin::Mutex;

/// The first process: the system cannot go on without it.
const INIT_PID: Pid = 1;

const IDLE_STACK_SIZE: usize = 4096;
#[repr(align(16))]
#[allow(dead_code)] // only its address is used
struct IdleStack([u8; IDLE_STACK_SIZE]);
static mut IDLE_STACK: IdleStack = IdleStack([0; IDLE_STACK_SIZE]);

/// Everything the kernel keeps about processes.
pub struct Kernel {
    /// Live processes (boxed: the map's nodes stay small, so a lookup
    /// touches few pages).
    pub procs: BTreeMap<Pid, Box<Process>>,
    /// Who is ready, who runs.
    run_queue: RunQueue,
    next_pid: Pid,
    sleepers: BTreeSet<(u64, Pid)>,
    /// Scratch list of woken pids (kept to reuse its capacity; reserved
    /// for every process at once at boot, like the wake list it swaps with).
    woken: Vec<Pid>,
}

/// The process on the CPU (0: none), readable without the kernel lock: by
/// the profiler's NMI handler, and by a debugger (`set language c`, `x/wd
/// &KINTSUGI_CURRENT_PID` in gdb, see `cargo xtask run --gdb`).
#[export_name = "KINTSUGI_CURRENT_PID"]
pub static CURRENT_PID: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// The kernel state. Only trap dispatch (interrupts off) and boot touch it.
pub static KERNEL: Mutex<Option<Kernel>> = Mutex::new(None);

impl Kernel {
    /// An empty kernel.
    pub fn new() -> Kernel {
        Kernel {
            procs: BTreeMap::new(),
            run_queue: RunQueue::new(),
            next_pid: 1,
            sleepers: BTreeSet::new(),
            woken: Vec::with_capacity(kintsugi_abi::MAX_PROCESSES),
        }
    }

    /// The process on the CPU.
    pub fn current(&self) -> Option<Pid> {
        self.run_queue.current()
    }

    /// A fresh process id.
    pub fn alloc_pid(&mut self) -> Pid {
        let pid = self.next_pid;
        self.next_pid += 1;
        pid
    }

    /// Add a built process; it runs when its turn comes unless suspended.
    pub fn add(&mut self, p: Process) {
        let pid = p.pid();
        let ready = p.run == RunState::Ready;
        crate::profile::note_process(pid, p.shared.name());
        self.run_queue.add(pid, p.shared.class);
        self.procs.insert(pid, Box::new(p));
        if ready {
            self.run_queue.wake(pid, clock::ticks());
        }
    }

    /// Move a suspended process to the ready queue.
    pub fn start(&mut self, pid: Pid) -> Result<(), Error> {
        let p = self.procs.get_mut(&pid).ok_or(Error::ProcessDead)?;
        if p.run != RunState::Suspended {
            return Err(Error::InvalidArgument);
        }
        p.run = RunState::Ready;
        self.run_queue.wake(pid, clock::ticks());
        Ok(())
    }

    /// The running process gives up the rest of its time slice.
    pub fn yield_current(&mut self) {
        self.run_queue.yield_current(clock::ticks());
    }

    /// If a process was woken into a better level than the running one's,
    /// take the CPU from the running one (true: the caller saves its
    /// registers).
    pub fn preempt_if_outranked(&mut self) -> bool {
        self.run_queue.preempt_if_outranked(clock::ticks())
    }

    /// Block `pid` (the running process) in a wait.
    pub fn block(&mut self, pid: Pid, wait: Wait) {
        let Some(p) = self.procs.get_mut(&pid) else { return };
        for e in wait.events.iter() {
            e.add_waiter(pid);
        }
        if let Some(d) = wait.deadline {
            self.sleepers.insert((d, pid));
        }
        p.wait = Some(wait);
        p.run = RunState::Blocked;
        if self.run_queue.current() == Some(pid) {
            self.run_queue.stop_current();
        }
    }

    /// End a process: record how, tell its watchers, free everything.
    pub fn end(&mut self, pid: Pid, info: EndInfo) {
        let Some(mut p) = self.procs.remove(&pid) else { return };
        self.run_queue.remove(pid);
        if let Some(w) = &p.wait {
            if let Some(d) = w.deadline {
                self.sleepers.remove(&(d, pid));
            }
        }
        p.finish(info);
        drop(p);
        if pid == INIT_PID {
            kprintln!("kernel: error: init ended ({:?}); nothing is left to run the system. Halting.", info.state);
            crate::arch::cpu::halt_forever();
        }
    }

    /// Finish `pid`'s wait with `(rax, rdx)` and make it ready.
    fn complete_wait(&mut self, pid: Pid, rax: u64, rdx: u64) {
        let Some(p) = self.procs.get_mut(&pid) else { return };
        if let Some(w) = p.wait.take() {
            for e in w.events.iter() {
                e.remove_waiter(pid);
            }
            if let Some(d) = w.deadline {
                self.sleepers.remove(&(d, pid));
            }
        }
        p.ctx.rax = rax;
        p.ctx.rdx = rdx;
        p.run = RunState::Ready;
        self.run_queue.wake(pid, clock::ticks());
    }

    /// Complete the waits whose events were signalled since the last call.
    pub fn process_wakeups(&mut self) {
        if !crate::object::wakeups_pending() {
            return;
        }
        let mut woken = core::mem::take(&mut self.woken);
        crate::object::take_wakeups(&mut woken);
        for pid in woken.drain(..) {
            let Some(p) = self.procs.get_mut(&pid) else { continue };
            if p.run != RunState::Blocked {
                continue;
            }
            let Some(w) = &p.wait else { continue };
            let fired = w.events.iter().enumerate().find_map(|(i, e)| {
                let bits = e.take();
                (bits != 0).then_some((i, bits))
            });
            match fired {
                Some((i, bits)) => self.complete_wait(pid, i as u64, bits),
                // Another waiter took the bits first: keep waiting.
                None => w.events.iter().for_each(|e| e.add_waiter(pid)),
            }
        }
        self.woken = woken;
    }

    /// Account a timer tick: CPU time, time slice, timed-out waits.
    pub fn on_tick(&mut self) {
        let ticks = clock::tick();
        if let Some(pid) = self.run_queue.current() {
            if let Some(p) = self.procs.get_mut(&pid) {
                p.cpu_ticks += 1;
            }
            self.run_queue.tick(ticks);
        }
        let now = clock::now_ns();
        while let Some(&(deadline, pid)) = self.sleepers.first() {
            if deadline > now {
                break;
            }
            self.sleepers.pop_first();
            self.complete_wait(pid, Error::TimedOut.to_raw() as u64, 0);
        }
    }

    /// Leave the kernel into the process whose turn it is (or idle). If that
    /// is `live`, whose registers are still in `frame`, nothing changes;
    /// otherwise `frame` is overwritten with the next process's saved
    /// registers and the address space switched.
    pub fn switch(&mut self, frame: &mut TrapFrame, live: Option<Pid>) {
        let current = self.run_queue.pick(clock::ticks());
        CURRENT_PID.store(current.unwrap_or(0), core::sync::atomic::Ordering::Relaxed);
        if current.is_some() && current == live {
            return;
        }
        match current.and_then(|pid| self.procs.get(&pid)) {
            Some(p) => {
                p.space.activate();
                *frame = p.ctx;
            }
            None => *frame = idle_frame(),
        }
    }

    /// Number of live processes.
    pub fn count(&self) -> usize {
        self.procs.len()
    }
}

impl Default for Kernel {
    fn default() -> Self {
        Self::new()
    }
}

/// The context of the idle loop: ring 0, interrupts on, its own stack.
fn idle_frame() -> TrapFrame {
    use crate::arch::gdt::{KERNEL_CODE, KERNEL_DATA};
    let top = core::ptr::addr_of!(IDLE_STACK) as u64 + IDLE_STACK_SIZE as u64;
    TrapFrame {
        rip: crate::arch::idt::idle_entry(),
        cs: KERNEL_CODE as u64,
        rflags: 0x202,
        rsp: top,
        ss: KERNEL_DATA as u64,
        ..TrapFrame::default()
    }
}
