//! `badsyscalls`: call every system call with garbage handles, pointers and
//! lengths, and check each is refused with the right error code while this
//! process (and the kernel) carry on.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use libos::abi::{Error, Handle, MapFlags, MemFlags, Syscall};
use libos::println;
use libos::sys::{self, raw};

libos::main!(main);

static RODATA: [u8; 64] = [7; 64];

const BAD: u64 = 0xdead_beef;
const KERNEL: u64 = 0xffff_ffff_8020_0000;
const NONCANON: u64 = 0x8000_0000_0000_0000;
const UNMAPPED: u64 = 0x0000_5555_0000_0000;
const SELF: u64 = Handle::SELF.0 as u64;

fn main() -> i32 {
    use Error::*;
    use Syscall::*;
    let ev = sys::event_create().expect("event").0 as u64;
    let mem = sys::mem_alloc(2, MemFlags::empty()).expect("memory").0 as u64;
    let image = sys::mem_alloc(1, MemFlags::CONTIGUOUS).expect("memory").0 as u64;
    let (link, _peer) = sys::link_create().expect("link");
    let link = link.0 as u64;
    let mut buf = [0u8; 256];
    let ptr = buf.as_mut_ptr() as u64;
    let ro = RODATA.as_ptr() as u64;
    let code = main as *const () as u64 & !0xfff;
    let bad_handles = [BAD as u32 as u64, 0, u64::MAX, 0x7777_0001, 0xffff_fffe, 1 << 40];
    let free_va = 0x0000_4444_0000_0000u64;
    // Garbage spawn parameters: a name pointer into the kernel.
    let spawn_params = libos::abi::SpawnParams { name_ptr: KERNEL, name_len: 4, ..Default::default() };
    let spawn_params_ptr = &spawn_params as *const _ as u64;
    let name = b"x";
    let good_params = libos::abi::SpawnParams { name_ptr: name.as_ptr() as u64, name_len: 1, ..Default::default() };
    let good_params_ptr = &good_params as *const _ as u64;
    let many_grants = libos::abi::SpawnParams { grants_len: 1000, ..Default::default() };
    let many_grants_ptr = &many_grants as *const _ as u64;
    let bad_handle_list = [BAD as u32];
    let ev_list = [ev as u32];

    let mut cases: Vec<(Syscall, [u64; 6], Error)> = Vec::new();
    let mut c = |s, a: &[u64], e| {
        let mut args = [0u64; 6];
        args[..a.len()].copy_from_slice(a);
        cases.push((s, args, e));
    };
    for &h in &bad_handles {
        c(HandleClose, &[h], InvalidHandle);
        c(HandleInfo, &[h], InvalidHandle);
        c(HandleDuplicate, &[h, 0], InvalidHandle);
        c(MemMap, &[SELF, h, 0, free_va, 1, 0], InvalidHandle);
        c(MemMap, &[h, mem, 0, free_va, 1, 0], InvalidHandle);
        c(MemUnmap, &[h, free_va, 1], InvalidHandle);
        c(MemPhys, &[h, 0], InvalidHandle);
        c(MemSize, &[h], InvalidHandle);
        c(MemDirty, &[h, free_va, 1, ptr], InvalidHandle);
        c(EventSignal, &[h, 1], InvalidHandle);
        c(LinkBind, &[h, ev, 1, 2], InvalidHandle);
        c(LinkSignal, &[h], InvalidHandle);
        c(LinkSend, &[h, ev, 0], InvalidHandle);
        c(LinkSend, &[link, h, 0], InvalidHandle);
        c(LinkRecv, &[h], InvalidHandle);
        c(ProcessSpawn, &[h, ptr, 72], InvalidHandle);
        c(ProcessStart, &[h], InvalidHandle);
        c(ProcessKill, &[h], InvalidHandle);
        c(ProcessInfo, &[h, ptr], InvalidHandle);
        c(ProcessWatch, &[h, ev, 1], InvalidHandle);
        c(ProcessMapChild, &[h, free_va, 1, free_va, 0], InvalidHandle);
        c(ProcessOpen, &[h, 1], InvalidHandle);
        c(ProcessList, &[h, ptr, 1], InvalidHandle);
        c(ResourceDerive, &[h, 1, 0x60, 1], InvalidHandle);
        c(IoPortRead, &[h, 0x60, 1], InvalidHandle);
        c(IoPortWrite, &[h, 0x60, 1, 0], InvalidHandle);
        c(MmioMap, &[h, 0xfee0_0000, 1, free_va], InvalidHandle);
        c(IrqBind, &[h, ev, 1], InvalidHandle);
        c(IrqAck, &[h], InvalidHandle);
        c(ConsoleRead, &[h, ptr, 10], InvalidHandle);
        c(ConsoleBind, &[h, ev, 1], InvalidHandle);
        c(SystemPower, &[h, 0], InvalidHandle);
        c(PciConfigRead, &[h, 0, 0, 4], InvalidHandle);
        c(PciConfigWrite, &[h, 0, 0, 4, 0], InvalidHandle);
        c(IrqMsiMessage, &[h], InvalidHandle);
    }
    // Handles of the wrong kind.
    for (s, a) in [
        (MemMap, [SELF, ev, 0, free_va, 1, 0]),
        (MemPhys, [ev, 0, 0, 0, 0, 0]),
        (MemSize, [ev, 0, 0, 0, 0, 0]),
        (EventSignal, [mem, 1, 0, 0, 0, 0]),
        (LinkBind, [ev, ev, 1, 2, 0, 0]),
        (LinkBind, [link, mem, 1, 2, 0, 0]),
        (LinkSignal, [ev, 0, 0, 0, 0, 0]),
        (ProcessKill, [ev, 0, 0, 0, 0, 0]),
        (ProcessOpen, [ev, 1, 0, 0, 0, 0]),
        (ResourceDerive, [mem, 1, 0x60, 1, 0, 0]),
        (SystemPower, [ev, 0, 0, 0, 0, 0]),
        (IoPortRead, [ev, 0x60, 1, 0, 0, 0]),
        (ConsoleBind, [link, ev, 1, 0, 0, 0]),
        (PciConfigRead, [ev, 0, 0, 4, 0, 0]),
        (IrqMsiMessage, [mem, 0, 0, 0, 0, 0]),
    ] {
        c(s, &a, WrongType);
    }
    // Bad pointers and lengths.
    for p in [KERNEL, NONCANON, UNMAPPED, u64::MAX - 8] {
        c(DebugWrite, &[p, 16], BadAddress);
        c(ProcessInfo, &[SELF, p], BadAddress);
        c(SystemInfo, &[p], BadAddress);
        c(EventWait, &[p, 1, 0], BadAddress);
        c(MemDirty, &[SELF, code, 1, p], BadAddress);
        c(ProcessSpawn, &[image, p, 72], BadAddress);
    }
    c(ProcessInfo, &[SELF, ro], BadAddress);
    c(SystemInfo, &[ro], BadAddress);
    c(MemDirty, &[SELF, code, 1, ro], BadAddress);
    c(DebugWrite, &[ptr, 1 << 40], TooLarge);
    c(DebugWrite, &[ptr, u64::MAX], TooLarge);
    c(ProcessSpawn, &[image, spawn_params_ptr, 72], BadAddress);
    c(ProcessSpawn, &[image, many_grants_ptr, 72], TooLarge);
    c(ProcessSpawn, &[image, ptr, 3], InvalidArgument);
    c(ProcessSpawn, &[image, good_params_ptr, 72], BadImage);
    c(ProcessSpawn, &[mem, good_params_ptr, 72], BadImage);
    // Bad sizes, addresses, flags.
    c(MemAlloc, &[0, 0], InvalidArgument);
    c(MemAlloc, &[1 << 40, 0], TooLarge);
    c(MemAlloc, &[u64::MAX, 0], TooLarge);
    c(MemAlloc, &[1, 0xff], InvalidArgument);
    c(MemMap, &[SELF, mem, 0, KERNEL, 1, 0], InvalidArgument);
    c(MemMap, &[SELF, mem, 0, free_va + 1, 1, 0], InvalidArgument);
    c(MemMap, &[SELF, mem, 0, 0, 1, 0], InvalidArgument);
    c(MemMap, &[SELF, mem, 5, free_va, 1, 0], InvalidArgument);
    c(MemMap, &[SELF, mem, u64::MAX, free_va, 2, 0], InvalidArgument);
    c(MemMap, &[SELF, mem, 0, free_va, 1 << 40, 0], InvalidArgument);
    c(MemMap, &[SELF, mem, 0, free_va, 1, 0xff], InvalidArgument);
    c(MemMap, &[SELF, mem, 0, code, 1, 0], AlreadyExists);
    c(MemUnmap, &[SELF, KERNEL, 1], InvalidArgument);
    c(MemUnmap, &[SELF, free_va, 0], InvalidArgument);
    c(MemUnmap, &[SELF, 0x1001, 1], InvalidArgument);
    c(MemUnmap, &[SELF, !0xfff, 2], InvalidArgument);
    c(MemPhys, &[mem, 99], InvalidArgument);
    c(MemDirty, &[SELF, code, 1 << 40, ptr], TooLarge);
    c(MemDirty, &[SELF, KERNEL, 1, ptr], InvalidArgument);
    c(EventWait, &[ptr, 0, 0], InvalidArgument);
    c(EventWait, &[ptr, 100_000, 0], InvalidArgument);
    c(EventWait, &[bad_handle_list.as_ptr() as u64, 1, 0], InvalidHandle);
    c(EventWait, &[ev_list.as_ptr() as u64, 1, 0], TimedOut);
    c(EventWait, &[ev_list.as_ptr() as u64, 1, 1000], TimedOut);
    c(LinkSend, &[link, link, 0xffff_ffff], InvalidArgument);
    c(LinkRecv, &[link], WouldBlock);
    c(HandleDuplicate, &[ev, 1 << 7], AccessDenied);
    c(HandleDuplicate, &[ev, 0xffff_ffff], InvalidArgument);
    c(ProcessStart, &[SELF], InvalidArgument);
    c(ProcessMapChild, &[SELF, KERNEL, 1, free_va, 0], InvalidArgument);
    c(ProcessMapChild, &[SELF, UNMAPPED, 1, free_va, 0], NotFound);
    c(ProcessMapChild, &[SELF, code, 1, free_va, 1], AccessDenied);
    c(ProcessMapChild, &[SELF, code, 1, free_va, 2], InvalidArgument);
    // Signal and wait: both handles checked before anything happens.
    c(LinkSignalWait, &[0, ev, 0], InvalidHandle);
    c(LinkSignalWait, &[ev, ev, 0], WrongType);
    c(LinkSignalWait, &[link, 0xdead_beef, 0], InvalidHandle);
    c(LinkSignalWait, &[link, link, 0], WrongType);
    c(LinkSignalWait, &[link, ev, 0, ptr, 256], InvalidArgument);
    c(LinkSignalWait, &[link, ev, 0, KERNEL, 1], BadAddress);
    // The profiler is off unless the kernel was booted with `profile`.
    c(Profile, &[0], Unsupported);
    c(Profile, &[1], Unsupported);
    // Unknown system call numbers.
    for n in [7u64, 55, 60, 1000, 1 << 32, u64::MAX] {
        cases.push((DebugWrite, [n, 0, 0, 0, 0, 0], InvalidSyscall));
    }

    let total = cases.len();
    let mut wrong = 0;
    for (i, (s, args, want)) in cases.iter().enumerate() {
        let unknown = *want == InvalidSyscall;
        let (nr, a) = if unknown { (args[0] as usize, [0; 6]) } else { (*s as usize, *args) };
        // SAFETY: every call here is one the kernel must refuse; none of them
        // maps or unmaps memory this program uses.
        let (rax, _) = unsafe { raw::syscall6(nr, a) };
        let got = Error::check(rax);
        if got != Err(*want) {
            wrong += 1;
            println!("badsyscalls: case {i}: {s:?} {a:x?} returned {got:?}, expected {want:?}");
        }
    }
    // Still alive and the kernel still answers.
    let alive = sys::clock_now() > 0 && sys::mem_size(Handle(mem as u32)) == Ok(2);
    let _ = MapFlags::empty();
    if wrong == 0 && alive {
        println!("badsyscalls: {total} calls with bad arguments, each refused with the expected error");
        0
    } else {
        println!("badsyscalls: {wrong} of {total} calls answered wrongly");
        1
    }
}
