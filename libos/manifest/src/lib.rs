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
//! priority = "service"     # scheduled ahead of ordinary programs ("normal" by default)
//! ```
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
    /// `priority = "service"`: init spawns it in the kernel's service
    /// scheduling class, ahead of ordinary programs.
    pub service: bool,
}

/// The whole manifest, programs in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    /// The programs.
    pub programs: Vec<Program>,
}

/// A device resource a program may be given, as written in `devices`:
/// `console`, `ioports:BASE+COUNT`, `mmio:BASE+BYTES` (page-aligned),
/// `irq:GSI` with an optional `:level`, `:low` or `:level-low` trigger,
/// `pci:VENDOR:DEVICE` or `pci:class:CLASS:SUBCLASS` (the matching PCI
/// functions, with their BARs and interrupt line), or `msi` (message-
/// signalled interrupt vectors). Numbers are decimal or `0x` hexadecimal;
/// PCI ids and classes are hexadecimal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceSpec {
    /// The serial console's input.
    Console,
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
                "bad device '{s}' (expected console, msi, ioports:BASE+COUNT, mmio:BASE+BYTES, \
                 irq:GSI[:level|:low|:level-low], pci:VENDOR:DEVICE or pci:class:CLASS:SUBCLASS)"
            )
        };
        if s == "console" {
            return Ok(DeviceSpec::Console);
        }
        if s == "msi" {
            return Ok(DeviceSpec::Msi);
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

impl Manifest {
    /// Parse manifest text.
    pub fn parse(text: &str) -> Result<Manifest, ParseError> {
        let mut m = Manifest::default();
        let mut current: Option<usize> = None;
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
                    service: false,
                });
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
                ("package" | "binary" | "args", _) => return Err(wrong("a string")),
                ("start" | "restart", _) => return Err(wrong("true or false")),
                ("devices", _) => return Err(wrong("a list of strings")),
                ("memory", _) => return Err(wrong("a number of pages")),
                (k, _) => return Err(err(line, format!("unknown key '{k}' in [program.{}]", p.name))),
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
    fn empty_manifest_is_fine() {
        assert_eq!(Manifest::parse("# nothing\n\n").unwrap().programs.len(), 0);
    }
}
