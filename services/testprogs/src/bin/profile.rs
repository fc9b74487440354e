//! `profile start|stop`: control the kernel's sampling profiler (present
//! when the kernel was booted with `profile`, as `cargo xtask profile`
//! does). `stop` has the kernel write the samples to the console, where
//! `cargo xtask profile` reads them.
#![no_std]
#![no_main]

use libos::{println, sys};

libos::main!(main);

fn main() -> i32 {
    let result = match testprogs::arg(0) {
        Some("start") => sys::profile_start().map(|hz| println!("profile: sampling at {hz} Hz")),
        Some("stop") => sys::profile_stop().map(|n| println!("profile: {n} samples")),
        _ => {
            println!("usage: profile start|stop");
            return 2;
        }
    };
    match result {
        Ok(()) => 0,
        Err(libos::abi::Error::Unsupported) => {
            println!("profile: the kernel was not booted with `profile` (use cargo xtask profile)");
            1
        }
        Err(e) => {
            println!("profile: {e}");
            1
        }
    }
}
