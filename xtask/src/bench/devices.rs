//! The device benchmarks of `cargo xtask bench`: block throughput and IOPS
//! on the data disk, and NIC frames per second both ways, on Kintsugi and
//! on the Linux reference guest with the same QEMU devices in the same run.
//!
//! The machine (both systems): the benchmark machine of `mod.rs` plus two
//! virtio-blk-pci disks (a fresh sparse 64 MiB raw data disk, the one
//! measured, and a fresh FAT32 checkpoint disk, which Kintsugi's vault
//! needs) and a virtio-net-pci card on a QEMU `dgram` netdev: every UDP
//! datagram between QEMU's socket on 127.0.0.1 and ours is one Ethernet
//! frame.
//!
//! A second configuration ([`DeviceSet::AHCI_E1000`]) runs the same
//! benchmarks with the disks on the q35 machine's AHCI controller (`ide-hd`)
//! and an e1000 card, and gets a table of its own.
//!
//! - Kintsugi runs `blkbench data MIB`, `nicbench tx N` and `nicbench rx N`
//!   from the shell; Linux boots with `virtio_blk` and `virtio_net` (or
//!   `ahci`, `sd_mod` and `e1000`) and `/init` runs `linuxbench devices MIB
//!   N DISK`, which does the same operations (`dd` with O_DIRECT, Linux AIO,
//!   an `AF_PACKET` socket) on `/dev/DISK` (`vda`, or `sda` on AHCI).
//! - During every run a host thread ([`HostPeer`]) counts the frames the
//!   guest transmits (a loss check, and the rate as seen on the wire), and
//!   when the guest says `READY` sends it N frames. The host paces itself
//!   on QEMU's socket: it keeps that socket's receive queue (read from
//!   `/proc/net/udp`) below half the default socket buffer, so it never
//!   overflows and no frame is lost before QEMU, while the guest always has
//!   frames waiting: QEMU stops reading its socket while the guest posts no
//!   receive buffers, so the guest sets the pace. The socket's drop counter
//!   is reported.

use super::linux::{self, LinuxQemu};
use super::{median_of, Figures, MEMORY_MB, RUNS};
use kintsugi_tests::{DiskBus, Image, Machine, NicModel, QemuConfig};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// MiB read and written sequentially (from sector 0 of the data disk).
pub const BLK_MIB: u64 = 64;
/// Frames each way.
pub const NIC_FRAMES: u32 = 50_000;
/// Size of the scratch data disk (MiB).
const DATA_DISK_MIB: u64 = 64;
/// Size of the checkpoint disk (MiB).
const CHECKPOINT_DISK_MIB: u64 = 64;

/// Length of every benchmark frame (the longest without a CRC).
const FRAME: usize = 1514;
/// QEMU's default MAC for the first card (both guests have it).
const GUEST_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
/// The host's made-up MAC.
const HOST_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
/// EtherType of the frames the host sends (what `nicbench rx` and
/// `linuxbench` listen for).
const TO_GUEST_ETHERTYPE: u16 = 0x88b5;
/// EtherType of the frames the guests send.
const FROM_GUEST_ETHERTYPE: u16 = 0x88b6;
/// Payload of the guest's "start sending" frame.
const READY: &[u8] = b"READY";
/// Frames the host sends between two looks at QEMU's socket queue.
const BURST: u32 = 16;
/// Receive buffer asked for our socket (bytes): room for a few thousand
/// frames, so that our thread being descheduled for a while loses none.
const HOST_RCVBUF: usize = 16 << 20;
/// How long the host peer may live (a bound on a stuck run).
const PEER_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a Kintsugi shell command of the benchmark may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);
/// Kernel modules for the Linux guest on virtio devices (their
/// dependencies and the virtio PCI transport are added by `kmods`;
/// `af_packet` is built in).
const LINUX_MODULES: [&str; 2] = ["virtio_blk", "virtio_net"];
/// Kernel modules for the Linux guest on AHCI and e1000: `ahci` brings
/// `libahci`, `libata` and `scsi_mod`; `sd_mod` (the SCSI disk driver,
/// which no module depends on) makes the disks block devices.
const LINUX_AHCI_E1000_MODULES: [&str; 3] = ["ahci", "sd_mod", "e1000"];

