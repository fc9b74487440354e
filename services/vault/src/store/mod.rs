//! The vault's core: every service's checkpoint records and request log in
//! the pool file on a FAT checkpoint disk, over any [`SectorDisk`].
//!
//! # Opening
//!
//! [`Vault::open`] formats a disk that holds no FAT file system at all,
//! checks the file system and repairs what an earlier power cut left
//! ([`crate::repair`]), finds or makes the pool ([`crate::pool`]), reads
//! the pool table in force, then every service's two slots (a damaged
//! slot is logged, and the other one used) and its log; services an older
//! vault kept in slot files of their own are moved into the pool
//! ([`legacy`]). After that the vault never changes the FAT again.
//!
//! # Slots and the table
//!
//! Service `S` (the identity of the program whose state it is) has two
//! slot regions and a log region in the pool, listed in the pool table.
//! The first time `S` commits or appends, regions are found in free pool
//! space, their first sectors zeroed (so nothing stale looks like a
//! record), and a new table written to the table copy not in force, then
//! flushed; a slot too small for a record is given a new region twice the
//! size the same way, before the commit that needs it. A cut while a table
//! is written leaves the previous table in force, and until the new one is
//! durable nothing is written outside space the old one leaves free.
//!
//! # Commits
//!
//! A commit writes its record (`checkpoint-record`) at the start of the
//! slot that does not hold the newest valid record, in place, then flushes
//! the disk before it answers. The slot with the newest committed record is
//! never written: after a cut the written slot holds the new record, the
//! one it held before, or one that fails its checksums, and newest-valid-
//! wins yields the new record or the previous one, never an older one and
//! never garbage. Generations are per service: the newest any header on
//! the disk claims, plus one, so they increase across reboots.
//!
//! # The request log
//!
//! An append writes one entry (`checkpoint_record::log`: generation,
//! index, length, CRC) after the service's last, in place in its log
//! region; [`Vault::append_many`] writes the entries of several services
//! and flushes once for all of them (group commit), and an append counts
//! as done only after that flush. Entries carry the generation of the
//! checkpoint they follow; a commit starts the next generation's log at
//! the start of the region, so the older entries are ignored from then on
//! and a torn append ends the log cleanly.

mod legacy;

use crate::disk::{DiskError, SectorDisk, SECTOR};
use crate::fat::Volume;
use crate::fatio::{BlockCache, FatIo};
use crate::pool::{self, Pool};
use crate::repair::{self, Repairs};
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use checkpoint_record::log as reqlog;
use checkpoint_record::table::{self, Allotment, Region, Table, TABLE_SECTORS};
use checkpoint_record::{self as record, Header, Kind, Meta, Record, RecordError};

pub use checkpoint_record::table::valid_service_name;

/// The smallest slot.
pub const MIN_SLOT_BYTES: u64 = 256 << 10;
/// Each service's log region.
pub const LOG_BYTES: u64 = 512 << 10;
/// The largest state the vault takes.
pub const MAX_STATE: u64 = 32 << 20;
/// The largest epoch the vault takes.
pub const MAX_EPOCH: u64 = 16 << 20;
/// The largest log entry (it must fit in an empty log region).
pub const MAX_ENTRY: u64 = LOG_BYTES - reqlog::HEADER_LEN as u64;
/// Sectors the cache holds.
const CACHE_SECTORS: usize = 512;
/// Regions start at multiples of this many sectors (4 KiB).
const ALIGN: u64 = 8;
/// Sectors of a log read at once when it is scanned.
const LOG_READ: u64 = 64;

/// Why a vault operation failed; each maps to a `Failed` code of the vault
/// contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VaultError {
    /// A malformed request (400).
    BadRequest(String),
    /// An append for a checkpoint that is not the newest committed (409).
    Conflict(String),
    /// A state, epoch or entry too large (413).
    TooLarge(String),
    /// The disk failed (500).
    Disk(String),
    /// No usable checkpoint disk (503).
    NoDisk(String),
    /// The checkpoint disk, or a service's log, is full (507).
    Full(String),
}

