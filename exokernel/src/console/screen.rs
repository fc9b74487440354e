//! The kernel's own drawing on the screen the boot loader handed over: its
//! boot messages until a screen driver claims the display, and a kernel
//! panic always. A framebuffer gets the cells of `console_font` (Noto Sans
//! Mono, the console's colours: exactly what the screen driver draws, and
//! what the tests read back); VGA text mode gets character cells.
//! Warnings are yellow, errors red; a panic paints the screen red first
//! and writes in white.
//!
//! Deliberately small: no escape sequences beyond skipping them, no
//! history. The screen driver (`services/console`) is the real terminal.

use crate::mem::paging::DIRECT_MAP_SPAN;
use crate::mem::phys_to_virt;
use console_font::{
    render_cell, Rgb, CELL_H, CELL_W, DEFAULT_BG, DEFAULT_FG, ERROR_FG, PALETTE, PANIC_BG, PANIC_FG, WARNING_FG,
};
use kintsugi_abi::{DisplayInfo, LogLevel, DISPLAY_RGB, DISPLAY_TEXT};

/// The kernel's view of the screen.
pub struct Screen {
    info: DisplayInfo,
    base: *mut u8,
    cols: usize,
    rows: usize,
    col: usize,
    row: usize,
    /// Painted red: a panic.
    panic: bool,
    /// Inside an escape sequence (skipped).
    escape: u8,
}

// SAFETY: the screen is only reached under the console lock.
unsafe impl Send for Screen {}

impl Screen {
    /// The screen described by `info`, cleared, if it is one the kernel
    /// can draw on (reachable through the direct map, which
    /// `finish_kernel_tables` extended to cover it).
    pub fn new(info: DisplayInfo) -> Option<Screen> {
        let mut s = Screen::new_uncleared(info)?;
        s.clear();
        Some(s)
    }

    /// The screen described by `info`, left as it is (a screen driver
    /// drew it): the kernel writes from a fresh line at its bottom.
    pub fn resume(info: DisplayInfo) -> Option<Screen> {
        let mut s = Screen::new_uncleared(info)?;
        s.row = s.rows - 1;
        s.newline();
        Some(s)
    }

    fn new_uncleared(info: DisplayInfo) -> Option<Screen> {
        let fits = info.address.checked_add(info.span()).is_some_and(|end| end <= DIRECT_MAP_SPAN);
        let (cols, rows) = match info.kind {
            DISPLAY_RGB
                if matches!(info.bpp, 16 | 24 | 32) && info.pitch as u64 >= info.width as u64 * info.bpp as u64 / 8 =>
            {
                (info.width as usize / CELL_W, info.height as usize / CELL_H)
            }
            DISPLAY_TEXT if info.pitch >= info.width * 2 => (info.width as usize, info.height as usize),
            _ => return None,
        };
        if !fits || cols == 0 || rows == 0 {
            return None;
        }
        Some(Screen { info, base: phys_to_virt(info.address), cols, rows, col: 0, row: 0, panic: false, escape: 0 })
    }

    fn clear(&mut self) {
        for row in 0..self.rows {
            self.clear_row(row);
        }
        self.col = 0;
        self.row = 0;
    }

    /// Paint the screen red and start again at the top (a kernel panic).
    pub fn panic_mode(&mut self) {
        self.panic = true;
        self.escape = 0;
        self.clear();
    }

    /// Draw `bytes` in the colour of `level` (a palette index).
    pub fn write(&mut self, bytes: &[u8], level: LogLevel) {
        let fg = match level {
            _ if self.panic => PANIC_FG,
            LogLevel::Warning => WARNING_FG,
            LogLevel::Error => ERROR_FG,
            LogLevel::Normal => DEFAULT_FG,
        };
        for &b in bytes {
            if self.escape > 0 {
                // ESC [ params final: skipped.
                self.escape = match (self.escape, b) {
                    (1, b'[') => 2,
                    (2, 0x40..=0x7e) | (1, _) => 0,
                    _ => 2,
                };
                continue;
            }
            match b {
                0x1b => self.escape = 1,
                b'\n' => self.newline(),
                b'\r' => self.col = 0,
                0x08 => self.col = self.col.saturating_sub(1),
                b'\t' => {
                    for _ in 0..(8 - self.col % 8) {
                        self.put(' ', fg);
                    }
                }
                0x20..=0x7e => self.put(b as char, fg),
                0x80..=0xbf => {} // continuation bytes of a UTF-8 character
                0xc0..=0xff => self.put('?', fg),
                _ => {}
            }
        }
    }

