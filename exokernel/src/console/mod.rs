//! The console: the serial port (COM1) and the screen the boot loader handed
//! over, and the log of everything written to them.
//!
//! - Output: kernel messages and programs' `DebugWrite`s go to the serial
//!   port, to the screen while the kernel still draws it (until a screen
//!   driver claims it, see `screen`; and again should that driver end for
//!   good), and into the **console log**, one
//!   record per write with the writer's pid and name and a level (warning,
//!   error) read from the text. Holders of the console resource read the
//!   log (the screen driver draws it; the shell's `log` filters it).
//! - Output above the line: while the shell has a line being typed it asks
//!   for others' output to go above that line: the console clears the line
//!   (`CR ESC [ K`, unless it is at the start of one), shows the output on
//!   lines of its own and tells the shell, which draws its prompt and line
//!   again below. Output still reaches the wire and the log at once.
//! - Input: bytes typed on the serial port (moved here by its interrupt)
//!   and bytes a keyboard driver injects share one buffer, which the holder
//!   of the console resource reads.

mod screen;

use crate::logring::LogRing;
use crate::object::Event;
use alloc::sync::{Arc, Weak};
use core::fmt::{self, Write};
use kintsugi_abi::{DisplayInfo, Error, LogLevel, MAX_LOG_TEXT, MAX_LOG_WATCHERS};
use spin::Mutex;
use uart_16550::SerialPort;

const COM1: u16 = 0x3f8;
const INPUT_CAPACITY: usize = 16 * 1024;
/// Bytes of log records the console keeps.
const LOG_BYTES: usize = 64 * 1024;
/// Who has a line being typed that others' output must go above, and how
/// to tell them to draw it again.
struct Hold {
    pid: u32,
    name: [u8; kintsugi_abi::MAX_LOG_NAME],
    name_len: usize,
    event: Weak<Event>,
    bits: u64,
    /// Others' output went over the holder's line since the holder last
    /// wrote (see [`echo`]).
    line_lost: bool,
}

struct Console {
    ready: bool,
    port: SerialPort,
    input: [u8; INPUT_CAPACITY],
    head: usize,
    len: usize,
    /// Who reads the input (weak: a reader that ended holds nothing up).
    reader: Option<(Weak<Event>, u64)>,
    log: LogRing<LOG_BYTES>,
    hold: Option<Hold>,
    /// The last byte shown ended a line.
    at_line_start: bool,
    watchers: [Option<(Weak<Event>, u64)>; MAX_LOG_WATCHERS],
    display: DisplayInfo,
    screen: Option<screen::Screen>,
    /// The screen driver's claim: the kernel does not draw while it lives.
    claim: Option<Weak<Event>>,
}

// Built in place (the rings are too large for the kernel stack).
static CONSOLE: Mutex<Console> = Mutex::new(Console {
    ready: false,
    // SAFETY: COM1 at 0x3f8 is the standard PC serial port; the kernel is the
    // only user of these ports (they are refused to user resources).
    port: unsafe { SerialPort::new(COM1) },
    input: [0; INPUT_CAPACITY],
    head: 0,
    len: 0,
    reader: None,
    log: LogRing::new(),
    hold: None,
    at_line_start: true,
    watchers: [const { None }; MAX_LOG_WATCHERS],
    display: DisplayInfo {
        kind: 0,
        bpp: 0,
        address: 0,
        width: 0,
        height: 0,
        pitch: 0,
        red_shift: 0,
        red_size: 0,
        green_shift: 0,
        green_size: 0,
        blue_shift: 0,
        blue_size: 0,
        reserved: [0; 6],
    },
    screen: None,
    claim: None,
});

/// The console, once `init` has set the serial port up.
fn console() -> Option<spin::MutexGuard<'static, Console>> {
    let guard = CONSOLE.lock();
    guard.ready.then_some(guard)
}

/// The I/O ports the console owns (refused to user resources).
pub const PORTS: core::ops::Range<u16> = COM1..COM1 + 8;
/// The ISA interrupt line of COM1.
pub const IRQ: u8 = 4;

/// Set up COM1 (115200 8N1, receive interrupts on).
pub fn init() {
    let mut c = CONSOLE.lock();
    c.port.init();
    c.ready = true;
}

/// Start drawing on the screen the boot loader described, showing the
/// messages logged so far.
pub fn init_screen(display: DisplayInfo) {
    let Some(mut c) = console() else { return };
    let c = &mut *c;
    c.display = display;
    c.screen = screen::Screen::new(display);
    if let Some(s) = c.screen.as_mut() {
        c.log.for_each(|_, _, level, text| s.write(text, LogLevel::from_u8(level)));
    }
}

