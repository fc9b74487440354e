//! The Kintsugi syscall ABI: the one contract between the exokernel and every
//! user program.
//!
//! Both the kernel and `libos` import this crate and nothing else of each
//! other, so the two can never disagree about a number, a layout or a right.
//!
//! # Calling convention
//! A program executes `syscall` with the call number ([`Syscall`]) in `rax`
//! and up to six arguments in `rdi, rsi, rdx, r10, r8, r9`. On return `rax`
//! holds a value `>= 0` on success or `-(error code)` on failure (see
//! [`Error`]); calls that produce two values put the second in `rdx`. `rcx`
//! and `r11` are clobbered by the instruction itself; every other register is
//! preserved.
//!
//! # Handles and rights
//! Every kernel object is reached through a [`Handle`] in the caller's handle
//! table. A handle carries [`Rights`]; a call checks the rights it needs and
//! fails with [`Error::AccessDenied`] otherwise. Handles can be duplicated
//! with fewer rights, moved to another process through a link, or given to a
//! child at spawn.
#![no_std]
#![deny(missing_docs)]

pub mod console;
pub mod layout;
pub mod types;

pub use console::*;
pub use layout::*;
pub use types::*;

/// System call numbers. Arguments are listed as `(arg0, arg1, ...)`, in
/// register order; "->" gives the value returned in `rax` (and `rdx`).
#[repr(usize)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syscall {
    /// `(ptr, len) -> 0`: write `len` bytes at `ptr` to the debug console, as
    /// one unit (no interleaving with other writers). Errors: `BadAddress` if
    /// the buffer is not readable user memory, `TooLarge` over
    /// [`MAX_DEBUG_WRITE`] bytes.
    DebugWrite = 0,
    /// `(code) -> never returns`: end the calling process with an exit code
    /// that the holders of its process handle read through `ProcessInfo`.
    Exit = 1,
    /// `() -> 0`: give the rest of the time slice to other runnable programs.
    Yield = 2,
    /// `() -> ns`: nanoseconds since boot on the monotonic clock.
    ClockNow = 3,

    /// `(handle) -> 0`: remove a handle from the caller's table; the object
    /// lives on while other handles or mappings refer to it. Errors:
    /// `InvalidHandle`.
    HandleClose = 4,
    /// `(handle, rights) -> new handle`: a second handle to the same object
    /// with `rights` (which must be a subset of the original's). Errors:
    /// `InvalidHandle`, `AccessDenied` (no `DUPLICATE` right or rights not a
    /// subset), `LimitReached` (handle table full).
    HandleDuplicate = 5,
    /// `(handle) -> (kind << 32) | rights`: what a handle refers to
    /// ([`ObjectKind`]) and the rights it carries. Errors: `InvalidHandle`.
    HandleInfo = 6,

    /// `(pages, flags) -> handle`: allocate a memory object of `pages` zeroed
    /// 4 KiB frames ([`MemFlags`]: physically contiguous, below 4 GiB for
    /// DMA). The frames are charged to the caller's page limit (as are the
    /// page-table pages its mappings need). Errors:
    /// `InvalidArgument` (0 pages or unknown flags), `TooLarge`,
    /// `OutOfMemory`, `LimitReached`.
    MemAlloc = 8,
    /// `(process, memory, first_page, vaddr, pages, flags) -> 0`: map `pages`
    /// frames of `memory` starting at `first_page` at user address `vaddr` in
    /// `process` ([`Handle::SELF`] for the caller; another process needs the
    /// `MAP` right on its handle). [`MapFlags`] ask for write or execute
    /// access, which the memory handle's rights must allow (`WRITE`,
    /// `EXECUTE`; mapping at all needs `MAP`). Errors: `InvalidArgument`
    /// (unaligned, outside user space, range outside the object),
    /// `AlreadyExists` (a page in the range is mapped), `AccessDenied`,
    /// `OutOfMemory` (page tables).
    MemMap = 9,
    /// `(process, vaddr, pages) -> pages unmapped`: remove the mappings in the
    /// range; pages that were not mapped are skipped. Errors:
    /// `InvalidArgument` (unaligned or outside user space), `AccessDenied`.
    MemUnmap = 10,
    /// `(memory, page_index) -> physical address`: the physical address of
    /// one frame of a memory object, for DMA. Needs the `PHYS` right.
    /// Errors: `InvalidArgument` (index out of range), `AccessDenied`.
    MemPhys = 11,
    /// `(memory) -> pages`: the size of a memory object in pages.
    MemSize = 12,
    /// `(process, vaddr, pages, bitmap_ptr) -> dirty pages`: read and clear
    /// the dirty bits of a mapped range of `process` (the caller or a child
    /// whose handle has `MAP`), writing one bit per page (LSB first) into
    /// `(pages + 7) / 8` bytes at `bitmap_ptr`. Unmapped pages read as
    /// clean. Errors: `InvalidArgument`, `BadAddress`, `TooLarge` (over
    /// [`MAX_DIRTY_PAGES`]).
    MemDirty = 13,

    /// `() -> handle`: a new event (a 64-bit signal word) with rights
    /// `SIGNAL | WAIT | DUPLICATE | TRANSFER`. Errors: `OutOfMemory`,
    /// `LimitReached`.
    EventCreate = 16,
    /// `(event, bits) -> 0`: OR `bits` into the event's word and wake its
    /// waiters. Needs `SIGNAL`.
    EventSignal = 17,
    /// `(handles_ptr, count, timeout_ns) -> (index, bits)`: wait until one of
    /// `count` events (an array of `u32` handles, each with `WAIT`) has bits
    /// set, then atomically take (read and clear) that event's word. Returns
    /// the array index in `rax` and the bits in `rdx`. `timeout_ns` 0 polls;
    /// `u64::MAX` waits forever. Errors: `TimedOut`, `InvalidArgument`
    /// (count 0 or over [`MAX_WAIT_HANDLES`]), `BadAddress`, handle errors.
    EventWait = 18,

    /// `() -> (end0, end1)`: a new link, a pair of peered kernel endpoints
    /// that carry handles between processes and signal each other. Each end
    /// has rights `SIGNAL | READ | WRITE | TRANSFER | DUPLICATE`. The data
    /// of a channel travels through shared memory, not through the link.
    LinkCreate = 20,
    /// `(link, event, signal_bits, closed_bits) -> 0`: when the peer end
    /// calls `LinkSignal`, `signal_bits` are set on `event`; when the last
    /// handle to the peer end is closed (or its process dies) `closed_bits`
    /// are set. Needs `WAIT` on the event. If the peer is already closed,
    /// `closed_bits` are set at once.
    LinkBind = 21,
    /// `(link) -> 0`: set the signal bits on the event bound to the peer end.
    /// Needs `SIGNAL`. Errors: `PeerClosed`.
    LinkSignal = 22,
    /// `(link, handle, rights) -> 0`: move `handle` (which needs `TRANSFER`)
    /// out of the caller's table into the peer end's queue, keeping only
    /// `rights` (a subset). Needs `WRITE` on the link. On error the handle
    /// stays with the caller. Errors: `PeerClosed`, `LimitReached` (queue
    /// holds [`MAX_LINK_QUEUE`] handles), `InvalidArgument` (sending a link
    /// end through itself or its peer).
    LinkSend = 23,
    /// `(link) -> handle`: take the oldest handle queued for this end into
    /// the caller's table. Needs `READ`. Errors: `WouldBlock` (queue empty),
    /// `LimitReached` (caller's table full; the handle stays queued).
    LinkRecv = 24,

    /// `(image, params_ptr, params_len) -> process handle`: create a process
    /// from the ELF executable in the memory object `image` (which must be
    /// physically contiguous and readable), as described by a
    /// [`SpawnParams`]. The child starts at once unless `SUSPENDED` is
    /// given. The returned handle has all process rights. Errors:
    /// `BadImage` (not a valid static x86_64 ELF for user space),
    /// `InvalidArgument`, `BadAddress`, `OutOfMemory`, `LimitReached`.
    ProcessSpawn = 28,
    /// `(process) -> 0`: start a process created with `SUSPENDED`. Needs
    /// `START`. Errors: `InvalidArgument` (already started), `ProcessDead`.
    ProcessStart = 29,
    /// `(process) -> 0`: end a process at once (state `Killed`). Needs
    /// `KILL`. Killing an ended process is not an error.
    ProcessKill = 30,
    /// `(process, out_ptr) -> 0`: write the process's [`ProcessInfo`] to
    /// `out_ptr`. Needs `INFO`.
    ProcessInfo = 31,
    /// `(process, event, bits) -> 0`: set `bits` on `event` when the process
    /// ends (at once if it already has). Needs `INFO` on the process and
    /// `WAIT` on the event. Errors: `LimitReached` (256 watches already).
    ProcessWatch = 32,
    /// `(process, child_vaddr, pages, my_vaddr, flags) -> 0`: map the frames
    /// behind `pages` pages of the child at `child_vaddr` into the caller at
    /// `my_vaddr` (shared, not copied), for a supervisor that snapshots or
    /// restores a child. Needs `MAP`. Every page in the range must be
    /// mapped in the child. Errors: `NotFound` (a child page is not
    /// mapped), `AlreadyExists`, `InvalidArgument`, `AccessDenied` (write
    /// asked where the child's page is read-only), `ProcessDead`.
    ProcessMapChild = 33,
    /// `(root, pid) -> process handle`: a handle with all rights to any live
    /// process, for the holder of the root resource. Errors: `NotFound`.
    ProcessOpen = 34,
    /// `(root, out_ptr, max) -> total`: write up to `max` [`ProcessInfo`]
    /// records, one per live process, to `out_ptr`, returning how many
    /// processes there are. Needs the root resource.
    ProcessList = 35,

    /// `(resource, kind, base, len) -> handle`: derive a narrower device
    /// resource ([`ResourceKind`]): I/O ports `base..base+len`, MMIO
    /// physical range, an interrupt line (`base` = GSI, `len` = [`IrqFlags`])
    /// or the console. Only the root resource derives; the kernel refuses
    /// ranges it uses itself and MMIO over ordinary RAM. Deriving `Msi`
    /// allocates an interrupt vector (`LimitReached` when none is left).
    /// Needs `DERIVE`.
    ResourceDerive = 40,
    /// `(ports, port, width) -> value`: read an I/O port (width 1, 2 or 4)
    /// inside the resource's range. Errors: `AccessDenied` outside it.
    IoPortRead = 41,
    /// `(ports, port, width, value) -> 0`: write an I/O port inside the
    /// resource's range.
    IoPortWrite = 42,
    /// `(mmio, phys, pages, vaddr) -> 0`: map device memory inside the
    /// resource's range at `vaddr`, uncached and writable.
    MmioMap = 43,
    /// `(irq, event, bits) -> 0`: deliver the interrupt line (an `Irq` or
    /// `Msi` resource) to `event` as `bits`. An `Irq` line is masked when it
    /// fires until `IrqAck`; an `Msi` vector is edge-triggered and needs no
    /// acknowledgement.
    IrqBind = 44,
    /// `(irq) -> 0`: unmask the line after the device has been serviced.
    IrqAck = 45,
    /// `(console, buf, len) -> bytes`: take up to `len` bytes typed on the
    /// serial console (0 if none are waiting).
    ConsoleRead = 46,
    /// `(console, event, bits) -> 0`: set `bits` on `event` whenever console
    /// input arrives.
    ConsoleBind = 47,
    /// `(root, action) -> never returns on success`: power the machine off
    /// (`action` 0) or reset it (`action` 1). Needs the root resource.
    SystemPower = 48,
    /// `(out_ptr) -> 0`: write a [`SystemInfo`] (memory, processes, uptime,
    /// kernel heap in use) to `out_ptr`. Errors: `BadAddress`.
    SystemInfo = 49,
    /// `(pci, function, offset, width) -> value`: read the configuration
    /// space of a PCI function inside the resource's range (`offset` below
    /// 256, aligned to `width` of 1, 2 or 4). Errors: `AccessDenied`
    /// outside the range, `InvalidArgument`.
    PciConfigRead = 50,
    /// `(pci, function, offset, width, value) -> 0`: write it.
    PciConfigWrite = 51,
    /// `(msi) -> (address, data)`: the message a device must write to raise
    /// the resource's interrupt vector (program it into the device's MSI or
    /// MSI-X capability). Errors: `WrongType`.
    IrqMsiMessage = 52,
    /// `(console, op, a, b, c) -> value(s)`: the console beyond typed input:
    /// its log (every record written to it, with the writer), the screen
    /// the boot loader handed over, input from a keyboard driver, and
    /// holding back output while a line is being typed. `op` is a
    /// [`ConsoleOp`], which gives the arguments and results. Needs a
    /// `Console` resource. Errors: `InvalidArgument` (unknown op), `BadAddress`,
    /// `TooLarge`, `LimitReached`.
    Console = 56,
    /// `(action) -> value`: the sampling profiler, which exists only when
    /// the kernel command line says `profile[=HZ]`. Action 0 starts
    /// sampling (clearing earlier samples) and returns the rate; action 1
    /// stops it and writes the samples to the serial console (between
    /// `PROFILE begin` and `PROFILE end` lines: process names, then each
    /// distinct stack with its count), returning how many were taken. No
    /// sample is given to the caller, so the call needs no right. Errors:
    /// `Unsupported` (profiling not enabled at boot), `InvalidArgument`.
    Profile = 53,
    /// `(link, event, timeout_ns, more_ptr, more_count) -> (index, bits)`:
    /// signal the peer of `link` (as `LinkSignal`), then wait (as
    /// `EventWait`) on `event` (index 0) and on `more_count` further events
    /// whose `u32` handles are at `more_ptr` (indices 1 and up), in one
    /// kernel entry: a request and the wait for its answer, or a reply and
    /// the wait for the next request. The common case, one event, reads no
    /// user memory. Every handle is checked before anything happens; if the
    /// signal fails (`PeerClosed`) nothing is waited for. Errors: those of
    /// `LinkSignal` and `EventWait` (`InvalidArgument` when `1 +
    /// more_count` exceeds [`MAX_WAIT_HANDLES`]).
    LinkSignalWait = 54,
}

