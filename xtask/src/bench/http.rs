//! The web benchmarks of `cargo xtask bench` (`--only http`): Kintsugi's
//! httpd (over net, nic and fs, each under its companion) beside busybox
//! httpd on the Linux reference guest, on the same QEMU user network with
//! the same card (virtio-net-pci) in the same run, each serving the same
//! files from the same kind of FAT32 data disk.
//!
//! The machine (both systems): the benchmark machine of `mod.rs`, a fresh
//! FAT32 data disk (virtio-blk-pci) with `/www/big.bin` ([`BIG_MIB`] MiB of
//! noise) and `/www/index.html` ([`SMALL_BYTES`] bytes), Kintsugi's
//! checkpoint disk, and a virtio-net card on QEMU's user network with a
//! free host port forwarded to the guest's port 80. Linux mounts the data
//! disk with `vfat`, sets QEMU's usual address statically (10.0.2.15/24,
//! gateway 10.0.2.2: the address QEMU's DHCP hands Kintsugi) and runs
//! `busybox httpd -f -p 80 -h /mnt/www`.
//!
//! From the host, on each system in turn: round trips of a 1 KiB GET on a
//! kept-alive connection and on a new connection each time, [`DOWNLOADS`]
//! downloads of the big file (the median is the figure), and
//! `wrk -c 16` on the small file for [`WRK_SECS`] s. In the guest: ICMP
//! echo to the gateway (Kintsugi's shell `ping`, busybox `ping`).
//!
//! Then, Kintsugi only: the big file is downloaded once more while `net`
//! is crashed every [`CRASH_EVERY`] (`crash net KIND` typed at the shell);
//! the host notes every read, and the throughput over time is written as
//! an SVG plot (`target/bench/http-crashes.svg`) with each crash marked.
//! `crash` prints net's recovery time; net's cold start is its companion's
//! first start at boot (logged as "net is up (..., first start in X ms)").

use super::linux::{self, LinuxQemu};
use super::{Figures, MEMORY_MB};
use kintsugi_tests::{disks, Image, Machine, NicModel, QemuConfig};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Size of the big file (MiB).
pub const BIG_MIB: usize = 64;
/// Size of the small file (bytes).
pub const SMALL_BYTES: usize = 1024;
/// Downloads of the big file per system (the median is the figure).
pub const DOWNLOADS: usize = 3;
/// How long `wrk` runs (seconds).
pub const WRK_SECS: u32 = 10;
/// `wrk`'s connections.
pub const WRK_CONNECTIONS: u32 = 16;
/// Round trips per round-trip figure.
const RTT_ROUNDS: usize = 40;
/// ICMP echoes in the guest.
const PINGS: u32 = 6;
/// Time between two crashes of net during the download.
const CRASH_EVERY: Duration = Duration::from_secs(2);
/// The crash kinds, in turn (`crash net KIND`; empty: killed by the kernel).
const CRASH_KINDS: [&str; 6] = ["fault", "hang", "panic", "", "violation", "corrupt"];
/// Width of a bin of the throughput plot (seconds).
const BIN_SECS: f64 = 0.5;
/// Where the plot goes (under the workspace).
const PLOT: &str = "target/bench/http-crashes.svg";
/// How long one download may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(300);
/// Kernel modules for the Linux guest: the card, the disk and vfat (as in
/// the fs benchmarks).
const LINUX_MODULES: [&str; 6] = ["virtio_net", "virtio_blk", "vfat", "nls_cp437", "nls_ascii", "nls_utf8"];
/// Printed by the Linux guest's script just before it starts httpd.
const LINUX_HTTPD_MARKER: &str = "LINUXBENCH-HTTPD";

/// The `wrk` tool.
const WRK: crate::tools::Tool = crate::tools::Tool { command: "wrk", package: "wrk" };

// ---- The files and disks ------------------------------------------------------

/// The small file: a page of text, `SMALL_BYTES` long.
fn small_file() -> Vec<u8> {
    let mut page = b"<!doctype html><title>Kintsugi bench</title><p>".to_vec();
    while page.len() < SMALL_BYTES - 5 {
        page.push(b"abcdefghijklmnopqrstuvwxyz "[page.len() % 27]);
    }
    page.extend_from_slice(b"</p>\n");
    page
}

/// The host's copies of the two files, in `dir`.
fn host_files(dir: &Path) -> Result<(PathBuf, PathBuf), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("bench: {}: {e}", dir.display()))?;
    let (big, small) = (dir.join("big.bin"), dir.join("index.html"));
    if std::fs::metadata(&big).map(|m| m.len()).ok() != Some((BIG_MIB << 20) as u64) {
        let data = kintsugi_tests::noise::noise(BIG_MIB << 20, 9);
        std::fs::write(&big, data).map_err(|e| format!("bench: {}: {e}", big.display()))?;
    }
    std::fs::write(&small, small_file()).map_err(|e| format!("bench: {}: {e}", small.display()))?;
    Ok((big, small))
}

