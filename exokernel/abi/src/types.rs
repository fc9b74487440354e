//! Handles, rights, flags and the structures that cross the syscall boundary.
//!
//! Every structure is `#[repr(C)]` and derives zerocopy's traits, so the
//! kernel reads them from user memory as plain bytes and never trusts a
//! pointer inside them until it has checked it.

use bitflags::bitflags;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// A process's name for a kernel object: an index into its handle table plus
/// a generation, so a stale handle is refused instead of reaching the next
/// object stored in the same slot. Zero is never a valid handle.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Handle(pub u32);

impl Handle {
    /// Never a valid handle.
    pub const NULL: Handle = Handle(0);
    /// Stands for "the calling process" wherever a process handle is taken.
    pub const SELF: Handle = Handle(u32::MAX);

    /// The raw value.
    pub const fn raw(self) -> u32 {
        self.0
    }
}

/// What a handle refers to.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    /// A set of physical frames.
    Memory = 1,
    /// A 64-bit signal word.
    Event = 2,
    /// One end of a link.
    Link = 3,
    /// A process.
    Process = 4,
    /// A device resource (root, I/O ports, MMIO, IRQ, console).
    Resource = 5,
}

impl ObjectKind {
    /// The kind with this number.
    pub fn from_u32(v: u32) -> Option<ObjectKind> {
        match v {
            1 => Some(ObjectKind::Memory),
            2 => Some(ObjectKind::Event),
            3 => Some(ObjectKind::Link),
            4 => Some(ObjectKind::Process),
            5 => Some(ObjectKind::Resource),
            _ => None,
        }
    }
}

bitflags! {
    /// What a handle allows. The meaning of a right depends on the object:
    ///
    /// | right | memory | event | link | process | resource |
    /// |---|---|---|---|---|---|
    /// | READ | map readable, spawn from | | receive handles | | |
    /// | WRITE | map writable | | send handles | | |
    /// | EXECUTE | map executable | | | | |
    /// | MAP | map at all | | | map into / from it | |
    /// | PHYS | learn physical addresses | | | | |
    /// | SIGNAL | | signal | signal the peer | | |
    /// | WAIT | | wait, bind as target | | | |
    /// | KILL | | | | kill | |
    /// | INFO | | | | info, watch | |
    /// | START | | | | start a suspended one | |
    /// | DERIVE | | | | | derive narrower |
    /// | USE | | | | | port I/O, MMIO, IRQ, console |
    ///
    /// `DUPLICATE` and `TRANSFER` apply to every kind.
    #[repr(transparent)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Rights: u32 {
        /// Read (see the table).
        const READ = 1 << 0;
        /// Write (see the table).
        const WRITE = 1 << 1;
        /// Map executable.
        const EXECUTE = 1 << 2;
        /// Map.
        const MAP = 1 << 3;
        /// Learn physical addresses.
        const PHYS = 1 << 4;
        /// Signal.
        const SIGNAL = 1 << 5;
        /// Wait.
        const WAIT = 1 << 6;
        /// Kill a process.
        const KILL = 1 << 7;
        /// Read a process's info and watch for its end.
        const INFO = 1 << 8;
        /// Start a suspended process.
        const START = 1 << 9;
        /// Derive narrower resources.
        const DERIVE = 1 << 10;
        /// Use a device resource.
        const USE = 1 << 11;
        /// Make a second handle.
        const DUPLICATE = 1 << 12;
        /// Give the handle to another process.
        const TRANSFER = 1 << 13;
    }
}

bitflags! {
    /// Options of `MemAlloc`.
    #[repr(transparent)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct MemFlags: u64 {
        /// The frames are physically contiguous (needed for a spawn image
        /// and for DMA buffers that span pages).
        const CONTIGUOUS = 1 << 0;
        /// Every frame lies below 4 GiB (for devices with 32-bit DMA).
        const BELOW_4G = 1 << 1;
    }
}

bitflags! {
    /// Access of a mapping. Every mapping is readable and user-accessible.
    #[repr(transparent)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct MapFlags: u64 {
        /// Writable.
        const WRITE = 1 << 0;
        /// Executable.
        const EXECUTE = 1 << 1;
    }
}