impl Syscall {
    /// The call with this number, if there is one.
    pub fn from_number(n: usize) -> Option<Syscall> {
        use Syscall::*;
        Some(match n {
            0 => DebugWrite,
            1 => Exit,
            2 => Yield,
            3 => ClockNow,
            4 => HandleClose,
            5 => HandleDuplicate,
            6 => HandleInfo,
            8 => MemAlloc,
            9 => MemMap,
            10 => MemUnmap,
            11 => MemPhys,
            12 => MemSize,
            13 => MemDirty,
            16 => EventCreate,
            17 => EventSignal,
            18 => EventWait,
            20 => LinkCreate,
            21 => LinkBind,
            22 => LinkSignal,
            23 => LinkSend,
            24 => LinkRecv,
            28 => ProcessSpawn,
            29 => ProcessStart,
            30 => ProcessKill,
            31 => ProcessInfo,
            32 => ProcessWatch,
            33 => ProcessMapChild,
            34 => ProcessOpen,
            35 => ProcessList,
            40 => ResourceDerive,
            41 => IoPortRead,
            42 => IoPortWrite,
            43 => MmioMap,
            44 => IrqBind,
            45 => IrqAck,
            46 => ConsoleRead,
            47 => ConsoleBind,
            48 => SystemPower,
            49 => SystemInfo,
            50 => PciConfigRead,
            51 => PciConfigWrite,
            52 => IrqMsiMessage,
            56 => Console,
            53 => Profile,
            54 => LinkSignalWait,
            _ => return None,
        })
    }
}

