//! `resbench`: Kintsugi's resiliency figures for `cargo xtask bench`, as
//! `BENCH name value` lines:
//! - normal-case overhead: kv round trip and requests per second through
//!   the companion, and straight to a second kv started alone (`direct`);
//! - recovery: from a crash (the kernel kills the service) to the first
//!   reply served by the restored service, median and worst, for kv
//!   (logical distillation) and tally (image distillation), beside a cold
//!   start of the same service (start to first reply);
//! - checkpoints: bytes captured and time taken, kv at several numbers of
//!   keys, tally at several numbers of pages changed.
//!
//! `resbench puts`: what a durable request costs: kv `put` round trip and
//! puts per second from one session and from four at once (each sends, then
//! all wait: the companion's group commit shares one vault write among
//! them). `cargo xtask bench` runs it on a machine with a checkpoint disk
//! (durable) and on one without (the companion says it is not durable and
//! answers at once), in the same run.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use libos::channel::Channel;
use libos::handle::Event;
use libos::{directory, println};
use resiliency_lib::control::{ControlClient, Reply as Ctl};
use testprogs::median;

libos::main!(main);

fn now() -> u64 {
    libos::time::now_ns()
}

fn control(name: &str) -> ControlClient {
    let ep = directory::connect(&format!("{name}.control"), true).expect("control");
    ControlClient::new(Channel::new(ep))
}

fn kv_at(name: &str) -> kv::KvClient {
    kv::KvClient::new(Channel::new(directory::connect(name, true).expect("kv")))
}

fn tally_at(name: &str) -> tally::TallyClient {
    tally::TallyClient::new(Channel::new(directory::connect(name, true).expect("tally")))
}

fn bench(name: &str, value: u64) {
    println!("BENCH {name} {value}");
}

/// Round trips and throughput of `get` on a kv client.
fn kv_gets(c: &mut kv::KvClient) -> (u64, u64) {
    let mut rtt = Vec::with_capacity(2000);
    for _ in 0..2000 {
        let t0 = now();
        let _ = c.get(String::from("bench/k00001"));
        rtt.push(now() - t0);
    }
    let t0 = now();
    for _ in 0..2000 {
        let _ = c.get(String::from("bench/k00001"));
    }
    let rps = 2000 * 1_000_000_000 / (now() - t0).max(1);
    (median(&mut rtt), rps)
}

fn start_direct(program: &str, name: &str) -> libos::handle::Process {
    directory::run(program, &format!("direct {name}")).expect("start a direct instance").1
}

fn stop(p: libos::handle::Process) {
    let ended = Event::new().expect("event");
    let _ = p.watch(&ended, 1);
    let _ = p.kill();
    let _ = ended.wait(5_000_000_000);
}

/// `put` round trips and throughput, one session, then four at once.
fn puts() -> i32 {
    const N: usize = 400;
    let value = || Vec::from(*b"0123456789abcdef0123456789abcdef");
    let mut one = kv_at(kv::SERVICE);
    let mut rtt = Vec::with_capacity(N);
    let t0 = now();
    for i in 0..N {
        let t = now();
        let _ = one.put(format!("bench/p{i:05}"), value());
        rtt.push(now() - t);
    }
    let rps_1 = N as u64 * 1_000_000_000 / (now() - t0).max(1);
    let mut four: Vec<Channel<kv::Request, kv::Reply>> =
        (0..4).map(|_| Channel::new(directory::connect(kv::SERVICE, true).expect("kv"))).collect();
    let t0 = now();
    for i in 0..N {
        for (c, ch) in four.iter_mut().enumerate() {
            let _ = ch.send(kv::Request::Put { key: format!("bench/q{c}/{i:05}"), value: value() });
        }
        for ch in four.iter_mut() {
            let _ = ch.recv();
        }
    }
    let rps_4 = 4 * N as u64 * 1_000_000_000 / (now() - t0).max(1);
    bench("kv_put_rtt_ns", median(&mut rtt));
    bench("kv_put_rps_1", rps_1);
    bench("kv_put_rps_4", rps_4);
    0
}

