//! The client programs the soak keeps running in the guest, each checking
//! every answer against its own model: kvload (kv), tallyload (tally, and
//! kv through tally's publish), fsload (fs), blkpattern (blk, on sectors at
//! the end of the data disk that the file system does not reach), and
//! kvcommit (a deterministic kv history with forced checkpoints, which the
//! power-cut check replays). A finished client is started again; its
//! summary line is parsed for operations and errors.

use super::rng::Rng;
use super::stats::Stats;

/// A client program the soak restarts whenever it finishes.
pub struct Client {
    /// Program name.
    pub name: &'static str,
    /// The summary line it ends with starts with this.
    summary: &'static str,
    /// Running in the current boot.
    pub running: bool,
}

/// The first sector blkpattern may write on the data disk: the last
/// 64 MiB of the 512 MiB disk, far beyond what the file system allocates
/// in a soak (FAT32 allocates from the front).
pub const BLK_LO: u64 = 917_504;
/// The end of blkpattern's sectors (exclusive).
pub const BLK_HI: u64 = 1_048_000;

impl Client {
    /// The shell command that starts it in the background.
    pub fn command(&self, rng: &mut Rng, scale: u64) -> String {
        match self.name {
            "kvload" => format!("run kvload 2 {} &", 400 * scale),
            "tallyload" => format!("run tallyload {} soak &", 300 * scale),
            "fsload" => format!("run fsload 2 {} &", 60 * scale),
            _ => format!("run blkpattern write data {} {} {BLK_LO} {BLK_HI} &", rng.range(1, 1 << 30), 20 * scale),
        }
    }
}

/// The load clients, none running.
pub fn all() -> Vec<Client> {
    [
        ("kvload", "kvload: clients="),
        ("tallyload", "tallyload: ops="),
        ("fsload", "fsload: clients="),
        ("blkpattern", "blkpattern: wrote "),
    ]
    .into_iter()
    .map(|(name, summary)| Client { name, summary, running: false })
    .collect()
}

/// The number after `key=` in `line`.
pub fn field(line: &str, key: &str) -> Option<u64> {
    let at = line.find(&format!("{key}="))? + key.len() + 1;
    let digits: String = line[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The operations in a summary line: `ops=N`, or blkpattern's extents.
fn ops_of(line: &str) -> u64 {
    field(line, "ops")
        .or_else(|| {
            let rest = line.split("wrote ").nth(1)?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or(0)
}

/// Look at one console line for the clients: a summary ends a run (its
/// operations and errors counted); a client's complaint is kept.
pub fn scan(clients: &mut [Client], line: &str, stats: &mut Stats) {
    for c in clients.iter_mut() {
        let Some(at) = line.find(c.summary) else {
            if line.contains(&format!("{}: mismatch: ", c.name)) || line.contains(&format!("{} client ", c.name)) {
                stats.failures.push(format!("{}: {}", c.name, line.trim()));
            }
            continue;
        };
        let summary = &line[at..];
        let errors = field(summary, "errors").unwrap_or(1);
        c.running = false;
        *stats.client_ops.entry(c.name.to_string()).or_default() += ops_of(summary);
        *stats.client_runs.entry(c.name.to_string()).or_default() += 1;
        if errors > 0 {
            stats.fail(|z| &mut z.client_errors, errors, format!("{}: {}", c.name, summary.trim()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_count_ops_and_errors() {
        let mut cs = all();
        for c in cs.iter_mut() {
            c.running = true;
        }
        let mut s = Stats::default();
        scan(&mut cs, "[12] kvload: clients=2 ops=800 errors=0", &mut s);
        scan(&mut cs, "blkpattern: wrote 37 extents (500 sectors), read back, errors=0", &mut s);
        scan(&mut cs, "tallyload: ops=300 errors=2", &mut s);
        scan(&mut cs, "tallyload: mismatch: op 3: add", &mut s);
        assert_eq!(s.client_ops["kvload"], 800);
        assert_eq!(s.client_ops["blkpattern"], 37);
        assert_eq!(s.zero.client_errors, 2);
        let running: Vec<bool> = cs.iter().map(|c| c.running).collect();
        assert_eq!(running, [false, false, true, false]);
        assert_eq!(s.failures.len(), 2);
    }
}
