//! The QEMU harness: boot a built Kintsugi image (direct kernel boot or a
//! GRUB ISO), talk to its serial console as a user would, and wait for it
//! to power off. `xtask` uses it for `run --headless` and `bench`; the
//! system tests in `tests/` use it to assert on what the console shows.

pub mod image;
pub mod machine;
pub mod qemu;

pub use image::Image;
pub use machine::{Machine, MachineError};
pub use qemu::{Accel, Boot, DiskBus, NicModel, QemuConfig};

use std::time::Duration;

/// How long a boot to the prompt may take on a slow, shared machine.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(90);
/// How long an ordinary shell command may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// Boot the built image with `cfg` to the shell prompt, or fail the test
/// with the console.
pub fn boot_with(cfg: &QemuConfig) -> Machine {
    let image = Image::built().unwrap_or_else(|e| panic!("{e}"));
    let mut m = Machine::boot(&image, cfg, false).unwrap_or_else(|e| panic!("{e}"));
    if let Err(e) = m.wait_prompt(BOOT_TIMEOUT) {
        panic!("no shell prompt: {e}");
    }
    m
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

    /// Power off and check QEMU ends without a kernel panic.
    pub fn shutdown(mut self) {
        self.power_off(COMMAND_TIMEOUT).unwrap_or_else(|e| panic!("poweroff: {e}"));
    }
}
