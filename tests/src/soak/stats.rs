//! What the soak counted: per service the crashes it injected, the
//! restarts and requests `ps` showed, the recovery times `crash` printed;
//! the power cuts, client operations, and the counts that must stay zero,
//! each failure with a line saying what happened.

use super::ps::{self, Figures};
use std::collections::BTreeMap;

/// One resilient service's figures over the whole soak.
#[derive(Clone, Debug, Default)]
pub struct ServiceStats {
    /// `crash NAME [kind]` commands that recovered.
    pub crash_commands: u64,
    /// Crashes the companion counted as injected (`crash` and `chaos`),
    /// from `ps`.
    pub injected: u64,
    /// `kill NAME` of the service process (init's kill: not counted by
    /// the companion as injected, but a crash all the same).
    pub kills: u64,
    /// Restarts, from `ps`.
    pub restarts: u64,
    /// Requests served, from `ps`.
    pub requests: u64,
    /// Checkpoints taken, from `ps`.
    pub checkpoints: u64,
    /// Recovery times `crash` printed (ns).
    pub recoveries_ns: Vec<u64>,
}

impl ServiceStats {
    /// Crashes injected in all: the companion's count and the kills.
    pub fn crashes(&self) -> u64 {
        self.injected.max(self.crash_commands) + self.kills
    }
}

/// The counts that must be zero for the soak to pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MustBeZero {
    /// Errors client programs reported (wrong answers, failed calls).
    pub client_errors: u64,
    /// Acknowledged (committed or synced) writes missing after a power cut.
    pub lost_writes: u64,
    /// States after a power cut that no prefix of the history explains.
    pub divergences: u64,
    /// Restarts of a service that no injection explains.
    pub unexplained_restarts: u64,
    /// Kernel panics.
    pub kernel_panics: u64,
    /// `fsck.fat -n` complaints about either disk.
    pub fsck_complaints: u64,
    /// The whole system stopped answering (a shell command or a boot timed out).
    pub hangs: u64,
    /// Syscall fuzzer runs after which kernel memory in use did not come
    /// back to its level before the run.
    pub fuzz_leaks: u64,
    /// Fuzzer workers that made no progress for 30 s (a call that never
    /// returned).
    pub fuzz_hangs: u64,
    /// Damages of the checkpoint disk not reported, a damaged record
    /// restored, another than the other slot's restored, or no commit after.
    pub damage_missed: u64,
}