impl Console {
    fn serial(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                self.port.send_raw(b'\r');
            }
            self.port.send_raw(b);
        }
    }

    /// Show a write: serial, screen, log, watchers.
    fn show(&mut self, pid: u32, name: &[u8], bytes: &[u8]) {
        if self.claim.as_ref().is_some_and(|w| w.upgrade().is_none()) {
            // The screen driver ended and no other took its place.
            self.claim = None;
            self.screen = screen::Screen::resume(self.display);
        }
        if let Some(&last) = bytes.last() {
            self.at_line_start = last == b'\n';
        }
        self.serial(bytes);
        for chunk in bytes.chunks(MAX_LOG_TEXT) {
            let level = LogLevel::of_text(chunk);
            if let Some(s) = self.screen.as_mut() {
                s.write(chunk, level);
            }
            self.log.push(pid, name, level as u8, chunk);
        }
        for slot in self.watchers.iter_mut() {
            match slot.as_ref().map(|(w, bits)| (w.upgrade(), *bits)) {
                Some((Some(event), bits)) => event.signal(bits),
                Some((None, _)) => *slot = None,
                None => {}
            }
        }
    }

    /// A write by `pid` (0: the kernel): shown, above the line someone
    /// else is typing if they asked for that.
    fn emit(&mut self, pid: u32, name: &[u8], bytes: &[u8]) {
        let holder = match &self.hold {
            Some(h) if h.pid != pid && !bytes.is_empty() => match h.event.upgrade() {
                Some(event) => Some((event, h.bits, h.pid, h.name, h.name_len)),
                None => {
                    // The holder ended.
                    self.hold = None;
                    None
                }
            },
            _ => None,
        };
        let Some((event, bits, holder, holder_name, len)) = holder else {
            if let Some(h) = self.hold.as_mut().filter(|h| h.pid == pid && !bytes.is_empty()) {
                // The holder wrote: what is on its row is its own again.
                h.line_lost = false;
            }
            self.show(pid, name, bytes);
            return;
        };
        if let Some(h) = self.hold.as_mut() {
            h.line_lost = true;
        }
        if !self.at_line_start {
            self.show(holder, &holder_name[..len], b"\r\x1b[K");
            self.at_line_start = true;
        }
        self.show(pid, name, bytes);
        if !self.at_line_start {
            self.show(holder, &holder_name[..len], b"\n");
        }
        event.signal(bits);
    }
}

/// Write bytes from the kernel as one unit.
pub fn write_bytes(bytes: &[u8]) {
    if let Some(mut c) = console() {
        c.emit(0, b"kernel", bytes);
    }
}

/// Write bytes from process `pid` named `name` (its `DebugWrite`).
pub fn write_from(pid: u32, name: &str, bytes: &[u8]) {
    if let Some(mut c) = console() {
        c.emit(pid, name.as_bytes(), bytes);
    }
}

/// A formatting buffer on the stack: kernel messages are written as one
/// record without allocating.
struct LineBuf {
    buf: [u8; 512],
    len: usize,
}

impl Write for LineBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.buf.len() {
                write_bytes(&self.buf);
                self.len = 0;
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

/// Print formatted text (used by the `kprint!` macros).
pub fn print(args: fmt::Arguments) {
    let mut line = LineBuf { buf: [0; 512], len: 0 };
    let _ = line.write_fmt(args);
    write_bytes(&line.buf[..line.len]);
}

/// Print unconditionally, even if the console lock is held, on the serial
/// port and on a red screen (for panics).
pub fn emergency_print(args: fmt::Arguments) {
    // SAFETY: used only on the panic path, where the kernel is about to halt:
    // forcing the lock cannot break an invariant anyone will rely on again.
    unsafe { CONSOLE.force_unlock() };
    let Some(mut guard) = console() else { return };
    let c = &mut *guard;
    c.hold = None;
    c.claim = None;
    if c.screen.is_none() {
        c.screen = screen::Screen::new(c.display);
    }
    if let Some(s) = c.screen.as_mut() {
        s.panic_mode();
    }
    drop(guard);
    print(args);
}

/// Move every byte the UART holds into the input buffer and tell the reader.
/// Called from the COM1 interrupt.
pub fn on_interrupt() {
    let Some(mut c) = console() else { return };
    let mut got = false;
    while let Ok(b) = c.port.try_receive() {
        c.push_input(b);
        got = true;
    }
    if got {
        c.tell_reader();
    }
}

impl Console {
    fn push_input(&mut self, b: u8) {
        if self.len < INPUT_CAPACITY {
            let tail = (self.head + self.len) % INPUT_CAPACITY;
            self.input[tail] = b;
            self.len += 1;
        }
    }

