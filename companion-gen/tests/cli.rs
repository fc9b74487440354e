//! The `companion-gen` command.

use std::process::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_companion-gen"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run companion-gen");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn show_prints_the_generated_code() {
    let (code, stdout, _) = run(&["show", "tests/golden/kv.contract", "--resiliency", "resiliency_lib"]);
    assert_eq!(code, 0);
    assert_eq!(stdout, std::fs::read_to_string("tests/golden/kv.rs").expect("golden kv.rs"));
    let (code, stdout, _) = run(&["show", "tests/golden/kv.contract", "--runtime", "crate"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("use crate::{channel, protocol, wire};"));
    assert!(!stdout.contains("run_companion"));
}

#[test]
fn check_reports_errors_with_their_position() {
    let dir = std::env::temp_dir().join(format!("companion-gen-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bad = dir.join("bad.contract");
    std::fs::write(&bad, "contract bad {\n    request Get { key: strng }\n}\n").expect("write");
    let bad = bad.to_str().expect("utf-8 path");
    let (code, _, stderr) = run(&["check", "tests/golden/kv.contract", bad, "tests/golden/files.contract"]);
    assert_eq!(code, 1);
    assert!(stderr.contains(&format!("{bad}:2:24: unknown type `strng` (did you mean `string`?)")), "{stderr}");
    assert!(stderr.contains(&format!("{bad}:1:10: contract `bad` has no `protocol` section")), "{stderr}");
    let (code, _, stderr) = run(&["check", "tests/golden/kv.contract", "tests/golden/files.contract"]);
    assert_eq!((code, stderr.as_str()), (0, ""));
    let (code, _, stderr) = run(&["check", "no/such.contract"]);
    assert_eq!(code, 1);
    assert!(stderr.starts_with("no/such.contract: cannot read:"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_usage_exits_with_2() {
    assert_eq!(run(&[]).0, 2);
    assert_eq!(run(&["check"]).0, 2);
    assert_eq!(run(&["show"]).0, 2);
    assert_eq!(run(&["show", "a.contract", "--runtime"]).0, 2);
    assert_eq!(run(&["frobnicate"]).0, 2);
    assert_eq!(run(&["--help"]).0, 0);
}
