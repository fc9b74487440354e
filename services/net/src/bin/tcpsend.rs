//! `tcpsend ADDRESS PORT BYTES [FIRST [BACK]]`: a client of the net
//! service that opens a TCP connection and streams BYTES bytes of a known
//! pattern ([`net::stream_byte`] from byte FIRST on, 0 by default), then
//! closes its sending half and waits for the peer to close. With BACK, the
//! peer must send back exactly BACK bytes of [`net::back_byte`] from byte
//! FIRST on before it closes, each checked here; without it what comes
//! back is ignored. The system tests and the soak run it against a sink on
//! the host (10.0.2.2), which checks every byte in order. Prints one
//! summary line: `tcpsend: sent N bytes in T ms` (`, received M bytes`
//! with BACK) when every byte went and came right, else `tcpsend: ` and
//! what failed.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
libos::main!(main);

/// How long a connect, a send or a receive may wait (ms). A connect may
/// have to outlast a hang of nic (4 s to notice, then a restart) and TCP's
/// backoff of the SYN (again after 1, 3, 7, 15, 31 s), which 10 s did not
/// (RELIABILITY.md, finding 13); 30 s (five SYNs) was not enough either
/// with nic crashed about once a second by the soak's steady chaos
/// (finding 19): 75 s takes the sixth. The data's retransmissions back off
/// the same way: a receive that waited 30 s while nic was crashed 120
/// times under one stream ended it (finding 30).
#[cfg(target_os = "none")]
const PATIENCE_MS: u32 = 75_000;

#[cfg(target_os = "none")]
#[allow(clippy::disallowed_methods)] // a client timing itself, not service state: no replay
fn main() -> i32 {
    use alloc::vec::Vec;
    use libos::println;
    use net::protocol::Reply;

    let args: Vec<&str> = libos::start::args().split_whitespace().collect();
    let number = |i: usize, default: u64| args.get(i).map_or(Some(default), |a| a.parse::<u64>().ok());
    let (Some(address), Some(Ok(port)), Some(Ok(total)), Some(first), Some(back)) = (
        args.first().and_then(|a| net::addr::parse(a)),
        args.get(1).map(|p| p.parse::<u16>()),
        args.get(2).map(|b| b.parse::<u64>()),
        number(3, 0),
        args.get(4).map_or(Some(None), |a| a.parse::<u64>().ok().map(Some)),
    ) else {
        println!("usage: tcpsend ADDRESS PORT BYTES [FIRST [BACK]]");
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
    let socket = match client.connect(address.clone(), port, PATIENCE_MS) {
        Ok(Reply::Opened { socket, .. }) => socket,
        other => {
            println!("tcpsend: connect to {}: {other:?}", net::addr::show_endpoint(&address, port));
            return 1;
        }
    };
    let mut sent = 0u64;
    while sent < total {
        let n = (total - sent).min(32 * 1024);
        let data: Vec<u8> = (sent..sent + n).map(|i| net::stream_byte(first.wrapping_add(i))).collect();
        match client.send(socket, data, PATIENCE_MS) {
            Ok(Reply::Sent { count }) => sent += count as u64,
            other => {
                println!("tcpsend: send after {sent} bytes: {other:?}");
                return 1;
            }
        }
    }
    let _ = client.shutdown(socket);
    // Wait for the peer's end, so every byte was taken before we go (and
    // check what it sends back).
    let mut received = 0u64;
    loop {
        match client.receive(socket, 32 * 1024, PATIENCE_MS) {
            Ok(Reply::Received { data, end }) => {
                if let Some(back) = back {
                    for (k, b) in data.iter().enumerate() {
                        let at = received + k as u64;
                        let want = net::back_byte(first.wrapping_add(at));
                        if at >= back {
                            println!("tcpsend: the peer sent back more than {back} bytes");
                            return 1;
                        }
                        if *b != want {
                            println!("tcpsend: received byte {at} is {b:#04x}, not {want:#04x}");
                            return 1;
                        }
                    }
                }
                received += data.len() as u64;
                if end {
                    break;
                }
            }
            other => {
                println!("tcpsend: waiting for the end after receiving {received} bytes: {other:?}");
                return 1;
            }
        }
    }
    let _ = client.close(socket, false);
    let ms = (libos::time::now_ns() - started) / 1_000_000;
    match back {
        Some(back) if received != back => {
            println!("tcpsend: the peer ended after sending back {received} of {back} bytes");
            1
        }
        Some(_) => {
            println!("tcpsend: sent {sent} bytes in {ms} ms, received {received} bytes");
            0
        }
        None => {
            println!("tcpsend: sent {sent} bytes in {ms} ms");
            0
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("tcpsend runs in the Kintsugi guest");
}
