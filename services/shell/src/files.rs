//! The shell's file commands, as a client of the fs service: `ls`, `cat`,
//! `write`, `append`, `cp`, `mv`, `rm`, `mkdir`, `rmdir`, `stat`, `df`,
//! `sync`, `hexdump`, `sha256`. [`parse`] (host-tested) turns a command
//! line into a [`FileCommand`]; [`run`] carries it out and prints the
//! result. Errors are one line prefixed by the command
//! (`cat: /nope: no such file or directory`).
//!
//! Paths are absolute; one without a leading `/` is taken from the root.
//! Arguments are separated by whitespace (names with spaces need the
//! quoting the line editor is getting); `write` and `append` take the rest
//! of the line as the text and add a newline, as `echo` would.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// A file command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileCommand {
    /// `ls [-l] [PATH]`.
    Ls {
        /// Long form: kind, size, date.
        long: bool,
        /// The folder (or file).
        path: String,
    },
    /// `cat PATH`.
    Cat(String),
    /// `write PATH TEXT`: replace the file with TEXT and a newline.
    Write(String, String),
    /// `append PATH TEXT`: add TEXT and a newline at the end.
    Append(String, String),
    /// `cp SRC DST`.
    Cp(String, String),
    /// `mv OLD NEW`.
    Mv(String, String),
    /// `rm PATH` (files only).
    Rm(String),
    /// `mkdir PATH`.
    Mkdir(String),
    /// `rmdir PATH` (empty folders only).
    Rmdir(String),
    /// `stat PATH`.
    Stat(String),
    /// `df`.
    Df,
    /// `sync`.
    Sync,
    /// `hexdump PATH [OFFSET [LENGTH]]`.
    Hexdump(String, u64, Option<u64>),
    /// `sha256 PATH`.
    Sha256(String),
}

/// Usage lines for `help`.
pub const HELP: &[(&str, &str)] = &[
    ("ls [-l] [PATH]", "list a folder of the data disk (default /); -l adds kind, size and date"),
    ("cat PATH", "print a file"),
    ("write PATH TEXT", "replace a file with TEXT (and a newline), creating it if needed"),
    ("append PATH TEXT", "add TEXT (and a newline) at the end of a file"),
    ("cp SRC DST", "copy a file (into DST if it is a folder)"),
    ("mv OLD NEW", "move or rename a file or folder (into NEW if it is a folder)"),
    ("rm PATH", "remove a file"),
    ("mkdir PATH", "make a folder"),
    ("rmdir PATH", "remove an empty folder"),
    ("stat PATH", "kind, size and times of a file or folder"),
    ("df", "size and free space of the data disk"),
    ("sync", "make every change so far durable"),
    ("hexdump PATH [OFFSET [LENGTH]]", "hex dump of a file (default: the first 512 bytes)"),
    ("sha256 PATH", "the file's SHA-256, as sha256sum prints it"),
];

/// Bytes `hexdump` shows without a LENGTH.
pub const HEXDUMP_DEFAULT: u64 = 512;

/// Whether `word` is a file command.
pub fn is_command(word: &str) -> bool {
    matches!(
        word,
        "ls" | "cat"
            | "write"
            | "append"
            | "cp"
            | "mv"
            | "rm"
            | "mkdir"
            | "rmdir"
            | "stat"
            | "df"
            | "sync"
            | "hexdump"
            | "sha256"
    )
}

/// `PATH` as an absolute path.
fn absolute(p: &str) -> String {
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    }
}

/// A decimal or `0x` hexadecimal count, strictly (no sign, no fraction).
fn number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(h) if !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()) => u64::from_str_radix(h, 16).ok(),
        Some(_) => None,
        None if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
        None => None,
    }
}