impl VaultError {
    /// The contract's `Failed` code.
    pub fn code(&self) -> u32 {
        match self {
            VaultError::BadRequest(_) => 400,
            VaultError::Conflict(_) => 409,
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
            | VaultError::Conflict(m)
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

/// A fatfs error as a vault error.
pub fn fat_error(what: &str, e: fatfs::Error<DiskError>) -> VaultError {
    match e {
        fatfs::Error::Io(d) => VaultError::Disk(format!("checkpoint disk: {what}: {d}")),
        fatfs::Error::NotEnoughSpace => VaultError::Full(format!("checkpoint disk full ({what})")),
        other => VaultError::Disk(format!("checkpoint disk: {what}: {other}")),
    }
}

/// What a slot holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlotState {
    /// Never written (its first sector is zeros).
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

/// One slot.
#[derive(Clone, Debug)]
pub struct Slot {
    /// Where it is in the pool.
    pub region: Region,
    /// What it holds.
    pub state: SlotState,
}

impl Slot {
    /// The slot's size in bytes.
    pub fn capacity(&self) -> u64 {
        self.region.bytes()
    }

    fn generation(&self) -> Option<u64> {
        match &self.state {
            SlotState::Valid(h) => Some(h.generation),
            _ => None,
        }
    }
}

/// A service's log as the vault knows it.
#[derive(Clone, Debug)]
pub struct Log {
    /// Where it is in the pool.
    pub region: Region,
    /// The checkpoint generation its entries follow.
    pub generation: u64,
    /// Entries of that generation.
    pub entries: u64,
    /// Bytes they take in the region (the next entry goes here).
    pub end: u64,
    /// Bytes of entry data.
    pub data_bytes: u64,
}

/// A service's two slots and its log.
#[derive(Clone, Debug)]
pub struct Slots {
    /// Slot 0 and slot 1.
    pub slots: [Slot; 2],
    /// The request log.
    pub log: Log,
    /// A commit failed and its record could not be invalidated: it may
    /// still turn out valid after a restart, so appends to the older
    /// generation's log are refused until a commit succeeds.
    commit_in_doubt: bool,
    /// The generation of entries found at the start of the log region
    /// when it is newer than every valid record (0: none): a record that
    /// was committed, then lost (a damaged slot whose header says nothing,
    /// or one zeroed). The next commit must be newer still, or those
    /// entries would read as its log.
    log_floor: u64,
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

    /// The newest committed generation (0: none).
    pub fn committed(&self) -> u64 {
        self.current().and_then(|c| self.slots[c].generation()).unwrap_or(0)
    }

    /// The slot the next commit goes to: the one without the newest valid
    /// record.
    pub fn target(&self) -> usize {
        match self.current() {
            Some(c) => 1 - c,
            None => 0,
        }
    }

    /// The newest generation any slot's header claims, or the log's
    /// entries follow ([`Slots::log_floor`]).
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
            .max(self.log_floor)
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
            _ if self.log_floor > used_gen => Some(format!(
                "the log follows generation {}, newer than any valid record (a record lost); restored generation \
                 {used_gen} from slot {used}",
                self.log_floor
            )),
            _ => None,
        }
    }

    fn allotment(&self, service: &str) -> Allotment {
        Allotment {
            service: service.to_string(),
            slots: [self.slots[0].region, self.slots[1].region],
            log: self.log.region,
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

/// An append's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    /// Entries in the log now (after the newest committed checkpoint).
    pub entries: u64,
    /// Bytes left in the log region.
    pub bytes_free: u64,
}

/// What the vault holds of a service: its newest valid record (if any)
/// and the log entries appended after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Latest {
    /// The record, or None when nothing was committed yet (only a log).
    pub record: Option<Record>,
    /// The slot it came from.
    pub slot: u8,
    /// Why it is not the newest record written, when a newer slot is
    /// damaged (empty otherwise).
    pub note: String,
    /// The log entries after it, in order.
    pub log: Vec<Vec<u8>>,
}

impl Latest {
    /// The generation restored (0: nothing committed).
    pub fn generation(&self) -> u64 {
        self.record.as_ref().map_or(0, |r| r.header.generation)
    }
}

/// One service in a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// The service.
    pub service: String,
    /// Its newest valid record's header and slot.
    pub current: Option<(u8, Header)>,
    /// Entries in its log.
    pub log_entries: u64,
    /// Bytes of entry data in its log.
    pub log_bytes: u64,
    /// Bytes its log region holds.
    pub log_capacity: u64,
}

/// The vault over a disk.
pub struct Vault<D: SectorDisk> {
    cache: BlockCache<D>,
    boot: u64,
    pool: Pool,
    table: Table,
    /// The table copy in force (the next table goes to the other).
    table_copy: usize,
    services: BTreeMap<String, Slots>,
    repairs: Repairs,
    made_pool: bool,
    clock: fn() -> u64,
}

impl<D: SectorDisk> Vault<D> {
    /// Open the vault on `disk` (see the module documentation) as the
    /// first vault of a new machine boot whose identity is unknown: the
    /// boot number is one more than any on the disk. `clock` gives ns
    /// since boot.
    pub fn open(disk: D, clock: fn() -> u64) -> Result<Vault<D>, VaultError> {
        Vault::open_in_boot(disk, clock, 0)
    }

