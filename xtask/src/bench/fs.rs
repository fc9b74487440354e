//! The file-system benchmarks of `cargo xtask bench` (`--only fs`):
//! Kintsugi's fs service (fatfs, under its companion, over blk) beside
//! Linux's `vfat` driver, on the same kind of disk in the same run.
//!
//! The machine (both systems): the benchmark machine of `mod.rs` plus two
//! virtio-blk-pci disks, a fresh sparse FAT32 data disk of
//! [`DATA_DISK_MIB`] MiB (`mkfs.fat -F 32`, the one measured) and a fresh
//! FAT32 checkpoint disk (Kintsugi's vault needs it; Linux leaves it
//! alone). Kintsugi runs `fsbench MIB FILES READS REPS` from the shell
//! (services/fs/src/bin/fsbench.rs); Linux mounts the data disk with
//! `vfat` and `/init` runs `linuxbench fs MIB FILES READS REPS`, which does
//! the same operations in the same order (see both programs' docs): a
//! sequential write of a MIB MiB file then a sync, a sequential read of it
//! (Linux's page cache dropped first), READS random 4 KiB reads in it, and
//! FILES small files of 4 KiB created, written and closed (then a sync).
//! Each guest prints the median over its REPS repetitions; the table shows
//! the median over [`RUNS`] alternating boots of each system.
//!
//! A second table, Kintsugi only, shows what resiliency costs the file
//! service, each figure beside its reference from the same boot
//! (`fsbench resiliency`, run after the main figures): recovery with 100
//! open files beside a cold start, cached reads and a write then sync
//! through the companion beside a `direct` instance, and the bytes the
//! companion hands the vault per MiB written.

use super::linux::{self, LinuxQemu};
use super::{devices, median_of, Figures, MEMORY_MB, RUNS};
use kintsugi_tests::{Image, Machine, QemuConfig};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Size of the big file (MiB).
pub const FILE_MIB: u64 = 64;
/// Small files per repetition.
pub const SMALL_FILES: u64 = 1000;
/// Random 4 KiB reads per repetition.
pub const RANDOM_READS: u64 = 1000;
/// Repetitions inside one boot.
pub const REPS: u64 = 3;
/// Size of the FAT32 data disk (MiB): the default data disk's size.
const DATA_DISK_MIB: u64 = kintsugi_tests::disks::DATA_MIB;
/// Size of the checkpoint disk (MiB).
const CHECKPOINT_DISK_MIB: u64 = kintsugi_tests::disks::CHECKPOINT_MIB;
/// How long Kintsugi's `fsbench` may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(600);
/// Kernel modules for the Linux guest: the disk, the file system and the
/// character sets a vfat mount loads by default (code page 437, and the
/// `ascii` I/O charset of Debian's config; `utf8` for the `utf8` option).
const LINUX_MODULES: [&str; 5] = ["virtio_blk", "vfat", "nls_cp437", "nls_ascii", "nls_utf8"];

/// The figures both programs print: name, label, unit, goal (at least
/// this ratio of Linux's figure).
const ROWS: [(&str, &str, &str, f64); 5] = [
    ("fs_seq_write_mib_s", "sequential write of a 64 MiB file (64 KiB writes), then sync", "MiB/s", 0.5),
    ("fs_seq_read_mib_s", "sequential read of it (64 KiB reads, cold cache)", "MiB/s", 0.8),
    ("fs_rand_read_iops", "random 4 KiB reads in it, one at a time", "reads/s", 0.8),
    ("fs_small_files_s", "1000 files of 4 KiB: create, write, close", "files/s", 0.5),
    ("fs_small_files_synced_s", "the same, until the sync after them returned", "files/s", 0.5),
];

/// The resiliency figures: name, reference's name (or none), label, unit.
const COST_ROWS: [(&str, Option<&str>, &str, &str); 4] = [
    (
        "fs_recovery_open100_ms",
        Some("fs_cold_start_ms"),
        "recovery of fs with 100 open files (kill to the first reply) / cold start of fs (start to the first reply)",
        "ms",
    ),
    (
        "fs_cached_reads_companion_s",
        Some("fs_cached_reads_direct_s"),
        "cached 4 KiB reads, through the companion / straight to the service",
        "reads/s",
    ),
    (
        "fs_write_companion_mib_s",
        Some("fs_write_direct_mib_s"),
        "16 MiB written then synced, through the companion (epochs committed to the vault, then applied) / straight to the service (written at the sync)",
        "MiB/s",
    ),
    ("fs_vault_bytes_per_mib", None, "bytes handed to the vault per MiB written and synced", "bytes"),
];

