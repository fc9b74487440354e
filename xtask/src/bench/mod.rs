//! `cargo xtask bench`: Kintsugi's figures beside the same operations in a
//! Linux guest booted under the same QEMU settings in the same run.

pub mod cpio;
pub mod debian;
pub mod kmods;
pub mod linux;

use linux::{LinuxQemu, LinuxResults};

/// Guest memory for every benchmark run (MiB).
const MEMORY_MB: u32 = 256;

/// Run the benchmarks and print the table.
pub fn run() -> Result<(), String> {
    let work_dir = kintsugi_tests::image::workspace_root().join("target/bench/linux");
    let q = LinuxQemu { memory_mb: MEMORY_MB, extra_args: Vec::new() };
    let linux = linux::run_reference(&work_dir, &q, &[])?;
    let console_log = work_dir.join("console.log");
    if let Err(e) = std::fs::write(&console_log, &linux.console) {
        eprintln!("bench: cannot save the guest console to {}: {e}", console_log.display());
    }
    print_linux(&linux);
    Ok(())
}

/// The Linux reference figures, one per line.
fn print_linux(r: &LinuxResults) {
    println!("Linux {} reference (TCG, {MEMORY_MB} MiB):", r.kernel_release);
    println!("  {:<20} {:>14.1}", "boot_to_init_ms", r.boot_to_init_ms);
    println!("  {:<20} {:>14.1}", "null_syscall_ns", r.null_syscall_ns);
    println!("  {:<20} {:>14.1}", "pipe_rtt_ns", r.pipe_rtt_ns);
    println!("  {:<20} {:>14.1}", "spawn_ns", r.spawn_ns);
    for (name, value) in &r.extra {
        println!("  {name:<20} {value:>14.1}");
    }
}
