//! [`Fs`]: the file service's logic. It mounts the FAT volume with fatfs
//! over [`Blocks`] (reads from the disk, writes held) and answers the
//! contract's requests per client session: `handle(session, request)`
//! returns the replies. Its logical state (the open-file table and the
//! mount parameters) is `save`d and `restore`d; the held writes leave as
//! an epoch (`take_epoch`, then `epoch_applied` once they are on the disk).
//!
//! Nothing a client or the disk sends makes it panic: every bad request
//! gets `Failed` with a code and a message naming the path or handle, and
//! a disk error is an error reply (fatfs itself may still panic on some
//! corrupt volumes; see the crate's report in the README).
//!
//! Handles never hold fatfs objects between requests: each request finds
//! its file again by path (as the names are on the disk), so the table is
//! plain data. Removing or moving what a handle has open is refused
//! (`busy`) for removal; a move carries the handles along.

use crate::blocks::{Blocks, DiskError, FatIo, SectorSource, DEFAULT_CACHE_SECTORS, SECTOR};
use crate::clustermap::ClusterMap;
use crate::path::{self, PathError};
use crate::protocol::{Reply, Request};
use crate::shared::{NoSharedBuffers, SharedBuffers, SharedError};
use crate::table::{Mount, OpenFile, State};
use crate::time::{self, Clock};
use crate::{code, flags, kind, CURRENT, MAX_FILE_SIZE, MAX_TRANSFER};
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;
use fatfs::{Read as _, Seek as _, SeekFrom, Write as _};

/// At most this many handles' entry places are remembered (see
/// `Fs::entry_at`); past it the memory starts again.
const MAX_REMEMBERED_ENTRIES: usize = 4096;

type Fat<D> = fatfs::FileSystem<FatIo<D>, Clock, fatfs::LossyOemCpConverter>;
type Dir<'a, D> = fatfs::Dir<'a, FatIo<D>, Clock, fatfs::LossyOemCpConverter>;
type Entry<'a, D> = fatfs::DirEntry<'a, FatIo<D>, Clock, fatfs::LossyOemCpConverter>;
type File<'a, D> = fatfs::File<'a, FatIo<D>, Clock, fatfs::LossyOemCpConverter>;
type FatError = fatfs::Error<DiskError>;

/// A request failed: the contract's `Failed` code and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsError {
    /// The `Failed` code (see [`crate::code`]).
    pub code: u32,
    /// What went wrong, naming the path or handle.
    pub message: String,
}

impl FsError {
    fn new(code: u32, message: String) -> FsError {
        FsError { code, message }
    }
}

impl core::fmt::Display for FsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

type Result<T> = core::result::Result<T, FsError>;

fn path_error(p: &str, e: PathError) -> FsError {
    let c = match e {
        PathError::NotAbsolute => code::BAD_REQUEST,
        PathError::BadName(..) | PathError::TooLong => code::BAD_NAME,
    };
    FsError::new(c, format!("{}: {e}", path::show(p)))
}

/// A fatfs error about `what` (a path or a handle), as a client error.
fn fat_error(what: &str, e: FatError) -> FsError {
    let (c, m) = match e {
        FatError::Io(d) => (code::IO, format!("disk error: {d}")),
        FatError::UnexpectedEof | FatError::WriteZero => (code::IO, String::from("disk error: short transfer")),
        FatError::InvalidInput => (code::BAD_REQUEST, String::from("invalid request")),
        FatError::NotFound => (code::NOT_FOUND, String::from("no such file or directory")),
        FatError::AlreadyExists => (code::EXISTS, String::from("already exists")),
        FatError::DirectoryIsNotEmpty => (code::NOT_EMPTY, String::from("directory not empty")),
        FatError::CorruptedFileSystem => (code::CORRUPT, String::from("the file system is damaged")),
        FatError::NotEnoughSpace => (code::NO_SPACE, String::from("no space left on the volume")),
        FatError::InvalidFileNameLength => (code::BAD_NAME, String::from("name too long or invalid")),
        FatError::UnsupportedFileNameCharacter => {
            (code::BAD_NAME, String::from("name too long or invalid (a character FAT does not allow)"))
        }
        _ => (code::IO, format!("{e}")),
    };
    FsError::new(c, format!("{}: {m}", path::show(what)))
}

/// What a path names.
struct Found<'a, D: SectorSource> {
    /// The path as the names are on the disk.
    canonical: Vec<String>,
    /// Its entry (None: the root).
    entry: Option<Entry<'a, D>>,
}

impl<D: SectorSource> Found<'_, D> {
    fn is_dir(&self) -> bool {
        self.entry.as_ref().is_none_or(|e| e.is_dir())
    }
}

fn is_dot(e: &Entry<'_, impl SectorSource>) -> bool {
    let n = e.short_file_name_as_bytes();
    n == b"." || n == b".."
}

/// The entry named `name` (case-insensitively) in `dir`.
fn find<'a, D: SectorSource>(dir: &Dir<'a, D>, name: &str, shown: &str) -> Result<Option<Entry<'a, D>>> {
    for e in dir.iter() {
        let e = e.map_err(|err| fat_error(shown, err))?;
        if !is_dot(&e) && e.eq_name(name) {
            return Ok(Some(e));
        }
    }
    Ok(None)
}

/// Whether fatfs can create an entry named `name`: its short-name
/// generator slices the name after its first byte, which panics when the
/// first character is not ASCII; such names can be read, not made.
fn creatable(name: &str, shown: &str) -> Result<()> {
    if name.chars().next().is_some_and(|c| c.is_ascii()) {
        return Ok(());
    }
    Err(FsError::new(
        code::BAD_NAME,
        format!("{}: name too long or invalid (a new name must start with an ASCII character)", path::show(shown)),
    ))
}

fn dir_of<'a, D: SectorSource>(fat: &'a Fat<D>, entry: &Option<Entry<'a, D>>) -> Dir<'a, D> {
    match entry {
        None => fat.root_dir(),
        Some(e) => e.to_dir(),
    }
}