/// Fresh disks in `dir`: the data disk with the files in `/www`, and the
/// checkpoint disk.
fn fresh_disks(dir: &Path, files: &(PathBuf, PathBuf)) -> Result<Vec<PathBuf>, String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("bench: {}: {e}", dir.display()))?;
    let (data, checkpoint) = (dir.join("data.img"), dir.join("checkpoint.img"));
    disks::make_fat_disk(&data, "KDATA", disks::DATA_MIB)?;
    disks::make_fat_disk(&checkpoint, "KCKPT", disks::CHECKPOINT_MIB)?;
    disks::mkdirs(&data, "/www")?;
    disks::put(&data, &[&files.0, &files.1], "/www")?;
    Ok(vec![data, checkpoint])
}

// ---- HTTP from the host -------------------------------------------------------------

/// A response's head.
#[derive(Debug, PartialEq)]
struct Head {
    status: u16,
    content_length: Option<u64>,
    /// The server closes the connection after this response.
    close: bool,
    /// Bytes of the head, the blank line included.
    len: usize,
}

/// The head at the start of `buf`: `None` while it is incomplete.
fn parse_head(buf: &[u8]) -> Option<Result<Head, String>> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let text = String::from_utf8_lossy(&buf[..end]);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut words = status_line.split_whitespace();
    let version = words.next().unwrap_or_default();
    let Some(status) = words.next().and_then(|w| w.parse().ok()) else {
        return Some(Err(format!("bad status line {status_line:?}")));
    };
    // HTTP/1.0 closes unless told otherwise; HTTP/1.1 keeps unless told.
    let mut close = version != "HTTP/1.1";
    let mut content_length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            match value.parse() {
                Ok(n) => content_length = Some(n),
                Err(_) => return Some(Err(format!("bad Content-Length {value:?}"))),
            }
        } else if name.eq_ignore_ascii_case("connection") {
            if value.eq_ignore_ascii_case("close") {
                close = true;
            } else if value.eq_ignore_ascii_case("keep-alive") {
                close = false;
            }
        }
    }
    Some(Ok(Head { status, content_length, close, len: end + 4 }))
}

/// What one download saw.
struct Download {
    /// Body bytes.
    bytes: u64,
    /// From the request sent to the last byte.
    secs: f64,
    /// (seconds since `origin`, body bytes so far) after every read.
    samples: Vec<(f64, u64)>,
}

impl Download {
    fn mib_s(&self) -> f64 {
        self.bytes as f64 / (1 << 20) as f64 / self.secs
    }
}

fn connect(port: u16) -> Result<TcpStream, String> {
    let s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect to port {port}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    let _ = s.set_nodelay(true);
    Ok(s)
}

fn request(path: &str, close: bool) -> String {
    let connection = if close { "close" } else { "keep-alive" };
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: {connection}\r\n\r\n")
}

