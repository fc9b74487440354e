//! The vault's core: checkpoint records in two slot files per service on a
//! FAT file system, over any [`SectorDisk`].
//!
//! # Slots
//!
//! Service `S` owns `/KINTSUGI/S.0` and `/KINTSUGI/S.1`. Both are created
//! (and zero-filled, at least [`MIN_SLOT_BYTES`]) through fatfs the first
//! time `S` commits, and a slot is grown (doubled until the record fits)
//! when a record does not fit; each of those is a mount, a change and an
//! unmount, so the FAT's dirty flag is clear again afterwards. A slot holds
//! one record (`checkpoint-record`) at offset 0.
//!
//! # Commits never touch FAT metadata
//!
//! A commit writes its record *in place* into the clusters of the slot
//! that does not hold the newest valid record (their disk positions come
//! from fatfs's `File::extents` when the slot is opened, created or grown,
//! and are kept), straight to the disk, then flushes the disk before it
//! answers. No FAT, directory entry or file size changes, so a power cut
//! during a commit cannot damage the file system, and the slot holding
//! the newest committed record is never written: after the cut, the slot
//! written holds the new record, the record it held before, or a record
//! that fails its checksums; newest-valid-wins then yields the new record
//! or the previous one, never an older one and never garbage.
//!
//! # Opening
//!
//! [`Vault::open`] formats a disk that has no FAT file system at all (no
//! boot signature), mounts it, lists `/KINTSUGI`, reads and checks both
//! slots of every service, and unmounts. A damaged slot is reported (and
//! the other slot used). Generations are per service: the newest on the
//! disk plus one, so they increase across reboots.

use crate::disk::{DiskError, SectorDisk, SECTOR};
use crate::fatio::{BlockCache, FatIo};
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use checkpoint_record::{self as record, Header, Kind, Meta, Record, RecordError, HEADER_LEN};
use fatfs::{Seek as _, Write as _};

/// The folder of the slot files.
pub const DIR: &str = "KINTSUGI";
/// The smallest slot file.
pub const MIN_SLOT_BYTES: u64 = 1 << 20;
/// The largest state the vault takes.
pub const MAX_STATE: u64 = 32 << 20;
/// The largest epoch the vault takes.
pub const MAX_EPOCH: u64 = 16 << 20;
/// Sectors the FAT cache holds.
const CACHE_SECTORS: usize = 512;
/// Most directory entries looked at in `/KINTSUGI` (a bound against a
/// looping cluster chain).
const MAX_ENTRIES: usize = 4096;

/// Why a vault operation failed; each maps to a `Failed` code of the vault
/// contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VaultError {
    /// A malformed request (400).
    BadRequest(String),
    /// A state or epoch too large (413).
    TooLarge(String),
    /// The disk failed (500).
    Disk(String),
    /// No usable checkpoint disk (503).
    NoDisk(String),
    /// The checkpoint disk is full (507).
    Full(String),
}

impl VaultError {
    /// The contract's `Failed` code.
    pub fn code(&self) -> u32 {
        match self {
            VaultError::BadRequest(_) => 400,
            VaultError::TooLarge(_) => 413,
            VaultError::Disk(_) => 500,
            VaultError::NoDisk(_) => 503,
            VaultError::Full(_) => 507,
        }
    }

    /// What went wrong.
    pub fn message(&self) -> &str {
        match self {
            VaultError::BadRequest(m)
            | VaultError::TooLarge(m)
            | VaultError::Disk(m)
            | VaultError::NoDisk(m)
            | VaultError::Full(m) => m,
        }
    }
}

impl core::fmt::Display for VaultError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({})", self.message(), self.code())
    }
}

impl From<DiskError> for VaultError {
    fn from(e: DiskError) -> Self {
        VaultError::Disk(format!("checkpoint disk: {e}"))
    }
}

fn fat_error(what: &str, e: fatfs::Error<DiskError>) -> VaultError {
    match e {
        fatfs::Error::Io(d) => VaultError::Disk(format!("checkpoint disk: {what}: {d}")),
        fatfs::Error::NotEnoughSpace => VaultError::Full(format!("checkpoint disk full ({what})")),
        other => VaultError::Disk(format!("checkpoint disk: {what}: {other}")),
    }
}

