//! Drawing a [`Terminal`] on display memory: a linear framebuffer (pixels
//! from `console_font`, any 16/24/32-bit direct-colour layout) or VGA text
//! mode (16-bit character cells). Only cells that changed since the last
//! paint are drawn; the cursor is the cell with its colours swapped.

use super::term::{Cell, Terminal};
use alloc::vec;
use alloc::vec::Vec;
use console_font::{render_cell, Rgb, CELL_H, CELL_W, PALETTE};
use libos::abi::{DisplayInfo, DISPLAY_RGB, DISPLAY_TEXT};

/// A display the terminal is drawn on.
pub struct Screen {
    info: DisplayInfo,
    base: *mut u8,
    cols: usize,
    rows: usize,
    /// What each cell shows now (None: unknown, draw it).
    painted: Vec<Option<Cell>>,
    cursor: Option<(usize, usize)>,
}

/// Why a display cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub struct Unsupported;

impl Screen {
    /// The display `info` describes, mapped at `base` (`info.span()` bytes).
    ///
    /// # Safety
    /// `base` must point at `info.span()` bytes of writable display memory
    /// that stay mapped while the `Screen` lives.
    pub unsafe fn new(info: DisplayInfo, base: *mut u8) -> Result<Screen, Unsupported> {
        let (cols, rows) = geometry(&info).ok_or(Unsupported)?;
        Ok(Screen { info, base, cols, rows, painted: vec![None; cols * rows], cursor: None })
    }

    /// Columns and rows of cells.
    pub fn size(&self) -> (usize, usize) {
        (self.cols, self.rows)
    }

    /// Draw everything again on the next paint.
    pub fn invalidate(&mut self) {
        self.painted.fill(None);
    }

    /// Draw what changed in `t` (which must be of this screen's size).
    pub fn paint(&mut self, t: &Terminal) {
        let cursor = t.cursor();
        if let Some((c, r)) = self.cursor.take() {
            if let Some(p) = self.painted.get_mut(r * self.cols + c) {
                *p = None;
            }
        }
        for row in 0..self.rows.min(t.rows()) {
            for col in 0..self.cols.min(t.cols()) {
                let mut cell = t.cell(col, row);
                if (col, row) == cursor {
                    core::mem::swap(&mut cell.fg, &mut cell.bg);
                }
                let slot = &mut self.painted[row * self.cols + col];
                if *slot != Some(cell) {
                    *slot = Some(cell);
                    self.draw(col, row, cell);
                }
            }
        }
        self.cursor = Some(cursor);
    }

    fn draw(&mut self, col: usize, row: usize, cell: Cell) {
        if self.info.kind == DISPLAY_TEXT {
            let attr = vga_colour(cell.bg & 0x7) << 4 | vga_colour(cell.fg & 0xf);
            let ch = if cell.ch.is_ascii() && !cell.ch.is_ascii_control() { cell.ch as u8 } else { b'?' };
            let off = row * self.info.pitch as usize + col * 2;
            // SAFETY: (col, row) is inside the text screen, so the cell lies
            // in the display memory given to `new`.
            unsafe { core::ptr::write_volatile(self.base.add(off) as *mut u16, ch as u16 | (attr as u16) << 8) };
            return;
        }
        let fg = PALETTE[cell.fg as usize & 15];
        let bg = PALETTE[cell.bg as usize & 15];
        let mut pixels = [(0u8, 0u8, 0u8); CELL_W * CELL_H];
        render_cell(cell.ch, fg, bg, &mut pixels);
        let bytes = self.info.bpp as usize / 8;
        for y in 0..CELL_H {
            let line = (row * CELL_H + y) * self.info.pitch as usize + col * CELL_W * bytes;
            for x in 0..CELL_W {
                let value = self.pixel(pixels[y * CELL_W + x]);
                let off = line + x * bytes;
                // SAFETY: the pixel lies inside the framebuffer (the cell is
                // inside the screen's width and height), as given to `new`.
                unsafe {
                    if bytes == 4 {
                        core::ptr::write_volatile(self.base.add(off) as *mut u32, value);
                    } else {
                        for (i, b) in value.to_le_bytes().iter().take(bytes).enumerate() {
                            core::ptr::write_volatile(self.base.add(off + i), *b);
                        }
                    }
                }
            }
        }
    }