/// Parse file command `word` with its arguments `args` (as the shell split
/// them: a name in double quotes is one argument, spaces and all).
pub fn parse(word: &str, args: &[&str]) -> Result<FileCommand, String> {
    let usage = || {
        let u = HELP.iter().find(|(u, _)| u.split_whitespace().next() == Some(word)).map_or(word, |(u, _)| *u);
        format!("usage: {u}")
    };
    let text_after_path = || -> Result<(String, String), String> {
        let (path, text) = args.split_first().filter(|(_, t)| !t.is_empty()).ok_or_else(usage)?;
        Ok((absolute(path), text.join(" ")))
    };
    Ok(match (word, args) {
        ("ls", []) => FileCommand::Ls { long: false, path: String::from("/") },
        ("ls", ["-l"]) => FileCommand::Ls { long: true, path: String::from("/") },
        ("ls", ["-l", p]) => FileCommand::Ls { long: true, path: absolute(p) },
        ("ls", [p]) if !p.starts_with('-') => FileCommand::Ls { long: false, path: absolute(p) },
        ("cat", [p]) => FileCommand::Cat(absolute(p)),
        ("write", [_, ..]) => {
            let (p, t) = text_after_path()?;
            FileCommand::Write(p, t)
        }
        ("append", [_, ..]) => {
            let (p, t) = text_after_path()?;
            FileCommand::Append(p, t)
        }
        ("cp", [a, b]) => FileCommand::Cp(absolute(a), absolute(b)),
        ("mv", [a, b]) => FileCommand::Mv(absolute(a), absolute(b)),
        ("rm", [p]) => FileCommand::Rm(absolute(p)),
        ("mkdir", [p]) => FileCommand::Mkdir(absolute(p)),
        ("rmdir", [p]) => FileCommand::Rmdir(absolute(p)),
        ("stat", [p]) => FileCommand::Stat(absolute(p)),
        ("df", []) => FileCommand::Df,
        ("sync", []) => FileCommand::Sync,
        ("hexdump", [p]) => FileCommand::Hexdump(absolute(p), 0, None),
        ("hexdump", [p, o]) => {
            FileCommand::Hexdump(absolute(p), number(o).ok_or_else(|| format!("hexdump: bad offset '{o}'"))?, None)
        }
        ("hexdump", [p, o, l]) => FileCommand::Hexdump(
            absolute(p),
            number(o).ok_or_else(|| format!("hexdump: bad offset '{o}'"))?,
            Some(number(l).ok_or_else(|| format!("hexdump: bad length '{l}'"))?),
        ),
        ("sha256", [p]) => FileCommand::Sha256(absolute(p)),
        _ => return Err(usage()),
    })
}

/// The last component of a path.
pub fn base_name(p: &str) -> &str {
    p.trim_end_matches('/').rsplit('/').next().unwrap_or(p)
}

/// `DIR/NAME`.
pub fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// A civil date and time `YYYY-MM-DD HH:MM:SS` of seconds since 1970 (0:
/// `-`).
pub fn date(secs: u64) -> String {
    if secs == 0 {
        return String::from("-");
    }
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", rest / 3600, rest / 60 % 60, rest % 60)
}

/// Hex dump lines of `data`, which starts at file offset `at`.
pub fn dump(at: u64, data: &[u8]) -> Vec<String> {
    data.chunks(16)
        .enumerate()
        .map(|(i, row)| {
            let mut line = format!("{:08x} ", at + (i * 16) as u64);
            for j in 0..16 {
                match row.get(j) {
                    Some(b) => line.push_str(&format!(" {b:02x}")),
                    None => line.push_str("   "),
                }
                if j == 7 {
                    line.push(' ');
                }
            }
            line.push_str("  |");
            line.extend(row.iter().map(|&b| if (0x20..0x7f).contains(&b) { b as char } else { '.' }));
            line.push('|');
            line
        })
        .collect()
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(target_os = "none")]
pub use guest::{run, Session};

