//! The system manifest: one file that says what boots.
//!
//! Read by `xtask` (to know which programs to build and put in the image)
//! and by init (to know what to start, restart, and which devices each
//! program may have). The format is a small TOML subset, parsed by hand
//! because init is `no_std` and the host `toml` crate is not:
//!
//! ```text
//! # comment
//! [program.shell]          # one section per program
//! package = "shell"        # cargo package that builds it (default: the name)
//! binary = "shell"         # binary in that package (default: the name)
//! start = true             # init starts it at boot
//! restart = true           # init starts it again when it ends
//! devices = ["console"]    # device resources it may ask init for (see DeviceSpec)
//! memory = 4096            # page limit (0 = none)
//! args = "--verbose"       # argument string when started at boot
//! connects = ["kv", "*.control"]  # services it may connect to (see below)
//! provides = ["fanin-echo"]        # further names it may register
//! spawns = ["kvload", "spin"]      # other programs it may start
//! powers = ["kill", "poweroff"]    # what else it may ask init for
//! resilient = true         # a resilient service, started under its companion
//! store = "vault"          # where the companion keeps checkpoints: "vault" or "memory"
//! priority = "service"     # scheduled ahead of ordinary programs ("normal" by default)
//! ```
//!
//! # Authority
//!
//! `connects` lists the service names a program may connect to: exact
//! names, or patterns with one `*` standing for any run of characters
//! (`"*.control"`, `"*"`). Without it a program may connect to nothing.
//! A program may register its own name, `NAME.control`, `NAME.notices`,
//! and the names (or patterns) in `provides`. A program may start
//! (`Spawn`) more instances of itself and the programs (or patterns) in
//! `spawns`; a companion its own program. `powers` grants the requests
//! that reach beyond a program's own processes: `"kill"` (end any process
//! by name or pid) and `"poweroff"` (power off or reset the machine). init
//! enforces all of it in the directory ([`Program::may_connect`],
//! [`Program::may_register`], [`Program::may_spawn`], [`Program::has_power`]);
//! init itself may do anything.
//!
//! # Resilient services
//!
//! `resilient = true` declares a resilient service once: init starts (at
//! boot, if `start`, and again when it ends, if `restart`) the companion,
//! a process named `NAME-companion` running the *same program* with the
//! argument string `companion store=STORE` followed by the program's own
//! `args` ([`Program::companion`]). The companion registers `NAME`,
//! `NAME.control` and `NAME.notices` and starts the service process
//! (program `NAME`, process `NAME`, arguments `service`) through the
//! directory. Device grants (`devices`) go to the service process only,
//! never to the companion. Both processes have the program's identity
//! and its `connects`.
//!
//! Errors name the line: `line 7: unknown key 'strat' in [program.shell]`.
#![no_std]

extern crate alloc;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// One program the image carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// Its name (boot module name and default process name).
    pub name: String,
    /// Cargo package.
    pub package: String,
    /// Binary within the package.
    pub binary: String,
    /// Started at boot.
    pub start: bool,
    /// Started again when it ends.
    pub restart: bool,
    /// Device resources it may request.
    pub devices: Vec<String>,
    /// Page limit (0 = none).
    pub memory: u64,
    /// Argument string at boot.
    pub args: String,
    /// Service names (or patterns with one `*`) it may connect to.
    pub connects: Vec<String>,
    /// Names (or patterns) it may register beyond its own.
    pub provides: Vec<String>,
    /// Programs (or patterns) it may start beyond itself.
    pub spawns: Vec<String>,
    /// Requests to init beyond its own processes: `kill`, `poweroff`.
    pub powers: Vec<String>,
    /// A resilient service, started under its companion.
    pub resilient: bool,
    /// Where its companion keeps checkpoints (resilient services only).
    pub store: Store,
    /// `priority = "service"`: init spawns it in the kernel's service
    /// scheduling class, ahead of ordinary programs.
    pub service: bool,
}