// ---- The machine --------------------------------------------------------------

/// Which QEMU devices a configuration of the benchmark measures, and what
/// each system needs to know of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceSet {
    /// Its name in progress messages.
    name: &'static str,
    /// The disk controller.
    disk_bus: DiskBus,
    /// The network card.
    nic_model: NicModel,
    /// The modules the Linux guest loads.
    linux_modules: &'static [&'static str],
    /// The data disk's name in the Linux guest (the first disk, whose
    /// serial `linuxbench` checks).
    linux_data_disk: &'static str,
    /// The disk in words, for the table's heading.
    disk_described: &'static str,
    /// The card in words, for the table's heading.
    card_described: &'static str,
    /// Where the Linux guest's console is kept, in the work folder.
    linux_console_log: &'static str,
}

impl DeviceSet {
    /// virtio-blk-pci disks and a virtio-net-pci card.
    pub const VIRTIO: DeviceSet = DeviceSet {
        name: "virtio",
        disk_bus: DiskBus::Virtio,
        nic_model: NicModel::Virtio,
        linux_modules: &LINUX_MODULES,
        linux_data_disk: "vda",
        disk_described: "a virtio-blk-pci data disk",
        card_described: "a virtio-net-pci card",
        linux_console_log: "console-devices.log",
    };

    /// Disks on the q35 machine's AHCI controller and an e1000 card.
    pub const AHCI_E1000: DeviceSet = DeviceSet {
        name: "ahci-e1000",
        disk_bus: DiskBus::Ahci,
        nic_model: NicModel::E1000,
        linux_modules: &LINUX_AHCI_E1000_MODULES,
        linux_data_disk: "sda",
        disk_described: "an AHCI (ICH9, ide-hd) data disk",
        card_described: "an e1000 card",
        linux_console_log: "console-devices-ahci-e1000.log",
    };
}

/// The `-netdev` spec: QEMU's socket at `guest_port`, ours at `host_port`.
fn netdev_spec(guest_port: u16, host_port: u16) -> String {
    format!(
        "dgram,id=net0,local.type=inet,local.host=127.0.0.1,local.port={guest_port},remote.type=inet,remote.host=127.0.0.1,remote.port={host_port}"
    )
}

/// The disks and card of `set` as QEMU arguments, exactly as
/// `QemuConfig::command` writes them for Kintsugi (a unit test checks it),
/// for the Linux guest.
fn device_args(set: DeviceSet, disks: &[PathBuf], netdev: &str) -> Vec<String> {
    let mut a = disk_args_on(set.disk_bus, disks);
    let card = match set.nic_model {
        NicModel::Virtio => "virtio-net-pci,netdev=net0",
        NicModel::E1000 => "e1000,netdev=net0",
    };
    a.extend(["-netdev".into(), netdev.to_string(), "-device".into(), card.into()]);
    a
}

/// The disks alone as QEMU arguments, as `QemuConfig::command` writes them
/// for Kintsugi (virtio-blk-pci, serial `kintsugi-diskN`).
pub(super) fn disk_args(disks: &[PathBuf]) -> Vec<String> {
    disk_args_on(DiskBus::Virtio, disks)
}

/// The disks on `bus` as QEMU arguments, as `QemuConfig::command` writes
/// them for Kintsugi (serial `kintsugi-diskN`; on AHCI, disk N on the q35
/// machine's port `ide.N`).
fn disk_args_on(bus: DiskBus, disks: &[PathBuf]) -> Vec<String> {
    let mut a = Vec::new();
    for (i, d) in disks.iter().enumerate() {
        a.push("-drive".into());
        a.push(format!("file={},if=none,id=disk{i},format=raw", d.display()));
        a.push("-device".into());
        a.push(match bus {
            DiskBus::Virtio => format!("virtio-blk-pci,drive=disk{i},serial=kintsugi-disk{i}"),
            DiskBus::Ahci => format!("ide-hd,drive=disk{i},bus=ide.{i},serial=kintsugi-disk{i}"),
        });
    }
    a
}

