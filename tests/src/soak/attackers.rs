//! The programs the soak runs now and then against the system rather
//! than beside it: `hostile` (malformed, out-of-turn, lying and random
//! messages, floods and clients that never read, against every resilient
//! service; its cases count as operations and its failures as client
//! errors) and the syscall fuzzer `fuzz` (random system calls from
//! [`FUZZ_WORKERS`] worker processes at once; a worker that hangs and
//! kernel memory that does not come back after the final run, on a quiet
//! system, are must-be-zero failures of their own, a kernel panic is one).
//! At most one of each runs at a time (the fuzzer again as soon as its
//! last run ended, see [`FUZZ_EVERY`]); their operations appear in the
//! report's client table.

use super::clients::field;
use super::stats::Stats;

/// System calls per fuzzer run: about a second on an idle machine under
/// TCG (150,000 to 600,000 calls a second), 1 to 25 s in a boot of the
/// soak (8,000 to 160,000), within the shortest boots of a soak with
/// frequent power cuts (a run cut off counts the calls it last said it
/// had made, `fuzz: N calls so far`, every 2 s).
pub const FUZZ_CALLS: u64 = 200_000;
/// System calls of the fuzzer run in the soak's final boot, on a quiet
/// system (only the services, at rest): the run whose leak check counts.
/// Issue 11's ten million, in one run with one leak check (20 to 70 s on
/// an idle machine under TCG); `cargo xtask soak --final-fuzz` and the
/// short soak in the tests choose fewer.
pub const FINAL_FUZZ_CALLS: u64 = 10_000_000;
/// Fuzzer workers at once.
pub const FUZZ_WORKERS: u64 = 3;
/// Least time from the start of one fuzzer run to the start of the next:
/// three CPU-bound workers take their share from the clients while they
/// run, so they do not run all the time. At 200,000 calls a run this is
/// up to 24,000,000 calls an hour (10,000,000 need a run finished every
/// 72 s; power cuts end some runs before they count).
pub const FUZZ_EVERY: std::time::Duration = std::time::Duration::from_secs(30);
/// Random messages per hostile run.
pub const HOSTILE_RANDOM: u64 = 15;
/// Single-message cases per hostile run (a random sample, so that a run
/// ends well within a boot of the short soak).
pub const HOSTILE_SAMPLE: u64 = 50;
/// The services the hostile client attacks, one per run.
pub const HOSTILE_TARGETS: [&str; 8] = ["kv", "tally", "fs", "blk", "net", "httpd", "nic", "vault"];

/// Which of them run in the current boot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Running {
    /// `hostile` runs.
    pub hostile: bool,
    /// `fuzz` runs.
    pub fuzz: bool,
    /// Calls the running fuzzer run said it had made (`fuzz: N calls so
    /// far`): what a power cut that ends the run leaves counted.
    pub fuzz_so_far: u64,
}

impl Running {
    /// The boot ends (a power cut, a failure): the calls of a fuzzer run
    /// it cut off, as far as the run said, are counted apart from whole
    /// runs (they were made; the run's summary never came).
    pub fn cut(&mut self, stats: &mut Stats) {
        if self.fuzz && self.fuzz_so_far > 0 {
            *stats.client_ops.entry("fuzz".to_string()).or_default() += self.fuzz_so_far;
            stats.fuzz_calls_cut_off += self.fuzz_so_far;
        }
        *self = Running::default();
    }
}

/// The shell command that starts the hostile client against `service` in
/// the background (without `check`: the soak injects crashes meanwhile
/// and counts unexplained restarts itself).
pub fn hostile_command(seed: u64, service: &str) -> String {
    format!("run hostile seed={seed} random={HOSTILE_RANDOM} sample={HOSTILE_SAMPLE} {service} &")
}

/// The shell command that starts the fuzzer in the background, during a
/// boot: `busy`, as the clients move kernel memory in use meanwhile, its
/// figures are printed but not judged (the final run judges them).
pub fn fuzz_command(seed: u64) -> String {
    format!("run fuzz {FUZZ_CALLS} {seed} {FUZZ_WORKERS} busy &")
}

/// The fuzzer run in the final boot (in the foreground), whose leak check
/// counts: kernel memory in use must come back to its level.
pub fn final_fuzz_command(calls: u64, seed: u64) -> String {
    format!("run fuzz {calls} {seed} {FUZZ_WORKERS}")
}

