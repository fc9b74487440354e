//! `kvwatch N`: a resiliency-aware client. It subscribes to the kv
//! companion's recovery notices (`kv.notices`), prints `kvwatch: subscribed`,
//! then prints each of the next N notices and exits. Ordinary clients never
//! see these notices; they only see a delay.
#![no_std]
#![no_main]

use libos::channel::Channel;
use libos::println;
use resiliency_lib::notices::{Reply, Request};

libos::main!(main);

fn main() -> i32 {
    let n: u64 = libos::start::args().split_whitespace().next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let mut ch: Channel<Request, Reply> = match libos::directory::connect("kv.notices", true) {
        Ok(ep) => Channel::new(ep),
        Err(e) => {
            println!("kvwatch: {e}");
            return 1;
        }
    };
    if let Err(e) = ch.send(Request::Subscribe) {
        println!("kvwatch: {e}");
        return 1;
    }
    println!("kvwatch: subscribed");
    for _ in 0..n {
        match ch.recv() {
            Ok(Reply::Recovered { restarts, recovery_ns, replayed }) => println!(
                "kvwatch: kv recovered (restart #{restarts}) in {}.{:03} ms, {replayed} logged requests replayed",
                recovery_ns / 1_000_000,
                (recovery_ns / 1000) % 1000
            ),
            Err(e) => {
                println!("kvwatch: {e}");
                return 1;
            }
        }
    }
    0
}