#[cfg(target_os = "none")]
mod guest {
    use super::{base_name, date, dump, hex, join, FileCommand, HEXDUMP_DEFAULT};
    use alloc::format;
    use alloc::string::{String, ToString};
    use alloc::vec;
    use alloc::vec::Vec;
    use fs::{flags, kind, FsClient, Reply, CURRENT, MAX_TRANSFER};
    use libos::{print, println};
    use sha2::{Digest, Sha256};

    /// How long a command waits for the fs service to register.
    const PATIENCE: core::time::Duration = core::time::Duration::from_secs(10);

    /// The shell's session with fs, opened on first use and dropped when
    /// it breaks.
    #[derive(Default)]
    pub struct Session(Option<FsClient>);

    type R<T> = Result<T, String>;

    struct Fs<'a>(&'a mut FsClient);

    fn answer(r: Result<Reply, libos::protocol::ClientError>) -> R<Reply> {
        match r {
            Ok(Reply::Failed { message, .. }) => Err(message),
            Ok(r) => Ok(r),
            Err(e) => Err(format!("fs session: {e}")),
        }
    }

    fn done(r: Result<Reply, libos::protocol::ClientError>) -> R<()> {
        match answer(r)? {
            Reply::Done => Ok(()),
            r => Err(odd(r)),
        }
    }

    fn odd(r: Reply) -> String {
        format!("unexpected answer {r:?}")
    }

    impl Fs<'_> {
        fn open(&mut self, path: &str, fl: u32) -> R<(u64, u64)> {
            match answer(self.0.open(path.to_string(), fl))? {
                Reply::Opened { handle, size, .. } => Ok((handle, size)),
                r => Err(odd(r)),
            }
        }
        fn close(&mut self, h: u64) -> R<()> {
            answer(self.0.close(h)).map(|_| ())
        }
        /// Up to `len` bytes at `offset` (through the session's shared
        /// buffer: `fs::read_into`).
        fn read(&mut self, h: u64, offset: u64, len: u32) -> R<Vec<u8>> {
            let mut buf = vec![0u8; len as usize];
            match fs::read_into(self.0, h, offset, &mut buf) {
                Ok(Ok(n)) => {
                    buf.truncate(n);
                    Ok(buf)
                }
                Ok(Err(r)) => answer(Ok(r)).and_then(|r| Err(odd(r))),
                Err(e) => Err(format!("fs session: {e}")),
            }
        }
        fn write(&mut self, h: u64, offset: u64, data: Vec<u8>) -> R<()> {
            match answer(self.0.write(h, offset, data))? {
                Reply::Written { .. } => Ok(()),
                r => Err(odd(r)),
            }
        }
        fn stat(&mut self, path: &str) -> R<(u8, u64, u64, u64, u64)> {
            match answer(self.0.stat(path.to_string()))? {
                Reply::Info { kind, size, created, modified, accessed } => {
                    Ok((kind, size, created, modified, accessed))
                }
                r => Err(odd(r)),
            }
        }
        fn is_dir(&mut self, path: &str) -> bool {
            matches!(self.stat(path), Ok((kind::DIR, ..)))
        }
        /// Read a whole file in transfers, giving each piece to `each`.
        fn stream(&mut self, path: &str, mut each: impl FnMut(&[u8])) -> R<u64> {
            let (h, _) = self.open(path, flags::READ)?;
            let mut total = 0u64;
            let result = loop {
                match self.read(h, total, MAX_TRANSFER as u32) {
                    Ok(d) if d.is_empty() => break Ok(total),
                    Ok(d) => {
                        total += d.len() as u64;
                        each(&d);
                    }
                    Err(e) => break Err(e),
                }
            };
            let _ = self.close(h);
            result
        }
        fn put_text(&mut self, path: &str, text: &str, fl: u32) -> R<()> {
            let (h, _) = self.open(path, flags::WRITE | flags::CREATE | fl)?;
            let mut data = text.as_bytes().to_vec();
            data.push(b'\n');
            let result = data.chunks(MAX_TRANSFER).try_for_each(|c| self.write(h, CURRENT, c.to_vec()));
            let _ = self.close(h);
            result
        }
        fn list(&mut self, path: &str) -> R<Vec<(String, u8, u64, u64)>> {
            let mut r = answer(self.0.list(path.to_string()))?;
            let mut out = Vec::new();
            loop {
                match r {
                    Reply::Entry { name, kind, size, modified } => out.push((name, kind, size, modified)),
                    Reply::EndList { .. } => return Ok(out),
                    other => return Err(odd(other)),
                }
                r = answer(self.0.next_reply())?;
            }
        }
    }

    fn session(s: &mut Session) -> R<&mut FsClient> {
        if s.0.is_none() {
            let ep = libos::directory::connect_within(fs::SERVICE, PATIENCE).map_err(|e| format!("{e}"))?;
            // A session that survives a restart of fs's companion, with a
            // shared buffer for reads.
            let channel = libos::channel::Channel::resumable_shared(ep, fs::SERVICE, MAX_TRANSFER)
                .map_err(|e| format!("fs session: {e}"))?;
            s.0 = Some(FsClient::new(channel));
        }
        s.0.as_mut().ok_or_else(|| String::from("no fs session"))
    }

    /// The command's name, for error lines.
    fn name(c: &FileCommand) -> &'static str {
        match c {
            FileCommand::Ls { .. } => "ls",
            FileCommand::Cat(_) => "cat",
            FileCommand::Write(..) => "write",
            FileCommand::Append(..) => "append",
            FileCommand::Cp(..) => "cp",
            FileCommand::Mv(..) => "mv",
            FileCommand::Rm(_) => "rm",
            FileCommand::Mkdir(_) => "mkdir",
            FileCommand::Rmdir(_) => "rmdir",
            FileCommand::Stat(_) => "stat",
            FileCommand::Df => "df",
            FileCommand::Sync => "sync",
            FileCommand::Hexdump(..) => "hexdump",
            FileCommand::Sha256(_) => "sha256",
        }
    }

    /// Carry out a file command, printing its output or one error line.
    pub fn run(s: &mut Session, cmd: FileCommand) {
        let what = name(&cmd);
        let result = session(s).and_then(|c| execute(&mut Fs(c), cmd));
        if let Err(e) = result {
            println!("{what}: {e}");
            if e.starts_with("fs session") {
                s.0 = None;
            }
        }
    }

    fn execute(f: &mut Fs, cmd: FileCommand) -> R<()> {
        match cmd {
            FileCommand::Ls { long, path } => {
                let (k, size, _, modified, _) = f.stat(&path)?;
                let mut entries = if k == kind::DIR {
                    f.list(&path)?
                } else {
                    Vec::from([(base_name(&path).to_string(), k, size, modified)])
                };
                entries.sort_by_key(|a| a.0.to_lowercase());
                for (name, k, size, modified) in entries {
                    let slash = if k == kind::DIR { "/" } else { "" };
                    if long {
                        let t = if k == kind::DIR { "d" } else { "-" };
                        println!("{t} {size:>12} {}  {name}{slash}", date(modified));
                    } else {
                        println!("{name}{slash}");
                    }
                }
            }
            FileCommand::Cat(path) => {
                let mut pending: Vec<u8> = Vec::new();
                f.stream(&path, |d| {
                    pending.extend_from_slice(d);
                    // Print whole UTF-8 characters; keep a cut one.
                    let valid = match core::str::from_utf8(&pending) {
                        Ok(_) => pending.len(),
                        Err(e) if e.error_len().is_none() => e.valid_up_to(),
                        Err(_) => pending.len(),
                    };
                    print!("{}", String::from_utf8_lossy(&pending[..valid]));
                    pending.drain(..valid);
                })?;
                if !pending.is_empty() {
                    print!("{}", String::from_utf8_lossy(&pending));
                }
            }
            FileCommand::Write(path, text) => f.put_text(&path, &text, flags::TRUNCATE)?,
            FileCommand::Append(path, text) => f.put_text(&path, &text, flags::APPEND)?,
            FileCommand::Cp(src, dst) => {
                let dst = if f.is_dir(&dst) { join(&dst, base_name(&src)) } else { dst };
                let (from, _) = f.open(&src, flags::READ)?;
                let to = match f.open(&dst, flags::WRITE | flags::CREATE | flags::TRUNCATE) {
                    Ok((h, _)) => h,
                    Err(e) => {
                        let _ = f.close(from);
                        return Err(e);
                    }
                };
                let mut at = 0u64;
                let result = loop {
                    match f.read(from, at, MAX_TRANSFER as u32) {
                        Ok(d) if d.is_empty() => break Ok(()),
                        Ok(d) => {
                            at += d.len() as u64;
                            if let Err(e) = f.write(to, CURRENT, d) {
                                break Err(e);
                            }
                        }
                        Err(e) => break Err(e),
                    }
                };
                let _ = f.close(from);
                let _ = f.close(to);
                result?;
            }
            FileCommand::Mv(old, new) => {
                let new = if f.is_dir(&new) { join(&new, base_name(&old)) } else { new };
                done(f.0.rename(old, new))?;
            }
            FileCommand::Rm(path) => {
                if f.is_dir(&path) {
                    return Err(format!("{path}: is a directory (use rmdir)"));
                }
                done(f.0.remove(path))?;
            }
            FileCommand::Mkdir(path) => done(f.0.mkdir(path))?,
            FileCommand::Rmdir(path) => {
                let (k, ..) = f.stat(&path)?;
                if k != kind::DIR {
                    return Err(format!("{path}: not a directory"));
                }
                done(f.0.remove(path))?;
            }
            FileCommand::Stat(path) => {
                let (k, size, created, modified, accessed) = f.stat(&path)?;
                let kind = if k == kind::DIR { "directory" } else { "file" };
                println!("{path}: {kind}, {size} bytes");
                println!("  created  {}", date(created));
                println!("  modified {}", date(modified));
                println!("  accessed {}", date(accessed).split(' ').next().unwrap_or("-"));
            }
            FileCommand::Df => match answer(f.0.volume())? {
                Reply::VolumeInfo { total, free, cluster, kind, label } => {
                    let used = total.saturating_sub(free);
                    let pct = (used * 100).checked_div(total).unwrap_or(0);
                    println!(
                        "{kind} \"{label}\": {} KiB, {} KiB used ({pct}%), {} KiB free, {cluster}-byte clusters",
                        total / 1024,
                        used / 1024,
                        free / 1024
                    );
                }
                r => return Err(odd(r)),
            },
            FileCommand::Sync => {
                done(f.0.sync())?;
                println!("synced");
            }
            FileCommand::Hexdump(path, offset, length) => {
                let (h, _) = f.open(&path, flags::READ)?;
                let mut left = length.unwrap_or(HEXDUMP_DEFAULT);
                let mut at = offset;
                let result = loop {
                    if left == 0 {
                        break Ok(());
                    }
                    let n = left.min(MAX_TRANSFER as u64) as u32;
                    match f.read(h, at, n) {
                        Ok(d) if d.is_empty() => break Ok(()),
                        Ok(d) => {
                            for line in dump(at, &d) {
                                println!("{line}");
                            }
                            at += d.len() as u64;
                            left -= d.len() as u64;
                        }
                        Err(e) => break Err(e),
                    }
                };
                let _ = f.close(h);
                result?;
            }
            FileCommand::Sha256(path) => {
                let mut hasher = Sha256::new();
                f.stream(&path, |d| hasher.update(d))?;
                println!("{}  {path}", hex(&hasher.finalize()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parse as the shell does: the arguments split, quotes honoured.
    fn parse(word: &str, rest: &str) -> Result<FileCommand, String> {
        let words = crate::args::split(rest).expect("quotes");
        let args: Vec<&str> = words.iter().map(String::as_str).collect();
        super::parse(word, &args)
    }

    #[test]
    fn file_commands_parse() {
        assert_eq!(parse("ls", ""), Ok(FileCommand::Ls { long: false, path: "/".into() }));
        assert_eq!(parse("ls", "-l /docs"), Ok(FileCommand::Ls { long: true, path: "/docs".into() }));
        assert_eq!(parse("ls", "docs"), Ok(FileCommand::Ls { long: false, path: "/docs".into() }));
        assert_eq!(parse("cat", "/a"), Ok(FileCommand::Cat("/a".into())));
        assert_eq!(parse("write", "/a hello  world"), Ok(FileCommand::Write("/a".into(), "hello world".into())));
        assert_eq!(parse("write", "/a \"hello  world\""), Ok(FileCommand::Write("/a".into(), "hello  world".into())));
        assert_eq!(parse("cat", "\"/my docs/a b.txt\""), Ok(FileCommand::Cat("/my docs/a b.txt".into())));
        assert_eq!(parse("append", "/a x"), Ok(FileCommand::Append("/a".into(), "x".into())));
        assert_eq!(parse("cp", "/a /b"), Ok(FileCommand::Cp("/a".into(), "/b".into())));
        assert_eq!(parse("mv", "/a /d/"), Ok(FileCommand::Mv("/a".into(), "/d/".into())));
        assert_eq!(parse("hexdump", "/a"), Ok(FileCommand::Hexdump("/a".into(), 0, None)));
        assert_eq!(parse("hexdump", "/a 0x10 32"), Ok(FileCommand::Hexdump("/a".into(), 16, Some(32))));
        assert_eq!(parse("sha256", "/a"), Ok(FileCommand::Sha256("/a".into())));
        assert_eq!(parse("df", ""), Ok(FileCommand::Df));
        assert_eq!(parse("sync", ""), Ok(FileCommand::Sync));
    }

    #[test]
    fn bad_file_commands_get_one_line() {
        for (w, rest, msg) in [
            ("cat", "", "usage: cat PATH"),
            ("cat", "/a /b", "usage: cat PATH"),
            ("write", "/a", "usage: write PATH TEXT"),
            ("ls", "-x", "usage: ls"),
            ("df", "now", "usage: df"),
            ("hexdump", "/a -5", "hexdump: bad offset '-5'"),
            ("hexdump", "/a +1", "hexdump: bad offset '+1'"),
            ("hexdump", "/a 1 5.", "hexdump: bad length '5.'"),
            ("hexdump", "/a 0x", "hexdump: bad offset '0x'"),
            ("mv", "/a", "usage: mv OLD NEW"),
        ] {
            let e = parse(w, rest).unwrap_err();
            assert!(e.contains(msg), "{w} {rest}: {e}");
            assert!(!e.contains('\n'));
        }
    }

    #[test]
    fn helpers() {
        assert_eq!(date(1_700_000_000), "2023-11-14 22:13:20");
        assert_eq!(date(315_532_800), "1980-01-01 00:00:00");
        assert_eq!(date(0), "-");
        assert_eq!(base_name("/a/b.txt"), "b.txt");
        assert_eq!(join("/d", "x"), "/d/x");
        assert_eq!(join("/", "x"), "/x");
        assert_eq!(hex(&[0, 0xab]), "00ab");
        let d = dump(16, b"Hello, world!\x00\x01\x02\x03");
        assert_eq!(d[0], "00000010  48 65 6c 6c 6f 2c 20 77  6f 72 6c 64 21 00 01 02  |Hello, world!...|");
        assert_eq!(d[1], "00000020  03                                                |.|");
    }
}
