//! The vault's checkpoint disk seen from the host: the slot files of
//! `/KINTSUGI` listed and copied out with mtools, their records checked
//! with `checkpoint-record`. `cargo xtask vault ls|show` prints these; the
//! system tests read them, and find records in a raw image to damage them.

use checkpoint_record::{self as record, Header, RecordError, HEADER_LEN};
use std::path::Path;
use std::process::Command;

/// The vault's folder on the checkpoint disk.
pub const DIR: &str = "KINTSUGI";

/// One slot file.
#[derive(Clone, Debug)]
pub struct Slot {
    /// The service.
    pub service: String,
    /// 0 or 1.
    pub slot: u8,
    /// The file's size.
    pub file_size: u64,
    /// Its record's header, or what is wrong with it.
    pub record: Result<Header, RecordError>,
    /// The state bytes (empty unless the record is valid).
    pub state: Vec<u8>,
    /// Whether this is the service's current slot (the newest valid
    /// record).
    pub current: bool,
}

fn mtools(program: &str, args: &[&str]) -> Result<std::process::Output, String> {
    Command::new(program)
        .args(args)
        .env("MTOOLS_SKIP_CHECK", "1")
        .output()
        .map_err(|e| format!("{program} (from the mtools package): {e}"))
}

/// The slot files on the checkpoint image `image`, sorted by service and
/// slot, each with its record checked; the newest valid record of each
/// service marked current. No `/KINTSUGI` folder: no slots.
pub fn read_slots(image: &Path) -> Result<Vec<Slot>, String> {
    let img = image.display().to_string();
    if !image.exists() {
        return Err(format!("{img}: no such file"));
    }
    let dir = format!("::/{DIR}");
    let out = mtools("mdir", &["-b", "-i", &img, &dir])?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("not found") {
            return Ok(Vec::new());
        }
        return Err(format!("mdir -i {img} {dir}: {}", err.trim()));
    }
    let mut slots = Vec::new();
    for path in String::from_utf8_lossy(&out.stdout).lines() {
        let path = path.trim();
        let Some(name) = path.rsplit('/').next() else { continue };
        let Some((service, index)) = name.rsplit_once('.') else { continue };
        let slot = match index {
            "0" => 0,
            "1" => 1,
            _ => continue,
        };
        let out = mtools("mcopy", &["-n", "-i", &img, path, "-"])?;
        if !out.status.success() {
            return Err(format!("mcopy -i {img} {path}: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        let bytes = out.stdout;
        let (record, state) = match record::decode(&bytes) {
            Ok(r) => (Ok(r.header), r.state),
            Err(e) => (Err(e), Vec::new()),
        };
        slots.push(Slot {
            service: service.to_string(),
            slot,
            file_size: bytes.len() as u64,
            record,
            state,
            current: false,
        });
    }
    slots.sort_by(|a, b| (&a.service, a.slot).cmp(&(&b.service, b.slot)));
    let services: Vec<String> = slots.iter().map(|s| s.service.clone()).collect();
    for service in services {
        let newest = slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.service == service)
            .filter_map(|(i, s)| s.record.as_ref().ok().map(|h| (h.generation, i)))
            .max();
        if let Some((_, i)) = newest {
            slots[i].current = true;
        }
    }
    Ok(slots)
}

/// A size in bytes, short.
fn size(n: u64) -> String {
    if n >= 10 * 1024 * 1024 {
        format!("{} MiB", n / (1024 * 1024))
    } else if n >= 10 * 1024 {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} B")
    }
}

