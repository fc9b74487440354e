//! `cargo xtask profile [--exec 'CMDS'] [--seconds N] [--hz HZ] [--download MIB]`:
//! where the CPU goes, by program and function, kernel and user mode.
//! `--download MIB` profiles the web path: a file of MIB MiB is put in
//! `/www` on the data disk, and after the commands the host downloads it
//! through a forwarded port (httpd, fs, blk, net and nic at work).
//!
//! How it works (the choices, for whoever reads the numbers):
//! - The kernel is booted with `profile=HZ` on its command line, which makes
//!   it allocate a sample buffer; nothing is sampled until `run profile
//!   start` (the `Profile` system call), so boot is left out.
//! - Sampling clock: the legacy PIT at HZ (4000 by default, four times the
//!   scheduler's tick), delivered as an NMI through the I/O APIC. The kernel
//!   runs with interrupts off, so an ordinary timer interrupt could never
//!   land inside a system call; the NMI does, and kernel time is seen.
//! - Stacks: frame-pointer walks (the kernel and every program are built
//!   with `force-frame-pointers=yes`, see `.cargo/config.toml`), the kernel
//!   stack first, then the user stack of the process that entered the
//!   kernel, read through its page tables.
//! - Transport: samples stay in a kernel buffer (16 MiB, about a minute at
//!   4000 Hz) until `run profile stop`, when the kernel writes them to the
//!   serial console, identical stacks merged with a count. Nothing is sent
//!   while sampling, so the transport costs the measured work nothing.
//! - The host resolves addresses with the symbols of the kernel ELF and of
//!   the program ELFs in the image (a process's program is found by its
//!   name), prints the top functions per program and writes
//!   `target/profile/`: `report.txt`, `stacks.folded` and `flamegraph.svg`
//!   (drawn by the `inferno` crate), plus the console log.
//!
//! Each run uses fresh disks in `target/profile/disks`.

pub mod report;
pub mod samples;
pub mod symbols;

use crate::{assemble, tools};
use kintsugi_tests::image::workspace_root;
use kintsugi_tests::{Machine, NicModel, QemuConfig};
use std::time::Duration;

/// Options of `profile`.
pub struct ProfileOptions {
    /// Shell commands to run while sampling, separated by `;`.
    pub exec: Option<String>,
    /// Seconds to keep sampling after the commands.
    pub seconds: Option<u64>,
    /// Samples per second.
    pub hz: u32,
    /// Functions listed per program.
    pub top: usize,
    /// MiB of a file the host downloads through httpd while sampling.
    pub download: Option<u64>,
}

const COMMAND_TIMEOUT: Duration = Duration::from_secs(900);

