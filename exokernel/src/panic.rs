//! A kernel panic: print the message where the test harness and the user
//! see it, then stop the machine. Nothing a user program does should lead
//! here; the system tests treat this line as a failure.

use core::panic::PanicInfo;

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    x86_64::instructions::interrupts::disable();
    crate::console::emergency_print(format_args!("\nKERNEL PANIC: {info}\n"));
    crate::arch::cpu::halt_forever()
}
