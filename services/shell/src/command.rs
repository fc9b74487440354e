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
            let per_mille = parse_percent(percent).ok_or_else(|| format!("chaos: bad percentage '{percent}' (0 to 100)"))?;
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
        assert_eq!(
            parse("run spin &"),
            Ok(Command::Run { program: "spin".into(), args: "".into(), background: true })
        );
        assert_eq!(parse("echo hi there"), Ok(Command::Echo("hi there".into())));
        assert_eq!(parse("kv get a"), Ok(Command::Kv(KvCommand::Get("a".into()))));
        assert_eq!(parse("kv put a hello world"), Ok(Command::Kv(KvCommand::Put("a".into(), "hello world".into()))));
        assert_eq!(parse("kv del a"), Ok(Command::Kv(KvCommand::Del("a".into()))));
        assert_eq!(parse("kv list"), Ok(Command::Kv(KvCommand::List("".into()))));
        assert_eq!(parse("kv list r1/"), Ok(Command::Kv(KvCommand::List("r1/".into()))));
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
