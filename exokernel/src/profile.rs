//! The sampling profiler: where the CPU is, in kernel and user mode, by
//! process and call stack.
//!
//! It exists only when the kernel command line says `profile` (or
//! `profile=HZ`, 4000 samples per second by default; `cargo xtask profile`
//! passes it). The kernel runs with interrupts off, so the scheduler's timer
//! cannot see kernel time; the sampler therefore uses its own clock, the
//! legacy PIT, routed through the I/O APIC as a non-maskable interrupt: a
//! sample lands wherever the CPU is, in a system call or a driver's
//! interrupt as well as in user code or the idle loop.
//!
//! A sample is the running process's id and two frame-pointer stack walks
//! (every Kintsugi binary, kernel and programs, is built with frame
//! pointers): the kernel stack, bounded to the kernel stack's range, and the
//! user stack of the process whose registers the kernel entry saved, read
//! through the process's page tables so a bad frame pointer ends the walk
//! instead of faulting. Samples go into a buffer allocated at boot (16 MiB,
//! about a minute at 4000 Hz); when it is full, further samples are counted
//! as dropped.
//!
//! Transport: `Profile(0)` starts sampling (clearing the buffer) and
//! `Profile(1)` stops it and writes the samples to the serial console,
//! identical stacks merged with a count, between `PROFILE begin` and
//! `PROFILE end` lines, together with the names of the processes seen.
//! The host (`cargo xtask profile`) reads them there and resolves the
//! addresses with the ELF symbols. Nothing is given to a process, so the
//! call needs no right; without `profile` on the command line it answers
//! `Unsupported`.

use crate::arch::trapframe::TrapFrame;
use crate::mem::phys_to_virt;
use crate::process::Pid;
use alloc::collections::BTreeMap;
use alloc::string::String;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use kintsugi_abi::Error;

/// Default sampling rate.
const DEFAULT_HZ: u32 = 4000;
/// Sample buffer, in pages (16 MiB).
const BUFFER_PAGES: usize = 4096;
/// Deepest kernel stack walked.
const MAX_KERNEL_FRAMES: usize = 24;
/// Deepest user stack walked.
const MAX_USER_FRAMES: usize = 40;

/// Where a sample landed (bits 48.. of its header word).
const MODE_USER: u64 = 0;
const MODE_KERNEL: u64 = 1;
const MODE_IDLE: u64 = 2;

static ENABLED: AtomicBool = AtomicBool::new(false);
static RUNNING: AtomicBool = AtomicBool::new(false);
static HZ: AtomicU32 = AtomicU32::new(DEFAULT_HZ);
static PIT_GSI: AtomicU32 = AtomicU32::new(0);
/// Kernel virtual address and length (in words) of the sample buffer.
static BUFFER: AtomicU64 = AtomicU64::new(0);
static BUFFER_WORDS: AtomicUsize = AtomicUsize::new(0);
/// Words of the buffer used.
static USED: AtomicUsize = AtomicUsize::new(0);
static SAMPLES: AtomicU64 = AtomicU64::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);
static STARTED_NS: AtomicU64 = AtomicU64::new(0);
/// Names of the processes alive while sampling (kernel context only).
static NAMES: spin::Mutex<BTreeMap<Pid, String>> = spin::Mutex::new(BTreeMap::new());

/// Enable the profiler if the command line asks for it: allocate the
/// buffer and find the PIT's interrupt line (it stays masked until `start`).
pub fn init(cmdline: &str, platform: &crate::arch::acpi::Platform) {
    let Some(word) = cmdline.split_whitespace().find(|w| *w == "profile" || w.starts_with("profile=")) else {
        return;
    };
    let hz = word.strip_prefix("profile=").and_then(|v| v.parse::<u32>().ok()).unwrap_or(DEFAULT_HZ);
    let hz = hz.clamp(100, 20_000);
    let Some(base) = crate::mem::frames::alloc_run(BUFFER_PAGES, false) else {
        kprintln!("kernel: warning: profile: no memory for the sample buffer; profiling is off");
        return;
    };
    let (gsi, _) = platform.isa_gsi(0);
    BUFFER.store(phys_to_virt(base) as u64, Ordering::Relaxed);
    BUFFER_WORDS.store(BUFFER_PAGES * 4096 / 8, Ordering::Relaxed);
    HZ.store(hz, Ordering::Relaxed);
    PIT_GSI.store(gsi, Ordering::Relaxed);
    ENABLED.store(true, Ordering::Release);
    kprintln!("profile: enabled, {hz} samples per second once started (PIT on GSI {gsi} as NMI)");
}

/// Whether the profiler is enabled and sampling.
pub fn running() -> bool {
    RUNNING.load(Ordering::Relaxed)
}

/// Remember a process's name while sampling (called at spawn).
pub fn note_process(pid: Pid, name: &str) {
    if running() {
        NAMES.lock().insert(pid, String::from(name));
    }
}

