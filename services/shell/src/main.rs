//! The Kintsugi shell: reads command lines from the console (the serial
//! port and the keyboard alike, through the console resource init grants
//! it) and carries them out through the directory. A foreground program
//! can be interrupted with Ctrl-C.
//!
//! While a line is being typed, the shell asks the kernel to put other
//! programs' output above it (the kernel clears the line first and tells
//! the shell), and draws the prompt and the line again below, so messages
//! never land in the middle of what is being typed. `log [NAME]` shows what the
//! console kept of a program's messages.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use libos::abi::{Handle, ProcessInfo};
use libos::channel::{select, Signal, Waitable};
use libos::directory;
use libos::handle::Process;
use libos::{print, println, sys};

mod devices;
use shell::command::{self, Command, CrashKind, KvCommand, HELP};
use shell::complete::{CommandNames, Completers};
use shell::line::{Event, LineEditor, MAX_LINE};

const PROMPT: &str = "kintsugi> ";
/// How long a command waits for a service that has not registered yet (one
/// still starting right after boot).
pub(crate) const SERVICE_PATIENCE: core::time::Duration = core::time::Duration::from_secs(10);
const INPUT_BIT: u64 = 1;
/// Set on the input event after others' output went above the line.
const ABOVE_BIT: u64 = 2;
const EXIT_BIT: u64 = 1;
/// Largest piece of output written at once (under the kernel's limit).
const WRITE_CHUNK: usize = 32 * 1024;
/// Lines `log` shows at most.
const LOG_LINES: usize = 100;

libos::main!(main);

struct Console {
    handle: Handle,
    input: Signal,
    editor: LineEditor,
    completer: Completers,
    /// Others' output goes above the line (a line is being typed).
    holding: bool,
    /// Lines entered and not run yet (typed ahead while a program ran, or
    /// several at once).
    typed: VecDeque<String>,
    /// The shell's session with the kv service, opened on first use.
    kv: Option<kv::KvClient>,
    /// Sessions with the device services.
    devices: devices::Sessions,
    /// The session with the fs service (file commands).
    files: shell::files::Session,
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
        // Read what was typed until no more input came meanwhile; note
        // whether others' messages went above the line (the kernel cleared
        // it first), also while the input was read, so that the line is
        // drawn again before its echo goes on (a long line's echo never
        // continues on a line a message cleared).
        let mut typed = Vec::new();
        let mut buf = [0u8; 1024];
        let mut bits = 0;
        loop {
            while let Ok(n) = sys::console_read(self.handle, &mut buf) {
                if n == 0 {
                    break;
                }
                typed.extend_from_slice(&buf[..n]);
            }
            let now = self.input.take();
            bits |= now;
            if now & INPUT_BIT == 0 {
                break;
            }
        }
        let mut echo = Vec::new();
        // The line as it stands before these keystrokes, for the console
        // to draw first should others' output clear it before the echo
        // is shown (see `echo_out`).
        let mut redraw = Vec::new();
        if bits & ABOVE_BIT != 0 && self.holding {
            self.editor.redraw(&mut echo);
        } else if self.holding {
            self.editor.redraw(&mut redraw);
        }
        for &b in &typed {
            match self.editor.feed(b, &mut echo, &self.completer) {
                Event::None => {}
                e => events.push(e),
            }
        }
        self.echo_out(&echo, &redraw);
        (events, false)
    }

    /// Show the echo of keystrokes. Between the shell's look at its event
    /// bits and its write, others' output may clear the line (the console
    /// shows it above); the echo alone would then go on a fresh row
    /// without the prompt and the start of the line, and an entered line
    /// show only its last keystrokes (CI: `run crashme readkernel` showed
    /// as `adkernel`). So the console writes `redraw` first in that case,
    /// in the same unit as the echo (`ConsoleOp::Echo`).
    fn echo_out(&self, echo: &[u8], redraw: &[u8]) {
        if echo.is_empty() {
            return;
        }
        let (first, rest) = echo.split_at(echo.len().min(WRITE_CHUNK));
        let redraw = if redraw.len() <= WRITE_CHUNK { redraw } else { &[] };
        if sys::console_echo(self.handle, first, redraw).is_err() {
            write_out(first);
        }
        write_out(rest);
    }

    /// Have others' output go above the line while one is typed (or not).
    fn hold(&mut self, on: bool) {
        let holder = on.then(|| (self.input.event().raw(), ABOVE_BIT));
        self.holding = sys::console_output_above(self.handle, holder).is_ok() && on;
    }
}

/// Write terminal output, in pieces the kernel takes.
fn write_out(bytes: &[u8]) {
    for chunk in bytes.chunks(WRITE_CHUNK) {
        let _ = sys::debug_write(chunk);
    }
}

