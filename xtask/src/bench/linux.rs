//! The Linux reference guest for `cargo xtask bench`: Debian's kernel and a
//! small initramfs (busybox, the static `linuxbench` program from
//! `xtask/bench/linuxbench.c`, a static `true`, requested kernel modules and
//! an `/init` script), booted under the same QEMU settings as Kintsugi. The
//! guest prints `BENCH <name> <ns>` lines on its serial console; this module
//! times the boot, collects the lines and returns the figures. For servers
//! the host measures from outside (busybox httpd), [`start_guest`] boots
//! the guest with a script of its own instead and leaves it running.

use super::cpio::CpioWriter;
use super::debian::{self, GuestParts};
use super::kmods::{self, KernelModule};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Source of the benchmark program run in the guest.
const LINUXBENCH_SOURCE: &str = include_str!("../../bench/linuxbench.c");
/// Source of the program the spawn benchmarks start.
const TRUE_SOURCE: &str = "int main(void) { return 0; }\n";

/// Kernel command line (the same as Kintsugi's runs, with a serial console).
const KERNEL_CMDLINE: &str = "console=ttyS0 quiet panic=-1";
/// How long the whole guest run may take.
const GUEST_TIMEOUT: Duration = Duration::from_secs(180);

/// First line `/init` prints; its arrival ends the boot-time measurement.
const INIT_MARKER: &str = "LINUXBENCH-INIT";
/// What `/init` passes `linuxbench` by default: the static `true` it spawns.
const DEFAULT_ARG: &str = "/bin/true";
/// Printed by `/init` after `linuxbench` returns.
const DONE_MARKER: &str = "LINUXBENCH-DONE";
/// Prefixes of lines reporting a failure inside the guest.
const GUEST_ERROR_MARKERS: [&str; 2] = ["LINUXBENCH-ERROR", "BENCH-ERROR"];
/// Prefix of a figure line printed by `linuxbench`.
const BENCH_PREFIX: &str = "BENCH ";

/// Busybox applets `/init` calls by name (symlinks in `/bin`); the last
/// ones are for the scripts of [`start_guest`] (a web server).
const BUSYBOX_APPLETS: [&str; 13] =
    ["sh", "mount", "insmod", "poweroff", "ls", "uname", "cat", "httpd", "ifconfig", "route", "ping", "mkdir", "sleep"];
/// Where modules go in the initramfs.
const GUEST_MODULE_DIR: &str = "lib/modules";

/// The QEMU machine the reference guest runs on.
#[derive(Clone, Debug)]
pub struct LinuxQemu {
    /// Guest memory (MiB), as in Kintsugi's runs.
    pub memory_mb: u32,
    /// Extra raw QEMU arguments (disks, NICs) appended to the command line.
    pub extra_args: Vec<String>,
}

impl Default for LinuxQemu {
    fn default() -> Self {
        LinuxQemu { memory_mb: 256, extra_args: Vec::new() }
    }
}

/// The reference figures (nanoseconds unless said otherwise).
#[derive(Clone, Debug)]
pub struct LinuxResults {
    /// Host wall time from spawning QEMU to the guest init's first output line.
    pub boot_to_init_ms: f64,
    /// Median cost of `syscall(SYS_getppid)`.
    pub null_syscall_ns: f64,
    /// Median round trip of one byte between two processes over two pipes.
    pub pipe_rtt_ns: f64,
    /// Median time to `posix_spawn` a tiny static program and reap it.
    pub spawn_ns: f64,
    /// Further figures `linuxbench` printed (e.g. `fork_exec_ns`, `clock_read_ns`).
    pub extra: BTreeMap<String, f64>,
    /// The whole guest console.
    pub console: String,
    /// The guest kernel's release (e.g. `6.1.0-57-amd64`).
    pub kernel_release: String,
}

