//! The PS/2 keyboard behind the i8042 controller (QEMU's, and most PCs'
//! firmware presents USB keyboards through it): setting the controller up,
//! and turning scancodes into the bytes a terminal sends (UTF-8 text,
//! control characters, `ESC [ A` for the up arrow, ...).
//!
//! Scancodes are decoded by the `pc-keyboard` crate (scancode set 1, which
//! the controller's translation produces; US layout; Shift, Caps Lock and
//! Ctrl-letter as control characters).

use alloc::vec::Vec;
use pc_keyboard::{layouts, DecodedKey, HandleControl, KeyCode, KeyState, Keyboard, ScancodeSet1};

/// Data port.
pub const DATA: u16 = 0x60;
/// Status (read) and command (write) port.
pub const STATUS: u16 = 0x64;
const OUTPUT_FULL: u8 = 1 << 0;
const INPUT_FULL: u8 = 1 << 1;
const FROM_MOUSE: u8 = 1 << 5;

/// Access to the controller's two ports.
pub trait Ports {
    /// Read a port.
    fn read(&mut self, port: u16) -> u8;
    /// Write a port.
    fn write(&mut self, port: u16, value: u8);
}

/// Why setting the controller up failed.
#[derive(Debug, PartialEq, Eq)]
pub enum SetupError {
    /// The controller did not answer (no i8042 here).
    NoController,
}

const SPINS: usize = 100_000;

fn wait_input_clear(p: &mut impl Ports) -> Result<(), SetupError> {
    for _ in 0..SPINS {
        if p.read(STATUS) & INPUT_FULL == 0 {
            return Ok(());
        }
    }
    Err(SetupError::NoController)
}

fn read_answer(p: &mut impl Ports) -> Result<u8, SetupError> {
    for _ in 0..SPINS {
        if p.read(STATUS) & OUTPUT_FULL != 0 {
            return Ok(p.read(DATA));
        }
    }
    Err(SetupError::NoController)
}

fn command(p: &mut impl Ports, cmd: u8) -> Result<(), SetupError> {
    wait_input_clear(p)?;
    p.write(STATUS, cmd);
    Ok(())
}

/// Set the controller up for the keyboard: both ports off while the
/// configuration changes, then the keyboard port on with its interrupt and
/// scancode translation (set 1), the mouse port's interrupt off. A byte
/// already waiting in the controller goes to `pending` if it is the
/// keyboard's (a key typed while no driver ran, e.g. while a crashed one
/// was being restarted: it is typed, not lost); a mouse byte is dropped.
/// The keyboard then sends the keys it buffered meanwhile: take them
/// ([`drain`]) before [`enable_scanning`], which empties its buffer.
pub fn setup(p: &mut impl Ports, mut pending: impl FnMut(u8)) -> Result<(), SetupError> {
    if p.read(STATUS) == 0xff {
        return Err(SetupError::NoController);
    }
    command(p, 0xad)?; // disable the keyboard port
    command(p, 0xa7)?; // disable the mouse port
    drain(p, &mut pending);
    command(p, 0x20)?; // read the configuration byte
    let config = read_answer(p)?;
    let config = (config | 0x01 | 0x40) & !0x02 & !0x10;
    command(p, 0x60)?; // write it
    wait_input_clear(p)?;
    p.write(DATA, config);
    command(p, 0xae)?; // enable the keyboard port
    Ok(())
}

/// Tell the keyboard to scan (in case the firmware left it off). It
/// answers 0xfa, which decoding skips, and empties its own buffer of keys.
pub fn enable_scanning(p: &mut impl Ports) -> Result<(), SetupError> {
    wait_input_clear(p)?;
    p.write(DATA, 0xf4);
    Ok(())
}

/// Take the bytes waiting in the controller: keyboard bytes go to `sink`,
/// mouse bytes are dropped. Returns how many were read.
pub fn drain(p: &mut impl Ports, mut sink: impl FnMut(u8)) -> usize {
    let mut n = 0;
    for _ in 0..256 {
        let status = p.read(STATUS);
        if status & OUTPUT_FULL == 0 || status == 0xff {
            break;
        }
        let byte = p.read(DATA);
        if status & FROM_MOUSE == 0 {
            sink(byte);
        }
        n += 1;
    }
    n
}

/// Scancodes in, terminal bytes out.
pub struct KeyDecoder {
    keyboard: Keyboard<layouts::Us104Key, ScancodeSet1>,
}

impl Default for KeyDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyDecoder {
    /// A decoder with no key down and Caps Lock off.
    pub fn new() -> KeyDecoder {
        KeyDecoder {
            keyboard: Keyboard::new(ScancodeSet1::new(), layouts::Us104Key, HandleControl::MapLettersToUnicode),
        }
    }

