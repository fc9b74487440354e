//! Booting to the shell and the shell's own behaviour.

use kintsugi_tests::boot;

#[test]
fn boots_to_the_shell_and_its_commands_work() {
    let mut m = boot();
    let help = m.sh("help");
    for cmd in ["help", "ps", "run PROGRAM", "kill NAME|PID", "poweroff"] {
        assert!(help.contains(cmd), "help lacks {cmd}:\n{help}");
    }
    let ps = m.sh("ps");
    assert!(ps.contains("PID") && ps.contains("STATE") && ps.contains("MEM(KiB)"), "{ps}");
    let init = ps.lines().find(|l| l.trim_end().ends_with(" init")).unwrap_or_else(|| panic!("no init in ps:\n{ps}"));
    assert!(init.split_whitespace().next() == Some("1"), "init is pid 1: {init}");
    assert!(ps.lines().any(|l| l.trim_end().ends_with(" shell")), "{ps}");
    assert!(m.sh("mem").contains("KiB used"));
    assert_eq!(m.sh("echo hello world").trim(), "hello world");
    m.shutdown();
}

#[test]
fn bad_commands_get_one_line_errors_and_the_shell_keeps_going() {
    let mut m = boot();
    for (line, want) in [
        ("frobnicate", "shell: unknown command 'frobnicate'"),
        ("kill", "kill: usage: kill NAME|PID"),
        ("run", "run: usage: run"),
        ("ps extra", "ps: takes no arguments"),
        ("run nosuchprogram", "run: no program named 'nosuchprogram'"),
        ("kill nosuchprocess", "kill: no process 'nosuchprocess'"),
        ("kill 99999", "kill: no process '99999'"),
        ("kill 1", "kill: init cannot be killed"),
        ("run init", "run: 'init' cannot be started"),
    ] {
        // (Without the services' log lines, which a slow boot may still print.)
        let out = m.shq(line);
        let out = out.trim();
        assert!(out.starts_with(want), "`{line}`: expected '{want}', got '{out}'");
        assert_eq!(out.lines().count(), 1, "`{line}`: one line expected: {out}");
    }
    // Still answering.
    assert_eq!(m.sh("echo ok").trim(), "ok");
    m.shutdown();
}

#[test]
fn killing_the_shell_brings_a_new_one() {
    let mut m = boot();
    m.send("kill shell\r");
    m.expect("Kintsugi shell.", kintsugi_tests::BOOT_TIMEOUT).expect("init restarts the shell");
    m.wait_prompt(kintsugi_tests::BOOT_TIMEOUT).expect("init restarts the shell");
    let ps = m.sh("ps");
    assert_eq!(ps.lines().filter(|l| l.trim_end().ends_with(" shell")).count(), 1, "{ps}");
    m.shutdown();
}