/// Every figure of one guest run, whatever `linuxbench` was asked to measure.
#[derive(Clone, Debug)]
pub struct LinuxRun {
    /// Host wall time from spawning QEMU to the guest init's first output line.
    pub boot_to_init_ms: f64,
    /// Every `BENCH name value` line, by name.
    pub figures: BTreeMap<String, f64>,
    /// The whole guest console.
    pub console: String,
    /// The guest kernel's release (e.g. `6.1.0-57-amd64`).
    pub kernel_release: String,
}

/// Boot the reference guest with `include_modules` loaded and return its
/// figures. `work_dir` caches the Debian packages and build products.
pub fn run_reference(work_dir: &Path, q: &LinuxQemu, include_modules: &[&str]) -> Result<LinuxResults, String> {
    let (run, release) = boot_guest(work_dir, q, include_modules, &[DEFAULT_ARG])?;
    results_from(&run, release)
}

/// Boot the reference guest with `include_modules` loaded, have `/init` run
/// `linuxbench ARGS`, and return every figure it printed (e.g.
/// `["devices", "64", "50000"]` for the device benchmarks). The arguments
/// are plain words (letters, digits, `/._=-`).
pub fn run_linuxbench(
    work_dir: &Path,
    q: &LinuxQemu,
    include_modules: &[&str],
    args: &[&str],
) -> Result<LinuxRun, String> {
    let (run, release) = boot_guest(work_dir, q, include_modules, args)?;
    run_figures(&run, release)
}

/// Build the initramfs for `linuxbench ARGS` and boot it.
fn boot_guest(
    work_dir: &Path,
    q: &LinuxQemu,
    include_modules: &[&str],
    args: &[&str],
) -> Result<(GuestRun, String), String> {
    if let Some(bad) =
        args.iter().find(|a| a.is_empty() || !a.chars().all(|c| c.is_ascii_alphanumeric() || "/._=-".contains(c)))
    {
        return Err(format!("bench: linuxbench argument {bad:?} is not a plain word"));
    }
    let parts = debian::ensure_guest_parts(work_dir)?;
    let modules = kmods::modules_to_load(&parts.modules_dir, include_modules)?;
    let build_dir = work_dir.join("build");
    let initramfs = write_initramfs(&build_dir, &parts, &modules, &init_script(&modules, args))?;
    eprintln!("bench: booting Linux {} (TCG, {} MiB)", parts.kernel_release, q.memory_mb);
    let run = boot(&parts.vmlinuz, &initramfs, q)?;
    Ok((run, parts.kernel_release))
}

/// A Linux guest left running (a server the host talks to), its console
/// read as it arrives; QEMU is killed when it is dropped.
pub struct RunningGuest {
    child: Child,
    console: Receiver<ConsoleLine>,
    lines: Vec<ConsoleLine>,
    /// The guest kernel's release.
    pub kernel_release: String,
}

impl RunningGuest {
    /// Wait for a console line containing `text`; the line. A line with a
    /// guest error marker, QEMU's exit or the timeout is an error.
    pub fn wait_for(&mut self, text: &str, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.console.recv_timeout(left) {
                Ok(line) => {
                    let l = line.1.clone();
                    self.lines.push(line);
                    if GUEST_ERROR_MARKERS.iter().any(|m| l.contains(m)) {
                        return Err(format!("bench: the Linux guest reported an error: {l}\n{}", self.tail()));
                    }
                    if l.contains(text) {
                        return Ok(l);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!("bench: the Linux guest stopped before {text:?}:\n{}", self.tail()))
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!("bench: no {text:?} from the Linux guest in {timeout:?}:\n{}", self.tail()))
                }
            }
        }
    }

    fn tail(&self) -> String {
        console_tail(&self.lines)
    }

    /// Kill QEMU; the whole console.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        while let Ok(line) = self.console.recv_timeout(Duration::from_millis(200)) {
            self.lines.push(line);
        }
        self.lines.iter().map(|(_, l)| format!("{l}\n")).collect()
    }
}