    /// Feed one scancode byte; appends what the key sends to `out`.
    pub fn feed(&mut self, scancode: u8, out: &mut Vec<u8>) {
        let Ok(Some(event)) = self.keyboard.add_byte(scancode) else { return };
        if event.state == KeyState::Down {
            let seq: &[u8] = match event.code {
                KeyCode::ArrowUp => b"\x1b[A",
                KeyCode::ArrowDown => b"\x1b[B",
                KeyCode::ArrowRight => b"\x1b[C",
                KeyCode::ArrowLeft => b"\x1b[D",
                KeyCode::Home => b"\x1b[H",
                KeyCode::End => b"\x1b[F",
                KeyCode::Delete => b"\x1b[3~",
                _ => b"",
            };
            if !seq.is_empty() {
                out.extend_from_slice(seq);
                // Keep the decoder's modifier state right all the same.
                let _ = self.keyboard.process_keyevent(event);
                return;
            }
        }
        match self.keyboard.process_keyevent(event) {
            Some(DecodedKey::Unicode('\n')) => out.push(b'\r'),
            Some(DecodedKey::Unicode(c)) => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::VecDeque;

    fn typed(codes: &[u8]) -> Vec<u8> {
        let mut d = KeyDecoder::new();
        let mut out = Vec::new();
        for &c in codes {
            d.feed(c, &mut out);
        }
        out
    }

    // Set 1 make codes; a break code is the make code | 0x80.
    const SHIFT: u8 = 0x2a;
    const CTRL: u8 = 0x1d;
    const CAPS: u8 = 0x3a;
    const A: u8 = 0x1e;
    const C: u8 = 0x2e;
    const U: u8 = 0x16;
    const K1: u8 = 0x02;
    const ENTER: u8 = 0x1c;
    const QUOTE: u8 = 0x28;

    #[test]
    fn letters_shift_caps_and_ctrl() {
        assert_eq!(typed(&[A, A | 0x80, K1, K1 | 0x80, ENTER, ENTER | 0x80]), b"a1\r");
        assert_eq!(typed(&[SHIFT, A, A | 0x80, K1, K1 | 0x80, QUOTE, SHIFT | 0x80, A]), b"A!\"a");
        assert_eq!(typed(&[CAPS, CAPS | 0x80, A, A | 0x80, K1]), b"A1");
        assert_eq!(typed(&[CTRL, C, C | 0x80, U, U | 0x80, CTRL | 0x80]), b"\x03\x15");
        assert_eq!(typed(&[0x0e, 0x0f]), b"\x08\t");
    }

    #[test]
    fn arrows_and_extended_keys() {
        assert_eq!(typed(&[0xe0, 0x48, 0xe0, 0xc8, 0xe0, 0x50, 0xe0, 0x4b, 0xe0, 0x4d]), b"\x1b[A\x1b[B\x1b[D\x1b[C");
        assert_eq!(typed(&[0xe0, 0x47, 0xe0, 0x4f, 0xe0, 0x53]), b"\x1b[H\x1b[F\x1b[3~");
        // Acknowledgements and garbage produce nothing.
        assert_eq!(typed(&[0xfa, 0xff, 0x00]), b"");
    }

    struct FakeController {
        out: VecDeque<(u8, u8)>, // (status bits, byte)
        writes: Vec<(u16, u8)>,
        config: u8,
        expecting_config: bool,
    }

    impl Ports for FakeController {
        fn read(&mut self, port: u16) -> u8 {
            match port {
                STATUS => self.out.front().map_or(0, |(s, _)| OUTPUT_FULL | s),
                _ => self.out.pop_front().map_or(0, |(_, b)| b),
            }
        }
        fn write(&mut self, port: u16, value: u8) {
            self.writes.push((port, value));
            if port == STATUS && value == 0x20 {
                self.out.push_back((0, self.config));
            }
            if port == STATUS && value == 0x60 {
                self.expecting_config = true;
            } else if port == DATA && self.expecting_config {
                self.config = value;
                self.expecting_config = false;
            }
        }
    }

    #[test]
    fn setup_and_drain() {
        let mut c = FakeController {
            out: VecDeque::from([(0, 0x1f), (FROM_MOUSE, 0x08), (0, 0x9f)]),
            writes: Vec::new(),
            config: 0x12,
            expecting_config: false,
        };
        let mut waiting = Vec::new();
        setup(&mut c, |b| waiting.push(b)).unwrap();
        assert_eq!(waiting, [0x1f, 0x9f], "keys typed before setup are kept, mouse bytes dropped");
        assert_eq!(c.config, 0x41, "keyboard interrupt and translation on, mouse interrupt and clock off");
        assert!(c.writes.contains(&(STATUS, 0xae)));
        assert!(!c.writes.contains(&(DATA, 0xf4)), "scanning is enabled after the buffered keys are taken");
        enable_scanning(&mut c).unwrap();
        assert_eq!(c.writes.last(), Some(&(DATA, 0xf4)));
        c.out.extend([(0, 0x1e), (FROM_MOUSE, 0x08), (0, 0x9e)]);
        let mut got = Vec::new();
        assert_eq!(drain(&mut c, |b| got.push(b)), 3);
        assert_eq!(got, [0x1e, 0x9e]);
    }

    struct Absent;
    impl Ports for Absent {
        fn read(&mut self, _: u16) -> u8 {
            0xff
        }
        fn write(&mut self, _: u16, _: u8) {}
    }

    #[test]
    fn no_controller_is_an_error() {
        assert_eq!(setup(&mut Absent, |_| panic!()), Err(SetupError::NoController));
        assert_eq!(drain(&mut Absent, |_| panic!()), 0);
    }
}
