//! `drvtest net`: the network device test (see the crate doc).

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use drivers::NetDevice;
use libos::println;
use libos::time::now_ns;

const MY_IP: [u8; 4] = [10, 0, 2, 15];
const GATEWAY_IP: [u8; 4] = [10, 0, 2, 2];
const BROADCAST: [u8; 6] = [0xff; 6];
/// IEEE 802 local experimental EtherType: the user network ignores it.
const EXPERIMENTAL: u16 = 0x88b5;
const BURST: usize = 2000;

fn mac_str(m: &[u8]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

fn ip_str(ip: &[u8]) -> String {
    ip.iter().map(|b| format!("{b}")).collect::<Vec<_>>().join(".")
}

fn ethernet(dst: [u8; 6], src: [u8; 6], kind: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(60.max(14 + payload.len()));
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&kind.to_be_bytes());
    f.extend_from_slice(payload);
    f.resize(f.len().max(60), 0);
    f
}

fn arp_request(mac: [u8; 6]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]); // Ethernet/IPv4, request
    p.extend_from_slice(&mac);
    p.extend_from_slice(&MY_IP);
    p.extend_from_slice(&[0; 6]);
    p.extend_from_slice(&GATEWAY_IP);
    ethernet(BROADCAST, mac, 0x0806, &p)
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data.chunks(2).map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32).sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ping(mac: [u8; 6], gateway: [u8; 6], seq: u16) -> Vec<u8> {
    let mut icmp = vec![8, 0, 0, 0, 0x4b, 0x54];
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend((0..32u8).map(|i| b'a' + i % 26));
    let c = checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let total = (20 + icmp.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0x12, 0x34, 0, 0, 64, 1, 0, 0]);
    ip.extend_from_slice(&MY_IP);
    ip.extend_from_slice(&GATEWAY_IP);
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(&icmp);
    ethernet(gateway, mac, 0x0800, &ip)
}

/// What a received frame is, for printing; and the gateway's MAC if it is
/// the ARP reply, and the echo sequence number if it is a ping reply.
fn describe(f: &[u8]) -> (String, Option<[u8; 6]>, Option<u16>) {
    let kind = u16::from_be_bytes([f[12], f[13]]);
    let head = format!("{} -> {} type {kind:04x} len {}", mac_str(&f[6..12]), mac_str(&f[0..6]), f.len());
    let p = &f[14..];
    if kind == 0x0806 && p.len() >= 28 && p[6..8] == [0, 2] {
        let mut sha = [0u8; 6];
        sha.copy_from_slice(&p[8..14]);
        let what = format!("{head}: ARP reply: {} is at {}", ip_str(&p[14..18]), mac_str(&sha));
        let gw = (p[14..18] == GATEWAY_IP).then_some(sha);
        return (what, gw, None);
    }
    if kind == 0x0800 && p.len() >= 28 && p[9] == 1 {
        let ihl = ((p[0] & 0xf) as usize) * 4;
        if let Some(icmp) = p.get(ihl..ihl + 8) {
            if icmp[0] == 0 {
                let seq = u16::from_be_bytes([icmp[6], icmp[7]]);
                return (format!("{head}: ICMP echo reply from {} seq {seq}", ip_str(&p[12..16])), None, Some(seq));
            }
        }
    }
    (head, None, None)
}

/// Receive for up to `ms`, printing frames; stop early once `done` holds.
fn listen(nic: &mut dyn NetDevice, ms: u64, mut on: impl FnMut(&[u8]) -> bool) -> Result<usize, String> {
    let deadline = now_ns() + ms * 1_000_000;
    let mut n = 0;
    loop {
        let frames = nic.receive(32).map_err(|e| format!("receive: {e}"))?;
        for f in &frames {
            n += 1;
            if on(f) {
                return Ok(n);
            }
        }
        let now = now_ns();
        if now >= deadline {
            return Ok(n);
        }
        if frames.is_empty() {
            nic.wait(deadline - now);
        }
    }
}