impl Drop for RunningGuest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Boot the reference guest with `include_modules` loaded and `script`
/// (shell, run by `/init` after the mounts and modules, instead of
/// `linuxbench`) and leave it running.
pub fn start_guest(
    work_dir: &Path,
    q: &LinuxQemu,
    include_modules: &[&str],
    script: &str,
) -> Result<RunningGuest, String> {
    let parts = debian::ensure_guest_parts(work_dir)?;
    let modules = kmods::modules_to_load(&parts.modules_dir, include_modules)?;
    let build_dir = work_dir.join("build");
    let init = format!("{}{script}\npoweroff -f\n", init_prelude(&modules));
    let initramfs = write_initramfs(&build_dir, &parts, &modules, &init)?;
    eprintln!("bench: booting Linux {} (TCG, {} MiB), left running", parts.kernel_release, q.memory_mb);
    crate::tools::ensure(&[&crate::tools::QEMU])?;
    let mut cmd = qemu_command(&parts.vmlinuz, &initramfs, q);
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("bench: cannot start {cmd:?}: {e}"))?;
    let Some(stdout) = child.stdout.take() else {
        let _ = child.kill();
        return Err("bench: QEMU's output pipe is missing".into());
    };
    // QEMU's error output is not read: it says little, and a full pipe
    // would only block QEMU after 64 KiB of it.
    let console = spawn_line_reader(stdout, start);
    Ok(RunningGuest { child, console, lines: Vec::new(), kernel_release: parts.kernel_release })
}

// ---- Guest programs and initramfs -------------------------------------------

