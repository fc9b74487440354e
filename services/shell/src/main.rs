//! The Kintsugi shell: reads command lines from the serial console (the
//! console resource init grants it) and carries them out through the
//! directory. A foreground program can be interrupted with Ctrl-C.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use libos::abi::{Handle, ProcessInfo};
use libos::channel::{select, Signal, Waitable};
use libos::directory;
use libos::handle::Process;
use libos::{print, println, sys};
use shell::command::{self, Command, HELP};
use shell::line::{Event, LineEditor};

const PROMPT: &str = "kintsugi> ";
const INPUT_BIT: u64 = 1;
const EXIT_BIT: u64 = 1;

libos::main!(main);

struct Console {
    handle: Handle,
    input: Signal,
    editor: LineEditor,
}

impl Console {
    /// Wait for input (or for `also` to fire) and feed it to the editor;
    /// returns editor events, and whether `also` fired.
    fn poll(&mut self, also: Option<&Signal>) -> (Vec<Event>, bool) {
        let mut items: Vec<&dyn Waitable> = Vec::from([&self.input as &dyn Waitable]);
        if let Some(s) = also {
            items.push(s);
        }
        let which = select(&items, None).unwrap_or(0);
        let mut events = Vec::new();
        if which == 1 {
            return (events, true);
        }
        self.input.take();
        let mut buf = [0u8; 256];
        let mut echo = Vec::new();
        while let Ok(n) = sys::console_read(self.handle, &mut buf) {
            if n == 0 {
                break;
            }
            for &b in &buf[..n] {
                match self.editor.feed(b, &mut echo) {
                    Event::None => {}
                    e => events.push(e),
                }
            }
        }
        if !echo.is_empty() {
            let _ = sys::debug_write(&echo);
        }
        (events, false)
    }
}

fn main() -> Result<(), String> {
    let handle = directory::device("console").map_err(|e| alloc::format!("no console: {e}"))?;
    let input = Signal::new().map_err(|e| alloc::format!("no event: {e}"))?;
    sys::console_bind(handle, input.event().raw(), INPUT_BIT).map_err(|e| alloc::format!("console: {e}"))?;
    let mut console = Console { handle, input, editor: LineEditor::new() };
    println!("Kintsugi shell. Type 'help' for the commands.");
    loop {
        print!("{PROMPT}");
        let line = loop {
            let (events, _) = console.poll(None);
            let mut got = None;
            for e in events {
                match e {
                    Event::Line(l) => {
                        got = Some(l);
                        break;
                    }
                    Event::Interrupt => print!("{PROMPT}"),
                    Event::None => {}
                }
            }
            if let Some(l) = got {
                break l;
            }
        };
        match command::parse(&line) {
            Ok(cmd) => execute(&mut console, cmd),
            Err(msg) => println!("shell: {msg}"),
        }
    }
}

fn execute(console: &mut Console, cmd: Command) {
    match cmd {
        Command::Nothing => {}
        Command::Help => {
            println!("Commands:");
            for (usage, what) in HELP {
                println!("  {usage:<24} {what}");
            }
        }
        Command::Echo(text) => println!("{text}"),
        Command::Ps => match directory::list() {
            Ok(list) => print_ps(&list),
            Err(e) => println!("ps: {e}"),
        },
        Command::Mem => match sys::system_info() {
            Ok(i) => println!(
                "memory: {} KiB used of {} KiB; {} processes; up {}.{:03} s",
                (i.total_pages - i.free_pages) * 4,
                i.total_pages * 4,
                i.processes,
                i.uptime_ns / 1_000_000_000,
                (i.uptime_ns / 1_000_000) % 1000
            ),
            Err(e) => println!("mem: {e}"),
        },
        Command::Kill(target) => match directory::kill(&target) {
            Ok(n) => println!("killed {n} process{}", if n == 1 { "" } else { "es" }),
            Err(e) => println!("kill: {e}"),
        },
        Command::Run { program, args, background } => run(console, &program, &args, background),
        Command::PowerOff => {
            println!("Powering off.");
            if let Err(e) = directory::power_off(false) {
                println!("poweroff: {e}");
            }
        }
        Command::Reboot => {
            if let Err(e) = directory::power_off(true) {
                println!("reboot: {e}");
            }
        }
    }
}

fn run(console: &mut Console, program: &str, args: &str, background: bool) {
    let (pid, process) = match directory::run(program, args) {
        Ok(p) => p,
        Err(e) => {
            println!("run: {e}");
            return;
        }
    };
    if background {
        println!("[{pid}] {program} started");
        return;
    }
    let Ok(done) = Signal::new() else {
        println!("run: cannot create an event");
        return;
    };
    if let Err(e) = process.watch(done.event(), EXIT_BIT) {
        println!("run: {e}");
        return;
    }
    loop {
        let (events, ended) = console.poll(Some(&done));
        if ended {
            break;
        }
        if events.iter().any(|e| *e == Event::Interrupt) {
            let _ = process.kill();
        }
    }
    report(program, pid, &process);
}

fn report(program: &str, pid: u32, process: &Process) {
    let Ok(info) = process.info() else { return };
    let mut how = String::new();
    let _ = info.describe_end(&mut how);
    println!("[{pid}] {program} {how}");
}

fn print_ps(list: &[ProcessInfo]) {
    let mut out = String::new();
    let _ = writeln!(out, "{:>5} {:>5}  {:<9} {:>9} {:>8}  NAME", "PID", "PPID", "STATE", "MEM(KiB)", "CPU(ms)");
    for p in list {
        let _ = writeln!(
            out,
            "{:>5} {:>5}  {:<9} {:>9} {:>8}  {}",
            p.pid,
            p.parent,
            p.state().as_str(),
            p.pages * 4,
            p.cpu_ticks,
            p.name()
        );
    }
    print!("{out}");
}