/// Read one response of `s` (a 200 with a length); its head, and its body's
/// length. `buf` holds bytes read past the previous response; `on_body`
/// sees the body's length so far after every read.
fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>, mut on_body: impl FnMut(u64)) -> Result<(Head, u64), String> {
    let mut chunk = vec![0u8; 64 * 1024];
    let head = loop {
        if let Some(h) = parse_head(buf) {
            break h?;
        }
        let n = s.read(&mut chunk).map_err(|e| format!("reading the head: {e}"))?;
        if n == 0 {
            return Err("the connection closed before a response".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    if head.status != 200 {
        return Err(format!("status {}", head.status));
    }
    buf.drain(..head.len);
    let want = head.content_length.ok_or("no Content-Length")?;
    let mut got = (buf.len() as u64).min(want);
    buf.drain(..got as usize);
    on_body(got);
    while got < want {
        let n = s.read(&mut chunk).map_err(|e| format!("reading the body at {got} of {want} bytes: {e}"))?;
        if n == 0 {
            return Err(format!("the connection closed at {got} of {want} bytes"));
        }
        let body = (n as u64).min(want - got);
        got += body;
        buf.extend_from_slice(&chunk[body as usize..n]);
        on_body(got);
    }
    Ok((head, got))
}

/// Download `path` on a new connection, noting every read against `origin`.
fn download(port: u16, path: &str, origin: Instant) -> Result<Download, String> {
    let mut s = connect(port)?;
    let start = Instant::now();
    s.write_all(request(path, true).as_bytes()).map_err(|e| e.to_string())?;
    let mut samples = Vec::new();
    let (_, bytes) = read_response(&mut s, &mut Vec::new(), |got| {
        samples.push((origin.elapsed().as_secs_f64(), got));
    })?;
    Ok(Download { bytes, secs: start.elapsed().as_secs_f64(), samples })
}

/// The median round trip (µs) of a GET of `path` on one kept-alive
/// connection, or `None` if the server closes after each response.
fn keepalive_rtt_us(port: u16, path: &str) -> Result<Option<f64>, String> {
    let mut s = connect(port)?;
    let mut buf = Vec::new();
    let mut times = Vec::new();
    for i in 0..=RTT_ROUNDS {
        let t0 = Instant::now();
        s.write_all(request(path, false).as_bytes()).map_err(|e| e.to_string())?;
        let (head, _) = read_response(&mut s, &mut buf, |_| {})?;
        // The first one warms up (caches, ARP).
        if i > 0 {
            times.push(t0.elapsed().as_secs_f64() * 1e6);
        }
        if head.close {
            return Ok(None);
        }
    }
    Ok(median(times))
}

/// The median time (µs) to connect, GET `path` and see the server close.
fn new_connection_rtt_us(port: u16, path: &str) -> Result<f64, String> {
    let mut times = Vec::new();
    for i in 0..=RTT_ROUNDS {
        let t0 = Instant::now();
        let mut s = connect(port)?;
        s.write_all(request(path, true).as_bytes()).map_err(|e| e.to_string())?;
        read_response(&mut s, &mut Vec::new(), |_| {})?;
        if i > 0 {
            times.push(t0.elapsed().as_secs_f64() * 1e6);
        }
    }
    median(times).ok_or_else(|| "no round trip".into())
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

/// Wait until the server answers a GET of `path` (or `timeout` passes).
fn wait_serving(port: u16, path: &str, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let tried = connect(port).and_then(|mut s| {
            s.write_all(request(path, true).as_bytes()).map_err(|e| e.to_string())?;
            read_response(&mut s, &mut Vec::new(), |_| {})
        });
        match tried {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(format!("bench: the server never answered: {e}")),
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

// ---- wrk -----------------------------------------------------------------------------

/// What `wrk` printed.
#[derive(Debug, PartialEq)]
struct Wrk {
    requests_per_s: f64,
    requests: u64,
    /// Socket errors (connect, read, write, timeout) and non-2xx/3xx answers.
    errors: u64,
}

/// `wrk`'s summary.
fn parse_wrk(out: &str) -> Result<Wrk, String> {
    let mut rps = None;
    let mut requests = None;
    let mut errors = 0;
    for line in out.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            rps = v.trim().parse().ok();
        } else if let Some((n, _)) = line.split_once(" requests in ") {
            requests = n.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            errors += v.trim().parse::<u64>().map_err(|_| format!("wrk: bad line {line:?}"))?;
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 12, write 0, timeout 3"
            for part in v.split(',') {
                let n = part.split_whitespace().nth(1).and_then(|n| n.parse::<u64>().ok());
                errors += n.ok_or_else(|| format!("wrk: bad line {line:?}"))?;
            }
        }
    }
    match (rps, requests) {
        (Some(requests_per_s), Some(requests)) => Ok(Wrk { requests_per_s, requests, errors }),
        _ => Err(format!("wrk printed no summary:\n{out}")),
    }
}

fn run_wrk(port: u16, path: &str) -> Result<Wrk, String> {
    let out = Command::new(WRK.command)
        .args(["-t", "2", "-c", &WRK_CONNECTIONS.to_string(), "-d", &format!("{WRK_SECS}s")])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .map_err(|e| format!("bench: cannot run wrk: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("bench: wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr)));
    }
    parse_wrk(&text).map_err(|e| format!("bench: {e}"))
}

// ---- What the guests print ---------------------------------------------------------

/// The times (ms) of the `time=X ms` echo lines of a ping (Kintsugi's shell
/// and busybox print them alike).
fn ping_times_ms(out: &str) -> Vec<f64> {
    out.lines()
        .filter_map(|l| {
            let rest = &l[l.find("time=")? + 5..];
            let number = rest.strip_suffix(" ms").or_else(|| rest.split_whitespace().next())?;
            number.trim().parse().ok()
        })
        .collect()
}

/// The recovery time (ms) `crash` printed ("...; recovered in 12.345 ms").
fn recovered_ms(out: &str) -> Option<f64> {
    let rest = &out[out.find("recovered in ")? + 13..];
    rest.split_whitespace().next()?.parse().ok()
}

/// `service`'s first start (ms) from its companion's "is up" line.
fn first_start_ms(console: &str, service: &str) -> Option<f64> {
    let line = console.lines().find(|l| l.contains(&format!("{service} is up (")))?;
    let rest = &line[line.find("first start in ")? + 15..];
    rest.split_whitespace().next()?.parse().ok()
}

// ---- One run of each system -----------------------------------------------------------

/// The figures both systems give from the host: round trips, downloads, wrk.
fn measure_server(port: u16, system: &str) -> Result<Figures, String> {
    let mut f = Figures::new();
    let keepalive = keepalive_rtt_us(port, "/index.html").map_err(|e| format!("bench: {system}: keep-alive: {e}"))?;
    f.insert("keepalive".into(), if keepalive.is_some() { 1.0 } else { 0.0 });
    if let Some(us) = keepalive {
        f.insert("keepalive_rtt_us".into(), us);
    }
    let us =
        new_connection_rtt_us(port, "/index.html").map_err(|e| format!("bench: {system}: new connections: {e}"))?;
    f.insert("newconn_rtt_us".into(), us);
    let mut speeds = Vec::new();
    for i in 0..DOWNLOADS {
        let d = download(port, "/big.bin", Instant::now()).map_err(|e| format!("bench: {system}: download: {e}"))?;
        if d.bytes != (BIG_MIB << 20) as u64 {
            return Err(format!("bench: {system}: the download gave {} bytes", d.bytes));
        }
        eprintln!("bench: {system}: download {} of {DOWNLOADS}: {:.2} MiB/s", i + 1, d.mib_s());
        speeds.push(d.mib_s());
    }
    f.insert("download_mib_s".into(), median(speeds).unwrap_or_default());
    let w = run_wrk(port, "/index.html")?;
    eprintln!("bench: {system}: wrk: {w:?}");
    f.insert("wrk_rps".into(), w.requests_per_s);
    f.insert("wrk_requests".into(), w.requests as f64);
    f.insert("wrk_errors".into(), w.errors as f64);
    Ok(f)
}

/// One crash of net during the download.
#[derive(Debug)]
struct Crash {
    /// When `crash` was typed (seconds since the download began).
    at: f64,
    kind: &'static str,
    /// What `crash` printed.
    recovery_ms: Option<f64>,
}

/// The download under crashes.
struct CrashRun {
    download: Download,
    crashes: Vec<Crash>,
}

fn crash_run(m: &mut Machine, port: u16) -> Result<CrashRun, String> {
    let origin = Instant::now();
    let thread = std::thread::spawn(move || download(port, "/big.bin", origin));
    let mut crashes = Vec::new();
    let mut next = origin + CRASH_EVERY;
    loop {
        while Instant::now() < next && !thread.is_finished() {
            std::thread::sleep(Duration::from_millis(50));
        }
        if thread.is_finished() || origin.elapsed() > DOWNLOAD_TIMEOUT {
            break;
        }
        let kind = CRASH_KINDS[crashes.len() % CRASH_KINDS.len()];
        let at = origin.elapsed().as_secs_f64();
        let line = format!("crash net {kind}");
        let out = m.command(line.trim_end(), Duration::from_secs(120)).map_err(|e| format!("bench: `{line}`: {e}"))?;
        let recovery_ms = recovered_ms(&out);
        eprintln!("bench: {at:.1} s: `{}`: {:?} ms", line.trim_end(), recovery_ms);
        crashes.push(Crash { at, kind, recovery_ms });
        next += CRASH_EVERY;
    }
    let download = thread.join().map_err(|_| "bench: the download thread panicked".to_string())?;
    let download = download.map_err(|e| format!("bench: the download under crashes of net failed: {e}"))?;
    if download.bytes != (BIG_MIB << 20) as u64 {
        return Err(format!("bench: the download under crashes gave {} bytes", download.bytes));
    }
    Ok(CrashRun { download, crashes })
}

fn kintsugi_run(image: &Image, disk_dir: &Path, files: &(PathBuf, PathBuf)) -> Result<(Figures, CrashRun), String> {
    let disks = fresh_disks(disk_dir, files)?;
    let port = kintsugi_tests::qemu::free_port();
    let cfg = QemuConfig {
        memory_mb: MEMORY_MB,
        disks,
        nic: Some(NicModel::Virtio),
        forwards: vec![(port, 80)],
        ..QemuConfig::default()
    };
    let mut m = Machine::boot(image, &cfg, false).map_err(|e| e.to_string())?;
    m.wait_prompt(Duration::from_secs(120)).map_err(|e| e.to_string())?;
    for service in kintsugi_tests::resilient_services(image) {
        m.wait_for_text(&format!("{service} is up"), Duration::from_secs(120)).map_err(|e| e.to_string())?;
    }
    for text in ["[net] dhcp: address", "[httpd] serving http on port 80"] {
        m.wait_for_text(text, Duration::from_secs(120)).map_err(|e| e.to_string())?;
    }
    wait_serving(port, "/index.html", Duration::from_secs(60))?;
    let mut f = measure_server(port, "Kintsugi")?;
    if let Some(ms) = first_start_ms(&m.console(), "net") {
        f.insert("net_cold_start_ms".into(), ms);
    }
    let out = m.command(&format!("ping 10.0.2.2 {PINGS}"), Duration::from_secs(60)).map_err(|e| e.to_string())?;
    if let Some(ms) = median(ping_times_ms(&out)) {
        f.insert("icmp_rtt_ms".into(), ms);
    }
    let crashes = crash_run(&mut m, port)?;
    m.power_off(Duration::from_secs(60)).map_err(|e| e.to_string())?;
    Ok((f, crashes))
}

/// The Linux guest's script: mount the data disk, set the address QEMU's
/// DHCP would give, ping the gateway, serve `/www`.
fn linux_script() -> String {
    [
        "mkdir -p /mnt",
        "mount -t vfat /dev/vda /mnt || echo 'LINUXBENCH-ERROR mount -t vfat /dev/vda'",
        "ifconfig lo 127.0.0.1 up",
        "ifconfig eth0 10.0.2.15 netmask 255.255.255.0 up || echo 'LINUXBENCH-ERROR ifconfig eth0'",
        "route add default gw 10.0.2.2",
        &format!("ping -c {PINGS} 10.0.2.2"),
        &format!("echo {LINUX_HTTPD_MARKER}"),
        "httpd -f -p 80 -h /mnt/www || echo 'LINUXBENCH-ERROR httpd'",
    ]
    .join("\n")
}

fn linux_run(work_dir: &Path, disk_dir: &Path, files: &(PathBuf, PathBuf)) -> Result<(Figures, String), String> {
    let disks = fresh_disks(disk_dir, files)?;
    let port = kintsugi_tests::qemu::free_port();
    let mut extra_args = super::devices::disk_args(&disks);
    extra_args.extend([
        "-netdev".into(),
        format!("user,id=net0,hostfwd=tcp::{port}-:80"),
        "-device".into(),
        "virtio-net-pci,netdev=net0".into(),
        // Kintsugi's machine has no VGA either.
        "-vga".into(),
        "none".into(),
    ]);
    let q = LinuxQemu { memory_mb: MEMORY_MB, extra_args };
    let mut guest = linux::start_guest(work_dir, &q, &LINUX_MODULES, &linux_script())?;
    guest.wait_for(LINUX_HTTPD_MARKER, Duration::from_secs(180))?;
    let measured =
        wait_serving(port, "/index.html", Duration::from_secs(60)).and_then(|_| measure_server(port, "Linux"));
    let release = guest.kernel_release.clone();
    let console = guest.stop();
    let _ = std::fs::write(work_dir.join("console-http.log"), &console);
    let mut f = measured?;
    if let Some(ms) = median(ping_times_ms(&console)) {
        f.insert("icmp_rtt_ms".into(), ms);
    }
    Ok((f, release))
}

// ---- The tables and the plot -------------------------------------------------------------

/// Throughput (MiB/s) per bin of `width` seconds, from cumulative samples.
fn bins(samples: &[(f64, u64)], width: f64) -> Vec<f64> {
    let Some(&(end, _)) = samples.last() else { return Vec::new() };
    let n = (end / width).ceil().max(1.0) as usize;
    let mut bytes = vec![0u64; n];
    let mut before = 0;
    for &(t, total) in samples {
        let i = ((t / width) as usize).min(n - 1);
        bytes[i] += total - before;
        before = total;
    }
    // The last bin ends with the last byte: its rate is over its own length.
    let last = end - (n - 1) as f64 * width;
    let span = |i: usize| if i + 1 == n && last > 0.0 { last } else { width };
    bytes.iter().enumerate().map(|(i, &b)| b as f64 / (1 << 20) as f64 / span(i)).collect()
}

/// The longest time (ms) without a byte that began in `[from, from +
/// window]` (a gap may end after the window: a stall that lasts to the
/// next crash and beyond counts whole).
fn longest_stall_ms(samples: &[(f64, u64)], from: f64, window: f64) -> f64 {
    let mut last = from;
    let mut worst: f64 = 0.0;
    for &(t, _) in samples.iter().filter(|(t, _)| *t > from) {
        if last > from + window {
            break;
        }
        worst = worst.max(t - last);
        last = t;
    }
    worst * 1000.0
}

/// The plot: throughput over time, each crash a red line with its kind.
fn svg(bins: &[f64], width: f64, crashes: &[Crash]) -> String {
    let (w, h, left, right, top, bottom) = (900.0, 380.0, 60.0, 20.0, 30.0, 50.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let t_max = (bins.len() as f64 * width).max(1.0);
    let y_max = bins.iter().copied().fold(0.0, f64::max).max(0.1) * 1.15;
    let x = |t: f64| left + t / t_max * pw;
    let y = |v: f64| top + ph - v / y_max * ph;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{left}\" y=\"18\" font-size=\"14\">Kintsugi: {BIG_MIB} MiB download through QEMU's user network while net is crashed every {} s (bins of {width} s)</text>\n",
        CRASH_EVERY.as_secs()
    );
    s.push_str(&format!(
        "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"black\"/>\n",
        top + ph,
        left + pw,
        top + ph,
        top + ph
    ));
    for i in 0..=5 {
        let v = y_max * i as f64 / 5.0;
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{v:.2}</text>\n<line x1=\"{left}\" y1=\"{:.1}\" x2=\"{}\" y2=\"{:.1}\" stroke=\"#ddd\"/>\n",
            left - 5.0,
            y(v) + 4.0,
            y(v),
            left + pw,
            y(v)
        ));
    }
    let step = ((t_max / 10.0).ceil() as u64).max(1);
    for t in (0..=t_max as u64).step_by(step as usize) {
        s.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{t}</text>\n",
            x(t as f64),
            top + ph + 16.0
        ));
    }
    s.push_str(&format!(
        "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">seconds since the request</text>\n\
         <text x=\"14\" y=\"{:.1}\" transform=\"rotate(-90 14 {:.1})\" text-anchor=\"middle\">MiB/s</text>\n",
        left + pw / 2.0,
        h - 10.0,
        top + ph / 2.0,
        top + ph / 2.0
    ));
    for c in crashes {
        let cx = x(c.at);
        let kind = if c.kind.is_empty() { "kill" } else { c.kind };
        s.push_str(&format!(
            "<line class=\"crash\" x1=\"{cx:.1}\" y1=\"{top}\" x2=\"{cx:.1}\" y2=\"{}\" stroke=\"red\" stroke-dasharray=\"4 3\"/>\n\
             <text x=\"{:.1}\" y=\"{}\" fill=\"red\">{kind}</text>\n",
            top + ph,
            cx + 3.0,
            top + 12.0
        ));
    }
    let points: Vec<String> =
        bins.iter().enumerate().map(|(i, v)| format!("{:.1},{:.1}", x((i as f64 + 0.5) * width), y(*v))).collect();
    s.push_str(&format!(
        "<polyline fill=\"none\" stroke=\"#1f5fbf\" stroke-width=\"2\" points=\"{}\"/>\n",
        points.join(" ")
    ));
    s.push_str("</svg>\n");
    s
}

