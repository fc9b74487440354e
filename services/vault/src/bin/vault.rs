//! The vault program: the persistent checkpoint store on the checkpoint
//! disk (see the `vault` library).
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
libos::main!(main);

#[cfg(target_os = "none")]
fn main() -> i32 {
    vault::server::run()
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("the vault runs in the Kintsugi guest");
}