fn main() -> Result<(), String> {
    let handle = directory::device("console").map_err(|e| alloc::format!("no console: {e}"))?;
    let input = Signal::new().map_err(|e| alloc::format!("no event: {e}"))?;
    sys::console_bind(handle, input.event().raw(), INPUT_BIT).map_err(|e| alloc::format!("console: {e}"))?;
    let mut completer = Completers::new();
    completer.add(CommandNames::new(HELP.iter().map(|(usage, _)| *usage)));
    let mut editor = LineEditor::new();
    editor.set_prompt(PROMPT);
    let mut console = Console {
        handle,
        input,
        editor,
        completer,
        holding: false,
        typed: VecDeque::new(),
        kv: None,
        devices: devices::Sessions::default(),
        files: Default::default(),
    };
    println!("Kintsugi shell. Type 'help' for the commands.");
    loop {
        console.hold(true);
        print!("{PROMPT}");
        let line = loop {
            if let Some(l) = console.typed.pop_front() {
                // Typed ahead: show it after the prompt as it runs.
                println!("{l}");
                break l;
            }
            let (events, _) = console.poll(None);
            let mut entered = None;
            for e in events {
                match e {
                    Event::Line(l) if entered.is_none() => entered = Some(l),
                    Event::Line(l) => console.typed.push_back(l),
                    Event::Interrupt => print!("{PROMPT}"),
                    Event::TooLong => {
                        println!("shell: line longer than {MAX_LINE} bytes; not run");
                        print!("{PROMPT}");
                    }
                    Event::None => {}
                }
            }
            if let Some(l) = entered {
                break l;
            }
        };
        console.hold(false);
        match command::parse(&line) {
            Ok(cmd) => execute(&mut console, cmd),
            Err(msg) => println!("{msg}"),
        }
    }
}