/// Walk `parts` from the root.
fn walk<'a, D: SectorSource>(fat: &'a Fat<D>, parts: &[String]) -> Result<Found<'a, D>> {
    let mut canonical = Vec::new();
    let mut entry: Option<Entry<'a, D>> = None;
    for (i, name) in parts.iter().enumerate() {
        if entry.as_ref().is_some_and(|e| !e.is_dir()) {
            return Err(FsError::new(code::NOT_DIR, format!("{}: not a directory", path::join(&parts[..i]))));
        }
        let dir = dir_of(fat, &entry);
        let shown = path::join(&parts[..=i]);
        match find(&dir, name, &shown)? {
            Some(e) => {
                canonical.push(e.file_name());
                entry = Some(e);
            }
            None => {
                return Err(FsError::new(code::NOT_FOUND, format!("{}: no such file or directory", path::show(&shown))))
            }
        }
    }
    Ok(Found { canonical, entry })
}

/// Walk to the directory that holds the last component of `parts`
/// (which must not be empty).
fn walk_parent<'a, D: SectorSource>(fat: &'a Fat<D>, parts: &[String]) -> Result<Found<'a, D>> {
    let parent = walk(fat, &parts[..parts.len() - 1])?;
    if !parent.is_dir() {
        return Err(FsError::new(code::NOT_DIR, format!("{}: not a directory", path::join(&parent.canonical))));
    }
    Ok(parent)
}

fn first_cluster_of<D: SectorSource>(file: &mut File<'_, D>, geometry: &Geometry) -> u32 {
    match file.extents().next() {
        Some(Ok(x)) => geometry.cluster_of(x.offset),
        _ => 0,
    }
}

/// Where clusters are, from the boot sector.
#[derive(Clone, Copy, Debug, Default)]
struct Geometry {
    /// Byte offset of cluster 2.
    data_start: u64,
    /// Bytes per cluster.
    cluster: u64,
}

impl Geometry {
    fn read<D: SectorSource>(blocks: &mut Blocks<D>) -> core::result::Result<Geometry, DiskError> {
        let mut b = [0u8; SECTOR];
        blocks.read(0, &mut b)?;
        let u16at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as u64;
        let bytes_per_sector = u16at(0x0b);
        let sectors_per_cluster = b[0x0d] as u64;
        let reserved = u16at(0x0e);
        let fats = b[0x10] as u64;
        let root_entries = u16at(0x11);
        let fat16 = u16at(0x16);
        let fat32 = u32::from_le_bytes([b[0x24], b[0x25], b[0x26], b[0x27]]) as u64;
        let per_fat = if fat16 != 0 { fat16 } else { fat32 };
        let bps = bytes_per_sector.max(1);
        let root_sectors = (root_entries * 32).div_ceil(bps);
        Ok(Geometry {
            data_start: (reserved + fats * per_fat + root_sectors) * bps,
            cluster: (bps * sectors_per_cluster).max(1),
        })
    }

    fn cluster_of(&self, offset: u64) -> u32 {
        (offset.saturating_sub(self.data_start) / self.cluster + 2) as u32
    }

    fn offset_of(&self, cluster: u32) -> u64 {
        self.data_start + (cluster as u64).saturating_sub(2) * self.cluster
    }
}

fn mount_fat<D: SectorSource>(blocks: &Rc<RefCell<Blocks<D>>>, clock: &Clock) -> Result<Fat<D>> {
    let options = fatfs::FsOptions::new().time_provider(clock.clone());
    fatfs::FileSystem::new(FatIo::new(blocks.clone()), options).map_err(|e| match e {
        FatError::CorruptedFileSystem => {
            FsError::new(code::CORRUPT, String::from("the data disk holds no FAT file system fatfs can mount"))
        }
        e => fat_error("/", e),
    })
}

/// The file service over disk `D`.
pub struct Fs<D: SectorSource> {
    blocks: Rc<RefCell<Blocks<D>>>,
    fat: Option<Fat<D>>,
    geometry: Geometry,
    clock: Clock,
    state: State,
    /// Where the clusters of the file read last are (see [`ClusterMap`]).
    map: RefCell<Option<ClusterMap>>,
    /// Where each open handle's directory entry lies on the volume, with
    /// its short name, so a read or write finds its file without scanning
    /// the folders on its path (see [`Fs::file_of`]). Only a shortcut:
    /// every use checks the entry, anything else walks the path, and it is
    /// emptied whenever entries can move (remove, rename, an undone
    /// request), so it is not part of the saved state.
    entry_at: RefCell<BTreeMap<u64, (u64, [u8; 11])>>,
    /// Where each handle's last write ended: the offset, the file's
    /// cluster holding the byte before it, and the file's first cluster,
    /// so that a write that goes on from there (a sequential write) starts
    /// without fatfs walking the file's cluster chain from its start
    /// (`File::seek_known`). A file's chain before a given offset changes
    /// only when the file is cut short or goes, so it is emptied on every
    /// truncate, truncating open, remove, rename and undone request. Not
    /// part of the saved state.
    write_ends: RefCell<BTreeMap<u64, (u64, u32, u32)>>,
    /// A request was undone and fatfs not mounted again since: the boot
    /// sector's dirty flag and the free count are to be set by hand.
    counts_stale: bool,
    /// Where `ReadShared` puts its bytes.
    shared: Box<dyn SharedBuffers>,
}

impl<D: SectorSource> Fs<D> {
    /// Mount the FAT volume on `disk`, with no open files.
    pub fn mount(disk: D) -> Result<Fs<D>> {
        Fs::mount_with_cache(disk, DEFAULT_CACHE_SECTORS)
    }

    /// [`Fs::mount`], caching up to `cache_sectors` clean sectors.
    pub fn mount_with_cache(disk: D, cache_sectors: usize) -> Result<Fs<D>> {
        let blocks = Rc::new(RefCell::new(Blocks::new(disk, cache_sectors)));
        let clock = Clock::new();
        let fat = mount_fat(&blocks, &clock)?;
        let geometry = Geometry::read(&mut blocks.borrow_mut()).map_err(|e| fat_error("/", FatError::Io(e)))?;
        let mount =
            Mount { volume_id: fat.volume_id(), sectors: blocks.borrow().sectors(), cluster: fat.cluster_size() };
        let state = State { mount, next_handle: 1, ..State::default() };
        Ok(Fs {
            blocks,
            fat: Some(fat),
            geometry,
            clock,
            state,
            map: RefCell::new(None),
            entry_at: RefCell::new(BTreeMap::new()),
            write_ends: RefCell::new(BTreeMap::new()),
            counts_stale: false,
            shared: Box::new(NoSharedBuffers),
        })
    }

    /// Where `ReadShared` puts its bytes from now on (none until this is
    /// called: every `ReadShared` fails with 412).
    pub fn set_shared(&mut self, shared: Box<dyn SharedBuffers>) {
        self.shared = shared;
    }