/// Where a resilient service's companion keeps its checkpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Store {
    /// In the companion's memory (survives the service's crashes only).
    #[default]
    Memory,
    /// In the vault, on the checkpoint disk (survives power cuts).
    Vault,
}

impl Store {
    /// The name the manifest and the companion's arguments use.
    pub fn as_str(self) -> &'static str {
        match self {
            Store::Memory => "memory",
            Store::Vault => "vault",
        }
    }
}

/// How a resilient service's companion is started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompanionLaunch {
    /// Process name: `NAME-companion`.
    pub process: String,
    /// Argument string: `companion store=STORE`, then the program's args.
    pub args: String,
}

/// The powers a program can be granted (`powers` in the manifest).
pub const POWERS: [&str; 2] = ["kill", "poweroff"];

/// Whether `name` matches `pattern`: equal, or, for a pattern with one `*`,
/// starting with what precedes it and ending with what follows it.
pub fn name_matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        Some((head, tail)) => name.len() >= head.len() + tail.len() && name.starts_with(head) && name.ends_with(tail),
        None => pattern == name,
    }
}

impl Program {
    /// Whether this program may connect to service `service`.
    pub fn may_connect(&self, service: &str) -> bool {
        self.connects.iter().any(|p| name_matches(p, service))
    }

    /// Whether this program may register service name `service`: its own
    /// name, `NAME.control`, `NAME.notices`, or one its `provides` lists.
    pub fn may_register(&self, service: &str) -> bool {
        let own = match service.strip_prefix(self.name.as_str()) {
            Some(rest) => rest.is_empty() || rest == ".control" || rest == ".notices",
            None => false,
        };
        own || self.provides.iter().any(|p| name_matches(p, service))
    }

    /// Whether this program may start program `program`: itself, or one
    /// its `spawns` lists.
    pub fn may_spawn(&self, program: &str) -> bool {
        program == self.name || self.spawns.iter().any(|p| name_matches(p, program))
    }

    /// Whether `powers` grants `power` (one of [`POWERS`]).
    pub fn has_power(&self, power: &str) -> bool {
        self.powers.iter().any(|p| p == power)
    }

    /// How init starts its companion (None unless it is resilient).
    pub fn companion(&self) -> Option<CompanionLaunch> {
        if !self.resilient {
            return None;
        }
        let mut args = format!("companion store={}", self.store.as_str());
        if !self.args.is_empty() {
            args.push(' ');
            args.push_str(&self.args);
        }
        Some(CompanionLaunch { process: format!("{}-companion", self.name), args })
    }
}

/// The first word of a companion's argument string.
pub const COMPANION_ARG: &str = "companion";

/// Whether an argument string starts a program in its companion role.
pub fn is_companion_args(args: &str) -> bool {
    args.split_whitespace().next() == Some(COMPANION_ARG)
}

/// The whole manifest, programs in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    /// The programs.
    pub programs: Vec<Program>,
}

/// A device resource a program may be given, as written in `devices`:
/// `console`, `framebuffer` (the display memory the boot loader handed
/// over: a framebuffer, or VGA text memory), `ioports:BASE+COUNT`, `mmio:BASE+BYTES` (page-aligned),
/// `irq:GSI` with an optional `:level`, `:low` or `:level-low` trigger,
/// `pci:VENDOR:DEVICE` or `pci:class:CLASS:SUBCLASS` (the matching PCI
/// functions, with their BARs and interrupt line), or `msi` (message-
/// signalled interrupt vectors). Numbers are decimal or `0x` hexadecimal;
/// PCI ids and classes are hexadecimal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceSpec {
    /// The serial console's input.
    Console,
    /// The screen's display memory.
    Framebuffer,
    /// I/O ports `base..base+count`.
    IoPorts {
        /// First port.
        base: u16,
        /// Number of ports.
        count: u16,
    },
    /// Physical device memory.
    Mmio {
        /// First byte (page-aligned).
        base: u64,
        /// Length in bytes (a multiple of 4096).
        len: u64,
    },
    /// An interrupt line.
    Irq {
        /// Global system interrupt number.
        gsi: u32,
        /// Level-triggered.
        level: bool,
        /// Active-low.
        active_low: bool,
    },
    /// PCI functions with this vendor and device id.
    Pci {
        /// Vendor id.
        vendor: u16,
        /// Device id.
        device: u16,
    },
    /// PCI functions of this class and subclass.
    PciClass {
        /// Class code.
        class: u8,
        /// Subclass.
        subclass: u8,
    },
    /// MSI vectors.
    Msi,
}