fn execute(console: &mut Console, cmd: Command) {
    match cmd {
        Command::Nothing => {}
        Command::Help => {
            println!("Commands:");
            for (usage, what) in HELP.iter().chain(shell::files::HELP) {
                println!("  {usage:<24} {what}");
            }
        }
        Command::Echo(text) => println!("{text}"),
        Command::Log(name) => show_log(console.handle, name.as_deref()),
        Command::Ps => match directory::list() {
            Ok(list) => {
                print_ps(&list);
                print_services();
            }
            Err(e) => println!("ps: {e}"),
        },
        Command::Kv(k) => kv_command(console, k),
        Command::Files(f) => shell::files::run(&mut console.files, f),
        Command::Blk(b) => devices::blk_command(&mut console.devices, b),
        Command::NicInfo => devices::nic_info(&mut console.devices),
        Command::Network(n) => shell::network::run(n),
        Command::Crash { service, how } => crash(&service, how),
        Command::Chaos { service, per_mille } => chaos(&service, per_mille),
        Command::Mem => match sys::system_info() {
            Ok(i) => println!(
                "memory: {} KiB used of {} KiB; kernel heap {} KiB used of {} KiB; {} processes; up {}.{:03} s",
                (i.total_pages - i.free_pages) * 4,
                i.total_pages * 4,
                i.kernel_heap_used / 1024,
                i.kernel_heap_size / 1024,
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
            println!("Rebooting.");
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
        for e in events {
            match e {
                Event::Interrupt => {
                    let _ = process.kill();
                }
                Event::Line(l) => console.typed.push_back(l),
                Event::TooLong => println!("shell: line longer than {MAX_LINE} bytes; not run"),
                Event::None => {}
            }
        }
    }
    report(program, pid, &process);
}

/// A control session with the companion of `service`, now (for `ps`).
fn control(service: &str) -> Result<resiliency_lib::control::ControlClient, String> {
    let name = alloc::format!("{service}.control");
    directory::connect(&name, false)
        .map(|ep| resiliency_lib::control::ControlClient::new(libos::channel::Channel::new(ep)))
        .map_err(|_| alloc::format!("'{service}' is not a resilient service"))
}

/// A control session with the companion of `service` for `crash` and
/// `chaos`: when its companion runs but has not registered `NAME.control`
/// yet (it is still starting, e.g. right after boot, or restarted by
/// init), wait up to [`SERVICE_PATIENCE`] for it, as the kv commands wait
/// for kv.
fn control_waiting(service: &str) -> Result<resiliency_lib::control::ControlClient, String> {
    let companion = alloc::format!("{service}-companion");
    let starting = directory::list().is_ok_and(|l| l.iter().any(|p| p.name() == companion && !p.state().is_ended()));
    if !starting {
        return control(service);
    }
    let name = alloc::format!("{service}.control");
    match directory::connect_within(&name, SERVICE_PATIENCE) {
        Ok(ep) => Ok(resiliency_lib::control::ControlClient::new(libos::channel::Channel::new(ep))),
        Err(directory::DirError::Refused(libos::abi::Error::NotFound, _)) => Err(alloc::format!(
            "'{service}' is still starting: its control endpoint did not come up in {} s",
            SERVICE_PATIENCE.as_secs()
        )),
        Err(e) => Err(alloc::format!("{service}: {e}")),
    }
}

fn crash(service: &str, how: CrashKind) {
    use resiliency_lib::control::Reply;
    let verb = match how {
        CrashKind::Kill => "killed by the kernel",
        CrashKind::Fault => "faulted",
        CrashKind::Hang => "hung",
        CrashKind::Panic => "panicked",
        CrashKind::Violation => "broke its contract",
        CrashKind::Corrupt => "corrupted its state",
        CrashKind::Poison => "was restarted from a checkpoint it cannot restore",
    };
    match control_waiting(service).map(|mut c| c.crash(how as u8)) {
        Ok(Ok(Reply::Done { restarts, recovery_ns })) => println!(
            "{service}: {verb}; recovered in {}.{:03} ms (restart #{restarts})",
            recovery_ns / 1_000_000,
            (recovery_ns / 1000) % 1000
        ),
        Ok(Ok(Reply::Refused { message })) => println!("crash: {message}"),
        Ok(Ok(other)) => println!("crash: unexpected answer {other:?}"),
        Ok(Err(e)) => println!("crash: {e}"),
        Err(e) => println!("crash: {e}"),
    }
}

fn chaos(service: &str, per_mille: u32) {
    use resiliency_lib::control::Reply;
    let seed = libos::time::now_ns();
    match control_waiting(service).map(|mut c| c.chaos(per_mille, seed)) {
        Ok(Ok(Reply::Done { .. })) if per_mille == 0 => println!("{service}: chaos off"),
        Ok(Ok(Reply::Done { .. })) => {
            println!("{service}: chaos on, {}.{}% of requests crash it", per_mille / 10, per_mille % 10)
        }
        Ok(Ok(other)) => println!("chaos: unexpected answer {other:?}"),
        Ok(Err(e)) => println!("chaos: {e}"),
        Err(e) => println!("chaos: {e}"),
    }
}

fn kv_command(console: &mut Console, cmd: KvCommand) {
    use kv::Reply;
    if console.kv.is_none() {
        match directory::connect_within(kv::SERVICE, SERVICE_PATIENCE) {
            Ok(ep) => match libos::channel::Channel::resumable_over(ep, kv::SERVICE) {
                Ok(ch) => console.kv = Some(kv::KvClient::new(ch)),
                Err(e) => {
                    println!("kv: {e}");
                    return;
                }
            },
            Err(e) => {
                println!("kv: {e}");
                return;
            }
        }
    }
    let Some(client) = console.kv.as_mut() else { return };
    let answer = match cmd {
        KvCommand::Get(key) => client.get(key.clone()).map(|r| match r {
            Reply::Value { found: true, value } => println!("{}", String::from_utf8_lossy(&value)),
            Reply::Value { found: false, .. } => println!("kv: no key '{key}'"),
            other => print_kv_other(other),
        }),
        KvCommand::Put(key, value) => client.put(key, value.into_bytes()).map(|r| match r {
            Reply::Done { existed: true } => println!("ok (replaced)"),
            Reply::Done { existed: false } => println!("ok"),
            other => print_kv_other(other),
        }),
        KvCommand::Del(key) => client.delete(key.clone()).map(|r| match r {
            Reply::Done { existed: true } => println!("deleted"),
            Reply::Done { existed: false } => println!("kv: no key '{key}'"),
            other => print_kv_other(other),
        }),
        KvCommand::List(prefix) => client.list(prefix).and_then(|first| {
            let mut r = first;
            let mut out = String::new();
            loop {
                match r {
                    Reply::Key { key } => {
                        out.push_str(&key);
                        out.push('\n');
                    }
                    Reply::EndList { count } => {
                        let _ = writeln!(out, "({count} key{})", if count == 1 { "" } else { "s" });
                        break;
                    }
                    other => {
                        print!("{out}");
                        print_kv_other(other);
                        return Ok(());
                    }
                }
                r = client.next_reply()?;
            }
            print!("{out}");
            Ok(())
        }),
    };
    if let Err(e) = answer {
        println!("kv: {e}");
        console.kv = None;
    }
}

fn print_kv_other(reply: kv::Reply) {
    match reply {
        kv::Reply::Failed { code, message } => println!("kv: error {code}: {message}"),
        other => println!("kv: unexpected answer {other:?}"),
    }
}

/// How long `ps` waits for the companions' figures. A companion answers
/// between two pieces of its work: in the middle of a recovery (a replay
/// through a restarting disk driver) or of a commit it may take seconds.
const FIGURES_PATIENCE: core::time::Duration = core::time::Duration::from_secs(10);

/// The figures of every resilient service (those with a `NAME.control`).
/// Every companion is asked first and the answers read after, so `ps`
/// waits for the slowest companion, not for the sum of them all; one that
/// has not answered within [`FIGURES_PATIENCE`] gets a line saying so.
fn print_services() {
    use resiliency_lib::control::{Reply, Request};
    let Ok(names) = directory::services() else { return };
    let mut asked = Vec::new();
    for name in names.iter().filter_map(|n| n.strip_suffix(".control")) {
        let Ok(mut c) = control(name) else { continue };
        if c.channel_mut().send(Request::Stats).is_ok() {
            asked.push((name, c));
        }
    }
    let deadline = libos::time::now_ns().saturating_add(FIGURES_PATIENCE.as_nanos() as u64);
    let mut out = String::new();
    let mut silent = Vec::new();
    for (name, mut c) in asked {
        let left = core::time::Duration::from_nanos(deadline.saturating_sub(libos::time::now_ns()).max(1));
        let answer = c.channel_mut().recv_timeout(left);
        if matches!(answer, Err(libos::channel::ChannelError::TimedOut)) {
            silent.push(name);
        }
        if let Ok(Reply::Figures {
            pid,
            restarts,
            checkpoints,
            log_len,
            last_recovery_ns,
            requests,
            injected,
            chaos_per_mille,
            durable,
            held_bytes,
            ..
        }) = answer
        {
            if out.is_empty() {
                let _ = writeln!(
                    out,
                    "{:<10} {:>5} {:>9} {:>11} {:>5} {:>9} {:>10} {:>6} {:>7} {:>14} {:>9}",
                    "SERVICE",
                    "PID",
                    "RESTARTS",
                    "CHECKPOINTS",
                    "LOG",
                    "INJECTED",
                    "REQUESTS",
                    "CHAOS",
                    "DURABLE",
                    "LAST RECOVERY",
                    "HELD"
                );
            }
            let recovery = if restarts == 0 {
                String::from("-")
            } else {
                alloc::format!("{}.{:03} ms", last_recovery_ns / 1_000_000, (last_recovery_ns / 1000) % 1000)
            };
            let chaos = if chaos_per_mille == 0 {
                String::from("off")
            } else {
                alloc::format!("{}.{}%", chaos_per_mille / 10, chaos_per_mille % 10)
            };
            let durable = if durable { "yes" } else { "no" };
            // Disk writes held for the next epoch (services with epochs).
            let held = match held_bytes {
                0 => String::from("-"),
                b if b < 1 << 20 => alloc::format!("{} KiB", b.div_ceil(1024)),
                b => alloc::format!("{}.{} MiB", b >> 20, ((b & 0xf_ffff) * 10) >> 20),
            };
            let _ = writeln!(
                out,
                "{name:<10} {pid:>5} {restarts:>9} {checkpoints:>11} {log_len:>5} {injected:>9} {requests:>10} {chaos:>6} {durable:>7} {recovery:>14} {held:>9}"
            );
        }
    }
    for name in silent {
        let _ = writeln!(out, "{name:<10} busy: no figures within {} s", FIGURES_PATIENCE.as_secs());
    }
    print!("{out}");
}

/// `log [NAME]`: the recent console messages of NAME (a program, or a
/// resilient service with its companion), or of everyone but the shell.
fn show_log(console: Handle, name: Option<&str>) {
    let me = libos::start::name();
    let wanted = |writer: &[u8]| match name {
        Some(n) => writer == n.as_bytes() || writer.strip_suffix(b"-companion") == Some(n.as_bytes()),
        None => writer != me.as_bytes(),
    };
    let mut reader = libos::console::LogReader::new(console);
    let mut text = Vec::new();
    loop {
        match reader.next_batch() {
            Ok([]) => break,
            Ok(batch) => {
                for r in libos::console::records(batch).filter(|r| wanted(r.name)) {
                    text.extend_from_slice(r.text);
                    if !r.text.ends_with(b"\n") {
                        text.push(b'\n');
                    }
                }
            }
            Err(e) => {
                println!("log: {e}");
                return;
            }
        }
    }
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    if lines.is_empty() {
        match name {
            Some(n) => println!("log: no messages from '{n}'"),
            None => println!("log: no messages"),
        }
        return;
    }
    let mut out = String::new();
    for l in &lines[lines.len().saturating_sub(LOG_LINES)..] {
        out.push_str(l);
        out.push('\n');
    }
    write_out(out.as_bytes());
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