/// A fresh sparse data disk and a fresh FAT32 checkpoint disk in `dir`.
fn fresh_disks(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("bench: {}: {e}", dir.display()))?;
    let data = dir.join("data.img");
    std::fs::File::create(&data)
        .and_then(|f| f.set_len(DATA_DISK_MIB << 20))
        .map_err(|e| format!("bench: {}: {e}", data.display()))?;
    let checkpoint = dir.join("checkpoint.img");
    kintsugi_tests::disks::make_fat_disk(&checkpoint, "KCKPT", CHECKPOINT_DISK_MIB)?;
    Ok(vec![data, checkpoint])
}

fn free_port() -> Result<u16, String> {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("bench: no free UDP port: {e}"))
}

// ---- The host's end of the wire --------------------------------------------------

/// What the host saw during one run.
#[derive(Debug, Default)]
struct PeerReport {
    /// Benchmark frames the guest sent that arrived.
    tx_frames: u64,
    /// Arrival of the first and the last of them.
    tx_first: Option<Instant>,
    tx_last: Option<Instant>,
    /// Frames the host sent the guest after `READY`.
    rx_sent: u64,
    /// QEMU's socket's drop counter after the host's frames drained.
    qemu_drops: Option<u64>,
    /// Our socket's drop counter at the end (frames the guest sent that
    /// the host lost).
    host_drops: Option<u64>,
    /// What went wrong, if anything.
    error: Option<String>,
}

impl PeerReport {
    /// The transmit rate the host saw: frames after the first over the
    /// time from the first arrival to the last.
    fn tx_fps(&self) -> Option<f64> {
        let secs = self.tx_last?.duration_since(self.tx_first?).as_secs_f64();
        (secs > 0.0).then(|| (self.tx_frames - 1) as f64 / secs)
    }
}

/// A frame a guest sent us.
#[derive(Debug, PartialEq)]
enum FromGuest {
    /// A transmit-benchmark frame.
    Bench,
    /// "Send me the frames now."
    Ready,
    /// Anything else (the Linux kernel's own traffic, say).
    Other,
}

fn classify(frame: &[u8]) -> FromGuest {
    if frame.len() < 14 || u16::from_be_bytes([frame[12], frame[13]]) != FROM_GUEST_ETHERTYPE {
        return FromGuest::Other;
    }
    if frame[14..].starts_with(READY) {
        FromGuest::Ready
    } else if frame.len() == FRAME && frame[14..].starts_with(b"KBTX") {
        FromGuest::Bench
    } else {
        FromGuest::Other
    }
}

/// Host frame `seq` for the guest.
fn host_frame(seq: u32) -> Vec<u8> {
    let mut f = Vec::with_capacity(FRAME);
    f.extend_from_slice(&GUEST_MAC);
    f.extend_from_slice(&HOST_MAC);
    f.extend_from_slice(&TO_GUEST_ETHERTYPE.to_be_bytes());
    f.extend_from_slice(&seq.to_le_bytes());
    let start = f.len();
    f.extend((start..FRAME).map(|i| (i as u32).wrapping_add(seq) as u8));
    f
}

/// The receive queue (bytes) and drop count of the IPv4 UDP socket bound
/// to `port`, from the text of `/proc/net/udp`.
fn udp_socket_state(proc_net_udp: &str, port: u16) -> Option<(u64, u64)> {
    let wanted = format!(":{port:04X}");
    proc_net_udp.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if !fields.get(1)?.ends_with(&wanted) {
            return None;
        }
        let rx_queue = u64::from_str_radix(fields.get(4)?.split(':').nth(1)?, 16).ok()?;
        let drops = fields.get(12)?.parse().ok()?;
        Some((rx_queue, drops))
    })
}

/// The receive queue and drop count of the local UDP socket on `port`
/// (QEMU's or ours).
fn udp_socket(port: u16) -> Option<(u64, u64)> {
    udp_socket_state(&std::fs::read_to_string("/proc/net/udp").ok()?, port)
}

/// How full the host lets QEMU's socket get (bytes of its receive queue,
/// which counts each datagram's buffer, about 2.3 KiB for one frame): half
/// the default socket buffer, so a burst on top never overflows it.
fn queue_limit() -> u64 {
    let rmem = std::fs::read_to_string("/proc/sys/net/core/rmem_default").ok().and_then(|s| s.trim().parse().ok());
    rmem.unwrap_or(212_992u64) / 2
}

