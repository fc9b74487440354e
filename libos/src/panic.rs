//! A panicking program logs the message and exits with
//! `PANIC_EXIT_CODE`, which its supervisor sees in the exit notification.

use core::panic::PanicInfo;

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    crate::logger::print(format_args!("[{}] panic: {}\n", crate::start::name(), info));
    crate::sys::exit(kintsugi_abi::PANIC_EXIT_CODE)
}
