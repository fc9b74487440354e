//! Thin wrappers over every system call: one function per call, typed
//! arguments, `Result` for errors. See `kintsugi_abi::Syscall` for what each
//! call does. Higher-level code uses the owning wrappers in `handle`.

use kintsugi_abi::{
    ConsoleOp, DisplayInfo, Error, Handle, MapFlags, MemFlags, ProcessInfo, ResourceKind, Rights, SpawnParams, Syscall,
    SystemInfo,
};

/// Raw `syscall` instruction access.
pub mod raw {
    #[cfg(not(target_os = "none"))]
    use kintsugi_abi::Error;

    /// Make system call `nr` with six arguments; returns `(rax, rdx)`.
    ///
    /// # Safety
    /// Calls that unmap or overwrite the caller's memory can invalidate Rust
    /// references; the caller must know what the arguments do.
    #[inline(always)]
    pub unsafe fn syscall6(nr: usize, a: [u64; 6]) -> (isize, u64) {
        // Host builds (unit tests) have no Kintsugi kernel underneath.
        #[cfg(not(target_os = "none"))]
        {
            let _ = (nr, a);
            (Error::Unsupported.to_raw(), 0)
        }
        #[cfg(target_os = "none")]
        // SAFETY: the syscall instruction clobbers rcx and r11 only; the
        // kernel preserves every other register (see the ABI crate).
        unsafe {
            let rax: isize;
            let rdx: u64;
            core::arch::asm!(
                "syscall",
                inlateout("rax") nr as isize => rax,
                in("rdi") a[0],
                in("rsi") a[1],
                inlateout("rdx") a[2] => rdx,
                in("r10") a[3],
                in("r8") a[4],
                in("r9") a[5],
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
            (rax, rdx)
        }
    }
}

#[inline(always)]
fn call(nr: Syscall, a: [u64; 6]) -> Result<u64, Error> {
    // SAFETY: every call routed through here passes pointers to live Rust
    // objects of the right size, or none.
    let (rax, _) = unsafe { raw::syscall6(nr as usize, a) };
    Error::check(rax).map(|v| v as u64)
}

#[inline(always)]
fn call2(nr: Syscall, a: [u64; 6]) -> Result<(u64, u64), Error> {
    // SAFETY: as in `call`.
    let (rax, rdx) = unsafe { raw::syscall6(nr as usize, a) };
    Error::check(rax).map(|v| (v as u64, rdx))
}

fn h(handle: Handle) -> u64 {
    handle.raw() as u64
}

/// Write bytes to the debug console.
pub fn debug_write(bytes: &[u8]) -> Result<(), Error> {
    call(Syscall::DebugWrite, [bytes.as_ptr() as u64, bytes.len() as u64, 0, 0, 0, 0]).map(|_| ())
}

/// End the process.
pub fn exit(code: i32) -> ! {
    let _ = call(Syscall::Exit, [code as u32 as u64, 0, 0, 0, 0, 0]);
    unreachable!("exit returned")
}

/// End the process with a page fault, as a deliberate crash does: a write
/// to `addr` within the first page of the address space, which is never
/// mapped. The kernel ends the process and reports the fault (unlike
/// [`exit`]).
pub fn fault(addr: u64) -> ! {
    let at = (addr % kintsugi_abi::PAGE_SIZE) as *mut u64;
    // SAFETY: the first page is never mapped in any process, so the write
    // touches no memory: the CPU faults and the kernel ends the process.
    unsafe { at.write_volatile(0xbad) };
    exit(3)
}

/// Give up the CPU.
pub fn yield_now() {
    let _ = call(Syscall::Yield, [0; 6]);
}

/// Nanoseconds since boot.
pub fn clock_now() -> u64 {
    call(Syscall::ClockNow, [0; 6]).unwrap_or(0)
}

/// Close a handle.
pub fn handle_close(handle: Handle) -> Result<(), Error> {
    call(Syscall::HandleClose, [h(handle), 0, 0, 0, 0, 0]).map(|_| ())
}

/// Duplicate a handle with fewer rights.
pub fn handle_duplicate(handle: Handle, rights: Rights) -> Result<Handle, Error> {
    call(Syscall::HandleDuplicate, [h(handle), rights.bits() as u64, 0, 0, 0, 0]).map(|v| Handle(v as u32))
}

/// The kind and rights of a handle.
pub fn handle_info(handle: Handle) -> Result<(u32, Rights), Error> {
    call(Syscall::HandleInfo, [h(handle), 0, 0, 0, 0, 0])
        .map(|v| ((v >> 32) as u32, Rights::from_bits_truncate(v as u32)))
}

/// Allocate a memory object.
pub fn mem_alloc(pages: u64, flags: MemFlags) -> Result<Handle, Error> {
    call(Syscall::MemAlloc, [pages, flags.bits(), 0, 0, 0, 0]).map(|v| Handle(v as u32))
}

/// Map pages of a memory object into a process.
pub fn mem_map(
    process: Handle,
    memory: Handle,
    first_page: u64,
    vaddr: u64,
    pages: u64,
    flags: MapFlags,
) -> Result<(), Error> {
    call(Syscall::MemMap, [h(process), h(memory), first_page, vaddr, pages, flags.bits()]).map(|_| ())
}

/// Unmap pages of a process.
///
/// # Safety
/// When `process` is the caller, nothing may still refer to the range.
pub unsafe fn mem_unmap(process: Handle, vaddr: u64, pages: u64) -> Result<u64, Error> {
    call(Syscall::MemUnmap, [h(process), vaddr, pages, 0, 0, 0])
}

/// Physical address of a page of a memory object.
pub fn mem_phys(memory: Handle, page: u64) -> Result<u64, Error> {
    call(Syscall::MemPhys, [h(memory), page, 0, 0, 0, 0])
}

/// Size of a memory object in pages.
pub fn mem_size(memory: Handle) -> Result<u64, Error> {
    call(Syscall::MemSize, [h(memory), 0, 0, 0, 0, 0])
}

/// Read and clear dirty bits of a range into `bitmap` (one bit per page).
pub fn mem_dirty(process: Handle, vaddr: u64, pages: u64, bitmap: &mut [u8]) -> Result<u64, Error> {
    if (bitmap.len() as u64) < pages.div_ceil(8) {
        return Err(Error::InvalidArgument);
    }
    call(Syscall::MemDirty, [h(process), vaddr, pages, bitmap.as_mut_ptr() as u64, 0, 0])
}

/// Create an event.
pub fn event_create() -> Result<Handle, Error> {
    call(Syscall::EventCreate, [0; 6]).map(|v| Handle(v as u32))
}

/// Signal an event.
pub fn event_signal(event: Handle, bits: u64) -> Result<(), Error> {
    call(Syscall::EventSignal, [h(event), bits, 0, 0, 0, 0]).map(|_| ())
}

/// Wait for any of `events`; returns the index and the bits taken.
pub fn event_wait(events: &[Handle], timeout_ns: u64) -> Result<(usize, u64), Error> {
    call2(Syscall::EventWait, [events.as_ptr() as u64, events.len() as u64, timeout_ns, 0, 0, 0])
        .map(|(i, bits)| (i as usize, bits))
}

/// Create a link; its two ends.
pub fn link_create() -> Result<(Handle, Handle), Error> {
    call2(Syscall::LinkCreate, [0; 6]).map(|(a, b)| (Handle(a as u32), Handle(b as u32)))
}

/// Bind a link end to an event.
pub fn link_bind(link: Handle, event: Handle, signal_bits: u64, closed_bits: u64) -> Result<(), Error> {
    call(Syscall::LinkBind, [h(link), h(event), signal_bits, closed_bits, 0, 0]).map(|_| ())
}

/// Signal the peer of a link end.
pub fn link_signal(link: Handle) -> Result<(), Error> {
    call(Syscall::LinkSignal, [h(link), 0, 0, 0, 0, 0]).map(|_| ())
}

/// Signal the peer of a link end, then wait for `event` (the
/// `LinkSignalWait` call: one kernel entry for "send, then wait for the
/// answer"); returns the bits taken, like [`event_wait`] on one event.
/// [`crate::channel::Channel::call`] is built on it.
pub fn link_signal_wait(link: Handle, event: Handle, timeout_ns: u64) -> Result<u64, Error> {
    call2(Syscall::LinkSignalWait, [h(link), h(event), timeout_ns, 0, 0, 0]).map(|(_, bits)| bits)
}

/// Signal the peer of a link end, then wait for any of `events` (at least
/// one), like [`event_wait`]: the index and the bits taken.
/// [`crate::channel::select_waking`] is built on it.
pub fn link_signal_wait_any(link: Handle, events: &[Handle], timeout_ns: u64) -> Result<(usize, u64), Error> {
    let (first, more) = events.split_first().ok_or(Error::InvalidArgument)?;
    call2(Syscall::LinkSignalWait, [h(link), h(*first), timeout_ns, more.as_ptr() as u64, more.len() as u64, 0])
        .map(|(i, bits)| (i as usize, bits))
}

/// Move a handle to the peer of a link end.
pub fn link_send(link: Handle, handle: Handle, rights: Rights) -> Result<(), Error> {
    call(Syscall::LinkSend, [h(link), h(handle), rights.bits() as u64, 0, 0, 0]).map(|_| ())
}

/// Take a handle queued on a link end.
pub fn link_recv(link: Handle) -> Result<Handle, Error> {
    call(Syscall::LinkRecv, [h(link), 0, 0, 0, 0, 0]).map(|v| Handle(v as u32))
}

/// Spawn a process from an image.
pub fn process_spawn(image: Handle, params: &SpawnParams) -> Result<Handle, Error> {
    let size = core::mem::size_of::<SpawnParams>() as u64;
    call(Syscall::ProcessSpawn, [h(image), params as *const _ as u64, size, 0, 0, 0]).map(|v| Handle(v as u32))
}

/// Start a suspended process.
pub fn process_start(process: Handle) -> Result<(), Error> {
    call(Syscall::ProcessStart, [h(process), 0, 0, 0, 0, 0]).map(|_| ())
}

/// Kill a process.
pub fn process_kill(process: Handle) -> Result<(), Error> {
    call(Syscall::ProcessKill, [h(process), 0, 0, 0, 0, 0]).map(|_| ())
}

/// A process's status.
pub fn process_info(process: Handle) -> Result<ProcessInfo, Error> {
    let mut info = ProcessInfo::default();
    call(Syscall::ProcessInfo, [h(process), &mut info as *mut _ as u64, 0, 0, 0, 0])?;
    Ok(info)
}

/// Signal `event` with `bits` when the process ends.
pub fn process_watch(process: Handle, event: Handle, bits: u64) -> Result<(), Error> {
    call(Syscall::ProcessWatch, [h(process), h(event), bits, 0, 0, 0]).map(|_| ())
}

/// Map a child's pages into the caller.
pub fn process_map_child(process: Handle, child_va: u64, pages: u64, my_va: u64, flags: MapFlags) -> Result<(), Error> {
    call(Syscall::ProcessMapChild, [h(process), child_va, pages, my_va, flags.bits(), 0]).map(|_| ())
}

/// A handle to any process (root only).
pub fn process_open(root: Handle, pid: u32) -> Result<Handle, Error> {
    call(Syscall::ProcessOpen, [h(root), pid as u64, 0, 0, 0, 0]).map(|v| Handle(v as u32))
}

/// Every live process (root only); returns the total count.
pub fn process_list(root: Handle, out: &mut [ProcessInfo]) -> Result<usize, Error> {
    call(Syscall::ProcessList, [h(root), out.as_mut_ptr() as u64, out.len() as u64, 0, 0, 0]).map(|v| v as usize)
}

/// Derive a device resource from the root.
pub fn resource_derive(root: Handle, kind: ResourceKind, base: u64, len: u64) -> Result<Handle, Error> {
    call(Syscall::ResourceDerive, [h(root), kind as u64, base, len, 0, 0]).map(|v| Handle(v as u32))
}

/// Read an I/O port.
pub fn ioport_read(ports: Handle, port: u16, width: u8) -> Result<u32, Error> {
    call(Syscall::IoPortRead, [h(ports), port as u64, width as u64, 0, 0, 0]).map(|v| v as u32)
}

/// Write an I/O port.
pub fn ioport_write(ports: Handle, port: u16, width: u8, value: u32) -> Result<(), Error> {
    call(Syscall::IoPortWrite, [h(ports), port as u64, width as u64, value as u64, 0, 0]).map(|_| ())
}

/// Map device memory.
pub fn mmio_map(mmio: Handle, phys: u64, pages: u64, vaddr: u64) -> Result<(), Error> {
    call(Syscall::MmioMap, [h(mmio), phys, pages, vaddr, 0, 0]).map(|_| ())
}

/// Deliver an interrupt line to an event.
pub fn irq_bind(irq: Handle, event: Handle, bits: u64) -> Result<(), Error> {
    call(Syscall::IrqBind, [h(irq), h(event), bits, 0, 0, 0]).map(|_| ())
}

/// Unmask an interrupt line.
pub fn irq_ack(irq: Handle) -> Result<(), Error> {
    call(Syscall::IrqAck, [h(irq), 0, 0, 0, 0, 0]).map(|_| ())
}

/// Take typed console input.
pub fn console_read(console: Handle, buf: &mut [u8]) -> Result<usize, Error> {
    call(Syscall::ConsoleRead, [h(console), buf.as_mut_ptr() as u64, buf.len() as u64, 0, 0, 0]).map(|v| v as usize)
}

/// Signal `event` when console input arrives.
pub fn console_bind(console: Handle, event: Handle, bits: u64) -> Result<(), Error> {
    call(Syscall::ConsoleBind, [h(console), h(event), bits, 0, 0, 0]).map(|_| ())
}

/// Power off (`reset` false) or reset the machine.
pub fn system_power(root: Handle, reset: bool) -> Result<(), Error> {
    call(Syscall::SystemPower, [h(root), reset as u64, 0, 0, 0, 0]).map(|_| ())
}

/// Machine-wide figures.
pub fn system_info() -> Result<SystemInfo, Error> {
    let mut info = SystemInfo::default();
    call(Syscall::SystemInfo, [&mut info as *mut _ as u64, 0, 0, 0, 0, 0])?;
    Ok(info)
}

/// Read PCI configuration space of `function` (`bus << 8 | dev << 3 | fn`).
pub fn pci_config_read(pci: Handle, function: u32, offset: u16, width: u8) -> Result<u32, Error> {
    call(Syscall::PciConfigRead, [h(pci), function as u64, offset as u64, width as u64, 0, 0]).map(|v| v as u32)
}

/// Write PCI configuration space of `function`.
pub fn pci_config_write(pci: Handle, function: u32, offset: u16, width: u8, value: u32) -> Result<(), Error> {
    call(Syscall::PciConfigWrite, [h(pci), function as u64, offset as u64, width as u64, value as u64, 0]).map(|_| ())
}

/// Start the kernel's sampling profiler (returns its rate), if the kernel
/// was booted with `profile`.
pub fn profile_start() -> Result<u64, Error> {
    call(Syscall::Profile, [0, 0, 0, 0, 0, 0])
}

/// Stop the profiler and have the kernel write the samples to the console;
/// returns how many were taken.
pub fn profile_stop() -> Result<u64, Error> {
    call(Syscall::Profile, [1, 0, 0, 0, 0, 0])
}

/// The (address, data) message that raises an MSI vector.
pub fn irq_msi_message(msi: Handle) -> Result<(u64, u32), Error> {
    call2(Syscall::IrqMsiMessage, [h(msi), 0, 0, 0, 0, 0]).map(|(a, d)| (a, d as u32))
}

/// Copy console log records from `cursor` on into `buf`; returns the next
/// cursor and the bytes written (see [`ConsoleOp::LogRead`]).
pub fn console_log_read(console: Handle, cursor: u64, buf: &mut [u8]) -> Result<(u64, usize), Error> {
    call2(
        Syscall::Console,
        [h(console), ConsoleOp::LogRead as u64, cursor, buf.as_mut_ptr() as u64, buf.len() as u64, 0],
    )
    .map(|(next, n)| (next, n as usize))
}

/// Signal `event` with `bits` whenever a console log record is added.
pub fn console_log_watch(console: Handle, event: Handle, bits: u64) -> Result<(), Error> {
    call(Syscall::Console, [h(console), ConsoleOp::LogWatch as u64, h(event), bits, 0, 0]).map(|_| ())
}

/// The screen the boot loader handed over.
pub fn console_display(console: Handle) -> Result<DisplayInfo, Error> {
    let mut info = DisplayInfo::default();
    call(Syscall::Console, [h(console), ConsoleOp::DisplayInfo as u64, &mut info as *mut _ as u64, 0, 0, 0])?;
    Ok(info)
}

/// Draw the screen from now on (the kernel stops), as long as `event`
/// (one of this program's) lives.
pub fn console_claim_display(console: Handle, event: Handle) -> Result<(), Error> {
    call(Syscall::Console, [h(console), ConsoleOp::DisplayClaim as u64, h(event), 0, 0, 0]).map(|_| ())
}

/// Add bytes to the console's input, as if typed.
pub fn console_inject(console: Handle, bytes: &[u8]) -> Result<(), Error> {
    call(Syscall::Console, [h(console), ConsoleOp::InputInject as u64, bytes.as_ptr() as u64, bytes.len() as u64, 0, 0])
        .map(|_| ())
}

/// Write the echo of what was typed on the line this program holds
/// (`console_output_above`), after `redraw` if others' output cleared the
/// line since this program last wrote: one unit, so no output can come
/// between the check and the echo. Whether the redraw was written.
pub fn console_echo(console: Handle, echo: &[u8], redraw: &[u8]) -> Result<bool, Error> {
    let args = [echo.as_ptr() as u64, echo.len() as u64, redraw.as_ptr() as u64, redraw.len() as u64];
    call(Syscall::Console, [h(console), ConsoleOp::Echo as u64, args[0], args[1], args[2], args[3]]).map(|v| v != 0)
}

/// Have others' console output go above the line this program is typing
/// (signalling `event` with `bits` after it, to draw the line again), or
/// with `None` stop.
pub fn console_output_above(console: Handle, holder: Option<(Handle, u64)>) -> Result<(), Error> {
    let (event, bits) = holder.map(|(e, b)| (h(e), b)).unwrap_or((0, 0));
    call(Syscall::Console, [h(console), ConsoleOp::OutputAbove as u64, event, bits, 0, 0]).map(|_| ())
}
