//! The vault's checkpoint disk seen from the host: the pool file
//! `/KINTSUGI/POOL.DAT` copied out with mtools, its table, slots and logs
//! checked with `checkpoint-record`. `cargo xtask vault ls|show` prints
//! these; the system tests read them, and find records in a raw image to
//! damage them.

use checkpoint_record::log as reqlog;
use checkpoint_record::table::{self, Region, Table, TABLE_SECTORS};
use checkpoint_record::{self as record, Header, RecordError, HEADER_LEN};
use std::path::Path;
use std::process::Command;

/// The vault's folder on the checkpoint disk.
pub const DIR: &str = "KINTSUGI";
/// The pool file in it.
pub const POOL: &str = "POOL.DAT";

/// A service's request log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Log {
    /// Entries after the current record (or, with none, generation 0).
    pub entries: u64,
    /// Bytes of entry data.
    pub bytes: u64,
    /// Bytes the log region holds.
    pub capacity: u64,
    /// The entries' data.
    pub data: Vec<Vec<u8>>,
}

/// One slot of a service.
#[derive(Clone, Debug)]
pub struct Slot {
    /// The service.
    pub service: String,
    /// 0 or 1.
    pub slot: u8,
    /// The slot's size in the pool.
    pub file_size: u64,
    /// Its record's header, or what is wrong with it.
    pub record: Result<Header, RecordError>,
    /// The state bytes (empty unless the record is valid).
    pub state: Vec<u8>,
    /// Whether this is the service's current slot (the newest valid
    /// record).
    pub current: bool,
    /// The service's log (on each of its slots).
    pub log: Log,
}

fn mtools(program: &str, args: &[&str]) -> Result<std::process::Output, String> {
    Command::new(program)
        .args(args)
        .env("MTOOLS_SKIP_CHECK", "1")
        .output()
        .map_err(|e| format!("{program} (from the mtools package): {e}"))
}

/// The pool file's bytes (None if the disk has no pool yet).
pub fn read_pool(image: &Path) -> Result<Option<Vec<u8>>, String> {
    let img = image.display().to_string();
    if !image.exists() {
        return Err(format!("{img}: no such file"));
    }
    let path = format!("::/{DIR}/{POOL}");
    let out = mtools("mcopy", &["-n", "-i", &img, &path, "-"])?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("not found") || err.contains("No such file") {
            return Ok(None);
        }
        return Err(format!("mcopy -i {img} {path}: {}", err.trim()));
    }
    Ok(Some(out.stdout))
}

/// The pool table in force in `pool`'s bytes, if either copy is valid.
pub fn table(pool: &[u8]) -> Option<Table> {
    let copy = |i: u64| {
        let at = (i * TABLE_SECTORS) as usize * 512;
        pool.get(at..at + TABLE_SECTORS as usize * 512).map_or(Err(table::TableError::Truncated), Table::decode)
    };
    table::newest([copy(0), copy(1)]).map(|(_, t)| t)
}

fn region(pool: &[u8], r: Region) -> &[u8] {
    let start = (r.start as usize * 512).min(pool.len());
    &pool[start..(r.end() as usize * 512).min(pool.len())]
}

