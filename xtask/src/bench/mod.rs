//! `cargo xtask bench`: Kintsugi's figures beside the same operations in a
//! Linux guest booted under the same QEMU settings in the same run.
//!
//! Runs alternate (Kintsugi, Linux, Kintsugi, ...) so both see the same
//! machine load; every figure is the median over the runs of each run's own
//! median. Under TCG absolute times are emulation times: the ratio is the
//! figure to read.

pub mod cpio;
pub mod debian;
pub mod devices;
pub mod fs;
pub mod http;
pub mod kmods;
pub mod kvload;
pub mod linux;

use crate::{assemble, tools};
use kintsugi_tests::{Image, Machine, QemuConfig};
use linux::{LinuxQemu, LinuxResults};
use std::collections::BTreeMap;
use std::time::Duration;

/// Guest memory for every benchmark run (MiB).
const MEMORY_MB: u32 = 256;
/// Runs of each system.
const RUNS: usize = 3;

/// One Kintsugi run's figures (name -> value).
type Figures = BTreeMap<String, f64>;

/// Boot Kintsugi and run `program`; its `BENCH` figures.
fn kintsugi_program(image: &Image, program: &str) -> Result<Figures, String> {
    kintsugi_program_on(image, program, QemuConfig { memory_mb: MEMORY_MB, ..QemuConfig::default() })
}

/// Boot Kintsugi with `cfg` and run `program`; its `BENCH` figures.
fn kintsugi_program_on(image: &Image, program: &str, cfg: QemuConfig) -> Result<Figures, String> {
    let mut m = Machine::boot(image, &cfg, false).map_err(|e| e.to_string())?;
    m.wait_prompt(Duration::from_secs(120)).map_err(|e| e.to_string())?;
    for service in kintsugi_tests::resilient_services(image) {
        m.wait_for_text(&format!("{service} is up"), Duration::from_secs(120)).map_err(|e| e.to_string())?;
    }
    let out = m.command(&format!("run {program}"), Duration::from_secs(900)).map_err(|e| e.to_string())?;
    let figures = linux::parse_bench_lines(&out)?;
    m.power_off(Duration::from_secs(60)).map_err(|e| e.to_string())?;
    Ok(figures)
}

/// Boot Kintsugi, time the boot, run the `bench` program, power off.
fn kintsugi_run(image: &Image) -> Result<Figures, String> {
    let cfg = QemuConfig { memory_mb: MEMORY_MB, ..QemuConfig::default() };
    let mut m = Machine::boot(image, &cfg, false).map_err(|e| e.to_string())?;
    m.wait_prompt(Duration::from_secs(120)).map_err(|e| e.to_string())?;
    let boot_ms = m.uptime().as_secs_f64() * 1000.0;
    let out = m.command("run bench", Duration::from_secs(600)).map_err(|e| e.to_string())?;
    let mut figures = linux::parse_bench_lines(&out)?;
    figures.insert("boot_ms".into(), boot_ms);
    // The scheduling figures, once the resilient services are up.
    for service in kintsugi_tests::resilient_services(image) {
        m.wait_for_text(&format!("{service} is up"), Duration::from_secs(120)).map_err(|e| e.to_string())?;
    }
    let out = m.command("run bench sched", Duration::from_secs(900)).map_err(|e| e.to_string())?;
    figures.extend(linux::parse_bench_lines(&out)?);
    m.power_off(Duration::from_secs(60)).map_err(|e| e.to_string())?;
    Ok(figures)
}

fn linux_figures(r: &LinuxResults) -> Figures {
    let mut f = r.extra.clone();
    f.insert("boot_ms".into(), r.boot_to_init_ms);
    f.insert("null_syscall_ns".into(), r.null_syscall_ns);
    f.insert("rtt_ns".into(), r.pipe_rtt_ns);
    f.insert("spawn_ns".into(), r.spawn_ns);
    f
}