    /// Open the vault on `disk` in the machine boot `boot_id` (the
    /// kernel's boot identity; 0 for unknown). If the pool table says the
    /// vault already numbered this machine boot (its process restarted, or
    /// it opened the disk again after blk's companion restarted), the boot
    /// number is that one again; otherwise it is one more than any boot
    /// the disk knows of, and is written to the table before the vault
    /// serves anyone. So every record a machine boot writes carries one
    /// boot number, and a companion can tell sessions of this boot from
    /// those of a boot a power cut ended (RELIABILITY finding 16).
    pub fn open_in_boot(disk: D, clock: fn() -> u64, boot_id: u64) -> Result<Vault<D>, VaultError> {
        let mut cache = BlockCache::new(disk, CACHE_SECTORS);
        if cache.disk.sectors() < 128 {
            return Err(VaultError::NoDisk(String::from("the checkpoint disk is too small")));
        }
        let mut boot = [0u8; SECTOR];
        cache.disk.read(0, &mut boot)?;
        if boot[510..] != [0x55, 0xaa] {
            log::info!("the checkpoint disk has no FAT file system; formatting it");
            format(&mut cache)?;
            cache.disk.read(0, &mut boot)?;
        }
        let volume =
            Volume::parse(&boot).map_err(|e| VaultError::NoDisk(format!("the checkpoint disk's FAT volume: {e}")))?;
        let repairs = repair::check_and_repair(&mut cache, &volume)?;
        for line in repairs.lines() {
            log::warn!("checkpoint disk repaired: {line}");
        }
        for line in &repairs.unrepaired {
            log::warn!("checkpoint disk damaged: {line} (left for fsck.fat)");
        }
        let (pool, made_pool) = pool::open_or_create(&mut cache, &volume)?;
        cache.clear()?;
        let mut v = Vault {
            cache,
            boot: 1,
            table: Table { generation: 0, pool_sectors: pool.sectors(), ..Table::default() },
            table_copy: 1,
            pool,
            services: BTreeMap::new(),
            repairs,
            made_pool,
            clock,
        };
        v.read_table()?;
        let allotments = v.table.services.clone();
        let mut newest_boot = 0;
        for a in allotments {
            let mut slots = Slots {
                slots: [
                    Slot { region: a.slots[0], state: SlotState::Empty },
                    Slot { region: a.slots[1], state: SlotState::Empty },
                ],
                log: Log { region: a.log, generation: 0, entries: 0, end: 0, data_bytes: 0 },
                commit_in_doubt: false,
                log_floor: 0,
            };
            for s in &mut slots.slots {
                s.state = v.read_state(s.region);
                if let SlotState::Valid(h) = &s.state {
                    newest_boot = newest_boot.max(h.boot);
                }
            }
            let generation = slots.committed();
            let (log, stop) = v.scan_log(a.log, generation)?;
            slots.log = log;
            if let reqlog::End::OtherGeneration(g) = stop {
                if g > generation {
                    slots.log_floor = g;
                }
            }
            v.report(&a.service, &slots);
            v.services.insert(a.service, slots);
        }
        v.boot = newest_boot.max(v.table.boot) + 1;
        if let Err(e) = legacy::import(&mut v) {
            log::warn!("old slot files left unread: {e}");
        }
        if boot_id != 0 {
            if v.table.boot_id == boot_id && v.table.boot != 0 {
                log::info!("the vault opened the disk again within boot {}", v.table.boot);
                v.boot = v.table.boot;
            } else {
                let mut t = v.table.clone();
                t.boot = v.boot;
                t.boot_id = boot_id;
                v.write_table(t)?;
            }
        }
        Ok(v)
    }