/// Error codes, returned negated in `rax`.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// No system call has this number.
    InvalidSyscall = 1,
    /// The handle is not in the caller's table (closed, stale or garbage).
    InvalidHandle = 2,
    /// The handle refers to another kind of object than the call needs.
    WrongType = 3,
    /// The handle lacks a right the call needs, or the range is not the
    /// caller's to use.
    AccessDenied = 4,
    /// An argument is out of range, unaligned or inconsistent.
    InvalidArgument = 5,
    /// A pointer argument does not name user memory with the needed access.
    BadAddress = 6,
    /// No physical memory (or kernel memory) is left for the request.
    OutOfMemory = 7,
    /// The named thing does not exist.
    NotFound = 8,
    /// The wait ended before any event fired.
    TimedOut = 9,
    /// Something is already there (a mapping, a binding).
    AlreadyExists = 10,
    /// Nothing is ready now; try again after a wake-up.
    WouldBlock = 11,
    /// The other end of a link is gone.
    PeerClosed = 12,
    /// The process has ended.
    ProcessDead = 13,
    /// A size exceeds what the call accepts.
    TooLarge = 14,
    /// The image is not a loadable user ELF executable.
    BadImage = 15,
    /// A per-process or system limit (handles, pages, processes) is reached.
    LimitReached = 16,
    /// The machine or kernel lacks the feature.
    Unsupported = 17,
}

