//! `echotest`: checks the console's echo for a program typing a line
//! (`ConsoleOp::Echo`), deterministically. It holds the line as the shell
//! does (`console_output_above`), writes a prompt and the start of a line,
//! has another program print a message (which clears the line and shows
//! above it), then echoes more keystrokes with `console_echo`: the console
//! must write the redraw first (and say so), so the row shows the whole
//! line; a second echo, with no output in between, must go on as is.
//! Prints `echotest: ok` or what went wrong. `echotest say` is the other
//! program.
#![no_std]
#![no_main]

extern crate alloc;

use libos::channel::Signal;
use libos::{directory, print, println, sys};

libos::main!(main);

const ABOVE_BIT: u64 = 2;

fn main() -> i32 {
    if testprogs::arg(0) == Some("say") {
        println!("echotest: a message from another program");
        return 0;
    }
    match check() {
        Ok(()) => {
            println!("echotest: ok");
            0
        }
        Err(e) => {
            println!("echotest: {e}");
            1
        }
    }
}

fn check() -> Result<(), alloc::string::String> {
    use alloc::format;
    let console = directory::device("console").map_err(|e| format!("no console: {e}"))?;
    let above = Signal::new().map_err(|e| format!("no event: {e}"))?;
    sys::console_output_above(console, Some((above.event().raw(), ABOVE_BIT))).map_err(|e| format!("hold: {e}"))?;
    print!("echotest> abc");
    let result = (|| {
        let (_, other) = directory::run("echotest", "say").map_err(|e| format!("cannot start the other: {e}"))?;
        let deadline = libos::time::now_ns() + 10_000_000_000;
        while above.take() & ABOVE_BIT == 0 {
            if libos::time::now_ns() > deadline {
                return Err(format!("the other program's message never came above the line ({:?})", other.info()));
            }
            libos::time::sleep(core::time::Duration::from_millis(5));
        }
        let redraw = b"\r\x1b[Kechotest> abc";
        match sys::console_echo(console, b"def", redraw) {
            Ok(true) => {}
            Ok(false) => return Err("the line was cleared, yet the echo went without the redraw".into()),
            Err(e) => return Err(format!("echo: {e}")),
        }
        match sys::console_echo(console, b"ghi", b"\r\x1b[Kechotest> abcdef") {
            Ok(false) => Ok(()),
            Ok(true) => Err("nothing cleared the line, yet the redraw was written".into()),
            Err(e) => Err(format!("echo: {e}")),
        }
    })();
    let _ = sys::console_output_above(console, None);
    println!();
    result
}