/// Compile `source` into a static executable `<build_dir>/<name>` unless the
/// same source was compiled there before; return the executable's bytes.
fn compile_static(build_dir: &Path, name: &str, source: &str) -> Result<Vec<u8>, String> {
    let src_path = build_dir.join(format!("{name}.c"));
    let exe_path = build_dir.join(name);
    let unchanged = std::fs::read_to_string(&src_path).is_ok_and(|s| s == source) && exe_path.is_file();
    if !unchanged {
        write_file(&src_path, source.as_bytes())?;
        let tmp = build_dir.join(format!("{name}.tmp-{}", std::process::id()));
        let out = Command::new("gcc")
            .args(["-static", "-O2", "-Wall", "-o"])
            .arg(&tmp)
            .arg(&src_path)
            .output()
            .map_err(|e| format!("bench: cannot run gcc: {e} (apt-get install gcc libc6-dev)"))?;
        if !out.status.success() {
            return Err(format!(
                "bench: gcc -static {} failed:\n{}",
                src_path.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        std::fs::rename(&tmp, &exe_path).map_err(|e| format!("bench: cannot move {}: {e}", tmp.display()))?;
    }
    std::fs::read(&exe_path).map_err(|e| format!("bench: cannot read {}: {e}", exe_path.display()))
}

/// The `/init` script: print the marker, mount, load modules, run
/// `linuxbench ARGS`, power off.
fn init_script(modules: &[KernelModule], args: &[&str]) -> String {
    let mut s = init_prelude(modules);
    s.push_str(&format!("/bin/linuxbench {}\necho \"{DONE_MARKER} status $?\"\n", args.join(" ")));
    s.push_str("poweroff -f\n");
    s
}

/// The start of every `/init`: print the marker, mount, load modules, say
/// which kernel and disks there are.
fn init_prelude(modules: &[KernelModule]) -> String {
    let mut s = format!("#!/bin/sh\necho {INIT_MARKER}\nexport PATH=/bin\n");
    s.push_str("mount -t proc proc /proc\nmount -t sysfs sysfs /sys\nmount -t devtmpfs devtmpfs /dev\n");
    for m in modules {
        let name = &m.name;
        s.push_str(&format!(
            "insmod /{GUEST_MODULE_DIR}/{name}.ko || echo \"LINUXBENCH-ERROR insmod {name} failed\"\n"
        ));
    }
    s.push_str("echo \"LINUXBENCH-INFO kernel $(uname -r)\"\n");
    s.push_str("echo \"LINUXBENCH-INFO block devices: $(ls /sys/block)\"\n");
    s
}

/// Build the initramfs in `build_dir` with `init` as `/init` and return its path.
fn write_initramfs(
    build_dir: &Path,
    parts: &GuestParts,
    modules: &[KernelModule],
    init: &str,
) -> Result<PathBuf, String> {
    std::fs::create_dir_all(build_dir).map_err(|e| format!("bench: cannot create {}: {e}", build_dir.display()))?;
    let linuxbench = compile_static(build_dir, "linuxbench", LINUXBENCH_SOURCE)?;
    let true_program = compile_static(build_dir, "true", TRUE_SOURCE)?;
    let busybox =
        std::fs::read(&parts.busybox).map_err(|e| format!("bench: cannot read {}: {e}", parts.busybox.display()))?;

    let mut w = CpioWriter::new();
    for dir in ["bin", "dev", "proc", "sys", "lib", GUEST_MODULE_DIR] {
        w.dir(dir, 0o755)?;
    }
    // The kernel opens /dev/console for init before anything is mounted.
    w.char_device("dev/console", 0o600, 5, 1)?;
    w.file("bin/busybox", 0o755, &busybox)?;
    for applet in BUSYBOX_APPLETS {
        w.symlink(&format!("bin/{applet}"), "busybox")?;
    }
    w.file("bin/linuxbench", 0o755, &linuxbench)?;
    w.file("bin/true", 0o755, &true_program)?;
    for m in modules {
        w.file(&format!("{GUEST_MODULE_DIR}/{}.ko", m.name), 0o644, &m.ko)?;
    }
    w.file("init", 0o755, init.as_bytes())?;

    let path = build_dir.join("initramfs.cpio");
    let tmp = build_dir.join(format!("initramfs.cpio.tmp-{}", std::process::id()));
    write_file(&tmp, &w.finish())?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("bench: cannot move {}: {e}", tmp.display()))?;
    Ok(path)
}

fn write_file(path: &Path, data: &[u8]) -> Result<(), String> {
    std::fs::write(path, data).map_err(|e| format!("bench: cannot write {}: {e}", path.display()))
}

// ---- Booting ------------------------------------------------------------------

/// A console line with its arrival time since QEMU was spawned.
type ConsoleLine = (Duration, String);

/// What a guest run left behind.
struct GuestRun {
    /// Console lines, each with the time since QEMU was spawned.
    lines: Vec<ConsoleLine>,
    /// QEMU's exit status.
    status: Option<ExitStatus>,
    /// QEMU's own error output.
    stderr: String,
}

/// The QEMU command for the reference guest (same machine as Kintsugi's).
fn qemu_command(vmlinuz: &Path, initramfs: &Path, q: &LinuxQemu) -> Command {
    let mut c = Command::new(crate::tools::QEMU.command);
    c.args(["-machine", "q35", "-cpu", "qemu64", "-m", &format!("{}M", q.memory_mb)]);
    c.args(["-accel", "tcg", "-display", "none", "-no-reboot", "-serial", "stdio", "-monitor", "none"]);
    c.arg("-kernel").arg(vmlinuz).arg("-initrd").arg(initramfs);
    c.args(["-append", KERNEL_CMDLINE]);
    c.args(&q.extra_args);
    c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

/// Boot the guest and collect its console until QEMU exits or the timeout.
fn boot(vmlinuz: &Path, initramfs: &Path, q: &LinuxQemu) -> Result<GuestRun, String> {
    crate::tools::ensure(&[&crate::tools::QEMU])?;
    let mut cmd = qemu_command(vmlinuz, initramfs, q);
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("bench: cannot start {cmd:?}: {e}"))?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        let _ = child.kill();
        return Err("bench: QEMU's output pipes are missing".into());
    };
    let console = spawn_line_reader(stdout, start);
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = BufReader::new(stderr).read_to_string(&mut text);
        text
    });

    let lines = match collect_until_eof(&console, start + GUEST_TIMEOUT) {
        Ok(lines) => lines,
        Err(lines) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "bench: the Linux guest did not finish within {} s; console so far:\n{}",
                GUEST_TIMEOUT.as_secs(),
                console_tail(&lines)
            ));
        }
    };
    let status = wait_with_deadline(&mut child, start + GUEST_TIMEOUT);
    let stderr = stderr_reader.join().unwrap_or_default();
    Ok(GuestRun { lines, status, stderr })
}

