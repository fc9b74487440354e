//! Parsing a command line into a [`Command`], with one-line errors for
//! unknown commands and bad arguments.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::args::fits;

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
    /// A network command (`net`, `ping`, `http`), as a client of net.
    Network(crate::network::NetCommand),
    /// Crash a resilient service and wait until it is back.
    Crash {
        /// The service.
        service: String,
        /// How.
        how: CrashKind,
    },
    /// Show the console's recent messages (of one writer, or all).
    Log(Option<String>),
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
    /// Its companion commits a checkpoint damaged on purpose, then kills
    /// it: the restores fail and the companion falls back to the record
    /// before.
    Poison = 7,
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
    ("net", "the network: addresses, gateway, DNS, counters and open sockets"),
    ("ping HOST [COUNT]", "send COUNT (default 4) ICMP echo requests to HOST"),
    ("http get URL [PATH]", "download URL (http://HOST[:PORT]/PATH): size, time and SHA-256"),
    ("log [NAME]", "the recent console messages of the program or service NAME (all without NAME)"),
    ("crash NAME [HOW]", "crash a resilient service and wait until it is back; HOW: fault, hang, panic, violation, corrupt, poison (default: the kernel kills it)"),
    ("chaos NAME PERCENT", "crash a resilient service at random points with PERCENT chance per request (0 stops)"),
    ("poweroff", "turn the machine off"),
    ("reboot", "reset the machine"),
];

/// Longest key, value and prefix of the kv contract (`kv.contract`:
/// `key: string[256]`, `value: bytes[4096]`).
pub const KV_KEY_MAX: usize = 256;
/// Longest kv value.
pub const KV_VALUE_MAX: usize = 4096;
/// Longest name the directory takes (`directory.contract`: `string[64]`).
pub const NAME_MAX: usize = 64;
/// Longest argument string of a program (`directory.contract`: `args: string[3000]`).
pub const ARGS_MAX: usize = 3000;
/// Longest service name a resilient service's control name leaves
/// (`NAME.control` within [`NAME_MAX`]).
pub const SERVICE_MAX: usize = NAME_MAX - ".control".len();
/// Longest writer name in the console log (`kintsugi_abi::MAX_LOG_NAME`).
pub const LOG_NAME_MAX: usize = libos::abi::MAX_LOG_NAME;

/// Parse a line; `Err` holds the one-line message to print, which starts
/// with the command's name (`kv: key longer than 256 bytes`, `kill: usage:
/// kill NAME|PID`), or `shell:` when there is no command to name.
pub fn parse(line: &str) -> Result<Command, String> {
    let words = crate::args::split(line).map_err(|e| format!("shell: {e}"))?;
    let Some(word) = words.first() else { return Ok(Command::Nothing) };
    parse_words(&words).map_err(|e| if e.starts_with("usage: ") { format!("{word}: {e}") } else { e })
}