fn median_of(runs: &[Figures], name: &str) -> Option<f64> {
    let mut v: Vec<f64> = runs.iter().filter_map(|f| f.get(name).copied()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// One row of the kernel table.
struct Row {
    label: &'static str,
    /// Kintsugi's figure name.
    kintsugi: &'static str,
    /// Linux's figure name.
    linux: &'static str,
    /// Divisor to the unit.
    div: f64,
    unit: &'static str,
    /// The goal for the ratio (at most this), if there is one.
    goal: Option<f64>,
}

const ROWS: &[Row] = &[
    Row {
        label: "boot to shell prompt / to init",
        kintsugi: "boot_ms",
        linux: "boot_ms",
        div: 1.0,
        unit: "ms",
        goal: None,
    },
    Row {
        label: "null system call",
        kintsugi: "null_syscall_ns",
        linux: "null_syscall_ns",
        div: 1.0,
        unit: "ns",
        goal: None,
    },
    Row {
        label: "IPC round trip: channel / pipe",
        kintsugi: "channel_rtt_ns",
        linux: "rtt_ns",
        div: 1000.0,
        unit: "us",
        goal: Some(0.2),
    },
    Row {
        label: "spawn a program and reap it",
        kintsugi: "spawn_ns",
        linux: "spawn_ns",
        div: 1000.0,
        unit: "us",
        goal: Some(0.2),
    },
];

/// The scheduling rows: label, figure, reference figure, goal (at most).
const SCHED_ROWS: &[(&str, &str, &str, f64)] = &[
    ("kvload 1000 ops with one `spin` running / alone", "kvload_ns_1", "kvload_ns_0", 1.5),
    ("kvload 1000 ops with fifty `spin` running / alone", "kvload_ns_50", "kvload_ns_0", 3.0),
];

/// Copy figures: (label, figure, reference, goal for the ratio). The
/// built-in `rep movsq` copy gave 12 to 30 here; the register blocks of
/// `libos::memcpy` about 3 (two TLB switches per 64 bytes remain).
const COPY_ROWS: &[(&str, &str, &str, f64)] =
    &[("64 KiB copy, colliding / not", "copy_colliding_64k_ns", "copy_heap_64k_ns", 5.0)];

/// "met" or "NOT met" for a ratio against a goal of at most `goal`.
fn verdict(ratio: f64, goal: f64) -> &'static str {
    if ratio <= goal {
        "met"
    } else {
        "NOT met"
    }
}

/// Run the benchmarks and print the table; with `only`, just that part
/// (`kernel`, `resiliency`, `kvload`, `devices`, `vault`, `fs` or `http`), written to
/// `target/bench/results-PART.md`.
pub fn run(only: Option<&str>) -> Result<(), String> {
    tools::ensure(&[&tools::QEMU])?;
    let image = assemble::build()?;
    let work_dir = kintsugi_tests::image::workspace_root().join("target/bench/linux");
    let kvload_plot = kintsugi_tests::image::workspace_root().join("target/bench/kvload.svg");
    if let Some(part) = only {
        let table = match part {
            "kernel" => kernel_table(&image, &work_dir)?,
            "devices" => devices::devices_table(&image, &work_dir)?,
            "vault" => vault_table(&image)?,
            "resiliency" => resiliency_table(&image)?,
            "kvload" => kvload::kvload_table(&image, &kvload_plot)?,
            "fs" => fs::fs_table(&image, &work_dir)?,
            "http" => http::http_table(&image, &work_dir)?,
            other => {
                return Err(format!(
                    "bench: no part {other:?} (parts: kernel, resiliency, kvload, devices, vault, fs, http)"
                ))
            }
        };
        let out = kintsugi_tests::image::workspace_root().join(format!("target/bench/results-{part}.md"));
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(&out, &table).map_err(|e| format!("{}: {e}", out.display()))?;
        eprintln!("bench: table also written to {}", out.display());
        return Ok(());
    }
    let mut table = kernel_table(&image, &work_dir)?;
    table.push('\n');
    table.push_str(&resiliency_table(&image)?);
    table.push('\n');
    table.push_str(&kvload::kvload_table(&image, &kvload_plot)?);
    table.push('\n');
    table.push_str(&vault_table(&image)?);
    table.push('\n');
    table.push_str(&devices::devices_table(&image, &work_dir)?);
    table.push('\n');
    table.push_str(&fs::fs_table(&image, &work_dir)?);
    table.push('\n');
    table.push_str(&http::http_table(&image, &work_dir)?);
    let out = kintsugi_tests::image::workspace_root().join("target/bench/results.md");
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(&out, &table).map_err(|e| format!("{}: {e}", out.display()))?;
    eprintln!("bench: table also written to {}", out.display());
    Ok(())
}

/// The kernel figures beside Linux's (alternating runs) and the scheduling
/// figures from the same Kintsugi runs.
fn kernel_table(image: &Image, work_dir: &std::path::Path) -> Result<String, String> {
    let q = LinuxQemu { memory_mb: MEMORY_MB, extra_args: Vec::new() };
    let mut kintsugi = Vec::new();
    let mut linux_runs = Vec::new();
    let mut release = String::new();
    for i in 0..RUNS {
        eprintln!("bench: run {} of {RUNS}: Kintsugi", i + 1);
        kintsugi.push(kintsugi_run(image)?);
        eprintln!("bench: run {} of {RUNS}: Linux", i + 1);
        let l = linux::run_reference(work_dir, &q, &[])?;
        let _ = std::fs::write(work_dir.join("console.log"), &l.console);
        release = l.kernel_release.clone();
        linux_runs.push(linux_figures(&l));
    }
    let mut table = format!(
        "Kintsugi vs Linux {release}, same QEMU (q35, qemu64, TCG, {MEMORY_MB} MiB); medians of {RUNS} alternating runs\n\n\
         | operation | Kintsugi | Linux | Kintsugi / Linux | goal |\n|---|---:|---:|---:|---|\n"
    );
    for Row { label, kintsugi: k, linux: l, div, unit, goal } in ROWS {
        let (Some(kv), Some(lv)) = (median_of(&kintsugi, k), median_of(&linux_runs, l)) else {
            return Err(format!("bench: figure {k}/{l} missing"));
        };
        let ratio = kv / lv;
        let goal = goal.map(|g| format!("at most {g:.2}: {}", verdict(ratio, g))).unwrap_or_default();
        table.push_str(&format!(
            "| {label} | {:.1} {unit} | {:.1} {unit} | {ratio:.2} | {goal} |\n",
            kv / div,
            lv / div
        ));
    }
    table.push_str(&format!(
        "\nScheduling (Kintsugi, same runs): `bench sched` times `kvload 1 1000` alone (before and after), with one \
         CPU-bound `spin` and with fifty; medians of 3 timings per boot, then of the {RUNS} boots\n\n\
         | figure | with spinners | alone (reference) | ratio | goal |\n|---|---:|---:|---:|---|\n"
    ));
    ratio_rows(&mut table, &kintsugi, SCHED_ROWS, ms)?;
    table.push_str(
        "\nCopies (Kintsugi, same runs): `bench copy` times 64 KiB copies from the heap into another heap buffer \
         and into a mapping whose pages fall on the same entries of QEMU's software TLB (see `libos::memcpy`)\n\n\
         | figure | colliding | not colliding (reference) | ratio | goal |\n|---|---:|---:|---:|---|\n",
    );
    ratio_rows(&mut table, &kintsugi, COPY_ROWS, us)?;
    println!("\n{table}");
    Ok(table)
}

/// Rows of Kintsugi figures beside a reference from the same runs: (label,
/// figure, reference, goal for the ratio at most), values shown by `show`.
fn ratio_rows(
    table: &mut String,
    runs: &[Figures],
    rows: &[(&str, &str, &str, f64)],
    show: fn(f64) -> String,
) -> Result<(), String> {
    for (label, k, reference, goal) in rows {
        let (Some(kv), Some(rv)) = (median_of(runs, k), median_of(runs, reference)) else {
            return Err(format!("bench: figure {k}/{reference} missing"));
        };
        let ratio = kv / rv;
        table.push_str(&format!(
            "| {label} | {} | {} | {ratio:.2} | at most {goal:.1}: {} |\n",
            show(kv),
            show(rv),
            verdict(ratio, *goal)
        ));
    }
    Ok(())
}

fn ms(ns: f64) -> String {
    format!("{:.2} ms", ns / 1e6)
}

fn us(ns: f64) -> String {
    format!("{:.1} us", ns / 1e3)
}

/// The resiliency figures: each beside its own reference from the same run.
fn resiliency_table(image: &Image) -> Result<String, String> {
    let mut runs = Vec::new();
    let (mut durable, mut undurable) = (Vec::new(), Vec::new());
    for i in 0..RUNS {
        eprintln!("bench: resiliency run {} of {RUNS}", i + 1);
        // With a checkpoint disk: the companions keep their checkpoints in
        // the vault, as a system does.
        let (dir, disks) = kintsugi_tests::disks::fresh("bench-resiliency")?;
        let with_disks = QemuConfig { memory_mb: MEMORY_MB, disks, ..QemuConfig::default() };
        runs.push(kintsugi_program_on(image, "resbench", with_disks.clone())?);
        durable.push(kintsugi_program_on(image, "resbench puts", with_disks)?);
        let _ = std::fs::remove_dir_all(dir);
        undurable.push(kintsugi_program(image, "resbench puts")?);
    }
    let get = |name: &str| median_of(&runs, name).ok_or_else(|| format!("bench: resbench gave no {name}"));
    let mut t = format!(
        "Resiliency (Kintsugi, same QEMU; medians of {RUNS} runs), each figure beside its reference\n\n\
         | figure | with resiliency | reference | ratio |\n|---|---:|---:|---:|\n"
    );
    let (rc, rd) = (get("kv_rtt_companion_ns")?, get("kv_rtt_direct_ns")?);
    t.push_str(&format!(
        "| kv round trip: through the companion / straight to the service | {} | {} | {:.2} |\n",
        us(rc),
        us(rd),
        rc / rd
    ));
    let (pc, pd) = (get("kv_rps_companion")?, get("kv_rps_direct")?);
    t.push_str(&format!(
        "| kv requests per second: through the companion / straight | {pc:.0} | {pd:.0} | {:.2} |\n",
        pc / pd
    ));
    for (svc, kind) in [("kv", "logical"), ("tally", "image")] {
        let cold = get(&format!("{svc}_cold_start_ns"))?;
        let median = get(&format!("{svc}_recovery_median_ns"))?;
        let worst = get(&format!("{svc}_recovery_worst_ns"))?;
        t.push_str(&format!(
            "| {svc} ({kind}): crash to first reply, median / cold start to first reply | {} | {} | {:.2} |\n",
            ms(median),
            ms(cold),
            median / cold
        ));
        t.push_str(&format!(
            "| {svc} ({kind}): crash to first reply, worst / cold start | {} | {} | {:.2} |\n",
            ms(worst),
            ms(cold),
            worst / cold
        ));
    }
    let put = |runs: &[Figures], name: &str| median_of(runs, name).ok_or_else(|| format!("bench: no {name}"));
    let (rd, ru) = (put(&durable, "kv_put_rtt_ns")?, put(&undurable, "kv_put_rtt_ns")?);
    t.push_str(&format!(
        "| kv put round trip: durable (vault on a checkpoint disk) / not durable (no disk) | {} | {} | {:.2} |\n",
        us(rd),
        us(ru),
        rd / ru
    ));
    for clients in [1, 4] {
        let name = format!("kv_put_rps_{clients}");
        let (pd, pu) = (put(&durable, &name)?, put(&undurable, &name)?);
        t.push_str(&format!(
            "| kv puts per second, {clients} client(s): durable / not durable | {pd:.0} | {pu:.0} | {:.2} |\n",
            pd / pu
        ));
    }
    t.push_str("\n| distillation | state | checkpoint bytes | checkpoint time |\n|---|---|---:|---:|\n");
    for keys in [100, 1000, 10000] {
        t.push_str(&format!(
            "| logical (kv) | {keys} keys | {:.0} | {} |\n",
            get(&format!("kv_checkpoint_bytes_{keys}_keys"))?,
            ms(get(&format!("kv_checkpoint_ns_{keys}_keys"))?)
        ));
    }
    for counters in [1, 16, 256] {
        t.push_str(&format!(
            "| image (tally, 256 KiB arena) | {counters} counters changed | {:.0} | {} |\n",
            get(&format!("tally_checkpoint_bytes_{counters}_counters"))?,
            ms(get(&format!("tally_checkpoint_ns_{counters}_counters"))?)
        ));
    }
    println!("{t}");
    Ok(t)
}

/// The vault's checkpoint write and read times by state size (`vaultbench`
/// on a fresh pair of disks each run).
fn vault_table(image: &Image) -> Result<String, String> {
    tools::ensure(&[&tools::DOSFSTOOLS])?;
    let dir = kintsugi_tests::image::workspace_root().join("target/bench/vault-disks");
    let mut runs = Vec::new();
    for i in 0..RUNS {
        eprintln!("bench: vault run {} of {RUNS}", i + 1);
        let _ = std::fs::remove_dir_all(&dir);
        let disks = kintsugi_tests::disks::ensure(&dir)?;
        let cfg = QemuConfig { memory_mb: MEMORY_MB, disks, ..QemuConfig::default() };
        runs.push(kintsugi_program_on(image, "vaultbench", cfg)?);
    }
    let get = |name: &str| median_of(&runs, name).ok_or_else(|| format!("bench: vaultbench gave no {name}"));
    let mut t = format!(
        "Vault checkpoint writes (virtio-blk, 64 MiB FAT32 checkpoint disk; medians of {RUNS} runs): a commit is the record \
         written in place into its slot file and the disk flushed; the reference is the same bytes written straight \
         through blk to the data disk and flushed, in the same run\n\n\
         | state | commit, round trip | commit, in the vault | latest, round trip | reference: blk write + flush | commit / reference |\n\
         |---:|---:|---:|---:|---:|---:|\n"
    );
    for (size, label) in [(4096, "4 KiB"), (65536, "64 KiB"), (1 << 20, "1 MiB")] {
        let commit = get(&format!("vault_commit_ns_{size}"))?;
        let reference = get(&format!("vault_reference_ns_{size}"))?;
        t.push_str(&format!(
            "| {label} | {} | {} | {} | {} | {:.2} |\n",
            ms(commit),
            ms(get(&format!("vault_commit_disk_ns_{size}"))?),
            ms(get(&format!("vault_latest_ns_{size}"))?),
            ms(reference),
            commit / reference
        ));
    }
    println!("{t}");
    Ok(t)
}