/// Whether `name` can name a service in the vault: 1 to 64 ASCII letters,
/// digits, `-`, `_` or `.`, not starting with `.`.
pub fn valid_service_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= record::MAX_NAME
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// What a slot holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlotState {
    /// Never written (all zeros).
    Empty,
    /// A valid record.
    Valid(Header),
    /// Not a valid record: why, and the generation its header claims if
    /// the header itself is valid.
    Damaged {
        /// What is wrong.
        error: String,
        /// The header's generation, when the header checks out.
        generation: Option<u64>,
    },
}

/// Where a file's bytes are: runs of sectors `(lba, count)`, in file order.
type Runs = Vec<(u64, u64)>;

/// The slot files found in `/KINTSUGI`, by service: runs and size of
/// slot 0 and slot 1.
type Found = BTreeMap<String, [Option<(Runs, u64)>; 2]>;

/// A slot file as fatfs left it after `prepare_slots`.
struct SlotFile {
    runs: Runs,
    capacity: u64,
    grew: bool,
    created: bool,
}

/// One slot file.
#[derive(Clone, Debug)]
pub struct Slot {
    /// The file's clusters as runs of sectors, in file order.
    runs: Runs,
    /// Usable bytes (the file's size, whole sectors).
    capacity: u64,
    /// What it holds.
    pub state: SlotState,
}

impl Slot {
    /// The slot's size in bytes.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    fn generation(&self) -> Option<u64> {
        match &self.state {
            SlotState::Valid(h) => Some(h.generation),
            _ => None,
        }
    }
}

/// A service's two slots.
#[derive(Clone, Debug)]
pub struct Slots {
    /// Slot 0 and slot 1.
    pub slots: [Slot; 2],
}

impl Slots {
    /// The slot with the newest valid record.
    pub fn current(&self) -> Option<usize> {
        match (self.slots[0].generation(), self.slots[1].generation()) {
            (Some(a), Some(b)) => Some(if b > a { 1 } else { 0 }),
            (Some(_), None) => Some(0),
            (None, Some(_)) => Some(1),
            (None, None) => None,
        }
    }

    /// The slot the next commit goes to: the one without the newest valid
    /// record.
    pub fn target(&self) -> usize {
        match self.current() {
            Some(c) => 1 - c,
            None => 0,
        }
    }

    /// The newest generation any slot's header claims.
    fn newest_generation(&self) -> u64 {
        self.slots
            .iter()
            .filter_map(|s| match &s.state {
                SlotState::Valid(h) => Some(h.generation),
                SlotState::Damaged { generation, .. } => *generation,
                SlotState::Empty => None,
            })
            .max()
            .unwrap_or(0)
    }

    /// Why the current record may not be the newest one written: a
    /// damaged slot whose generation is unknown or newer.
    fn fallback_note(&self, used: usize) -> Option<String> {
        let other = 1 - used;
        let used_gen = self.slots[used].generation().unwrap_or(0);
        match &self.slots[other].state {
            SlotState::Damaged { error, generation } if generation.is_none_or(|g| g > used_gen) => {
                Some(format!("slot {other} damaged ({error}); restored generation {used_gen} from slot {used}"))
            }
            _ => None,
        }
    }
}

/// A commit's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    /// The record's generation.
    pub generation: u64,
    /// The slot it went to.
    pub slot: u8,
    /// How long the commit took (ns).
    pub ns: u64,
}

/// The newest valid record of a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Latest {
    /// The record.
    pub record: Record,
    /// The slot it came from.
    pub slot: u8,
    /// Why it is not the newest record written, when a newer slot is
    /// damaged (empty otherwise).
    pub note: String,
}

/// One service in a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// The service.
    pub service: String,
    /// Its newest valid record's header and slot.
    pub current: Option<(u8, Header)>,
}

/// The vault over a disk.
pub struct Vault<D: SectorDisk> {
    cache: BlockCache<D>,
    boot: u64,
    services: BTreeMap<String, Slots>,
    clock: fn() -> u64,
}

/// The file name of a service's slot.
fn slot_file(service: &str, slot: usize) -> String {
    format!("{service}.{slot}")
}