/// The host thread of one run.
struct HostPeer {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<PeerReport>,
    /// QEMU's port.
    guest_port: u16,
    /// Ours.
    host_port: u16,
}

impl HostPeer {
    /// Bind our socket and start counting; send `frames` frames on `READY`.
    fn start(frames: u32) -> Result<HostPeer, String> {
        let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("bench: bind: {e}"))?;
        enlarge_receive_buffer(&socket, HOST_RCVBUF);
        let host_port = socket.local_addr().map_err(|e| e.to_string())?.port();
        let guest_port = free_port()?;
        socket.connect(("127.0.0.1", guest_port)).map_err(|e| format!("bench: connect: {e}"))?;
        socket.set_read_timeout(Some(Duration::from_millis(20))).map_err(|e| e.to_string())?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || peer_loop(&socket, guest_port, frames, &flag));
        Ok(HostPeer { stop, thread, guest_port, host_port })
    }

    fn netdev(&self) -> String {
        netdev_spec(self.guest_port, self.host_port)
    }

    fn finish(self) -> PeerReport {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .unwrap_or_else(|_| PeerReport { error: Some("the host peer panicked".into()), ..PeerReport::default() })
    }
}

/// Ask for a receive buffer of `bytes` for `socket`: beyond
/// `net.core.rmem_max` if we may (`SO_RCVBUFFORCE`, root), else up to it.
/// Best effort: our socket's drop counter is reported either way.
fn enlarge_receive_buffer(socket: &UdpSocket, bytes: usize) {
    use rustix::net::sockopt;
    if sockopt::set_socket_recv_buffer_size_force(socket, bytes).is_err() {
        let _ = sockopt::set_socket_recv_buffer_size(socket, bytes);
    }
}

fn peer_loop(socket: &UdpSocket, guest_port: u16, frames: u32, stop: &AtomicBool) -> PeerReport {
    let deadline = Instant::now() + PEER_TIMEOUT;
    let mut r = PeerReport::default();
    let mut buf = [0u8; 2048];
    let mut answered = false;
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let Ok(n) = socket.recv(&mut buf) else { continue };
        match classify(&buf[..n]) {
            FromGuest::Bench => {
                let now = Instant::now();
                r.tx_frames += 1;
                r.tx_first.get_or_insert(now);
                r.tx_last = Some(now);
            }
            FromGuest::Ready if !answered => {
                answered = true;
                if let Err(e) = send_to_guest(socket, guest_port, frames, deadline, stop, &mut r) {
                    r.error = Some(e);
                }
            }
            _ => {}
        }
    }
    if let Ok(addr) = socket.local_addr() {
        r.host_drops = udp_socket(addr.port()).map(|(_, drops)| drops);
    }
    r
}

