//! `cargo xtask run`: boot the system in QEMU with its disks and NIC, either
//! interactively (the serial console on this terminal) or headless, typing
//! a list of commands into the shell.

use crate::{assemble, disks, iso, tools};
use kintsugi_tests::{Accel, Boot, DiskBus, Display, Machine, NicModel, QemuConfig};
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
    /// Host ports forwarded to guest ports, `(host, guest)`; empty: the
    /// default [`HTTP_FORWARD`].
    pub forwards: Vec<(u16, u16)>,
    /// The screen: none (headless, the default), a window, or VNC.
    pub display: Display,
    /// Size of the data disk when it is created (MiB).
    pub disk_size: Option<u64>,
    /// QEMU waits for a debugger (`-s -S`).
    pub gdb: bool,
}

/// Host port forwarded to the guest's port 80.
pub const HTTP_FORWARD: (u16, u16) = (8080, 80);

/// Parse `HOST:GUEST` (two TCP ports).
pub fn parse_forward(text: &str) -> Result<(u16, u16), String> {
    let (h, g) = text.split_once(':').ok_or_else(|| format!("'{text}' is not HOST:GUEST"))?;
    let port =
        |p: &str| p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| format!("'{p}' is not a port (1 to 65535)"));
    Ok((port(h)?, port(g)?))
}

/// The forwards to use: each host port as asked if it is free, else a free
/// one instead (said on stderr, with the URL to open for the guest's web
/// server), so a second run or another program on the port does not stop
/// QEMU from starting.
pub fn choose_forwards(wanted: &[(u16, u16)]) -> Vec<(u16, u16)> {
    let wanted = if wanted.is_empty() { vec![HTTP_FORWARD] } else { wanted.to_vec() };
    let mut out: Vec<(u16, u16)> = Vec::new();
    for (h, g) in wanted {
        let mut host = kintsugi_tests::qemu::host_port(h);
        while out.iter().any(|(x, _)| *x == host) {
            host = kintsugi_tests::qemu::free_port();
        }
        if host != h {
            eprintln!("xtask: host port {h} is taken; forwarding host port {host} to guest port {g} instead");
        }
        if g == 80 {
            eprintln!("xtask: the guest's web server: http://localhost:{host}/");
        } else {
            eprintln!("xtask: host port {host} reaches guest port {g}");
        }
        out.push((host, g));
    }
    out
}

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
        forwards: choose_forwards(&o.forwards),
        interactive: !o.headless,
        display: o.display.clone(),
        extra: if o.gdb { vec!["-s".into(), "-S".into()] } else { Vec::new() },
        ..QemuConfig::default()
    };
    if o.gdb {
        eprintln!("{}", gdb_instructions(&image)?);
    }
    match &o.display {
        Display::Window => eprintln!("xtask: the screen console is in the QEMU window; type there or here"),
        Display::Vnc(n) => eprintln!("xtask: the screen console is on VNC at 127.0.0.1:{}", 5900 + n),
        _ => {}
    }
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

/// How to attach gdb: the kernel's symbols, and each program's with the
/// address of its `.text` for `add-symbol-file`.
fn gdb_instructions(image: &kintsugi_tests::Image) -> Result<String, String> {
    use object::{Object, ObjectSection};
    let root = kintsugi_tests::image::workspace_root();
    let kernel = root.join("target/x86_64-unknown-none/release/kintsugi-kernel");
    let rel = |p: &std::path::Path| p.strip_prefix(&root).unwrap_or(p).display().to_string();
    let mut s = format!(
        "xtask: QEMU waits for a debugger on localhost:1234 (-s -S). In another terminal, from {}:\n\n  \
         gdb {} -ex 'target remote localhost:1234' -ex 'hbreak kernel_entry' -ex continue\n\n\
         The kernel's symbols come with its ELF. For a program's, add its ELF at its .text address \
         (every program is a static executable linked at its run address):\n\n",
        root.display(),
        rel(&kernel)
    );
    for module in &image.modules {
        let name = module.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let Ok(data) = std::fs::read(module) else { continue };
        let Ok(file) = object::File::parse(&*data) else { continue }; // the manifest
        if let Some(text) = file.section_by_name(".text") {
            s.push_str(&format!("  add-symbol-file {} {:#x}    # {name}\n", rel(module), text.address()));
        }
    }
    s.push_str(
        "\nEvery program is linked at the same addresses, so use hardware breakpoints (hbreak; \
         a software breakpoint patches the code of whichever program is mapped at the moment) and check \
         which program stopped: the running process's id is the kernel's KINTSUGI_CURRENT_PID \
         (`set language c` then `x/wd &KINTSUGI_CURRENT_PID`), and `ps` in the shell names it. Ctrl-A X quits QEMU.\n",
    );
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards() {
        assert_eq!(parse_forward("8080:80"), Ok((8080, 80)));
        assert!(parse_forward("8080").is_err());
        assert!(parse_forward("0:80").is_err());
        assert!(parse_forward("x:80").is_err());
        // A taken port is replaced by a free one.
        let taken = std::net::TcpListener::bind(("0.0.0.0", 0)).unwrap();
        let port = taken.local_addr().unwrap().port();
        let chosen = choose_forwards(&[(port, 80), (port, 22)]);
        assert_eq!(chosen.len(), 2);
        assert!(chosen.iter().all(|(h, _)| *h != port));
        assert_ne!(chosen[0].0, chosen[1].0);
        assert_eq!((chosen[0].1, chosen[1].1), (80, 22));
    }
}
