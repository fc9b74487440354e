//! A text terminal as a grid of cells: what the console's byte stream
//! means on a screen. UTF-8 text; CR, LF (which also returns, as the serial
//! console's line feeds do), backspace, tab; and the escape sequences the
//! shell's line editor and coloured output use: cursor movement (`CSI n
//! A/B/C/D`, `CSI r;c H`), erasing (`CSI n K`, `CSI n J`) and colours (`CSI
//! ... m`: 30-37, 90-97, 40-47, 100-107, 1, 0, 39, 49). Other sequences are
//! skipped. Lines scroll off the top.
//!
//! Written here because the terminal crates on crates.io either need `std`
//! or bring a full VT100/xterm state machine with scrollback regions and
//! alternate screens that a kernel console does not use; this one is small
//! and pure, so it is tested on the host.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use console_font::{DEFAULT_BG, DEFAULT_FG, ERROR_FG, WARNING_FG};
use libos::abi::LogLevel;

/// One character cell: the character and its palette colours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cell {
    /// The character.
    pub ch: char,
    /// Text colour (palette index).
    pub fg: u8,
    /// Background colour (palette index).
    pub bg: u8,
}

impl Cell {
    /// An empty cell.
    pub const BLANK: Cell = Cell { ch: ' ', fg: DEFAULT_FG, bg: DEFAULT_BG };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Parse {
    Text,
    Escape,
    Csi,
}

/// The terminal's state.
pub struct Terminal {
    cols: usize,
    rows: usize,
    cells: Vec<Cell>,
    col: usize,
    row: usize,
    fg: Option<u8>,
    bg: u8,
    bright: bool,
    parse: Parse,
    params: Vec<u16>,
    utf8: [u8; 4],
    utf8_len: usize,
    utf8_need: usize,
    /// Lines scrolled off since [`Terminal::take_scrolled`].
    scrolled: usize,
}

impl Terminal {
    /// A blank terminal of `cols` x `rows` cells (at least 1 x 1).
    pub fn new(cols: usize, rows: usize) -> Terminal {
        let (cols, rows) = (cols.max(1), rows.max(1));
        Terminal {
            cols,
            rows,
            cells: vec![Cell::BLANK; cols * rows],
            col: 0,
            row: 0,
            fg: None,
            bg: DEFAULT_BG,
            bright: false,
            parse: Parse::Text,
            params: Vec::new(),
            utf8: [0; 4],
            utf8_len: 0,
            utf8_need: 0,
            scrolled: 0,
        }
    }

    /// Columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The cell at (`col`, `row`).
    pub fn cell(&self, col: usize, row: usize) -> Cell {
        self.cells[row * self.cols + col]
    }

    /// Where the cursor is: (column, row).
    pub fn cursor(&self) -> (usize, usize) {
        (self.col.min(self.cols - 1), self.row)
    }

    /// Lines scrolled off the top since the last call.
    pub fn take_scrolled(&mut self) -> usize {
        core::mem::take(&mut self.scrolled)
    }

    /// The text of a row, trailing blanks dropped.
    pub fn row_text(&self, row: usize) -> String {
        let s: String = self.cells[row * self.cols..(row + 1) * self.cols].iter().map(|c| c.ch).collect();
        String::from(s.trim_end())
    }

    /// Feed bytes written to the console; `level` colours text that sets
    /// no colour of its own (warnings yellow, errors red).
    pub fn write(&mut self, bytes: &[u8], level: LogLevel) {
        let default = match level {
            LogLevel::Warning => WARNING_FG,
            LogLevel::Error => ERROR_FG,
            LogLevel::Normal => DEFAULT_FG,
        };
        for &b in bytes {
            self.byte(b, default);
        }
    }

