//! Logging through the `log` crate to the debug console, each line prefixed
//! with the program's name; and `print!`/`println!`.

use alloc::string::String;
use core::fmt::Write;
use log::{Level, LevelFilter, Log, Metadata, Record};

struct ConsoleLogger;

static LOGGER: ConsoleLogger = ConsoleLogger;

impl Log for ConsoleLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut line = String::new();
        let level = match record.level() {
            Level::Error => "error: ",
            Level::Warn => "warning: ",
            Level::Info => "",
            Level::Debug => "debug: ",
            Level::Trace => "trace: ",
        };
        let _ = writeln!(line, "[{}] {}{}", crate::start::name(), level, record.args());
        let _ = crate::sys::debug_write(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Install the logger (Info level).
pub fn init() {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(LevelFilter::Info);
}

/// Print formatted text to the console as one write.
pub fn print(args: core::fmt::Arguments) {
    let mut s = String::new();
    let _ = s.write_fmt(args);
    let _ = crate::sys::debug_write(s.as_bytes());
}

/// Print to the console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::logger::print(format_args!($($arg)*)) };
}

/// Print a line to the console.
#[macro_export]
macro_rules! println {
    () => { $crate::logger::print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::logger::print(format_args!("{}\n", format_args!($($arg)*))) };
}
