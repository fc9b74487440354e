//! The web server as a resilient service over the file service: files the
//! host puts in `/www` on the data disk (with mtools, before boot) are
//! downloaded with curl byte for byte; a large download goes on, whole and
//! on one connection, while httpd is crashed in every way the shell's
//! `crash` knows; and a fresh data disk gets the default site.
//!
//! Each test has its own pair of fresh disks.

use kintsugi_tests::noise::noise;
use kintsugi_tests::qemu::free_port;
use kintsugi_tests::{boot_with, disks, Machine, NicModel, QemuConfig};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const STARTUP: Duration = Duration::from_secs(120);

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Boot with `disks`, host port `port` forwarded to the guest's port 80,
/// and wait for DHCP and the web server.
fn boot_web(disks: &[PathBuf]) -> (Machine, u16) {
    let port = free_port();
    let cfg = QemuConfig {
        nic: Some(NicModel::Virtio),
        forwards: vec![(port, 80)],
        disks: disks.to_vec(),
        ..QemuConfig::default()
    };
    let mut m = boot_with(&cfg);
    for text in ["[net] dhcp: address 10.0.2.15/24, gateway 10.0.2.2", "[httpd] serving http on port 80"] {
        if let Err(e) = m.wait_for_text(text, STARTUP) {
            panic!("{e}");
        }
    }
    (m, port)
}

/// Put `files` (name, contents) in `/www` on the data disk `img`.
fn put_www(dir: &Path, img: &Path, files: &[(&str, &[u8])]) {
    let src = dir.join("www-src");
    std::fs::create_dir_all(&src).unwrap();
    disks::mkdirs(img, "/www").unwrap();
    for (name, data) in files {
        let p = src.join(name);
        std::fs::write(&p, data).unwrap();
        disks::put(img, &[&p], "/www").unwrap();
    }
}

/// curl without retries; (exit success, body).
fn curl(args: &[&str]) -> (bool, Vec<u8>) {
    let out = Command::new("curl").args(["-s", "--max-time", "120"]).args(args).output().expect("curl runs");
    (out.status.success(), out.stdout)
}

/// httpd's restarts, from `ps`'s table of resilient services.
fn restarts(m: &mut Machine) -> u64 {
    let ps = m.shq("ps");
    let line = ps.lines().find(|l| l.starts_with("httpd ")).unwrap_or_else(|| panic!("no httpd in ps:\n{ps}"));
    line.split_whitespace().nth(2).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{line}"))
}

