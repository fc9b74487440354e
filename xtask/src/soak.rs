//! `cargo xtask soak`: build the image and run the soak campaign
//! (`kintsugi_tests::soak`) on a pair of disks, printing progress and the
//! report (also in `target/soak/report.md` and `report.json`). Exits
//! non-zero with the seed when any must-be-zero count is not zero.

use crate::{assemble, tools};
use kintsugi_tests::soak::{self, Options};
use kintsugi_tests::{DiskBus, NicModel, QemuConfig};
use std::path::PathBuf;
use std::time::Duration;

/// What `soak` was asked.
pub struct SoakArgs {
    /// Minutes of injection.
    pub minutes: f64,
    /// The seed (default: from the clock).
    pub seed: Option<u64>,
    /// Disks to use and keep (default: fresh ones in target/soak/disks).
    pub disks: Option<PathBuf>,
    /// Seconds between power cuts, `MIN-MAX`.
    pub cut_every: (u64, u64),
    /// Kill companions too.
    pub companion_kills: bool,
    /// Cut the power under fs load.
    pub fs_power_cuts: bool,
    /// Copy the guest's console to stdout.
    pub echo: bool,
    /// Milliseconds between injections, `MIN-MAX`.
    pub pause_ms: (u64, u64),
    /// Keep chaos on in the busiest services all the time.
    pub steady_chaos: bool,
    /// One power cut in this many (on average) is followed by damage to a
    /// checkpoint record (0: never).
    pub damage_every: u64,
    /// System calls of the fuzzer run in the final boot.
    pub final_fuzz: u64,
}

/// Parse `MIN-MAX` (seconds or milliseconds).
pub fn parse_range(text: &str) -> Result<(u64, u64), String> {
    let (a, b) = text.split_once('-').ok_or_else(|| format!("'{text}' is not MIN-MAX"))?;
    let n = |s: &str| s.trim().parse::<u64>().map_err(|_| format!("'{s}' is not a whole number"));
    let (a, b) = (n(a)?, n(b)?);
    if a == 0 || a > b {
        return Err(format!("'{text}': need 0 < MIN <= MAX"));
    }
    Ok((a, b))
}

/// Run the soak; the process exit code (1 if it found failures).
pub fn run(a: SoakArgs) -> Result<i32, String> {
    tools::ensure(&[&tools::QEMU, &tools::DOSFSTOOLS, &tools::MTOOLS])?;
    let image = assemble::build()?;
    let out_dir = kintsugi_tests::image::workspace_root().join("target/soak");
    let disks = match &a.disks {
        Some(dir) => kintsugi_tests::disks::ensure(dir)?,
        None => soak::fresh_disks(&out_dir.join("disks"))?,
    };
    let seed = a.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 % 1_000_000_007)
    });
    let o = Options {
        duration: Duration::from_secs_f64(a.minutes.max(0.1) * 60.0),
        seed,
        disks,
        out_dir,
        cut_every: a.cut_every,
        companion_kills: a.companion_kills,
        fs_power_cuts: a.fs_power_cuts,
        echo: a.echo,
        pause_ms: a.pause_ms,
        steady_chaos: a.steady_chaos,
        damage_every: a.damage_every,
        final_fuzz_calls: a.final_fuzz,
        machine: QemuConfig { nic: Some(NicModel::Virtio), disk_bus: DiskBus::Virtio, ..QemuConfig::default() },
    };
    let outcome = soak::run(&image, &o);
    Ok(if outcome.passed { 0 } else { 1 })
}