    /// Read both table copies and take the newest valid one.
    fn read_table(&mut self) -> Result<(), VaultError> {
        let a = Table::decode(&self.read_pool(0, TABLE_SECTORS)?);
        let b = Table::decode(&self.read_pool(TABLE_SECTORS, TABLE_SECTORS)?);
        for (i, c) in [&a, &b].into_iter().enumerate() {
            if let Err(e) = c {
                if *e != table::TableError::Empty {
                    log::warn!("pool table copy {i} damaged ({e})");
                }
            }
        }
        if let Some((copy, t)) = table::newest([a, b]) {
            if t.pool_sectors != self.pool.sectors() {
                return Err(VaultError::NoDisk(format!(
                    "the pool table is for a pool of {} sectors, the pool has {}",
                    t.pool_sectors,
                    self.pool.sectors()
                )));
            }
            self.table = t;
            self.table_copy = copy;
        }
        Ok(())
    }

    /// Write `t` (with the next generation) to the table copy not in
    /// force, flush, and put it in force.
    fn write_table(&mut self, mut t: Table) -> Result<(), VaultError> {
        t.generation = self.table.generation + 1;
        t.pool_sectors = self.pool.sectors();
        let bytes = t.encode().map_err(|e| VaultError::Disk(format!("the pool table: {e}")))?;
        let copy = 1 - self.table_copy;
        self.write_pool(copy as u64 * TABLE_SECTORS, &bytes)?;
        self.cache.disk.flush()?;
        self.table = t;
        self.table_copy = copy;
        Ok(())
    }