    fn pixel(&self, (r, g, b): Rgb) -> u32 {
        let i = &self.info;
        let chan = |v: u8, shift: u8, size: u8| ((v as u32) >> (8 - size.min(8))) << shift.min(31);
        chan(r, i.red_shift, i.red_size) | chan(g, i.green_shift, i.green_size) | chan(b, i.blue_shift, i.blue_size)
    }
}

/// The VGA text-mode colour of palette colour `c` (VGA orders them blue,
/// green, cyan, red, ... where ANSI has red, green, yellow, blue, ...).
fn vga_colour(c: u8) -> u8 {
    const ANSI_TO_VGA: [u8; 8] = [0, 4, 2, 6, 1, 5, 3, 7];
    ANSI_TO_VGA[(c & 7) as usize] | (c & 8)
}

/// The cells a display holds, if it is one this module can draw on.
pub fn geometry(info: &DisplayInfo) -> Option<(usize, usize)> {
    let (cols, rows) = match info.kind {
        DISPLAY_RGB
            if matches!(info.bpp, 16 | 24 | 32) && info.pitch as u64 >= info.width as u64 * info.bpp as u64 / 8 =>
        {
            (info.width as usize / CELL_W, info.height as usize / CELL_H)
        }
        DISPLAY_TEXT if info.pitch >= info.width * 2 => (info.width as usize, info.height as usize),
        _ => return None,
    };
    (cols > 0 && rows > 0).then_some((cols, rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use libos::abi::LogLevel;

    fn rgb32(width: u32, height: u32) -> DisplayInfo {
        DisplayInfo {
            kind: DISPLAY_RGB,
            bpp: 32,
            address: 0,
            width,
            height,
            pitch: width * 4,
            red_shift: 16,
            red_size: 8,
            green_shift: 8,
            green_size: 8,
            blue_shift: 0,
            blue_size: 8,
            reserved: [0; 6],
        }
    }

    #[test]
    fn draws_cells_as_the_font_renders_them() {
        let info = rgb32(CELL_W as u32 * 4, CELL_H as u32 * 2);
        let mut mem = vec![0u8; info.span() as usize];
        // SAFETY: `mem` is the whole framebuffer and outlives `s`.
        let mut s = unsafe { Screen::new(info, mem.as_mut_ptr()) }.unwrap();
        assert_eq!(s.size(), (4, 2));
        let mut t = Terminal::new(4, 2);
        t.write(b"ab\n", LogLevel::Normal);
        s.paint(&t);
        let mut want = [(0, 0, 0); CELL_W * CELL_H];
        render_cell('b', PALETTE[7], PALETTE[0], &mut want);
        for y in 0..CELL_H {
            for x in 0..CELL_W {
                let off = y * info.pitch as usize + (CELL_W + x) * 4;
                let px = u32::from_le_bytes(mem[off..off + 4].try_into().unwrap());
                let (r, g, b) = want[y * CELL_W + x];
                assert_eq!(px, (r as u32) << 16 | (g as u32) << 8 | b as u32);
            }
        }
        // The cursor (row 1, column 0) is drawn inverted: light.
        let off = CELL_H * info.pitch as usize;
        assert_ne!(&mem[off..off + 4], &[0, 0, 0, 0]);
    }

    #[test]
    fn text_mode_cells() {
        let info = DisplayInfo { kind: DISPLAY_TEXT, bpp: 16, width: 80, height: 25, pitch: 160, ..Default::default() };
        let mut mem = vec![0u8; info.span() as usize];
        // SAFETY: as above.
        let mut s = unsafe { Screen::new(info, mem.as_mut_ptr()) }.unwrap();
        let mut t = Terminal::new(80, 25);
        t.write(b"[x] error: bad\n", LogLevel::Error);
        s.paint(&t);
        // Bright red is VGA colour 12.
        assert_eq!(&mem[..4], &[b'[', 0x0c, b'x', 0x0c]);
    }

    #[test]
    fn odd_displays_are_refused() {
        assert!(geometry(&DisplayInfo::default()).is_none());
        let mut i = rgb32(640, 480);
        i.bpp = 8;
        assert!(geometry(&i).is_none());
        let mut i = rgb32(640, 480);
        i.pitch = 10;
        assert!(geometry(&i).is_none());
        assert!(geometry(&rgb32(2, 2)).is_none());
    }
}
