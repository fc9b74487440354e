//! Parsing a command line into a [`Command`], with one-line errors for
//! unknown commands and bad arguments.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// A parsed command.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// List commands.
    Help,
    /// List processes.
    Ps,
    /// Start a program; wait for it unless `background`.
    Run {
        /// Program name.
        program: String,
        /// Its arguments.
        args: String,
        /// Ends with `&`.
        background: bool,
    },
    /// Kill by name or pid.
    Kill(String),
    /// Memory and uptime.
    Mem,
    /// Power off.
    PowerOff,
    /// Reset.
    Reboot,
    /// Print the arguments.
    Echo(String),
    /// A key-value operation as a client of the kv service.
    Kv(KvCommand),
    /// A block operation as a client of the blk service.
    Blk(BlkCommand),
    /// The network card, as a client of the nic service.
    NicInfo,
    /// Crash a resilient service and wait until it is back.
    Crash {
        /// The service.
        service: String,
        /// How.
        how: CrashKind,
    },
    /// Crash a resilient service at random points.
    Chaos {
        /// The service.
        service: String,
        /// Chance per request, in thousandths.
        per_mille: u32,
    },
    /// A file command, as a client of the fs service (`files.rs`).
    Files(crate::files::FileCommand),
    /// An empty line.
    Nothing,
}

/// A `kv` subcommand.
#[derive(Debug, PartialEq, Eq)]
pub enum KvCommand {
    /// `kv get KEY`.
    Get(String),
    /// `kv put KEY VALUE`.
    Put(String, String),
    /// `kv del KEY`.
    Del(String),
    /// `kv list [PREFIX]`.
    List(String),
}

/// Which disk a `blk` command names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskName {
    /// The data disk (disk 0).
    Data,
    /// The checkpoint disk (disk 1, the vault's).
    Checkpoint,
}

impl DiskName {
    /// The disk's number in the blk contract.
    pub fn number(self) -> u8 {
        match self {
            DiskName::Data => 0,
            DiskName::Checkpoint => 1,
        }
    }

    /// The name the user typed.
    pub fn as_str(self) -> &'static str {
        match self {
            DiskName::Data => "data",
            DiskName::Checkpoint => "checkpoint",
        }
    }
}

/// Most sectors `blk read` dumps.
pub const BLK_READ_MAX: u32 = 128;
/// Most bytes `blk write` takes.
pub const BLK_WRITE_MAX: usize = 4096;

/// A `blk` subcommand.
#[derive(Debug, PartialEq, Eq)]
pub enum BlkCommand {
    /// `blk info DISK`.
    Info(DiskName),
    /// `blk read DISK LBA [COUNT]`: hex dump of COUNT sectors (default 1).
    Read(DiskName, u64, u32),
    /// `blk write DISK LBA HEXBYTES`: the bytes written from the start of
    /// sector LBA (the rest of the last sector is kept).
    Write(DiskName, u64, Vec<u8>),
}

/// How `crash` ends the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashKind {
    /// The kernel kills it.
    Kill = 1,
    /// It faults from inside (a wild pointer).
    Fault = 2,
    /// It hangs.
    Hang = 3,
    /// It panics.
    Panic = 4,
    /// It sends a reply that breaks its contract.
    Violation = 5,
    /// It corrupts its state (its invariant check catches it).
    Corrupt = 6,
}

/// One line per command, for `help`.
pub const HELP: &[(&str, &str)] = &[
    ("help", "list the commands"),
    ("ps", "list processes: pid, parent, state, memory, cpu time, name"),
    ("run PROGRAM [ARGS] [&]", "start a program and wait for it (or not, with &)"),
    ("kill NAME|PID", "end processes by name or pid"),
    ("mem", "memory in use and uptime"),
    ("echo TEXT", "print TEXT"),
    ("kv get|put|del|list ...", "use the kv service: get KEY, put KEY VALUE, del KEY, list [PREFIX]"),
    ("blk info DISK", "size and model of DISK (data or checkpoint)"),
    ("blk read DISK LBA [COUNT]", "hex dump of COUNT sectors (default 1) from sector LBA"),
    ("blk write DISK LBA HEX", "write the bytes HEX (e.g. 48656c6c6f) from the start of sector LBA"),
    ("nic", "the network card's address, link and model"),
    ("crash NAME [HOW]", "crash a resilient service and wait until it is back; HOW: fault, hang, panic, violation, corrupt (default: the kernel kills it)"),
    ("chaos NAME PERCENT", "crash a resilient service at random points with PERCENT chance per request (0 stops)"),
    ("poweroff", "turn the machine off"),
    ("reboot", "reset the machine"),
];

