//! The kernel's sampling profiler (what `cargo xtask profile` drives): off
//! unless the kernel command line enables it; when on, samples carry kernel
//! and user stacks of the processes that ran, written to the console.

use kintsugi_tests::{boot, boot_with, QemuConfig};

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
    let in_kernel = samples.iter().find(|w| w[2] == "k").unwrap_or_else(|| panic!("no kernel sample:\n{dump}"));
    let (kernel, user) = in_kernel[3].split_once(';').unwrap();
    assert!(kernel.split(',').all(|a| a.starts_with("ffffffff8")), "kernel frames: {kernel}");
    assert!(!user.is_empty(), "a system call's sample names the user code that made it: {}", in_kernel[3]);
    let in_user = samples.iter().find(|w| w[2] == "u").unwrap_or_else(|| panic!("no user sample:\n{dump}"));
    let (kernel, user) = in_user[3].split_once(';').unwrap();
    assert!(kernel.is_empty() && user.split(',').count() >= 2, "a user sample is a user stack: {}", in_user[3]);
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
