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
    /// An empty line.
    Nothing,
}

/// One line per command, for `help`.
pub const HELP: &[(&str, &str)] = &[
    ("help", "list the commands"),
    ("ps", "list processes: pid, parent, state, memory, cpu time, name"),
    ("run PROGRAM [ARGS] [&]", "start a program and wait for it (or not, with &)"),
    ("kill NAME|PID", "end processes by name or pid"),
    ("mem", "memory in use and uptime"),
    ("echo TEXT", "print TEXT"),
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
        ] {
            let e = parse(line).unwrap_err();
            assert!(e.contains(msg), "{line}: {e}");
            assert!(!e.contains('\n'));
        }
    }
}