/// Parse a line; `Err` holds the one-line message to print.
pub fn parse(line: &str) -> Result<Command, String> {
    let line = line.trim();
    let (word, rest) = match line.split_once(char::is_whitespace) {
        Some((w, r)) => (w, r.trim()),
        None => (line, ""),
    };
    let no_args = |c: Command| {
        if rest.is_empty() {
            Ok(c)
        } else {
            Err(format!("{word}: takes no arguments"))
        }
    };
    match word {
        "" => Ok(Command::Nothing),
        "help" => no_args(Command::Help),
        "ps" => no_args(Command::Ps),
        "mem" => no_args(Command::Mem),
        "poweroff" => no_args(Command::PowerOff),
        "reboot" => no_args(Command::Reboot),
        "echo" => Ok(Command::Echo(rest.to_string())),
        "kv" => parse_kv(rest),
        "blk" => parse_blk(rest).map(Command::Blk),
        "nic" => no_args(Command::NicInfo),
        "crash" => {
            let args: Vec<&str> = rest.split_whitespace().collect();
            let how = match args.get(1).copied() {
                None => CrashKind::Kill,
                Some("fault") => CrashKind::Fault,
                Some("hang") => CrashKind::Hang,
                Some("panic") => CrashKind::Panic,
                Some("violation") => CrashKind::Violation,
                Some("corrupt") => CrashKind::Corrupt,
                Some(other) => {
                    return Err(format!("crash: unknown way '{other}' (fault, hang, panic, violation or corrupt)"))
                }
            };
            match args.as_slice() {
                [service] | [service, _] => Ok(Command::Crash { service: service.to_string(), how }),
                _ => Err("usage: crash NAME [fault|hang|panic|violation|corrupt]".to_string()),
            }
        }
        "chaos" => {
            let args: Vec<&str> = rest.split_whitespace().collect();
            let [service, percent] = args.as_slice() else {
                return Err("usage: chaos NAME PERCENT".to_string());
            };
            let per_mille =
                parse_percent(percent).ok_or_else(|| format!("chaos: bad percentage '{percent}' (0 to 100)"))?;
            Ok(Command::Chaos { service: service.to_string(), per_mille })
        }
        "kill" => {
            let args: Vec<&str> = rest.split_whitespace().collect();
            match args.as_slice() {
                [target] => Ok(Command::Kill(target.to_string())),
                _ => Err("usage: kill NAME|PID".to_string()),
            }
        }
        "run" => {
            let (rest, background) = match rest.strip_suffix('&') {
                Some(r) => (r.trim(), true),
                None => (rest, false),
            };
            let (program, args) = match rest.split_once(char::is_whitespace) {
                Some((p, a)) => (p, a.trim()),
                None => (rest, ""),
            };
            if program.is_empty() {
                return Err("usage: run PROGRAM [ARGS] [&]".to_string());
            }
            Ok(Command::Run { program: program.to_string(), args: args.to_string(), background })
        }
        w if crate::files::is_command(w) => crate::files::parse(w, rest).map(Command::Files),
        other => Err(format!("unknown command '{other}' (try 'help')")),
    }
}

fn parse_kv(rest: &str) -> Result<Command, String> {
    let (sub, args) = match rest.split_once(char::is_whitespace) {
        Some((s, a)) => (s, a.trim()),
        None => (rest, ""),
    };
    let words: Vec<&str> = args.split_whitespace().collect();
    let cmd = match (sub, words.as_slice()) {
        ("get", [key]) => KvCommand::Get(key.to_string()),
        ("del", [key]) => KvCommand::Del(key.to_string()),
        ("list", []) => KvCommand::List(String::new()),
        ("list", [prefix]) => KvCommand::List(prefix.to_string()),
        ("put", [key, ..]) => {
            let value = args[key.len()..].trim();
            if value.is_empty() {
                return Err("usage: kv put KEY VALUE".to_string());
            }
            KvCommand::Put(key.to_string(), value.to_string())
        }
        _ => return Err("usage: kv get KEY | kv put KEY VALUE | kv del KEY | kv list [PREFIX]".to_string()),
    };
    Ok(Command::Kv(cmd))
}

const BLK_USAGE: &str =
    "usage: blk info DISK | blk read DISK LBA [COUNT] | blk write DISK LBA HEXBYTES (DISK: data or checkpoint)";

fn parse_blk(rest: &str) -> Result<BlkCommand, String> {
    let words: Vec<&str> = rest.split_whitespace().collect();
    let disk = |w: &str| match w {
        "data" => Ok(DiskName::Data),
        "checkpoint" => Ok(DiskName::Checkpoint),
        other => Err(format!("blk: no disk '{other}' (data or checkpoint)")),
    };
    let lba = |w: &str| parse_number(w).ok_or_else(|| format!("blk: bad sector number '{w}'"));
    match words.as_slice() {
        ["info", d] => Ok(BlkCommand::Info(disk(d)?)),
        ["read", d, l] => Ok(BlkCommand::Read(disk(d)?, lba(l)?, 1)),
        ["read", d, l, c] => {
            let count = parse_number(c)
                .filter(|&c| (1..=BLK_READ_MAX as u64).contains(&c))
                .ok_or_else(|| format!("blk: bad sector count '{c}' (1 to {BLK_READ_MAX})"))?;
            Ok(BlkCommand::Read(disk(d)?, lba(l)?, count as u32))
        }
        ["write", d, l, hex] => {
            let bytes = parse_hex(hex).ok_or_else(|| format!("blk: '{hex}' is not hex bytes (pairs of 0-9 a-f)"))?;
            if bytes.len() > BLK_WRITE_MAX {
                return Err(format!("blk: at most {BLK_WRITE_MAX} bytes per write"));
            }
            Ok(BlkCommand::Write(disk(d)?, lba(l)?, bytes))
        }
        _ => Err(BLK_USAGE.to_string()),
    }
}

