//! `cargo xtask`: Kintsugi's build automation.
//!
//! - `build`: the kernel and every program in `services/system.toml`, laid
//!   out as an image in `target/kintsugi/image/`.
//! - `run`: build and boot in QEMU with the data and checkpoint disks and a
//!   NIC (host port 8080 to guest port 80, or `--forward HOST:GUEST`);
//!   `--headless --exec 'CMD; ...'` types commands into the shell and exits
//!   when the guest powers off; `--gdb` makes QEMU wait for a debugger and
//!   prints how to attach gdb.
//! - `image`: a GRUB hybrid ISO (Multiboot2; BIOS and UEFI).
//! - `lint`: `cargo fmt --check` and clippy (warnings are errors) over the
//!   host and bare-metal crates.
//! - `test`: every test (lint, host unit tests, then system tests in QEMU).
//! - `bench`: the benchmarks, beside a Linux guest under the same QEMU.
//! - `profile`: boot with the kernel's sampling profiler, run shell
//!   commands, and report where the CPU went (see `profile`).
//! - `vault ls|show`: what the vault holds on the checkpoint disk image.
//! - `disk ls|put|get|rm`: files between the host and the data disk image.
//! - `soak`: the soak campaign: every resilient service loaded and crashed
//!   at once, power cuts, a report under `target/soak/` (see `soak`).

mod assemble;
mod bench;
mod disk;
mod disks;
mod iso;
mod lint;
mod profile;
mod run;
mod soak;
mod test;
mod tools;
mod vault;

use clap::{Parser, Subcommand, ValueEnum};
use kintsugi_tests::{Accel, DiskBus, Display, NicModel};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Build, run, image, test and benchmark Kintsugi")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum AccelArg {
    Tcg,
    Kvm,
}

#[derive(Clone, Copy, ValueEnum)]
enum DiskBusArg {
    Virtio,
    Ahci,
}

#[derive(Clone, Copy, ValueEnum)]
enum DisplayArg {
    /// A QEMU window on this desktop.
    Window,
    /// A VNC server on 127.0.0.1:5900.
    Vnc,
}