    /// Log what a service's slots hold when one is damaged, or when its
    /// log follows a record no slot holds.
    fn report(&self, service: &str, slots: &Slots) {
        if slots.log_floor > slots.committed() {
            log::warn!(
                "{service}: the log follows generation {}, newer than any valid record (generation {}): a record \
                 was lost; the next commit is newer",
                slots.log_floor,
                slots.committed()
            );
        }
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

    /// What the check at open repaired.
    pub fn repairs(&self) -> &Repairs {
        &self.repairs
    }

    /// Whether the pool was made at open.
    pub fn made_pool(&self) -> bool {
        self.made_pool
    }

    /// The pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The pool table in force.
    pub fn table(&self) -> &Table {
        &self.table
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

    /// Read pool sectors `first..first + count`.
    fn read_pool(&mut self, first: u64, count: u64) -> Result<Vec<u8>, VaultError> {
        let mut buf = vec![0u8; count as usize * SECTOR];
        let mut at = 0;
        for (lba, n) in self.pool.map(first, count)? {
            let len = n as usize * SECTOR;
            self.cache.disk.read(lba, &mut buf[at..at + len])?;
            at += len;
        }
        Ok(buf)
    }

    /// Write whole sectors from pool sector `first` (no flush).
    fn write_pool(&mut self, first: u64, bytes: &[u8]) -> Result<(), VaultError> {
        let mut at = 0;
        for (lba, n) in self.pool.map(first, (bytes.len() / SECTOR) as u64)? {
            let len = n as usize * SECTOR;
            self.cache.disk.write(lba, &bytes[at..at + len])?;
            at += len;
        }
        Ok(())
    }

    /// Read and check the record in a slot: a disk error is `Err(Err)`,
    /// a bad record `Err(Ok)`.
    fn read_record(&mut self, region: Region) -> Result<Record, Result<RecordError, VaultError>> {
        let first = self.read_pool(region.start, 1).map_err(Err)?;
        let header = Header::parse(&first).map_err(Ok)?;
        if header.record_len() > region.bytes() {
            return Err(Ok(RecordError::LengthsInconsistent("record longer than its slot")));
        }
        let sectors = header.record_len().div_ceil(SECTOR as u64);
        let bytes = if sectors == 1 { first } else { self.read_pool(region.start, sectors).map_err(Err)? };
        record::decode(&bytes).map_err(Ok)
    }

    fn read_state(&mut self, region: Region) -> SlotState {
        match self.read_record(region) {
            Ok(r) => SlotState::Valid(r.header),
            Err(Ok(RecordError::Empty)) => SlotState::Empty,
            Err(Ok(e)) => {
                let generation =
                    self.read_pool(region.start, 1).ok().and_then(|b| Header::parse(&b).ok()).map(|h| h.generation);
                SlotState::Damaged { error: e.to_string(), generation }
            }
            Err(Err(e)) => SlotState::Damaged { error: format!("unreadable: {}", e.message()), generation: None },
        }
    }

    /// The entries of `generation` in a log region, read as far as they
    /// go, and why they end.
    fn scan_log(&mut self, region: Region, generation: u64) -> Result<(Log, reqlog::End), VaultError> {
        let (_, scan) = self.read_log(region, generation, region.sectors)?;
        let log = Log {
            region,
            generation,
            entries: scan.entries.len() as u64,
            end: scan.end as u64,
            data_bytes: scan.data_bytes(),
        };
        Ok((log, scan.stop))
    }

    /// Read a log region from its start (in growing pieces, up to `limit`
    /// sectors) until the entries of `generation` end.
    fn read_log(&mut self, region: Region, generation: u64, limit: u64) -> Result<(Vec<u8>, reqlog::Scan), VaultError> {
        let limit = limit.clamp(1, region.sectors);
        let mut n = LOG_READ.min(limit);
        loop {
            let bytes = self.read_pool(region.start, n)?;
            let scan = reqlog::scan(&bytes, generation);
            let ran_out = matches!(scan.stop, reqlog::End::Full | reqlog::End::TooLong);
            if !ran_out || n == limit {
                return Ok((bytes, scan));
            }
            n = (n * 2).min(limit);
        }
    }

    /// Regions for a new service: two slots of at least `need` bytes and a
    /// log, their first sectors zeroed, in a new table.
    fn allot(&mut self, service: &str, need: u64) -> Result<(), VaultError> {
        if self.table.services.len() >= table::MAX_SERVICES {
            return Err(VaultError::Full(format!("the vault holds {} services already", table::MAX_SERVICES)));
        }
        let slot_sectors = slot_size(need).div_ceil(SECTOR as u64);
        let mut regions: Vec<Region> = Vec::new();
        for sectors in [slot_sectors, slot_sectors, LOG_BYTES / SECTOR as u64] {
            let r = self.table.find_free_avoiding(sectors, ALIGN, &regions).ok_or_else(|| self.full(service))?;
            regions.push(r);
        }
        let (s0, s1, log) = (regions[0], regions[1], regions[2]);
        let mut t = self.table.clone();
        t.set(Allotment { service: service.to_string(), slots: [s0, s1], log });
        self.zero_first_sectors(&[s0, s1, log])?;
        self.write_table(t)?;
        self.services.insert(
            service.to_string(),
            Slots {
                slots: [Slot { region: s0, state: SlotState::Empty }, Slot { region: s1, state: SlotState::Empty }],
                log: Log { region: log, generation: 0, entries: 0, end: 0, data_bytes: 0 },
                commit_in_doubt: false,
                log_floor: 0,
            },
        );
        log::info!("{service}: slots of {} KiB and a log of {} KiB in the pool", s0.bytes() / 1024, log.bytes() / 1024);
        Ok(())
    }

    fn full(&self, service: &str) -> VaultError {
        VaultError::Full(format!(
            "no room in the pool for {service} ({} KiB free of {} KiB)",
            self.table.free_sectors() * SECTOR as u64 / 1024,
            self.pool.sectors() * SECTOR as u64 / 1024
        ))
    }

    /// Zero the first sector of each region and flush.
    fn zero_first_sectors(&mut self, regions: &[Region]) -> Result<(), VaultError> {
        for r in regions {
            self.write_pool(r.start, &[0u8; SECTOR])?;
        }
        self.cache.disk.flush()?;
        Ok(())
    }

    /// Give `service`'s slot `slot` a new region of at least `need` bytes
    /// (doubling), in a new table.
    fn grow(&mut self, service: &str, slot: usize, need: u64) -> Result<(), VaultError> {
        let Some(s) = self.services.get(service) else { return Err(VaultError::Disk(String::from("slots vanished"))) };
        let mut bytes = s.slots[slot].capacity().max(MIN_SLOT_BYTES);
        while bytes < need {
            bytes *= 2;
        }
        let r = self.table.find_free(bytes / SECTOR as u64, ALIGN).ok_or_else(|| self.full(service))?;
        let mut a = s.allotment(service);
        a.slots[slot] = r;
        let mut t = self.table.clone();
        t.set(a);
        self.zero_first_sectors(&[r])?;
        self.write_table(t)?;
        if let Some(s) = self.services.get_mut(service) {
            s.slots[slot] = Slot { region: r, state: SlotState::Empty };
        }
        log::info!("{service}: slot {slot} is {} KiB", bytes / 1024);
        Ok(())
    }

    /// Commit a checkpoint of `service`: `state` of distillation `kind`,
    /// taken at `taken_ns`, with `epoch` (an encoded redo list, or empty).
    /// Durable when this returns Ok; the service's log starts again, empty,
    /// for the new generation.
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
        if !self.services.contains_key(service) {
            self.allot(service, need)?;
        }
        let target = self.services.get(service).map_or(0, |s| s.target());
        if self.services.get(service).is_some_and(|s| s.slots[target].capacity() < need) {
            self.grow(service, target, need)?;
        }
        let Some(region) = self.services.get(service).map(|s| s.slots[target].region) else {
            return Err(VaultError::Disk(String::from("slots vanished")));
        };
        let written = self.write_pool(region.start, &bytes).and_then(|()| Ok(self.cache.disk.flush()?));
        let header = Header::parse(&bytes).map_err(|e| VaultError::Disk(format!("{e}")))?;
        match written {
            Ok(()) => {
                if let Some(s) = self.services.get_mut(service) {
                    s.slots[target].state = SlotState::Valid(header);
                    s.log = Log { region: s.log.region, generation, entries: 0, end: 0, data_bytes: 0 };
                    s.commit_in_doubt = false;
                }
                Ok(Committed { generation, slot: target as u8, ns: (self.clock)().saturating_sub(t0) })
            }
            Err(e) => {
                // The record may be on the disk after all: take it back if
                // the disk lets us.
                let undone = self.zero_first_sectors(&[region]).is_ok();
                if let Some(s) = self.services.get_mut(service) {
                    s.slots[target].state =
                        SlotState::Damaged { error: format!("commit failed: {e}"), generation: Some(generation) };
                    s.commit_in_doubt |= !undone;
                }
                Err(e)
            }
        }
    }

    /// Append one entry to `service`'s log, after checkpoint `generation`.
    pub fn append(&mut self, service: &str, generation: u64, data: &[u8]) -> Result<Appended, VaultError> {
        self.append_many(&[(service, generation, data)]).pop().unwrap_or(Err(VaultError::Disk(String::new())))
    }

    /// Append entries of several services (`(service, generation, data)`)
    /// and flush once for all of them: the group commit. Each gets its own
    /// answer; an entry counts as appended only once the flush succeeded.
    /// An append for a generation other than the service's newest committed
    /// one (0: none yet) fails with `Conflict`; one that does not fit in
    /// the log region with `Full` (the client takes a checkpoint, which
    /// empties the log).
    pub fn append_many(&mut self, batch: &[(&str, u64, &[u8])]) -> Vec<Result<Appended, VaultError>> {
        let mut out: Vec<Result<Appended, VaultError>> = Vec::with_capacity(batch.len());
        // Where each service's log ends once this batch's earlier entries
        // are in: (end, entries, data bytes).
        let mut ends: BTreeMap<&str, (u64, u64, u64)> = BTreeMap::new();
        let mut written = Vec::new();
        for (i, &(service, generation, data)) in batch.iter().enumerate() {
            let r = self.write_entry(service, generation, data, &mut ends);
            if r.is_ok() {
                written.push(i);
            }
            out.push(r);
        }
        if written.is_empty() {
            return out;
        }
        if let Err(e) = self.cache.disk.flush() {
            let e = VaultError::from(e);
            for i in written {
                out[i] = Err(e.clone());
            }
            return out;
        }
        for (service, (end, entries, data_bytes)) in ends {
            if let Some(s) = self.services.get_mut(service) {
                s.log.end = end;
                s.log.entries = entries;
                s.log.data_bytes = data_bytes;
            }
        }
        out
    }

    /// Write one entry (no flush), tracking where the log ends in `ends`.
    fn write_entry<'a>(
        &mut self,
        service: &'a str,
        generation: u64,
        data: &[u8],
        ends: &mut BTreeMap<&'a str, (u64, u64, u64)>,
    ) -> Result<Appended, VaultError> {
        if !valid_service_name(service) {
            return Err(VaultError::BadRequest(format!("bad service name {service:?}")));
        }
        if data.len() as u64 > MAX_ENTRY {
            return Err(VaultError::TooLarge(format!("a log entry of {} bytes (the most is {MAX_ENTRY})", data.len())));
        }
        if !self.services.contains_key(service) {
            if generation != 0 {
                return Err(VaultError::Conflict(format!(
                    "an append after generation {generation}, but nothing of {service} was committed"
                )));
            }
            self.allot(service, MIN_SLOT_BYTES)?;
        }
        let Some(s) = self.services.get(service) else { return Err(VaultError::Disk(String::from("slots vanished"))) };
        if s.commit_in_doubt {
            return Err(VaultError::Disk(String::from(
                "the last commit failed and may still be on the disk; commit a checkpoint first",
            )));
        }
        let committed = s.committed();
        if generation != committed {
            return Err(VaultError::Conflict(format!(
                "an append after generation {generation}, but the newest committed checkpoint is generation {committed}"
            )));
        }
        let region = s.log.region;
        let (end, entries, data_bytes) = *ends.entry(service).or_insert((s.log.end, s.log.entries, s.log.data_bytes));
        let bytes = reqlog::encode_entry(generation, entries, data);
        if end + bytes.len() as u64 > region.bytes() {
            return Err(VaultError::Full(format!(
                "{service}'s log is full ({entries} entries, {} of {} KiB); commit a checkpoint to empty it",
                end / 1024,
                region.bytes() / 1024
            )));
        }
        self.write_pool(region.start + end / SECTOR as u64, &bytes)?;
        let now = (end + bytes.len() as u64, entries + 1, data_bytes + data.len() as u64);
        ends.insert(service, now);
        Ok(Appended { entries: now.1, bytes_free: region.bytes() - now.0 })
    }