impl Error {
    /// The error with this code, if there is one.
    pub fn from_code(code: i32) -> Option<Error> {
        use Error::*;
        const ALL: &[Error] = &[
            InvalidSyscall,
            InvalidHandle,
            WrongType,
            AccessDenied,
            InvalidArgument,
            BadAddress,
            OutOfMemory,
            NotFound,
            TimedOut,
            AlreadyExists,
            WouldBlock,
            PeerClosed,
            ProcessDead,
            TooLarge,
            BadImage,
            LimitReached,
            Unsupported,
        ];
        ALL.iter().copied().find(|e| *e as i32 == code)
    }

    /// Decode a raw `rax` value: `Ok(value)` when non-negative.
    pub fn check(raw: isize) -> Result<usize, Error> {
        if raw >= 0 {
            Ok(raw as usize)
        } else {
            Err(raw
                .checked_neg()
                .and_then(|c| i32::try_from(c).ok())
                .and_then(Error::from_code)
                .unwrap_or(Error::InvalidSyscall))
        }
    }

    /// The value to return in `rax` for this error.
    pub fn to_raw(self) -> isize {
        -(self as i32 as isize)
    }

    /// A short lowercase description, for logs and shells.
    pub fn as_str(self) -> &'static str {
        use Error::*;
        match self {
            InvalidSyscall => "invalid syscall",
            InvalidHandle => "invalid handle",
            WrongType => "wrong object type",
            AccessDenied => "access denied",
            InvalidArgument => "invalid argument",
            BadAddress => "bad address",
            OutOfMemory => "out of memory",
            NotFound => "not found",
            TimedOut => "timed out",
            AlreadyExists => "already exists",
            WouldBlock => "would block",
            PeerClosed => "peer closed",
            ProcessDead => "process dead",
            TooLarge => "too large",
            BadImage => "bad image",
            LimitReached => "limit reached",
            Unsupported => "unsupported",
        }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscall_numbers_round_trip() {
        for n in 0..64 {
            if let Some(s) = Syscall::from_number(n) {
                assert_eq!(s as usize, n);
            }
        }
        assert_eq!(Syscall::from_number(49), Some(Syscall::SystemInfo));
        assert_eq!(Syscall::from_number(7), None);
        assert_eq!((0..64).filter_map(Syscall::from_number).count(), 45, "every call has a number");
    }

    #[test]
    fn errors_round_trip_through_raw() {
        for code in 1..=17 {
            let e = Error::from_code(code).unwrap();
            assert_eq!(Error::check(e.to_raw()), Err(e));
        }
        assert_eq!(Error::check(5), Ok(5));
        assert_eq!(Error::check(-1000), Err(Error::InvalidSyscall));
        assert_eq!(Error::check(isize::MIN), Err(Error::InvalidSyscall));
    }
}
