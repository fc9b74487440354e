//! Reading a screen picture back as text: the screen console draws each
//! character cell with `console_font` (Noto Sans Mono, 16 colours), so the
//! host renders every printable character with the same code and finds,
//! cell by cell, the one whose pixels match the picture exactly.

use console_font::{render_cell, Rgb, CELL_H, CELL_W, PALETTE};

/// A picture of the screen (from a PPM screendump).
pub struct Picture {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Pixels, row by row.
    pub pixels: Vec<Rgb>,
}

impl Picture {
    /// Decode a binary PPM (`P6`, 8 bits per channel), as QEMU's
    /// `screendump` writes.
    pub fn from_ppm(bytes: &[u8]) -> Result<Picture, String> {
        let mut fields = Vec::new();
        let mut at = 0;
        while fields.len() < 4 {
            while at < bytes.len() && bytes[at].is_ascii_whitespace() {
                at += 1;
            }
            if bytes.get(at) == Some(&b'#') {
                while at < bytes.len() && bytes[at] != b'\n' {
                    at += 1;
                }
                continue;
            }
            let start = at;
            while at < bytes.len() && !bytes[at].is_ascii_whitespace() {
                at += 1;
            }
            if start == at {
                return Err("truncated PPM header".into());
            }
            fields.push(String::from_utf8_lossy(&bytes[start..at]).into_owned());
        }
        at += 1;
        if fields[0] != "P6" || fields[3] != "255" {
            return Err(format!("not an 8-bit P6 PPM: {fields:?}"));
        }
        let width: usize = fields[1].parse().map_err(|_| "bad width")?;
        let height: usize = fields[2].parse().map_err(|_| "bad height")?;
        let data = bytes.get(at..at + width * height * 3).ok_or("truncated PPM data")?;
        let pixels = data.chunks(3).map(|p| (p[0], p[1], p[2])).collect();
        Ok(Picture { width, height, pixels })
    }

    fn cell_pixels(&self, col: usize, row: usize) -> [Rgb; CELL_W * CELL_H] {
        let mut out = [(0, 0, 0); CELL_W * CELL_H];
        for y in 0..CELL_H {
            for x in 0..CELL_W {
                out[y * CELL_W + x] = self.pixels[(row * CELL_H + y) * self.width + col * CELL_W + x];
            }
        }
        out
    }

    /// The screen's text, one string per row of cells (trailing blanks
    /// dropped). A cell that matches no character reads as `\u{fffd}`.
    pub fn text(&self) -> Vec<String> {
        self.rows().into_iter().map(|r| r.text).collect()
    }

    /// The screen's rows of cells: their text (as [`Picture::text`]) and
    /// the colour each character is drawn in.
    pub fn rows(&self) -> Vec<Row> {
        let glyphs = Glyphs::new();
        let (cols, rows) = (self.width / CELL_W, self.height / CELL_H);
        (0..rows)
            .map(|row| {
                let cells: Vec<(char, Option<u8>)> =
                    (0..cols).map(|col| glyphs.read(&self.cell_pixels(col, row))).collect();
                let len = cells.iter().rposition(|(c, _)| *c != ' ').map_or(0, |i| i + 1);
                Row {
                    text: cells[..len].iter().map(|(c, _)| *c).collect(),
                    colours: cells[..len].iter().map(|(_, fg)| *fg).collect(),
                }
            })
            .collect()
    }
}

/// One row of character cells read back from a picture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The characters (trailing blanks dropped).
    pub text: String,
    /// For each character, the palette index of its colour (`None` for a
    /// blank or a cell that matches no character).
    pub colours: Vec<Option<u8>>,
}

impl Row {
    /// Whether every character that is not a blank is drawn in palette
    /// colour `fg`.
    pub fn all_in(&self, fg: u8) -> bool {
        self.text.chars().zip(&self.colours).all(|(c, f)| c == ' ' || *f == Some(fg))
    }
}

struct Glyphs {
    chars: Vec<char>,
}

impl Glyphs {
    fn new() -> Glyphs {
        Glyphs { chars: (' '..='~').chain(['\u{fffd}']).collect() }
    }

    /// The character a cell shows, in any palette colour on any palette
    /// background, and the palette index of that colour.
    fn read(&self, cell: &[Rgb; CELL_W * CELL_H]) -> (char, Option<u8>) {
        let bgs: Vec<Rgb> = PALETTE.iter().copied().filter(|c| cell.contains(c)).collect();
        if bgs.len() == 1 && cell.iter().all(|p| *p == bgs[0]) {
            return (' ', None);
        }
        let mut want = [(0, 0, 0); CELL_W * CELL_H];
        for &bg in &bgs {
            for (fg_index, &fg) in PALETTE.iter().enumerate().filter(|(_, c)| **c != bg) {
                for &c in &self.chars {
                    render_cell(c, fg, bg, &mut want);
                    if want == *cell {
                        return (c, Some(fg_index as u8));
                    }
                }
            }
        }
        ('\u{fffd}', None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picture_of(lines: &[&str], cols: usize) -> Picture {
        let (width, height) = (cols * CELL_W, lines.len() * CELL_H);
        let mut pixels = vec![PALETTE[0]; width * height];
        let mut cell = [(0, 0, 0); CELL_W * CELL_H];
        for (row, line) in lines.iter().enumerate() {
            for (col, c) in line.chars().enumerate() {
                let (fg, bg) = if col == 0 && row == 1 { (PALETTE[0], PALETTE[7]) } else { (PALETTE[11], PALETTE[0]) };
                render_cell(c, fg, bg, &mut cell);
                for y in 0..CELL_H {
                    for x in 0..CELL_W {
                        pixels[(row * CELL_H + y) * width + col * CELL_W + x] = cell[y * CELL_W + x];
                    }
                }
            }
        }
        Picture { width, height, pixels }
    }

    #[test]
    fn reads_back_rendered_text() {
        let p = picture_of(&["kintsugi> echo \"hi\"", "lI1|!"], 24);
        assert_eq!(p.text(), ["kintsugi> echo \"hi\"", "lI1|!"]);
        let rows = p.rows();
        assert!(rows[0].all_in(11));
        assert_eq!(rows[1].colours[..2], [Some(0), Some(11)]);
        assert!(!rows[1].all_in(11));
    }

    #[test]
    fn ppm_round_trip() {
        let mut ppm = b"P6\n# qemu\n2 1\n255\n".to_vec();
        ppm.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
        let p = Picture::from_ppm(&ppm).unwrap();
        assert_eq!((p.width, p.height), (2, 1));
        assert_eq!(p.pixels, [(1, 2, 3), (4, 5, 6)]);
        assert!(Picture::from_ppm(b"P5\n1 1\n255\n\0").is_err());
        assert!(Picture::from_ppm(b"P6\n4 4\n255\n\0").is_err());
    }
}
