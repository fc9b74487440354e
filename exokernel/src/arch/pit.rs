//! The legacy 8254 timer, used once at boot as a known clock to measure the
//! TSC and the local APIC timer against, and the legacy 8259 PICs, which are
//! remapped and masked so only the APICs deliver interrupts.

use super::cpu::{port_read, port_write};

const PIT_HZ: u64 = 1_193_182;

/// Busy-wait `ms` milliseconds on PIT channel 2 (gate-controlled, no IRQ).
pub fn wait_ms(ms: u64) {
    let count = (PIT_HZ * ms / 1000).min(0xffff) as u32;
    let gate = port_read(0x61, 1);
    port_write(0x61, 1, (gate & 0xfd) | 1);
    port_write(0x43, 1, 0xb0); // channel 2, lobyte/hibyte, mode 0, binary
    port_write(0x42, 1, count & 0xff);
    port_write(0x42, 1, count >> 8);
    let gate = port_read(0x61, 1) & 0xfe;
    port_write(0x61, 1, gate);
    port_write(0x61, 1, gate | 1);
    while port_read(0x61, 1) & 0x20 == 0 {
        core::hint::spin_loop();
    }
}

/// Remap the 8259 PICs to vectors 0xf0..0xff and mask every line.
pub fn disable_legacy_pic() {
    for (cmd, data, offset, cascade) in [(0x20u16, 0x21u16, 0xf0u32, 4u32), (0xa0, 0xa1, 0xf8, 2)] {
        port_write(cmd, 1, 0x11);
        port_write(data, 1, offset);
        port_write(data, 1, cascade);
        port_write(data, 1, 0x01);
        port_write(data, 1, 0xff);
    }
}