/// Run the profile; prints the report.
pub fn run(o: ProfileOptions) -> Result<(), String> {
    tools::ensure(&[&tools::QEMU, &tools::DOSFSTOOLS])?;
    let image = assemble::build()?;
    let out_dir = workspace_root().join("target/profile");
    let disk_dir = out_dir.join("disks");
    let _ = std::fs::remove_dir_all(&disk_dir);
    let disks = kintsugi_tests::disks::ensure(&disk_dir)?;
    let port = kintsugi_tests::qemu::free_port();
    if let Some(mib) = o.download {
        put_download(&disk_dir, &disks[0], mib)?;
    }
    let cfg = QemuConfig {
        disks,
        nic: Some(NicModel::Virtio),
        forwards: vec![(port, 80)],
        cmdline: format!("profile={}", o.hz),
        ..QemuConfig::default()
    };
    eprintln!("xtask: booting Kintsugi with the profiler enabled");
    let mut m = Machine::boot(&image, &cfg, false).map_err(|e| e.to_string())?;
    let console = (|| -> Result<String, String> {
        m.wait_prompt(Duration::from_secs(120)).map_err(|e| e.to_string())?;
        for service in kintsugi_tests::resilient_services(&image) {
            m.wait_for_text(&format!("{service} is up"), Duration::from_secs(120)).map_err(|e| e.to_string())?;
        }
        if o.download.is_some() {
            // A SYN before httpd listens is refused, and QEMU's user
            // network tries again only seconds later.
            m.wait_for_text("[httpd] serving http on port 80", Duration::from_secs(120)).map_err(|e| e.to_string())?;
        }
        let started = m.command("run profile start", COMMAND_TIMEOUT).map_err(|e| e.to_string())?;
        if !started.contains("profile: sampling at") {
            return Err(format!("the profiler did not start:\n{started}"));
        }
        let commands: Vec<&str> =
            o.exec.as_deref().unwrap_or("").split(';').map(str::trim).filter(|c| !c.is_empty()).collect();
        for c in &commands {
            eprintln!("xtask: profiling `{c}`");
            let out = m.command(c, COMMAND_TIMEOUT).map_err(|e| e.to_string())?;
            print!("{out}");
        }
        if let Some(mib) = o.download {
            eprintln!("xtask: downloading /{DOWNLOAD_NAME} ({mib} MiB) from the host");
            // A GET of the front page first: ARP and the first
            // connection's costs stay out of the download's figure.
            let _ = download_path(port, "/", None);
            let t0 = std::time::Instant::now();
            let got = download(port, mib << 20)?;
            let secs = t0.elapsed().as_secs_f64();
            println!("download: {got} bytes in {secs:.2} s ({:.2} MiB/s)", got as f64 / (1 << 20) as f64 / secs);
        }
        let seconds = o.seconds.unwrap_or(if commands.is_empty() && o.download.is_none() { 10 } else { 0 });
        if seconds > 0 {
            eprintln!("xtask: sampling {seconds} s more");
            std::thread::sleep(Duration::from_secs(seconds));
        }
        let stopped = m.command("run profile stop", COMMAND_TIMEOUT).map_err(|e| e.to_string())?;
        let _ = m.power_off(Duration::from_secs(60));
        Ok(stopped)
    })();
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let _ = std::fs::write(out_dir.join("console.log"), m.console());
    let stopped = console?;
    let dump = samples::parse(&stopped)?;
    let kernel_elf = workspace_root().join("target/x86_64-unknown-none/release/kintsugi-kernel");
    let image_dir = image.kernel.parent().unwrap_or(&image.kernel).to_path_buf();
    let mut resolver = report::Resolver::new(&kernel_elf, &image_dir)?;
    let r = report::build(&dump, &mut resolver, o.top);
    let title = match &o.exec {
        Some(c) => format!("Kintsugi: {c}"),
        None => "Kintsugi".to_string(),
    };
    let write = |name: &str, text: &str| -> Result<(), String> {
        let p = out_dir.join(name);
        std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))
    };
    write("report.txt", &r.text)?;
    write("stacks.folded", &(r.folded.join("\n") + "\n"))?;
    report::flame_graph(&r.folded, &title, &out_dir.join("flamegraph.svg"))?;
    println!("\n{}", r.text);
    eprintln!(
        "xtask: wrote {0}/report.txt, {0}/stacks.folded, {0}/flamegraph.svg and {0}/console.log",
        out_dir.display()
    );
    Ok(())
}

/// The file `--download` puts in `/www`.
const DOWNLOAD_NAME: &str = "profile.bin";

/// Put `/www/profile.bin` of `mib` MiB on the data disk image `img`.
fn put_download(dir: &std::path::Path, img: &std::path::Path, mib: u64) -> Result<(), String> {
    let src = dir.join(DOWNLOAD_NAME);
    let data = kintsugi_tests::noise::noise((mib << 20) as usize, 7);
    std::fs::write(&src, data).map_err(|e| format!("{}: {e}", src.display()))?;
    kintsugi_tests::disks::mkdirs(img, "/www")?;
    kintsugi_tests::disks::put(img, &[&src], "/www")
}

/// GET the file through the forwarded `port`; the body's length, which
/// must be `want`.
fn download(port: u16, want: u64) -> Result<u64, String> {
    download_path(port, &format!("/{DOWNLOAD_NAME}"), Some(want))
}

/// GET `path`; the body's length, which must be `want` if given.
fn download_path(port: u16, path: &str, want: Option<u64>) -> Result<u64, String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(120))).map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: kintsugi\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("send: {e}"))?;
    let mut all = Vec::new();
    s.read_to_end(&mut all).map_err(|e| format!("reading the answer: {e}"))?;
    let body = all.windows(4).position(|w| w == b"\r\n\r\n").map_or(0, |at| all.len() - at - 4) as u64;
    if let Some(want) = want.filter(|w| *w != body) {
        return Err(format!("{path}: {body} bytes of {want}"));
    }
    Ok(body)
}