    fn byte(&mut self, b: u8, default_fg: u8) {
        match self.parse {
            Parse::Escape => {
                self.parse = if b == b'[' { Parse::Csi } else { Parse::Text };
                self.params.clear();
                return;
            }
            Parse::Csi => {
                match b {
                    b'0'..=b'9' => {
                        if self.params.is_empty() {
                            self.params.push(0);
                        }
                        if let Some(p) = self.params.last_mut() {
                            *p = p.saturating_mul(10).saturating_add((b - b'0') as u16);
                        }
                    }
                    b';' => {
                        if self.params.is_empty() {
                            self.params.push(0);
                        }
                        if self.params.len() < 16 {
                            self.params.push(0);
                        }
                    }
                    0x40..=0x7e => {
                        self.parse = Parse::Text;
                        self.csi(b);
                    }
                    b'?' | b' '..=b'/' => {}
                    _ => self.parse = Parse::Text,
                }
                return;
            }
            Parse::Text => {}
        }
        if self.utf8_need > 0 {
            if b & 0xc0 == 0x80 {
                self.utf8[self.utf8_len] = b;
                self.utf8_len += 1;
                if self.utf8_len == self.utf8_need {
                    self.utf8_need = 0;
                    let c = core::str::from_utf8(&self.utf8[..self.utf8_len])
                        .ok()
                        .and_then(|s| s.chars().next())
                        .unwrap_or('\u{fffd}');
                    self.put(c, default_fg);
                }
                return;
            }
            // A broken sequence: show it as one replacement character.
            self.utf8_need = 0;
            self.put('\u{fffd}', default_fg);
        }
        match b {
            0x1b => self.parse = Parse::Escape,
            b'\n' => self.line_feed(),
            b'\r' => self.col = 0,
            0x08 => self.col = self.col.min(self.cols - 1).saturating_sub(1),
            b'\t' => {
                let next = ((self.col / 8) + 1) * 8;
                while self.col < next.min(self.cols) {
                    self.put(' ', default_fg);
                }
            }
            0x20..=0x7e => self.put(b as char, default_fg),
            0xc2..=0xf4 => {
                self.utf8[0] = b;
                self.utf8_len = 1;
                self.utf8_need = match b {
                    0xc2..=0xdf => 2,
                    0xe0..=0xef => 3,
                    _ => 4,
                };
            }
            0x80..=0xff => self.put('\u{fffd}', default_fg),
            _ => {}
        }
    }

    fn put(&mut self, ch: char, default_fg: u8) {
        if self.col >= self.cols {
            self.line_feed();
        }
        let mut fg = self.fg.unwrap_or(default_fg);
        if self.bright && fg < 8 {
            fg += 8;
        }
        self.cells[self.row * self.cols + self.col] = Cell { ch, fg, bg: self.bg };
        self.col += 1;
    }

    fn line_feed(&mut self) {
        self.col = 0;
        if self.row + 1 < self.rows {
            self.row += 1;
        } else {
            self.cells.copy_within(self.cols.., 0);
            let last = (self.rows - 1) * self.cols;
            self.cells[last..].fill(Cell::BLANK);
            self.scrolled += 1;
        }
    }

    fn param(&self, i: usize, default: u16) -> u16 {
        match self.params.get(i) {
            Some(0) | None => default,
            Some(&v) => v,
        }
    }

    fn blank(&mut self, from: usize, to: usize) {
        let blank = Cell { bg: self.bg, ..Cell::BLANK };
        self.cells[from..to].fill(blank);
    }

    fn csi(&mut self, fin: u8) {
        let n = self.param(0, 1) as usize;
        let here = self.row * self.cols + self.col.min(self.cols);
        let line_start = self.row * self.cols;
        match fin {
            b'A' => self.row = self.row.saturating_sub(n),
            b'B' => self.row = (self.row + n).min(self.rows - 1),
            b'C' => self.col = (self.col + n).min(self.cols - 1),
            b'D' => self.col = self.col.min(self.cols - 1).saturating_sub(n),
            b'G' => self.col = (n - 1).min(self.cols - 1),
            b'H' | b'f' => {
                self.row = (self.param(0, 1) as usize - 1).min(self.rows - 1);
                self.col = (self.param(1, 1) as usize - 1).min(self.cols - 1);
            }
            b'K' => match self.params.first().copied().unwrap_or(0) {
                0 => self.blank(here, line_start + self.cols),
                1 => self.blank(line_start, (here + 1).min(line_start + self.cols)),
                _ => self.blank(line_start, line_start + self.cols),
            },
            b'J' => match self.params.first().copied().unwrap_or(0) {
                0 => self.blank(here, self.cells.len()),
                1 => self.blank(0, (here + 1).min(self.cells.len())),
                _ => {
                    self.blank(0, self.cells.len());
                    self.col = 0;
                    self.row = 0;
                }
            },
            b'm' => self.sgr(),
            _ => {}
        }
    }

