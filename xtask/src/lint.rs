//! `cargo xtask lint` (and the first step of `cargo xtask test`): the
//! formatting check and clippy with warnings as errors, over the host
//! crates (with their tests) and the bare-metal crates (as the image build
//! compiles them: same target, profile and flags, so the check reuses
//! the build's dependencies and is incremental).

use crate::assemble;
use crate::test::HOST_CRATES;
use kintsugi_tests::image::workspace_root;
use std::process::Command;

fn cargo(args: &[&str]) -> Result<bool, String> {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace_root()).args(args);
    let status = cmd.status().map_err(|e| format!("cannot run cargo {}: {e}", args[0]))?;
    Ok(status.success())
}

fn with_packages<'a>(mut args: Vec<&'a str>, packages: &'a [String]) -> Vec<&'a str> {
    for p in packages {
        args.extend(["-p", p.as_str()]);
    }
    args
}

/// Check formatting, then run clippy on both targets; the first failure
/// ends the run with what to do about it.
pub fn run() -> Result<(), String> {
    eprintln!("xtask: cargo fmt --check");
    if !cargo(&["fmt", "--all", "--", "--check"])? {
        return Err("the code is not formatted (see the diff above): run `cargo fmt`".into());
    }
    // The host crates with their tests, plus the system-test crate.
    let mut host: Vec<String> = HOST_CRATES.iter().map(|c| c.to_string()).collect();
    host.push("kintsugi-tests".into());
    eprintln!("xtask: clippy (host crates and their tests)");
    let args = with_packages(vec!["clippy", "--quiet", "--tests"], &host);
    if !cargo(&[args.as_slice(), &["--", "-D", "warnings"]].concat())? {
        return Err("clippy found problems (above) in the host build; fix them or, where a lint is wrong, \
                    allow it on that item with a one-line reason"
            .into());
    }
    let mut bare = assemble::packages(&assemble::manifest()?);
    bare.push("drvtest".into());
    eprintln!("xtask: clippy ({} crates for {})", bare.len(), assemble::TARGET);
    let args = with_packages(vec!["clippy", "--quiet", "--release", "--target", assemble::TARGET], &bare);
    if !cargo(&[args.as_slice(), &["--", "-D", "warnings"]].concat())? {
        return Err(format!(
            "clippy found problems (above) in the {} build; fix them or, where a lint is wrong, \
             allow it on that item with a one-line reason",
            assemble::TARGET
        ));
    }
    Ok(())
}
