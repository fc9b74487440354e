//! `connflood N`: many connections to a service that is not taking them.
//! It asks kv's companion to hang the service (`kv.control`, `Crash`
//! kind 3, without waiting for the answer): while the companion waits to
//! detect the hang, it accepts no connection. Then it connects to kv N
//! times in a row and asks each session for a key. Connection requests
//! beyond what kv's listener holds wait in init until the companion takes
//! them again (init used to take the full queue for a dead service and
//! unregister kv). Prints `connflood: N sessions served` or what failed.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use libos::channel::Channel;
use libos::println;
use resiliency_lib::control::{Reply as Ctl, Request as CtlRequest};

libos::main!(main);

fn main() -> i32 {
    let n: usize = libos::start::args().split_whitespace().next().and_then(|a| a.parse().ok()).unwrap_or(30);
    let mut control: Channel<CtlRequest, Ctl> = match libos::directory::connect("kv.control", false) {
        Ok(ep) => Channel::new(ep),
        Err(e) => {
            println!("connflood: kv.control: {e}");
            return 1;
        }
    };
    if let Err(e) = control.send(CtlRequest::Crash { kind: 3 }) {
        println!("connflood: crash kv hang: {e}");
        return 1;
    }
    // Let the companion take the request and start waiting.
    libos::time::sleep(core::time::Duration::from_millis(200));
    let mut clients = Vec::new();
    for i in 0..n {
        match libos::directory::connect(kv::SERVICE, false) {
            Ok(ep) => clients.push(kv::KvClient::new(Channel::new(ep))),
            Err(e) => {
                println!("connflood: connection {} of {n}: {e}", i + 1);
                return 1;
            }
        }
    }
    for (i, c) in clients.iter_mut().enumerate() {
        match c.get(String::from("connflood")) {
            Ok(kv::Reply::Value { .. }) => {}
            other => {
                println!("connflood: session {}: {other:?}", i + 1);
                return 1;
            }
        }
    }
    match control.recv() {
        Ok(Ctl::Done { .. }) => {}
        other => println!("connflood: the crash was answered {other:?}"),
    }
    println!("connflood: {n} sessions served");
    0
}
