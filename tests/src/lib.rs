//! The QEMU harness: boot a built Kintsugi image (direct kernel boot or a
//! GRUB ISO), talk to its serial console as a user would, and wait for it
//! to power off. `xtask` uses it for `run --headless` and `bench`; the
//! system tests in `tests/` use it to assert on what the console shows.

pub mod disks;
pub mod image;
pub mod machine;
pub mod monitor;
pub mod qemu;
pub mod screen;
pub mod vault;

pub use image::Image;
pub use machine::{Machine, MachineError};
pub use qemu::{Accel, Boot, DiskBus, Display, NicModel, QemuConfig};

use std::time::Duration;

/// How long a boot to the prompt may take on a slow, shared machine.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(90);
/// How long an ordinary shell command may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// The resilient services the image starts at boot: the programs named
/// `NAME-companion` with `start = true` in its manifest.
pub fn resilient_services(image: &Image) -> Vec<String> {
    let manifest = image.modules.iter().find(|m| m.file_name().is_some_and(|n| n == "manifest"));
    let text = manifest.and_then(|m| std::fs::read_to_string(m).ok()).unwrap_or_default();
    let parsed = kintsugi_manifest::Manifest::parse(&text).unwrap_or_default();
    parsed
        .programs
        .iter()
        .filter(|p| p.start)
        .filter_map(|p| p.name.strip_suffix("-companion").map(String::from))
        .collect()
}

/// Boot the built image with `cfg` to the shell prompt and wait until every
/// resilient service is up, or fail the test with the console.
pub fn boot_with(cfg: &QemuConfig) -> Machine {
    let image = Image::built().unwrap_or_else(|e| panic!("{e}"));
    let mut m = Machine::boot(&image, cfg, false).unwrap_or_else(|e| panic!("{e}"));
    if let Err(e) = m.wait_prompt(BOOT_TIMEOUT) {
        panic!("no shell prompt: {e}");
    }
    for service in resilient_services(&image) {
        if let Err(e) = m.wait_for_text(&format!("{service} is up"), BOOT_TIMEOUT) {
            panic!("resilient service {service} did not come up: {e}");
        }
    }
    m
}

/// What a command printed, without the lines other programs logged
/// meanwhile (`[name] ...` and `kernel: ...`).
pub fn quiet(output: &str) -> String {
    output
        .lines()
        .filter(|l| {
            let program_log =
                l.starts_with('[') && l.find("] ").is_some_and(|end| !l[1..end].chars().all(|c| c.is_ascii_digit()));
            !program_log && !l.starts_with("kernel: ")
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Boot the built image with the default machine (256 MiB, TCG, direct).
pub fn boot() -> Machine {
    boot_with(&QemuConfig::default())
}

impl Machine {
    /// Run a shell command and return its output, failing the test on a
    /// timeout or a kernel panic.
    pub fn sh(&mut self, line: &str) -> String {
        self.command(line, COMMAND_TIMEOUT).unwrap_or_else(|e| panic!("`{line}`: {e}"))
    }

    /// Like [`Machine::sh`], without other programs' log lines.
    pub fn shq(&mut self, line: &str) -> String {
        quiet(&self.sh(line))
    }

    /// Power off and check QEMU ends without a kernel panic.
    pub fn shutdown(mut self) {
        self.power_off(COMMAND_TIMEOUT).unwrap_or_else(|e| panic!("poweroff: {e}"));
    }
}