    /// Mount `disk` and take the open files from `saved` (what [`Fs::save`]
    /// returned). If the disk holds another volume than the one saved (it
    /// was replaced or reformatted), the open files are dropped, with a
    /// warning.
    pub fn restore(disk: D, saved: &[u8]) -> Result<Fs<D>> {
        Fs::restore_with_cache(disk, saved, DEFAULT_CACHE_SECTORS)
    }

    /// [`Fs::restore`], caching up to `cache_sectors` clean sectors.
    pub fn restore_with_cache(disk: D, saved: &[u8], cache_sectors: usize) -> Result<Fs<D>> {
        let state = State::decode(saved).map_err(|e| FsError::new(code::CORRUPT, format!("saved state: {e}")))?;
        state.check().map_err(|e| FsError::new(code::CORRUPT, e))?;
        let mut fs = Fs::mount_with_cache(disk, cache_sectors)?;
        if state.mount == fs.state.mount {
            fs.state = state;
        } else {
            log::warn!(
                "fs: the data disk is not the volume saved (id {:#x}, {} sectors, now id {:#x}, {} sectors): open files dropped",
                state.mount.volume_id,
                state.mount.sectors,
                fs.state.mount.volume_id,
                fs.state.mount.sectors
            );
            fs.state.next_handle = state.next_handle.max(1);
        }
        Ok(fs)
    }

    /// The logical state: mount parameters and open files.
    pub fn save(&self) -> Vec<u8> {
        self.state.encode()
    }

    /// One line about the volume: type, size, free space, label.
    pub fn volume_summary(&self) -> String {
        match self.volume() {
            Ok(Reply::VolumeInfo { total, free, cluster, kind, label }) => {
                format!("{kind} \"{label}\", {} MiB, {} MiB free, {cluster}-byte clusters", total >> 20, free >> 20)
            }
            Ok(_) => String::new(),
            Err(e) => e.message,
        }
    }

    /// The open-file table.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Check the state's invariants.
    pub fn check(&self) -> core::result::Result<(), String> {
        self.state.check()
    }

    /// Damage the state so that [`Fs::check`] fails (crash injection).
    pub fn corrupt(&mut self) {
        self.state.open_count = self.state.open_count.wrapping_add(1);
    }

    /// Set the clock fatfs stamps entries with (seconds since 1970).
    pub fn set_time(&mut self, unix_seconds: u64) {
        self.clock.set(unix_seconds);
    }

    /// Bytes of writes held (not yet on the disk).
    pub fn held_bytes(&self) -> u64 {
        self.blocks.borrow().held_bytes()
    }

