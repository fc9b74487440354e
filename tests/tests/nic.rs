//! The nic service on real (emulated) cards: a host program exchanges raw
//! Ethernet frames with the guest through a QEMU `dgram` netdev (each UDP
//! datagram one frame) and checks them byte for byte: frames the guest
//! made up, and echoes of frames the host sent, while `nic` is crashed in
//! the middle. Once with virtio-net, once with e1000.

use kintsugi_tests::{boot_with, Machine, NicModel, QemuConfig};
use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

/// QEMU's default MAC for the first card.
const GUEST_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const HOST_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
const TEST_ETHERTYPE: u16 = 0x88b5;
const ECHO_ETHERTYPE: u16 = 0x88b6;
const ORIGIN_ETHERTYPE: u16 = 0x88b7;
const ORIGIN_FRAMES: u32 = 40;
const TEST_FRAMES: u32 = 300;

/// The same functions as `nic::pattern_byte` and `nic::origin_len`.
fn pattern_byte(seq: u32, i: usize) -> u8 {
    let x = (seq as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(i as u64 / 8);
    let x = (x ^ (x >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (x >> (8 * (i % 8))) as u8
}

fn origin_frame(seq: u32) -> Vec<u8> {
    let len = 60 + (seq as usize * 97) % (1514 - 60 + 1);
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&GUEST_MAC);
    f.extend_from_slice(&ORIGIN_ETHERTYPE.to_be_bytes());
    f.extend_from_slice(&seq.to_le_bytes());
    let start = f.len();
    f.extend((start..len).map(|i| pattern_byte(seq, i)));
    f
}

/// Host test frame `seq`: to the guest, with a payload of `seq` and bytes
/// that depend on it, 60 to 1514 bytes long.
fn test_frame(seq: u32) -> Vec<u8> {
    let len = 60 + (seq as usize * 389 + 17) % (1514 - 60 + 1);
    let mut f = GUEST_MAC.to_vec();
    f.extend_from_slice(&HOST_MAC);
    f.extend_from_slice(&TEST_ETHERTYPE.to_be_bytes());
    f.extend_from_slice(&seq.to_le_bytes());
    let start = f.len();
    f.extend((start..len).map(|i| (i as u32).wrapping_mul(31).wrapping_add(seq * 7) as u8));
    f
}

fn echo_of(frame: &[u8]) -> Vec<u8> {
    let mut e = frame.to_vec();
    e[..6].copy_from_slice(&HOST_MAC);
    e[6..12].copy_from_slice(&GUEST_MAC);
    e[12..14].copy_from_slice(&ECHO_ETHERTYPE.to_be_bytes());
    e
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map(|a| a.port()).expect("a free port")
}

fn seq_of(frame: &[u8]) -> u32 {
    u32::from_le_bytes([frame[14], frame[15], frame[16], frame[17]])
}

fn frame_exchange(model: NicModel) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let host_port = socket.local_addr().unwrap().port();
    let guest_port = free_port();
    socket.connect(("127.0.0.1", guest_port)).expect("connect");
    socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let netdev = format!(
        "dgram,id=net0,local.type=inet,local.host=127.0.0.1,local.port={guest_port},remote.type=inet,remote.host=127.0.0.1,remote.port={host_port}"
    );
    let cfg = QemuConfig { nic: Some(model), netdev: Some(netdev), ..QemuConfig::default() };
    let mut m: Machine = boot_with(&cfg);
    let info = m.shq("nic");
    let model_name = if model == NicModel::Virtio { "virtio-net" } else { "e1000" };
    assert!(info.contains(model_name) && info.contains("mac 52:54:00:12:34:56"), "{info}");

    m.sh(&format!("run nicecho {ORIGIN_FRAMES} &"));
    let mut buf = [0u8; 2048];
    let mut origins: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    let mut echoes: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    let mut sent_at: BTreeMap<u32, Instant> = BTreeMap::new();
    let mut retransmits = 0;
    let mut crashed = false;
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut next = 0;
    while echoes.len() < TEST_FRAMES as usize || origins.len() < ORIGIN_FRAMES as usize {
        assert!(
            Instant::now() < deadline,
            "frames missing: {} echoes, {} made-up frames\n{}",
            echoes.len(),
            origins.len(),
            m.console()
        );
        // Keep up to 16 test frames in flight; send them again after 500 ms.
        let now = Instant::now();
        let pending: Vec<u32> = sent_at
            .iter()
            .filter(|(s, t)| !echoes.contains_key(s) && now - **t > Duration::from_millis(500))
            .map(|(s, _)| *s)
            .collect();
        for s in pending {
            socket.send(&test_frame(s)).unwrap();
            sent_at.insert(s, now);
            retransmits += 1;
        }
        while next < TEST_FRAMES && (sent_at.len() - echoes.len()) < 16 && origins.len() == ORIGIN_FRAMES as usize {
            socket.send(&test_frame(next)).unwrap();
            sent_at.insert(next, Instant::now());
            next += 1;
        }
        if !crashed && echoes.len() >= TEST_FRAMES as usize / 2 {
            // The NIC service dies under the exchange and comes back.
            crashed = true;
            let out = m.shq("crash nic");
            assert!(out.contains("recovered in"), "crash nic:\n{out}");
        }
        let Ok(n) = socket.recv(&mut buf) else { continue };
        let frame = &buf[..n];
        assert!(n >= 18, "a {n}-byte frame from the guest");
        match u16::from_be_bytes([frame[12], frame[13]]) {
            ORIGIN_ETHERTYPE => {
                let seq = seq_of(frame);
                assert!(seq < ORIGIN_FRAMES, "made-up frame {seq}");
                assert!(frame == origin_frame(seq).as_slice(), "made-up frame {seq} differs");
                origins.insert(seq, frame.to_vec());
            }
            ECHO_ETHERTYPE => {
                let seq = seq_of(frame);
                assert!(seq < next, "echo of frame {seq}, never sent");
                assert!(frame == echo_of(&test_frame(seq)).as_slice(), "echo {seq} differs");
                echoes.insert(seq, frame.to_vec());
            }
            _ => {} // anything else the guest sends is not ours to check
        }
    }
    assert!(crashed);
    // Tell the echo program to stop.
    let mut stop = GUEST_MAC.to_vec();
    stop.extend_from_slice(&HOST_MAC);
    stop.extend_from_slice(&TEST_ETHERTYPE.to_be_bytes());
    stop.extend_from_slice(b"STOP");
    stop.resize(60, 0);
    let summary = loop {
        socket.send(&stop).unwrap();
        if let Ok(line) = m.wait_for_line("nicecho: received", Duration::from_secs(2)) {
            break line;
        }
        assert!(Instant::now() < deadline, "nicecho did not stop\n{}", m.console());
    };
    assert!(summary.ends_with("errors=0"), "{summary}\n{}", m.console());
    eprintln!(
        "{model_name}: {TEST_FRAMES} frames echoed, {retransmits} sent again, {ORIGIN_FRAMES} made-up frames checked"
    );
    m.shutdown();
}

#[test]
fn virtio_net_frames_byte_for_byte() {
    frame_exchange(NicModel::Virtio);
}

#[test]
fn e1000_frames_byte_for_byte() {
    frame_exchange(NicModel::E1000);
}
