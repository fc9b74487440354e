//! The net program: the network stack as a service (see the `net`
//! library and `net::service`).
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
libos::main!(main);

#[cfg(target_os = "none")]
fn main() -> i32 {
    net::service::run()
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("net runs in the Kintsugi guest");
}
