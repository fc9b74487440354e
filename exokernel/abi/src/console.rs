//! The console call ([`Syscall::Console`](crate::Syscall::Console)): its
//! operations and the structures it exchanges.
//!
//! The console is the machine's text terminal: the serial port, plus the
//! screen the boot loader handed over. Everything programs write with
//! `DebugWrite` (and everything the kernel prints) is kept, one record per
//! write with the writer's pid and name, in the kernel's console log, which
//! the holder of a `Console` resource reads ([`ConsoleOp::LogRead`]): the
//! screen driver draws it, the shell's `log` command filters it.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// What `Console(console, op, a, b, c)` does; `op` is the second argument.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsoleOp {
    /// `(cursor, buf, len) -> (next cursor, bytes)`: copy whole log records
    /// whose sequence number is at least `cursor`, oldest first, each a
    /// [`LogRecordHeader`] then the name then the text, into `buf` (as many
    /// as fit). The next cursor is one past the last record copied (or
    /// `cursor` when none was). Records older than the log keeps are gone:
    /// the first record's `seq` then exceeds `cursor`. Errors: `TooLarge`
    /// if the next record does not fit in `len` at all (a record is at most
    /// [`MAX_LOG_RECORD`] bytes).
    LogRead = 0,
    /// `(event, bits) -> 0`: set `bits` on `event` whenever a record is
    /// added to the log (up to [`MAX_LOG_WATCHERS`] watchers; a watcher
    /// whose event is gone is dropped). Errors: `LimitReached`.
    LogWatch = 1,
    /// `(out_ptr) -> 0`: write the [`DisplayInfo`] of the screen the boot
    /// loader handed over.
    DisplayInfo = 2,
    /// `(event) -> 0`: the caller draws the screen from now on, as long as
    /// `event` lives (one of its own: it goes when the caller ends). The
    /// kernel stops drawing its messages there (a kernel panic still
    /// does), and takes the screen back, drawing from its bottom line,
    /// when the event is gone and no one claimed the screen since (a
    /// screen driver that ended and was not started again).
    DisplayClaim = 3,
    /// `(buf, len) -> 0`: add `len` bytes (at most [`MAX_CONSOLE_INJECT`])
    /// to the console's input, as if typed on the serial port (a keyboard
    /// driver's keystrokes). Bytes that do not fit in the input buffer are
    /// dropped.
    InputInject = 4,
    /// `(event, bits) -> 0`: the caller has a line being typed: until it
    /// calls this again with `event` 0, what others (other processes and
    /// the kernel) write goes above that line: the console clears the
    /// line (`CR ESC [ K`) unless it is at the start of one, shows the
    /// output, ends it with a line feed if it did not, and sets `bits` on
    /// `event`, so the caller draws its prompt and line again below.
    OutputAbove = 5,
    /// `(echo, echo_len, redraw, redraw_len) -> 0 or 1`: the holder of the
    /// line ([`ConsoleOp::OutputAbove`]) writes the echo of what was typed
    /// (at most [`MAX_DEBUG_WRITE`](crate::MAX_DEBUG_WRITE) bytes). If
    /// others' output cleared its line since it last wrote, the console
    /// first writes `redraw` (the prompt and the line as they were before
    /// this echo, starting with `CR ESC [ K`; at most as many bytes), in the
    /// same unit, and returns 1. Checking for a cleared line and then
    /// writing in two calls would leave a gap in which output can clear
    /// the line and the echo go on after it alone.
    Echo = 6,
}

impl ConsoleOp {
    /// The operation with this number.
    pub fn from_u64(v: u64) -> Option<ConsoleOp> {
        use ConsoleOp::*;
        [LogRead, LogWatch, DisplayInfo, DisplayClaim, InputInject, OutputAbove, Echo]
            .into_iter()
            .find(|o| *o as u64 == v)
    }
}

/// Most watchers of the console log.
pub const MAX_LOG_WATCHERS: usize = 4;
/// Most bytes one `InputInject` takes.
pub const MAX_CONSOLE_INJECT: usize = 256;
/// Longest writer name a log record carries.
pub const MAX_LOG_NAME: usize = 32;
/// Longest text of one log record (longer writes are split).
pub const MAX_LOG_TEXT: usize = 4096;
/// Largest log record: header, name and text.
pub const MAX_LOG_RECORD: usize = core::mem::size_of::<LogRecordHeader>() + MAX_LOG_NAME + MAX_LOG_TEXT;

/// The head of one console log record; the writer's name (`name_len`
/// bytes) and the text (`text_len` bytes) follow it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct LogRecordHeader {
    /// Sequence number, one more than the record before.
    pub seq: u64,
    /// The writer's pid (0: the kernel).
    pub pid: u32,
    /// Length of the text.
    pub text_len: u16,
    /// Length of the name.
    pub name_len: u8,
    /// [`LogLevel`] of the text, as a number.
    pub level: u8,
}