pub fn run() -> i32 {
    let t = now_ns();
    let Some(mut nic) = drivers::net_device() else {
        println!("drvtest: no network device");
        println!("drvtest net: FAIL");
        return 1;
    };
    let nic = nic.as_mut();
    let mac = nic.mac();
    let link = if nic.link_up() { "up" } else { "down" };
    println!("drvtest: {} up in {} ms: MAC {}, link {link}", nic.model(), super::ms_since(t), mac_str(&mac));
    let mut failures = 0;

    // Bad frames are refused before anything is queued.
    match nic.send(&[&[0u8; 13]]) {
        Err(_) => println!("drvtest: 13-byte frame refused: ok"),
        Ok(n) => {
            failures += 1;
            println!("drvtest: 13-byte frame accepted ({n}): FAILED");
        }
    }

    // ARP for the gateway.
    let arp = arp_request(mac);
    let sent = nic.send(&[&arp, &arp, &arp]);
    println!("drvtest: sent 3 broadcast ARP requests for {}: {sent:?}", ip_str(&GATEWAY_IP));
    let mut gateway = None;
    let r = listen(nic, 2000, |f| {
        let (what, gw, _) = describe(f);
        println!("drvtest: rx {what}");
        if gw.is_some() {
            gateway = gw;
        }
        false
    });
    match (r, gateway) {
        (Ok(n), Some(gw)) => {
            println!("drvtest: {n} frame(s) received; gateway {} is at {}: ok", ip_str(&GATEWAY_IP), mac_str(&gw))
        }
        (r, _) => {
            failures += 1;
            println!("drvtest: no ARP reply from the gateway ({r:?}): FAILED");
        }
    }

    // Ping the gateway.
    if let Some(gw) = gateway {
        let mut replies = 0;
        for seq in 1..=4u16 {
            let t0 = now_ns();
            if nic.send(&[&ping(mac, gw, seq)]) != Ok(1) {
                println!("drvtest: ping {seq}: could not send");
                continue;
            }
            let mut got = false;
            let _ = listen(nic, 1000, |f| {
                let (_, _, s) = describe(f);
                got = s == Some(seq);
                got
            });
            if got {
                replies += 1;
                println!("drvtest: ping {} seq {seq}: reply in {} us", ip_str(&GATEWAY_IP), (now_ns() - t0) / 1000);
            } else {
                println!("drvtest: ping {} seq {seq}: no reply", ip_str(&GATEWAY_IP));
            }
        }
        if replies == 0 {
            failures += 1;
            println!("drvtest: no ping replies: FAILED");
        }
    }

    // A burst of full-size frames, timed.
    let mut frame = ethernet(BROADCAST, mac, EXPERIMENTAL, &[0u8; 1500]);
    frame.truncate(1514);
    let batch: Vec<&[u8]> = vec![&frame; 32];
    let t0 = now_ns();
    let mut queued = 0;
    let mut stalls = 0;
    while queued < BURST && stalls < 100_000 {
        match nic.send(&batch[..(BURST - queued).min(32)]) {
            Ok(0) => {
                stalls += 1;
                libos::sys::yield_now();
            }
            Ok(n) => queued += n,
            Err(e) => {
                println!("drvtest: burst: {e}");
                break;
            }
        }
    }
    let ns = now_ns() - t0;
    if queued == BURST {
        println!(
            "drvtest: burst of {BURST} x 1514-byte frames queued in {} ms ({})",
            ns / 1_000_000,
            super::rate(BURST * 1514, ns)
        );
    } else {
        failures += 1;
        println!("drvtest: burst: only {queued} of {BURST} frames taken: FAILED");
    }
    let stray = listen(nic, 200, |_| false).unwrap_or(0);
    println!("drvtest: {stray} more frame(s) received after the burst");

    if failures == 0 {
        println!("drvtest net: PASS");
        0
    } else {
        println!("drvtest net: FAIL ({failures} checks failed)");
        1
    }
}