bitflags! {
    /// Options of `ProcessSpawn`.
    #[repr(transparent)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct SpawnFlags: u64 {
        /// Create the process but do not run it until `ProcessStart`.
        const SUSPENDED = 1 << 0;
        /// Schedule the process in the service class ([`SchedClass::Service`]):
        /// it gets the CPU ahead of ordinary programs. Only a caller of the
        /// service class may ask for it (`AccessDenied` otherwise), so an
        /// ordinary program cannot raise itself through a child.
        const SERVICE = 1 << 1;
    }
}

/// How the scheduler treats a process (chosen at spawn, see
/// [`SpawnFlags::SERVICE`]; reported in [`ProcessInfo::sched_class`]).
///
/// The kernel keeps three ready levels, served best first: service-class
/// processes; ordinary processes woken from a wait (or just started); and
/// ordinary processes that used up a whole time slice or yielded (CPU-bound
/// ones). A process woken by an interrupt or a timer into a better level
/// than the running one's takes the CPU at once; one woken by a system call
/// runs when the caller waits or its slice ends. The boost is bounded: a level that has waited 100 ms gets
/// one time slice ahead of the better ones, so no program starves.
#[repr(u32)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SchedClass {
    /// An ordinary program.
    #[default]
    Normal = 0,
    /// A system service (init, the vault, companions, drivers, services):
    /// the work a message hands it runs ahead of CPU-bound programs.
    Service = 1,
}

impl SchedClass {
    /// The class with this number.
    pub fn from_u32(v: u32) -> Option<SchedClass> {
        match v {
            0 => Some(SchedClass::Normal),
            1 => Some(SchedClass::Service),
            _ => None,
        }
    }

    /// Lowercase name, for `ps`.
    pub fn as_str(self) -> &'static str {
        match self {
            SchedClass::Normal => "normal",
            SchedClass::Service => "service",
        }
    }
}

/// A handle given to a child at spawn: it is duplicated into the child's
/// table with `rights` (a subset of the original's, which needs `TRANSFER`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct HandleGrant {
    /// The parent's handle.
    pub handle: u32,
    /// The rights the child gets.
    pub rights: u32,
}

/// The argument block of `ProcessSpawn`. Pointers are user addresses in the
/// caller.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SpawnParams {
    /// The child's name (UTF-8, at most [`MAX_NAME`] bytes).
    pub name_ptr: u64,
    /// Length of the name.
    pub name_len: u64,
    /// The child's argument string (at most [`MAX_ARGS`] bytes).
    pub args_ptr: u64,
    /// Length of the arguments.
    pub args_len: u64,
    /// An array of [`HandleGrant`].
    pub grants_ptr: u64,
    /// Number of grants (at most [`MAX_START_HANDLES`]).
    pub grants_len: u64,
    /// Stack size in pages (0 means [`DEFAULT_STACK_PAGES`]).
    pub stack_pages: u64,
    /// Most pages the child may allocate (0 means no limit beyond RAM).
    pub page_limit: u64,
    /// [`SpawnFlags`].
    pub flags: u64,
}

/// What the kernel tells a new process, mapped read-only at
/// [`START_INFO_ADDR`](crate::START_INFO_ADDR); its address is also in `rdi`
/// at entry.
#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct StartInfo {
    /// [`START_MAGIC`].
    pub magic: u64,
    /// The process id.
    pub pid: u32,
    /// The parent's process id.
    pub parent: u32,
    /// Bytes used in `name`.
    pub name_len: u32,
    /// Bytes used in `args`.
    pub args_len: u32,
    /// Entries used in `handles`.
    pub handle_count: u32,
    /// Reserved.
    pub reserved: u32,
    /// The name given at spawn.
    pub name: [u8; MAX_NAME],
    /// The child's handles for the grants, in order.
    pub handles: [u32; MAX_START_HANDLES],
    /// The argument string.
    pub args: [u8; MAX_ARGS],
}

/// Marks a valid [`StartInfo`].
pub const START_MAGIC: u64 = 0x4b49_4e54_5355_4749; // "KINTSUGI"
/// Longest process name.
pub const MAX_NAME: usize = 32;
/// Longest argument string.
pub const MAX_ARGS: usize = 3072;
/// Most handles given at spawn.
pub const MAX_START_HANDLES: usize = 64;