/// How a log record's text reads: an ordinary message, a warning or an
/// error (the screen draws them in yellow and red).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    /// Anything else.
    Normal = 0,
    /// `[name] warning: ...` or `kernel: warning: ...`.
    Warning = 1,
    /// `[name] error: ...`, `kernel: error: ...`, `[name] panic: ...` or a
    /// kernel panic.
    Error = 2,
}

impl LogLevel {
    /// The level with this number (unknown numbers read as `Normal`).
    pub fn from_u8(v: u8) -> LogLevel {
        match v {
            1 => LogLevel::Warning,
            2 => LogLevel::Error,
            _ => LogLevel::Normal,
        }
    }

    /// The level of a message from its text: `[NAME] warning: ...` and
    /// `kernel: warning: ...` are warnings, the same with `error:` (and a
    /// `KERNEL PANIC`, and a program's `[NAME] panic: ...`) errors.
    pub fn of_text(text: &[u8]) -> LogLevel {
        let body = if text.first() == Some(&b'[') {
            match text.iter().position(|&b| b == b']') {
                Some(end) => &text[end + 1..],
                None => text,
            }
        } else if let Some(rest) = text.strip_prefix(b"kernel:") {
            rest
        } else {
            text
        };
        let body = body.strip_prefix(b" ").unwrap_or(body);
        if body.starts_with(b"warning:") {
            LogLevel::Warning
        } else if body.starts_with(b"error:")
            || body.starts_with(b"panic:")
            || text.windows(12).any(|w| w == b"KERNEL PANIC")
        {
            LogLevel::Error
        } else {
            LogLevel::Normal
        }
    }
}

/// What the boot loader handed over to draw on, for `DisplayInfo`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct DisplayInfo {
    /// [`DISPLAY_NONE`], [`DISPLAY_RGB`] or [`DISPLAY_TEXT`].
    pub kind: u32,
    /// Bits per pixel (RGB), 16 for text mode.
    pub bpp: u32,
    /// Physical address of the first pixel (or character cell).
    pub address: u64,
    /// Width in pixels (text mode: in characters).
    pub width: u32,
    /// Height in pixels (text mode: in characters).
    pub height: u32,
    /// Bytes from one row (text mode: one line of characters) to the next.
    pub pitch: u32,
    /// Bit position of red in a pixel.
    pub red_shift: u8,
    /// Bits of red.
    pub red_size: u8,
    /// Bit position of green.
    pub green_shift: u8,
    /// Bits of green.
    pub green_size: u8,
    /// Bit position of blue.
    pub blue_shift: u8,
    /// Bits of blue.
    pub blue_size: u8,
    /// Zero.
    pub reserved: [u8; 6],
}

/// No screen (a UEFI machine without a framebuffer, or none was asked for).
pub const DISPLAY_NONE: u32 = 0;
/// A linear framebuffer of direct-colour pixels.
pub const DISPLAY_RGB: u32 = 1;
/// VGA text mode: 16-bit cells (character, attribute) at 0xB8000.
pub const DISPLAY_TEXT: u32 = 2;

impl DisplayInfo {
    /// Bytes of device memory the display spans (pitch times rows).
    pub fn span(&self) -> u64 {
        self.pitch as u64 * self.height as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_from_text() {
        assert_eq!(LogLevel::of_text(b"[kv] warning: slow"), LogLevel::Warning);
        assert_eq!(LogLevel::of_text(b"[vault] error: disk gone\n"), LogLevel::Error);
        assert_eq!(LogLevel::of_text(b"kernel: warning: x"), LogLevel::Warning);
        assert_eq!(LogLevel::of_text(b"\nKERNEL PANIC: oops"), LogLevel::Error);
        assert_eq!(LogLevel::of_text(b"[kv] panic: at src/x.rs:1:2"), LogLevel::Error);
        assert_eq!(LogLevel::of_text(b"[kv] kv is up"), LogLevel::Normal);
        assert_eq!(LogLevel::of_text(b"echo error: not a log line"), LogLevel::Normal);
        assert_eq!(LogLevel::of_text(b"["), LogLevel::Normal);
    }

    #[test]
    fn ops_round_trip() {
        for n in 0..10 {
            if let Some(op) = ConsoleOp::from_u64(n) {
                assert_eq!(op as u64, n);
            }
        }
        assert_eq!(ConsoleOp::from_u64(7), None);
        assert_eq!(core::mem::size_of::<LogRecordHeader>(), 16);
        assert_eq!(core::mem::size_of::<DisplayInfo>(), 40);
    }
}