/// A row of the main table: label, figure, unit, decimals, goal (at least
/// this ratio of Linux's figure).
type WebRow = (String, &'static str, &'static str, usize, Option<f64>);

/// A figure with its unit, or "-".
fn shown(v: Option<f64>, unit: &str, decimals: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.decimals$} {unit}"))
}

/// The tables from both systems' figures and the crash run.
fn table(k: &Figures, l: &Figures, release: &str, c: &CrashRun, plot: &str) -> String {
    let mut t = format!(
        "Web: Kintsugi's httpd (through net, nic and fs, each under its companion) vs busybox httpd on Linux {release}, \
         same QEMU (q35, qemu64, TCG, {MEMORY_MB} MiB), virtio-net-pci on QEMU's user network (host port forwarded to \
         80), files on a virtio-blk FAT32 data disk; one boot of each in the same run\n\n\
         | figure | Kintsugi | Linux | Kintsugi / Linux | goal |\n|---|---:|---:|---:|---|\n"
    );
    let get = |f: &Figures, n: &str| f.get(n).copied();
    let rows: [WebRow; 5] = [
        (format!("download of a {BIG_MIB} MiB file, median of {DOWNLOADS}"), "download_mib_s", "MiB/s", 2, Some(0.9)),
        (
            format!("GETs of a 1 KiB file, {WRK_CONNECTIONS} connections with keep-alive (wrk, {WRK_SECS} s)"),
            "wrk_rps",
            "requests/s",
            0,
            None,
        ),
        (
            format!("TCP round trip: GET of 1 KiB on a kept-alive connection, median of {RTT_ROUNDS}"),
            "keepalive_rtt_us",
            "us",
            0,
            None,
        ),
        (
            format!("GET of 1 KiB on a new connection (connect to close), median of {RTT_ROUNDS}"),
            "newconn_rtt_us",
            "us",
            0,
            None,
        ),
        (format!("ICMP echo from the guest to the gateway 10.0.2.2, median of {PINGS}"), "icmp_rtt_ms", "ms", 3, None),
    ];
    for (label, name, unit, decimals, goal) in &rows {
        let (kv, lv) = (get(k, name), get(l, name));
        let ratio = match (kv, lv) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        let verdict = match (goal, ratio) {
            (Some(g), Some(r)) => format!("at least {g:.1} of Linux: {}", if r >= *g { "met" } else { "NOT met" }),
            (Some(g), None) => format!("at least {g:.1} of Linux"),
            _ => String::new(),
        };
        t.push_str(&format!(
            "| {label} | {} | {} | {} | {verdict} |\n",
            shown(kv, unit, *decimals),
            shown(lv, unit, *decimals),
            ratio.map_or("-".into(), |r| format!("{r:.2}"))
        ));
    }
    let mut notes = Vec::new();
    for (f, who) in [(k, "Kintsugi's httpd"), (l, "busybox httpd")] {
        if get(f, "keepalive") == Some(0.0) {
            notes.push(format!(
                "{who} closes the connection after every response (no keep-alive): its kept-alive round trip is \
                 not measurable, and wrk opened a new connection for every request"
            ));
        }
        if let Some(e) = get(f, "wrk_errors").filter(|e| *e > 0.0) {
            notes.push(format!("wrk's errors against {who} (socket errors and non-2xx answers): {e:.0}"));
        }
    }
    for n in notes {
        t.push_str(&format!("\nNote: {n}.\n"));
    }

    let recoveries: Vec<f64> = c.crashes.iter().filter_map(|c| c.recovery_ms).collect();
    let recovery = median(recoveries.clone());
    let cold = get(k, "net_cold_start_ms");
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "-".into(),
    };
    t.push_str(&format!(
        "\nnet crashed every {} s during a {BIG_MIB} MiB download (Kintsugi; plot: `{plot}`), each figure beside its \
         reference from the same boot\n\n| figure | under crashes | reference | ratio |\n|---|---:|---:|---:|\n",
        CRASH_EVERY.as_secs()
    ));
    t.push_str(&format!(
        "| net: crash to first reply, median of {} crashes / first start at boot (cold start) | {} | {} | {} |\n",
        recoveries.len(),
        shown(recovery, "ms", 1),
        shown(cold, "ms", 1),
        ratio(recovery, cold)
    ));
    let (under, without) = (Some(c.download.mib_s()), get(k, "download_mib_s"));
    t.push_str(&format!(
        "| download of {BIG_MIB} MiB: with net crashed {} times / without crashes | {} | {} | {} |\n",
        c.crashes.len(),
        shown(under, "MiB/s", 2),
        shown(without, "MiB/s", 2),
        ratio(under, without)
    ));
    t.push_str(
        "\n| crash | at | kind | recovery (guest) | longest stall of the download until the next crash (host) | throughput in the 2 s after |\n\
         |---:|---:|---|---:|---:|---:|\n",
    );
    let s = &c.download.samples;
    for (i, cr) in c.crashes.iter().enumerate() {
        let bytes_at = |t: f64| s.iter().take_while(|(st, _)| *st <= t).last().map_or(0, |(_, b)| *b);
        let after = (bytes_at(cr.at + 2.0) - bytes_at(cr.at)) as f64 / (1 << 20) as f64 / 2.0;
        // Until the next crash (or for 10 s after the last one).
        let window = c.crashes.get(i + 1).map_or(10.0, |next| next.at - cr.at);
        t.push_str(&format!(
            "| {} | {:.1} s | {} | {} | {:.0} ms | {after:.2} MiB/s |\n",
            i + 1,
            cr.at,
            if cr.kind.is_empty() { "kill" } else { cr.kind },
            shown(cr.recovery_ms, "ms", 1),
            longest_stall_ms(s, cr.at, window)
        ));
    }
    t
}

