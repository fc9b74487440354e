//! The QEMU harness: boot a built Kintsugi image (direct kernel boot or a
//! GRUB ISO), talk to its serial console as a user would, and wait for it
//! to power off. `xtask` uses it for `run --headless` and `bench`; the
//! system tests in `tests/` use it to assert on what the console shows.

pub mod disks;
pub mod image;
pub mod iso;
pub mod machine;
pub mod monitor;
pub mod noise;
pub mod qemu;
pub mod screen;
pub mod soak;
pub mod vault;

pub use image::Image;
pub use machine::{Machine, MachineError};
pub use qemu::{Accel, Boot, DiskBus, Display, NicModel, QemuConfig};

use std::time::Duration;

/// How long a boot to the prompt may take on a slow, shared machine.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(90);
/// How long an ordinary shell command may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// The resilient services the image starts at boot: the programs with
/// `resilient = true` and `start = true` in its manifest.
pub fn resilient_services(image: &Image) -> Vec<String> {
    let manifest = image.modules.iter().find(|m| m.file_name().is_some_and(|n| n == "manifest"));
    let text = manifest.and_then(|m| std::fs::read_to_string(m).ok()).unwrap_or_default();
    let parsed = kintsugi_manifest::Manifest::parse(&text).unwrap_or_default();
    parsed.programs.iter().filter(|p| p.start && p.resilient).map(|p| p.name.clone()).collect()
}

/// Boot the built image with `cfg` to the shell prompt and wait until every
/// resilient service is up, or fail the test with the console. A machine
/// is a PC with its disks: without `cfg.disks`, it gets a fresh pair of its
/// own (removed when the machine is dropped), so the vault has its
/// checkpoint disk as on a real machine.
pub fn boot_with(cfg: &QemuConfig) -> Machine {
    let image = Image::built().unwrap_or_else(|e| panic!("{e}"));
    let mut scratch = None;
    let cfg = if cfg.disks.is_empty() {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (dir, disks) = disks::fresh(&format!("machine{n}")).unwrap_or_else(|e| panic!("{e}"));
        scratch = Some(dir);
        QemuConfig { disks, ..cfg.clone() }
    } else {
        cfg.clone()
    };
    // KINTSUGI_ECHO=1 copies the console to stdout (with `--nocapture`).
    let echo = std::env::var("KINTSUGI_ECHO").is_ok_and(|v| v == "1");
    let mut m = Machine::boot(&image, &cfg, echo).unwrap_or_else(|e| panic!("{e}"));
    if let Some(dir) = scratch {
        m.remove_on_drop(dir);
    }
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

    /// A figure of `service` from `ps`'s table of resilient services, by
    /// column: 1 PID, 2 RESTARTS, 3 CHECKPOINTS, 4 LOG, 5 INJECTED, 6
    /// REQUESTS (those its companion delivered). Fails the test if the
    /// service or the figure is missing.
    pub fn ps_figure(&mut self, service: &str, column: usize) -> u64 {
        let ps = self.shq("ps");
        let line = ps
            .lines()
            .find(|l| l.split_whitespace().next() == Some(service))
            .unwrap_or_else(|| panic!("no {service} in ps:\n{ps}"));
        line.split_whitespace().nth(column).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{line}"))
    }

    /// Power off and check QEMU ends without a kernel panic.
    pub fn shutdown(mut self) {
        self.power_off(COMMAND_TIMEOUT).unwrap_or_else(|e| panic!("poweroff: {e}"));
    }
}
