//! QEMU's human monitor over a Unix socket: typing on the machine's PS/2
//! keyboard (`sendkey`) and taking pictures of its screen (`screendump`),
//! as a person at the PC would see it.

use crate::machine::Machine;
use crate::screen::Picture;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A monitor session.
pub struct Monitor {
    stream: UnixStream,
    scratch: PathBuf,
}

const PROMPT: &str = "(qemu) ";

/// How long [`Monitor::press`] waits for the console to show a key.
pub const KEY_ECHO_WAIT: Duration = Duration::from_secs(20);

impl Monitor {
    /// Connect to the monitor socket at `path` (waiting for QEMU to create
    /// it); screendumps go to files beside it.
    pub fn connect(path: &Path, timeout: Duration) -> std::io::Result<Monitor> {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut m = Monitor { stream, scratch: path.with_extension("ppm") };
        m.read_to_prompt()?;
        Ok(m)
    }

    fn read_to_prompt(&mut self) -> std::io::Result<String> {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&got).ends_with(PROMPT) {
            let n = self.stream.read(&mut buf)?;
            if n == 0 {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the monitor closed"));
            }
            got.extend_from_slice(&buf[..n]);
        }
        Ok(String::from_utf8_lossy(&got).into_owned())
    }

    /// Run one monitor command; returns what it printed.
    pub fn command(&mut self, cmd: &str) -> std::io::Result<String> {
        self.stream.write_all(format!("{cmd}\n").as_bytes())?;
        self.read_to_prompt()
    }

    /// Press and release one key (QEMU's key names, e.g. `a`, `shift-a`,
    /// `ret`, `up`, `ctrl-c`).
    pub fn sendkey(&mut self, key: &str) -> std::io::Result<()> {
        self.command(&format!("sendkey {key}")).map(|_| ())
    }

    /// Type `text` on the keyboard (US layout), key by key; `\n` is Enter.
    /// Each key goes once the machine's serial console has shown something
    /// since the one before (the shell echoes every key), as a person
    /// watching the screen types: at most one key waits in the PS/2
    /// keyboard, whose queue in QEMU holds 16 bytes and drops the rest.
    /// Keys sent at a fixed pace (one per 30 ms) overflowed it whenever a
    /// busy host left the guest unscheduled for a moment, and lost keys,
    /// or lost a modifier's release and turned the keys after it into
    /// control keys (CI: `echo cleared` after Ctrl-U came out empty).
    pub fn type_text(&mut self, m: &Machine, text: &str) -> std::io::Result<()> {
        for c in text.chars() {
            let key = key_name(c)
                .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("no key types {c:?}")))?;
            self.press(m, &key)?;
        }
        Ok(())
    }

    /// Press and release `key` (as [`Monitor::sendkey`]), then wait until
    /// the serial console shows something more (up to [`KEY_ECHO_WAIT`]; a
    /// key that shows nothing, such as Caps Lock, costs that long).
    pub fn press(&mut self, m: &Machine, key: &str) -> std::io::Result<()> {
        let before = m.output_len();
        self.sendkey(key)?;
        m.wait_output_past(before, KEY_ECHO_WAIT);
        Ok(())
    }

    /// A picture of the screen now.
    pub fn screendump(&mut self) -> std::io::Result<Picture> {
        let _ = std::fs::remove_file(&self.scratch);
        let out = self.command(&format!("screendump {}", self.scratch.display()))?;
        let bytes = std::fs::read(&self.scratch)
            .map_err(|e| std::io::Error::new(e.kind(), format!("screendump: {e}; monitor said {out:?}")))?;
        Picture::from_ppm(&bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }
}

/// QEMU's name for the key (with `shift-`) that types `c` on a US layout.
pub fn key_name(c: char) -> Option<String> {
    const PLAIN: &[(char, &str)] = &[
        (' ', "spc"),
        ('\n', "ret"),
        ('-', "minus"),
        ('=', "equal"),
        ('[', "bracket_left"),
        (']', "bracket_right"),
        ('\\', "backslash"),
        (';', "semicolon"),
        ('\'', "apostrophe"),
        ('`', "grave_accent"),
        (',', "comma"),
        ('.', "dot"),
        ('/', "slash"),
        ('\t', "tab"),
    ];
    const SHIFTED: &[(char, &str)] = &[
        ('!', "1"),
        ('@', "2"),
        ('#', "3"),
        ('$', "4"),
        ('%', "5"),
        ('^', "6"),
        ('&', "7"),
        ('*', "8"),
        ('(', "9"),
        (')', "0"),
        ('_', "minus"),
        ('+', "equal"),
        ('{', "bracket_left"),
        ('}', "bracket_right"),
        ('|', "backslash"),
        (':', "semicolon"),
        ('"', "apostrophe"),
        ('~', "grave_accent"),
        ('<', "comma"),
        ('>', "dot"),
        ('?', "slash"),
    ];
    if c.is_ascii_lowercase() || c.is_ascii_digit() {
        return Some(c.to_string());
    }
    if c.is_ascii_uppercase() {
        return Some(format!("shift-{}", c.to_ascii_lowercase()));
    }
    if let Some((_, k)) = PLAIN.iter().find(|(p, _)| *p == c) {
        return Some(k.to_string());
    }
    SHIFTED.iter().find(|(p, _)| *p == c).map(|(_, k)| format!("shift-{k}"))
}

#[cfg(test)]
mod tests {
    use super::key_name;

    #[test]
    fn keys_for_text() {
        assert_eq!(key_name('a').unwrap(), "a");
        assert_eq!(key_name('K').unwrap(), "shift-k");
        assert_eq!(key_name('"').unwrap(), "shift-apostrophe");
        assert_eq!(key_name(' ').unwrap(), "spc");
        assert!(key_name('é').is_none());
    }
}