    /// Set record `generation` of `service` aside as damaged: its companion
    /// could not restore it (`reason`). The slot is the next commit's target,
    /// and [`Vault::latest`] now answers with the record before it. A
    /// generation no valid slot holds is left alone (said, not an error).
    pub fn reject(&mut self, service: &str, generation: u64, reason: &str) {
        let Some(s) = self.services.get_mut(service) else { return };
        let Some(i) = s.slots.iter().position(|slot| slot.generation() == Some(generation)) else {
            log::warn!("{service}: asked to set aside generation {generation}, which no valid slot holds");
            return;
        };
        log::error!(
            "{service}: the record of generation {generation} in slot {i} cannot be restored ({reason}); set aside"
        );
        s.slots[i].state = SlotState::Damaged {
            error: format!("set aside: the service could not restore it ({reason})"),
            generation: Some(generation),
        };
    }

    /// The newest valid record of `service` and the log entries after it
    /// (read and checked again from the disk; a slot found damaged now is
    /// marked so and the other one used). None if the vault holds neither.
    pub fn latest(&mut self, service: &str) -> Result<Option<Latest>, VaultError> {
        let (record, slot, note) = loop {
            let Some(slots) = self.services.get(service) else { return Ok(None) };
            let Some(c) = slots.current() else { break (None, 0, String::new()) };
            let region = slots.slots[c].region;
            match self.read_record(region) {
                Ok(record) => {
                    let note = self.services.get(service).and_then(|s| s.fallback_note(c)).unwrap_or_default();
                    break (Some(record), c as u8, note);
                }
                Err(Err(e)) => return Err(e),
                Err(Ok(e)) => {
                    log::warn!("{service}: slot {c} damaged since the vault started ({e})");
                    if let Some(s) = self.services.get_mut(service) {
                        let generation = s.slots[c].generation();
                        s.slots[c].state = SlotState::Damaged { error: e.to_string(), generation };
                    }
                }
            }
        };
        let generation = record.as_ref().map_or(0, |r| r.header.generation);
        let Some(log) = self.services.get(service).map(|s| s.log.clone()) else { return Ok(None) };
        let (bytes, scan) = if log.generation == generation {
            self.read_log(log.region, generation, log.end.div_ceil(SECTOR as u64).max(1))?
        } else {
            self.read_log(log.region, generation, log.region.sectors)?
        };
        if log.generation == generation && scan.entries.len() as u64 != log.entries {
            log::warn!(
                "{service}: the log holds {} entries on the disk, {} were appended ({})",
                scan.entries.len(),
                log.entries,
                scan.stop
            );
        }
        if let Some(s) = self.services.get_mut(service) {
            s.log.generation = generation;
            s.log.entries = scan.entries.len() as u64;
            s.log.end = scan.end as u64;
            s.log.data_bytes = scan.data_bytes();
        }
        let entries: Vec<Vec<u8>> = scan.data(&bytes).into_iter().map(|d| d.to_vec()).collect();
        if record.is_none() && entries.is_empty() {
            return Ok(None);
        }
        Ok(Some(Latest { record, slot, note, log: entries }))
    }

