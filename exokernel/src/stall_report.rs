//! The stall report: what the kernel prints when the machine gets a
//! non-maskable interrupt while the profiler is not sampling (QEMU's
//! monitor command `nmi`, a PC's NMI button, a watchdog). It is for a
//! system that looks stuck: where the CPU was, the free memory, and every
//! process with its state, what it waits for and its user frame-pointer
//! chain (addresses the host resolves with the program's symbols, as the
//! profiler's are). The soak asks for one whenever the system stops
//! answering.
//!
//! An NMI lands anywhere, even while the console's or the kernel's lock is
//! held. So the report goes straight to the serial port, past the console's
//! lock and log (at worst its bytes interleave with a line being written),
//! and everything behind a lock is read only if the lock is free: on one CPU
//! a held lock means the NMI interrupted its holder. When it is the kernel
//! lock, the process table comes at the next kernel entry instead (trap
//! dispatch asks [`take_pending`]); a kernel stuck with the lock held never
//! gets there, and the CPU's place and kernel stack, printed at once, are
//! then what the report has to say.

use crate::arch::trapframe::TrapFrame;
use crate::process::RunState;
use crate::sched::Kernel;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};
use uart_16550::SerialPort;

/// A process table is owed to the next kernel entry.
static PENDING: AtomicBool = AtomicBool::new(false);

/// Deepest user stack printed per process.
const MAX_FRAMES: usize = 12;

/// Bytes written straight to COM1, polling the UART (no lock, no log).
struct RawSerial(SerialPort);

impl Write for RawSerial {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            self.0.send_raw(b);
        }
        Ok(())
    }
}

impl RawSerial {
    fn com1() -> RawSerial {
        // SAFETY: COM1 is the kernel's own serial port, already set up by
        // the console; this only writes bytes to its data register after
        // polling its status register, which cannot disturb another writer
        // beyond interleaving bytes.
        RawSerial(unsafe { SerialPort::new(crate::console::PORTS.start) })
    }
}

/// Print the report (called from the NMI handler).
pub fn on_nmi(frame: &TrapFrame) {
    let _ = report(&mut RawSerial::com1(), frame);
}

fn report(out: &mut RawSerial, frame: &TrapFrame) -> fmt::Result {
    let now = crate::clock::now_ns();
    let current = crate::sched::CURRENT_PID.load(Ordering::Relaxed);
    let mode = if frame.from_user() {
        "user"
    } else if frame.rip.wrapping_sub(crate::arch::idt::idle_entry()) < 8 {
        "idle"
    } else {
        "kernel"
    };
    writeln!(out, "\nSTALL begin at {} ms: cpu in {mode} at {:#x}, pid {current}", now / 1_000_000, frame.rip)?;
    if mode == "kernel" {
        let mut chain = [0u64; MAX_FRAMES];
        let n = crate::profile::walk_kernel(frame.rip, frame.rbp, &mut chain);
        write_chain(out, "kernel stack", &chain[..n])?;
    }
    match crate::mem::frames::try_stats() {
        Some((total, free)) => writeln!(out, "STALL memory: {free} of {total} pages free")?,
        None => writeln!(out, "STALL memory: the frame allocator's lock is held")?,
    }
    let Some(guard) = crate::sched::KERNEL.try_lock() else {
        writeln!(out, "STALL the kernel lock is held: the processes follow at the next kernel entry")?;
        PENDING.store(true, Ordering::Release);
        return Ok(());
    };
    let Some(kernel) = guard.as_ref() else { return writeln!(out, "STALL end") };
    processes(out, kernel, frame, mode, current)
}

/// Whether a process table is owed (cleared by asking); trap dispatch then
/// calls [`deferred`] with the kernel it holds.
pub fn take_pending() -> bool {
    PENDING.swap(false, Ordering::AcqRel)
}

/// The process table owed since an NMI found the kernel lock held, at a
/// kernel entry (`frame`: the registers of the entry).
pub fn deferred(kernel: &Kernel, frame: &TrapFrame) {
    let mut out = RawSerial::com1();
    let current = crate::sched::CURRENT_PID.load(Ordering::Relaxed);
    let mode = if frame.from_user() { "user" } else { "idle" };
    let _ = writeln!(out, "STALL processes at the next kernel entry ({mode}, pid {current}):")
        .and_then(|_| processes(&mut out, kernel, frame, mode, current));
}

/// Every process (`frame` and `mode`: where the CPU is, for the process
/// `current` on it), then the end line.
fn processes(out: &mut RawSerial, kernel: &Kernel, frame: &TrapFrame, mode: &str, current: u32) -> fmt::Result {
    let now = crate::clock::now_ns();
    for (pid, p) in kernel.procs.iter() {
        let state = match p.run {
            RunState::Suspended => "suspended",
            RunState::Ready if *pid == current => "running",
            RunState::Ready => "ready",
            RunState::Blocked => "blocked",
        };
        write!(out, "STALL proc {pid} {} {state} ticks={} pages={}", p.shared.name(), p.cpu_ticks, p.pages())?;
        if let Some(wait) = &p.wait {
            // A bit set on an event its process still waits on would be a
            // lost wake-up: those are listed by their place in the wait.
            write!(out, " waits on {} events", wait.events.iter().count())?;
            for (i, e) in wait.events.iter().enumerate() {
                match e.peek_bits() {
                    Some(0) => {}
                    Some(bits) => write!(out, " [{i}]={bits:#x}")?,
                    None => write!(out, " [{i}]=locked")?,
                }
            }
            match wait.deadline {
                Some(d) => write!(out, " for {} ms", d.saturating_sub(now) / 1_000_000)?,
                None => write!(out, " forever")?,
            }
        }
        writeln!(out)?;
        // The registers saved at its last entry; for the process the NMI
        // interrupted in user mode, the interrupted ones (the saved ones of
        // the process on the CPU are stale: they are saved only when
        // another runs).
        let (rip, rbp) = match mode {
            "user" if *pid == current => (frame.rip, frame.rbp),
            "kernel" if *pid == current => continue,
            _ => (p.ctx.rip, p.ctx.rbp),
        };
        let mut chain = [0u64; MAX_FRAMES];
        let n = crate::profile::walk_user_in(p.space.root(), rip, rbp, &mut chain);
        write_chain(out, "user stack", &chain[..n])?;
    }
    writeln!(out, "STALL end")
}

fn write_chain(out: &mut RawSerial, what: &str, chain: &[u64]) -> fmt::Result {
    write!(out, "STALL   {what}:")?;
    for a in chain {
        write!(out, " {a:#x}")?;
    }
    writeln!(out)
}