/// `vault ls`: a table of every slot.
pub fn listing(slots: &[Slot]) -> String {
    if slots.is_empty() {
        return String::from("no checkpoints (no /KINTSUGI slot files)\n");
    }
    let mut t = format!(
        "{:<16} {:>4} {:>10} {:>9} {:<8} {:>18} {:>9}  {}\n",
        "SERVICE", "SLOT", "GENERATION", "STATE", "KIND", "TAKEN", "FILE", "STATUS"
    );
    for s in slots {
        let status = match &s.record {
            Ok(_) if s.current => String::from("valid, current"),
            Ok(_) => String::from("valid"),
            Err(RecordError::Empty) => String::from("empty"),
            Err(e) => format!("damaged: {e}"),
        };
        let (generation, state, kind, taken) = match &s.record {
            Ok(h) => (
                h.generation.to_string(),
                size(h.state_len),
                h.kind.as_str().to_string(),
                format!("{:.3} s, boot {}", h.taken_ns as f64 / 1e9, h.boot),
            ),
            Err(_) => ("-".into(), "-".into(), "-".into(), "-".into()),
        };
        t.push_str(&format!(
            "{:<16} {:>4} {:>10} {:>9} {:<8} {:>18} {:>9}  {}\n",
            s.service,
            s.slot,
            generation,
            state,
            kind,
            taken,
            size(s.file_size),
            status
        ));
    }
    t
}

/// A hex dump of the first `max` bytes of `bytes`.
pub fn hex_dump(bytes: &[u8], max: usize) -> String {
    let mut out = String::new();
    for (i, row) in bytes[..bytes.len().min(max)].chunks(16).enumerate() {
        let hex: Vec<String> = row.iter().map(|b| format!("{b:02x}")).collect();
        let text: String = row.iter().map(|&b| if (0x20..0x7f).contains(&b) { b as char } else { '.' }).collect();
        out.push_str(&format!("{:08x}  {:<47}  {text}\n", i * 16, hex.join(" ")));
    }
    if bytes.len() > max {
        out.push_str(&format!("... ({} bytes in all)\n", bytes.len()));
    }
    out
}

/// `vault show SERVICE`: both slots in detail and the head of the current
/// state.
pub fn show(slots: &[Slot], service: &str) -> Result<String, String> {
    let mine: Vec<&Slot> = slots.iter().filter(|s| s.service == service).collect();
    if mine.is_empty() {
        let known: Vec<&str> = slots.iter().filter(|s| s.slot == 0).map(|s| s.service.as_str()).collect();
        return Err(format!(
            "no slots of '{service}' (services: {})",
            if known.is_empty() { "none".into() } else { known.join(", ") }
        ));
    }
    let mut out = String::new();
    for s in &mine {
        out.push_str(&format!("{}/{service}.{} ({} bytes): ", DIR, s.slot, s.file_size));
        match &s.record {
            Ok(h) => out.push_str(&format!(
                "generation {}, {} distillation, {} bytes of state, {} bytes of epoch, taken at {:.3} s of boot {}, payload crc {:08x}{}\n",
                h.generation,
                h.kind.as_str(),
                h.state_len,
                h.epoch_len,
                h.taken_ns as f64 / 1e9,
                h.boot,
                h.payload_crc,
                if s.current { " (current)" } else { "" }
            )),
            Err(RecordError::Empty) => out.push_str("empty\n"),
            Err(e) => out.push_str(&format!("damaged: {e}\n")),
        }
    }
    match mine.iter().find(|s| s.current) {
        Some(s) => {
            out.push_str(&format!("state of slot {}:\n", s.slot));
            out.push_str(&hex_dump(&s.state, 256));
        }
        None => out.push_str("no valid record\n"),
    }
    Ok(out)
}

/// Records of `service` found in a raw disk image (at sector boundaries):
/// `(byte offset, header)`, for tests that damage them in place.
pub fn find_records(image: &[u8], service: &str) -> Vec<(usize, Header)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + HEADER_LEN <= image.len() {
        if image[at..at + 8] == record::MAGIC {
            if let Ok(h) = Header::parse(&image[at..]) {
                if h.service == service {
                    out.push((at, h));
                }
            }
        }
        at += 512;
    }
    out
}
