//! A running Kintsugi machine under QEMU, driven through its serial console.
//!
//! A reader thread collects everything the guest prints. `expect` waits for
//! text to appear after a cursor (so each wait only sees new output);
//! `command` types a line at the shell prompt, as a user would, and returns
//! what the command printed. A kernel panic anywhere ends every wait with
//! an error carrying the console.

use crate::image::Image;
use crate::monitor::Monitor;
use crate::qemu::QemuConfig;
use std::io::{Read, Write};
use std::process::{Child, ChildStdin, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The shell's prompt.
pub const PROMPT: &str = "kintsugi> ";
/// What the kernel prints when it panics.
pub const PANIC_MARK: &str = "KERNEL PANIC";

/// Why a wait failed.
#[derive(Debug)]
pub enum MachineError {
    /// QEMU could not be started.
    Start(String),
    /// The text did not appear in time.
    Timeout {
        /// What was awaited.
        waiting_for: String,
        /// The console so far.
        console: String,
    },
    /// The kernel panicked.
    Panic(String),
    /// QEMU ended while we waited for text.
    Exited(String),
}

impl std::fmt::Display for MachineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MachineError::Start(e) => write!(f, "cannot start QEMU: {e}"),
            MachineError::Timeout { waiting_for, console } => {
                write!(f, "timed out waiting for {waiting_for:?}; console:\n{console}")
            }
            MachineError::Panic(c) => write!(f, "the kernel panicked; console:\n{c}"),
            MachineError::Exited(c) => write!(f, "QEMU exited; console:\n{c}"),
        }
    }
}

impl std::error::Error for MachineError {}

/// Turns the serial output into the transcript tests read: a line the
/// shell clears to redraw it (`CR ESC [ K`, when other programs print while
/// a line is typed) is taken out, as a terminal shows it; other escape
/// sequences and carriage returns are dropped. Works across reads.
#[derive(Default)]
struct Transcript {
    /// 0: text; 1: after ESC; 2: in `ESC [`.
    state: u8,
    /// A CR came just before the escape sequence.
    after_cr: bool,
    /// The parameters of the `ESC [` sequence so far.
    params: String,
}

impl Transcript {
    /// Add `text` to `out`; returns the lowest position at which `out`
    /// was cut back (text after it was replaced), if it was.
    fn add(&mut self, text: &str, out: &mut String) -> Option<usize> {
        let mut cut = None;
        for c in text.chars() {
            match (self.state, c) {
                (0, '\x1b') => {
                    self.state = 1;
                    self.params.clear();
                }
                (0, '\r') => self.after_cr = true,
                (0, c) => {
                    self.after_cr = false;
                    out.push(c);
                }
                (1, '[') => self.state = 2,
                (1, _) => self.state = 0,
                (_, '\x40'..='\x7e') => {
                    self.state = 0;
                    if c == 'K' && self.after_cr && (self.params.is_empty() || self.params == "0") {
                        let line_start = out.rfind('\n').map_or(0, |i| i + 1);
                        out.truncate(line_start);
                        cut = Some(cut.map_or(line_start, |c: usize| c.min(line_start)));
                    }
                    self.after_cr = false;
                }
                (_, c) => self.params.push(c),
            }
        }
        cut
    }
}

#[derive(Default)]
struct Console {
    text: String,
    raw: String,
    /// The lowest position the text was cut back to since the machine
    /// last looked (its cursors beyond it are moved back).
    cut: Option<usize>,
    closed: bool,
}

/// A booted machine.
pub struct Machine {
    child: Child,
    stdin: Option<ChildStdin>,
    console: Arc<(Mutex<Console>, Condvar)>,
    cursor: usize,
    started: Instant,
    /// A folder (its disks) removed when the machine is dropped.
    scratch: Option<std::path::PathBuf>,
    /// Text typed since the last Enter, and the cursor when typing began.
    typing: Option<(String, usize)>,
    /// The last line typed with Enter, and the cursor when typing began:
    /// the next wait for a prompt first waits for its echo.
    entered: Option<(String, usize)>,
    /// The machine's own QEMU monitor socket, for the stall report at a
    /// timeout (removed when the machine is dropped).
    monitor: Option<std::path::PathBuf>,
    /// A stall report is being taken (its own wait must not take another).
    reporting: bool,
}

