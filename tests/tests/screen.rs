//! The screen and keyboard console a PC user gets: the ISO booted by BIOS
//! and by UEFI with a VGA card; keys typed on the PS/2 keyboard through
//! QEMU's monitor (`sendkey`); the screen read back from `screendump`
//! pictures by matching every character cell against the console font
//! rendered on the host (nothing is asked of the guest about its screen).

use console_font::{DEFAULT_FG, ERROR_FG, PALETTE, PANIC_BG, PANIC_FG, WARNING_FG};
use kintsugi_tests::monitor::{key_name, Monitor};
use kintsugi_tests::screen::Row;
use kintsugi_tests::{boot_with, Boot, Display, Image, Machine, QemuConfig, COMMAND_TIMEOUT};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn iso() -> PathBuf {
    let image = Image::built().unwrap_or_else(|e| panic!("{e}"));
    image.iso.unwrap_or_else(|| panic!("no ISO in the image folder; `cargo xtask test` makes it"))
}

/// Take pictures until the screen's text satisfies `ok`; its lines.
fn wait_screen(mon: &mut Monitor, what: &str, ok: impl Fn(&[String]) -> bool) -> Vec<String> {
    wait_rows(mon, what, |rows| ok(&rows.iter().map(|r| r.text.clone()).collect::<Vec<_>>()))
        .into_iter()
        .map(|r| r.text)
        .collect()
}