/// Send `frames` frames, keeping QEMU's socket queue below the limit; then
/// wait for the queue to drain and note QEMU's socket's drop count.
fn send_to_guest(
    socket: &UdpSocket,
    guest_port: u16,
    frames: u32,
    deadline: Instant,
    stop: &AtomicBool,
    r: &mut PeerReport,
) -> Result<(), String> {
    let limit = queue_limit();
    let mut seq = 0;
    while seq < frames {
        if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
            return Err(format!("the run ended after the host sent {seq} of {frames} frames"));
        }
        let (queued, _) = udp_socket(guest_port)
            .ok_or_else(|| format!("QEMU's socket on port {guest_port} is not in /proc/net/udp"))?;
        if queued >= limit {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        for _ in 0..BURST.min(frames - seq) {
            socket.send(&host_frame(seq)).map_err(|e| format!("send to QEMU: {e}"))?;
            seq += 1;
            r.rx_sent += 1;
        }
    }
    // The guest stops after 5 s of silence at most; QEMU's socket may be
    // gone by then (Linux powers off at once).
    let drained_by = Instant::now() + Duration::from_secs(30);
    while let Some((queued, drops)) = udp_socket(guest_port) {
        r.qemu_drops = Some(drops);
        if queued == 0 || Instant::now() > drained_by || stop.load(Ordering::Relaxed) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Add the host's observations to a run's figures.
fn add_peer_figures(figures: &mut Figures, r: &PeerReport, system: &str) -> Result<(), String> {
    if let Some(e) = &r.error {
        return Err(format!("bench: {system} devices run: host side: {e}"));
    }
    if r.rx_sent == 0 {
        return Err(format!("bench: {system} devices run: the guest's READY frame never reached the host"));
    }
    if r.tx_frames == 0 {
        return Err(format!("bench: {system} devices run: no transmitted frame reached the host"));
    }
    figures.insert("host_tx_frames".into(), r.tx_frames as f64);
    if let Some(fps) = r.tx_fps() {
        figures.insert("host_tx_fps".into(), fps);
    }
    figures.insert("host_rx_sent".into(), r.rx_sent as f64);
    if let Some(d) = r.qemu_drops {
        figures.insert("host_rx_qemu_drops".into(), d as f64);
    }
    if let Some(d) = r.host_drops {
        figures.insert("host_tx_socket_drops".into(), d as f64);
    }
    Ok(())
}

// ---- One run of each system ----------------------------------------------------------

/// The figures a run must produce.
const GUEST_FIGURES: [&str; 8] = [
    "blk_seq_write_mib_s",
    "blk_seq_read_mib_s",
    "blk_rand_read_iops",
    "blk_rand_write_iops",
    "nic_tx_fps",
    "nic_tx_frames",
    "nic_rx_fps",
    "nic_rx_frames",
];

fn check_figures(figures: &Figures, system: &str) -> Result<(), String> {
    if let Some(missing) = GUEST_FIGURES.iter().find(|n| !figures.contains_key(**n)) {
        return Err(format!("bench: the {system} devices run gave no {missing}"));
    }
    if figures["nic_rx_frames"] < 2.0 {
        return Err(format!(
            "bench: in the {system} devices run the guest received {} frames",
            figures["nic_rx_frames"]
        ));
    }
    Ok(())
}

/// Run a shell command of the benchmark; its figures, or its error.
fn kintsugi_step(m: &mut Machine, line: &str) -> Result<Figures, String> {
    let out = m.command(line, COMMAND_TIMEOUT).map_err(|e| format!("bench: `{line}`: {e}"))?;
    if let Some(err) = out.lines().find(|l| l.contains("BENCH-ERROR")) {
        return Err(format!("bench: `{line}`: {err}\n{out}"));
    }
    linux::parse_bench_lines(&out)
}

fn kintsugi_run(set: DeviceSet, image: &Image, disk_dir: &Path) -> Result<Figures, String> {
    let disks = fresh_disks(disk_dir)?;
    let peer = HostPeer::start(NIC_FRAMES)?;
    let cfg = QemuConfig {
        memory_mb: MEMORY_MB,
        disks,
        disk_bus: set.disk_bus,
        nic: Some(set.nic_model),
        netdev: Some(peer.netdev()),
        ..QemuConfig::default()
    };
    let result = (|| {
        let mut m = Machine::boot(image, &cfg, false).map_err(|e| e.to_string())?;
        m.wait_prompt(Duration::from_secs(120)).map_err(|e| e.to_string())?;
        for service in kintsugi_tests::resilient_services(image) {
            m.wait_for_text(&format!("{service} is up"), Duration::from_secs(120)).map_err(|e| e.to_string())?;
        }
        let mut figures = kintsugi_step(&mut m, &format!("run blkbench data {BLK_MIB}"))?;
        figures.extend(kintsugi_step(&mut m, &format!("run nicbench tx {NIC_FRAMES}"))?);
        figures.extend(kintsugi_step(&mut m, &format!("run nicbench rx {NIC_FRAMES}"))?);
        m.power_off(Duration::from_secs(60)).map_err(|e| e.to_string())?;
        Ok::<_, String>(figures)
    })();
    let report = peer.finish();
    let mut figures = result?;
    add_peer_figures(&mut figures, &report, "Kintsugi")?;
    check_figures(&figures, "Kintsugi")?;
    Ok(figures)
}

fn linux_run(set: DeviceSet, work_dir: &Path, disk_dir: &Path) -> Result<(Figures, String), String> {
    let disks = fresh_disks(disk_dir)?;
    let peer = HostPeer::start(NIC_FRAMES)?;
    let mut extra_args = device_args(set, &disks, &peer.netdev());
    // Kintsugi's machine has no VGA either.
    extra_args.extend(["-vga".into(), "none".into()]);
    let q = LinuxQemu { memory_mb: MEMORY_MB, extra_args };
    let (mib, frames) = (BLK_MIB.to_string(), NIC_FRAMES.to_string());
    let args = ["devices", &mib, &frames, set.linux_data_disk];
    let result = linux::run_linuxbench(work_dir, &q, set.linux_modules, &args);
    let report = peer.finish();
    let run = result?;
    let _ = std::fs::write(work_dir.join(set.linux_console_log), &run.console);
    let mut figures = run.figures;
    add_peer_figures(&mut figures, &report, "Linux")?;
    check_figures(&figures, "Linux")?;
    Ok((figures, run.kernel_release))
}

// ---- The table -----------------------------------------------------------------------

/// A rate row: label, figure name, unit.
const RATE_ROWS: [(&str, &str, &str); 7] = [
    ("blk sequential write, 64 KiB requests, then flush", "blk_seq_write_mib_s", "MiB/s"),
    ("blk sequential read, 64 KiB requests", "blk_seq_read_mib_s", "MiB/s"),
    ("blk random 4 KiB reads, queue depth 16", "blk_rand_read_iops", "IOPS"),
    ("blk random 4 KiB writes, queue depth 16", "blk_rand_write_iops", "IOPS"),
    ("nic transmit, 1514-byte frames (guest's clock)", "nic_tx_fps", "frames/s"),
    ("nic transmit, as the host received them", "host_tx_fps", "frames/s"),
    ("nic receive, 1514-byte frames (guest's clock)", "nic_rx_fps", "frames/s"),
];

fn fewest(runs: &[Figures], name: &str) -> Option<f64> {
    runs.iter().filter_map(|f| f.get(name).copied()).min_by(f64::total_cmp)
}

fn most(runs: &[Figures], name: &str) -> Option<f64> {
    runs.iter().filter_map(|f| f.get(name).copied()).max_by(f64::total_cmp)
}

fn shown(v: Option<f64>, unit: &str) -> String {
    match v {
        Some(v) if unit == "MiB/s" => format!("{v:.1} {unit}"),
        Some(v) if unit.is_empty() => format!("{v:.0}"),
        Some(v) => format!("{v:.0} {unit}"),
        None => "-".into(),
    }
}

/// The "Devices" table of `set` from both systems' runs.
fn table(set: DeviceSet, kintsugi: &[Figures], linux: &[Figures], release: &str) -> String {
    let n = NIC_FRAMES;
    let (disk, card, runs) = (set.disk_described, set.card_described, kintsugi.len().min(linux.len()));
    let mut t = format!(
        "Devices: Kintsugi vs Linux {release}, same QEMU (q35, qemu64, TCG, {MEMORY_MB} MiB) with {disk} \
         (64 MiB raw, {BLK_MIB} MiB from sector 0) and {card} on a dgram netdev ({n} frames each way); \
         medians of {runs} alternating runs\n\n\
         | operation | Kintsugi | Linux | Kintsugi / Linux |\n|---|---:|---:|---:|\n"
    );
    for (label, name, unit) in RATE_ROWS {
        let (k, l) = (median_of(kintsugi, name), median_of(linux, name));
        let ratio = match (k, l) {
            (Some(k), Some(l)) if l > 0.0 => format!("{:.2}", k / l),
            _ => "-".into(),
        };
        t.push_str(&format!("| {label} | {} | {} | {ratio} |\n", shown(k, unit), shown(l, unit)));
    }
    let count_rows = [
        (format!("nic transmit: frames the host received of {n} (fewest in a run)"), "host_tx_frames", false),
        ("nic transmit: frames dropped at the host's socket (most in a run)".to_string(), "host_tx_socket_drops", true),
        (format!("nic receive: frames the guest received of {n} (fewest in a run)"), "nic_rx_frames", false),
        ("nic receive: frames dropped inside the guest (most in a run)".to_string(), "nic_rx_dropped_in_guest", true),
        ("nic receive: frames dropped at QEMU's socket (most in a run)".to_string(), "host_rx_qemu_drops", true),
    ];
    for (label, name, worst_is_most) in count_rows {
        let pick = if worst_is_most { most } else { fewest };
        t.push_str(&format!(
            "| {label} | {} | {} | |\n",
            shown(pick(kintsugi, name), ""),
            shown(pick(linux, name), "")
        ));
    }
    t
}

/// Runs of each system on AHCI and e1000.
const AHCI_E1000_RUNS: usize = RUNS;

/// Run the device benchmarks on virtio devices, then on AHCI and e1000
/// (alternating Kintsugi and Linux, [`RUNS`] and [`AHCI_E1000_RUNS`]
/// times each); the two tables, also printed.
pub fn devices_table(image: &Image, work_dir: &Path) -> Result<String, String> {
    crate::tools::ensure(&[&crate::tools::DOSFSTOOLS])?;
    let mut t = device_set_table(DeviceSet::VIRTIO, RUNS, image, work_dir)?;
    t.push('\n');
    t.push_str(&device_set_table(DeviceSet::AHCI_E1000, AHCI_E1000_RUNS, image, work_dir)?);
    Ok(t)
}

/// Run the device benchmarks on `set` (alternating Kintsugi and Linux,
/// `runs` times each); the table, also printed.
fn device_set_table(set: DeviceSet, runs: usize, image: &Image, work_dir: &Path) -> Result<String, String> {
    let disk_root = kintsugi_tests::image::workspace_root().join("target/bench/device-disks");
    let (mut kintsugi, mut linux_runs, mut release) = (Vec::new(), Vec::new(), String::new());
    let name = set.name;
    for i in 0..runs {
        eprintln!("bench: devices ({name}) run {} of {runs}: Kintsugi", i + 1);
        let k = kintsugi_run(set, image, &disk_root.join("kintsugi"))?;
        eprintln!("bench: devices ({name}) Kintsugi: {k:?}");
        kintsugi.push(k);
        eprintln!("bench: devices ({name}) run {} of {runs}: Linux", i + 1);
        let (l, r) = linux_run(set, work_dir, &disk_root.join("linux"))?;
        eprintln!("bench: devices ({name}) Linux: {l:?}");
        linux_runs.push(l);
        release = r;
    }
    let t = table(set, &kintsugi, &linux_runs, &release);
    println!("{t}");
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_gets_the_same_devices_as_kintsugi() {
        let disks = vec![PathBuf::from("/d/data.img"), PathBuf::from("/d/checkpoint.img")];
        let netdev = netdev_spec(40000, 40001);
        let image = Image { kernel: PathBuf::from("/k"), modules: vec![PathBuf::from("/m")], iso: None };
        let cfg = QemuConfig {
            disks: disks.clone(),
            nic: Some(NicModel::Virtio),
            netdev: Some(netdev.clone()),
            ..QemuConfig::default()
        };
        let kintsugi: Vec<String> = cfg.command(&image).get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        let ours = device_args(DeviceSet::VIRTIO, &disks, &netdev);
        assert!(kintsugi.windows(ours.len()).any(|w| w == ours.as_slice()), "{kintsugi:?}\n{ours:?}");
        assert!(netdev.contains("local.port=40000") && netdev.contains("remote.port=40001"));
    }

    #[test]
    fn linux_gets_the_same_ahci_disks_and_e1000_as_kintsugi() {
        let disks = vec![PathBuf::from("/d/data.img"), PathBuf::from("/d/checkpoint.img")];
        let netdev = netdev_spec(40000, 40001);
        let image = Image { kernel: PathBuf::from("/k"), modules: vec![PathBuf::from("/m")], iso: None };
        let set = DeviceSet::AHCI_E1000;
        let cfg = QemuConfig {
            disks: disks.clone(),
            disk_bus: set.disk_bus,
            nic: Some(set.nic_model),
            netdev: Some(netdev.clone()),
            ..QemuConfig::default()
        };
        let kintsugi: Vec<String> = cfg.command(&image).get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        let ours = device_args(set, &disks, &netdev);
        assert!(kintsugi.windows(ours.len()).any(|w| w == ours.as_slice()), "{kintsugi:?}\n{ours:?}");
        assert!(ours.iter().any(|a| a == "ide-hd,drive=disk0,bus=ide.0,serial=kintsugi-disk0"), "{ours:?}");
        assert!(ours.iter().any(|a| a == "e1000,netdev=net0"), "{ours:?}");
        assert!(!ours.iter().any(|a| a.contains("virtio")), "{ours:?}");
        assert_eq!(set.linux_data_disk, "sda");
        assert!(set.linux_modules.contains(&"ahci") && set.linux_modules.contains(&"sd_mod"));
        assert!(set.linux_modules.contains(&"e1000"));
    }

    #[test]
    fn reads_a_socket_from_proc_net_udp() {
        let text = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
                    \x20 7: 0100007F:C570 00000000:0000 07 00000000:00005A00 00:00000000 00000000     0        0 148994 2 00000000e964c1df 0\n\
                    \x2015: 0100007F:9C40 0100007F:9C41 01 00000000:00033C00 00:00000000 00000000  1000        0 148995 2 00000000e964c1e0 318\n";
        assert_eq!(udp_socket_state(text, 0xc570), Some((0x5a00, 0)));
        assert_eq!(udp_socket_state(text, 40000), Some((0x33c00, 318)));
        assert_eq!(udp_socket_state(text, 40001), None);
        assert_eq!(udp_socket_state("header only\n", 40000), None);
    }

    #[test]
    fn classifies_guest_frames() {
        let mut bench = vec![0xff; 6];
        bench.extend_from_slice(&GUEST_MAC);
        bench.extend_from_slice(&FROM_GUEST_ETHERTYPE.to_be_bytes());
        let mut ready = bench.clone();
        bench.extend_from_slice(b"KBTX");
        bench.resize(FRAME, 7);
        ready.extend_from_slice(READY);
        ready.resize(60, 0);
        assert_eq!(classify(&bench), FromGuest::Bench);
        assert_eq!(classify(&ready), FromGuest::Ready);
        assert_eq!(classify(&bench[..FRAME - 1]), FromGuest::Other);
        let mut ipv6 = bench.clone();
        ipv6[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
        assert_eq!(classify(&ipv6), FromGuest::Other);
        assert_eq!(classify(&[0u8; 10]), FromGuest::Other);
    }

    #[test]
    fn host_frames_are_full_size_and_addressed_to_the_guest() {
        let f = host_frame(5);
        assert_eq!(f.len(), FRAME);
        assert_eq!(f[..6], GUEST_MAC);
        assert_eq!(u16::from_be_bytes([f[12], f[13]]), TO_GUEST_ETHERTYPE);
        assert_eq!(f[14..18], 5u32.to_le_bytes());
    }

    #[test]
    fn host_transmit_rate_counts_frames_after_the_first() {
        let t = Instant::now();
        let r = PeerReport {
            tx_frames: 11,
            tx_first: Some(t),
            tx_last: Some(t + Duration::from_millis(500)),
            ..PeerReport::default()
        };
        assert_eq!(r.tx_fps(), Some(20.0));
        let one = PeerReport { tx_frames: 1, tx_first: Some(t), tx_last: Some(t), ..PeerReport::default() };
        assert_eq!(one.tx_fps(), None);
    }

    #[test]
    fn table_has_medians_ratios_and_worst_losses() {
        let run = |scale: f64, rx: f64| -> Figures {
            let mut f: Figures = RATE_ROWS.iter().map(|(_, n, _)| (n.to_string(), 100.0 * scale)).collect();
            f.insert("host_tx_frames".into(), NIC_FRAMES as f64);
            f.insert("nic_rx_frames".into(), rx);
            f.insert("host_rx_qemu_drops".into(), 0.0);
            f
        };
        let n = NIC_FRAMES as f64;
        let k = [run(1.0, n), run(3.0, n - 10.0), run(2.0, n)];
        let l = [run(4.0, n), run(4.0, n), run(4.0, n)];
        let t = table(DeviceSet::VIRTIO, &k, &l, "6.1");
        assert!(t.contains("| blk sequential read, 64 KiB requests | 200.0 MiB/s | 400.0 MiB/s | 0.50 |"), "{t}");
        assert!(t.contains("| blk random 4 KiB writes, queue depth 16 | 200 IOPS | 400 IOPS | 0.50 |"), "{t}");
        let row = format!("frames the guest received of {n} (fewest in a run) | {} | {n} | |", n - 10.0);
        assert!(t.contains(&row), "{t}");
        assert!(t.contains("| nic receive: frames dropped inside the guest (most in a run) | - | - | |"), "{t}");
    }
}