/// A decimal or `0x` hexadecimal number.
fn parse_number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Pairs of hex digits (an optional `0x` in front) as bytes; at least one.
pub fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if s.is_empty() || s.len() % 2 != 0 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok())).collect()
}

/// "2", "0.5", "100" -> per mille.
fn parse_percent(s: &str) -> Option<u32> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let int: u32 = int.parse().ok()?;
    let tenth: u32 = match frac.len() {
        0 => 0,
        1 => frac.parse().ok()?,
        _ => return None,
    };
    let pm = int.checked_mul(10)?.checked_add(tenth)?;
    (pm <= 1000).then_some(pm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse() {
        assert_eq!(parse("  ps "), Ok(Command::Ps));
        assert_eq!(parse(""), Ok(Command::Nothing));
        assert_eq!(parse("kill 12"), Ok(Command::Kill("12".into())));
        assert_eq!(
            parse("run pingpong 1000"),
            Ok(Command::Run { program: "pingpong".into(), args: "1000".into(), background: false })
        );
        assert_eq!(parse("run spin &"), Ok(Command::Run { program: "spin".into(), args: "".into(), background: true }));
        assert_eq!(parse("echo hi there"), Ok(Command::Echo("hi there".into())));
        assert_eq!(parse("kv get a"), Ok(Command::Kv(KvCommand::Get("a".into()))));
        assert_eq!(parse("kv put a hello world"), Ok(Command::Kv(KvCommand::Put("a".into(), "hello world".into()))));
        assert_eq!(parse("kv del a"), Ok(Command::Kv(KvCommand::Del("a".into()))));
        assert_eq!(parse("kv list"), Ok(Command::Kv(KvCommand::List("".into()))));
        assert_eq!(parse("kv list r1/"), Ok(Command::Kv(KvCommand::List("r1/".into()))));
        assert_eq!(parse("blk info data"), Ok(Command::Blk(BlkCommand::Info(DiskName::Data))));
        assert_eq!(parse("blk read checkpoint 0x10"), Ok(Command::Blk(BlkCommand::Read(DiskName::Checkpoint, 16, 1))));
        assert_eq!(parse("blk read data 7 128"), Ok(Command::Blk(BlkCommand::Read(DiskName::Data, 7, 128))));
        assert_eq!(
            parse("blk write data 3 48656C6c6f"),
            Ok(Command::Blk(BlkCommand::Write(DiskName::Data, 3, b"Hello".to_vec())))
        );
        assert_eq!(parse("nic"), Ok(Command::NicInfo));
        assert_eq!(parse("crash kv"), Ok(Command::Crash { service: "kv".into(), how: CrashKind::Kill }));
        assert_eq!(parse("crash kv hang"), Ok(Command::Crash { service: "kv".into(), how: CrashKind::Hang }));
        assert_eq!(parse("chaos kv 2"), Ok(Command::Chaos { service: "kv".into(), per_mille: 20 }));
        assert_eq!(parse("chaos kv 0.5"), Ok(Command::Chaos { service: "kv".into(), per_mille: 5 }));
    }

    #[test]
    fn bad_input_gets_one_line() {
        for (line, msg) in [
            ("frobnicate", "unknown command 'frobnicate'"),
            ("kill", "usage: kill"),
            ("kill a b", "usage: kill"),
            ("run", "usage: run"),
            ("run &", "usage: run"),
            ("ps -ef", "ps: takes no arguments"),
            ("kv", "usage: kv get KEY"),
            ("kv put a", "usage: kv put KEY VALUE"),
            ("kv get", "usage: kv get KEY"),
            ("kv frob x", "usage: kv get KEY"),
            ("crash", "usage: crash NAME"),
            ("blk", "usage: blk info DISK"),
            ("blk info", "usage: blk info DISK"),
            ("blk info floppy", "blk: no disk 'floppy'"),
            ("blk read data x", "blk: bad sector number 'x'"),
            ("blk read data 1 0", "blk: bad sector count '0'"),
            ("blk read data 1 129", "blk: bad sector count '129'"),
            ("blk write data 1 abc", "blk: 'abc' is not hex bytes"),
            ("blk write data 1 zz", "blk: 'zz' is not hex bytes"),
            ("blk write data 1", "usage: blk info DISK"),
            ("nic up", "nic: takes no arguments"),
            ("crash kv melt", "crash: unknown way 'melt'"),
            ("chaos kv", "usage: chaos NAME PERCENT"),
            ("chaos kv 101", "chaos: bad percentage '101'"),
            ("chaos kv 0.55", "chaos: bad percentage"),
            ("chaos kv x", "chaos: bad percentage"),
        ] {
            let e = parse(line).unwrap_err();
            assert!(e.contains(msg), "{line}: {e}");
            assert!(!e.contains('\n'));
        }
    }
}