    fn put(&mut self, c: char, fg: u8) {
        if self.col >= self.cols {
            self.newline();
        }
        self.draw(self.col, self.row, c, fg);
        self.col += 1;
    }

    fn newline(&mut self) {
        self.col = 0;
        if self.row + 1 < self.rows {
            self.row += 1;
            return;
        }
        // Scroll one line of cells up.
        let line = self.line_bytes();
        let total = line * (self.rows - 1);
        // SAFETY: both ranges lie inside the display memory (rows * line
        // bytes from its start), mapped through the direct map.
        unsafe { core::ptr::copy(self.base.add(line), self.base, total) };
        self.clear_row(self.rows - 1);
    }

    /// Bytes of display memory one line of cells takes.
    fn line_bytes(&self) -> usize {
        match self.info.kind {
            DISPLAY_TEXT => self.info.pitch as usize,
            _ => self.info.pitch as usize * CELL_H,
        }
    }

    /// The background's palette index.
    fn bg(&self) -> u8 {
        if self.panic {
            PANIC_BG
        } else {
            DEFAULT_BG
        }
    }

    fn clear_row(&mut self, row: usize) {
        if self.info.kind == DISPLAY_TEXT {
            let attr = vga_colour(self.bg()) << 4 | vga_colour(DEFAULT_FG);
            for col in 0..self.cols {
                self.text_cell(col, row, b' ', attr);
            }
            return;
        }
        let bg = PALETTE[self.bg() as usize];
        for y in row * CELL_H..(row + 1) * CELL_H {
            for x in 0..self.cols * CELL_W {
                self.pixel(x, y, bg);
            }
        }
    }

    fn draw(&mut self, col: usize, row: usize, c: char, fg: u8) {
        if self.info.kind == DISPLAY_TEXT {
            let attr = vga_colour(self.bg()) << 4 | vga_colour(fg);
            self.text_cell(col, row, c as u8, attr);
            return;
        }
        let mut cell = [(0u8, 0u8, 0u8); CELL_W * CELL_H];
        render_cell(c, PALETTE[fg as usize & 15], PALETTE[self.bg() as usize & 15], &mut cell);
        for dy in 0..CELL_H {
            for dx in 0..CELL_W {
                self.pixel(col * CELL_W + dx, row * CELL_H + dy, cell[dy * CELL_W + dx]);
            }
        }
    }

    fn text_cell(&mut self, col: usize, row: usize, c: u8, attr: u8) {
        let off = row * self.info.pitch as usize + col * 2;
        let cell = (c as u16 | (attr as u16) << 8).to_le_bytes();
        // SAFETY: (col, row) is inside the text screen, so the cell lies in
        // the display memory the boot loader described.
        unsafe { core::ptr::copy_nonoverlapping(cell.as_ptr(), self.base.add(off), 2) };
    }

    fn pixel(&mut self, x: usize, y: usize, (r, g, b): Rgb) {
        let i = &self.info;
        let chan = |v: u8, shift: u8, size: u8| ((v as u32) >> (8 - size.min(8))) << shift;
        let value = chan(r, i.red_shift, i.red_size)
            | chan(g, i.green_shift, i.green_size)
            | chan(b, i.blue_shift, i.blue_size);
        let bytes = i.bpp as usize / 8;
        let off = y * i.pitch as usize + x * bytes;
        // SAFETY: x < width and y < height, so the pixel lies in the
        // framebuffer the boot loader described (pitch * height bytes).
        unsafe { core::ptr::copy_nonoverlapping(value.to_le_bytes().as_ptr(), self.base.add(off), bytes) };
    }
}

/// The VGA text-mode colour of palette colour `c` (VGA orders them blue,
/// green, cyan, red, ... where ANSI has red, green, yellow, blue, ...).
fn vga_colour(c: u8) -> u8 {
    const ANSI_TO_VGA: [u8; 8] = [0, 4, 2, 6, 1, 5, 3, 7];
    ANSI_TO_VGA[(c & 7) as usize] | (c & 8)
}