/// Sector runs `(lba, count)` of a file whose extents are `extents`
/// (byte offset and length), adjacent ones merged.
fn runs_of(extents: &[(u64, u64)]) -> Result<Runs, VaultError> {
    let mut runs: Runs = Vec::new();
    for &(offset, len) in extents {
        if offset % SECTOR as u64 != 0 {
            return Err(VaultError::Disk(String::from("a slot's cluster is not sector-aligned")));
        }
        let (lba, count) = (offset / SECTOR as u64, len.div_ceil(SECTOR as u64));
        match runs.last_mut() {
            Some((l, c)) if *l + *c == lba => *c += count,
            _ => runs.push((lba, count)),
        }
    }
    Ok(runs)
}

/// The disk runs `(lba, count)` covering sectors `first..first + count`
/// of a file laid out as `runs`.
fn map_sectors(runs: &[(u64, u64)], first: u64, count: u64) -> Result<Runs, VaultError> {
    let mut out = Vec::new();
    let (mut skip, mut left) = (first, count);
    for &(lba, n) in runs {
        if left == 0 {
            break;
        }
        if skip >= n {
            skip -= n;
            continue;
        }
        let take = (n - skip).min(left);
        out.push((lba + skip, take));
        left -= take;
        skip = 0;
    }
    if left > 0 {
        return Err(VaultError::Disk(String::from("read or write past the end of a slot")));
    }
    Ok(out)
}

impl<D: SectorDisk> Vault<D> {
    /// Open the vault on `disk`: format it if it holds no FAT file system,
    /// then read every service's slots. `clock` gives ns since boot.
    /// Damaged slots are logged (and remembered: [`Vault::latest`] says
    /// when it fell back).
    pub fn open(disk: D, clock: fn() -> u64) -> Result<Vault<D>, VaultError> {
        let mut v = Vault { cache: BlockCache::new(disk, CACHE_SECTORS), boot: 1, services: BTreeMap::new(), clock };
        if v.cache.disk.sectors() < 128 {
            return Err(VaultError::NoDisk(String::from("the checkpoint disk is too small")));
        }
        let mut boot = [0u8; SECTOR];
        v.cache.disk.read(0, &mut boot)?;
        if boot[510..] != [0x55, 0xaa] {
            log::info!("the checkpoint disk has no FAT file system; formatting it");
            v.format()?;
        }
        let found = v.scan()?;
        let mut newest_boot = 0;
        for (service, files) in found {
            let mut slots: Vec<Slot> = Vec::new();
            for (i, f) in files.into_iter().enumerate() {
                let slot = match f {
                    Some((runs, capacity)) => {
                        let mut s = Slot { runs, capacity, state: SlotState::Empty };
                        s.state = v.read_state(&s);
                        s
                    }
                    None => Slot {
                        runs: Vec::new(),
                        capacity: 0,
                        state: SlotState::Damaged {
                            error: format!("slot file {} missing", slot_file(&service, i)),
                            generation: None,
                        },
                    },
                };
                if let SlotState::Valid(h) = &slot.state {
                    newest_boot = newest_boot.max(h.boot);
                }
                slots.push(slot);
            }
            let (Some(s1), Some(s0)) = (slots.pop(), slots.pop()) else { continue };
            let slots = Slots { slots: [s0, s1] };
            v.report(&service, &slots);
            v.services.insert(service, slots);
        }
        v.boot = newest_boot + 1;
        Ok(v)
    }

    /// Log what a service's slots hold when one is damaged.
    fn report(&self, service: &str, slots: &Slots) {
        for (i, s) in slots.slots.iter().enumerate() {
            let SlotState::Damaged { error, .. } = &s.state else { continue };
            match slots.current() {
                Some(c) => {
                    let g = slots.slots[c].generation().unwrap_or(0);
                    log::warn!("{service}: slot {i} damaged ({error}); using slot {c} generation {g}");
                }
                None => log::warn!("{service}: slot {i} damaged ({error}); no valid checkpoint left"),
            }
        }
    }

    /// This boot's sequence number (one more than the newest on the disk).
    pub fn boot(&self) -> u64 {
        self.boot
    }

    /// The disk (for tests and diagnostics).
    pub fn disk(&mut self) -> &mut D {
        &mut self.cache.disk
    }

    /// Give the disk back.
    pub fn into_disk(self) -> D {
        self.cache.disk
    }

    /// A service's slots, if it has any.
    pub fn slots(&self, service: &str) -> Option<&Slots> {
        self.services.get(service)
    }