/// Every service's slots on the checkpoint image `image`, sorted by service
/// and slot, each with its record checked and the service's log; the newest
/// valid record of each service marked current. No pool: no slots.
pub fn read_slots(image: &Path) -> Result<Vec<Slot>, String> {
    let Some(pool) = read_pool(image)? else { return Ok(Vec::new()) };
    let Some(t) = table(&pool) else { return Ok(Vec::new()) };
    let mut slots = Vec::new();
    for a in &t.services {
        let mut mine: Vec<Slot> = a
            .slots
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let bytes = region(&pool, *r);
                let (record, state) = match record::decode(bytes) {
                    Ok(rec) => (Ok(rec.header), rec.state),
                    Err(e) => (Err(e), Vec::new()),
                };
                Slot {
                    service: a.service.clone(),
                    slot: i as u8,
                    file_size: r.bytes(),
                    record,
                    state,
                    current: false,
                    log: Log { entries: 0, bytes: 0, capacity: 0, data: Vec::new() },
                }
            })
            .collect();
        let newest =
            mine.iter().enumerate().filter_map(|(i, s)| s.record.as_ref().ok().map(|h| (h.generation, i))).max();
        if let Some((_, i)) = newest {
            mine[i].current = true;
        }
        let generation = newest.map_or(0, |(g, _)| g);
        let log_bytes = region(&pool, a.log);
        let scan = reqlog::scan(log_bytes, generation);
        let log = Log {
            entries: scan.entries.len() as u64,
            bytes: scan.data_bytes(),
            capacity: a.log.bytes(),
            data: scan.data(log_bytes).into_iter().map(|d| d.to_vec()).collect(),
        };
        for s in &mut mine {
            s.log = log.clone();
        }
        slots.extend(mine);
    }
    slots.sort_by(|a, b| (&a.service, a.slot).cmp(&(&b.service, b.slot)));
    Ok(slots)
}

/// The redo list of `service`'s current record (its newest valid one) on
/// the checkpoint image `image`, for disk `disk` (0: the data disk): what
/// the next boot writes again before the service mounts its disk. Empty
/// when the service has no record or its record no epoch.
pub fn current_epoch(image: &Path, service: &str, disk: u8) -> Result<Vec<record::epoch::BlockWrite>, String> {
    let Some(pool) = read_pool(image)? else { return Ok(Vec::new()) };
    let Some(t) = table(&pool) else { return Ok(Vec::new()) };
    let Some(a) = t.services.iter().find(|a| a.service == service) else { return Ok(Vec::new()) };
    let newest =
        a.slots.iter().filter_map(|r| record::decode(region(&pool, *r)).ok()).max_by_key(|rec| rec.header.generation);
    let Some(rec) = newest else { return Ok(Vec::new()) };
    let writes = rec.writes().map_err(|e| format!("{service}'s current record: {e}"))?;
    Ok(writes.into_iter().filter(|w| w.disk == disk).collect())
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

/// `vault ls`: a table of every slot, and each service's log (on its
/// current slot's line).
pub fn listing(slots: &[Slot]) -> String {
    if slots.is_empty() {
        return String::from("no checkpoints (no pool /KINTSUGI/POOL.DAT, or nothing in it)\n");
    }
    let mut t = format!(
        "{:<16} {:>4} {:>10} {:>9} {:<8} {:>18} {:>9}  {:<24} {}\n",
        "SERVICE", "SLOT", "GENERATION", "STATE", "KIND", "TAKEN", "SLOT SIZE", "LOG", "STATUS"
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
        let has_current = slots.iter().any(|o| o.service == s.service && o.current);
        let log = if s.current || (!has_current && s.slot == 0) {
            format!("{} entries, {}", s.log.entries, size(s.log.bytes))
        } else {
            String::new()
        };
        t.push_str(&format!(
            "{:<16} {:>4} {:>10} {:>9} {:<8} {:>18} {:>9}  {:<24} {}\n",
            s.service,
            s.slot,
            generation,
            state,
            kind,
            taken,
            size(s.file_size),
            log,
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
        out.push_str(&format!("slot {} ({} bytes): ", s.slot, s.file_size));
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
    let log = &mine[0].log;
    out.push_str(&format!(
        "log: {} entries, {} bytes of data ({} bytes of {} in use)\n",
        log.entries,
        log.bytes,
        log.data.iter().map(|d| reqlog::entry_bytes(d.len())).sum::<usize>(),
        log.capacity
    ));
    for (i, d) in log.data.iter().enumerate().take(8) {
        out.push_str(&format!("  entry {i}: {} bytes\n", d.len()));
    }
    if log.data.len() > 8 {
        out.push_str(&format!("  ... {} more\n", log.data.len() - 8));
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
