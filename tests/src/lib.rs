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