/// A thread sending each console line (lossily decoded) with its arrival
/// time relative to `start`; the channel closes at end of file.
fn spawn_line_reader(stdout: impl Read + Send + 'static, start: Instant) -> Receiver<ConsoleLine> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).trim_end_matches(['\r', '\n']).to_string();
                    if tx.send((start.elapsed(), line)).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

/// Every line until the channel closes (`Ok`), or those seen by `deadline` (`Err`).
fn collect_until_eof(console: &Receiver<ConsoleLine>, deadline: Instant) -> Result<Vec<ConsoleLine>, Vec<ConsoleLine>> {
    let mut lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match console.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(RecvTimeoutError::Disconnected) => return Ok(lines),
            Err(RecvTimeoutError::Timeout) => return Err(lines),
        }
    }
}

/// Wait for QEMU to exit (it closed its output, so it is on its way out);
/// kill it at `deadline`.
fn wait_with_deadline(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                return child.wait().ok();
            }
        }
    }
}

/// The last lines of a console, for error messages.
fn console_tail(lines: &[ConsoleLine]) -> String {
    const SHOWN: usize = 40;
    let skip = lines.len().saturating_sub(SHOWN);
    let tail: Vec<&str> = lines[skip..].iter().map(|(_, l)| l.as_str()).collect();
    if tail.is_empty() {
        "(nothing)".into()
    } else {
        tail.join("\n")
    }
}

// ---- Results -----------------------------------------------------------------

/// Explain a failed run: `what`, QEMU's exit and error output, the console's tail.
fn explain_run(run: &GuestRun, what: &str) -> String {
    let status = run.status.map_or("unknown".to_string(), |s| s.to_string());
    let stderr =
        if run.stderr.trim().is_empty() { String::new() } else { format!("\nQEMU said: {}", run.stderr.trim()) };
    format!("bench: {what} (QEMU exit: {status}){stderr}\nguest console (tail):\n{}", console_tail(&run.lines))
}

/// Turn a finished run into the default benchmarks' figures, or explain
/// what went wrong.
fn results_from(run: &GuestRun, kernel_release: String) -> Result<LinuxResults, String> {
    let LinuxRun { boot_to_init_ms, mut figures, console, kernel_release } = run_figures(run, kernel_release)?;
    let mut take = |name: &str| {
        figures.remove(name).ok_or_else(|| explain_run(run, &format!("linuxbench printed no `BENCH {name}` line")))
    };
    let null_syscall_ns = take("null_syscall_ns")?;
    let pipe_rtt_ns = take("pipe_rtt_ns")?;
    let spawn_ns = take("spawn_ns")?;
    Ok(LinuxResults {
        boot_to_init_ms,
        null_syscall_ns,
        pipe_rtt_ns,
        spawn_ns,
        extra: figures,
        console,
        kernel_release,
    })
}

