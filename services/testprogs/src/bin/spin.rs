//! `spin [SECONDS]`: burn the CPU in a tight loop, forever or for SECONDS,
//! never making a system call inside the loop. Used to show that
//! preemption keeps the rest of the system (the shell) responsive.
#![no_std]
#![no_main]

use libos::println;

libos::main!(main);

fn main() -> i32 {
    let seconds = testprogs::arg_u64(0, 0);
    let start = libos::time::now_ns();
    let mut x: u64 = 1;
    loop {
        for _ in 0..10_000_000 {
            x = core::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        if seconds > 0 && libos::time::now_ns() - start > seconds * 1_000_000_000 {
            println!("spin: done after {seconds} s");
            return 0;
        }
    }
}
