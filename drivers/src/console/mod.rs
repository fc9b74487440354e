//! The screen and keyboard console's drivers: [`term`] (what the console's
//! bytes mean on a grid of cells), [`screen`] (drawing that grid on a
//! framebuffer or VGA text memory, with the font of `console_font`) and
//! [`ps2`] (the i8042 keyboard: controller setup, scancodes to bytes).
//! The programs that run them are `services/console` (`screen`, `kbd`).

pub mod ps2;
pub mod screen;
pub mod term;
