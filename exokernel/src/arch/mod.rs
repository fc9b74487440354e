//! The x86_64 machine: descriptor tables, trap entry and exit, the syscall
//! instruction, interrupt controllers, timers, ACPI and CPU helpers.

pub mod acpi;
pub mod apic;
pub mod cpu;
pub mod gdt;
pub mod idt;
pub mod pit;
pub mod rtc;
pub mod syscall_entry;
pub mod trapframe;