/// `Profile(action)`: 0 starts sampling (returns the rate), 1 stops it and
/// writes the samples to the console (returns how many were taken).
pub fn control(action: u64, live: &mut dyn Iterator<Item = (Pid, &str)>) -> Result<u64, Error> {
    if !ENABLED.load(Ordering::Acquire) {
        return Err(Error::Unsupported);
    }
    match action {
        0 => {
            stop_timer();
            RUNNING.store(false, Ordering::Relaxed);
            USED.store(0, Ordering::Relaxed);
            SAMPLES.store(0, Ordering::Relaxed);
            DROPPED.store(0, Ordering::Relaxed);
            {
                let mut names = NAMES.lock();
                names.clear();
                names.extend(live.map(|(pid, name)| (pid, String::from(name))));
            }
            STARTED_NS.store(crate::clock::now_ns(), Ordering::Relaxed);
            RUNNING.store(true, Ordering::Release);
            start_timer();
            Ok(HZ.load(Ordering::Relaxed) as u64)
        }
        1 => {
            let was_running = RUNNING.swap(false, Ordering::AcqRel);
            stop_timer();
            if was_running {
                let mut names = NAMES.lock();
                for (pid, name) in live {
                    names.entry(pid).or_insert_with(|| String::from(name));
                }
            }
            dump();
            Ok(SAMPLES.load(Ordering::Relaxed))
        }
        _ => Err(Error::InvalidArgument),
    }
}

/// PIT channel 0 as a rate generator at the sampling rate, its line routed
/// to the CPU as an NMI.
fn start_timer() {
    use crate::arch::cpu::port_write;
    let divisor = (1_193_182 / HZ.load(Ordering::Relaxed)).clamp(2, 0xffff);
    port_write(0x43, 1, 0x34); // channel 0, lobyte/hibyte, mode 2, binary
    port_write(0x40, 1, divisor & 0xff);
    port_write(0x40, 1, divisor >> 8);
    crate::arch::apic::route_nmi(PIT_GSI.load(Ordering::Relaxed), true);
}

fn stop_timer() {
    crate::arch::apic::route_nmi(PIT_GSI.load(Ordering::Relaxed), false);
}

