//! The kernel image: the boot trampoline plus the `exokernel` library, which
//! holds everything else. `kernel_entry` (in the library) is called by the
//! trampoline once long mode is on.
#![no_std]
#![no_main]

extern crate exokernel;

core::arch::global_asm!(include_str!("boot/entry.S"));