/// Fresh disks in `dir`: the FAT32 data disk and the checkpoint disk.
fn fresh_disks(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("bench: {}: {e}", dir.display()))?;
    let (data, checkpoint) = (dir.join("data.img"), dir.join("checkpoint.img"));
    kintsugi_tests::disks::make_fat_disk(&data, "KDATA", DATA_DISK_MIB)?;
    kintsugi_tests::disks::make_fat_disk(&checkpoint, "KCKPT", CHECKPOINT_DISK_MIB)?;
    Ok(vec![data, checkpoint])
}

/// The arguments both programs take.
fn args() -> [String; 4] {
    [FILE_MIB, SMALL_FILES, RANDOM_READS, REPS].map(|n| n.to_string())
}

fn check_figures(figures: &Figures, system: &str) -> Result<(), String> {
    match ROWS.iter().find(|(n, ..)| !figures.contains_key(*n)) {
        Some((missing, ..)) => Err(format!("bench: the {system} fs run gave no {missing}")),
        None => Ok(()),
    }
}

fn kintsugi_run(image: &Image, disk_dir: &Path) -> Result<Figures, String> {
    let disks = fresh_disks(disk_dir)?;
    let cfg = QemuConfig { memory_mb: MEMORY_MB, disks, ..QemuConfig::default() };
    let mut m = Machine::boot(image, &cfg, false).map_err(|e| e.to_string())?;
    m.wait_prompt(Duration::from_secs(120)).map_err(|e| e.to_string())?;
    for service in kintsugi_tests::resilient_services(image) {
        m.wait_for_text(&format!("{service} is up"), Duration::from_secs(120)).map_err(|e| e.to_string())?;
    }
    let line = format!("run fsbench {}", args().join(" "));
    let out = m.command(&line, COMMAND_TIMEOUT).map_err(|e| format!("bench: `{line}`: {e}"))?;
    if let Some(err) = out.lines().find(|l| l.contains("BENCH-ERROR")) {
        return Err(format!("bench: `{line}`: {err}\n{out}"));
    }
    for rep in out.lines().filter(|l| l.contains("fsbench: rep")) {
        eprintln!("bench: Kintsugi {}", rep.trim());
    }
    let mut figures = linux::parse_bench_lines(&out)?;
    check_figures(&figures, "Kintsugi")?;
    // After the main figures: its direct instance writes behind fs's back.
    let line = "run fsbench resiliency";
    let out = m.command(line, COMMAND_TIMEOUT).map_err(|e| format!("bench: `{line}`: {e}"))?;
    if let Some(err) = out.lines().find(|l| l.contains("BENCH-ERROR")) {
        return Err(format!("bench: `{line}`: {err}\n{out}"));
    }
    figures.extend(linux::parse_bench_lines(&out)?);
    m.power_off(Duration::from_secs(60)).map_err(|e| e.to_string())?;
    Ok(figures)
}

fn linux_run(work_dir: &Path, disk_dir: &Path) -> Result<(Figures, String), String> {
    let disks = fresh_disks(disk_dir)?;
    let mut extra_args = devices::disk_args(&disks);
    // Kintsugi's machine has no VGA either.
    extra_args.extend(["-vga".into(), "none".into()]);
    let q = LinuxQemu { memory_mb: MEMORY_MB, extra_args };
    let a = args();
    let mut words = vec!["fs"];
    words.extend(a.iter().map(String::as_str));
    let run = linux::run_linuxbench(work_dir, &q, &LINUX_MODULES, &words)?;
    let _ = std::fs::write(work_dir.join("console-fs.log"), &run.console);
    for rep in run.console.lines().filter(|l| l.contains("linuxbench: rep")) {
        eprintln!("bench: Linux {}", rep.trim());
    }
    check_figures(&run.figures, "Linux")?;
    Ok((run.figures, run.kernel_release))
}