/// The NMI handler: take one sample. Runs on its own stack, possibly in the
/// middle of any kernel code, so it takes no lock and allocates nothing.
pub fn on_nmi(frame: &TrapFrame) {
    if !RUNNING.load(Ordering::Acquire) {
        return;
    }
    let mut kernel = [0u64; MAX_KERNEL_FRAMES];
    let mut user = [0u64; MAX_USER_FRAMES];
    let (mut kdepth, mut udepth) = (0, 0);
    let mode;
    if frame.from_user() {
        mode = MODE_USER;
        udepth = walk_user(frame.rip, frame.rbp, &mut user);
    } else if frame.rip.wrapping_sub(crate::arch::idt::idle_entry()) < 8 {
        mode = MODE_IDLE;
    } else {
        mode = MODE_KERNEL;
        kdepth = walk_kernel(frame.rip, frame.rbp, &mut kernel);
        // The registers the kernel entry saved, at the top of the kernel
        // stack: the user code that made the call (or was interrupted).
        let top = crate::arch::gdt::kernel_stack_top() - core::mem::size_of::<TrapFrame>() as u64;
        // SAFETY: the kernel stack is always mapped; the top frame is plain
        // old data (whatever it holds, reading it is sound).
        let entry = unsafe { core::ptr::read_volatile(top as *const TrapFrame) };
        if entry.from_user() {
            udepth = walk_user(entry.rip, entry.rbp, &mut user);
        }
    }
    let pid = if mode == MODE_IDLE { 0 } else { crate::sched::CURRENT_PID.load(Ordering::Relaxed) };
    let words = 1 + kdepth + udepth;
    let used = USED.load(Ordering::Relaxed);
    if used + words > BUFFER_WORDS.load(Ordering::Relaxed) {
        DROPPED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let buf = BUFFER.load(Ordering::Relaxed) as *mut u64;
    let header = pid as u64 | (kdepth as u64) << 32 | (udepth as u64) << 40 | mode << 48;
    // SAFETY: `buf` is the sample buffer (BUFFER_WORDS words, allocated at
    // boot, never freed); `used + words` fits, checked above; only this
    // handler writes it while sampling, and NMIs do not nest.
    unsafe {
        buf.add(used).write(header);
        for (i, a) in kernel[..kdepth].iter().chain(&user[..udepth]).enumerate() {
            buf.add(used + 1 + i).write(*a);
        }
    }
    USED.store(used + words, Ordering::Release);
    SAMPLES.fetch_add(1, Ordering::Relaxed);
}

/// Walk the kernel's frame-pointer chain, staying inside the kernel stack.
pub(crate) fn walk_kernel(rip: u64, mut rbp: u64, out: &mut [u64]) -> usize {
    extern "C" {
        static kernel_stack_bottom: u8;
    }
    let bottom = core::ptr::addr_of!(kernel_stack_bottom) as u64;
    let top = crate::arch::gdt::kernel_stack_top();
    out[0] = rip;
    let mut n = 1;
    while n < out.len() && rbp.is_multiple_of(8) && rbp >= bottom && rbp + 16 <= top {
        // SAFETY: [rbp, rbp + 16) lies inside the kernel stack (checked).
        let (next, ret) = unsafe { ((rbp as *const u64).read_volatile(), (rbp as *const u64).add(1).read_volatile()) };
        if ret == 0 {
            break;
        }
        out[n] = ret;
        n += 1;
        if next <= rbp {
            break;
        }
        rbp = next;
    }
    n
}

/// Walk a user frame-pointer chain through the active page tables.
fn walk_user(rip: u64, rbp: u64, out: &mut [u64]) -> usize {
    let cr3 = x86_64::registers::control::Cr3::read_raw().0.start_address().as_u64();
    walk_user_in(cr3, rip, rbp, out)
}

/// Walk a user frame-pointer chain through the page tables rooted at `cr3`.
pub(crate) fn walk_user_in(cr3: u64, rip: u64, mut rbp: u64, out: &mut [u64]) -> usize {
    out[0] = rip;
    let mut n = 1;
    while n < out.len() && rbp != 0 && rbp.is_multiple_of(8) && kintsugi_abi::is_user_range(rbp, 16) {
        let (Some(next), Some(ret)) = (user_word(cr3, rbp), user_word(cr3, rbp + 8)) else { break };
        if ret == 0 {
            break;
        }
        out[n] = ret;
        n += 1;
        if next <= rbp {
            break;
        }
        rbp = next;
    }
    n
}

/// The user word at `va` in the address space rooted at `cr3`, if mapped
/// and user-accessible (read through the direct map: never faults).
fn user_word(cr3: u64, va: u64) -> Option<u64> {
    const PRESENT: u64 = 1;
    const USER: u64 = 1 << 2;
    const HUGE: u64 = 1 << 7;
    const ADDR: u64 = 0x000f_ffff_ffff_f000;
    let mut table = cr3;
    for shift in [39u64, 30, 21, 12] {
        let index = (va >> shift) & 511;
        // SAFETY: `table` is a page-table frame (CR3 or a present entry's
        // address), in the direct map; reading a word of it is sound.
        let entry = unsafe { (phys_to_virt(table) as *const u64).add(index as usize).read_volatile() };
        if entry & PRESENT == 0 || entry & USER == 0 || (shift != 12 && entry & HUGE != 0) {
            return None;
        }
        table = entry & ADDR;
    }
    // SAFETY: `table` is now the frame of a present user page: RAM in the
    // direct map (device pages are user-mapped too, but reading a frame
    // pointer from MMIO only yields a wrong stack); the word is aligned.
    Some(unsafe { (phys_to_virt(table + (va & 0xfff)) as *const u64).read_volatile() })
}

/// Write the samples to the console: identical stacks merged.
fn dump() {
    let used = USED.load(Ordering::Acquire);
    let buf = BUFFER.load(Ordering::Relaxed) as *const u64;
    // SAFETY: the first `used` words of the buffer hold whole samples and
    // nothing writes them while sampling is stopped.
    let words = unsafe { core::slice::from_raw_parts(buf, used) };
    let mut stacks: BTreeMap<&[u64], u64> = BTreeMap::new();
    let mut at = 0;
    while at < words.len() {
        let header = words[at];
        let len = 1 + ((header >> 32) & 0xff) as usize + ((header >> 40) & 0xff) as usize;
        let Some(sample) = words.get(at..at + len) else { break };
        *stacks.entry(sample).or_insert(0) += 1;
        at += len;
    }
    let elapsed = crate::clock::now_ns().saturating_sub(STARTED_NS.load(Ordering::Relaxed));
    kprintln!(
        "PROFILE begin hz={} samples={} dropped={} unique={} ns={}",
        HZ.load(Ordering::Relaxed),
        SAMPLES.load(Ordering::Relaxed),
        DROPPED.load(Ordering::Relaxed),
        stacks.len(),
        elapsed
    );
    for (pid, name) in NAMES.lock().iter() {
        kprintln!("PROFILE name {pid} {name}");
    }
    let mut line = String::new();
    for (sample, count) in stacks {
        use core::fmt::Write;
        line.clear();
        let header = sample[0];
        let kdepth = ((header >> 32) & 0xff) as usize;
        let mode = match header >> 48 {
            MODE_USER => "u",
            MODE_KERNEL => "k",
            _ => "i",
        };
        let _ = write!(line, "PROFILE s {count} {} {mode} ", header as u32);
        for (i, a) in sample[1..].iter().enumerate() {
            if i == kdepth {
                line.push(';');
            } else if i > 0 {
                line.push(',');
            }
            let _ = write!(line, "{a:x}");
        }
        if kdepth == sample.len() - 1 {
            line.push(';');
        }
        line.push('\n');
        crate::console::write_bytes(line.as_bytes());
    }
    kprintln!("PROFILE end");
}
