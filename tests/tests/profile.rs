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