impl MustBeZero {
    /// The counts with their names, in report order.
    pub fn named(&self) -> [(&'static str, u64); 10] {
        [
            ("client errors", self.client_errors),
            ("acknowledged writes lost", self.lost_writes),
            ("divergences", self.divergences),
            ("unexplained restarts", self.unexplained_restarts),
            ("kernel panics", self.kernel_panics),
            ("fsck.fat complaints", self.fsck_complaints),
            ("whole-system hangs", self.hangs),
            ("fuzzer leaks", self.fuzz_leaks),
            ("fuzzer hangs", self.fuzz_hangs),
            ("checkpoint damages missed", self.damage_missed),
        ]
    }

    /// Whether every count is zero.
    pub fn all_zero(&self) -> bool {
        self.named().iter().all(|(_, n)| *n == 0)
    }
}

/// What the HTTP client on the host did (see [`super::web`]).
#[derive(Clone, Debug, Default)]
pub struct HttpStats {
    /// Whole-file downloads whose every byte was right.
    pub downloads: u64,
    /// Byte ranges (206) whose every byte was right.
    pub ranges: u64,
    /// Body bytes checked.
    pub bytes: u64,
    /// How long each whole-file download took (ms).
    pub whole_ms: Vec<u64>,
    /// Downloads a power cut ended (not errors).
    pub cut_by_power: u64,
    /// Body bytes of those checked, up to the cut.
    pub cut_bytes: u64,
    /// The last few of them, for the record.
    pub cut_examples: Vec<String>,
}

/// What the TCP streams from the guest's tcpsend to the host's sink did
/// (see [`super::stream`]).
#[derive(Clone, Debug, Default)]
pub struct TcpStats {
    /// Streams whose every byte both ways was right.
    pub streams: u64,
    /// Bytes the sink checked (of finished streams).
    pub bytes: u64,
    /// Bytes sent back and checked by tcpsend (of finished streams).
    pub back_bytes: u64,
    /// How long each finished stream took (ms).
    pub ms: Vec<u64>,
    /// Streams a power cut ended (not errors).
    pub cut_by_power: u64,
    /// The last few of them, for the record.
    pub cut_examples: Vec<String>,
}

/// The damages done to the checkpoint disk between boots (see
/// [`super::damage`]).
#[derive(Clone, Debug, Default)]
pub struct DamageStats {
    /// Records with bytes flipped.
    pub flips: u64,
    /// Records cut short.
    pub truncations: u64,
    /// Damages per service.
    pub per_service: BTreeMap<String, u64>,
    /// Of them, the service's newest record.
    pub newest: u64,
    /// Restores of the older record after the newest was damaged.
    pub fallbacks: u64,
    /// Damages the vault reported.
    pub reported: u64,
    /// Records zeroed whole, which read as a slot never written (not
    /// reported unless the log shows a newer generation).
    pub silent: u64,
    /// Services that committed again after a damage, in the next boot.
    pub commits_after: u64,
    /// kvcommit's acknowledged ops lost with a damaged newest record (by
    /// design: not a failure).
    pub lost_ops: u64,
    /// Each damage, said.
    pub done: Vec<String>,
}

impl DamageStats {
    /// Damages in all.
    pub fn total(&self) -> u64 {
        self.flips + self.truncations
    }

    /// The progress line's part (empty before the first damage).
    pub fn progress(&self) -> String {
        if self.total() == 0 {
            return String::new();
        }
        format!(" | slot damages {} (fallbacks {}, ops lost {})", self.total(), self.fallbacks, self.lost_ops)
    }
}

/// Where a boot's wall-clock time goes, in the order a boot goes through
/// it: a soak of an hour makes as many power cuts as its boots are short.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// From QEMU's start to the prompt with every service up.
    Booting,
    /// The checks after a cut and the boot's setup (kvcommit, the synced
    /// file, steady chaos).
    Checking,
    /// The loop of injections with the clients running.
    Injecting,
    /// From the cut's time to the cut (fsload brought to rest, `ps`).
    Draining,
    /// Between QEMU's kill and the next boot: `fsck.fat`, slot damage.
    BetweenBoots,
    /// The end: clients finish, power off, the final boot's checks.
    Ending,
}

impl Phase {
    /// Every phase, in report order.
    pub const ALL: [Phase; 6] =
        [Phase::Booting, Phase::Checking, Phase::Injecting, Phase::Draining, Phase::BetweenBoots, Phase::Ending];

    /// What the phase is, in a few words.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Booting => "booting",
            Phase::Checking => "checks and setup",
            Phase::Injecting => "injecting",
            Phase::Draining => "bringing to the cut",
            Phase::BetweenBoots => "between boots (fsck, damage)",
            Phase::Ending => "the end (final checks)",
        }
    }
}

/// Wall-clock time per [`Phase`], summed over the boots.
#[derive(Clone, Debug, Default)]
pub struct PhaseTimes {
    /// Milliseconds per phase.
    pub ms: BTreeMap<Phase, u64>,
}

impl PhaseTimes {
    /// Add `ms` to `phase`.
    pub fn add(&mut self, phase: Phase, ms: u64) {
        *self.ms.entry(phase).or_default() += ms;
    }

    /// Every phase with its time, in report order.
    pub fn named(&self) -> Vec<(&'static str, u64)> {
        Phase::ALL.iter().map(|p| (p.name(), self.ms.get(p).copied().unwrap_or(0))).collect()
    }

