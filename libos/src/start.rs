//! Program start: the `_start` entry the kernel jumps to, what the kernel
//! passed in the start-info page, and the [`main!`](crate::main) macro that
//! names a program's `main`.
//!
//! Convention between a spawner and libos: handles 0..3 of the start info
//! are the program's directory endpoint (memory, link, event); any further
//! handles are named in a first line of the argument string of the form
//! `!h name name ...`, which [`args`] hides. init, the first process, is
//! started by the kernel instead: its handles are the root resource and the
//! boot modules, and it has no directory endpoint.

use kintsugi_abi::{Handle, StartInfo, MAX_START_HANDLES};
use spin::Once;

static INFO: Once<&'static StartInfo> = Once::new();
static TAKEN: spin::Mutex<[bool; MAX_START_HANDLES]> = spin::Mutex::new([false; MAX_START_HANDLES]);

/// Handles of the directory endpoint at the start of the start handles.
pub const DIRECTORY_HANDLES: usize = 3;
const NAMES_PREFIX: &str = "!h ";

#[cfg(target_os = "none")]
extern "Rust" {
    fn __kintsugi_main() -> i32;
}

/// The entry point.
///
/// # Safety
/// Called only by the kernel, once, with `info` pointing at the start page.
#[cfg(target_os = "none")]
#[no_mangle]
pub unsafe extern "C" fn _start(info: *const StartInfo) -> ! {
    let _ = info;
    // SAFETY: the kernel maps the start page read-only at START_INFO_ADDR
    // for the whole life of the process.
    let si: &'static StartInfo = unsafe { &*(kintsugi_abi::START_INFO_ADDR as *const StartInfo) };
    if si.magic != kintsugi_abi::START_MAGIC {
        crate::sys::exit(102);
    }
    INFO.call_once(|| si);
    crate::logger::init();
    // SAFETY: `main!` defines this symbol in every program.
    let code = unsafe { __kintsugi_main() };
    crate::sys::exit(code)
}

fn info() -> &'static StartInfo {
    INFO.get().expect("_start ran")
}

/// This process's id.
pub fn pid() -> u32 {
    info().pid
}

/// The creator's pid (0 for init).
pub fn parent() -> u32 {
    info().parent
}

/// Whether this is init (started by the kernel).
pub fn is_init() -> bool {
    parent() == 0
}

/// The name given at spawn.
pub fn name() -> &'static str {
    let i = info();
    core::str::from_utf8(&i.name[..(i.name_len as usize).min(i.name.len())]).unwrap_or("?")
}

fn raw_args() -> &'static str {
    let i = info();
    core::str::from_utf8(&i.args[..(i.args_len as usize).min(i.args.len())]).unwrap_or("")
}

/// The argument string (without libos's handle-name line).
pub fn args() -> &'static str {
    let a = raw_args();
    match a.strip_prefix(NAMES_PREFIX) {
        Some(rest) => rest.split_once('\n').map(|(_, user)| user).unwrap_or(""),
        None => a,
    }
}

/// The start handles, in order.
pub fn handles() -> &'static [u32] {
    let i = info();
    &i.handles[..(i.handle_count as usize).min(MAX_START_HANDLES)]
}

/// Take start handle `index` (each can be taken once).
pub fn take_handle(index: usize) -> Option<Handle> {
    let h = *handles().get(index)?;
    let mut taken = TAKEN.lock();
    if taken[index] {
        return None;
    }
    taken[index] = true;
    Some(Handle(h))
}

/// Take the extra start handle named `name`.
pub fn take_named(name: &str) -> Option<Handle> {
    let line = raw_args().strip_prefix(NAMES_PREFIX)?.split('\n').next()?;
    let pos = line.split(' ').position(|n| n == name)?;
    take_handle(DIRECTORY_HANDLES + pos)
}

/// The argument string a spawner sends so the child can find its extra
/// handles by name: `names` followed by the user arguments.
pub fn encode_args(names: &[&str], user_args: &str) -> alloc::string::String {
    if names.is_empty() {
        return alloc::string::String::from(user_args);
    }
    let mut s = alloc::string::String::from(NAMES_PREFIX);
    s.push_str(&names.join(" "));
    s.push('\n');
    s.push_str(user_args);
    s
}

/// What a program's `main` may return.
pub trait Termination {
    /// The exit code.
    fn report(self) -> i32;
}

impl Termination for () {
    fn report(self) -> i32 {
        0
    }
}

impl Termination for i32 {
    fn report(self) -> i32 {
        self
    }
}

impl<E: core::fmt::Display> Termination for Result<(), E> {
    fn report(self) -> i32 {
        match self {
            Ok(()) => 0,
            Err(e) => {
                log::error!("{e}");
                1
            }
        }
    }
}

/// Name the program's main function: `libos::main!(main);`.
#[macro_export]
macro_rules! main {
    ($f:path) => {
        #[no_mangle]
        pub extern "Rust" fn __kintsugi_main() -> i32 {
            $crate::start::Termination::report($f())
        }
    };
}