    fn tell_reader(&self) {
        if let Some((Some(event), bits)) = self.reader.as_ref().map(|(w, bits)| (w.upgrade(), *bits)) {
            event.signal(bits);
        }
    }
}

/// Add bytes to the input as if typed (a keyboard driver's keystrokes).
pub fn inject(bytes: &[u8]) {
    let Some(mut c) = console() else { return };
    for &b in bytes {
        c.push_input(b);
    }
    if !bytes.is_empty() {
        c.tell_reader();
    }
}

/// Take up to `out.len()` buffered input bytes.
pub fn read(out: &mut [u8]) -> usize {
    let Some(mut guard) = console() else { return 0 };
    let c = &mut *guard;
    let n = out.len().min(c.len);
    for slot in out.iter_mut().take(n) {
        *slot = c.input[c.head];
        c.head = (c.head + 1) % INPUT_CAPACITY;
    }
    c.len -= n;
    n
}

/// Have `event` signalled with `bits` when input arrives (replacing any
/// earlier reader); signals at once if input is already waiting.
pub fn bind(event: Arc<Event>, bits: u64) {
    if let Some(mut c) = console() {
        if c.len > 0 {
            event.signal(bits);
        }
        c.reader = Some((Arc::downgrade(&event), bits));
    }
}

/// Copy log records from `cursor` on into `out` (see `ConsoleOp::LogRead`).
pub fn log_read(cursor: u64, out: &mut [u8]) -> Result<(u64, usize), Error> {
    let c = console().ok_or(Error::Unsupported)?;
    c.log.read(cursor, out).map_err(|_| Error::TooLarge)
}

/// Signal `event` with `bits` whenever a record is logged.
pub fn log_watch(event: &Arc<Event>, bits: u64) -> Result<(), Error> {
    let mut c = console().ok_or(Error::Unsupported)?;
    for slot in c.watchers.iter_mut() {
        if slot.as_ref().is_some_and(|(w, _)| w.upgrade().is_none()) {
            *slot = None;
        }
    }
    let slot = c.watchers.iter_mut().find(|s| s.is_none()).ok_or(Error::LimitReached)?;
    *slot = Some((Arc::downgrade(event), bits));
    Ok(())
}

/// The screen the boot loader handed over.
pub fn display() -> DisplayInfo {
    console().map(|c| c.display).unwrap_or_default()
}

/// A screen driver draws from now on, while `event` lives: the kernel
/// stops drawing (and starts again when the event is gone).
pub fn claim_display(event: &Arc<Event>) {
    if let Some(mut c) = console() {
        c.screen = None;
        c.claim = Some(Arc::downgrade(event));
    }
}

/// Have others' output go above the line `pid` (named `name`) is typing,
/// signalling `event` with `bits` after it so the line can be drawn again;
/// with `None`, stop.
pub fn output_above(pid: u32, name: &str, holder: Option<(&Arc<Event>, u64)>) {
    let Some(mut c) = console() else { return };
    c.hold = holder.map(|(event, bits)| {
        let mut h = Hold {
            pid,
            name: [0; kintsugi_abi::MAX_LOG_NAME],
            name_len: 0,
            event: Arc::downgrade(event),
            bits,
            line_lost: false,
        };
        h.name_len = name.len().min(h.name.len());
        h.name[..h.name_len].copy_from_slice(&name.as_bytes()[..h.name_len]);
        h
    });
}

/// The echo of what `pid` (named `name`) typed, after `redraw` if others'
/// output cleared its line since it last wrote (`ConsoleOp::Echo`); one
/// unit under the console's lock. Whether the redraw went first.
pub fn echo(pid: u32, name: &str, echo: &[u8], redraw: &[u8]) -> bool {
    let Some(mut c) = console() else { return false };
    let lost = c.hold.as_ref().is_some_and(|h| h.pid == pid && h.line_lost) && !redraw.is_empty();
    if lost {
        c.emit(pid, name.as_bytes(), redraw);
    }
    c.emit(pid, name.as_bytes(), echo);
    lost
}

/// Print to the console.
#[macro_export]
macro_rules! kprint {
    ($($arg:tt)*) => { $crate::console::print(format_args!($($arg)*)) };
}

/// Print a line to the console.
#[macro_export]
macro_rules! kprintln {
    () => { $crate::console::print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::console::print(format_args!("{}\n", format_args!($($arg)*))) };
}