/// Every figure of a finished run, or what went wrong.
fn run_figures(run: &GuestRun, kernel_release: String) -> Result<LinuxRun, String> {
    let console: String = run.lines.iter().map(|(_, l)| format!("{l}\n")).collect();
    let explain = |what: &str| explain_run(run, what);

    if let Some((_, error)) = run.lines.iter().find(|(_, l)| GUEST_ERROR_MARKERS.iter().any(|m| l.contains(m))) {
        return Err(explain(&format!("the Linux guest reported an error: {}", error.trim())));
    }
    let boot_time = run
        .lines
        .iter()
        .find(|(_, l)| l.contains(INIT_MARKER))
        .map(|(t, _)| *t)
        .ok_or_else(|| explain(&format!("the Linux guest never reached /init (no {INIT_MARKER} line)")))?;
    if !run.lines.iter().any(|(_, l)| l.contains(DONE_MARKER)) {
        return Err(explain(&format!("the Linux guest stopped before linuxbench finished (no {DONE_MARKER} line)")));
    }

    let figures = parse_bench_lines(&console).map_err(|e| explain(&e))?;
    Ok(LinuxRun { boot_to_init_ms: boot_time.as_secs_f64() * 1000.0, figures, console, kernel_release })
}

/// Every `BENCH <name> <value>` line of `console`, by name.
pub fn parse_bench_lines(console: &str) -> Result<BTreeMap<String, f64>, String> {
    let mut figures = BTreeMap::new();
    for line in console.lines() {
        let Some(rest) = line.trim().strip_prefix(BENCH_PREFIX) else { continue };
        let mut words = rest.split_whitespace();
        let (Some(name), Some(value), None) = (words.next(), words.next(), words.next()) else {
            return Err(format!("malformed BENCH line: {line:?}"));
        };
        let value: f64 = value.parse().map_err(|_| format!("BENCH line with a bad number: {line:?}"))?;
        if !value.is_finite() {
            return Err(format!("BENCH line with a bad number: {line:?}"));
        }
        figures.insert(name.to_string(), value);
    }
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bench_lines_among_other_output() {
        let console = "[    1.2] random kernel line\r\nLINUXBENCH-INIT\nBENCH null_syscall_ns 123.4\r\n  BENCH spawn_ns 5e5\nnot BENCH x 1\n";
        let figures = parse_bench_lines(console).unwrap();
        assert_eq!(figures.len(), 2);
        assert_eq!(figures["null_syscall_ns"], 123.4);
        assert_eq!(figures["spawn_ns"], 500000.0);
    }

    #[test]
    fn rejects_malformed_bench_lines() {
        assert!(parse_bench_lines("BENCH pipe_rtt_ns\n").is_err());
        assert!(parse_bench_lines("BENCH pipe_rtt_ns fast\n").is_err());
        assert!(parse_bench_lines("BENCH pipe_rtt_ns 1 2\n").is_err());
        assert!(parse_bench_lines("BENCH pipe_rtt_ns NaN\n").is_err());
        // BENCH-ERROR lines are not figures (results_from reports them).
        assert!(parse_bench_lines("BENCH-ERROR fork: nope\n").unwrap().is_empty());
    }

    fn run_of(lines: &[&str]) -> GuestRun {
        GuestRun {
            lines: lines
                .iter()
                .enumerate()
                .map(|(i, l)| (Duration::from_millis(100 * i as u64), l.to_string()))
                .collect(),
            status: None,
            stderr: String::new(),
        }
    }

    #[test]
    fn results_take_boot_time_from_the_marker_and_keep_extra_figures() {
        let run = run_of(&[
            "kernel noise",
            INIT_MARKER,
            "BENCH null_syscall_ns 10",
            "BENCH pipe_rtt_ns 20",
            "BENCH spawn_ns 30",
            "BENCH fork_exec_ns 40",
            "LINUXBENCH-DONE status 0",
        ]);
        let r = results_from(&run, "6.1".into()).unwrap();
        assert_eq!(r.boot_to_init_ms, 100.0);
        assert_eq!((r.null_syscall_ns, r.pipe_rtt_ns, r.spawn_ns), (10.0, 20.0, 30.0));
        assert_eq!(r.extra.len(), 1);
        assert_eq!(r.extra["fork_exec_ns"], 40.0);
    }

    #[test]
    fn results_explain_what_is_missing() {
        let no_init = results_from(&run_of(&["Kernel panic"]), String::new()).unwrap_err();
        assert!(no_init.contains(INIT_MARKER) && no_init.contains("Kernel panic"));
        let no_figure =
            run_of(&[INIT_MARKER, "BENCH null_syscall_ns 1", "BENCH spawn_ns 3", "LINUXBENCH-DONE status 0"]);
        assert!(results_from(&no_figure, String::new()).unwrap_err().contains("BENCH pipe_rtt_ns"));
        let guest_error = run_of(&[INIT_MARKER, "BENCH-ERROR fork: no memory", "LINUXBENCH-DONE status 1"]);
        assert!(results_from(&guest_error, String::new()).unwrap_err().contains("fork: no memory"));
    }

    #[test]
    fn init_loads_modules_in_the_given_order_after_mounting() {
        let m = |n: &str| KernelModule { name: n.into(), ko: Vec::new() };
        let script = init_script(&[m("virtio"), m("virtio_blk")], &[DEFAULT_ARG]);
        let at = |s: &str| script.find(s).unwrap();
        assert!(script.starts_with("#!/bin/sh\n"));
        assert!(at(INIT_MARKER) < at("mount -t proc"));
        assert!(at("mount -t devtmpfs") < at("insmod /lib/modules/virtio.ko"));
        assert!(at("insmod /lib/modules/virtio.ko") < at("insmod /lib/modules/virtio_blk.ko"));
        assert!(at("/bin/linuxbench /bin/true\n") < at("poweroff -f"));
        let devices = init_script(&[], &["devices", "32", "20000"]);
        assert!(devices.contains("\n/bin/linuxbench devices 32 20000\n"), "{devices}");
    }

    #[test]
    fn linuxbench_arguments_must_be_plain_words() {
        let q = LinuxQemu::default();
        let dir = Path::new("/nonexistent");
        for bad in ["a b", "$(reboot)", "", "x;y"] {
            let e = run_linuxbench(dir, &q, &[], &["devices", bad]).unwrap_err();
            assert!(e.contains("not a plain word"), "{e}");
        }
    }

    #[test]
    fn collecting_stops_at_the_deadline_while_the_guest_is_still_talking() {
        let (tx, rx) = mpsc::channel();
        tx.send((Duration::ZERO, "still booting".to_string())).unwrap();
        let seen = collect_until_eof(&rx, Instant::now() + Duration::from_millis(50)).unwrap_err();
        assert_eq!(seen.len(), 1);
        drop(tx);
        assert!(collect_until_eof(&rx, Instant::now() + Duration::from_secs(5)).unwrap().is_empty());
    }

    /// Boots the real guest with a virtio disk (slow, needs apt on the first
    /// run): `cargo test -p xtask -- --ignored`.
    #[test]
    #[ignore]
    fn boots_with_virtio_blk_and_sees_the_disk() {
        let work_dir = kintsugi_tests::image::workspace_root().join("target/bench/linux");
        let disk = std::env::temp_dir().join(format!("linuxbench-disk-{}.img", std::process::id()));
        std::fs::File::create(&disk).unwrap().set_len(1 << 20).unwrap();
        let q = LinuxQemu {
            memory_mb: 256,
            extra_args: ["-drive", &format!("file={},if=none,id=d0,format=raw", disk.display())]
                .into_iter()
                .chain(["-device", "virtio-blk-pci,drive=d0"])
                .map(String::from)
                .collect(),
        };
        let result = run_reference(&work_dir, &q, &["virtio_blk"]);
        let _ = std::fs::remove_file(&disk);
        let r = result.unwrap();
        let block_line = r.console.lines().find(|l| l.contains("LINUXBENCH-INFO block devices:")).unwrap();
        assert!(block_line.split_whitespace().any(|w| w == "vda"), "{}", r.console);
    }
}