    fn format(&mut self) -> Result<(), VaultError> {
        self.cache.clear()?;
        {
            let mut io = FatIo::new(&mut self.cache);
            let options = fatfs::FormatVolumeOptions::new().volume_label(*b"KCKPT      ");
            fatfs::format_volume(&mut io, options).map_err(|e| fat_error("format", e))?;
        }
        self.cache.sync()?;
        self.cache.clear()?;
        log::info!("formatted the checkpoint disk (FAT, {} MiB)", self.cache.disk.sectors() / 2048);
        Ok(())
    }

    /// Mount, run `f` on the file system, unmount, make it durable.
    fn with_fs<T>(
        &mut self,
        f: impl FnOnce(&fatfs::FileSystem<FatIo<'_, D>>) -> Result<T, VaultError>,
    ) -> Result<T, VaultError> {
        self.cache.clear()?;
        let result = {
            let io = FatIo::new(&mut self.cache);
            let fs = fatfs::FileSystem::new(io, fatfs::FsOptions::new())
                .map_err(|e| VaultError::NoDisk(format!("cannot mount the checkpoint disk's FAT file system: {e}")))?;
            let r = f(&fs);
            let unmounted = fs.unmount().map_err(|e| fat_error("unmount", e));
            r.and_then(|v| unmounted.map(|_| v))
        };
        self.cache.sync()?;
        result
    }

    /// List `/KINTSUGI`: every service with the runs and size of its
    /// slot files.
    fn scan(&mut self) -> Result<Found, VaultError> {
        self.with_fs(|fs| {
            let mut found = Found::new();
            let dir = match fs.root_dir().open_dir(DIR) {
                Ok(d) => d,
                Err(fatfs::Error::NotFound) => return Ok(found),
                Err(e) => return Err(fat_error("open /KINTSUGI", e)),
            };
            for entry in dir.iter().take(MAX_ENTRIES) {
                let entry = match entry {
                    Ok(e) => e,
                    Err(e) => {
                        log::warn!("/{DIR}: {e}; the rest of the folder is skipped");
                        break;
                    }
                };
                if !entry.is_file() {
                    continue;
                }
                let name = entry.file_name();
                let Some((service, index)) = name.rsplit_once('.') else { continue };
                let index = match index {
                    "0" => 0,
                    "1" => 1,
                    _ => continue,
                };
                if !valid_service_name(service) {
                    continue;
                }
                let size = entry.len();
                let mut file = entry.to_file();
                let extents = collect_extents(&mut file, size).map_err(|e| fat_error("slot extents", e))?;
                let runs = runs_of(&extents)?;
                let capacity = size - size % SECTOR as u64;
                found.entry(service.to_string()).or_insert([None, None])[index] = Some((runs, capacity));
            }
            Ok(found)
        })
    }

    /// Read sectors `first..first + count` of a slot.
    fn read_slot(&mut self, slot: &Slot, first: u64, count: u64) -> Result<Vec<u8>, VaultError> {
        let mut buf = vec![0u8; (count as usize) * SECTOR];
        let mut at = 0;
        for (lba, n) in map_sectors(&slot.runs, first, count)? {
            let len = n as usize * SECTOR;
            self.cache.disk.read(lba, &mut buf[at..at + len])?;
            at += len;
        }
        Ok(buf)
    }

    /// Read and check the record in a slot: a disk error is `Err(Err)`,
    /// a bad record `Err(Ok)`.
    fn read_record(&mut self, slot: &Slot) -> Result<Record, Result<RecordError, VaultError>> {
        if slot.capacity < HEADER_LEN as u64 {
            return Err(Ok(RecordError::Truncated { needed: HEADER_LEN as u64, have: slot.capacity }));
        }
        let first = self.read_slot(slot, 0, 1).map_err(Err)?;
        let header = Header::parse(&first).map_err(Ok)?;
        if header.record_len() > slot.capacity {
            return Err(Ok(RecordError::LengthsInconsistent("record longer than its slot")));
        }
        let sectors = header.record_len().div_ceil(SECTOR as u64);
        let bytes = if sectors == 1 { first } else { self.read_slot(slot, 0, sectors).map_err(Err)? };
        record::decode(&bytes).map_err(Ok)
    }

    fn read_state(&mut self, slot: &Slot) -> SlotState {
        match self.read_record(slot) {
            Ok(r) => SlotState::Valid(r.header),
            Err(Ok(RecordError::Empty)) => SlotState::Empty,
            Err(Ok(e)) => {
                let generation =
                    self.read_slot(slot, 0, 1).ok().and_then(|b| Header::parse(&b).ok()).map(|h| h.generation);
                SlotState::Damaged { error: e.to_string(), generation }
            }
            Err(Err(e)) => SlotState::Damaged { error: format!("unreadable: {}", e.message()), generation: None },
        }
    }

    /// Make sure `service` has both slot files, each at least `need` bytes
    /// where `grow` says so; refresh their runs.
    fn prepare_slots(&mut self, service: &str, need: u64, grow: [bool; 2]) -> Result<(), VaultError> {
        let want = |have: u64| {
            let mut cap = have.max(MIN_SLOT_BYTES);
            while cap < need {
                cap *= 2;
            }
            cap
        };
        let files = self.with_fs(|fs| {
            let root = fs.root_dir();
            let dir = match root.open_dir(DIR) {
                Ok(d) => d,
                Err(fatfs::Error::NotFound) => root.create_dir(DIR).map_err(|e| fat_error("create /KINTSUGI", e))?,
                Err(e) => return Err(fat_error("open /KINTSUGI", e)),
            };
            let mut out: Vec<SlotFile> = Vec::new();
            for (i, &g) in grow.iter().enumerate() {
                let name = slot_file(service, i);
                let mut file = dir.create_file(&name).map_err(|e| fat_error(&format!("create {name}"), e))?;
                let size = file.seek(fatfs::SeekFrom::End(0)).map_err(|e| fat_error(&name, e))?;
                let before = size;
                let target = if g || size == 0 { want(size) } else { size };
                let grew = target > size;
                if grew {
                    if target > u32::MAX as u64 {
                        return Err(VaultError::TooLarge(format!("{name} would exceed the FAT file size limit")));
                    }
                    let zeros = vec![0u8; 64 * 1024];
                    let mut at = size;
                    while at < target {
                        let n = (target - at).min(zeros.len() as u64) as usize;
                        file.write_all(&zeros[..n]).map_err(|e| fat_error(&format!("grow {name}"), e))?;
                        at += n as u64;
                    }
                    file.flush().map_err(|e| fat_error(&name, e))?;
                }
                let size = file.seek(fatfs::SeekFrom::End(0)).map_err(|e| fat_error(&name, e))?;
                file.seek(fatfs::SeekFrom::Start(0)).map_err(|e| fat_error(&name, e))?;
                let extents = collect_extents(&mut file, size).map_err(|e| fat_error(&name, e))?;
                out.push(SlotFile {
                    runs: runs_of(&extents)?,
                    capacity: size - size % SECTOR as u64,
                    grew,
                    created: before == 0,
                });
            }
            Ok(out)
        })?;
        let entry = self.services.entry(service.to_string()).or_insert_with(|| Slots {
            slots: [
                Slot { runs: Vec::new(), capacity: 0, state: SlotState::Empty },
                Slot { runs: Vec::new(), capacity: 0, state: SlotState::Empty },
            ],
        });
        for (i, f) in files.into_iter().enumerate() {
            let slot = &mut entry.slots[i];
            slot.runs = f.runs;
            slot.capacity = f.capacity;
            if f.created {
                slot.state = SlotState::Empty;
            }
            if f.grew {
                log::info!("{service}: slot {i} is {} KiB", f.capacity / 1024);
            }
        }
        Ok(())
    }

    /// Commit a checkpoint of `service`: `state` of distillation `kind`,
    /// taken at `taken_ns`, with `epoch` (an encoded redo list, or empty).
    /// Durable when this returns Ok.
    pub fn commit(
        &mut self,
        service: &str,
        kind: Kind,
        taken_ns: u64,
        state: &[u8],
        epoch: &[u8],
    ) -> Result<Committed, VaultError> {
        if !valid_service_name(service) {
            return Err(VaultError::BadRequest(format!("bad service name {service:?}")));
        }
        if state.len() as u64 > MAX_STATE {
            return Err(VaultError::TooLarge(format!("a state of {} bytes (the most is {MAX_STATE})", state.len())));
        }
        if epoch.len() as u64 > MAX_EPOCH {
            return Err(VaultError::TooLarge(format!("an epoch of {} bytes (the most is {MAX_EPOCH})", epoch.len())));
        }
        let t0 = (self.clock)();
        let generation = self.services.get(service).map_or(0, |s| s.newest_generation()) + 1;
        let meta = Meta { service, generation, taken_ns, boot: self.boot, kind };
        let mut bytes = record::encode(&meta, state, epoch).map_err(|e| VaultError::BadRequest(format!("{e}")))?;
        bytes.resize(bytes.len().next_multiple_of(SECTOR), 0);
        let need = bytes.len() as u64;
        match self.services.get(service) {
            None => self.prepare_slots(service, need, [true, true])?,
            Some(s) => {
                let t = s.target();
                if s.slots[t].capacity < need || s.slots[1 - t].runs.is_empty() {
                    let mut grow = [false, false];
                    grow[t] = s.slots[t].capacity < need;
                    self.prepare_slots(service, need, grow)?;
                }
            }
        }
        let Some(slots) = self.services.get(service) else {
            return Err(VaultError::Disk(String::from("slots vanished")));
        };
        let target = slots.target();
        let runs = map_sectors(&slots.slots[target].runs, 0, need / SECTOR as u64)?;
        let written = self.write_runs(&runs, &bytes);
        let header = Header::parse(&bytes).map_err(|e| VaultError::Disk(format!("{e}")))?;
        let Some(slots) = self.services.get_mut(service) else {
            return Err(VaultError::Disk(String::from("slots vanished")));
        };
        match written {
            Ok(()) => {
                slots.slots[target].state = SlotState::Valid(header);
                Ok(Committed { generation, slot: target as u8, ns: (self.clock)().saturating_sub(t0) })
            }
            Err(e) => {
                slots.slots[target].state =
                    SlotState::Damaged { error: format!("commit failed: {e}"), generation: Some(generation) };
                Err(e)
            }
        }
    }

    fn write_runs(&mut self, runs: &[(u64, u64)], bytes: &[u8]) -> Result<(), VaultError> {
        let mut at = 0;
        for &(lba, n) in runs {
            let len = n as usize * SECTOR;
            self.cache.disk.write(lba, &bytes[at..at + len])?;
            at += len;
        }
        self.cache.disk.flush()?;
        Ok(())
    }

    /// The newest valid record of `service` (read and checked again from
    /// the disk; a slot found damaged now is marked so and the other one
    /// used).
    pub fn latest(&mut self, service: &str) -> Result<Option<Latest>, VaultError> {
        loop {
            let Some(slots) = self.services.get(service) else { return Ok(None) };
            let Some(c) = slots.current() else { return Ok(None) };
            let slot = slots.slots[c].clone();
            match self.read_record(&slot) {
                Ok(record) => {
                    let note = self.services.get(service).and_then(|s| s.fallback_note(c)).unwrap_or_default();
                    return Ok(Some(Latest { record, slot: c as u8, note }));
                }
                Err(Err(e)) => return Err(e),
                Err(Ok(e)) => {
                    let generation = slot.generation();
                    log::warn!("{service}: slot {c} damaged since the vault started ({e})");
                    if let Some(s) = self.services.get_mut(service) {
                        s.slots[c].state = SlotState::Damaged { error: e.to_string(), generation };
                    }
                }
            }
        }
    }

    /// Every service and its newest valid record.
    pub fn list(&self) -> Vec<Listed> {
        self.services
            .iter()
            .map(|(name, s)| Listed {
                service: name.clone(),
                current: s.current().and_then(|c| match &s.slots[c].state {
                    SlotState::Valid(h) => Some((c as u8, h.clone())),
                    _ => None,
                }),
            })
            .collect()
    }
}

/// A file's extents `(byte offset, length)` covering its first `size`
/// bytes (a bound against a looping cluster chain).
fn collect_extents<IO: fatfs::ReadWriteSeek, TP, OCC>(
    file: &mut fatfs::File<'_, IO, TP, OCC>,
    size: u64,
) -> Result<Vec<(u64, u64)>, fatfs::Error<IO::Error>> {
    let mut out = Vec::new();
    let mut total = 0u64;
    for e in file.extents() {
        if total >= size {
            break;
        }
        let e = e?;
        if e.size == 0 {
            break;
        }
        total += e.size as u64;
        out.push((e.offset, e.size as u64));
    }
    if total < size {
        return Err(fatfs::Error::CorruptedFileSystem);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
