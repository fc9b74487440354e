//! The programs the soak runs now and then against the system rather
//! than beside it: `hostile` (malformed, out-of-turn, lying and random
//! messages, floods and clients that never read, against every resilient
//! service; its cases count as operations and its failures as client
//! errors) and the syscall fuzzer `fuzz` (random system calls from worker
//! processes; a worker that hangs counts as a client error, a kernel
//! panic as one). At most one of each runs at a time; their operations
//! appear in the report's client table.

use super::clients::field;
use super::stats::Stats;

/// System calls per fuzzer run.
pub const FUZZ_CALLS: u64 = 20_000;
/// Random messages per hostile run.
pub const HOSTILE_RANDOM: u64 = 15;
/// Single-message cases per hostile run (a random sample, so that a run
/// ends well within a boot of the short soak).
pub const HOSTILE_SAMPLE: u64 = 50;
/// The services the hostile client attacks, one per run.
pub const HOSTILE_TARGETS: [&str; 6] = ["kv", "tally", "fs", "blk", "net", "httpd"];

/// Which of them run in the current boot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Running {
    /// `hostile` runs.
    pub hostile: bool,
    /// `fuzz` runs.
    pub fuzz: bool,
}

/// The shell command that starts the hostile client against `service` in
/// the background (without `check`: the soak injects crashes meanwhile
/// and counts unexplained restarts itself).
pub fn hostile_command(seed: u64, service: &str) -> String {
    format!("run hostile seed={seed} random={HOSTILE_RANDOM} sample={HOSTILE_SAMPLE} {service} &")
}

/// The shell command that starts the fuzzer in the background.
pub fn fuzz_command(seed: u64) -> String {
    format!("run fuzz {FUZZ_CALLS} {seed} &")
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
        if rest.contains(" random system calls from ") {
            running.fuzz = false;
            let calls = rest.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
            *stats.client_ops.entry("fuzz".to_string()).or_default() += calls;
            *stats.client_runs.entry("fuzz".to_string()).or_default() += 1;
        } else if rest.starts_with("worker ") || rest.starts_with("cannot ") || rest.starts_with("no memory") {
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
        let mut r = Running { hostile: true, fuzz: true };
        let mut s = Stats::default();
        scan(&mut r, "hostile: FAIL kv: Get truncated to 3 of 14 bytes: Silent, wanted Rejected", &mut s);
        scan(&mut r, "hostile: cases=900 ops=900 errors=1", &mut s);
        assert!(!r.hostile && r.fuzz);
        assert_eq!(s.client_ops["hostile"], 900);
        assert_eq!(s.zero.client_errors, 1);
        scan(
            &mut r,
            "fuzz: 20000 random system calls from 1 workers (0 ended by their own calls); the kernel survived",
            &mut s,
        );
        assert!(!r.fuzz);
        assert_eq!(s.client_ops["fuzz"], 20_000);
        scan(&mut r, "fuzz: worker 3 made no progress for 30 s after 100 calls (hang)", &mut s);
        assert_eq!(s.zero.client_errors, 2);
        assert_eq!(s.failures.len(), 3);
    }
}
