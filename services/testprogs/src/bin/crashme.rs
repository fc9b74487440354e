//! `crashme MODE`: misbehave in one of the ways a user program can, to show
//! the kernel ends only this process and its supervisor learns why.
//!
//! Modes: `readkernel`, `writekernel`, `writecode`, `null`, `unmapped`,
//! `execdata`, `privileged` (hlt), `cr3` (read a control register),
//! `port` (in from a port), `divzero`, `ud2`, `stackoverflow`, `panic`.
#![no_std]
#![no_main]

use core::arch::asm;
use libos::println;

libos::main!(main);

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    let buf = core::hint::black_box([depth; 64]);
    buf[3] + recurse(depth + 1)
}

fn main() -> i32 {
    let mode = testprogs::arg(0).unwrap_or("");
    println!("crashme: {mode}");
    // SAFETY: none of this is safe; misbehaving is the point. Each access
    // is one the kernel must stop with a fault.
    unsafe {
        match mode {
            "readkernel" => {
                let v = core::ptr::read_volatile(0xffff_ffff_8020_0000 as *const u64);
                println!("crashme: read kernel memory: {v:#x}");
            }
            "writekernel" => core::ptr::write_volatile(0xffff_8000_0010_0000 as *mut u64, 0xbad),
            "writecode" => core::ptr::write_volatile(main as *const () as *mut u8, 0xcc),
            "null" => core::ptr::write_volatile(0x10 as *mut u64, 1),
            "unmapped" => {
                let v = core::ptr::read_volatile(0x0000_5555_0000_0000 as *const u64);
                println!("crashme: read unmapped memory: {v:#x}");
            }
            "execdata" => {
                let code = core::hint::black_box([0xc3u8; 16]); // ret, on the (non-executable) stack
                let f: extern "C" fn() = core::mem::transmute(code.as_ptr());
                f();
            }
            "privileged" => asm!("hlt"),
            "cr3" => {
                let v: u64;
                asm!("mov {}, cr3", out(reg) v);
                println!("crashme: read cr3: {v:#x}");
            }
            "port" => {
                let v: u8;
                asm!("in al, 0x60", out("al") v);
                println!("crashme: read port 0x60: {v:#x}");
            }
            "divzero" => {
                let zero = core::hint::black_box(0u64);
                asm!("div {0}", in(reg) zero, inout("rax") 1u64 => _, inout("rdx") 0u64 => _);
            }
            "ud2" => asm!("ud2"),
            "stackoverflow" => {
                println!("crashme: {}", recurse(0));
            }
            "panic" => panic!("crashme was asked to panic"),
            _ => {
                println!("crashme: unknown mode '{mode}'");
                return 2;
            }
        }
    }
    println!("crashme: survived {mode} (this is a bug)");
    1
}