/// The clock page, mapped read-only at [`CLOCK_PAGE_ADDR`](crate::CLOCK_PAGE_ADDR)
/// in every process: a program reads the monotonic clock without entering
/// the kernel, with the kernel's own formula: nanoseconds since boot =
/// `((rdtsc - tsc_at_boot) * ns_per_tsc_fp) >> 32` (128-bit product), the
/// same value `ClockNow` returns.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct ClockPage {
    /// [`CLOCK_MAGIC`] once the kernel has filled the page.
    pub magic: u64,
    /// The time-stamp counter at boot.
    pub tsc_at_boot: u64,
    /// Nanoseconds per time-stamp-counter tick, 32.32 fixed point.
    pub ns_per_tsc_fp: u64,
}

/// [`ClockPage::magic`] ("KCLOCKv1").
pub const CLOCK_MAGIC: u64 = 0x3176_4b43_4f4c_434b;

impl ClockPage {
    /// Nanoseconds since boot for a time-stamp-counter reading.
    pub fn ns_at(&self, tsc: u64) -> u64 {
        ((tsc.saturating_sub(self.tsc_at_boot) as u128 * self.ns_per_tsc_fp as u128) >> 32) as u64
    }
}

/// Where a process is in its life.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessState {
    /// Created with `SUSPENDED`, not started.
    Suspended = 0,
    /// Running or ready to run.
    Runnable = 1,
    /// Waiting for an event or a timeout.
    Blocked = 2,
    /// Ended by `Exit` (or a panic, which exits with [`PANIC_EXIT_CODE`]).
    Exited = 3,
    /// Ended by a CPU exception; the fault fields say which.
    Faulted = 4,
    /// Ended by `ProcessKill`.
    Killed = 5,
}

impl ProcessState {
    /// The state with this number.
    pub fn from_u32(v: u32) -> Option<ProcessState> {
        use ProcessState::*;
        [Suspended, Runnable, Blocked, Exited, Faulted, Killed].into_iter().find(|s| *s as u32 == v)
    }

    /// Whether the process has ended.
    pub fn is_ended(self) -> bool {
        matches!(self, ProcessState::Exited | ProcessState::Faulted | ProcessState::Killed)
    }

    /// Lowercase name, for `ps`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessState::Suspended => "suspended",
            ProcessState::Runnable => "running",
            ProcessState::Blocked => "waiting",
            ProcessState::Exited => "exited",
            ProcessState::Faulted => "faulted",
            ProcessState::Killed => "killed",
        }
    }
}

/// The exit code of a program that panicked.
pub const PANIC_EXIT_CODE: i32 = 101;

/// What `ProcessInfo` and `ProcessList` report about a process.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct ProcessInfo {
    /// Process id (never reused).
    pub pid: u32,
    /// The creator's process id (0 for the first process).
    pub parent: u32,
    /// A [`ProcessState`].
    pub state: u32,
    /// Exit code, when `Exited`.
    pub exit_code: i32,
    /// CPU exception vector, when `Faulted`.
    pub fault_vector: u32,
    /// Exception error code, when `Faulted`.
    pub fault_error: u32,
    /// Faulting address (CR2) for page faults, when `Faulted`.
    pub fault_addr: u64,
    /// Instruction pointer at the fault, when `Faulted`.
    pub fault_ip: u64,
    /// Pages charged: allocated memory plus page tables.
    pub pages: u64,
    /// Timer ticks spent running.
    pub cpu_ticks: u64,
    /// Bytes used in `name`.
    pub name_len: u32,
    /// Its [`SchedClass`] (as a number).
    pub sched_class: u32,
    /// The name given at spawn.
    pub name: [u8; MAX_NAME],
}

impl ProcessInfo {
    /// The name as a string (lossy on bad UTF-8).
    pub fn name(&self) -> &str {
        let n = (self.name_len as usize).min(MAX_NAME);
        core::str::from_utf8(&self.name[..n]).unwrap_or("?")
    }