fn parse_number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

fn parse_range(s: &str) -> Option<(u64, u64)> {
    let (base, len) = s.split_once('+')?;
    Some((parse_number(base)?, parse_number(len)?))
}

impl DeviceSpec {
    /// Parse one `devices` entry.
    pub fn parse(s: &str) -> Result<DeviceSpec, String> {
        let bad = || {
            format!(
                "bad device '{s}' (expected console, framebuffer, msi, ioports:BASE+COUNT, mmio:BASE+BYTES, \
                 irq:GSI[:level|:low|:level-low], pci:VENDOR:DEVICE or pci:class:CLASS:SUBCLASS)"
            )
        };
        if s == "console" {
            return Ok(DeviceSpec::Console);
        }
        if s == "msi" {
            return Ok(DeviceSpec::Msi);
        }
        if s == "framebuffer" {
            return Ok(DeviceSpec::Framebuffer);
        }
        if let Some(rest) = s.strip_prefix("pci:") {
            let hex = |v: &str| u32::from_str_radix(v, 16).ok();
            let parts: Vec<&str> = rest.split(':').collect();
            return match parts.as_slice() {
                ["class", c, sc] => match (hex(c), hex(sc)) {
                    (Some(c), Some(sc)) if c <= 0xff && sc <= 0xff => {
                        Ok(DeviceSpec::PciClass { class: c as u8, subclass: sc as u8 })
                    }
                    _ => Err(bad()),
                },
                [v, d] => match (hex(v), hex(d)) {
                    (Some(v), Some(d)) if v <= 0xffff && d <= 0xffff => {
                        Ok(DeviceSpec::Pci { vendor: v as u16, device: d as u16 })
                    }
                    _ => Err(bad()),
                },
                _ => Err(bad()),
            };
        }
        let (kind, rest) = s.split_once(':').ok_or_else(bad)?;
        match kind {
            "ioports" => {
                let (base, count) = parse_range(rest).ok_or_else(bad)?;
                if count == 0 || base + count > 0x1_0000 {
                    return Err(bad());
                }
                Ok(DeviceSpec::IoPorts { base: base as u16, count: count as u16 })
            }
            "mmio" => {
                let (base, len) = parse_range(rest).ok_or_else(bad)?;
                if len == 0 || base % 4096 != 0 || len % 4096 != 0 || base.checked_add(len).is_none() {
                    return Err(bad());
                }
                Ok(DeviceSpec::Mmio { base, len })
            }
            "irq" => {
                let (gsi, mode) = match rest.split_once(':') {
                    Some((g, m)) => (g, m),
                    None => (rest, ""),
                };
                let gsi = parse_number(gsi).filter(|g| *g < 256).ok_or_else(bad)? as u32;
                let (level, active_low) = match mode {
                    "" => (false, false),
                    "level" => (true, false),
                    "low" => (false, true),
                    "level-low" => (true, true),
                    _ => return Err(bad()),
                };
                Ok(DeviceSpec::Irq { gsi, level, active_low })
            }
            _ => Err(bad()),
        }
    }
}

/// A parse error with its line (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl core::fmt::Display for ParseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

enum Value {
    Str(String),
    Int(u64),
    Bool(bool),
    List(Vec<String>),
}

fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError { line, message: message.into() }
}

fn strip_comment(s: &str) -> &str {
    let mut in_str = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => in_str = !in_str,
            '#' if !in_str => return &s[..i],
            _ => {}
        }
    }
    s
}

fn parse_string(s: &str, line: usize) -> Result<String, ParseError> {
    let inner = s
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .ok_or_else(|| err(line, format!("expected a quoted string, found '{s}'")))?;
    if inner.contains('"') || inner.contains('\\') {
        return Err(err(line, "strings may not contain quotes or backslashes"));
    }
    Ok(inner.to_string())
}

fn parse_value(s: &str, line: usize) -> Result<Value, ParseError> {
    let s = s.trim();
    if s == "true" || s == "false" {
        return Ok(Value::Bool(s == "true"));
    }
    if s.starts_with('"') {
        return parse_string(s, line).map(Value::Str);
    }
    if let Some(inner) = s.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or_else(|| err(line, "unterminated list"))?;
        let items = inner
            .split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .map(|i| parse_string(i, line))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Value::List(items));
    }
    s.replace('_', "").parse::<u64>().map(Value::Int).map_err(|_| err(line, format!("cannot read value '{s}'")))
}

fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 32 && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A service name or pattern in `connects`/`provides`: 1 to 64 letters,
/// digits, `-`, `_`, `.`, with at most one `*`.
fn valid_pattern(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 64
        && p.bytes().filter(|&b| b == b'*').count() <= 1
        && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.*".contains(&b))
}

