//! `drvtest`: lists the PCI functions granted to it (placeholder until the
//! drivers exist).
#![no_std]
#![no_main]

libos::main!(main);

fn main() -> i32 {
    match libos::directory::pci_functions() {
        Ok(list) => {
            for f in list {
                libos::println!("drvtest: {:04x}:{:04x} at {:#x}", f.vendor, f.device, f.address);
            }
            0
        }
        Err(e) => {
            libos::println!("drvtest: {e}");
            1
        }
    }
}