fn main() -> i32 {
    if libos::start::args().split_whitespace().next() == Some("puts") {
        return puts();
    }
    let mut kv = kv_at(kv::SERVICE);
    let mut kv_ctl = control("kv");
    let mut tally_ctl = control("tally");
    let mut t = tally_at(tally::SERVICE);

    // Normal case: through the companion versus straight to the service.
    for i in 0..1000 {
        let _ = kv.put(format!("bench/k{i:05}"), Vec::from(*b"0123456789abcdef0123456789abcdef"));
    }
    let (rtt_c, rps_c) = kv_gets(&mut kv);
    let direct = start_direct("kv", "kv-direct");
    let mut d = kv_at("kv-direct");
    let _ = d.put(String::from("bench/k00001"), Vec::from(*b"x"));
    let (rtt_d, rps_d) = kv_gets(&mut d);
    drop(d);
    stop(direct);
    bench("kv_rtt_companion_ns", rtt_c);
    bench("kv_rtt_direct_ns", rtt_d);
    bench("kv_rps_companion", rps_c);
    bench("kv_rps_direct", rps_d);

    // Recovery: crash to first reply (1000 keys, a few logged requests).
    for (label, is_kv) in [("kv", true), ("tally", false)] {
        let mut samples = Vec::new();
        for i in 0..15u64 {
            for j in 0..10u64 {
                if is_kv {
                    let _ = kv.put(format!("bench/log{j}"), Vec::from(*b"v"));
                } else {
                    let _ = t.add(format!("c{j}"), 1);
                }
            }
            let t0 = now();
            let ok = if is_kv {
                matches!(kv_ctl.crash(1), Ok(Ctl::Done { .. })) && kv.get(format!("bench/k{i:05}")).is_ok()
            } else {
                matches!(tally_ctl.crash(1), Ok(Ctl::Done { .. })) && t.get(String::from("c0")).is_ok()
            };
            if ok {
                samples.push(now() - t0);
            }
        }
        let worst = samples.iter().copied().max().unwrap_or(0);
        bench(&format!("{label}_recovery_median_ns"), median(&mut samples));
        bench(&format!("{label}_recovery_worst_ns"), worst);
        // Cold start of the same service: start to first reply.
        let mut cold = Vec::new();
        for i in 0..15 {
            let name = format!("{label}-cold{i}");
            let t0 = now();
            let p = start_direct(label, &name);
            let ok = if is_kv {
                kv_at(&name).get(String::from("x")).is_ok()
            } else {
                tally_at(&name).get(String::from("x")).is_ok()
            };
            if ok {
                cold.push(now() - t0);
            }
            stop(p);
        }
        bench(&format!("{label}_cold_start_ns"), median(&mut cold));
    }

    // Checkpoints: logical (kv) by number of keys.
    let mut have = 1000;
    for keys in [100u64, 1000, 10000] {
        while have < keys {
            let _ = kv.put(format!("bench/k{have:05}"), Vec::from(*b"0123456789abcdef0123456789abcdef"));
            have += 1;
        }
        for i in keys..have {
            let _ = kv.delete(format!("bench/k{i:05}"));
        }
        have = keys;
        if let Ok(Ctl::Checkpointed { bytes, ns }) = kv_ctl.checkpoint() {
            bench(&format!("kv_checkpoint_bytes_{keys}_keys"), bytes);
            bench(&format!("kv_checkpoint_ns_{keys}_keys"), ns);
        }
    }
    // Checkpoints: image (tally) by number of changed counters.
    for touched in [1u64, 16, 256] {
        let _ = tally_ctl.checkpoint();
        for j in 0..touched {
            let _ = t.add(format!("page{j}"), 1);
        }
        if let Ok(Ctl::Checkpointed { bytes, ns }) = tally_ctl.checkpoint() {
            bench(&format!("tally_checkpoint_bytes_{touched}_counters"), bytes);
            bench(&format!("tally_checkpoint_ns_{touched}_counters"), ns);
        }
    }
    0
}
