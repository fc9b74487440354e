//! The httpd program: the web server as a resilient service under its
//! companion (see the `httpd` library and `httpd::program`).
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
libos::main!(main);

#[cfg(target_os = "none")]
fn main() -> i32 {
    httpd::program::run()
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("httpd runs in the Kintsugi guest");
}
