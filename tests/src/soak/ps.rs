//! The figures `ps` prints for every resilient service (restarts,
//! checkpoints, injected crashes, requests served), parsed from the
//! shell's table, and the difference between two readings.

use std::collections::BTreeMap;

/// One service's line of `ps`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Figures {
    /// Times the companion restarted the service.
    pub restarts: u64,
    /// Checkpoints taken.
    pub checkpoints: u64,
    /// Crashes injected by `crash` and `chaos`.
    pub injected: u64,
    /// Requests served.
    pub requests: u64,
}

/// Every resilient service's figures in a `ps` output, by name. The table
/// is `SERVICE PID RESTARTS CHECKPOINTS LOG INJECTED REQUESTS LAST RECOVERY`.
pub fn parse(ps: &str) -> BTreeMap<String, Figures> {
    let mut out = BTreeMap::new();
    let mut in_table = false;
    for line in ps.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"SERVICE") && words.get(2) == Some(&"RESTARTS") {
            in_table = true;
            continue;
        }
        if !in_table || words.len() < 8 {
            continue;
        }
        let n: Vec<Option<u64>> = words[1..7].iter().map(|w| w.parse().ok()).collect();
        if let [Some(_pid), Some(restarts), Some(checkpoints), Some(_log), Some(injected), Some(requests)] = n[..] {
            out.insert(words[0].to_string(), Figures { restarts, checkpoints, injected, requests });
        }
    }
    out
}

/// What happened between two readings of the same boot (a counter that
/// went down was reset: the later reading counts whole).
pub fn delta(before: &Figures, after: &Figures) -> Figures {
    let d = |a: u64, b: u64| if b >= a { b - a } else { b };
    Figures {
        restarts: d(before.restarts, after.restarts),
        checkpoints: d(before.checkpoints, after.checkpoints),
        injected: d(before.injected, after.injected),
        requests: d(before.requests, after.requests),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_table() {
        let ps = "  PID NAME\n    1 init\nSERVICE      PID  RESTARTS CHECKPOINTS   LOG  INJECTED   REQUESTS  LAST RECOVERY\n\
                  kv            12         3          40     2         3       1200       1.250 ms\n\
                  tally         14         0           1     0         0          5              -\n";
        let f = parse(ps);
        assert_eq!(f["kv"], Figures { restarts: 3, checkpoints: 40, injected: 3, requests: 1200 });
        assert_eq!(f["tally"].requests, 5);
        assert_eq!(f.len(), 2);
        let later = Figures { restarts: 5, checkpoints: 41, injected: 4, requests: 1300 };
        assert_eq!(delta(&f["kv"], &later), Figures { restarts: 2, checkpoints: 1, injected: 1, requests: 100 });
    }
}