/// Run the web benchmarks (one boot of Kintsugi, then one of Linux); the
/// tables, also printed; the plot is written to [`PLOT`].
pub fn http_table(image: &Image, work_dir: &Path) -> Result<String, String> {
    crate::tools::ensure(&[&crate::tools::DOSFSTOOLS, &crate::tools::MTOOLS, &WRK])?;
    let root = kintsugi_tests::image::workspace_root();
    let bench_dir = root.join("target/bench/http");
    let files = host_files(&bench_dir.join("files"))?;
    eprintln!("bench: http: Kintsugi");
    let (k, crashes) = kintsugi_run(image, &bench_dir.join("kintsugi"), &files)?;
    eprintln!("bench: http Kintsugi: {k:?}");
    eprintln!("bench: http: Linux");
    let (l, release) = linux_run(work_dir, &bench_dir.join("linux"), &files)?;
    eprintln!("bench: http Linux: {l:?}");
    let plot = root.join(PLOT);
    let picture = svg(&bins(&crashes.download.samples, BIN_SECS), BIN_SECS, &crashes.crashes);
    std::fs::write(&plot, picture).map_err(|e| format!("bench: {}: {e}", plot.display()))?;
    eprintln!("bench: plot written to {}", plot.display());
    let _ = std::fs::remove_dir_all(bench_dir.join("kintsugi"));
    let _ = std::fs::remove_dir_all(bench_dir.join("linux"));
    let t = table(&k, &l, &release, &crashes, PLOT);
    println!("{t}");
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_response_heads() {
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"), None);
        let h = parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: 1024\r\n\r\nbody").unwrap().unwrap();
        assert_eq!(h, Head { status: 200, content_length: Some(1024), close: false, len: 41 });
        let h = parse_head(b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n").unwrap().unwrap();
        assert!(h.close && h.status == 404 && h.content_length.is_none());
        // HTTP/1.0 closes unless it says keep-alive.
        assert!(parse_head(b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n").unwrap().unwrap().close);
        assert!(!parse_head(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n\r\n").unwrap().unwrap().close);
        assert!(parse_head(b"garbage\r\n\r\n").unwrap().is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: lots\r\n\r\n").unwrap().is_err());
    }

    #[test]
    fn parses_wrk_summaries() {
        let out = "Running 10s test @ http://127.0.0.1:8999/\n  2 threads and 16 connections\n  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency    16.06ms   56.20ms 427.58ms   94.56%\n    Req/Sec     1.04k   451.61     1.75k    60.00%\n  3177 requests in 2.00s, 3.73MB read\nRequests/sec:   1584.64\nTransfer/sec:      1.86MB\n";
        assert_eq!(parse_wrk(out).unwrap(), Wrk { requests_per_s: 1584.64, requests: 3177, errors: 0 });
        let out = "  120 requests in 10.00s, 1MB read\n  Socket errors: connect 0, read 12, write 1, timeout 3\n  Non-2xx or 3xx responses: 4\nRequests/sec:     12.00\n";
        assert_eq!(parse_wrk(out).unwrap(), Wrk { requests_per_s: 12.0, requests: 120, errors: 20 });
        assert!(parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n").is_err());
        assert!(parse_wrk("1 requests in 1s\nRequests/sec: 1\n  Socket errors: connect x\n").is_err());
    }

    #[test]
    fn reads_ping_crash_and_start_times() {
        let kintsugi = "56 bytes from 10.0.2.2: seq=1 time=1.250 ms\nno answer from 10.0.2.2: seq=2\n56 bytes from 10.0.2.2: seq=3 time=0.750 ms\n3 sent, 2 received, 33% loss, rtt min/avg/max 0.750/1.000/1.250 ms\n";
        assert_eq!(ping_times_ms(kintsugi), [1.25, 0.75]);
        let busybox = "PING 10.0.2.2 (10.0.2.2): 56 data bytes\n64 bytes from 10.0.2.2: seq=0 ttl=255 time=2.317 ms\nround-trip min/avg/max = 2.317/2.317/2.317 ms\n";
        assert_eq!(ping_times_ms(busybox), [2.317]);
        assert_eq!(recovered_ms("net: panicked; recovered in 30.322 ms (restart #2)\n"), Some(30.322));
        assert_eq!(recovered_ms("crash: 'net' is not a resilient service\n"), None);
        let console = "[kv-companion] kv is up (service pid 20, first start in 3.5 ms)\n[net-companion] net is up (service pid 16, first start in 12.034 ms)\n";
        assert_eq!(first_start_ms(console, "net"), Some(12.034));
        assert_eq!(first_start_ms(console, "fs"), None);
    }

    #[test]
    fn bins_and_stalls_follow_the_samples() {
        let mib = 1u64 << 20;
        // 1 MiB in the first half second, nothing for 1.2 s, then 2 MiB,
        // the last 1 MiB in a last bin of 0.25 s.
        let samples = [(0.1, mib / 2), (0.4, mib), (1.6, 2 * mib), (1.75, 3 * mib)];
        assert_eq!(bins(&samples, 0.5), [2.0, 0.0, 0.0, 8.0]);
        assert!((longest_stall_ms(&samples, 0.3, 10.0) - 1200.0).abs() < 1e-6);
        assert!((longest_stall_ms(&samples, 1.7, 10.0) - 50.0).abs() < 1e-6);
        // No byte in the window: the stall runs to the next byte after it.
        assert!((longest_stall_ms(&samples, 0.5, 0.5) - 1100.0).abs() < 1e-6);
        // A gap that begins after the window is not this crash's.
        assert!((longest_stall_ms(&samples, 0.0, 0.2) - 300.0).abs() < 1e-6);
        assert!(bins(&[], 0.5).is_empty());
    }

    #[test]
    fn the_plot_marks_every_crash() {
        let crashes = [
            Crash { at: 5.0, kind: "fault", recovery_ms: Some(20.0) },
            Crash { at: 10.0, kind: "", recovery_ms: None },
        ];
        let s = svg(&[1.0, 1.5, 0.0, 1.2], 0.5, &crashes);
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert_eq!(s.matches("class=\"crash\"").count(), 2);
        assert!(s.contains(">fault</text>") && s.contains(">kill</text>"));
    }
}