/// Take pictures until the screen's rows (text and colours) satisfy `ok`.
fn wait_rows(mon: &mut Monitor, what: &str, ok: impl Fn(&[Row]) -> bool) -> Vec<Row> {
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    loop {
        let rows = mon.screendump().expect("screendump").rows();
        if ok(&rows) {
            return rows;
        }
        if Instant::now() > deadline {
            let text: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
            panic!("the screen never showed {what}; it shows:\n{}", text.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The index of the first line equal to `line`, at or after `from`.
fn find(lines: &[String], line: &str, from: usize) -> Option<usize> {
    lines.iter().skip(from).position(|l| l == line).map(|i| i + from)
}

/// Whether a line is a service's log line (`[name] ...`), which may land
/// between a command and its output while the services still start.
fn is_log_line(line: &str) -> bool {
    line.starts_with('[') && line.contains("] ")
}

/// Whether `first` is on the screen with `then` below it, with nothing
/// but services' log lines between them.
fn shows_pair(lines: &[String], first: &str, then: &str) -> bool {
    lines
        .iter()
        .enumerate()
        .any(|(i, l)| l == first && lines[i + 1..].iter().find(|x| !is_log_line(x)).is_some_and(|x| x == then))
}

/// Type `text` on the keyboard until the serial console shows `expect`
/// (a keyboard driver that was just restarted may miss the first keys).
fn type_until(m: &mut Machine, mon: &mut Monitor, text: &str, expect: &str) {
    for attempt in 1..=5 {
        mon.type_text(m, text).expect("sendkey");
        if m.expect(expect, Duration::from_secs(20)).is_ok() {
            return;
        }
        eprintln!("typing {text:?}, attempt {attempt}, failed; the serial port's last output: {:?}", m.raw_tail(400));
        mon.press(m, "ctrl-u").expect("sendkey");
    }
    panic!("typing {text:?} never gave {expect:?}:\n{}", m.console());
}

fn check(boot: Boot, tag: &str) {
    let sock = std::env::temp_dir().join(format!("kintsugi-{}-{tag}.monitor", std::process::id()));
    let _ = std::fs::remove_file(&sock);
    let cfg = QemuConfig { boot, display: Display::Offscreen, monitor: Some(sock.clone()), ..QemuConfig::default() };
    let mut m = boot_with(&cfg);
    let mut mon = Monitor::connect(&sock, Duration::from_secs(30)).expect("the QEMU monitor");

    // The kernel's boot messages and the shell's prompt are on the screen.
    wait_screen(&mut mon, "the boot messages and a prompt", |l| {
        l.iter().any(|x| x == "Kintsugi exokernel starting")
            && l.iter().any(|x| x.starts_with("screen: framebuffer 1024x768x32"))
            && l.iter().rev().find(|x| !x.is_empty()).is_some_and(|x| x == "kintsugi>")
    });

    // A command typed on the serial console: the screen shows it and its
    // output too.
    m.sh("echo \"from the serial port\"");
    wait_screen(&mut mon, "a command typed on the serial console", |l| {
        shows_pair(l, "kintsugi> echo \"from the serial port\"", "from the serial port")
    });

    // A command typed on the keyboard runs, and the screen shows it and
    // its output (the serial console shows them too).
    type_until(&mut m, &mut mon, "echo \"Hello, Screen!\"\n", "\nHello, Screen!\n");
    wait_screen(&mut mon, "the typed command and its output", |l| {
        shows_pair(l, "kintsugi> echo \"Hello, Screen!\"", "Hello, Screen!")
    });

    // Up arrow and Enter run it again; Shift and Caps Lock; Ctrl-U clears
    // the line; Ctrl-C abandons it.
    mon.press(&m, "up").unwrap();
    mon.press(&m, "ret").unwrap();
    m.expect("\nHello, Screen!\n", COMMAND_TIMEOUT).expect("the line from the history ran");
    mon.type_text(&m, "echo ").unwrap();
    mon.sendkey("caps_lock").unwrap();
    mon.type_text(&m, "caps").unwrap();
    mon.sendkey("caps_lock").unwrap();
    mon.type_text(&m, " Off\n").unwrap();
    m.expect("\nCAPS Off\n", COMMAND_TIMEOUT).expect("caps lock");
    mon.type_text(&m, "garbage").unwrap();
    mon.press(&m, "ctrl-u").unwrap();
    mon.type_text(&m, "echo cleared\n").unwrap();
    m.expect("\ncleared\n", COMMAND_TIMEOUT).expect("ctrl-u");
    mon.type_text(&m, "abandoned").unwrap();
    mon.press(&m, "ctrl-c").unwrap();
    m.expect("^C", COMMAND_TIMEOUT).expect("ctrl-c");
    // One picture shows it all (a picture taken while the driver paints
    // can show rows half drawn: the wait takes another).
    wait_screen(&mut mon, "the history, caps lock, ctrl-u and ctrl-c at work", |l| {
        shows_pair(l, "kintsugi> echo CAPS Off", "CAPS Off")
            && shows_pair(l, "kintsugi> echo cleared", "cleared")
            && l.iter().any(|x| x == "kintsugi> abandoned^C")
            && find(l, "Hello, Screen!", 0).is_some_and(|first| find(l, "Hello, Screen!", first + 1).is_some())
    });

    // Warnings are yellow, errors red: a process fault (the kernel's
    // warning) and a program's panic (its error); ordinary text is grey.
    mon.type_text(&m, "run crashme null\n").unwrap();
    m.expect("crashme faulted", COMMAND_TIMEOUT).expect("crashme faults");
    mon.type_text(&m, "run crashme panic\n").unwrap();
    m.expect("crashme panicked", COMMAND_TIMEOUT).expect("crashme panics");
    wait_rows(&mut mon, "a yellow warning and a red error", |rows| {
        let warning = rows.iter().find(|r| r.text.starts_with("kernel: warning: process"));
        let error = rows.iter().find(|r| r.text.starts_with("[crashme] panic:"));
        let typed = rows.iter().find(|r| r.text == "kintsugi> run crashme null");
        warning.is_some_and(|r| r.all_in(WARNING_FG))
            && error.is_some_and(|r| r.all_in(ERROR_FG))
            && typed.is_some_and(|r| r.all_in(DEFAULT_FG))
    });

    // The screen driver crashes: init restarts it, and it draws the same
    // console again from the kernel's log. The keyboard goes on meanwhile.
    m.sh("kill screen");
    mon.type_text(&m, "echo redrawn\n").unwrap();
    m.expect("\nredrawn\n", COMMAND_TIMEOUT).expect("typing while the screen driver restarts");
    m.wait_for_text("restarted screen", COMMAND_TIMEOUT).expect("init restarts the screen driver");
    wait_screen(&mut mon, "the console after the screen driver's restart", |l| {
        shows_pair(l, "kintsugi> echo cleared", "cleared") && shows_pair(l, "kintsugi> echo redrawn", "redrawn")
    });

    // The keyboard driver crashes: init restarts it and typing goes on.
    // Keys typed at once, while it is gone or starting again, wait in the
    // keyboard controller: none is lost (at most a key the driver was
    // decoding when it died could be; it was decoding none here). Five
    // keys are ten bytes: QEMU's PS/2 keyboard holds 16.
    m.sh("kill kbd");
    for c in "echo ".chars() {
        mon.sendkey(&key_name(c).unwrap()).unwrap();
    }
    mon.type_text(&m, "typed again\n").unwrap();
    m.expect("\ntyped again\n", COMMAND_TIMEOUT).expect("the keys typed while the keyboard driver restarted");
    m.wait_for_text("restarted kbd", COMMAND_TIMEOUT).expect("init restarts the keyboard driver");
    // By now the console has more lines than the screen's 48 rows: it
    // scrolled, the first boot message is gone from the top.
    wait_screen(&mut mon, "typing after the keyboard driver's restart, scrolled", |l| {
        shows_pair(l, "kintsugi> echo typed again", "typed again")
            && !l.iter().any(|x| x == "Kintsugi exokernel starting")
    });

    // The screen driver keeps ending: init gives up on it, and the kernel
    // takes the screen back, writing from its bottom line (in the same
    // font and colours).
    for _ in 0..30 {
        if m.console().contains("not restarting it") {
            break;
        }
        m.sh("kill screen");
    }
    assert!(m.console().contains("screen ended"), "init never gave up on the screen driver:\n{}", m.console());
    mon.type_text(&m, "echo kernel draws\n").unwrap();
    m.expect("\nkernel draws\n", COMMAND_TIMEOUT).expect("typing without a screen driver");
    wait_rows(&mut mon, "the kernel drawing the console again", |rows| {
        let text: Vec<String> = rows.iter().map(|r| r.text.clone()).collect();
        rows.iter().any(|r| r.text.ends_with("not restarting it") && r.all_in(ERROR_FG))
            && shows_pair(&text, "kintsugi> echo kernel draws", "kernel draws")
    });
    m.shutdown();
    let _ = std::fs::remove_file(&sock);
    let _ = std::fs::remove_file(sock.with_extension("ppm"));
}

#[test]
fn screen_and_keyboard_with_bios() {
    check(Boot::IsoBios(iso()), "bios");
}

/// The UEFI firmware, if installed.
fn ovmf() -> Option<PathBuf> {
    ["/usr/share/ovmf/OVMF.fd", "/usr/share/OVMF/OVMF.fd", "/usr/share/qemu/OVMF.fd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

#[test]
fn screen_and_keyboard_with_uefi() {
    match ovmf() {
        Some(fw) => check(Boot::IsoUefi(iso(), fw), "uefi"),
        None => eprintln!("screen_and_keyboard_with_uefi: OVMF is not installed here; UEFI not tested"),
    }
}

/// An ISO whose GRUB boots the kernel alone with `kintsugi.panic` on its
/// command line (it panics on purpose after its boot messages).
fn panic_iso(tag: &str) -> PathBuf {
    let image = Image::built().unwrap_or_else(|e| panic!("{e}"));
    let out = std::env::temp_dir().join(format!("kintsugi-{}-{tag}-panic.iso", std::process::id()));
    kintsugi_tests::iso::make(&image.kernel, &[], "kintsugi.panic", &out).unwrap_or_else(|e| panic!("{e}"))
}

/// A kernel panic on the framebuffer GRUB handed over: the kernel paints
/// it red and writes the panic in white, with the console's font (read
/// back from the picture).
fn panic_on_the_framebuffer(boot: Boot, tag: &str) {
    let sock = std::env::temp_dir().join(format!("kintsugi-{}-{tag}-fbpanic.monitor", std::process::id()));
    let _ = std::fs::remove_file(&sock);
    let image = Image::built().unwrap_or_else(|e| panic!("{e}"));
    let iso = match &boot {
        Boot::IsoBios(p) | Boot::IsoUefi(p, _) => p.clone(),
        Boot::Direct => unreachable!("an ISO boot"),
    };
    let cfg = QemuConfig { boot, display: Display::Offscreen, monitor: Some(sock.clone()), ..QemuConfig::default() };
    let mut m = Machine::boot(&image, &cfg, false).unwrap_or_else(|e| panic!("{e}"));
    let mut mon = Monitor::connect(&sock, Duration::from_secs(30)).expect("the QEMU monitor");
    match m.expect("the command line", COMMAND_TIMEOUT) {
        Err(kintsugi_tests::MachineError::Panic(text)) => {
            assert!(text.contains("screen: framebuffer 1024x768x32"), "{text}")
        }
        other => panic!("expected a kernel panic, got {other:?}"),
    }
    let red = PALETTE[PANIC_BG as usize];
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    loop {
        let p = mon.screendump().expect("screendump");
        let rows = p.rows();
        let painted = p.pixels.iter().filter(|&&px| px == red).count() > p.pixels.len() * 3 / 4;
        let said = rows.iter().any(|r| r.text.starts_with("KERNEL PANIC: ") && r.all_in(PANIC_FG))
            && rows.iter().any(|r| r.text == "asked for by kintsugi.panic on the command line" && r.all_in(PANIC_FG));
        if painted && said {
            break;
        }
        if Instant::now() > deadline {
            let text: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
            panic!("the screen is not a red panic screen (painted red: {painted}); it shows:\n{}", text.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    m.kill();
    let _ = std::fs::remove_file(&sock);
    let _ = std::fs::remove_file(sock.with_extension("ppm"));
    let _ = std::fs::remove_file(iso);
}

#[test]
fn a_kernel_panic_on_the_framebuffer_with_bios() {
    panic_on_the_framebuffer(Boot::IsoBios(panic_iso("bios")), "bios");
}

#[test]
fn a_kernel_panic_on_the_framebuffer_with_uefi() {
    match ovmf() {
        Some(fw) => panic_on_the_framebuffer(Boot::IsoUefi(panic_iso("uefi"), fw), "uefi"),
        None => eprintln!("a_kernel_panic_on_the_framebuffer_with_uefi: OVMF is not installed here; UEFI not tested"),
    }
}

/// A kernel panic is shown on the screen: it turns red, with the message.
/// (Direct boot, where the BIOS's VGA text mode is the screen; the kernel
/// panics on purpose when its command line says `kintsugi.panic`.)
#[test]
fn a_kernel_panic_turns_the_text_screen_red() {
    let sock = std::env::temp_dir().join(format!("kintsugi-{}-panic.monitor", std::process::id()));
    let _ = std::fs::remove_file(&sock);
    let image = Image::built().unwrap_or_else(|e| panic!("{e}"));
    let cfg = QemuConfig {
        display: Display::Offscreen,
        monitor: Some(sock.clone()),
        cmdline: "kintsugi.panic".into(),
        ..QemuConfig::default()
    };
    let mut m = Machine::boot(&image, &cfg, false).unwrap_or_else(|e| panic!("{e}"));
    let mut mon = Monitor::connect(&sock, Duration::from_secs(30)).expect("the QEMU monitor");
    match m.expect("the command line", COMMAND_TIMEOUT) {
        Err(kintsugi_tests::MachineError::Panic(_)) => {}
        other => panic!("expected a kernel panic, got {other:?}"),
    }
    // VGA text mode: a red background (the BIOS's palette has it at about
    // (0xa8, 0, 0)) with white text, over the whole screen.
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    loop {
        let p = mon.screendump().expect("screendump");
        let red = p.pixels.iter().filter(|&&(r, g, b)| r >= 0x80 && g < 0x20 && b < 0x20).count();
        let white = p.pixels.iter().filter(|&&(r, g, b)| r >= 0xf0 && g >= 0xf0 && b >= 0xf0).count();
        if red > p.pixels.len() * 3 / 4 && white > 500 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the screen is not red: {red} red and {white} white pixels of {}",
            p.pixels.len()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    m.kill();
    let _ = std::fs::remove_file(&sock);
    let _ = std::fs::remove_file(sock.with_extension("ppm"));
}

/// Without a framebuffer (QEMU's direct boot leaves the BIOS's VGA text
/// mode), the console is drawn in text mode. The picture is drawn by the
/// card's own font, so the test reads it against itself: the typed word
/// in the command line and the same word printed below must be the same
/// cells, each one different and not blank.
#[test]
fn vga_text_mode_without_a_framebuffer() {
    let sock = std::env::temp_dir().join(format!("kintsugi-{}-text.monitor", std::process::id()));
    let _ = std::fs::remove_file(&sock);
    let cfg = QemuConfig { display: Display::Offscreen, monitor: Some(sock.clone()), ..QemuConfig::default() };
    let mut m = boot_with(&cfg);
    assert!(m.console().contains("screen: VGA text mode 80x25"), "{}", m.console());
    let mut mon = Monitor::connect(&sock, Duration::from_secs(30)).expect("the QEMU monitor");
    type_until(&mut m, &mut mon, "echo QWERTY\n", "\nQWERTY\n");
    let word = "QWERTY".len();
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    loop {
        let p = mon.screendump().expect("screendump");
        let (cw, ch) = (p.width / 80, p.height / 25);
        let cell = |col: usize, row: usize| -> Vec<(u8, u8, u8)> {
            (0..ch)
                .flat_map(|y| (0..cw).map(move |x| (x, y)))
                .map(|(x, y)| p.pixels[(row * ch + y) * p.width + col * cw + x])
                .collect()
        };
        // The blank cell is the commonest one (any fixed cell may hold a
        // character of a long line).
        let mut counts = std::collections::HashMap::new();
        for row in 0..25 {
            for col in 0..80 {
                *counts.entry(cell(col, row)).or_insert(0usize) += 1;
            }
        }
        let blank = counts.into_iter().max_by_key(|(_, n)| *n).map(|(c, _)| c).unwrap_or_default();
        // "kintsugi> echo QWERTY": the word starts at column 15.
        let found = (0..24).any(|row| {
            let typed: Vec<_> = (15..15 + word).map(|c| cell(c, row)).collect();
            let printed: Vec<_> = (0..word).map(|c| cell(c, row + 1)).collect();
            typed == printed
                && typed.iter().all(|c| *c != blank)
                && (0..word).all(|i| (0..word).all(|j| i == j || typed[i] != typed[j]))
                && cell(word, row + 1) == blank
        });
        if found {
            break;
        }
        if Instant::now() > deadline {
            let keep = std::env::temp_dir().join("kintsugi-vga-failure.ppm");
            let _ = std::fs::copy(sock.with_extension("ppm"), &keep);
            panic!(
                "the text screen never showed the command and its output (picture kept in {}); console:\n{}",
                keep.display(),
                m.console()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    m.shutdown();
    let _ = std::fs::remove_file(&sock);
    let _ = std::fs::remove_file(sock.with_extension("ppm"));
}
