//! The kernel's profile dump, as `Profile(1)` writes it to the console:
//!
//! ```text
//! PROFILE begin hz=4000 samples=24364 dropped=0 unique=124 ns=8112156327
//! PROFILE name 13 pingpong
//! PROFILE s COUNT PID MODE KERNEL;USER
//! PROFILE end
//! ```
//!
//! `MODE` is `u` (user), `k` (kernel) or `i` (idle); `KERNEL` and `USER`
//! are comma-separated hexadecimal addresses, leaf first (the interrupted
//! instruction, then return addresses), either possibly empty.

use std::collections::BTreeMap;

/// Where a sample landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// In user code.
    User,
    /// In the kernel (a system call, or an interrupt).
    Kernel,
    /// In the idle loop.
    Idle,
}

/// One distinct stack and how many samples had it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stack {
    /// Samples.
    pub count: u64,
    /// The process on the CPU (0: none).
    pub pid: u32,
    /// Where.
    pub mode: Mode,
    /// Kernel frames, leaf first.
    pub kernel: Vec<u64>,
    /// User frames, leaf first.
    pub user: Vec<u64>,
}

/// A whole dump.
#[derive(Clone, Debug, Default)]
pub struct Dump {
    /// Sampling rate asked for.
    pub hz: u64,
    /// Samples taken.
    pub samples: u64,
    /// Samples lost to a full buffer.
    pub dropped: u64,
    /// Nanoseconds sampled.
    pub ns: u64,
    /// Process names by pid.
    pub names: BTreeMap<u32, String>,
    /// The stacks.
    pub stacks: Vec<Stack>,
}

fn addresses(s: &str) -> Result<Vec<u64>, String> {
    s.split(',')
        .filter(|a| !a.is_empty())
        .map(|a| u64::from_str_radix(a, 16).map_err(|_| format!("bad address '{a}'")))
        .collect()
}

fn field(words: &[&str], name: &str) -> u64 {
    words.iter().find_map(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse().ok()).unwrap_or(0)
}

/// Find the last dump in console text and read it.
pub fn parse(console: &str) -> Result<Dump, String> {
    let begin = console.rfind("PROFILE begin").ok_or("no `PROFILE begin` line on the console")?;
    let mut dump = Dump::default();
    let mut ended = false;
    for line in console[begin..].lines() {
        let line = line.trim_end();
        let Some(rest) = line.strip_prefix("PROFILE ") else { continue };
        let words: Vec<&str> = rest.split_whitespace().collect();
        match words.first().copied() {
            Some("begin") => {
                dump.hz = field(&words, "hz");
                dump.samples = field(&words, "samples");
                dump.dropped = field(&words, "dropped");
                dump.ns = field(&words, "ns");
            }
            Some("name") if words.len() >= 3 => {
                let pid = words[1].parse().map_err(|_| format!("bad line: {line}"))?;
                dump.names.insert(pid, words[2..].join(" "));
            }
            Some("s") if words.len() == 5 => {
                let bad = || format!("bad sample line: {line}");
                let (k, u) = words[4].split_once(';').ok_or_else(bad)?;
                dump.stacks.push(Stack {
                    count: words[1].parse().map_err(|_| bad())?,
                    pid: words[2].parse().map_err(|_| bad())?,
                    mode: match words[3] {
                        "u" => Mode::User,
                        "k" => Mode::Kernel,
                        "i" => Mode::Idle,
                        _ => return Err(bad()),
                    },
                    kernel: addresses(k)?,
                    user: addresses(u)?,
                });
            }
            Some("end") => {
                ended = true;
                break;
            }
            _ => return Err(format!("unexpected profile line: {line}")),
        }
    }
    if !ended {
        return Err("the profile dump has no `PROFILE end` line (cut short?)".into());
    }
    Ok(dump)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "kintsugi> run profile stop\n\
        PROFILE begin hz=4000 samples=30 dropped=2 unique=3 ns=1000000\n\
        PROFILE name 1 init\n\
        PROFILE name 13 kv companion\n\
        PROFILE s 12 1 k ffffffff80236a69,ffffffff80223dc2;2231a2,212ed4\n\
        PROFILE s 5 13 u ;2035fc,20f95f\n\
        PROFILE s 13 0 i ;\n\
        PROFILE end\n\
        profile: 30 samples\n";

    #[test]
    fn reads_a_dump() {
        let d = parse(TEXT).unwrap();
        assert_eq!((d.hz, d.samples, d.dropped, d.ns), (4000, 30, 2, 1_000_000));
        assert_eq!(d.names[&13], "kv companion");
        assert_eq!(d.stacks.len(), 3);
        assert_eq!(d.stacks[0].kernel, vec![0xffffffff80236a69, 0xffffffff80223dc2]);
        assert_eq!(d.stacks[0].user, vec![0x2231a2, 0x212ed4]);
        assert_eq!(d.stacks[1].mode, Mode::User);
        assert!(d.stacks[1].kernel.is_empty());
        assert_eq!(d.stacks[2], Stack { count: 13, pid: 0, mode: Mode::Idle, kernel: vec![], user: vec![] });
    }

    #[test]
    fn refuses_cut_or_garbled_dumps() {
        assert!(parse("nothing here").is_err());
        assert!(parse(&TEXT.replace("PROFILE end\n", "")).is_err());
        assert!(parse(&TEXT.replace("2035fc", "20x5fc")).is_err());
        assert!(parse(&TEXT.replace(" u ;", " q ;")).is_err());
    }
}
