//! Every kernel entry ends up here: save the running process's registers,
//! handle the syscall, exception or interrupt, then leave into whichever
//! process the scheduler picks.
//!
//! An exception in user mode ends that process with the fault's details
//! (its watchers learn vector, error code, address and instruction); an
//! exception in the kernel is a kernel bug and stops the machine.

use crate::arch::apic::{self, GSI_VECTOR_BASE, MAX_GSI, SPURIOUS_VECTOR, TIMER_VECTOR};
use crate::arch::trapframe::{TrapFrame, SYSCALL_VECTOR};
use crate::process::EndInfo;
use crate::sched::{Kernel, KERNEL};
use kintsugi_abi::ProcessState;
use x86_64::registers::control::Cr2;

const EXCEPTION_NAMES: [&str; 32] = [
    "divide error",
    "debug",
    "NMI",
    "breakpoint",
    "overflow",
    "bound range",
    "invalid opcode",
    "device not available",
    "double fault",
    "coprocessor segment",
    "invalid TSS",
    "segment not present",
    "stack fault",
    "general protection",
    "page fault",
    "reserved",
    "x87 floating point",
    "alignment check",
    "machine check",
    "SIMD floating point",
    "virtualization",
    "control protection",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "hypervisor injection",
    "VMM communication",
    "security",
    "reserved",
];

/// Handle one kernel entry.
pub fn dispatch(frame: &mut TrapFrame) {
    let mut guard = match KERNEL.try_lock() {
        Some(g) => g,
        None => panic!("kernel entered while already in the kernel (vector {:#x}, rip {:#x})", frame.vector, frame.rip),
    };
    let Some(k) = guard.as_mut() else { panic!("trap before the kernel was initialised") };
    if crate::stall_report::take_pending() {
        crate::stall_report::deferred(k, frame);
    }
    let from_user = frame.from_user();
    // Whose registers are live in `frame` (None when the CPU was idle).
    let entered = if from_user { k.current() } else { None };
    match frame.vector {
        SYSCALL_VECTOR => {
            if let Some(pid) = entered {
                crate::syscall::handle(k, pid, frame);
            }
        }
        v @ 0..=31 if from_user => user_exception(k, frame, v),
        v @ 0..=31 => kernel_exception(frame, v),
        TIMER_VECTOR => {
            apic::eoi();
            k.on_tick();
        }
        v if (GSI_VECTOR_BASE..GSI_VECTOR_BASE + MAX_GSI as u64).contains(&v) => {
            crate::irq::on_interrupt((v - GSI_VECTOR_BASE) as u32);
            apic::eoi();
        }
        v if (apic::MSI_VECTOR_BASE..apic::MSI_VECTOR_BASE + apic::MSI_VECTORS as u64).contains(&v) => {
            crate::irq::on_msi(v);
            apic::eoi();
        }
        SPURIOUS_VECTOR => {}
        0xf0..=0xfe => {} // masked legacy PIC: spurious only
        v => {
            kprintln!("kernel: warning: unexpected interrupt vector {v:#x}");
            apic::eoi();
        }
    }
    // A process that stopped running keeps its registers in its record,
    // where wake-ups write their results.
    let mut still_running = entered.filter(|pid| k.current() == Some(*pid));
    if let Some(pid) = entered.filter(|_| still_running.is_none()) {
        if let Some(p) = k.procs.get_mut(&pid) {
            p.ctx = *frame;
        }
    }
    k.process_wakeups();
    // A process woken by an interrupt or a timer into a better level takes
    // the CPU now. Wake-ups a system call causes do not preempt its caller:
    // a client that signals a service then waits for the answer, and only
    // by waiting does it show that it is not CPU-bound (were it preempted
    // at the signal, the reply would be ready when it resumed, it would
    // never wait, and it would be taken for a CPU-bound program).
    if let Some(pid) = still_running.filter(|_| frame.vector != SYSCALL_VECTOR) {
        if k.preempt_if_outranked() {
            if let Some(p) = k.procs.get_mut(&pid) {
                p.ctx = *frame;
            }
            still_running = None;
        }
    }
    k.switch(frame, still_running);
}

fn user_exception(k: &mut Kernel, frame: &TrapFrame, vector: u64) {
    let Some(pid) = k.current() else { return };
    let addr = if vector == 14 { Cr2::read_raw() } else { 0 };
    let name = k.procs.get(&pid).map(|p| p.shared.name()).unwrap_or("?");
    kprintln!(
        "kernel: warning: process {pid} ({name}) faulted: {} (vector {vector}, error {:#x}) at ip {:#x}, address {:#x}",
        EXCEPTION_NAMES[vector as usize],
        frame.error,
        frame.rip,
        addr
    );
    k.end(
        pid,
        EndInfo {
            state: ProcessState::Faulted,
            code: 0,
            vector: vector as u32,
            error: frame.error as u32,
            addr,
            ip: frame.rip,
        },
    );
}

fn kernel_exception(frame: &TrapFrame, vector: u64) -> ! {
    let cr2 = Cr2::read_raw();
    panic!(
        "kernel exception: {} (vector {vector}, error {:#x}) at rip {:#x}, rsp {:#x}, cr2 {:#x}",
        EXCEPTION_NAMES[vector as usize], frame.error, frame.rip, frame.rsp, cr2
    );
}
