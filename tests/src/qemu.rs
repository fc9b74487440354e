//! The QEMU command line for a Kintsugi machine: CPU and memory, how it
//! boots, its disks and its NIC.

use crate::image::Image;
use std::path::PathBuf;
use std::process::Command;

/// The accelerator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    /// Software emulation (the default here: nested KVM is slower).
    Tcg,
    /// Hardware virtualisation.
    Kvm,
}

/// How the machine boots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Boot {
    /// QEMU loads the kernel and modules itself (Multiboot1).
    Direct,
    /// GRUB from the ISO, with the legacy BIOS.
    IsoBios(PathBuf),
    /// GRUB from the ISO, with UEFI firmware (a combined OVMF image).
    IsoUefi(PathBuf, PathBuf),
}

/// Which controller the disks hang off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskBus {
    /// virtio-blk-pci.
    Virtio,
    /// AHCI (SATA).
    Ahci,
}

/// Which network card.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NicModel {
    /// virtio-net-pci.
    Virtio,
    /// Intel e1000.
    E1000,
}

/// What the machine shows on a screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Display {
    /// No display device at all (the serial console only).
    None,
    /// A standard VGA card, drawn nowhere: the monitor's `screendump`
    /// takes pictures of it (the screen tests).
    Offscreen,
    /// A standard VGA card in a window on the host.
    Window,
    /// A standard VGA card served by VNC on `127.0.0.1:5900 + N`.
    Vnc(u16),
}

/// Everything about one QEMU run.
#[derive(Clone, Debug)]
pub struct QemuConfig {
    /// Guest RAM in MiB.
    pub memory_mb: u32,
    /// Accelerator.
    pub accel: Accel,
    /// Boot path.
    pub boot: Boot,
    /// Disk images to attach, in order (data, checkpoint).
    pub disks: Vec<PathBuf>,
    /// Disk controller.
    pub disk_bus: DiskBus,
    /// NIC model, or no NIC.
    pub nic: Option<NicModel>,
    /// User-network host forwards `(host port, guest port)`.
    pub forwards: Vec<(u16, u16)>,
    /// Extra `-netdev` spec replacing user networking (e.g. a socket).
    pub netdev: Option<String>,
    /// Kernel command line (direct boot).
    pub cmdline: String,
    /// Extra raw arguments.
    pub extra: Vec<String>,
    /// Keep the monitor on stdio (Ctrl-A X quits) for interactive use.
    pub interactive: bool,
    /// The screen.
    pub display: Display,
    /// A Unix socket for QEMU's human monitor (`sendkey`, `screendump`;
    /// see `monitor::Monitor`), when not interactive.
    pub monitor: Option<PathBuf>,
}

impl Accel {
    /// The accelerator named by `KINTSUGI_ACCEL` (`kvm` or `tcg`), TCG by
    /// default.
    pub fn from_env() -> Accel {
        match std::env::var("KINTSUGI_ACCEL").as_deref() {
            Ok("kvm") => Accel::Kvm,
            _ => Accel::Tcg,
        }
    }
}

impl Default for QemuConfig {
    fn default() -> Self {
        QemuConfig {
            memory_mb: 256,
            accel: Accel::from_env(),
            boot: Boot::Direct,
            disks: Vec::new(),
            disk_bus: DiskBus::Virtio,
            nic: None,
            forwards: Vec::new(),
            netdev: None,
            cmdline: String::new(),
            extra: Vec::new(),
            interactive: false,
            display: Display::None,
            monitor: None,
        }
    }
}

/// The QEMU binary.
pub const QEMU: &str = "qemu-system-x86_64";

/// Whether a host TCP port is free to listen on (as QEMU's `hostfwd`
/// does, on every address).
pub fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("0.0.0.0", port)).is_ok()
}

/// A TCP port on the host that is free now (the system picks it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind(("0.0.0.0", 0)).and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

/// `want` if it is free, else a free port.
pub fn host_port(want: u16) -> u16 {
    if want != 0 && port_free(want) {
        want
    } else {
        free_port()
    }
}

impl QemuConfig {
    /// The command that runs this machine with `image`.
    pub fn command(&self, image: &Image) -> Command {
        let mut c = Command::new(QEMU);
        c.args(["-machine", "q35", "-cpu", "qemu64", "-m", &format!("{}M", self.memory_mb)]);
        match &self.display {
            Display::None => c.args(["-display", "none", "-vga", "none"]),
            Display::Offscreen => c.args(["-display", "none", "-vga", "std"]),
            Display::Window => c.args(["-vga", "std"]),
            Display::Vnc(n) => c.args(["-display", &format!("vnc=127.0.0.1:{n}"), "-vga", "std"]),
        };
        c.arg("-no-reboot");
        match self.accel {
            Accel::Tcg => c.args(["-accel", "tcg"]),
            Accel::Kvm => c.args(["-accel", "kvm"]),
        };
        if self.interactive {
            c.args(["-serial", "mon:stdio"]);
        } else {
            c.args(["-serial", "stdio"]);
            match &self.monitor {
                Some(path) => c.arg("-monitor").arg(format!("unix:{},server,nowait", path.display())),
                None => c.args(["-monitor", "none"]),
            };
        }
        match &self.boot {
            Boot::Direct => {
                c.arg("-kernel").arg(&image.kernel);
                let mods: Vec<String> = image.modules.iter().map(|m| m.display().to_string()).collect();
                c.arg("-initrd").arg(mods.join(","));
                if !self.cmdline.is_empty() {
                    c.args(["-append", &self.cmdline]);
                }
            }
            Boot::IsoBios(iso) => {
                c.arg("-cdrom").arg(iso);
                c.args(["-boot", "d"]);
            }
            Boot::IsoUefi(iso, ovmf) => {
                c.arg("-bios").arg(ovmf);
                c.arg("-cdrom").arg(iso);
                c.args(["-boot", "d"]);
            }
        }
        for (i, d) in self.disks.iter().enumerate() {
            c.arg("-drive").arg(format!("file={},if=none,id=disk{i},format=raw", d.display()));
            // The q35 machine's own AHCI controller (ICH9) has ports ide.0..ide.5.
            match self.disk_bus {
                DiskBus::Virtio => {
                    c.args(["-device", &format!("virtio-blk-pci,drive=disk{i},serial=kintsugi-disk{i}")])
                }
                DiskBus::Ahci => {
                    c.args(["-device", &format!("ide-hd,drive=disk{i},bus=ide.{i},serial=kintsugi-disk{i}")])
                }
            };
        }
        if let Some(model) = self.nic {
            let netdev = self.netdev.clone().unwrap_or_else(|| {
                let mut s = String::from("user,id=net0");
                for (h, g) in &self.forwards {
                    s.push_str(&format!(",hostfwd=tcp::{h}-:{g}"));
                }
                s
            });
            c.args(["-netdev", &netdev]);
            let dev = match model {
                NicModel::Virtio => "virtio-net-pci,netdev=net0",
                NicModel::E1000 => "e1000,netdev=net0",
            };
            c.args(["-device", dev]);
        }
        c.args(&self.extra);
        c
    }
}