    fn sgr(&mut self) {
        if self.params.is_empty() {
            self.params.push(0);
        }
        for i in 0..self.params.len() {
            match self.params[i] {
                0 => {
                    self.fg = None;
                    self.bg = DEFAULT_BG;
                    self.bright = false;
                }
                1 => self.bright = true,
                22 => self.bright = false,
                p @ 30..=37 => self.fg = Some((p - 30) as u8),
                39 => self.fg = None,
                p @ 40..=47 => self.bg = (p - 40) as u8,
                49 => self.bg = DEFAULT_BG,
                p @ 90..=97 => self.fg = Some((p - 90 + 8) as u8),
                p @ 100..=107 => self.bg = (p - 100 + 8) as u8,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(text: &str) -> Terminal {
        let mut t = Terminal::new(20, 4);
        t.write(text.as_bytes(), LogLevel::Normal);
        t
    }

    #[test]
    fn text_wraps_and_scrolls() {
        let t = term("kintsugi> ps\nline two\n");
        assert_eq!(t.row_text(0), "kintsugi> ps");
        assert_eq!(t.row_text(1), "line two");
        assert_eq!(t.cursor(), (0, 2));
        let mut t = term("a\nb\nc\nd\ne");
        assert_eq!(t.row_text(0), "b");
        assert_eq!(t.row_text(3), "e");
        assert_eq!(t.take_scrolled(), 1);
        let t = term("0123456789012345678901234");
        assert_eq!(t.row_text(0), "01234567890123456789");
        assert_eq!(t.row_text(1), "01234");
    }

    #[test]
    fn line_editing_sequences() {
        // What the shell sends to redraw its line after held messages.
        let t = term("kintsugi> kv pu\r\x1b[K[kv] kv is up\nkintsugi> kv pu");
        assert_eq!(t.row_text(0), "[kv] kv is up");
        assert_eq!(t.row_text(1), "kintsugi> kv pu");
        let t = term("abc\x08 \x08\x08 \x08x");
        assert_eq!(t.row_text(0), "ax");
        let t = term("hello\x1b[3Dy");
        assert_eq!(t.row_text(0), "heylo");
        let t = term("one\ntwo\x1b[2J\x1b[1;1Hthree");
        assert_eq!(t.row_text(0), "three");
        assert_eq!(t.row_text(1), "");
    }

    #[test]
    fn colours_and_levels() {
        let mut t = Terminal::new(20, 2);
        t.write(b"[kv] warning: slow\n", LogLevel::Warning);
        assert_eq!(t.cell(0, 0).fg, WARNING_FG);
        t.write(b"\x1b[31mred\x1b[0m plain", LogLevel::Normal);
        assert_eq!(t.cell(0, 1).fg, 1);
        assert_eq!(t.cell(4, 1).fg, DEFAULT_FG);
    }

    #[test]
    fn utf8_and_garbage() {
        let t = term("ключ é\n");
        assert_eq!(t.row_text(0), "ключ é");
        let t = term("a\u{1b}[999999999999;99999999Hb");
        assert_eq!(t.cursor(), (19, 3));
        let mut t = Terminal::new(20, 4);
        t.write(b"x\xff\xc3y", LogLevel::Normal);
        assert_eq!(t.row_text(0), "x\u{fffd}\u{fffd}y");
        let mut t = Terminal::new(0, 0);
        t.write(b"\n\n\x1b[5A\x1b[K\x08\x08", LogLevel::Error);
        assert_eq!(t.cols(), 1);
    }
}
