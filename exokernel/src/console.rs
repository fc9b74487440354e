//! The serial console (COM1): kernel messages and `DebugWrite` go out through
//! it; typed bytes are buffered by the interrupt handler until the holder of
//! the console resource reads them.

use crate::object::Event;
use alloc::sync::Arc;
use core::fmt::{self, Write};
use spin::Mutex;
use uart_16550::SerialPort;

const COM1: u16 = 0x3f8;
const INPUT_CAPACITY: usize = 4096;

struct Console {
    port: SerialPort,
    input: [u8; INPUT_CAPACITY],
    head: usize,
    len: usize,
    reader: Option<(Arc<Event>, u64)>,
}

static CONSOLE: Mutex<Option<Console>> = Mutex::new(None);

/// The I/O ports the console owns (refused to user resources).
pub const PORTS: core::ops::Range<u16> = COM1..COM1 + 8;
/// The ISA interrupt line of COM1.
pub const IRQ: u8 = 4;

/// Set up COM1 (115200 8N1, receive interrupts on).
pub fn init() {
    // SAFETY: COM1 at 0x3f8 is the standard PC serial port; the kernel is the
    // only user of these ports (they are refused to user resources).
    let mut port = unsafe { SerialPort::new(COM1) };
    port.init();
    *CONSOLE.lock() = Some(Console { port, input: [0; INPUT_CAPACITY], head: 0, len: 0, reader: None });
}

/// Write bytes as one unit. Line feeds become CR LF.
pub fn write_bytes(bytes: &[u8]) {
    if let Some(c) = CONSOLE.lock().as_mut() {
        for &b in bytes {
            if b == b'\n' {
                c.port.send_raw(b'\r');
            }
            c.port.send_raw(b);
        }
    }
}

struct Writer;

impl Write for Writer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_bytes(s.as_bytes());
        Ok(())
    }
}

/// Print formatted text (used by the `kprint!` macros).
pub fn print(args: fmt::Arguments) {
    let _ = Writer.write_fmt(args);
}

/// Print unconditionally, even if the console lock is held (for panics).
pub fn emergency_print(args: fmt::Arguments) {
    // SAFETY: used only on the panic path, where the kernel is about to halt:
    // forcing the lock cannot break an invariant anyone will rely on again.
    unsafe { CONSOLE.force_unlock() };
    print(args);
}

/// Move every byte the UART holds into the input buffer and tell the reader.
/// Called from the COM1 interrupt.
pub fn on_interrupt() {
    let mut guard = CONSOLE.lock();
    let Some(c) = guard.as_mut() else { return };
    let mut got = false;
    while let Ok(b) = c.port.try_receive() {
        if c.len < INPUT_CAPACITY {
            let tail = (c.head + c.len) % INPUT_CAPACITY;
            c.input[tail] = b;
            c.len += 1;
        }
        got = true;
    }
    if got {
        if let Some((event, bits)) = &c.reader {
            event.signal(*bits);
        }
    }
}

/// Take up to `out.len()` buffered input bytes.
pub fn read(out: &mut [u8]) -> usize {
    let mut guard = CONSOLE.lock();
    let Some(c) = guard.as_mut() else { return 0 };
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
    let mut guard = CONSOLE.lock();
    if let Some(c) = guard.as_mut() {
        if c.len > 0 {
            event.signal(bits);
        }
        c.reader = Some((event, bits));
    }
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