impl Manifest {
    /// Parse manifest text.
    pub fn parse(text: &str) -> Result<Manifest, ParseError> {
        let mut m = Manifest::default();
        let mut current: Option<usize> = None;
        // The line of each program's `store`, checked once the section is read.
        let mut stores: Vec<Option<usize>> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let s = strip_comment(raw).trim();
            if s.is_empty() {
                continue;
            }
            if let Some(section) = s.strip_prefix('[') {
                let section = section.strip_suffix(']').ok_or_else(|| err(line, "unterminated section header"))?;
                let name = section
                    .trim()
                    .strip_prefix("program.")
                    .ok_or_else(|| err(line, format!("unknown section [{section}]; expected [program.NAME]")))?;
                if !valid_name(name) {
                    return Err(err(line, format!("bad program name '{name}'")));
                }
                if m.programs.iter().any(|p| p.name == name) {
                    return Err(err(line, format!("program '{name}' declared twice")));
                }
                m.programs.push(Program {
                    name: name.to_string(),
                    package: name.to_string(),
                    binary: name.to_string(),
                    start: false,
                    restart: false,
                    devices: Vec::new(),
                    memory: 0,
                    args: String::new(),
                    connects: Vec::new(),
                    provides: Vec::new(),
                    spawns: Vec::new(),
                    powers: Vec::new(),
                    resilient: false,
                    store: Store::Memory,
                    service: false,
                });
                stores.push(None);
                current = Some(m.programs.len() - 1);
                continue;
            }
            let (key, value) =
                s.split_once('=').ok_or_else(|| err(line, format!("expected 'key = value', found '{s}'")))?;
            let key = key.trim();
            let idx = current.ok_or_else(|| err(line, format!("'{key}' outside any [program.NAME] section")))?;
            let p = &mut m.programs[idx];
            let value = parse_value(value, line)?;
            let wrong = |what: &str| err(line, format!("'{key}' must be {what}"));
            match (key, value) {
                ("package", Value::Str(v)) => p.package = v,
                ("binary", Value::Str(v)) => p.binary = v,
                ("start", Value::Bool(v)) => p.start = v,
                ("restart", Value::Bool(v)) => p.restart = v,
                ("devices", Value::List(v)) => {
                    for d in &v {
                        DeviceSpec::parse(d).map_err(|m| err(line, m))?;
                    }
                    p.devices = v
                }
                ("memory", Value::Int(v)) => p.memory = v,
                ("args", Value::Str(v)) => p.args = v,
                ("priority", Value::Str(v)) => match v.as_str() {
                    "service" => p.service = true,
                    "normal" => p.service = false,
                    _ => return Err(wrong("\"service\" or \"normal\"")),
                },
                ("priority", _) => return Err(wrong("\"service\" or \"normal\"")),
                ("powers", Value::List(v)) => {
                    if let Some(bad) = v.iter().find(|n| !POWERS.contains(&n.as_str())) {
                        return Err(err(line, format!("unknown power '{bad}' (kill, poweroff)")));
                    }
                    p.powers = v
                }
                ("spawns", Value::List(v)) => {
                    if let Some(bad) = v.iter().find(|n| !valid_pattern(n)) {
                        return Err(err(line, format!("bad program name '{bad}' in 'spawns'")));
                    }
                    p.spawns = v
                }
                ("connects" | "provides", Value::List(v)) => {
                    if let Some(bad) = v.iter().find(|n| !valid_pattern(n)) {
                        return Err(err(
                            line,
                            format!("bad service name '{bad}' in '{key}' (letters, digits, '-', '_', '.', one '*')"),
                        ));
                    }
                    if key == "connects" {
                        p.connects = v
                    } else {
                        p.provides = v
                    }
                }
                ("resilient", Value::Bool(v)) => p.resilient = v,
                ("store", Value::Str(v)) => {
                    p.store = match v.as_str() {
                        "vault" => Store::Vault,
                        "memory" => Store::Memory,
                        other => return Err(err(line, format!("unknown store '{other}' (vault or memory)"))),
                    };
                    stores[idx] = Some(line);
                }
                ("package" | "binary" | "args" | "store", _) => return Err(wrong("a string")),
                ("start" | "restart" | "resilient", _) => return Err(wrong("true or false")),
                ("devices" | "connects" | "provides" | "spawns" | "powers", _) => {
                    return Err(wrong("a list of strings"))
                }
                ("memory", _) => return Err(wrong("a number of pages")),
                (k, _) => return Err(err(line, format!("unknown key '{k}' in [program.{}]", p.name))),
            }
        }
        for (p, line) in m.programs.iter().zip(&stores) {
            if let (false, Some(line)) = (p.resilient, line) {
                return Err(err(*line, format!("'store' needs 'resilient = true' in [program.{}]", p.name)));
            }
        }
        Ok(m)
    }

    /// The program named `name`.
    pub fn program(&self, name: &str) -> Option<&Program> {
        self.programs.iter().find(|p| p.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
# The system
[program.shell]
start = true   # at boot
restart = true
priority = "service"
devices = ["console"]

[program.pingpong]
package = "testprogs"
priority = "normal"
memory = 1_024
args = "100 # not a comment"
"#;

    #[test]
    fn parses_the_sample() {
        let m = Manifest::parse(SAMPLE).unwrap();
        assert_eq!(m.programs.len(), 2);
        let sh = m.program("shell").unwrap();
        assert!(sh.start && sh.restart && sh.service);
        assert_eq!(sh.devices, ["console"]);
        assert_eq!(sh.package, "shell");
        let pp = m.program("pingpong").unwrap();
        assert_eq!(pp.package, "testprogs");
        assert_eq!(pp.binary, "pingpong");
        assert_eq!(pp.memory, 1024);
        assert_eq!(pp.args, "100 # not a comment");
        assert!(!pp.start && !pp.service);
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("[program.a]\nstrat = true", 2, "unknown key 'strat'"),
            ("start = true", 1, "outside any"),
            ("[program.a]\nstart = 3", 2, "true or false"),
            ("[program.a]\n[program.a]", 2, "declared twice"),
            ("[services]", 1, "unknown section"),
            ("[program.a b]", 1, "bad program name"),
            ("[program.a]\nargs = \"x", 2, "quoted string"),
            ("[program.a]\ndevices = [\"x\"", 2, "unterminated list"),
            ("[program.a]\njunk", 2, "key = value"),
            ("[program.a", 1, "unterminated section"),
            ("[program.a]\nmemory = lots", 2, "cannot read value"),
            ("[program.a]\npriority = \"high\"", 2, "\"service\" or \"normal\""),
            ("[program.a]\npriority = true", 2, "\"service\" or \"normal\""),
        ];
        for (text, line, msg) in cases {
            let e = Manifest::parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text}");
            assert!(e.message.contains(msg), "{text}: {}", e.message);
        }
    }

    #[test]
    fn device_specs() {
        assert_eq!(DeviceSpec::parse("console"), Ok(DeviceSpec::Console));
        assert_eq!(DeviceSpec::parse("ioports:0x70+2"), Ok(DeviceSpec::IoPorts { base: 0x70, count: 2 }));
        assert_eq!(DeviceSpec::parse("mmio:0xfed00000+4096"), Ok(DeviceSpec::Mmio { base: 0xfed0_0000, len: 4096 }));
        assert_eq!(DeviceSpec::parse("irq:8"), Ok(DeviceSpec::Irq { gsi: 8, level: false, active_low: false }));
        assert_eq!(
            DeviceSpec::parse("irq:11:level-low"),
            Ok(DeviceSpec::Irq { gsi: 11, level: true, active_low: true })
        );
        assert_eq!(DeviceSpec::parse("msi"), Ok(DeviceSpec::Msi));
        assert_eq!(DeviceSpec::parse("framebuffer"), Ok(DeviceSpec::Framebuffer));
        assert_eq!(DeviceSpec::parse("pci:1af4:1042"), Ok(DeviceSpec::Pci { vendor: 0x1af4, device: 0x1042 }));
        assert_eq!(DeviceSpec::parse("pci:class:01:06"), Ok(DeviceSpec::PciClass { class: 1, subclass: 6 }));
        for bad in [
            "disk",
            "ioports:0x70",
            "ioports:0xffff+2",
            "mmio:0x1001+4096",
            "mmio:0+0",
            "irq:x",
            "irq:8:edge",
            "irq:999",
            "pci:1af4",
            "pci:xyz:1",
            "pci:class:1",
            "pci:class:100:1",
            "pci:12345:1",
        ] {
            assert!(DeviceSpec::parse(bad).is_err(), "{bad}");
        }
        let e = Manifest::parse("[program.a]\ndevices = [\"console\", \"floppy\"]").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("bad device 'floppy'"), "{}", e.message);
    }

    #[test]
    fn authority_keys() {
        let m = Manifest::parse(
            "[program.shell]\nconnects = [\"*\"]\n\
             [program.kvload]\nconnects = [\"kv\", \"kv.control\"]\n\
             [program.watch]\nconnects = [\"*.notices\", \"tally-*-x\"]\n\
             [program.fanin]\nprovides = [\"fanin-echo\"]\nconnects = [\"fanin-echo\"]\n\
             [program.idle]\n",
        )
        .unwrap();
        let p = |n: &str| m.program(n).unwrap();
        assert!(p("shell").may_connect("vault") && p("shell").may_connect("kv.control"));
        assert!(p("kvload").may_connect("kv") && p("kvload").may_connect("kv.control"));
        assert!(!p("kvload").may_connect("vault") && !p("kvload").may_connect("kv.notices"));
        assert!(!p("kvload").may_connect("kv2") && !p("kvload").may_connect("k"));
        assert!(p("watch").may_connect("kv.notices") && p("watch").may_connect(".notices"));
        assert!(!p("watch").may_connect("kv.control") && !p("watch").may_connect("notices"));
        assert!(p("watch").may_connect("tally-a-x") && p("watch").may_connect("tally--x"));
        assert!(!p("watch").may_connect("tally-x"), "the head and tail may not overlap");
        assert!(!p("idle").may_connect("kv") && !p("idle").may_connect(""));
        // Registering: its own names and what it provides.
        for ok in ["kvload", "kvload.control", "kvload.notices"] {
            assert!(p("kvload").may_register(ok), "{ok}");
        }
        for no in ["kv", "kvload.other", "kvload2", "kvloa", "vault", "kvload.control.x"] {
            assert!(!p("kvload").may_register(no), "{no}");
        }
        assert!(p("fanin").may_register("fanin-echo") && p("fanin").may_connect("fanin-echo"));
        assert!(!p("shell").may_register("kv"), "connects grants no names to register");
    }

    #[test]
    fn spawns_and_powers() {
        let m = Manifest::parse(
            "[program.shell]\nspawns = [\"*\"]\npowers = [\"kill\", \"poweroff\"]\n\
             [program.bench]\nspawns = [\"kvload\", \"spin\"]\n\
             [program.idle]\n",
        )
        .unwrap();
        let p = |n: &str| m.program(n).unwrap();
        assert!(p("shell").may_spawn("kv") && p("shell").has_power("kill") && p("shell").has_power("poweroff"));
        assert!(p("bench").may_spawn("bench") && p("bench").may_spawn("kvload") && p("bench").may_spawn("spin"));
        assert!(!p("bench").may_spawn("shell") && !p("bench").has_power("kill"));
        assert!(p("idle").may_spawn("idle") && !p("idle").may_spawn("kv") && !p("idle").has_power("poweroff"));
        let e = Manifest::parse("[program.a]\npowers = [\"reboot\"]").unwrap_err();
        assert!(e.line == 2 && e.message.contains("unknown power 'reboot'"), "{}", e.message);
        let e = Manifest::parse("[program.a]\nspawns = \"kv\"").unwrap_err();
        assert!(e.message.contains("list of strings"), "{}", e.message);
    }

    #[test]
    fn resilient_services_are_declared_once() {
        let m = Manifest::parse(
            "[program.kv]\nresilient = true\nstore = \"vault\"\nargs = \"-v\"\nstart = true\n\
             [program.blk]\nresilient = true\n\
             [program.plain]\nstart = true\n",
        )
        .unwrap();
        let kv = m.program("kv").unwrap();
        assert_eq!(kv.store, Store::Vault);
        assert_eq!(
            kv.companion(),
            Some(CompanionLaunch {
                process: String::from("kv-companion"),
                args: String::from("companion store=vault -v")
            })
        );
        let blk = m.program("blk").unwrap().companion().unwrap();
        assert_eq!((blk.process.as_str(), blk.args.as_str()), ("blk-companion", "companion store=memory"));
        assert!(m.program("plain").unwrap().companion().is_none());
        assert!(is_companion_args("companion store=vault") && is_companion_args("  companion"));
        assert!(!is_companion_args("service") && !is_companion_args("companions") && !is_companion_args(""));
        for (text, line, msg) in [
            ("[program.a]\nstore = \"vault\"", 2, "needs 'resilient = true'"),
            ("[program.a]\nresilient = true\nstore = \"disk\"", 3, "unknown store 'disk'"),
            ("[program.a]\nresilient = 1", 2, "true or false"),
            ("[program.a]\nconnects = \"kv\"", 2, "list of strings"),
            ("[program.a]\nconnects = [\"a**\"]", 2, "bad service name 'a**'"),
            ("[program.a]\nprovides = [\"a b\"]", 2, "bad service name 'a b' in 'provides'"),
            ("[program.a]\nconnects = [\"\"]", 2, "bad service name ''"),
        ] {
            let e = Manifest::parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text}");
            assert!(e.message.contains(msg), "{text}: {}", e.message);
        }
    }

    #[test]
    fn empty_manifest_is_fine() {
        assert_eq!(Manifest::parse("# nothing\n\n").unwrap().programs.len(), 0);
    }
}