impl Machine {
    /// Start QEMU for `image` with `cfg`. If `echo`, the console is also
    /// copied to this process's stdout as it arrives.
    pub fn boot(image: &Image, cfg: &QemuConfig, echo: bool) -> Result<Machine, MachineError> {
        // Every machine but an interactive one gets a monitor socket of its
        // own, so a wait that times out can ask the kernel what it is stuck
        // on. A test that asked for a monitor holds that connection (QEMU
        // takes one client per monitor): the machine's is a second one.
        let mut cfg = cfg.clone();
        let monitor = if cfg.interactive {
            None
        } else {
            static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!("kintsugi-{}-{n}.monitor", std::process::id()));
            if cfg.monitor.is_some() {
                cfg.extra.extend(["-monitor".to_string(), format!("unix:{},server,nowait", path.display())]);
            } else {
                cfg.monitor = Some(path.clone());
            }
            Some(path)
        };
        let mut cmd = cfg.command(image);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| MachineError::Start(format!("{}: {e}", crate::qemu::QEMU)))?;
        let started = Instant::now();
        let console = Arc::new((Mutex::new(Console::default()), Condvar::new()));
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let sink = console.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut transcript = Transcript::default();
            let mut pending: Vec<u8> = Vec::new();
            loop {
                let n = match stdout.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if echo {
                    let mut out = std::io::stdout();
                    let _ = out.write_all(&buf[..n]);
                    let _ = out.flush();
                }
                let (lock, cv) = &*sink;
                // A character may be split between reads: keep its start.
                pending.extend_from_slice(&buf[..n]);
                let complete = match std::str::from_utf8(&pending) {
                    Ok(_) => pending.len(),
                    Err(e) if e.error_len().is_none() => e.valid_up_to(),
                    Err(_) => pending.len(),
                };
                let raw = String::from_utf8_lossy(&pending[..complete]).into_owned();
                pending.drain(..complete);
                let mut c = lock.lock().unwrap();
                let c = &mut *c;
                if let Some(at) = transcript.add(&raw, &mut c.text) {
                    c.cut = Some(c.cut.map_or(at, |old| old.min(at)));
                }
                c.raw.push_str(&raw);
                cv.notify_all();
            }
            let (lock, cv) = &*sink;
            lock.lock().unwrap().closed = true;
            cv.notify_all();
        });
        let errsink = console.clone();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            if !s.trim().is_empty() {
                let (lock, cv) = &*errsink;
                lock.lock().unwrap().text.push_str(&format!("\n[qemu stderr] {s}"));
                cv.notify_all();
            }
        });
        let stdin = child.stdin.take();
        Ok(Machine {
            child,
            stdin,
            console,
            cursor: 0,
            started,
            scratch: None,
            typing: None,
            entered: None,
            monitor,
            reporting: false,
        })
    }

    /// Everything printed so far.
    pub fn console(&self) -> String {
        self.console.0.lock().unwrap().text.clone()
    }

    /// Bytes the serial port has sent so far.
    pub fn output_len(&self) -> usize {
        self.console.0.lock().unwrap().raw.len()
    }

    /// Wait until the serial port has sent more than `len` bytes; whether
    /// it did within `timeout`.
    pub fn wait_output_past(&self, len: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.console;
        let mut c = lock.lock().unwrap();
        while c.raw.len() <= len && !c.closed {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            c = cv.wait_timeout(c, deadline - now).unwrap().0;
        }
        c.raw.len() > len
    }

    /// The last `chars` characters the serial port sent, escape sequences
    /// and carriage returns included (to tell what a garbled line was).
    pub fn raw_tail(&self, chars: usize) -> String {
        let c = self.console.0.lock().unwrap();
        let skip = c.raw.chars().count().saturating_sub(chars);
        c.raw.chars().skip(skip).collect()
    }

    /// The whole lines printed after position `from` of the console text
    /// and the position after them (a line still being printed, which the
    /// shell may yet clear and draw again, is left for the next call).
    pub fn lines_since(&self, from: usize) -> (String, usize) {
        let c = self.console.0.lock().unwrap();
        let from = from.min(c.text.len());
        match c.text[from..].rfind('\n') {
            Some(end) => (c.text[from..from + end + 1].to_string(), from + end + 1),
            None => (String::new(), from),
        }
    }

    /// The console as a terminal shows it: one string per line, after
    /// carriage returns, erasing (`ESC [ K`), backspaces and cursor moves
    /// (`ESC [ n C`, `ESC [ n D`) took effect.
    pub fn screen_lines(&self) -> Vec<String> {
        render_lines(&self.console.0.lock().unwrap().raw)
    }

    /// Time since QEMU was started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Move cursors back to where the transcript was cut (the text past
    /// it was a line the shell cleared, replaced by what came after).
    fn follow_cuts(cursor: &mut usize, typing: &mut [Option<(String, usize)>; 2], c: &mut Console) {
        if let Some(at) = c.cut.take() {
            *cursor = (*cursor).min(at);
            for (_, from) in typing.iter_mut().flatten() {
                *from = (*from).min(at);
            }
        }
    }

    /// Wait until `pattern` appears after the cursor; move the cursor past
    /// it and return the text from the old cursor to the end of the match.
    pub fn expect(&mut self, pattern: &str, timeout: Duration) -> Result<String, MachineError> {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.console;
        let mut c = lock.lock().unwrap();
        loop {
            let mut typing = [self.typing.take(), self.entered.take()];
            Self::follow_cuts(&mut self.cursor, &mut typing, &mut c);
            [self.typing, self.entered] = typing;
            if c.text.contains(PANIC_MARK) {
                return Err(MachineError::Panic(c.text.clone()));
            }
            let from = self.cursor.min(c.text.len());
            if let Some(pos) = c.text[from..].find(pattern) {
                let end = from + pos + pattern.len();
                let seen = c.text[from..end].to_string();
                self.cursor = end;
                return Ok(seen);
            }
            if c.closed {
                return Err(MachineError::Exited(c.text.clone()));
            }
            let now = Instant::now();
            if now >= deadline {
                drop(c);
                return Err(self.timed_out(pattern));
            }
            c = cv.wait_timeout(c, deadline - now).unwrap().0;
        }
    }

    /// Wait until `text` appears anywhere in the console (not only after
    /// the cursor, which does not move).
    pub fn wait_for_text(&mut self, text: &str, timeout: Duration) -> Result<(), MachineError> {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.console;
        let mut c = lock.lock().unwrap();
        loop {
            if c.text.contains(PANIC_MARK) {
                return Err(MachineError::Panic(c.text.clone()));
            }
            if c.text.contains(text) {
                return Ok(());
            }
            if c.closed {
                return Err(MachineError::Exited(c.text.clone()));
            }
            let now = Instant::now();
            if now >= deadline {
                drop(c);
                return Err(self.timed_out(text));
            }
            c = cv.wait_timeout(c, deadline - now).unwrap().0;
        }
    }

    /// Wait until a whole line starting with `prefix` appears anywhere in
    /// the console; return that line.
    pub fn wait_for_line(&mut self, prefix: &str, timeout: Duration) -> Result<String, MachineError> {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.console;
        let mut c = lock.lock().unwrap();
        loop {
            if let Some(at) = c.text.find(prefix) {
                if let Some(len) = c.text[at..].find('\n') {
                    return Ok(c.text[at..at + len].to_string());
                }
            }
            if c.text.contains(PANIC_MARK) {
                return Err(MachineError::Panic(c.text.clone()));
            }
            if c.closed {
                return Err(MachineError::Exited(c.text.clone()));
            }
            let now = Instant::now();
            if now >= deadline {
                drop(c);
                return Err(self.timed_out(prefix));
            }
            c = cv.wait_timeout(c, deadline - now).unwrap().0;
        }
    }

    /// Type raw text into the console.
    pub fn send(&mut self, text: &str) {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = stdin.write_all(text.as_bytes());
            let _ = stdin.flush();
        }
        let cursor = self.cursor;
        for c in text.chars() {
            let (line, _) = self.typing.get_or_insert_with(|| (String::new(), cursor));
            if c == '\r' {
                self.entered = self.typing.take();
            } else {
                line.push(c);
            }
        }
    }

    /// Wait until the line last typed with Enter is echoed whole (so a
    /// prompt the shell drew again before it is not taken for the next
    /// one). Lines with control characters (arrow keys, Tab, ...) are
    /// echoed as they edit the line, so they are not waited for.
    fn wait_echo(&mut self, timeout: Duration) -> Result<(), MachineError> {
        let Some((line, from)) = self.entered.take() else { return Ok(()) };
        if line.chars().any(|c| c.is_control()) {
            return Ok(());
        }
        let pattern = format!("{line}\n");
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.console;
        let mut c = lock.lock().unwrap();
        let mut from = from;
        loop {
            let mut typing = [self.typing.take(), Some((String::new(), from))];
            Self::follow_cuts(&mut self.cursor, &mut typing, &mut c);
            self.typing = typing[0].take();
            from = typing[1].as_ref().map_or(from, |(_, f)| *f);
            if c.text.contains(PANIC_MARK) {
                return Err(MachineError::Panic(c.text.clone()));
            }
            let from = from.min(c.text.len());
            if let Some(pos) = c.text[from..].find(&pattern) {
                self.cursor = self.cursor.max(from + pos + pattern.len());
                return Ok(());
            }
            if c.closed {
                return Err(MachineError::Exited(c.text.clone()));
            }
            let now = Instant::now();
            if now >= deadline {
                drop(c);
                return Err(self.timed_out(&pattern));
            }
            c = cv.wait_timeout(c, deadline - now).unwrap().0;
        }
    }

    /// Wait for the shell prompt (after the echo of the line last typed
    /// with Enter, if any).
    pub fn wait_prompt(&mut self, timeout: Duration) -> Result<(), MachineError> {
        self.wait_echo(timeout)?;
        self.expect(PROMPT, timeout).map(|_| ())
    }

    /// Type `line` at the prompt (which must already be showing), wait for
    /// the next prompt, and return what the command printed.
    ///
    /// The shell echoes the line as it is typed and, when other programs
    /// print meanwhile, shows their lines and then its prompt and the line
    /// again: the command starts where the whole line is echoed with the
    /// Enter that ends it, and its output runs to the next prompt.
    pub fn command(&mut self, line: &str, timeout: Duration) -> Result<String, MachineError> {
        self.send(line);
        self.send("\r");
        if line.chars().any(|c| c.is_control()) {
            self.expect(&format!("{line}\n"), timeout)?;
        } else {
            self.wait_echo(timeout)?;
        }
        let out = self.expect(PROMPT, timeout)?;
        let out = out.strip_suffix(PROMPT).unwrap_or(&out);
        Ok(out.to_string())
    }

    /// Wait for QEMU to exit (the guest powered off).
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus, MachineError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the reader thread drain what is left.
                let (lock, cv) = &*self.console;
                let c = lock.lock().unwrap();
                let _ = cv.wait_timeout_while(c, Duration::from_secs(2), |c| !c.closed);
                let text = self.console();
                if text.contains(PANIC_MARK) {
                    return Err(MachineError::Panic(text));
                }
                return Ok(status);
            }
            if self.console().contains(PANIC_MARK) {
                return Err(MachineError::Panic(self.console()));
            }
            if Instant::now() >= deadline {
                return Err(self.timed_out("QEMU to exit"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Type `poweroff` and wait for QEMU to exit.
    pub fn power_off(&mut self, timeout: Duration) -> Result<(), MachineError> {
        self.send("poweroff\r");
        self.wait_exit(timeout).map(|_| ())
    }

    /// A wait for `waiting_for` timed out: take a stall report (see
    /// [`Machine::stall_report`]) so the error's console says what the
    /// kernel and every process were doing.
    fn timed_out(&mut self, waiting_for: &str) -> MachineError {
        if !self.reporting {
            self.reporting = true;
            if let Err(e) = self.stall_report() {
                eprintln!("no stall report: {e}");
            }
            self.reporting = false;
        }
        MachineError::Timeout { waiting_for: waiting_for.to_string(), console: self.console() }
    }

    /// An NMI through QEMU's monitor: the kernel prints its stall report
    /// (where the CPU is, what every process waits for; see
    /// `exokernel/src/stall_report.rs`) into the console, and carries on.
    /// Waits up to 10 s for the report's end. Fails when the machine has no
    /// monitor.
    pub fn stall_report(&mut self) -> Result<(), String> {
        let Some(path) = self.monitor.clone() else { return Err("the machine has no monitor".into()) };
        if let Ok(Some(_)) = self.child.try_wait() {
            return Err("QEMU has exited".into());
        }
        let from = self.console().len();
        let mut mon = Monitor::connect(&path, Duration::from_secs(5)).map_err(|e| format!("monitor: {e}"))?;
        mon.command("nmi").map_err(|e| format!("monitor nmi: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let (lock, cv) = &*self.console;
        let mut c = lock.lock().unwrap();
        while !c.text.get(from..).is_some_and(|t| t.contains("STALL end")) {
            let now = Instant::now();
            if now >= deadline || c.closed {
                return Err("the kernel printed no stall report within 10 s of the NMI".into());
            }
            c = cv.wait_timeout(c, deadline - now).unwrap().0;
        }
        Ok(())
    }

    /// Remove `dir` (the machine's own disks) once the machine is dropped.
    pub fn remove_on_drop(&mut self, dir: std::path::PathBuf) {
        self.scratch = Some(dir);
    }

    /// Stop QEMU at once (like pulling the plug).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // What QEMU wrote before it died is still in the pipe: let the
        // reader thread take it all, so that `console()` after a cut says
        // everything the guest printed (a power-cut test bounds what kv may
        // hold by the last op the console shows as sent).
        let (lock, cv) = &*self.console;
        let c = lock.lock().unwrap();
        let _ = cv.wait_timeout_while(c, Duration::from_secs(5), |c| !c.closed);
    }
}

/// Render terminal output into its lines (see [`Machine::screen_lines`]).
pub fn render_lines(raw: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line: Vec<char> = Vec::new();
    let mut col = 0usize;
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => {
                lines.push(line.iter().collect::<String>().trim_end().to_string());
                line.clear();
                col = 0;
            }
            '\r' => col = 0,
            '\x08' => col = col.saturating_sub(1),
            '\x1b' => {
                if chars.peek() != Some(&'[') {
                    chars.next();
                    continue;
                }
                chars.next();
                let mut n = String::new();
                let mut fin = ' ';
                for d in chars.by_ref() {
                    if d.is_ascii_digit() || d == ';' {
                        n.push(d);
                    } else {
                        fin = d;
                        break;
                    }
                }
                let n: usize = n.parse().unwrap_or(1).max(1);
                match fin {
                    'K' => line.truncate(col),
                    'C' => col += n,
                    'D' => col = col.saturating_sub(n),
                    _ => {}
                }
            }
            c => {
                while line.len() < col {
                    line.push(' ');
                }
                if col < line.len() {
                    line[col] = c;
                } else {
                    line.push(c);
                }
                col += 1;
            }
        }
    }
    lines.push(line.iter().collect::<String>().trim_end().to_string());
    lines
}

impl Drop for Machine {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
        if let Some(dir) = self.scratch.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some(path) = self.monitor.take() {
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_file(path.with_extension("ppm"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{render_lines, Transcript};

    #[test]
    fn terminal_rendering() {
        let raw = "kintsugi> echo par\r\x1b[K[kv] up\r\n\r\x1b[Kkintsugi> echo par\x1b[1Dx\x1b[1C\r\r\n";
        assert_eq!(render_lines(raw), ["[kv] up", "kintsugi> echo pax", ""]);
    }

    #[test]
    fn transcript_across_reads() {
        let mut t = Transcript::default();
        let mut out = String::from("old\n");
        assert_eq!(t.add("kintsugi> ec\r", &mut out), None);
        assert_eq!(t.add("\x1b[K[kv] up\r\n\x1b[", &mut out), Some(4));
        assert_eq!(out, "old\n[kv] up\n");
        assert_eq!(t.add("3Dok\r\x1b[Kkintsugi> echo\x08\r\n", &mut out), Some(12));
        assert_eq!(out, "old\n[kv] up\nkintsugi> echo\x08\n");
    }
}
