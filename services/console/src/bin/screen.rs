//! `screen`: the screen driver. It draws the console on the display the
//! boot loader handed over (a framebuffer, or VGA text mode under BIOS):
//! everything written to the console, as the kernel's console log has it,
//! through a terminal (`drivers::console`). At start it claims the display
//! from the kernel and replays the log the kernel keeps, so the screen a
//! restarted driver draws is the one its predecessor showed; a crash costs
//! nothing typed. The claim lasts as long as the driver: should it end for
//! good, the kernel draws its messages there again. Without a display it
//! has nothing to do and waits.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use drivers::console::screen::{geometry, Screen};
use drivers::console::term::Terminal;
use libos::abi::{DisplayInfo, DISPLAY_TEXT, PAGE_SIZE};
use libos::console::{records, LogReader};
use libos::handle::Event;
use libos::{directory, sys, vm};

libos::main!(main);

fn idle() -> ! {
    let event = Event::new().ok();
    loop {
        match &event {
            Some(e) => {
                let _ = e.wait(u64::MAX);
            }
            None => {
                sys::yield_now();
            }
        }
    }
}

/// Map the display memory; returns the address of its first byte.
fn map_display(info: &DisplayInfo) -> Result<*mut u8, String> {
    let fb = directory::device("framebuffer").map_err(|e| format!("framebuffer: {e}"))?;
    let base = info.address & !(PAGE_SIZE - 1);
    let pages = (info.address - base + info.span()).div_ceil(PAGE_SIZE);
    let va = vm::reserve(pages).map_err(|e| format!("address space: {e}"))?;
    sys::mmio_map(fb, base, pages, va).map_err(|e| format!("map the framebuffer: {e}"))?;
    Ok((va + (info.address - base)) as *mut u8)
}

/// Text mode: hide the hardware cursor (the terminal draws its own).
fn hide_text_cursor() {
    if let Ok(ports) = directory::device("ioports:0x3d4+2") {
        let _ = sys::ioport_write(ports, 0x3d4, 1, 0x0a);
        let _ = sys::ioport_write(ports, 0x3d5, 1, 0x20);
    }
}

fn main() -> Result<(), String> {
    let console = directory::device("console").map_err(|e| format!("no console: {e}"))?;
    let info = sys::console_display(console).map_err(|e| format!("display: {e}"))?;
    let Some((cols, rows)) = geometry(&info) else {
        log::info!("no screen to draw on");
        idle()
    };
    let base = map_display(&info)?;
    // SAFETY: `base` maps the whole display (`info.span()` bytes), for the
    // life of the program.
    let mut screen = unsafe { Screen::new(info, base) }.map_err(|_| String::from("unsupported display"))?;
    if info.kind == DISPLAY_TEXT {
        hide_text_cursor();
    }
    let wake = Event::new().map_err(|e| format!("event: {e}"))?;
    sys::console_log_watch(console, wake.raw(), 1).map_err(|e| format!("watch the console: {e}"))?;
    sys::console_claim_display(console, wake.raw()).map_err(|e| format!("claim the display: {e}"))?;
    let mut term = Terminal::new(cols, rows);
    let mut reader = LogReader::new(console);
    loop {
        loop {
            let batch = reader.next_batch().map_err(|e| format!("read the console: {e}"))?;
            if batch.is_empty() {
                break;
            }
            for r in records(batch) {
                term.write(r.text, r.level);
            }
        }
        term.take_scrolled();
        screen.paint(&term);
        let _ = wake.wait(u64::MAX);
    }
}
