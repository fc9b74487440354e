//! Small CPU helpers: the time-stamp counter, halting, port I/O.

use x86_64::instructions::port::Port;

/// The time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc has no side effects and is allowed at CPL0.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Stop forever with interrupts off.
pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}

/// Read an I/O port of `width` bytes (1, 2 or 4).
pub fn port_read(port: u16, width: u8) -> u32 {
    // SAFETY: callers check that the port belongs to the requester (a user
    // resource or the kernel's own device); reading cannot break memory safety.
    unsafe {
        match width {
            1 => Port::<u8>::new(port).read() as u32,
            2 => Port::<u16>::new(port).read() as u32,
            _ => Port::<u32>::new(port).read(),
        }
    }
}

/// Write an I/O port of `width` bytes (1, 2 or 4).
pub fn port_write(port: u16, width: u8, value: u32) {
    // SAFETY: as for `port_read`; ports never reach kernel memory except by
    // DMA, which device resources imply.
    unsafe {
        match width {
            1 => Port::<u8>::new(port).write(value as u8),
            2 => Port::<u16>::new(port).write(value as u16),
            _ => Port::<u32>::new(port).write(value),
        }
    }
}

/// The legacy PCI configuration ports (kernel-owned).
pub const PCI_CONFIG_PORTS: core::ops::Range<u16> = 0xcf8..0xd00;

fn pci_address(function: u32, offset: u16) -> u32 {
    0x8000_0000 | (function << 8) | (offset as u32 & 0xfc)
}

/// Read `width` bytes at `offset` of PCI function `function`'s
/// configuration space (mechanism 1).
pub fn pci_config_read(function: u32, offset: u16, width: u8) -> u32 {
    port_write(0xcf8, 4, pci_address(function, offset));
    port_read(0xcfc + (offset & 3), width)
}

/// Write `width` bytes at `offset` of PCI function `function`'s
/// configuration space.
pub fn pci_config_write(function: u32, offset: u16, width: u8, value: u32) {
    port_write(0xcf8, 4, pci_address(function, offset));
    port_write(0xcfc + (offset & 3), width, value);
}