    /// The decoded state.
    pub fn state(&self) -> ProcessState {
        ProcessState::from_u32(self.state).unwrap_or(ProcessState::Killed)
    }

    /// The decoded scheduling class.
    pub fn sched_class(&self) -> SchedClass {
        SchedClass::from_u32(self.sched_class).unwrap_or_default()
    }
}

/// Kinds of device resource, for `ResourceDerive`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceKind {
    /// Everything; held by init.
    Root = 0,
    /// A range of I/O ports.
    IoPorts = 1,
    /// A range of physical device memory.
    Mmio = 2,
    /// One interrupt line (a global system interrupt number).
    Irq = 3,
    /// The serial console's input.
    Console = 4,
    /// PCI configuration space of functions `base..base+len` (a function is
    /// `bus << 8 | device << 3 | function`).
    PciConfig = 5,
    /// One message-signalled interrupt vector, allocated by the kernel when
    /// derived (`base` and `len` are ignored).
    Msi = 6,
}

impl ResourceKind {
    /// The kind with this number.
    pub fn from_u32(v: u32) -> Option<ResourceKind> {
        use ResourceKind::*;
        [Root, IoPorts, Mmio, Irq, Console, PciConfig, Msi].into_iter().find(|k| *k as u32 == v)
    }
}

bitflags! {
    /// How an interrupt line signals, given as `len` when deriving an IRQ
    /// resource. ISA lines are edge-triggered active-high (no flags); PCI
    /// INTx lines are level-triggered active-low.
    #[repr(transparent)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct IrqFlags: u64 {
        /// Level-triggered.
        const LEVEL = 1 << 0;
        /// Active-low.
        const ACTIVE_LOW = 1 << 1;
    }
}

/// Machine-wide figures, for `SystemInfo`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SystemInfo {
    /// Usable RAM in pages.
    pub total_pages: u64,
    /// Free pages now.
    pub free_pages: u64,
    /// Live processes.
    pub processes: u64,
    /// Nanoseconds since boot.
    pub uptime_ns: u64,
    /// Timer ticks per second.
    pub tick_hz: u64,
    /// Bytes of the kernel's own heap in use (process records, handle
    /// tables, kernel objects; rounded up to the allocator's block sizes).
    /// With `total_pages - free_pages` it is the kernel memory in use that
    /// the syscall fuzzer checks returns to its level after a run.
    pub kernel_heap_used: u64,
    /// Size of the kernel heap in bytes.
    pub kernel_heap_size: u64,
    /// This machine boot's identity: differs from one boot to the next,
    /// the same for the whole boot, never 0.
    pub boot_id: u64,
}

/// The name of a CPU exception vector, for fault reports.
pub fn exception_name(vector: u32) -> &'static str {
    match vector {
        0 => "divide error",
        1 => "debug",
        2 => "NMI",
        3 => "breakpoint",
        4 => "overflow",
        5 => "bound range exceeded",
        6 => "invalid opcode",
        7 => "device not available",
        8 => "double fault",
        10 => "invalid TSS",
        11 => "segment not present",
        12 => "stack fault",
        13 => "general protection fault",
        14 => "page fault",
        16 => "x87 floating-point error",
        17 => "alignment check",
        18 => "machine check",
        19 => "SIMD floating-point error",
        21 => "control protection",
        _ => "exception",
    }
}

impl ProcessInfo {
    /// One line describing how an ended process ended, e.g.
    /// `exited with code 0` or `faulted: page fault at address 0x0 (ip 0x201234, error 0x4)`.
    pub fn describe_end(&self, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        match self.state() {
            ProcessState::Exited if self.exit_code == PANIC_EXIT_CODE => {
                write!(out, "panicked (exit code {})", self.exit_code)
            }
            ProcessState::Exited => write!(out, "exited with code {}", self.exit_code),
            ProcessState::Killed => write!(out, "killed"),
            ProcessState::Faulted => write!(
                out,
                "faulted: {} (vector {}) at address {:#x} (ip {:#x}, error {:#x})",
                exception_name(self.fault_vector),
                self.fault_vector,
                self.fault_addr,
                self.fault_ip,
                self.fault_error
            ),
            s => write!(out, "{}", s.as_str()),
        }
    }
}
