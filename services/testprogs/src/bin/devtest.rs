//! `devtest`: use the device resources the manifest grants this program,
//! through the kernel's exports: I/O ports (the CMOS real-time clock at
//! 0x70/0x71), an interrupt line bound to an event (the RTC's periodic
//! interrupt, GSI 8), and an MMIO range (the HPET's registers). Also checks
//! that ports and memory outside the grants are refused.
#![no_std]
#![no_main]

extern crate alloc;

use libos::abi::{Error, Handle};
use libos::directory;
use libos::handle::Event;
use libos::{println, sys};

libos::main!(main);

const RTC_INDEX: u16 = 0x70;
const RTC_DATA: u16 = 0x71;
const HPET: u64 = 0xfed0_0000;

fn cmos_read(ports: Handle, reg: u8) -> Result<u8, Error> {
    sys::ioport_write(ports, RTC_INDEX, 1, reg as u32 | 0x80)?;
    Ok(sys::ioport_read(ports, RTC_DATA, 1)? as u8)
}

fn cmos_write(ports: Handle, reg: u8, value: u8) -> Result<(), Error> {
    sys::ioport_write(ports, RTC_INDEX, 1, reg as u32 | 0x80)?;
    sys::ioport_write(ports, RTC_DATA, 1, value as u32)
}

fn main() -> Result<(), alloc::string::String> {
    let fail = |what: &'static str| move |e: directory::DirError| alloc::format!("devtest: {what}: {e}");
    let ports = directory::device("ioports:0x70+2").map_err(fail("ports"))?;
    let irq = directory::device("irq:8").map_err(fail("irq"))?;
    let mmio = directory::device("mmio:0xfed00000+4096").map_err(fail("mmio"))?;
    let e = |what: &'static str| move |e: Error| alloc::format!("devtest: {what}: {e}");

    // I/O ports: the RTC's seconds register reads as a BCD or binary value.
    let seconds = cmos_read(ports, 0x00).map_err(e("read rtc"))?;
    // Outside the grant: refused.
    let outside = sys::ioport_read(ports, 0x60, 1);
    if outside != Err(Error::AccessDenied) {
        return Err(alloc::format!("devtest: port 0x60 outside the grant gave {outside:?}"));
    }
    let denied = directory::device("ioports:0x60+1").is_err();

    // Interrupts: RTC periodic interrupt at 1024 Hz (rate 6) on GSI 8.
    let event = Event::new().map_err(e("event"))?;
    sys::irq_bind(irq, event.raw(), 1).map_err(e("irq bind"))?;
    let b = cmos_read(ports, 0x0b).map_err(e("rtc reg b"))?;
    let a = cmos_read(ports, 0x0a).map_err(e("rtc reg a"))?;
    cmos_write(ports, 0x0a, (a & 0xf0) | 6).map_err(e("rtc reg a"))?;
    cmos_write(ports, 0x0b, b | 0x40).map_err(e("rtc reg b"))?;
    let mut interrupts = 0;
    let start = libos::time::now_ns();
    while interrupts < 20 && libos::time::now_ns() - start < 5_000_000_000 {
        if event.wait(1_000_000_000).is_ok() {
            interrupts += 1;
            let _ = cmos_read(ports, 0x0c); // acknowledge at the RTC
            let _ = sys::irq_ack(irq);
        }
    }
    let _ = cmos_write(ports, 0x0b, b & !0x40);

    // MMIO: the HPET's capability register names its vendor and period.
    let va = libos::vm::reserve(1).map_err(e("address space"))?;
    sys::mmio_map(mmio, HPET, 1, va).map_err(e("mmio map"))?;
    // SAFETY: the HPET registers were just mapped at va (uncached).
    let caps = unsafe { core::ptr::read_volatile(va as *const u64) };
    let period_fs = caps >> 32;
    let outside_mmio = sys::mmio_map(mmio, HPET + 4096, 1, va + 4096);

    println!(
        "devtest: rtc seconds {seconds:#x}; {interrupts} rtc interrupts; hpet period {period_fs} fs; \
         port outside grant refused; ungranted device {}; mmio outside grant {:?}",
        if denied { "refused" } else { "GRANTED" },
        outside_mmio
    );
    if interrupts < 20 || !denied || period_fs == 0 || outside_mmio != Err(Error::AccessDenied) {
        return Err(alloc::string::String::from("devtest: FAILED"));
    }
    Ok(())
}
