//! The shell's line editor, for the serial console and the screen alike
//! (both send the same bytes: UTF-8 text, control characters, `ESC [`
//! sequences for the arrow keys).
//!
//! - Typing inserts at the cursor; Left/Right, Home/End (and Ctrl-A/E)
//!   move it; Backspace and Delete erase; Ctrl-U clears the line; Ctrl-C
//!   abandons it; Enter (CR, LF, or CR LF) ends it.
//! - Up/Down walk the history of entered lines (the line being typed is
//!   kept and comes back past the newest).
//! - Tab completes the word before the cursor through a [`Completer`]:
//!   what all proposals share is inserted; with several proposals and
//!   nothing to insert, they are listed under the line.
//! - Text is UTF-8: characters are decoded from the bytes; invalid bytes
//!   are dropped. A line may be [`MAX_LINE`] bytes; what is typed past that
//!   is not taken, and Enter then refuses the line ([`Event::TooLong`])
//!   instead of running part of it.
//!
//! The editor writes what the terminal must show into an output buffer:
//! the echo, and redraws (`CR`, prompt, line, `ESC [ K`, cursor moves),
//! which [`LineEditor::redraw`] also produces after other output.

use crate::args::{quote, split_words};
use crate::complete::{common_prefix, Completer};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

/// Longest line in bytes: a 64 KiB value with its command and names.
pub const MAX_LINE: usize = 66 * 1024;
/// Lines the history keeps.
pub const HISTORY: usize = 200;

/// What a keystroke did.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// Nothing to act on.
    None,
    /// A whole line was entered.
    Line(String),
    /// Ctrl-C.
    Interrupt,
    /// Enter on a line longer than [`MAX_LINE`] bytes: refused.
    TooLong,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum Escape {
    #[default]
    None,
    /// After ESC.
    Start,
    /// After `ESC [` (with a numeric parameter so far).
    Csi(u16),
    /// After `ESC O`.
    Ss3,
}

/// Editor state.
#[derive(Default)]
pub struct LineEditor {
    prompt: String,
    chars: Vec<char>,
    /// Bytes the line takes in UTF-8.
    bytes: usize,
    /// Cursor position, in characters.
    cursor: usize,
    /// Characters were refused for length.
    overflow: bool,
    escape: Escape,
    utf8: [u8; 4],
    utf8_len: usize,
    utf8_need: usize,
    last_cr: bool,
    history: Vec<String>,
    /// Position while walking the history.
    browsing: Option<usize>,
    /// The line being typed before walking the history.
    stash: Vec<char>,
}

impl LineEditor {
    /// An empty editor with no history.
    pub fn new() -> LineEditor {
        LineEditor::default()
    }

    /// Set the prompt that redraws show (the caller prints it first).
    pub fn set_prompt(&mut self, prompt: &str) {
        self.prompt = String::from(prompt);
    }

    /// The partial line.
    pub fn pending(&self) -> String {
        self.chars.iter().collect()
    }

    /// The lines entered so far, oldest first.
    pub fn history(&self) -> &[String] {
        &self.history
    }

