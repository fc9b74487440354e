//! `cargo xtask test`: every test. The formatting and clippy checks
//! ([`lint`](crate::lint)) first, then host unit tests of the logic crates,
//! then the system tests, which boot the freshly built image (and its GRUB
//! ISO) in QEMU.

use crate::{assemble, iso, tools};
use kintsugi_tests::image::{image_dir, workspace_root};
use std::process::Command;

/// Crates whose logic is unit-tested on the host.
pub const HOST_CRATES: &[&str] = &[
    "kintsugi-abi",
    "exokernel",
    "libos",
    "kintsugi-manifest",
    "resiliency-lib",
    "checkpoint-record",
    "drivers",
    "console-font",
    "vault",
    "fs",
    "companion-gen",
    "companion-gen-roundtrip",
    "shell",
    "net",
    "net-crashtest",
    "nic",
    "httpd",
    "xtask",
];

fn cargo_test(args: &[&str], env: &[(&str, String)]) -> Result<(), String> {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace_root()).arg("test").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let status = cmd.status().map_err(|e| format!("cannot run cargo test: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo test {} failed", args.join(" ")))
    }
}

/// Run the tests; `filter` narrows the system tests; `kvm` runs the
/// guests under KVM instead of TCG.
pub fn run(filter: Option<&str>, skip_lint: bool, skip_unit: bool, skip_system: bool, kvm: bool) -> Result<(), String> {
    if !skip_lint {
        crate::lint::run()?;
    }
    if !skip_unit {
        eprintln!("xtask: host unit tests");
        let mut args = Vec::new();
        for c in HOST_CRATES {
            args.extend(["-p", c]);
        }
        args.push("--no-fail-fast");
        cargo_test(&args, &[])?;
    }
    if skip_system {
        return Ok(());
    }
    tools::ensure(&[&tools::QEMU, &tools::DOSFSTOOLS, &tools::MTOOLS, &tools::CURL, &tools::CHROMIUM])?;
    let image = assemble::build()?;
    iso::make(&image, &image_dir().join("kintsugi.iso"))?;
    let _ = tools::ovmf();
    eprintln!("xtask: system tests (QEMU, {})", if kvm { "KVM" } else { "TCG" });
    let mut args = vec!["-p", "kintsugi-tests", "--release", "--no-fail-fast", "--"];
    if let Some(f) = filter {
        args.push(f);
    }
    cargo_test(
        &args,
        &[
            ("KINTSUGI_IMAGE_DIR", image_dir().display().to_string()),
            ("KINTSUGI_ACCEL", String::from(if kvm { "kvm" } else { "tcg" })),
        ],
    )
}