    /// Every service, its newest valid record and its log.
    pub fn list(&self) -> Vec<Listed> {
        self.services
            .iter()
            .map(|(name, s)| Listed {
                service: name.clone(),
                current: s.current().and_then(|c| match &s.slots[c].state {
                    SlotState::Valid(h) => Some((c as u8, h.clone())),
                    _ => None,
                }),
                log_entries: s.log.entries,
                log_bytes: s.log.data_bytes,
                log_capacity: s.log.region.bytes(),
            })
            .collect()
    }
}

/// Bytes of a new slot for a record of `need` bytes.
fn slot_size(need: u64) -> u64 {
    let mut bytes = MIN_SLOT_BYTES;
    while bytes < need {
        bytes *= 2;
    }
    bytes
}

/// Format the disk with a FAT file system (fatfs chooses the variant).
fn format<D: SectorDisk>(cache: &mut BlockCache<D>) -> Result<(), VaultError> {
    cache.clear()?;
    {
        let mut io = FatIo::new(cache);
        let options = fatfs::FormatVolumeOptions::new().volume_label(*b"KCKPT      ");
        fatfs::format_volume(&mut io, options).map_err(|e| fat_error("format", e))?;
    }
    cache.sync()?;
    cache.clear()?;
    log::info!("formatted the checkpoint disk (FAT, {} MiB)", cache.disk.sectors() / 2048);
    Ok(())
}

#[cfg(test)]
mod tests;
