//! `cargo xtask run`: boot the system in QEMU with its disks and NIC, either
//! interactively (the serial console on this terminal) or headless, typing
//! a list of commands into the shell.

use crate::{assemble, disks, iso, tools};
use kintsugi_tests::{Accel, Boot, DiskBus, Machine, NicModel, QemuConfig};
use std::path::PathBuf;
use std::time::Duration;

/// Options of `run`.
pub struct RunOptions {
    /// No terminal: type `exec` and print the console.
    pub headless: bool,
    /// Commands separated by `;`.
    pub exec: Option<String>,
    /// Folder of the disks.
    pub disks: Option<PathBuf>,
    /// Accelerator.
    pub accel: Accel,
    /// Disk controller.
    pub disk_bus: DiskBus,
    /// NIC model.
    pub nic: NicModel,
    /// Guest memory (MiB).
    pub memory: u32,
    /// Seconds before a headless run counts as hung.
    pub timeout: u64,
    /// Boot the GRUB ISO instead of direct boot.
    pub iso: bool,
    /// Size of the data disk when it is created (MiB).
    pub disk_size: Option<u64>,
}

/// Host port forwarded to the guest's port 80.
pub const HTTP_FORWARD: (u16, u16) = (8080, 80);

/// Run the system; the process exit code.
pub fn run(o: RunOptions) -> Result<i32, String> {
    tools::ensure(&[&tools::QEMU])?;
    let image = assemble::build()?;
    let disks = disks::ensure_sized(&o.disks.unwrap_or_else(disks::default_dir), o.disk_size)?;
    let boot = if o.iso {
        let out = kintsugi_tests::image::image_dir().join("kintsugi.iso");
        Boot::IsoBios(iso::make(&image, &out)?)
    } else {
        Boot::Direct
    };
    let cfg = QemuConfig {
        memory_mb: o.memory,
        accel: o.accel,
        boot,
        disks,
        disk_bus: o.disk_bus,
        nic: Some(o.nic),
        forwards: vec![HTTP_FORWARD],
        interactive: !o.headless,
        ..QemuConfig::default()
    };
    if !o.headless {
        eprintln!("xtask: booting Kintsugi; the serial console is this terminal (Ctrl-A X quits QEMU)");
        let status = cfg.command(&image).status().map_err(|e| format!("{}: {e}", kintsugi_tests::qemu::QEMU))?;
        return Ok(status.code().unwrap_or(1));
    }
    let timeout = Duration::from_secs(o.timeout);
    let mut m = Machine::boot(&image, &cfg, true).map_err(|e| e.to_string())?;
    let result = (|| {
        m.wait_prompt(timeout)?;
        let commands: Vec<&str> =
            o.exec.as_deref().unwrap_or("").split(';').map(str::trim).filter(|c| !c.is_empty()).collect();
        for (i, c) in commands.iter().enumerate() {
            let last = i + 1 == commands.len();
            if last && (*c == "poweroff" || *c == "reboot") {
                m.send(c);
                m.send("\r");
            } else {
                m.command(c, timeout)?;
            }
        }
        m.wait_exit(timeout)
    })();
    println!();
    match result {
        Ok(status) if status.success() => Ok(0),
        Ok(status) => {
            eprintln!("xtask: QEMU exited with {status}");
            Ok(1)
        }
        Err(e) => {
            let what = match &e {
                kintsugi_tests::MachineError::Panic(_) => "the kernel panicked".to_string(),
                kintsugi_tests::MachineError::Timeout { waiting_for, .. } => {
                    format!("timed out after {} s waiting for {waiting_for:?}", o.timeout)
                }
                other => other.to_string(),
            };
            eprintln!("xtask: {what}");
            Ok(2)
        }
    }
}