    /// The block layer (figures, tests).
    pub fn blocks(&self) -> core::cell::RefMut<'_, Blocks<D>> {
        self.blocks.borrow_mut()
    }

    /// The held writes as an encoded `checkpoint-record` epoch (empty if
    /// none): the volume is first brought to a clean state (free-cluster
    /// count written, dirty flag cleared), so the disk with the epoch
    /// applied is a consistent FAT volume. The writes stay held until
    /// [`Fs::epoch_applied`].
    pub fn take_epoch(&mut self) -> Result<Vec<u8>> {
        let writes = self.take_epoch_writes()?;
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        checkpoint_record::epoch::encode(&writes).map_err(|e| FsError::new(code::IO, format!("epoch: {e}")))
    }

    /// [`Fs::take_epoch`] as block writes (not encoded): one copy of the
    /// held sectors, for whoever writes them out itself.
    pub fn take_epoch_writes(&mut self) -> Result<Vec<checkpoint_record::epoch::BlockWrite>> {
        if self.blocks.borrow().held_sectors() == 0 {
            return Ok(Vec::new());
        }
        self.remount()?;
        if let Some(fat) = self.fat.take() {
            // The free count goes into the epoch: count it if fatfs does
            // not know it (after a remount of a volume marked dirty).
            if let Err(e) = fat.stats() {
                self.fat = Some(fat);
                return Err(fat_error("/", e));
            }
            fat.unmount().map_err(|e| fat_error("/", e))?;
        }
        crate::volume_flags::clear_dirty_flag(&mut self.blocks.borrow_mut())
            .map_err(|e| FsError::new(code::IO, format!("the boot sector: {e}")))?;
        self.fat = Some(mount_fat(&self.blocks, &self.clock)?);
        Ok(self.blocks.borrow_mut().take_writes())
    }

    /// The epoch last taken is on the disk now: its held writes may go.
    pub fn epoch_applied(&mut self) {
        self.blocks.borrow_mut().epoch_applied();
    }

    /// The client sessions with files open.
    pub fn sessions(&self) -> Vec<u64> {
        self.state.sessions.keys().copied().collect()
    }

    /// A client session closed: its handles close.
    pub fn session_closed(&mut self, session: u64) {
        self.state.close_session(session);
    }

    /// Answer one request of `session`. A request that fails has no effect
    /// on the volume: what it wrote before it failed (a cluster allocated,
    /// a directory entry half made) is undone.
    pub fn handle(&mut self, session: u64, request: Request) -> Vec<Reply> {
        if self.fat.is_none() {
            // A remount after an undone request failed: try again.
            let _ = self.remount();
        }
        self.blocks.borrow_mut().begin_request();
        match self.answer(session, request) {
            Ok(replies) => {
                self.blocks.borrow_mut().end_request();
                replies
            }
            Err(e) => {
                self.undo_request();
                vec![Reply::Failed { code: e.code, message: e.message }]
            }
        }
    }

    /// Undo the writes of the request in hand, and have fatfs see the
    /// volume again as it is now (its free count and flags in memory
    /// followed the undone writes).
    fn undo_request(&mut self) {
        if !self.blocks.borrow().request_wrote() {
            self.blocks.borrow_mut().end_request();
            return;
        }
        // fatfs writes its flags and free count when it is dropped: those
        // writes are the request's too, and go with them.
        drop(self.fat.take());
        self.blocks.borrow_mut().undo_request();
        self.counts_stale = true;
        *self.map.borrow_mut() = None;
        self.forget_places();
        if let Err(e) = self.remount() {
            log::warn!("fs: mounting again after undoing a failed request: {e}");
        }
    }

    /// Mount fatfs again after an undone request, if it is not mounted;
    /// the first time, with the dirty flag cleared and the free count
    /// marked unknown (see [`crate::volume_flags`]).
    fn remount(&mut self) -> Result<()> {
        if self.fat.is_some() {
            return Ok(());
        }
        if self.counts_stale {
            crate::volume_flags::mark_clean_with_unknown_free_count(&mut self.blocks.borrow_mut())
                .map_err(|e| FsError::new(code::IO, format!("the boot sector: {e}")))?;
            self.counts_stale = false;
        }
        self.fat = Some(mount_fat(&self.blocks, &self.clock)?);
        Ok(())
    }

    /// The replies to one request, or why it failed.
    fn answer(&mut self, session: u64, request: Request) -> Result<Vec<Reply>> {
        match request {
            Request::Open { path, flags } => self.open(session, &path, flags).map(|r| vec![r]),
            Request::Read { handle, offset, length } => {
                let (offset, data) = self.read(session, handle, offset, length, true)?;
                Ok(vec![Reply::Data { offset, data }])
            }
            Request::ReadShared { handle, offset, length, at } => {
                self.read_shared(session, handle, offset, length, at).map(|r| vec![r])
            }
            Request::Write { handle, offset, data } => self.write(session, handle, offset, &data).map(|r| vec![r]),
            Request::Truncate { handle, size } => self.truncate(session, handle, size).map(|_| vec![Reply::Done]),
            Request::Close { handle } => self.close(session, handle).map(|_| vec![Reply::Done]),
            Request::Stat { path } => self.stat(&path).map(|r| vec![r]),
            Request::List { path } => self.list(&path),
            Request::Mkdir { path } => self.mkdir(&path).map(|_| vec![Reply::Done]),
            Request::Remove { path } => self.remove(&path).map(|_| vec![Reply::Done]),
            Request::Rename { from, to } => self.rename(&from, &to).map(|_| vec![Reply::Done]),
            Request::Sync => Ok(vec![Reply::Done]),
            Request::Volume => self.volume().map(|r| vec![r]),
        }
    }

    fn fat(&self) -> Result<&Fat<D>> {
        self.fat.as_ref().ok_or_else(|| FsError::new(code::IO, String::from("the volume is not mounted")))
    }

    fn parts(p: &str) -> Result<Vec<String>> {
        path::normalize(p).map_err(|e| path_error(p, e))
    }

    fn handle_of(&self, session: u64, handle: u64) -> Result<OpenFile> {
        self.state.sessions.get(&session).and_then(|f| f.get(&handle)).cloned().ok_or_else(|| {
            FsError::new(code::BAD_HANDLE, format!("handle {handle}: bad handle (not open in this session)"))
        })
    }

    fn set_handle(&mut self, session: u64, handle: u64, f: OpenFile) {
        if let Some(slot) = self.state.sessions.get_mut(&session).and_then(|s| s.get_mut(&handle)) {
            *slot = f;
        }
    }

    /// Note the first cluster of the file at `path` in every handle on it.
    fn note_cluster(&mut self, path: &[String], cluster: u32) {
        for f in self.state.all_mut().filter(|f| f.path == path) {
            f.first_cluster = cluster;
        }
    }

    fn open(&mut self, session: u64, p: &str, fl: u32) -> Result<Reply> {
        if fl & !flags::ALL != 0 {
            return Err(FsError::new(
                code::BAD_REQUEST,
                format!("{}: unknown open flags {:#x}", path::show(p), fl & !flags::ALL),
            ));
        }
        if fl & (flags::READ | flags::WRITE) == 0 {
            return Err(FsError::new(
                code::BAD_REQUEST,
                format!("{}: open for neither reading nor writing", path::show(p)),
            ));
        }
        if fl & (flags::TRUNCATE | flags::APPEND) != 0 && fl & flags::WRITE == 0 {
            return Err(FsError::new(
                code::BAD_REQUEST,
                format!("{}: truncate or append without write", path::show(p)),
            ));
        }
        if fl & flags::EXCLUSIVE != 0 && fl & flags::CREATE == 0 {
            return Err(FsError::new(code::BAD_REQUEST, format!("{}: exclusive without create", path::show(p))));
        }
        let parts = Self::parts(p)?;
        if parts.is_empty() {
            return Err(FsError::new(code::IS_DIR, String::from("/: is a directory")));
        }
        let geometry = self.geometry;
        let fat = self.fat()?;
        let parent = walk_parent(fat, &parts)?;
        let name = &parts[parts.len() - 1];
        let shown = path::join(&parts);
        let dir = dir_of(fat, &parent.entry);
        let mut canonical = parent.canonical.clone();
        // With CREATE, one scan of the folder finds the entry or makes it
        // (fatfs's lookup also picks the short name); names fatfs cannot
        // make (see `creatable`) take the plain lookup and fail below.
        let mut made = None;
        let found = if fl & flags::CREATE != 0 && creatable(name, &shown).is_ok() {
            let (e, created) = dir.find_or_create_file(name).map_err(|e| fat_error(&shown, e))?;
            if created {
                made = Some((e.to_file(), (e.position(), e.short_name_raw())));
                None
            } else {
                Some(e)
            }
        } else {
            find(&dir, name, &shown)?
        };
        let (mut file, created, place) = match (made, found) {
            (Some((f, place)), _) => {
                canonical.push(name.clone());
                (f, true, Some(place))
            }
            (None, Some(e)) if e.is_dir() => {
                return Err(FsError::new(code::IS_DIR, format!("{}: is a directory", path::show(&shown))))
            }
            (None, Some(_)) if fl & flags::EXCLUSIVE != 0 => {
                return Err(FsError::new(code::EXISTS, format!("{}: already exists", path::show(&shown))))
            }
            (None, Some(e)) => {
                canonical.push(e.file_name());
                (e.to_file(), false, Some((e.position(), e.short_name_raw())))
            }
            (None, None) if fl & flags::CREATE == 0 => {
                return Err(FsError::new(code::NOT_FOUND, format!("{}: no such file or directory", path::show(&shown))))
            }
            (None, None) => {
                creatable(name, &shown)?;
                let f = dir.create_file(name).map_err(|e| fat_error(&shown, e))?;
                canonical.push(name.clone());
                (f, true, None)
            }
        };
        if fl & flags::TRUNCATE != 0 && file.size().unwrap_or(0) > 0 {
            self.write_ends.borrow_mut().clear();
            file.truncate().map_err(|e| fat_error(&shown, e))?;
        }
        let size = file.size().unwrap_or(0) as u64;
        let first_cluster = first_cluster_of(&mut file, &geometry);
        drop((file, dir, parent));
        let handle = self.state.next_handle;
        self.state.next_handle += 1;
        if let Some(place) = place {
            self.remember_place(handle, place);
        }
        self.state.open_count += 1;
        self.note_cluster(&canonical, first_cluster);
        let entry = OpenFile { path: canonical, first_cluster, position: 0, mode: fl };
        self.state.sessions.entry(session).or_default().insert(handle, entry);
        Ok(Reply::Opened { handle, size, created })
    }

    /// The file of an open handle, checked against the table: through
    /// the entry's place remembered in `entry_at` when the entry there is
    /// still a file of the same short name (unique in its folder) and the
    /// same first cluster, else by walking its path, which is the answer
    /// either way.
    fn file_of<'a>(&self, fat: &'a Fat<D>, geometry: &Geometry, handle: u64, f: &OpenFile) -> Result<File<'a, D>> {
        let remembered = self.entry_at.borrow().get(&handle).copied();
        if let Some((pos, name)) = remembered {
            if let Ok(Some((mut file, at))) = fat.file_at(pos) {
                let cluster = first_cluster_of(&mut file, geometry);
                if at == name && !(f.first_cluster != 0 && cluster != 0 && cluster != f.first_cluster) {
                    return Ok(file);
                }
            }
            self.entry_at.borrow_mut().remove(&handle);
        }
        let shown = path::join(&f.path);
        let found = walk(fat, &f.path).map_err(|e| {
            FsError::new(
                code::BAD_HANDLE,
                format!("handle {handle}: its file {} is gone ({})", path::show(&shown), e.message),
            )
        })?;
        let Some(e) = found.entry.filter(|e| !e.is_dir()) else {
            return Err(FsError::new(
                code::BAD_HANDLE,
                format!("handle {handle}: {} is no longer a file", path::show(&shown)),
            ));
        };
        let mut file = e.to_file();
        let cluster = first_cluster_of(&mut file, geometry);
        if f.first_cluster != 0 && cluster != 0 && cluster != f.first_cluster {
            return Err(FsError::new(
                code::BAD_HANDLE,
                format!("handle {handle}: {} was replaced by another file", path::show(&shown)),
            ));
        }
        self.remember_place(handle, (e.position(), e.short_name_raw()));
        Ok(file)
    }

    /// Forget every remembered entry place and write end (`entry_at`,
    /// `write_ends`): entries may move or chains change.
    fn forget_places(&self) {
        self.entry_at.borrow_mut().clear();
        self.write_ends.borrow_mut().clear();
    }

    /// Remember where `handle`'s entry lies (see `entry_at`).
    fn remember_place(&self, handle: u64, place: (u64, [u8; 11])) {
        let mut places = self.entry_at.borrow_mut();
        if places.len() >= MAX_REMEMBERED_ENTRIES {
            places.clear();
        }
        places.insert(handle, place);
    }

    /// `ReadShared`: a positioned read whose bytes go to the session's
    /// shared buffer at `at`.
    fn read_shared(&mut self, session: u64, handle: u64, offset: u64, length: u32, at: u32) -> Result<Reply> {
        if offset == CURRENT {
            return Err(FsError::new(
                code::BAD_REQUEST,
                format!("handle {handle}: a shared read names its offset (not CURRENT)"),
            ));
        }
        let (offset, data) = self.read(session, handle, offset, length, false)?;
        match self.shared.put(session, at as usize, &data) {
            Ok(()) => Ok(Reply::Filled { offset, length: data.len() as u32 }),
            Err(SharedError::NoBuffer) => Err(FsError::new(
                code::NO_SHARED_BUFFER,
                String::from("this session has no shared buffer (it was opened without one)"),
            )),
            Err(SharedError::PastEnd(len)) => Err(FsError::new(
                code::BAD_REQUEST,
                format!("{} bytes at {at} run past the shared buffer ({len} bytes)", data.len()),
            )),
            Err(SharedError::Failed(why)) => Err(FsError::new(code::IO, format!("the shared buffer: {why}"))),
        }
    }

    /// Read up to `length` bytes of `handle` at `offset` (`CURRENT`: its
    /// position); the offset read from and the bytes. `advance`: leave the
    /// handle's position after them (`Read`; `ReadShared` does not).
    fn read(&mut self, session: u64, handle: u64, offset: u64, length: u32, advance: bool) -> Result<(u64, Vec<u8>)> {
        let mut f = self.handle_of(session, handle)?;
        if f.mode & flags::READ == 0 {
            return Err(FsError::new(
                code::NOT_PERMITTED,
                format!("handle {handle}: write-only handle (not opened for reading)"),
            ));
        }
        if length as usize > MAX_TRANSFER {
            return Err(FsError::new(
                code::TOO_LARGE,
                format!("handle {handle}: a read of {length} bytes (at most {MAX_TRANSFER})"),
            ));
        }
        let offset = if offset == CURRENT { f.position } else { offset };
        let shown = path::join(&f.path);
        let fat = self.fat()?;
        let mut file = self.file_of(fat, &self.geometry, handle, &f)?;
        let size = file.size().unwrap_or(0) as u64;
        let n = size.saturating_sub(offset).min(length as u64) as usize;
        let mut data = vec![0u8; n];
        if n > 0 && self.read_mapped(&mut file, &shown, offset, &mut data)? {
            // Read through the file's cluster map.
        } else if n > 0 {
            file.seek(SeekFrom::Start(offset)).map_err(|e| fat_error(&shown, e))?;
            let mut done = 0;
            while done < n {
                match file.read(&mut data[done..]) {
                    Ok(0) => {
                        return Err(FsError::new(
                            code::CORRUPT,
                            format!("{}: the file's clusters end before its size", path::show(&shown)),
                        ))
                    }
                    Ok(k) => done += k,
                    Err(e) => return Err(fat_error(&shown, e)),
                }
            }
        }
        drop(file);
        if advance {
            f.position = offset + n as u64;
            self.set_handle(session, handle, f);
        }
        Ok((offset, data))
    }

    /// Read `data.len()` bytes at `offset` of `file` (within its size)
    /// straight from the block layer, through the file's [`ClusterMap`]
    /// (built again when a sector was written since, or another file was
    /// read last). `false` when the file cannot be mapped (too
    /// fragmented): fatfs reads it then.
    fn read_mapped(&self, file: &mut File<'_, D>, shown: &str, offset: u64, data: &mut [u8]) -> Result<bool> {
        let first = first_cluster_of(file, &self.geometry);
        let version = self.blocks.borrow().version();
        let mut map = self.map.borrow_mut();
        if !map.as_ref().is_some_and(|m| m.first_cluster == first && m.version == version) {
            // Only the clusters the size needs: a damaged chain may loop.
            let clusters = file.size().unwrap_or(0).div_ceil(self.geometry.cluster.max(1) as u32) as usize;
            let offsets = file.extents().take(clusters).map(|x| x.map(|x| x.offset));
            *map =
                ClusterMap::build(first, version, self.geometry.cluster, offsets).map_err(|e| fat_error(shown, e))?;
        }
        let Some(map) = map.as_ref() else { return Ok(false) };
        let mut done = 0;
        while done < data.len() {
            let pos = offset + done as u64;
            let Some((disk, len)) = map.locate(pos, (data.len() - done) as u64) else {
                return Err(FsError::new(
                    code::CORRUPT,
                    format!("{}: the file's clusters end before its size", path::show(shown)),
                ));
            };
            let len = len as usize;
            self.blocks
                .borrow_mut()
                .read_bytes(disk, &mut data[done..done + len])
                .map_err(|e| fat_error(shown, FatError::Io(e)))?;
            done += len;
        }
        Ok(true)
    }

    /// Clusters a file of `size` bytes occupies.
    fn clusters(&self, size: u64) -> u64 {
        size.div_ceil(self.geometry.cluster)
    }

    /// Fail with `no space` unless growing a file from `from` to `to`
    /// bytes fits.
    fn check_space(&self, shown: &str, from: u64, to: u64) -> Result<()> {
        let need = self.clusters(to).saturating_sub(self.clusters(from));
        if need == 0 {
            return Ok(());
        }
        let stats = self.fat()?.stats().map_err(|e| fat_error(shown, e))?;
        if need > stats.free_clusters() as u64 {
            return Err(FsError::new(
                code::NO_SPACE,
                format!(
                    "{}: no space left on the volume ({} bytes free, {} more needed)",
                    path::show(shown),
                    stats.free_clusters() as u64 * self.geometry.cluster,
                    need * self.geometry.cluster
                ),
            ));
        }
        Ok(())
    }

    /// Write `data` at `offset` of `file` (zeros over any gap); on an
    /// error, cut the file back to `old_size`.
    /// Write `data` at `offset` of `file` (zeros first from its end if
    /// `offset` is past it); `known`: the file's cluster holding the byte
    /// before `offset`, when the caller knows it (see `write_ends`).
    fn write_at(
        file: &mut File<'_, D>,
        shown: &str,
        old_size: u64,
        offset: u64,
        data: &[u8],
        known: Option<u32>,
    ) -> Result<()> {
        let attempt = |file: &mut File<'_, D>| -> core::result::Result<(), FatError> {
            if let (Some(cluster), Ok(at)) = (known.filter(|_| offset <= old_size), u32::try_from(offset)) {
                file.seek_known(at, cluster);
            } else if offset > old_size {
                file.seek(SeekFrom::End(0))?;
                let zeros = [0u8; 4096];
                let mut left = offset - old_size;
                while left > 0 {
                    let k = left.min(zeros.len() as u64) as usize;
                    write_all(file, &zeros[..k])?;
                    left -= k as u64;
                }
            } else {
                file.seek(SeekFrom::Start(offset))?;
            }
            write_all(file, data)
        };
        match attempt(file) {
            Ok(()) => Ok(()),
            Err(e) => {
                let undo = file.seek(SeekFrom::Start(old_size)).and_then(|_| file.truncate());
                if let Err(u) = undo {
                    log::error!("fs: {}: cannot undo a failed write: {u}", path::show(shown));
                }
                Err(fat_error(shown, e))
            }
        }
    }

    fn write(&mut self, session: u64, handle: u64, offset: u64, data: &[u8]) -> Result<Reply> {
        let mut f = self.handle_of(session, handle)?;
        if f.mode & flags::WRITE == 0 {
            return Err(FsError::new(
                code::NOT_PERMITTED,
                format!("handle {handle}: read-only handle (not opened for writing)"),
            ));
        }
        if data.len() > MAX_TRANSFER {
            return Err(FsError::new(
                code::TOO_LARGE,
                format!("handle {handle}: a write of {} bytes (at most {MAX_TRANSFER})", data.len()),
            ));
        }
        let shown = path::join(&f.path);
        let geometry = self.geometry;
        // One walk to the file serves the size, the space check and the
        // write (each walk scans the directories on the path).
        let fat = self.fat()?;
        let mut file = self.file_of(fat, &geometry, handle, &f)?;
        let size = file.size().unwrap_or(0) as u64;
        let offset = if f.mode & flags::APPEND != 0 {
            size
        } else if offset == CURRENT {
            f.position
        } else {
            offset
        };
        let end = offset.saturating_add(data.len() as u64);
        if end > MAX_FILE_SIZE {
            return Err(FsError::new(
                code::TOO_LARGE,
                format!("{}: a FAT file holds at most {MAX_FILE_SIZE} bytes (4 GiB - 1)", path::show(&shown)),
            ));
        }
        if !data.is_empty() {
            self.check_space(&shown, size, end)?;
            let known = self
                .write_ends
                .borrow()
                .get(&handle)
                .filter(|&&(at, _, first)| at == offset && first == f.first_cluster && first != 0)
                .map(|&(_, cluster, _)| cluster);
            Self::write_at(&mut file, &shown, size, offset, data, known)?;
            let (at, last) = file.position_cluster();
            let cluster = first_cluster_of(&mut file, &geometry);
            drop(file);
            let mut ends = self.write_ends.borrow_mut();
            match last {
                Some(last) if u64::from(at) == end && cluster != 0 => {
                    if ends.len() >= MAX_REMEMBERED_ENTRIES {
                        ends.clear();
                    }
                    ends.insert(handle, (end, last, cluster));
                }
                _ => {
                    ends.remove(&handle);
                }
            }
            drop(ends);
            self.note_cluster(&f.path, cluster);
            f.first_cluster = cluster;
        } else {
            drop(file);
        }
        f.position = end;
        self.set_handle(session, handle, f);
        Ok(Reply::Written { offset, size: size.max(end) })
    }

    fn truncate(&mut self, session: u64, handle: u64, new_size: u64) -> Result<()> {
        let f = self.handle_of(session, handle)?;
        if f.mode & flags::WRITE == 0 {
            return Err(FsError::new(
                code::NOT_PERMITTED,
                format!("handle {handle}: read-only handle (not opened for writing)"),
            ));
        }
        let shown = path::join(&f.path);
        if new_size > MAX_FILE_SIZE {
            return Err(FsError::new(
                code::TOO_LARGE,
                format!("{}: a FAT file holds at most {MAX_FILE_SIZE} bytes (4 GiB - 1)", path::show(&shown)),
            ));
        }
        let geometry = self.geometry;
        let size = {
            let fat = self.fat()?;
            let file = self.file_of(fat, &geometry, handle, &f)?;
            file.size().unwrap_or(0) as u64
        };
        if new_size > size {
            self.check_space(&shown, size, new_size)?;
        }
        // A chain cut short: where writes ended may be gone.
        self.write_ends.borrow_mut().clear();
        let fat = self.fat()?;
        let mut file = self.file_of(fat, &geometry, handle, &f)?;
        if new_size < size {
            file.seek(SeekFrom::Start(new_size)).and_then(|_| file.truncate()).map_err(|e| fat_error(&shown, e))?;
        } else if new_size > size {
            Self::write_at(&mut file, &shown, size, new_size, &[], None)?;
        }
        let cluster = first_cluster_of(&mut file, &geometry);
        drop(file);
        self.note_cluster(&f.path, cluster);
        Ok(())
    }

    fn close(&mut self, session: u64, handle: u64) -> Result<()> {
        self.entry_at.borrow_mut().remove(&handle);
        self.write_ends.borrow_mut().remove(&handle);
        let files = self.state.sessions.get_mut(&session);
        match files.and_then(|f| f.remove(&handle)) {
            Some(_) => {
                self.state.open_count = self.state.open_count.saturating_sub(1);
                if self.state.sessions.get(&session).is_some_and(|f| f.is_empty()) {
                    self.state.sessions.remove(&session);
                }
                Ok(())
            }
            None => {
                Err(FsError::new(code::BAD_HANDLE, format!("handle {handle}: bad handle (not open in this session)")))
            }
        }
    }

    fn stat(&self, p: &str) -> Result<Reply> {
        let parts = Self::parts(p)?;
        let found = walk(self.fat()?, &parts)?;
        Ok(match found.entry {
            None => Reply::Info { kind: kind::DIR, size: 0, created: 0, modified: 0, accessed: 0 },
            Some(e) => Reply::Info {
                kind: if e.is_dir() { kind::DIR } else { kind::FILE },
                size: if e.is_dir() { 0 } else { e.len() },
                created: time::to_unix(e.created()),
                modified: time::to_unix(e.modified()),
                accessed: time::date_to_unix(e.accessed()),
            },
        })
    }

    fn list(&self, p: &str) -> Result<Vec<Reply>> {
        let parts = Self::parts(p)?;
        let fat = self.fat()?;
        let found = walk(fat, &parts)?;
        let shown = path::join(&found.canonical);
        if !found.is_dir() {
            return Err(FsError::new(code::NOT_DIR, format!("{}: not a directory", path::show(&shown))));
        }
        let dir = dir_of(fat, &found.entry);
        let mut out = Vec::new();
        for e in dir.iter() {
            let e = e.map_err(|err| fat_error(&shown, err))?;
            if is_dot(&e) {
                continue;
            }
            let d = e.is_dir();
            out.push(Reply::Entry {
                name: e.file_name(),
                kind: if d { kind::DIR } else { kind::FILE },
                size: if d { 0 } else { e.len() },
                modified: time::to_unix(e.modified()),
            });
        }
        out.push(Reply::EndList { count: out.len() as u32 });
        Ok(out)
    }

    fn mkdir(&mut self, p: &str) -> Result<()> {
        let parts = Self::parts(p)?;
        if parts.is_empty() {
            return Err(FsError::new(code::EXISTS, String::from("/: already exists")));
        }
        let fat = self.fat()?;
        let parent = walk_parent(fat, &parts)?;
        let shown = path::join(&parts);
        let dir = dir_of(fat, &parent.entry);
        if find(&dir, &parts[parts.len() - 1], &shown)?.is_some() {
            return Err(FsError::new(code::EXISTS, format!("{}: already exists", path::show(&shown))));
        }
        creatable(&parts[parts.len() - 1], &shown)?;
        dir.create_dir(&parts[parts.len() - 1]).map_err(|e| fat_error(&shown, e))?;
        Ok(())
    }

    fn busy(&self, canonical: &[String], shown: &str) -> Result<()> {
        if let Some((_, h, _)) = self.state.all().find(|(_, _, f)| f.path == canonical) {
            return Err(FsError::new(code::BUSY, format!("{}: busy (open as handle {h})", path::show(shown))));
        }
        Ok(())
    }

    fn remove(&mut self, p: &str) -> Result<()> {
        // A freed entry can be taken by another file: the remembered
        // places go.
        self.forget_places();
        let parts = Self::parts(p)?;
        if parts.is_empty() {
            return Err(FsError::new(code::BUSY, String::from("/: the root directory cannot be removed")));
        }
        let fat = self.fat()?;
        let parent = walk_parent(fat, &parts)?;
        let found = walk(fat, &parts)?;
        let shown = path::join(&found.canonical);
        self.busy(&found.canonical, &shown)?;
        let dir = dir_of(fat, &parent.entry);
        let name = &found.canonical[found.canonical.len() - 1];
        dir.remove(name).map_err(|e| fat_error(&shown, e))
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        // Entries move: the remembered places go.
        self.forget_places();
        let src = Self::parts(from)?;
        let dst = Self::parts(to)?;
        if src.is_empty() {
            return Err(FsError::new(code::BUSY, String::from("/: the root directory cannot be moved")));
        }
        if dst.is_empty() {
            return Err(FsError::new(code::EXISTS, String::from("/: already exists")));
        }
        let fat = self.fat()?;
        let src_found = walk(fat, &src)?;
        let src_parent = walk_parent(fat, &src)?;
        let dst_parent = walk_parent(fat, &dst)?;
        let src_canon = src_found.canonical.clone();
        let src_shown = path::join(&src_canon);
        let dst_shown = path::join(&dst);
        let moving_dir = src_found.is_dir();
        if moving_dir && path::within(&dst_parent.canonical, &src_canon) {
            return Err(FsError::new(
                code::BUSY,
                format!("{}: cannot move a directory into itself ({})", path::show(&src_shown), path::show(&dst_shown)),
            ));
        }
        let src_name = src_canon[src_canon.len() - 1].clone();
        let dst_name = dst[dst.len() - 1].clone();
        let src_dir = dir_of(fat, &src_parent.entry);
        let dst_dir = dir_of(fat, &dst_parent.entry);
        let same_dir = src_parent.canonical == dst_parent.canonical;
        creatable(&dst_name, &dst_shown)?;
        if let Some(existing) = find(&dst_dir, &dst_name, &dst_shown)? {
            // Only the same entry under another case may already exist.
            if !(same_dir && existing.eq_name(&src_name)) {
                return Err(FsError::new(code::EXISTS, format!("{}: already exists", path::show(&dst_shown))));
            }
            if existing.file_name() == dst_name {
                return Ok(());
            }
            // A change of case only: fatfs sees the same name, so go
            // through a temporary one.
            let temp = format!("{dst_name}.~ren");
            if find(&src_dir, &temp, &dst_shown)?.is_some() {
                return Err(FsError::new(
                    code::EXISTS,
                    format!("{}: a temporary name is in the way", path::show(&temp)),
                ));
            }
            src_dir.rename(&src_name, &src_dir, &temp).map_err(|e| fat_error(&src_shown, e))?;
            src_dir.rename(&temp, &src_dir, &dst_name).map_err(|e| fat_error(&dst_shown, e))?;
        } else {
            src_dir.rename(&src_name, &dst_dir, &dst_name).map_err(|e| fat_error(&src_shown, e))?;
        }
        let mut dst_canon = dst_parent.canonical.clone();
        dst_canon.push(dst_name);
        let fix_dotdot = moving_dir && !same_dir;
        let new_parent_is_root = dst_parent.entry.is_none();
        drop((src_dir, dst_dir, src_found, src_parent, dst_parent));
        if fix_dotdot {
            self.fix_dotdot(&dst_canon, new_parent_is_root)?;
        }
        for f in self.state.all_mut() {
            if path::within(&f.path, &src_canon) {
                let rest: Vec<String> = f.path[src_canon.len()..].to_vec();
                f.path = dst_canon.iter().cloned().chain(rest).collect();
            }
        }
        Ok(())
    }

    /// The first 64 bytes of directory `dir`'s data (its `.` and `..`
    /// entries) and the disk offset they are at.
    fn dot_entries(fat: &Fat<D>, geometry: &Geometry, dir: &Dir<'_, D>, shown: &str) -> Result<(u32, [u8; 64])> {
        let Some(file) = dir.as_file() else {
            return Err(FsError::new(code::CORRUPT, format!("{}: not a directory with entries", path::show(shown))));
        };
        let mut file = file.clone();
        let mut raw = [0u8; 64];
        let mut done = 0;
        while done < raw.len() {
            match file.read(&mut raw[done..]) {
                Ok(0) => break,
                Ok(k) => done += k,
                Err(e) => return Err(fat_error(shown, e)),
            }
        }
        let _ = (fat, geometry);
        if done < 64 || &raw[..11] != b".          " || &raw[32..43] != b"..         " {
            return Err(FsError::new(
                code::CORRUPT,
                format!("{}: its `.` and `..` entries are missing", path::show(shown)),
            ));
        }
        let cluster =
            |e: &[u8]| ((u16::from_le_bytes([e[20], e[21]]) as u32) << 16) | u16::from_le_bytes([e[26], e[27]]) as u32;
        Ok((cluster(&raw[..32]), raw))
    }

    /// After a directory moved to another parent, point its `..` entry at
    /// the new parent (fatfs only moves the entry).
    fn fix_dotdot(&mut self, moved: &[String], parent_is_root: bool) -> Result<()> {
        let shown = path::join(moved);
        let geometry = self.geometry;
        let fat = self.fat()?;
        let found = walk(fat, moved)?;
        let dir = dir_of(fat, &found.entry);
        let (own, raw) = Self::dot_entries(fat, &geometry, &dir, &shown)?;
        let parent_cluster = if parent_is_root {
            0
        } else {
            let parent = walk(fat, &moved[..moved.len() - 1])?;
            let pdir = dir_of(fat, &parent.entry);
            Self::dot_entries(fat, &geometry, &pdir, &shown)?.0
        };
        drop((dir, found));
        if own < 2 {
            return Err(FsError::new(code::CORRUPT, format!("{}: its `.` entry names no cluster", path::show(&shown))));
        }
        let at = geometry.offset_of(own) + 32;
        let mut blocks = self.blocks.borrow_mut();
        // The `.` entry names the directory's own cluster: check that the
        // entries really are there before patching (a damaged `.` must not
        // send the write elsewhere).
        let mut there = [0u8; 64];
        blocks.read_bytes(at - 32, &mut there).map_err(|e| fat_error(&shown, FatError::Io(e)))?;
        if there != raw {
            return Err(FsError::new(
                code::CORRUPT,
                format!("{}: its `.` entry names another cluster", path::show(&shown)),
            ));
        }
        let hi = ((parent_cluster >> 16) as u16).to_le_bytes();
        let lo = (parent_cluster as u16).to_le_bytes();
        blocks.write_bytes(at + 20, &hi).map_err(|e| fat_error(&shown, FatError::Io(e)))?;
        blocks.write_bytes(at + 26, &lo).map_err(|e| fat_error(&shown, FatError::Io(e)))?;
        Ok(())
    }

    fn volume(&self) -> Result<Reply> {
        let fat = self.fat()?;
        let stats = fat.stats().map_err(|e| fat_error("/", e))?;
        let cluster = stats.cluster_size();
        let kind = match fat.fat_type() {
            fatfs::FatType::Fat12 => "FAT12",
            fatfs::FatType::Fat16 => "FAT16",
            fatfs::FatType::Fat32 => "FAT32",
        };
        let mut label = fat.volume_label().trim_end().to_string();
        while label.len() > 16 {
            label.pop();
        }
        Ok(Reply::VolumeInfo {
            total: stats.total_clusters() as u64 * cluster as u64,
            free: stats.free_clusters() as u64 * cluster as u64,
            cluster,
            kind: String::from(kind),
            label,
        })
    }
}

fn write_all<D: SectorSource>(file: &mut File<'_, D>, mut data: &[u8]) -> core::result::Result<(), FatError> {
    while !data.is_empty() {
        match file.write(data)? {
            0 => return Err(FatError::WriteZero),
            n => data = &data[n..],
        }
    }
    Ok(())
}