/// Look at one console line for them: a summary ends a run (operations
/// and errors counted), a failure line is kept.
pub fn scan(running: &mut Running, line: &str, stats: &mut Stats) {
    if let Some(at) = line.find("hostile: cases=") {
        let summary = &line[at..];
        running.hostile = false;
        *stats.client_ops.entry("hostile".to_string()).or_default() += field(summary, "cases").unwrap_or(0);
        *stats.client_runs.entry("hostile".to_string()).or_default() += 1;
        let errors = field(summary, "errors").unwrap_or(1);
        if errors > 0 {
            stats.fail(|z| &mut z.client_errors, errors, format!("hostile: {}", summary.trim()));
        }
    } else if line.contains("hostile: FAIL ") {
        stats.failures.push(line.trim().to_string());
    }
    if let Some(at) = line.find("fuzz: ") {
        let rest = &line[at + 6..];
        if let Some(n) = rest.strip_suffix(" calls so far").and_then(|n| n.trim().parse().ok()) {
            running.fuzz_so_far = n;
        } else if rest.contains(" random system calls from ") {
            running.fuzz = false;
            running.fuzz_so_far = 0;
            let calls = rest.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
            *stats.client_ops.entry("fuzz".to_string()).or_default() += calls;
            *stats.client_runs.entry("fuzz".to_string()).or_default() += 1;
        } else if rest.starts_with("FAIL ") && rest.trim_end().ends_with(" leak") {
            // Printed after the run's summary, which ended the run.
            stats.fail(|z| &mut z.fuzz_leaks, 1, line.trim().to_string());
        } else if rest.starts_with("worker ") && rest.trim_end().ends_with("(hang)") {
            running.fuzz = false;
            stats.fail(|z| &mut z.fuzz_hangs, 1, line.trim().to_string());
        } else if rest.starts_with("cannot ") || rest.starts_with("no memory") {
            running.fuzz = false;
            stats.fail(|z| &mut z.client_errors, 1, line.trim().to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_and_failures_are_counted() {
        let mut r = Running { hostile: true, fuzz: true, fuzz_so_far: 0 };
        let mut s = Stats::default();
        scan(&mut r, "hostile: FAIL kv: Get truncated to 3 of 14 bytes: Silent, wanted Rejected", &mut s);
        scan(&mut r, "hostile: cases=900 ops=900 errors=1", &mut s);
        assert!(!r.hostile && r.fuzz);
        assert_eq!(s.client_ops["hostile"], 900);
        assert_eq!(s.zero.client_errors, 1);
        scan(
            &mut r,
            "fuzz: 200000 random system calls from 14 workers, 3 at a time (9 ended by their own calls), in 2.112 s, \
             142045 calls/s; kernel memory in use before 17201 pages + 392912 heap bytes, after 17201 pages + \
             392912 heap bytes; the kernel survived",
            &mut s,
        );
        assert!(!r.fuzz);
        assert_eq!(s.client_ops["fuzz"], 200_000);
        assert_eq!(s.fuzz_calls(), 200_000);
        assert_eq!(s.zero.client_errors, 1);
        // A run a power cut ends counts what it last said.
        r.fuzz = true;
        scan(&mut r, "fuzz: 41000 calls so far", &mut s);
        scan(&mut r, "fuzz: 83000 calls so far", &mut s);
        r.cut(&mut s);
        assert_eq!(s.fuzz_calls(), 283_000);
        assert_eq!(s.fuzz_calls_cut_off, 83_000);
        assert_eq!(r, Running::default());
        r.fuzz = true;
        scan(&mut r, "fuzz: worker 3 made no progress for 30 s after 100 calls (hang)", &mut s);
        assert!(!r.fuzz);
        assert_eq!(s.zero.fuzz_hangs, 1);
        scan(
            &mut r,
            "fuzz: FAIL kernel memory in use went from 17201 pages + 392912 heap bytes to 17202 pages + 392912 heap \
             bytes and did not come back within 10 s: leak",
            &mut s,
        );
        assert_eq!(s.zero.fuzz_leaks, 1);
        scan(&mut r, "fuzz: cannot start a worker: OutOfMemory", &mut s);
        assert_eq!(s.zero.client_errors, 2);
        assert_eq!(s.failures.len(), 5);
        assert_eq!(fuzz_command(9), format!("run fuzz {FUZZ_CALLS} 9 {FUZZ_WORKERS} busy &"));
        scan(
            &mut r,
            "fuzz: 100 random system calls from 1 workers, 3 at a time (0 ended by their own calls), in 0.002 s, \
             50000 calls/s; kernel memory in use before 1 pages + 2 heap bytes, after 3 pages + 4 heap bytes (not \
             judged: other programs ran); the kernel survived",
            &mut s,
        );
        assert_eq!((s.fuzz_calls(), s.zero.fuzz_leaks), (283_100, 1));
    }
}
