//! `kbd`: the PS/2 keyboard driver. It sets the i8042 controller up, waits
//! for its interrupt (IRQ 1), decodes scancodes (US layout, Shift, Caps
//! Lock, Ctrl) into the bytes a terminal sends and adds them to the
//! console's input, where the shell reads them as if typed on the serial
//! port. A crash costs at most the keys being decoded: init restarts it,
//! it sets the controller up again and types the keys that waited there
//! meanwhile.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use drivers::console::ps2::{self, KeyDecoder, Ports};
use libos::abi::{Handle, MAX_CONSOLE_INJECT};
use libos::handle::Event;
use libos::{directory, sys};

libos::main!(main);

/// How long to wait for an interrupt before looking at the controller
/// anyway (a lost interrupt costs this much, never a key).
const POLL_NS: u64 = 500_000_000;
/// At start, the keyboard is done sending the keys it buffered when it
/// has sent nothing for this long (it sends one byte in about a
/// millisecond)...
const SETTLE_NS: u64 = 20_000_000;
/// ... or after this many waits (someone keeps typing).
const SETTLE_ROUNDS: usize = 32;

struct Controller {
    data: Handle,
    status: Handle,
}

impl Ports for Controller {
    fn read(&mut self, port: u16) -> u8 {
        let h = if port == ps2::DATA { self.data } else { self.status };
        sys::ioport_read(h, port, 1).map(|v| v as u8).unwrap_or(0xff)
    }

    fn write(&mut self, port: u16, value: u8) {
        let h = if port == ps2::DATA { self.data } else { self.status };
        let _ = sys::ioport_write(h, port, 1, value as u32);
    }
}

fn main() -> Result<(), String> {
    let dev = |name: &str| directory::device(name).map_err(|e| format!("{name}: {e}"));
    let console = dev("console")?;
    let mut ctl = Controller { data: dev("ioports:0x60+1")?, status: dev("ioports:0x64+1")? };
    let irq = dev("irq:1")?;
    let wake = Event::new().map_err(|e| format!("event: {e}"))?;
    sys::irq_bind(irq, wake.raw(), 1).map_err(|e| format!("irq 1: {e}"))?;
    let mut decoder = KeyDecoder::new();
    let mut bytes = Vec::new();
    // Keys typed while no driver ran (a crashed one being restarted) wait
    // in the controller and the keyboard: they are typed now, before
    // enabling scanning empties the keyboard's buffer.
    if ps2::setup(&mut ctl, |scancode| decoder.feed(scancode, &mut bytes)).is_err() {
        log::warn!("no PS/2 controller answers; no keyboard");
        loop {
            let _ = wake.wait(u64::MAX);
        }
    }
    let _ = wake.poll();
    for _ in 0..SETTLE_ROUNDS {
        let _ = sys::irq_ack(irq);
        let woke = wake.wait(SETTLE_NS).is_ok_and(|bits| bits != 0);
        if ps2::drain(&mut ctl, |scancode| decoder.feed(scancode, &mut bytes)) == 0 && !woke {
            break;
        }
    }
    if ps2::enable_scanning(&mut ctl).is_err() {
        log::warn!("the keyboard controller does not take commands");
    }
    loop {
        ps2::drain(&mut ctl, |scancode| decoder.feed(scancode, &mut bytes));
        for chunk in bytes.chunks(MAX_CONSOLE_INJECT) {
            if let Err(e) = sys::console_inject(console, chunk) {
                log::warn!("cannot type into the console: {e}");
            }
        }
        bytes.clear();
        let _ = sys::irq_ack(irq);
        let _ = wake.wait(POLL_NS);
    }
}