    /// `booting 12 s (21 %), ...`, with the mean per boot of `boots`.
    pub fn describe(&self, boots: u64) -> String {
        let total: u64 = self.ms.values().sum::<u64>().max(1);
        let per = boots.max(1);
        self.named()
            .iter()
            .filter(|(_, ms)| *ms > 0)
            .map(|(name, ms)| {
                format!("{name} {:.1} s per boot ({} %)", *ms as f64 / 1000.0 / per as f64, ms * 100 / total)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// How long the soak's shell commands took, by their first word (and the
/// second for `run`, `crash`, `chaos` and `kill`): the loop injects only
/// as fast as the loaded system answers.
#[derive(Clone, Debug, Default)]
pub struct CommandTimes {
    /// Per kind: commands and milliseconds in all, and the slowest.
    pub kinds: BTreeMap<String, (u64, u64, u64)>,
}

impl CommandTimes {
    /// Add one command `line` that took `took`.
    pub fn add(&mut self, line: &str, took: std::time::Duration) {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        let kind = match (first, words.next()) {
            ("run" | "crash" | "chaos" | "kill", Some(second)) => format!("{first} {second}"),
            _ => first.to_string(),
        };
        let ms = took.as_millis() as u64;
        let e = self.kinds.entry(kind).or_default();
        *e = (e.0 + 1, e.1 + ms, e.2.max(ms));
    }

    /// The kinds that took most time in all, at most `n`, as
    /// `(kind, commands, total ms, slowest ms)`.
    pub fn costliest(&self, n: usize) -> Vec<(String, u64, u64, u64)> {
        let mut v: Vec<_> = self.kinds.iter().map(|(k, &(c, t, w))| (k.clone(), c, t, w)).collect();
        v.sort_by_key(|k| std::cmp::Reverse(k.2));
        v.truncate(n);
        v
    }
}

/// Everything the soak counted.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Per resilient service, by name.
    pub services: BTreeMap<String, ServiceStats>,
    /// Power cuts (QEMU killed and booted again on the same disks).
    pub power_cuts: u64,
    /// Boots in all.
    pub boots: u64,
    /// `kill vault` while commits were under way.
    pub vault_kills: u64,
    /// Runs of the memory hog.
    pub hogs: u64,
    /// Times chaos was turned on for a service.
    pub chaos_periods: u64,
    /// Times a driver and the service(s) above it were crashed together.
    pub combined_crashes: u64,
    /// Client operations checked, per client program (finished runs).
    pub client_ops: BTreeMap<String, u64>,
    /// Finished runs per client program.
    pub client_runs: BTreeMap<String, u64>,
    /// kvcommit ops restored and checked after power cuts.
    pub prefix_checks: u64,
    /// Synced files checked after power cuts.
    pub synced_checks: u64,
    /// Of the fuzzer's calls, those of runs a power cut (or a failure)
    /// ended, as far as each run had said (counted in `client_ops` too).
    pub fuzz_calls_cut_off: u64,
    /// Power cuts that came while a committed epoch was being written to
    /// the data disk: `fsck.fat` found it half-written, and clean once the
    /// redo list the next boot applies again was written over a copy.
    pub cuts_mid_epoch: u64,
    /// The HTTP downloads from the host.
    pub http: HttpStats,
    /// The TCP streams to the host.
    pub tcp: TcpStats,
    /// The damages to the checkpoint disk.
    pub damage: DamageStats,
    /// Where the wall-clock time went.
    pub phases: PhaseTimes,
    /// How long the shell commands took.
    pub commands: CommandTimes,
    /// Injections the system refused (e.g. `crash` while the service was
    /// already restarting): not failures, reported for the record.
    pub refused: Vec<String>,
    /// The summary line of the fuzzer run in the final boot (the one
    /// whose leak check counts).
    pub fuzz_final: Option<String>,
    /// The counts that must be zero.
    pub zero: MustBeZero,
    /// What each non-zero count was about.
    pub failures: Vec<String>,
}

impl Stats {
    /// The stats of `service`, made on first use.
    pub fn service(&mut self, name: &str) -> &mut ServiceStats {
        self.services.entry(name.to_string()).or_default()
    }

    /// Add what `ps` showed between two readings of one boot; restarts
    /// beyond the injected crashes are unexplained.
    pub fn add_figures(
        &mut self,
        before: &BTreeMap<String, Figures>,
        after: &BTreeMap<String, Figures>,
        kills: &BTreeMap<String, u64>,
    ) {
        for (name, now) in after {
            let d = ps::delta(&before.get(name).copied().unwrap_or_default(), now);
            let killed = kills.get(name).copied().unwrap_or(0);
            let s = self.service(name);
            s.injected += d.injected;
            s.restarts += d.restarts;
            s.requests += d.requests;
            s.checkpoints += d.checkpoints;
            let explained = d.injected + killed;
            if d.restarts > explained {
                let extra = d.restarts - explained;
                self.zero.unexplained_restarts += extra;
                self.failures.push(format!(
                    "{name}: {} restarts but {} injected crashes and {killed} kills in this boot",
                    d.restarts, d.injected
                ));
            }
        }
    }

    /// Record a failure of kind `count` (a field of [`MustBeZero`]).
    pub fn fail(&mut self, count: fn(&mut MustBeZero) -> &mut u64, n: u64, what: String) {
        *count(&mut self.zero) += n;
        self.failures.push(what);
    }

    /// Crashes injected into every service.
    pub fn total_crashes(&self) -> u64 {
        self.services.values().map(ServiceStats::crashes).sum()
    }

    /// System calls the fuzzer made in its finished runs.
    pub fn fuzz_calls(&self) -> u64 {
        self.client_ops.get("fuzz").copied().unwrap_or(0)
    }

    /// Client operations in all.
    pub fn total_ops(&self) -> u64 {
        self.client_ops.values().sum()
    }
}

/// The median, 99th percentile and worst of `values` (ns), if any.
pub fn percentiles(values: &[u64]) -> Option<(u64, u64, u64)> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    // Nearest rank: the smallest value with at least p% of them at or below it.
    let at = |p: usize| v[(v.len() * p).div_ceil(100).max(1) - 1];
    Some((at(50), at(99), v[v.len() - 1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_few() {
        assert_eq!(percentiles(&[]), None);
        assert_eq!(percentiles(&[5]), Some((5, 5, 5)));
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentiles(&v), Some((50, 99, 100)));
    }

    #[test]
    fn phase_times_say_their_share() {
        let mut t = PhaseTimes::default();
        t.add(Phase::Injecting, 3000);
        t.add(Phase::Booting, 1000);
        assert_eq!(t.describe(2), "booting 0.5 s per boot (25 %), injecting 1.5 s per boot (75 %)");
    }

    #[test]
    fn command_times_group_by_kind() {
        let mut t = CommandTimes::default();
        t.add("crash kv hang", std::time::Duration::from_millis(3000));
        t.add("crash kv", std::time::Duration::from_millis(10));
        t.add("ps", std::time::Duration::from_millis(200));
        t.add("run kvload 2 400 &", std::time::Duration::from_millis(50));
        assert_eq!(t.costliest(2), vec![("crash kv".to_string(), 2, 3010, 3000), ("ps".to_string(), 1, 200, 200)]);
    }

    #[test]
    fn restarts_beyond_injections_are_unexplained() {
        let mut s = Stats::default();
        let before = BTreeMap::from([("kv".to_string(), Figures { restarts: 1, ..Figures::default() })]);
        let after = BTreeMap::from([("kv".to_string(), Figures { restarts: 5, injected: 2, ..Figures::default() })]);
        s.add_figures(&before, &after, &BTreeMap::from([("kv".to_string(), 1)]));
        assert_eq!(s.zero.unexplained_restarts, 1);
        assert_eq!(s.services["kv"].restarts, 4);
        assert!(!s.zero.all_zero());
    }
}