#[test]
fn httpd_serves_files_the_host_put_on_the_data_disk() {
    let (dir, disks) = disks::fresh("httpd-files").unwrap();
    let data = noise(3 * 1024 * 1024 + 77, 11);
    let text = b"put on the data disk by the host\n".to_vec();
    put_www(&dir, &disks[0], &[("noise.bin", &data), ("Host Note.txt", &text)]);
    let (mut m, port) = boot_web(&disks);
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    let (ok, body) = curl(&[&url("/noise.bin")]);
    assert!(ok, "curl /noise.bin failed");
    assert_eq!(body.len(), data.len());
    assert_eq!(sha256(&body), sha256(&data), "noise.bin differs");
    let (ok, body) = curl(&[&url("/Host%20Note.txt")]);
    assert!(ok && body == text, "{}", String::from_utf8_lossy(&body));
    let (ok, part) = curl(&["-r", "2000000-2000099", &url("/noise.bin")]);
    assert!(ok && part == data[2_000_000..2_000_100], "range");
    // No index.html: the folder is listed.
    let (ok, listing) = curl(&[&url("/")]);
    let listing = String::from_utf8_lossy(&listing);
    assert!(ok && listing.contains("noise.bin") && listing.contains("Host Note.txt"), "{listing}");
    // `..` does not leave /www; a missing file is 404.
    let (_, head) = curl(&["-i", "--path-as-is", &url("/../fscheck")]);
    assert!(String::from_utf8_lossy(&head).starts_with("HTTP/1.1 400"), "{}", String::from_utf8_lossy(&head));
    let (_, head) = curl(&["-i", &url("/nothing.txt")]);
    assert!(String::from_utf8_lossy(&head).starts_with("HTTP/1.1 404"), "{}", String::from_utf8_lossy(&head));
    // httpd did not write the default site over the host's /www.
    let ls = m.shq("ls /www");
    assert!(!ls.contains("hello.txt") && ls.contains("noise.bin"), "{ls}");
    m.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn httpd_makes_the_default_site_on_a_fresh_disk() {
    let (dir, disks) = disks::fresh("httpd-site").unwrap();
    let (m, port) = boot_web(&disks);
    let (ok, body) = curl(&[&format!("http://127.0.0.1:{port}/hello.txt")]);
    assert!(ok && body == b"Hello from Kintsugi.\n", "{}", String::from_utf8_lossy(&body));
    m.shutdown();
    // It is on the disk, for the host to see.
    assert_eq!(disks::read(&disks[0], "/www/hello.txt").unwrap(), b"Hello from Kintsugi.\n");
    assert!(disks::read(&disks[0], "/www/files/pattern.bin").unwrap().len() == 256 * 1024);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The shell's crash kinds (`crash httpd KIND`; empty: killed).
const KINDS: [&str; 7] = ["", "fault", "hang", "panic", "violation", "corrupt", "poison"];

/// A slow download goes on, whole and unchanged, while httpd is crashed in
/// every way, twice. `poison` commits a checkpoint httpd cannot restore:
/// its companion falls back on the one before and replays the whole log
/// since, so httpd knows every byte it had sent and the connection it was
/// sending on.
#[test]
fn httpd_download_survives_crashes_of_every_kind() {
    const SIZE: usize = 48 << 20;
    let (dir, disks) = disks::fresh("httpd-crashes").unwrap();
    let data = noise(SIZE, 5);
    let want = sha256(&data);
    put_www(&dir, &disks[0], &[("big.bin", &data)]);
    let (mut m, port) = boot_web(&disks);
    let url = format!("http://127.0.0.1:{port}/big.bin");
    // Once without crashes, at full speed (reported, not asserted).
    let start = Instant::now();
    let (ok, body) = curl(&[&url]);
    let secs = start.elapsed().as_secs_f64();
    assert!(ok && body.len() == SIZE && sha256(&body) == want, "the download without crashes differs");
    eprintln!("httpd: {} MiB in {secs:.1} s ({:.2} MiB/s) without crashes", SIZE >> 20, (SIZE >> 20) as f64 / secs);
    let before = restarts(&mut m);
    // Again, slowed down so that it lasts while httpd is crashed in every
    // way, on one connection that must not break.
    let got = Arc::new(AtomicUsize::new(0));
    let download = {
        let got = got.clone();
        std::thread::spawn(move || slow_get(port, "/big.bin", SLOW_RATE, &got))
    };
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let mut crashes = 0;
    for round in 0..2 {
        for kind in KINDS {
            let cmd = format!("crash httpd {kind}");
            let said = m.shq(cmd.trim_end());
            assert!(said.contains("recovered in"), "{cmd}: {said}");
            crashes += 1;
            let had = got.load(Ordering::Relaxed);
            eprintln!("{:.1} s: `{cmd}` at {had} bytes", start.elapsed().as_secs_f64());
            if round == 0 {
                assert!(!download.is_finished(), "the download ended before `{cmd}`: make it larger or slower");
                // The download goes on after the crash.
                let deadline = Instant::now() + Duration::from_secs(60);
                while got.load(Ordering::Relaxed) == had && !download.is_finished() {
                    if Instant::now() > deadline {
                        let net = m.sh("net");
                        let ps = m.sh("ps");
                        eprintln!("{net}\n{ps}");
                        let console = m.console();
                        let tail: Vec<&str> = console.lines().rev().take(80).collect();
                        let tail: Vec<&str> = tail.into_iter().rev().collect();
                        panic!("the download stopped at {had} bytes after `{cmd}`:\n{}", tail.join("\n"));
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
            std::thread::sleep(Duration::from_millis(700));
        }
    }
    let got = match download.join().unwrap() {
        Ok(body) => body,
        Err(e) => {
            let net = m.sh("net");
            panic!("the download failed across the crashes: {e}\n{net}");
        }
    };
    assert_eq!(got.len(), SIZE, "the download across the crashes is short");
    assert!(sha256(&got) == want, "the download across the crashes differs");
    let after = restarts(&mut m);
    assert!(after >= before + crashes, "ps counts {} restarts for {crashes} crashes", after - before);
    let console = m.console();
    assert!(
        console.contains("httpd: restoring generation") && console.contains("nothing is lost"),
        "httpd's fallback after `poison` lost state:\n{}",
        console.lines().filter(|l| l.contains("httpd")).collect::<Vec<_>>().join("\n")
    );
    // Still serving.
    let (ok, part) = curl_range(port);
    assert!(ok && part == data[1000..1100], "a range after the crashes");
    m.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The pace of the download across the crashes (bytes a second).
const SLOW_RATE: usize = 256 << 10;

/// GET `path` on one connection, reading at most `rate` bytes a second in
/// small steps (curl's `--limit-rate` reads megabytes at once and then
/// waits for its average to come down, tens of seconds without a byte that
/// look like a stalled server); `got` counts the body bytes so far. The
/// body, or what went wrong (a status other than 200, a connection that
/// broke or stayed silent for minutes, a body of the wrong length).
fn slow_get(port: u16, path: &str, rate: usize, got: &AtomicUsize) -> Result<Vec<u8>, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(300))).map_err(|e| format!("read timeout: {e}"))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: kintsugi\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("send: {e}"))?;
    let start = Instant::now();
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let mut head: Option<(usize, usize)> = None; // (head length, content length)
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => return Err(format!("reading after {} bytes: {e}", raw.len())),
        };
        raw.extend_from_slice(&buf[..n]);
        if head.is_none() {
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let text = String::from_utf8_lossy(&raw[..end]).into_owned();
                if !text.starts_with("HTTP/1.1 200 ") {
                    return Err(format!("the answer is not 200:\n{text}"));
                }
                let length = text
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| format!("no content length:\n{text}"))?;
                head = Some((end + 4, length));
            }
        }
        let Some((head_len, length)) = head else { continue };
        let body = raw.len() - head_len;
        got.store(body, Ordering::Relaxed);
        if body >= length {
            break;
        }
        let due = Duration::from_secs_f64(body as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    let Some((head_len, length)) = head else { return Err(format!("no head in {} bytes", raw.len())) };
    let body = raw.split_off(head_len);
    if body.len() != length {
        return Err(format!("{} bytes of a body of {length}", body.len()));
    }
    Ok(body)
}

fn curl_range(port: u16) -> (bool, Vec<u8>) {
    curl(&["-r", "1000-1099", &format!("http://127.0.0.1:{port}/big.bin")])
}
