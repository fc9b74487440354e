//! The Kintsugi exokernel: ring 0, protection and multiplexing only.
//!
//! It exports the PC's raw resources through handles with rights (see the
//! `kintsugi-abi` crate for the calls): physical memory as memory objects
//! that processes map where they choose, processes created from ELF images,
//! events (the one wake-up primitive), links (which carry handles between
//! processes and report a peer's death), device resources (I/O ports, MMIO,
//! interrupt lines, the console) and a monotonic clock. Everything that is
//! policy (naming, channels, supervision, recovery) lives in user space.
//!
//! The kernel is uniprocessor and runs with interrupts off; it has a single
//! kernel stack. Every entry (syscall, exception, interrupt) saves the user
//! registers into the current process, handles the event, and leaves by
//! restoring whichever process the scheduler picks. A blocking call simply
//! marks its process blocked; whoever wakes it writes its return values.
//!
//! Modules that are pure logic (handle tables, ELF checks, usable memory
//! regions, the scheduling policy) build on the host too and carry unit tests; the hardware
//! modules exist only for `target_os = "none"`.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

pub mod elf;
pub mod handle;
pub mod logring;
pub mod mapped;
pub mod regions;
pub mod runqueue;

#[cfg(target_os = "none")]
#[macro_use]
pub mod console;
#[cfg(target_os = "none")]
pub mod arch;
#[cfg(target_os = "none")]
pub mod boot;
#[cfg(target_os = "none")]
pub mod clock;
#[cfg(target_os = "none")]
pub mod irq;
#[cfg(target_os = "none")]
pub mod mem;
#[cfg(target_os = "none")]
pub mod object;
#[cfg(target_os = "none")]
mod panic;
#[cfg(target_os = "none")]
pub mod process;
#[cfg(target_os = "none")]
pub mod profile;
#[cfg(target_os = "none")]
pub mod sched;
#[cfg(target_os = "none")]
mod stall_report;
#[cfg(target_os = "none")]
mod start;
#[cfg(target_os = "none")]
pub mod syscall;
#[cfg(target_os = "none")]
pub mod trap;
