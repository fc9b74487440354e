//! The screen console's look: the font (Noto Sans Mono at 16 pixels, from
//! the `noto-sans-mono-bitmap` crate), the 16 colours, and exactly how one
//! character cell becomes pixels ([`render_cell`]). The screen driver draws
//! with it; the system tests render with it on the host and read the
//! screen back from QEMU's screendump, so both sides agree to the pixel.
#![no_std]

use noto_sans_mono_bitmap::{get_raster, get_raster_width, FontWeight, RasterHeight};

const FONT: RasterHeight = RasterHeight::Size16;
/// Width of a character cell in pixels.
pub const CELL_W: usize = get_raster_width(FontWeight::Regular, FONT);
/// Height of a character cell in pixels.
pub const CELL_H: usize = FONT.val();

/// A colour: red, green, blue.
pub type Rgb = (u8, u8, u8);

/// The 16 colours (the ANSI eight, then their bright forms).
pub const PALETTE: [Rgb; 16] = [
    (0x00, 0x00, 0x00),
    (0xcd, 0x31, 0x31),
    (0x0d, 0xbc, 0x79),
    (0xe5, 0xe5, 0x10),
    (0x24, 0x72, 0xc8),
    (0xbc, 0x3f, 0xbc),
    (0x11, 0xa8, 0xcd),
    (0xcc, 0xcc, 0xcc),
    (0x66, 0x66, 0x66),
    (0xf1, 0x4c, 0x4c),
    (0x23, 0xd1, 0x8b),
    (0xf5, 0xf5, 0x43),
    (0x3b, 0x8e, 0xea),
    (0xd6, 0x70, 0xd6),
    (0x29, 0xb8, 0xdb),
    (0xff, 0xff, 0xff),
];
/// Default text colour (light grey).
pub const DEFAULT_FG: u8 = 7;
/// Default background (black).
pub const DEFAULT_BG: u8 = 0;
/// Colour of warnings (bright yellow).
pub const WARNING_FG: u8 = 11;
/// Colour of errors (bright red).
pub const ERROR_FG: u8 = 9;
/// Background of the kernel's panic screen (red).
pub const PANIC_BG: u8 = 1;
/// Text of the kernel's panic screen (bright white).
pub const PANIC_FG: u8 = 15;

/// The character drawn for `c`: itself if the font has it, else the
/// replacement character.
pub fn drawable(c: char) -> char {
    if get_raster(c, FontWeight::Regular, FONT).is_some() {
        c
    } else {
        '\u{fffd}'
    }
}

/// `alpha` of the way from `bg` to `fg`.
pub fn blend(fg: Rgb, bg: Rgb, alpha: u8) -> Rgb {
    let mix = |f: u8, b: u8| ((f as u32 * alpha as u32 + b as u32 * (255 - alpha as u32) + 127) / 255) as u8;
    (mix(fg.0, bg.0), mix(fg.1, bg.1), mix(fg.2, bg.2))
}

/// The pixels of one cell showing `c` in `fg` on `bg`, row by row.
pub fn render_cell(c: char, fg: Rgb, bg: Rgb, out: &mut [Rgb; CELL_W * CELL_H]) {
    out.fill(bg);
    if c == ' ' {
        return;
    }
    let Some(glyph) = get_raster(drawable(c), FontWeight::Regular, FONT) else { return };
    for (y, line) in glyph.raster().iter().enumerate().take(CELL_H) {
        for (x, &a) in line.iter().enumerate().take(CELL_W) {
            if a != 0 {
                out[y * CELL_W + x] = blend(fg, bg, a);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn cells_are_distinct_and_sized() {
        const { assert!(CELL_W >= 6 && CELL_H == 16) };
        let mut a = [(0, 0, 0); CELL_W * CELL_H];
        let mut b = a;
        render_cell('l', PALETTE[7], PALETTE[0], &mut a);
        render_cell('1', PALETTE[7], PALETTE[0], &mut b);
        assert_ne!(a, b);
        render_cell(' ', PALETTE[7], PALETTE[0], &mut a);
        assert!(a.iter().all(|p| *p == PALETTE[0]));
        assert_eq!(drawable('ж'), '\u{fffd}');
        assert_eq!(drawable('é'), 'é');
    }

    #[test]
    fn blending_ends_at_the_colours() {
        assert_eq!(blend((200, 100, 0), (0, 0, 0), 255), (200, 100, 0));
        assert_eq!(blend((200, 100, 0), (10, 20, 30), 0), (10, 20, 30));
    }
}