#[derive(Clone, Copy, ValueEnum)]
enum NicArg {
    Virtio,
    E1000,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the kernel and programs into target/kintsugi/image.
    Build,
    /// Build and boot the system in QEMU.
    Run {
        /// No interactive console: print it, type --exec, exit at power-off.
        #[arg(long)]
        headless: bool,
        /// Shell commands to type, separated by ';' (with --headless).
        #[arg(long)]
        exec: Option<String>,
        /// Folder holding data.img and checkpoint.img (default target/disks).
        #[arg(long)]
        disks: Option<PathBuf>,
        /// QEMU accelerator.
        #[arg(long, value_enum, default_value = "tcg")]
        accel: AccelArg,
        /// Disk controller model.
        #[arg(long, value_enum, default_value = "virtio")]
        disk_bus: DiskBusArg,
        /// Network card model.
        #[arg(long, value_enum, default_value = "virtio")]
        nic: NicArg,
        /// Guest memory in MiB.
        #[arg(long, default_value_t = 256)]
        memory: u32,
        /// Seconds a headless run may take.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// Boot the GRUB ISO (BIOS) instead of QEMU's direct kernel boot.
        #[arg(long)]
        iso: bool,
        /// Forward host TCP port HOST to guest port GUEST (repeatable;
        /// default 8080:80). A taken host port is replaced by a free one.
        #[arg(long = "forward", value_name = "HOST:GUEST", value_parser = run::parse_forward)]
        forward: Vec<(u16, u16)>,
        /// Show the screen console too: a QEMU window (`--display`), or a
        /// VNC server on 127.0.0.1:5900 (`--display vnc`). The serial
        /// console stays on this terminal.
        #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "window")]
        display: Option<DisplayArg>,
        /// QEMU waits for a debugger (-s -S); prints how to attach gdb.
        #[arg(long)]
        gdb: bool,
        /// Size in MiB of the data disk when it is created (default 512).
        #[arg(long)]
        disk_size: Option<u64>,
    },
    /// Copy files and folders between the host and the data disk image.
    Disk {
        #[command(subcommand)]
        command: DiskCmd,
        /// Folder holding data.img (default target/disks).
        #[arg(long, global = true)]
        disks: Option<PathBuf>,
    },
    /// Write the GRUB hybrid ISO.
    Image {
        /// Output path (default target/kintsugi/image/kintsugi.iso).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The soak: load every resilient service, crash them at random, cut the
    /// power, check nothing acknowledged is lost; report in target/soak/.
    Soak {
        /// Minutes of injection (the final checks come after).
        #[arg(long, default_value_t = 10.0)]
        minutes: f64,
        /// Seed of the random choices (default: from the clock; printed).
        #[arg(long)]
        seed: Option<u64>,
        /// Folder holding data.img and checkpoint.img, kept (default: fresh
        /// disks in target/soak/disks).
        #[arg(long)]
        disks: Option<PathBuf>,
        /// Seconds between power cuts, MIN-MAX.
        #[arg(long, default_value = "60-150", value_parser = soak::parse_range)]
        cut_every: (u64, u64),
        /// Do not kill companions (`kill kv-companion`, `kill blk-companion`).
        #[arg(long)]
        no_companion_kills: bool,
        /// Do not cut the power while fsload runs (fs is then brought to
        /// rest and synced before each cut).
        #[arg(long)]
        no_fs_power_cuts: bool,
        /// Copy the guest's console to stdout.
        #[arg(long)]
        echo: bool,
        /// Milliseconds between two injections, MIN-MAX.
        #[arg(long, default_value = "100-1200", value_parser = soak::parse_range)]
        pause_ms: (u64, u64),
        /// Keep chaos on in kv, tally, blk, fs and nic all the time (periods
        /// of chaos then come and go on net, httpd and waiter): the crash rate of a
        /// long campaign.
        #[arg(long)]
        steady_chaos: bool,
        /// After one power cut in N on average, damage a checkpoint record
        /// on the checkpoint disk (bytes flipped or the record cut short);
        /// 0: never.
        #[arg(long, default_value_t = 3)]
        damage_every: u64,
        /// System calls of the fuzzer run in the final boot (nothing else
        /// running; its kernel-memory leak check counts).
        #[arg(long, default_value_t = kintsugi_tests::soak::attackers::FINAL_FUZZ_CALLS)]
        final_fuzz: u64,
    },
    /// Run the benchmarks beside a Linux guest under the same QEMU settings.
    Bench {
        /// Run only this part: kernel (with scheduling), resiliency, kvload, devices, vault, fs or http.
        #[arg(long)]
        only: Option<String>,
    },
    /// Boot with the sampling profiler, run shell commands, report where the CPU went.
    Profile {
        /// Shell commands to run while sampling, separated by ';'.
        #[arg(long)]
        exec: Option<String>,
        /// Seconds to keep sampling after the commands (default 10 without --exec, else 0).
        #[arg(long)]
        seconds: Option<u64>,
        /// Samples per second.
        #[arg(long, default_value_t = 4000)]
        hz: u32,
        /// Functions listed per program.
        #[arg(long, default_value_t = 12)]
        top: usize,
        /// Put a file of MIB MiB in /www on the data disk and, after the
        /// commands, download it from the host through httpd while sampling.
        #[arg(long, value_name = "MIB")]
        download: Option<u64>,
    },
    /// Show what the vault holds on the checkpoint disk image.
    Vault {
        #[command(subcommand)]
        command: VaultCmd,
    },
    /// Check formatting and run clippy (warnings are errors) on every crate.
    Lint,
    /// Run every test.
    Test {
        /// Only system tests whose name contains this.
        filter: Option<String>,
        /// Skip the formatting and clippy checks.
        #[arg(long)]
        skip_lint: bool,
        /// Skip the host unit tests.
        #[arg(long)]
        skip_unit: bool,
        /// Skip the system tests.
        #[arg(long)]
        skip_system: bool,
        /// QEMU accelerator for the system tests.
        #[arg(long, value_enum, default_value = "tcg")]
        accel: AccelArg,
    },
}

#[derive(Subcommand)]
enum DiskCmd {
    /// List a folder of the data disk (default /).
    Ls {
        /// The folder on the disk.
        #[arg(default_value = "/")]
        path: String,
        /// Everything below it too.
        #[arg(short, long)]
        recursive: bool,
    },
    /// Copy host files or folders (recursively) to DEST on the data disk.
    Put {
        /// Host files or folders, then the destination on the disk.
        #[arg(required = true, num_args = 2..)]
        paths: Vec<String>,
    },
    /// Copy a file or folder from the data disk to the host.
    Get {
        /// The file or folder on the disk.
        src: String,
        /// Where on the host (default: the current folder).
        #[arg(default_value = ".")]
        dest: PathBuf,
    },
    /// Remove files or folders (with their contents) from the data disk.
    Rm {
        /// Paths on the disk.
        #[arg(required = true)]
        paths: Vec<String>,
    },
}

#[derive(Subcommand)]
enum VaultCmd {
    /// Every service's slots: generation, size, time, kind, valid or damaged, current.
    Ls {
        /// Folder holding checkpoint.img (default target/disks).
        #[arg(long)]
        disks: Option<PathBuf>,
    },
    /// One service's slots in detail and the head of its current state.
    Show {
        /// The service (e.g. kv).
        service: String,
        /// Folder holding checkpoint.img (default target/disks).
        #[arg(long)]
        disks: Option<PathBuf>,
    },
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Build => assemble::build().map(|img| {
            eprintln!("xtask: image in {}", img.kernel.parent().unwrap_or(&img.kernel).display());
            0
        }),
        Cmd::Disk { command, disks } => disk::run(
            match command {
                DiskCmd::Ls { path, recursive } => disk::DiskOp::Ls { path, recursive },
                DiskCmd::Put { mut paths } => {
                    let dest = paths.pop().unwrap_or_default();
                    disk::DiskOp::Put { sources: paths.into_iter().map(PathBuf::from).collect(), dest }
                }
                DiskCmd::Get { src, dest } => disk::DiskOp::Get { src, dest },
                DiskCmd::Rm { paths } => disk::DiskOp::Rm { paths },
            },
            disks,
        )
        .map(|_| 0),
        Cmd::Run {
            headless,
            exec,
            disks,
            accel,
            disk_bus,
            nic,
            memory,
            timeout,
            iso,
            forward,
            display,
            disk_size,
            gdb,
        } => run::run(run::RunOptions {
            headless,
            exec,
            disks,
            accel: match accel {
                AccelArg::Tcg => Accel::Tcg,
                AccelArg::Kvm => Accel::Kvm,
            },
            disk_bus: match disk_bus {
                DiskBusArg::Virtio => DiskBus::Virtio,
                DiskBusArg::Ahci => DiskBus::Ahci,
            },
            nic: match nic {
                NicArg::Virtio => NicModel::Virtio,
                NicArg::E1000 => NicModel::E1000,
            },
            memory,
            timeout,
            iso,
            forwards: forward,
            display: match display {
                None => Display::None,
                Some(DisplayArg::Window) => Display::Window,
                Some(DisplayArg::Vnc) => Display::Vnc(0),
            },
            disk_size,
            gdb,
        }),
        Cmd::Image { out } => assemble::build().and_then(|img| {
            let out = out.unwrap_or_else(|| kintsugi_tests::image::image_dir().join("kintsugi.iso"));
            iso::make(&img, &out).map(|p| {
                eprintln!("xtask: wrote {}", p.display());
                0
            })
        }),
        Cmd::Soak {
            minutes,
            seed,
            disks,
            cut_every,
            no_companion_kills,
            no_fs_power_cuts,
            echo,
            pause_ms,
            steady_chaos,
            damage_every,
            final_fuzz,
        } => soak::run(soak::SoakArgs {
            minutes,
            seed,
            disks,
            cut_every,
            companion_kills: !no_companion_kills,
            fs_power_cuts: !no_fs_power_cuts,
            echo,
            pause_ms,
            steady_chaos,
            damage_every,
            final_fuzz,
        }),
        Cmd::Bench { only } => bench::run(only.as_deref()).map(|_| 0),
        Cmd::Profile { exec, seconds, hz, top, download } => {
            profile::run(profile::ProfileOptions { exec, seconds, hz, top, download }).map(|_| 0)
        }
        Cmd::Vault { command } => match command {
            VaultCmd::Ls { disks } => vault::ls(disks).map(|_| 0),
            VaultCmd::Show { service, disks } => vault::show(&service, disks).map(|_| 0),
        },
        Cmd::Lint => lint::run().map(|_| 0),
        Cmd::Test { filter, skip_lint, skip_unit, skip_system, accel } => {
            test::run(filter.as_deref(), skip_lint, skip_unit, skip_system, matches!(accel, AccelArg::Kvm)).map(|_| 0)
        }
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("xtask: error: {e}");
            std::process::exit(1);
        }
    }
}
