//! The CMOS real-time clock, read once at boot for its raw date and time
//! fields. The kernel keeps no wall clock; the reading only feeds the
//! machine boot's identity ([`crate::clock::boot_id`]).

use super::cpu::{port_read, port_write};

/// The raw seconds, minutes, hours, day, month and year registers (BCD
/// or binary as the RTC keeps them), packed one byte each. Read twice
/// until two readings agree, so an update in the middle does not tear it.
pub fn raw_time() -> u64 {
    let read = || {
        let mut v = 0u64;
        for (i, reg) in [0x00u32, 0x02, 0x04, 0x07, 0x08, 0x09].into_iter().enumerate() {
            // Bit 7 of the index clear: NMIs stay enabled (the stall report uses them).
            port_write(0x70, 1, reg);
            v |= (port_read(0x71, 1) as u64 & 0xff) << (8 * i);
        }
        v
    };
    let mut last = read();
    for _ in 0..4 {
        let now = read();
        if now == last {
            break;
        }
        last = now;
    }
    last
}