    /// Show the prompt and the line again, cursor in place, on the current
    /// terminal row (after other output cleared it).
    pub fn redraw(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"\r\x1b[K");
        out.extend_from_slice(self.prompt.as_bytes());
        self.push_chars(out, &self.chars);
        self.move_left(out, self.chars.len() - self.cursor);
    }

    fn push_chars(&self, out: &mut Vec<u8>, chars: &[char]) {
        let mut buf = [0u8; 4];
        for c in chars {
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }

    fn move_left(&self, out: &mut Vec<u8>, n: usize) {
        if n > 0 {
            let mut s = String::new();
            let _ = write!(s, "\x1b[{n}D");
            out.extend_from_slice(s.as_bytes());
        }
    }

    fn move_right(&self, out: &mut Vec<u8>, n: usize) {
        if n > 0 {
            let mut s = String::new();
            let _ = write!(s, "\x1b[{n}C");
            out.extend_from_slice(s.as_bytes());
        }
    }

    fn reset(&mut self) {
        self.chars.clear();
        self.bytes = 0;
        self.cursor = 0;
        self.overflow = false;
        self.browsing = None;
    }

    /// Replace the whole line and redraw it (cursor at the end).
    fn replace(&mut self, chars: Vec<char>, out: &mut Vec<u8>) {
        self.bytes = chars.iter().map(|c| c.len_utf8()).sum();
        self.chars = chars;
        self.cursor = self.chars.len();
        self.overflow = false;
        self.redraw(out);
    }

    /// Feed one byte; `out` receives what to show; `completer` serves Tab.
    pub fn feed(&mut self, b: u8, out: &mut Vec<u8>, completer: &dyn Completer) -> Event {
        let after_cr = core::mem::take(&mut self.last_cr);
        if self.escape != Escape::None {
            self.escape_byte(b, out);
            return Event::None;
        }
        if self.utf8_need > 0 {
            if b & 0xc0 == 0x80 {
                self.utf8[self.utf8_len] = b;
                self.utf8_len += 1;
                if self.utf8_len == self.utf8_need {
                    self.utf8_need = 0;
                    if let Some(c) =
                        core::str::from_utf8(&self.utf8[..self.utf8_len]).ok().and_then(|s| s.chars().next())
                    {
                        self.insert(c, out);
                    }
                }
                return Event::None;
            }
            self.utf8_need = 0; // broken sequence: dropped
        }
        match b {
            b'\n' if after_cr => Event::None,
            b'\r' | b'\n' => {
                self.last_cr = b == b'\r';
                out.extend_from_slice(b"\r\n");
                let event = if self.overflow { Event::TooLong } else { Event::Line(self.pending()) };
                if let Event::Line(l) = &event {
                    if !l.trim().is_empty() && self.history.last() != Some(l) {
                        if self.history.len() == HISTORY {
                            self.history.remove(0);
                        }
                        self.history.push(l.clone());
                    }
                }
                self.reset();
                event
            }
            0x03 => {
                self.reset();
                out.extend_from_slice(b"^C\r\n");
                Event::Interrupt
            }
            0x08 | 0x7f => {
                self.backspace(out);
                Event::None
            }
            0x15 => {
                self.replace(Vec::new(), out);
                Event::None
            }
            0x01 => {
                self.move_left(out, self.cursor);
                self.cursor = 0;
                Event::None
            }
            0x05 => {
                self.move_right(out, self.chars.len() - self.cursor);
                self.cursor = self.chars.len();
                Event::None
            }
            b'\t' => {
                self.complete(out, completer);
                Event::None
            }
            0x1b => {
                self.escape = Escape::Start;
                Event::None
            }
            0x20..=0x7e => {
                self.insert(b as char, out);
                Event::None
            }
            0xc2..=0xf4 => {
                self.utf8[0] = b;
                self.utf8_len = 1;
                self.utf8_need = match b {
                    0xc2..=0xdf => 2,
                    0xe0..=0xef => 3,
                    _ => 4,
                };
                Event::None
            }
            _ => Event::None,
        }
    }

    fn escape_byte(&mut self, b: u8, out: &mut Vec<u8>) {
        self.escape = match (self.escape, b) {
            (Escape::Start, b'[') => Escape::Csi(0),
            (Escape::Start, b'O') => Escape::Ss3,
            (Escape::Csi(n), b'0'..=b'9') => Escape::Csi(n.saturating_mul(10).saturating_add((b - b'0') as u16)),
            (Escape::Csi(_), b';') => Escape::Csi(0),
            (Escape::Csi(n), 0x40..=0x7e) => {
                self.key(b, n, out);
                Escape::None
            }
            (Escape::Ss3, _) => {
                self.key(b, 0, out);
                Escape::None
            }
            (Escape::Csi(n), _) => Escape::Csi(n),
            _ => Escape::None,
        };
    }

    /// An escape sequence's key: final byte and numeric parameter.
    fn key(&mut self, fin: u8, param: u16, out: &mut Vec<u8>) {
        match (fin, param) {
            (b'A', _) => self.history_step(true, out),
            (b'B', _) => self.history_step(false, out),
            (b'C', _) if self.cursor < self.chars.len() => {
                self.cursor += 1;
                self.move_right(out, 1);
            }
            (b'D', _) if self.cursor > 0 => {
                self.cursor -= 1;
                self.move_left(out, 1);
            }
            (b'H', _) | (b'~', 1 | 7) => {
                self.move_left(out, self.cursor);
                self.cursor = 0;
            }
            (b'F', _) | (b'~', 4 | 8) => {
                self.move_right(out, self.chars.len() - self.cursor);
                self.cursor = self.chars.len();
            }
            (b'~', 3) => self.delete(out),
            _ => {}
        }
    }

    fn insert(&mut self, c: char, out: &mut Vec<u8>) {
        if self.bytes + c.len_utf8() > MAX_LINE {
            self.overflow = true;
            return;
        }
        self.chars.insert(self.cursor, c);
        self.bytes += c.len_utf8();
        self.cursor += 1;
        let tail = &self.chars[self.cursor - 1..];
        self.push_chars(out, tail);
        self.move_left(out, tail.len() - 1);
    }

    fn backspace(&mut self, out: &mut Vec<u8>) {
        if self.cursor == 0 {
            return;
        }
        self.cursor -= 1;
        let c = self.chars.remove(self.cursor);
        self.bytes -= c.len_utf8();
        self.overflow = false;
        out.push(0x08);
        self.erase_tail(out);
    }

    fn delete(&mut self, out: &mut Vec<u8>) {
        if self.cursor == self.chars.len() {
            return;
        }
        let c = self.chars.remove(self.cursor);
        self.bytes -= c.len_utf8();
        self.overflow = false;
        self.erase_tail(out);
    }

    /// Redraw from the cursor to the end after a character went, blanking
    /// the last cell.
    fn erase_tail(&self, out: &mut Vec<u8>) {
        let tail = &self.chars[self.cursor..];
        self.push_chars(out, tail);
        out.push(b' ');
        self.move_left(out, tail.len() + 1);
    }

    fn history_step(&mut self, older: bool, out: &mut Vec<u8>) {
        let next = match (self.browsing, older) {
            (None, true) if !self.history.is_empty() => Some(self.history.len() - 1),
            (Some(i), true) => Some(i.saturating_sub(1)),
            (Some(i), false) if i + 1 < self.history.len() => Some(i + 1),
            (Some(_), false) => None,
            (None, _) => return,
        };
        if self.browsing.is_none() {
            self.stash = self.chars.clone();
        }
        self.browsing = next;
        let line = match next {
            Some(i) => self.history[i].chars().collect(),
            None => core::mem::take(&mut self.stash),
        };
        self.replace(line, out);
    }

    fn complete(&mut self, out: &mut Vec<u8>, completer: &dyn Completer) {
        let before: String = self.chars[..self.cursor].iter().collect();
        let mut words = split_words(&before);
        let ends_in_space = before.ends_with([' ', '\t']) && !words.last().is_some_and(|w| w.open_quote);
        let (partial, start) = match words.last() {
            Some(w) if !ends_in_space => (w.text.clone(), before[..w.start].chars().count()),
            _ => (String::new(), self.cursor),
        };
        if !ends_in_space && !words.is_empty() {
            words.pop();
        }
        let done: Vec<String> = words.into_iter().map(|w| w.text).collect();
        let proposals = completer.complete(&done, &partial);
        if proposals.is_empty() {
            return;
        }
        let common = common_prefix(&proposals);
        if proposals.len() > 1 && common.len() <= partial.len() {
            // Nothing to add: list the proposals under the line.
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(proposals.join("  ").as_bytes());
            out.extend_from_slice(b"\r\n");
            self.redraw(out);
            return;
        }
        let mut word = quote(&common);
        if proposals.len() > 1 && word.ends_with('"') {
            word.pop(); // leave the quote open: more may be typed
        }
        if proposals.len() == 1 && !common.ends_with('/') {
            word.push(' ');
        }
        let mut line: Vec<char> = self.chars[..start].to_vec();
        line.extend(word.chars());
        let cursor = line.len();
        line.extend_from_slice(&self.chars[self.cursor..]);
        if line.iter().map(|c| c.len_utf8()).sum::<usize>() > MAX_LINE {
            return;
        }
        self.replace(line, out);
        self.move_left(out, self.chars.len() - cursor);
        self.cursor = cursor;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::complete::{CommandNames, Completers};

    fn completer() -> Completers {
        let mut c = Completers::new();
        c.add(CommandNames::new(["help", "ps", "poweroff", "kv get", "kill NAME", "log [NAME]"]));
        c
    }

    fn feed_all(e: &mut LineEditor, s: &[u8]) -> (Vec<Event>, Vec<u8>) {
        let c = completer();
        let mut out = Vec::new();
        let events = s.iter().map(|b| e.feed(*b, &mut out, &c)).filter(|ev| *ev != Event::None).collect();
        (events, out)
    }

    fn line(e: &mut LineEditor, s: &[u8]) -> String {
        match feed_all(e, s).0.pop() {
            Some(Event::Line(l)) => l,
            other => panic!("no line: {other:?}"),
        }
    }

    #[test]
    fn typing_a_line() {
        let mut e = LineEditor::new();
        let (ev, echo) = feed_all(&mut e, b"ps\r");
        assert_eq!(ev, [Event::Line("ps".into())]);
        assert_eq!(echo, b"ps\r\n");
        // CR LF is one Enter; a lone LF is one too.
        let (ev, _) = feed_all(&mut e, b"a\r\nb\n");
        assert_eq!(ev, [Event::Line("a".into()), Event::Line("b".into())]);
    }

    #[test]
    fn editing() {
        let mut e = LineEditor::new();
        assert_eq!(line(&mut e, b"pss\x7f -x\x15kill 3\n"), "kill 3");
        let (ev, _) = feed_all(&mut e, b"abc\x03");
        assert_eq!(ev, [Event::Interrupt]);
        assert_eq!(e.pending(), "");
        // Left twice, insert; Home, insert; End, insert; Delete.
        assert_eq!(line(&mut e, b"acd\x1b[D\x1b[Db\x1b[H>\x1b[F<\r"), ">abcd<");
        assert_eq!(line(&mut e, b"abc\x01\x1b[3~\x05d\r"), "bcd");
        assert_eq!(line(&mut e, b"xy\x1bOD\x1b[3~\r"), "x");
    }

    #[test]
    fn utf8_input() {
        let mut e = LineEditor::new();
        assert_eq!(line(&mut e, "kv put ключ значение\r".as_bytes()), "kv put ключ значение");
        // Backspace takes a whole character; invalid bytes are dropped.
        assert_eq!(line(&mut e, "жx\x7f\x7fé\r".as_bytes()), "é");
        assert_eq!(line(&mut e, b"a\xff\xc3b\r"), "ab");
    }

    #[test]
    fn history_walks_both_ways() {
        let mut e = LineEditor::new();
        for l in ["one", "two", "two", "three"] {
            line(&mut e, format!("{l}\r").as_bytes());
        }
        assert_eq!(e.history(), ["one", "two", "three"]);
        assert_eq!(line(&mut e, b"\x1b[A\r"), "three");
        assert_eq!(line(&mut e, b"\x1b[A\x1b[A\x1b[A\x1b[A\r"), "one");
        assert_eq!(line(&mut e, b"draft\x1b[A\x1b[A\x1b[B\x1b[B\r"), "draft");
        // "one" was entered again, then "draft": two steps back is "one".
        assert_eq!(line(&mut e, b"\x1b[A\x1b[A x\r"), "one x");
        // Down with no history browsing does nothing.
        assert_eq!(line(&mut e, b"q\x1b[B\r"), "q");
    }

    #[test]
    fn completion() {
        let mut e = LineEditor::new();
        assert_eq!(line(&mut e, b"he\t\r"), "help ");
        assert_eq!(line(&mut e, b"kv g\tk\r"), "kv get k");
        // Several proposals: the common part, then a list.
        let (_, out) = feed_all(&mut e, b"p\t");
        assert_eq!(e.pending(), "p");
        assert!(String::from_utf8_lossy(&out).contains("poweroff  ps"), "{:?}", String::from_utf8_lossy(&out));
        e.feed(0x15, &mut Vec::new(), &completer());
        assert_eq!(line(&mut e, b"po\t\r"), "poweroff ");
        assert_eq!(line(&mut e, b"zz\t\r"), "zz");
        assert_eq!(line(&mut e, b"k\t\r"), "k");
    }

    #[test]
    fn overlong_lines_are_refused_whole() {
        let mut e = LineEditor::new();
        let mut long = alloc::vec![b'a'; MAX_LINE + 100];
        long.push(b'\r');
        let (ev, _) = feed_all(&mut e, &long);
        assert_eq!(ev, [Event::TooLong]);
        let exact = "k".repeat(MAX_LINE - 2) + "ж";
        assert_eq!(line(&mut e, format!("{exact}\r").as_bytes()).len(), MAX_LINE);
        let over = "k".repeat(MAX_LINE - 1) + "ж";
        assert_eq!(feed_all(&mut e, format!("{over}\r").as_bytes()).0, [Event::TooLong]);
        // Erasing back under the limit makes the line acceptable again.
        let mut e = LineEditor::new();
        let mut over = alloc::vec![b'b'; MAX_LINE + 1];
        over.extend_from_slice(b"\x7f\r");
        assert!(matches!(feed_all(&mut e, &over).0.as_slice(), [Event::Line(l)] if l.len() == MAX_LINE - 1));
    }

    #[test]
    fn redraw_shows_prompt_line_and_cursor() {
        let mut e = LineEditor::new();
        e.set_prompt("kintsugi> ");
        feed_all(&mut e, b"kv pu\x1b[D");
        let mut out = Vec::new();
        e.redraw(&mut out);
        assert_eq!(out, b"\r\x1b[Kkintsugi> kv pu\x1b[1D");
    }
}