fn parse_words(words: &[String]) -> Result<Command, String> {
    let Some((word, rest)) = words.split_first() else { return Ok(Command::Nothing) };
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    let word = word.as_str();
    let no_args = |c: Command| {
        if rest.is_empty() {
            Ok(c)
        } else {
            Err(format!("{word}: takes no arguments"))
        }
    };
    match word {
        "help" => no_args(Command::Help),
        "ps" => no_args(Command::Ps),
        "mem" => no_args(Command::Mem),
        "poweroff" => no_args(Command::PowerOff),
        "reboot" => no_args(Command::Reboot),
        "echo" => Ok(Command::Echo(rest.join(" "))),
        "kv" => parse_kv(&rest),
        "blk" => parse_blk(&rest).map(Command::Blk),
        "nic" => no_args(Command::NicInfo),
        "net" | "ping" | "http" => crate::network::parse(word, &rest.join(" ")).map(Command::Network),
        "log" => match rest.as_slice() {
            [] => Ok(Command::Log(None)),
            [name] => {
                fits(name, LOG_NAME_MAX, "log", "name")?;
                Ok(Command::Log(Some(name.to_string())))
            }
            _ => Err("usage: log [NAME]".to_string()),
        },
        "crash" => {
            let how = match rest.get(1).copied() {
                None => CrashKind::Kill,
                Some("fault") => CrashKind::Fault,
                Some("hang") => CrashKind::Hang,
                Some("panic") => CrashKind::Panic,
                Some("violation") => CrashKind::Violation,
                Some("corrupt") => CrashKind::Corrupt,
                Some("poison") => CrashKind::Poison,
                Some(other) => {
                    return Err(format!(
                        "crash: unknown way '{other}' (fault, hang, panic, violation, corrupt or poison)"
                    ))
                }
            };
            match rest.as_slice() {
                [service] | [service, _] => {
                    fits(service, SERVICE_MAX, "crash", "service name")?;
                    Ok(Command::Crash { service: service.to_string(), how })
                }
                _ => Err("usage: crash NAME [fault|hang|panic|violation|corrupt|poison]".to_string()),
            }
        }
        "chaos" => {
            let [service, percent] = rest.as_slice() else {
                return Err("usage: chaos NAME PERCENT".to_string());
            };
            fits(service, SERVICE_MAX, "chaos", "service name")?;
            let per_mille = crate::args::per_mille(percent)
                .ok_or_else(|| format!("chaos: bad percentage '{percent}' (0 to 100, at most one decimal)"))?;
            Ok(Command::Chaos { service: service.to_string(), per_mille })
        }
        "kill" => match rest.as_slice() {
            [target] => {
                fits(target, NAME_MAX, "kill", "name")?;
                Ok(Command::Kill(target.to_string()))
            }
            _ => Err("usage: kill NAME|PID".to_string()),
        },
        "run" => {
            let (args, background) = match rest.split_last() {
                Some((&"&", before)) => (before, true),
                _ => (rest.as_slice(), false),
            };
            let Some((program, args)) = args.split_first() else {
                return Err("usage: run PROGRAM [ARGS] [&]".to_string());
            };
            fits(program, NAME_MAX, "run", "program name")?;
            let args = args.join(" ");
            fits(&args, ARGS_MAX, "run", "arguments")?;
            Ok(Command::Run { program: program.to_string(), args, background })
        }
        w if crate::files::is_command(w) => crate::files::parse(w, &rest).map(Command::Files),
        other => Err(format!("shell: unknown command '{other}' (try 'help')")),
    }
}

fn parse_kv(rest: &[&str]) -> Result<Command, String> {
    let key = |k: &str| fits(k, KV_KEY_MAX, "kv", "key").map(|_| k.to_string());
    let cmd = match rest {
        ["get", k] => KvCommand::Get(key(k)?),
        ["del", k] => KvCommand::Del(key(k)?),
        ["list"] => KvCommand::List(String::new()),
        ["list", prefix] => {
            fits(prefix, KV_KEY_MAX, "kv", "prefix")?;
            KvCommand::List(prefix.to_string())
        }
        ["put", k, value @ ..] if !value.is_empty() => {
            let value = value.join(" ");
            fits(&value, KV_VALUE_MAX, "kv", "value")?;
            KvCommand::Put(key(k)?, value)
        }
        ["put", ..] => return Err("usage: kv put KEY VALUE".to_string()),
        _ => return Err("usage: kv get KEY | kv put KEY VALUE | kv del KEY | kv list [PREFIX]".to_string()),
    };
    Ok(Command::Kv(cmd))
}

const BLK_USAGE: &str =
    "usage: blk info DISK | blk read DISK LBA [COUNT] | blk write DISK LBA HEXBYTES (DISK: data or checkpoint)";

