//! A line editor for a serial terminal: printable characters are added and
//! echoed, backspace/DEL erases, Ctrl-U clears the line, Ctrl-C abandons
//! it, CR or LF ends it. Escape sequences (arrow keys) are swallowed.

use alloc::string::String;
use alloc::vec::Vec;

/// Longest line accepted.
pub const MAX_LINE: usize = 1024;

/// What a keystroke did.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// Nothing to act on.
    None,
    /// A whole line was entered.
    Line(String),
    /// Ctrl-C.
    Interrupt,
}

/// Editor state.
#[derive(Default)]
pub struct LineEditor {
    buf: String,
    escape: u8,
}

impl LineEditor {
    /// An empty editor.
    pub fn new() -> LineEditor {
        LineEditor::default()
    }

    /// Feed one byte; `echo` receives what to print back.
    pub fn feed(&mut self, b: u8, echo: &mut Vec<u8>) -> Event {
        if self.escape > 0 {
            // ESC [ <params> <final>: swallow until a final byte.
            self.escape = if self.escape == 1 && b != b'[' {
                0
            } else if self.escape >= 2 && (0x40..=0x7e).contains(&b) {
                0
            } else {
                2
            };
            return Event::None;
        }
        match b {
            b'\r' | b'\n' => {
                echo.extend_from_slice(b"\r\n");
                Event::Line(core::mem::take(&mut self.buf))
            }
            0x03 => {
                self.buf.clear();
                echo.extend_from_slice(b"^C\r\n");
                Event::Interrupt
            }
            0x08 | 0x7f => {
                if self.buf.pop().is_some() {
                    echo.extend_from_slice(b"\x08 \x08");
                }
                Event::None
            }
            0x15 => {
                for _ in 0..self.buf.chars().count() {
                    echo.extend_from_slice(b"\x08 \x08");
                }
                self.buf.clear();
                Event::None
            }
            0x1b => {
                self.escape = 1;
                Event::None
            }
            0x20..=0x7e if self.buf.len() < MAX_LINE => {
                self.buf.push(b as char);
                echo.push(b);
                Event::None
            }
            _ => Event::None,
        }
    }

    /// The partial line.
    pub fn pending(&self) -> &str {
        &self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(e: &mut LineEditor, s: &[u8]) -> (Vec<Event>, Vec<u8>) {
        let mut echo = Vec::new();
        let events = s.iter().map(|b| e.feed(*b, &mut echo)).filter(|ev| *ev != Event::None).collect();
        (events, echo)
    }

    #[test]
    fn typing_a_line() {
        let mut e = LineEditor::new();
        let (ev, echo) = feed_all(&mut e, b"ps\r");
        assert_eq!(ev, [Event::Line("ps".into())]);
        assert_eq!(echo, b"ps\r\n");
    }

    #[test]
    fn editing() {
        let mut e = LineEditor::new();
        let (ev, _) = feed_all(&mut e, b"pss\x7f -x\x15kill 3\n");
        assert_eq!(ev, [Event::Line("kill 3".into())]);
        let (ev, _) = feed_all(&mut e, b"abc\x03");
        assert_eq!(ev, [Event::Interrupt]);
        assert_eq!(e.pending(), "");
        let (ev, _) = feed_all(&mut e, b"\x1b[Ahelp\r");
        assert_eq!(ev, [Event::Line("help".into())]);
    }

    #[test]
    fn overlong_lines_are_cut() {
        let mut e = LineEditor::new();
        let long = alloc::vec![b'a'; MAX_LINE + 100];
        feed_all(&mut e, &long);
        assert_eq!(e.pending().len(), MAX_LINE);
    }
}
