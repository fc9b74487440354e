//! `tcpsend ADDRESS PORT BYTES`: a client of the net service that opens a
//! TCP connection and streams BYTES bytes of a known pattern
//! ([`net::stream_byte`]), then closes its sending half and waits for the
//! peer to close. The system tests run it against a sink on the host
//! (10.0.2.2), which checks every byte in order. Prints one summary line.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
libos::main!(main);

#[cfg(target_os = "none")]
#[allow(clippy::disallowed_methods)] // a client timing itself, not service state: no replay
fn main() -> i32 {
    use alloc::vec::Vec;
    use libos::println;
    use net::protocol::Reply;

    let args: Vec<&str> = libos::start::args().split_whitespace().collect();
    let (Some(address), Some(Ok(port)), Some(Ok(total))) = (
        args.first().and_then(|a| net::addr::parse(a)),
        args.get(1).map(|p| p.parse::<u16>()),
        args.get(2).map(|b| b.parse::<u64>()),
    ) else {
        println!("usage: tcpsend ADDRESS PORT BYTES");
        return 2;
    };
    let mut client = match net::connect() {
        Ok(c) => c,
        Err(e) => {
            println!("tcpsend: cannot reach net: {e}");
            return 1;
        }
    };
    let started = libos::time::now_ns();
    let socket = match client.connect(address.clone(), port, 10_000) {
        Ok(Reply::Opened { socket, .. }) => socket,
        other => {
            println!("tcpsend: connect to {}: {other:?}", net::addr::show_endpoint(&address, port));
            return 1;
        }
    };
    let mut sent = 0u64;
    while sent < total {
        let n = (total - sent).min(32 * 1024);
        let data: Vec<u8> = (sent..sent + n).map(net::stream_byte).collect();
        match client.send(socket, data, 30_000) {
            Ok(Reply::Sent { count }) => sent += count as u64,
            other => {
                println!("tcpsend: send after {sent} bytes: {other:?}");
                return 1;
            }
        }
    }
    let _ = client.shutdown(socket);
    // Wait for the peer's end, so every byte was taken before we go.
    loop {
        match client.receive(socket, 4096, 30_000) {
            Ok(Reply::Received { end: true, .. }) => break,
            Ok(Reply::Received { .. }) => {}
            other => {
                println!("tcpsend: waiting for the end: {other:?}");
                return 1;
            }
        }
    }
    let _ = client.close(socket, false);
    let ms = (libos::time::now_ns() - started) / 1_000_000;
    println!("tcpsend: sent {sent} bytes in {ms} ms");
    0
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("tcpsend runs in the Kintsugi guest");
}