fn parse_blk(words: &[&str]) -> Result<BlkCommand, String> {
    let disk = |w: &str| match w {
        "data" => Ok(DiskName::Data),
        "checkpoint" => Ok(DiskName::Checkpoint),
        other => Err(format!("blk: no disk '{other}' (data or checkpoint)")),
    };
    let lba = |w: &str| crate::args::number(w).ok_or_else(|| format!("blk: bad sector number '{w}'"));
    match words {
        ["info", d] => Ok(BlkCommand::Info(disk(d)?)),
        ["read", d, l] => Ok(BlkCommand::Read(disk(d)?, lba(l)?, 1)),
        ["read", d, l, c] => {
            let count = crate::args::number(c)
                .filter(|&c| (1..=BLK_READ_MAX as u64).contains(&c))
                .ok_or_else(|| format!("blk: bad sector count '{c}' (1 to {BLK_READ_MAX})"))?;
            Ok(BlkCommand::Read(disk(d)?, lba(l)?, count as u32))
        }
        ["write", d, l, hex] => {
            let bytes = parse_hex(hex).ok_or_else(|| format!("blk: '{hex}' is not hex bytes (pairs of 0-9 a-f)"))?;
            if bytes.len() > BLK_WRITE_MAX {
                return Err(format!("blk: data longer than {BLK_WRITE_MAX} bytes"));
            }
            Ok(BlkCommand::Write(disk(d)?, lba(l)?, bytes))
        }
        _ => Err(BLK_USAGE.to_string()),
    }
}

/// Pairs of hex digits (an optional `0x` in front) as bytes; at least one.
pub fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if s.is_empty() || !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok())).collect()
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
        assert_eq!(parse("log"), Ok(Command::Log(None)));
        assert_eq!(parse("log kv-companion"), Ok(Command::Log(Some("kv-companion".into()))));
    }

    #[test]
    fn quotes_and_utf8() {
        assert_eq!(
            parse(r#"kv put "my key" "two  spaces""#),
            Ok(Command::Kv(KvCommand::Put("my key".into(), "two  spaces".into())))
        );
        assert_eq!(parse("kv put ключ значение"), Ok(Command::Kv(KvCommand::Put("ключ".into(), "значение".into()))));
        assert_eq!(parse(r#"echo "a  b"  c"#), Ok(Command::Echo("a  b c".into())));
        assert_eq!(
            parse("run kvload 4 100 &"),
            Ok(Command::Run { program: "kvload".into(), args: "4 100".into(), background: true })
        );
        assert_eq!(parse(r#"echo "unclosed"#), Err("shell: missing closing quote (\")".into()));
    }

    #[test]
    fn limits_name_the_limit() {
        let key = "k".repeat(KV_KEY_MAX + 1);
        assert_eq!(parse(&format!("kv get {key}")), Err("kv: key longer than 256 bytes".into()));
        assert_eq!(parse(&format!("kv put {key} v")), Err("kv: key longer than 256 bytes".into()));
        let value = "v".repeat(KV_VALUE_MAX + 1);
        assert_eq!(parse(&format!("kv put k {value}")), Err("kv: value longer than 4096 bytes".into()));
        let value = "v".repeat(KV_VALUE_MAX);
        assert!(parse(&format!("kv put {} {value}", "k".repeat(KV_KEY_MAX))).is_ok());
        // Bytes, not characters: 129 two-byte characters are 258 bytes.
        assert_eq!(parse(&format!("kv get {}", "ж".repeat(129))), Err("kv: key longer than 256 bytes".into()));
        assert_eq!(parse(&format!("run {}", "p".repeat(65))), Err("run: program name longer than 64 bytes".into()));
        assert_eq!(parse(&format!("run p {}", "a".repeat(3001))), Err("run: arguments longer than 3000 bytes".into()));
        assert_eq!(parse(&format!("crash {}", "s".repeat(57))), Err("crash: service name longer than 56 bytes".into()));
        assert_eq!(
            parse(&format!("blk write data 0 {}", "00".repeat(4097))),
            Err("blk: data longer than 4096 bytes".into())
        );
    }

    #[test]
    fn numbers_are_strict() {
        for line in
            ["blk read data +1", "blk read data 5.", "blk read data -5", "blk read data 1 +2", "blk read data 1 2."]
        {
            assert!(parse(line).is_err(), "{line}");
        }
        for line in ["chaos kv +1", "chaos kv 5.", "chaos kv -5"] {
            assert!(parse(line).unwrap_err().starts_with("chaos: bad percentage"), "{line}");
        }
        assert!(parse("blk write data 1 +f").is_err());
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
            ("log a b", "usage: log"),
        ] {
            let e = parse(line).unwrap_err();
            assert!(e.contains(msg), "{line}: {e}");
            assert!(!e.contains('\n'));
        }
    }
}
