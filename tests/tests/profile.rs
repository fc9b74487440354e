//! The kernel's sampling profiler (what `cargo xtask profile` drives): off
//! unless the kernel command line enables it; when on, samples carry kernel
//! and user stacks of the processes that ran, written to the console.

use kintsugi_tests::monitor::Monitor;
use kintsugi_tests::{boot, boot_with, QemuConfig};
use std::time::Duration;

#[test]
fn the_profiler_samples_kernel_and_user_stacks_of_each_process() {
    let mut m = boot_with(&QemuConfig { cmdline: "profile=4000".into(), ..QemuConfig::default() });
    assert!(m.sh("run profile start").contains("profile: sampling at 4000 Hz"));
    assert!(m.sh("run pingpong 2000").contains("2000 round trips OK"));
    let out = m.sh("run profile stop");
    let begin = out.find("PROFILE begin").unwrap_or_else(|| panic!("no dump:\n{out}"));
    let dump = &out[begin..out.find("PROFILE end").unwrap_or_else(|| panic!("dump not ended:\n{out}"))];
    let pids: Vec<&str> = dump
        .lines()
        .filter_map(|l| l.strip_prefix("PROFILE name "))
        .filter(|l| l.ends_with(" pingpong"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(pids.len(), 2, "the two pingpong processes are named:\n{dump}");
    // Sample lines: PROFILE s COUNT PID MODE KERNEL;USER
    let samples: Vec<Vec<&str>> = dump
        .lines()
        .filter_map(|l| l.strip_prefix("PROFILE s "))
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| w.len() == 4 && pids.contains(&w[1]))
        .collect();
    // A sample in the kernel has kernel frames and, for a system call, the
    // user frames of the code that made it; one in user mode is a user
    // stack. (A sample can land before a function has set up its frame,
    // so not every stack is deep: look for good ones among them.)
    let split = |w: &Vec<&str>| w[3].split_once(';').map(|(k, u)| (k.to_string(), u.to_string())).unwrap();
    let in_kernel: Vec<(String, String)> = samples.iter().filter(|w| w[2] == "k").map(split).collect();
    assert!(!in_kernel.is_empty(), "no kernel sample:\n{dump}");
    for (kernel, _) in &in_kernel {
        assert!(kernel.split(',').all(|a| a.starts_with("ffffffff8")), "kernel frames: {kernel}");
    }
    assert!(
        in_kernel.iter().any(|(_, user)| user.split(',').count() >= 2),
        "no system call's sample names the user code that made it:\n{dump}"
    );
    let in_user: Vec<(String, String)> = samples.iter().filter(|w| w[2] == "u").map(split).collect();
    assert!(in_user.iter().all(|(kernel, user)| kernel.is_empty() && !user.is_empty()), "{dump}");
    assert!(
        in_user.iter().any(|(_, user)| user.split(',').count() >= 2),
        "no user stack deeper than one frame:\n{dump}"
    );
    assert!(out.contains("profile: ") && out.contains(" samples"), "{out}");
    m.shutdown();
}

#[test]
fn without_the_command_line_switch_there_is_no_profiler() {
    let mut m = boot();
    let out = m.sh("run profile start");
    assert!(out.contains("the kernel was not booted with `profile`"), "{out}");
    m.shutdown();
}

/// An NMI while the profiler is not sampling (QEMU's monitor `nmi`, as the
/// soak sends at a hang) prints the stall report: where the CPU was, the
/// free memory, and every process with its state and user stack; the
/// system carries on.
#[test]
fn an_nmi_prints_the_stall_report_and_the_system_carries_on() {
    let sock = std::env::temp_dir().join(format!("kintsugi-{}-stall.monitor", std::process::id()));
    let _ = std::fs::remove_file(&sock);
    let mut m = boot_with(&QemuConfig { monitor: Some(sock.clone()), ..QemuConfig::default() });
    let mut mon = Monitor::connect(&sock, Duration::from_secs(30)).expect("the QEMU monitor");
    mon.command("nmi").expect("nmi");
    let out = m.expect("STALL end", Duration::from_secs(30)).expect("a stall report");
    let report = &out[out.find("STALL begin").unwrap_or_else(|| panic!("no beginning:\n{out}"))..];
    assert!(report.contains("STALL memory: ") && report.contains(" pages free"), "{report}");
    let procs: Vec<&str> = report.lines().filter_map(|l| l.strip_prefix("STALL proc ")).collect();
    assert!(procs.iter().any(|l| l.starts_with("1 init ")), "init is listed:\n{report}");
    // Somebody waits (init for its children and requests, at least); the
    // shell is listed, with its stack, a chain of user addresses.
    assert!(procs.iter().any(|l| l.contains(" blocked ") && l.contains(" waits on ")), "{report}");
    eprintln!("{report}");
    let lines: Vec<&str> = report.lines().collect();
    let at = lines.iter().position(|l| l.starts_with("STALL proc ") && l.contains(" shell ")).unwrap();
    let stack = lines[at + 1].strip_prefix("STALL   user stack:").unwrap_or_else(|| panic!("{report}"));
    let frames: Vec<u64> =
        stack.split_whitespace().filter_map(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).ok()).collect();
    assert!(frames.len() >= 3 && frames.iter().all(|&a| a > 0 && a < 1 << 47), "the shell's stack: {stack}");
    assert_eq!(m.sh("echo still here").trim(), "still here");
    m.shutdown();
    let _ = std::fs::remove_file(&sock);
}
