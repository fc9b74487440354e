//! What must survive a power cut, and the checks after one. kvcommit
//! writes a deterministic history to kv (op `i` stores `v{i}` under
//! `k{i % KEYS}`) and says which ops it sent and which a checkpoint
//! committed; after the cut kv must hold the state after some prefix of
//! the history between the last committed op and the last sent one (an
//! older one: acknowledged writes lost; none at all: a divergence). Files
//! written and `sync`ed must read back whole. (kvcommit runs `quiet`: it
//! says `sending i` once per checkpoint window, so the window's last op
//! counts as sent.)

use super::stats::Stats;

/// kvcommit's keys.
pub const KEYS: u64 = 5;
/// kvcommit asks for a checkpoint after every this many ops.
pub const EVERY: u64 = 4;

/// kvcommit's history as far as the soak knows it.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// Ops known applied at the start of this boot.
    pub applied: u64,
    /// Ops a checkpoint committed (acknowledged durable) in this boot.
    pub committed: u64,
    /// Ops sent in this boot (at most this many are applied).
    pub sent: u64,
    /// kv's newest record was damaged before this boot (see
    /// [`super::damage`]): the fewest ops kv may hold now, what the older
    /// record held (0 when its state did not say). Acknowledged ops
    /// between that and the committed ones are lost by design.
    pub floor: Option<u64>,
}

impl History {
    /// The shell command that continues the history in this boot.
    pub fn command(&mut self) -> String {
        self.committed = self.applied;
        self.sent = self.applied;
        format!("run kvcommit {} 100000000 {KEYS} {EVERY} quiet &", self.applied)
    }

    /// Look at one console line for kvcommit's progress or complaints.
    pub fn scan(&mut self, line: &str, stats: &mut Stats) {
        let Some(at) = line.find("kvcommit: ") else { return };
        let rest = &line[at + "kvcommit: ".len()..];
        let number = |s: &str| s.trim().parse::<u64>().ok();
        if let Some(i) = rest.strip_prefix("sending ").and_then(number) {
            // Quiet: the rest of op i's checkpoint window may follow unsaid.
            self.sent = self.sent.max((i / EVERY + 1) * EVERY);
        } else if let Some(i) = rest.strip_prefix("committed through ").and_then(number) {
            self.committed = self.committed.max(i + 1);
        } else if rest.starts_with("put ") || rest.starts_with("no kv") {
            stats.fail(|z| &mut z.client_errors, 1, format!("kvcommit: {}", rest.trim()));
        }
    }

    /// Check kv's contents after a power cut (as `kvcommit dump` printed
    /// them) and move the history on to the restored prefix.
    pub fn check_after_cut(&mut self, dump: &str, stats: &mut Stats) {
        let contents = parse_dump(dump);
        let from = self.committed.max(self.applied);
        let restored = (from..=self.sent).rev().find(|&k| history(k) == contents);
        let floor = self.floor.take();
        let by_damage = floor.and_then(|f| (f..from).rev().find(|&k| history(k) == contents));
        if let (None, Some(k)) = (restored, by_damage) {
            stats.prefix_checks += 1;
            stats.damage.lost_ops += from - k;
            self.applied = k;
            self.committed = k;
            self.sent = k;
            return;
        }
        match restored {
            Some(k) => {
                stats.prefix_checks += 1;
                self.applied = k;
            }
            None => {
                let older = (0..from).rev().find(|&k| history(k) == contents);
                let what = format!(
                    "after a power cut kv holds {contents:?}: ops {from} committed and {} sent, but {}",
                    self.sent,
                    older.map_or("no prefix of the history gives that".to_string(), |k| format!(
                        "that is the state after op {k}: committed writes were lost"
                    ))
                );
                match older {
                    Some(k) => {
                        stats.fail(|z| &mut z.lost_writes, from - k, what);
                        self.applied = k;
                    }
                    None => {
                        stats.fail(|z| &mut z.divergences, 1, what);
                        // The next KEYS ops rewrite every key: the model holds again.
                        self.applied = self.sent;
                    }
                }
            }
        }
        self.committed = self.applied;
        self.sent = self.applied;
    }
}

/// kv's contents after the first `k` ops.
pub fn history(k: u64) -> Vec<Option<String>> {
    (0..KEYS).map(|j| (k > j).then(|| format!("v{}", j + (k - 1 - j) / KEYS * KEYS))).collect()
}

/// The keys as `kvcommit dump` printed them (`None`: absent or unreadable).
pub fn parse_dump(dump: &str) -> Vec<Option<String>> {
    (0..KEYS)
        .map(|j| {
            let set = format!("kvcommit: k{j}=");
            dump.lines().find_map(|l| l.find(&set).map(|at| l[at + set.len()..].trim().to_string()))
        })
        .collect()
}

/// Files written and synced, with their contents.
#[derive(Clone, Debug, Default)]
pub struct Synced {
    /// `(path, contents)`.
    pub files: Vec<(String, String)>,
}

impl Synced {
    /// How many of the latest files are read back after each cut.
    pub const CHECKED: usize = 6;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histories() {
        assert_eq!(history(0), vec![None; 5]);
        assert_eq!(history(2), vec![Some("v0".into()), Some("v1".into()), None, None, None]);
        let h = history(13);
        assert_eq!(h[0].as_deref(), Some("v10"));
        assert_eq!(h[2].as_deref(), Some("v12"));
        assert_eq!(h[3].as_deref(), Some("v8"));
    }

    #[test]
    fn a_cut_within_the_window_moves_on_and_one_before_it_is_a_loss() {
        let mut h = History { applied: 0, committed: 8, sent: 12, floor: None };
        let mut s = Stats::default();
        let dump = |k: u64| {
            history(k)
                .iter()
                .enumerate()
                .map(|(j, v)| match v {
                    Some(v) => format!("kvcommit: k{j}={v}\n"),
                    None => format!("kvcommit: k{j} absent\n"),
                })
                .collect::<String>()
        };
        h.check_after_cut(&dump(10), &mut s);
        assert_eq!((h.applied, s.zero.all_zero()), (10, true));
        h.committed = 16;
        h.sent = 20;
        h.check_after_cut(&dump(12), &mut s);
        assert_eq!(s.zero.lost_writes, 4);
        assert_eq!(h.applied, 12);
        // After a damaged newest record of kv: back to the older record's
        // ops is lost by design, further back is a loss.
        let mut h = History { applied: 12, committed: 20, sent: 24, floor: Some(14) };
        h.check_after_cut(&dump(16), &mut s);
        assert_eq!((h.applied, s.damage.lost_ops, s.zero.lost_writes), (16, 4, 4));
        assert_eq!(h.floor, None, "for one boot only");
        h.committed = 20;
        h.sent = 24;
        h.floor = Some(18);
        h.check_after_cut(&dump(17), &mut s);
        assert_eq!((s.damage.lost_ops, s.zero.lost_writes), (4, 7));
    }
}