/// The "File system" table from both systems' runs.
fn table(kintsugi: &[Figures], linux: &[Figures], release: &str) -> String {
    let mut t = format!(
        "File system: Kintsugi's fs service (fatfs, through its companion and blk) vs Linux {release} vfat, same QEMU \
         (q35, qemu64, TCG, {MEMORY_MB} MiB) with a virtio-blk-pci FAT32 data disk ({DATA_DISK_MIB} MiB); each boot's \
         median of {REPS} repetitions, then the median of {RUNS} alternating boots\n\n\
         | operation | Kintsugi | Linux | Kintsugi / Linux | goal |\n|---|---:|---:|---:|---|\n"
    );
    for (name, label, unit, goal) in ROWS {
        let (k, l) = (median_of(kintsugi, name), median_of(linux, name));
        let shown = |v: Option<f64>| match v {
            Some(v) if unit == "MiB/s" => format!("{v:.1} {unit}"),
            Some(v) => format!("{v:.0} {unit}"),
            None => "-".into(),
        };
        let (ratio, verdict) = match (k, l) {
            (Some(k), Some(l)) if l > 0.0 => {
                let r = k / l;
                (format!("{r:.2}"), format!("at least {goal:.1}: {}", if r >= goal { "met" } else { "NOT met" }))
            }
            _ => ("-".into(), String::new()),
        };
        t.push_str(&format!("| {label} | {} | {} | {ratio} | {verdict} |\n", shown(k), shown(l)));
    }
    t
}

/// What resiliency costs the file service (Kintsugi's runs only).
fn cost_table(kintsugi: &[Figures]) -> String {
    let mut t = format!(
        "What resiliency costs the file service: each figure beside its reference from the same boot, median of \
         {RUNS} boots\n\n| figure | resilient | reference | ratio |\n|---|---:|---:|---:|\n"
    );
    for (name, reference, label, unit) in COST_ROWS {
        let k = median_of(kintsugi, name);
        let r = reference.and_then(|r| median_of(kintsugi, r));
        let shown = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1} {unit}"));
        let ratio = match (k, r) {
            (Some(k), Some(r)) if r > 0.0 => format!("{:.2}", k / r),
            _ => "-".into(),
        };
        t.push_str(&format!("| {label} | {} | {} | {ratio} |\n", shown(k), shown(r)));
    }
    t
}

/// Run the file-system benchmarks (alternating Kintsugi and Linux, [`RUNS`]
/// boots each); the table, also printed.
pub fn fs_table(image: &Image, work_dir: &Path) -> Result<String, String> {
    crate::tools::ensure(&[&crate::tools::DOSFSTOOLS])?;
    let disk_root = kintsugi_tests::image::workspace_root().join("target/bench/fs-disks");
    let (mut kintsugi, mut linux_runs, mut release) = (Vec::new(), Vec::new(), String::new());
    for i in 0..RUNS {
        eprintln!("bench: fs run {} of {RUNS}: Kintsugi", i + 1);
        let k = kintsugi_run(image, &disk_root.join("kintsugi"))?;
        eprintln!("bench: fs Kintsugi: {k:?}");
        kintsugi.push(k);
        eprintln!("bench: fs run {} of {RUNS}: Linux", i + 1);
        let (l, r) = linux_run(work_dir, &disk_root.join("linux"))?;
        eprintln!("bench: fs Linux: {l:?}");
        linux_runs.push(l);
        release = r;
    }
    let mut t = table(&kintsugi, &linux_runs, &release);
    t.push('\n');
    t.push_str(&cost_table(&kintsugi));
    println!("{t}");
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_medians_ratios_and_verdicts() {
        let run = |scale: f64| -> Figures { ROWS.iter().map(|(n, ..)| (n.to_string(), 100.0 * scale)).collect() };
        let k = [run(1.0), run(3.0), run(2.0)];
        let l = [run(4.0), run(4.0), run(2.0)];
        let t = table(&k, &l, "6.1");
        assert!(t.contains("| 200.0 MiB/s | 400.0 MiB/s | 0.50 | at least 0.5: met |"), "{t}");
        assert!(t.contains("| random 4 KiB reads in it, one at a time | 200 reads/s | 400 reads/s | 0.50 | at least 0.8: NOT met |"), "{t}");
        assert_eq!(t.matches("NOT met").count(), 2, "{t}");
    }
}
