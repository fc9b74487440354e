//! The fs service program: the `fs` core ([`fs::Fs`]) on the data disk
//! (disk 0 of blk), under its companion (logical distillation: the open
//! files; the disk is the rest).
//!
//! Reads go to blk over a session of the service's own, not through the
//! companion's recorded inputs: between two checkpoints the disk does not
//! move (every write is held), so a read gives the same bytes in a replay
//! as in the first run, while a replay's reads differ in number and order
//! (a restarted service starts with a cold cache), which positional
//! recorded inputs cannot match. The volume is mounted at the first
//! request, not at start (the companion protocol allows no calls then).
//!
//! Epochs (DESIGN.md 5.3): every write is held in the core's overlay.
//! At a checkpoint the runtime takes them as the epoch (`take_epoch`),
//! the companion commits it to the vault with the open-file table, and
//! only then asks for them to be written (`apply_epoch`: through a blk
//! session of the service's own, then flushed). A restart from a
//! checkpoint whose epoch may not be on the disk (at boot, or after a
//! crash while writing it) writes it again before mounting (`redo_epoch`).
//! The service asks for a checkpoint when it holds many writes
//! ([`resiliency_lib::service::want_checkpoint`]).
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
mod guest {
    extern crate alloc;

    use alloc::format;
    use alloc::string::String;
    use alloc::vec::Vec;
    use checkpoint_record::epoch::BlockWrite;
    use core::cell::RefCell;
    use fs::protocol::{Fs as FsProtocol, Reply, Request};
    use fs::{code, DiskError, Fs, SectorSource};
    use libos::protocol::ReplySink;
    use resiliency_lib::service::{serve, RequestOf, Service};

    /// How long to wait for blk before answering with an error.
    const BLK_WAIT_NS: u64 = 10_000_000_000;
    /// Clean sectors cached (2 MiB).
    const CACHE_SECTORS: usize = 4096;
    /// Held writes past which the service asks its companion for a
    /// checkpoint (which commits and applies them).
    const HELD_LIMIT: u64 = 4 << 20;

    /// The data disk through a blk session of our own.
    struct BlkDisk {
        disk: blk::Disk,
        sectors: u64,
    }

    impl BlkDisk {
        // The clock bounds the wait for blk at mount, before any state.
        #[allow(clippy::disallowed_methods)]
        fn connect() -> Result<BlkDisk, String> {
            let deadline = libos::time::now_ns() + BLK_WAIT_NS;
            let client = loop {
                match libos::directory::connect(blk::SERVICE, false) {
                    Ok(ep) => break blk::session_over(ep).map_err(|e| format!("blk: {e}"))?,
                    Err(e) if libos::time::now_ns() > deadline => return Err(format!("no blk service: {e}")),
                    Err(_) => libos::time::sleep(core::time::Duration::from_millis(50)),
                }
            };
            let mut disk = blk::Disk::new(client, blk::DATA_DISK);
            let g = disk.info().map_err(|e| format!("data disk: {e}"))?;
            if g.sector_size as usize != fs::SECTOR {
                return Err(format!("data disk: {}-byte sectors (512 needed)", g.sector_size));
            }
            Ok(BlkDisk { disk, sectors: g.sectors })
        }
    }

    impl SectorSource for BlkDisk {
        fn sectors(&self) -> u64 {
            self.sectors
        }
        fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DiskError> {
            self.disk.read(lba, buf).map_err(|e| DiskError(format!("{e}")))
        }
    }

    /// The sessions' shared buffers as the runtime maps them (memory each
    /// client maps too): where `ReadShared` puts its bytes.
    struct RuntimeShared;

    impl fs::shared::SharedBuffers for RuntimeShared {
        fn put(&self, session: u64, at: usize, data: &[u8]) -> Result<(), fs::shared::SharedError> {
            use fs::shared::SharedError;
            resiliency_lib::shared::with(session, |map| {
                if at.checked_add(data.len()).is_none_or(|end| end > map.len()) {
                    return Err(SharedError::PastEnd(map.len()));
                }
                map.copy_in(at, data).map_err(|e| SharedError::Failed(format!("{e}")))
            })
            .unwrap_or(Err(SharedError::NoBuffer))
        }
    }

    // One per process: boxing the mounted core would buy nothing.
    #[allow(clippy::large_enum_variant)]
    enum State {
        /// Not mounted yet; the saved state to restore, if any.
        Pending(Option<Vec<u8>>),
        Mounted(Fs<BlkDisk>),
    }

    /// The service: the core, mounted at the first request.
    struct FsService {
        state: RefCell<State>,
        /// A second blk session, for writing epochs.
        writer: Option<blk::Disk>,
        /// The writes of the epoch last taken, until they are applied.
        taken: Vec<BlockWrite>,
    }

    /// Write `writes` to the data disk through `writer` (connected on first
    /// use, dropped after a failure so the next try connects again), then
    /// flush.
    fn write_out(writer: &mut Option<blk::Disk>, writes: &[BlockWrite]) -> Result<(), String> {
        if writer.is_none() {
            *writer = Some(blk::Disk::connect(blk::DATA_DISK).map_err(|e| format!("{e}"))?);
        }
        let disk = writer.as_mut().ok_or("no blk session")?;
        let result = writes
            .iter()
            .try_for_each(|w| {
                if w.disk != blk::DATA_DISK {
                    return Err(blk::DiskError::Session(format!("an epoch write for disk {}", w.disk)));
                }
                disk.write(w.lba, &w.data)
            })
            .and_then(|_| disk.flush());
        if let Err(e) = result {
            *writer = None;
            return Err(format!("{e}"));
        }
        Ok(())
    }

    impl FsService {
        fn mounted(&self) -> Result<(), (u32, String)> {
            let mut st = self.state.borrow_mut();
            let State::Pending(saved) = &*st else { return Ok(()) };
            let disk = BlkDisk::connect().map_err(|e| (code::IO, e))?;
            let fs = match saved {
                Some(bytes) => Fs::restore_with_cache(disk, bytes, CACHE_SECTORS),
                None => Fs::mount_with_cache(disk, CACHE_SECTORS),
            }
            .map_err(|e| (e.code, e.message))?;
            let mut fs = fs;
            fs.set_shared(alloc::boxed::Box::new(RuntimeShared));
            let v = fs.volume_summary();
            log::info!("fs: mounted the data disk: {v}");
            *st = State::Mounted(fs);
            Ok(())
        }
    }

    impl Service for FsService {
        type Protocol = FsProtocol;

        fn new() -> Self {
            FsService { state: RefCell::new(State::Pending(None)), writer: None, taken: Vec::new() }
        }

        fn handle(&mut self, request: RequestOf<Self>, out: &mut dyn ReplySink<Reply>) {
            self.handle_in_session(0, request, out)
        }

        fn handle_in_session(&mut self, session: u64, request: Request, out: &mut dyn ReplySink<Reply>) {
            if let Err((code, message)) = self.mounted() {
                log::warn!("fs: cannot mount the data disk: {message}");
                out.reply(Reply::Failed { code, message: format!("the data disk cannot be mounted: {message}") });
                return;
            }
            let mut held = 0;
            if let State::Mounted(fs) = &mut *self.state.borrow_mut() {
                for r in fs.handle(session, request) {
                    out.reply(r);
                }
                held = fs.held_bytes();
            }
            resiliency_lib::service::report_held(held);
            if held > HELD_LIMIT {
                resiliency_lib::service::want_checkpoint();
            }
        }

        fn save(&self) -> Vec<u8> {
            let mut st = self.state.borrow_mut();
            match &mut *st {
                State::Pending(saved) => saved.clone().unwrap_or_default(),
                State::Mounted(fs) => fs.save(),
            }
        }

        fn take_epoch(&mut self) -> Result<Vec<u8>, String> {
            self.taken.clear();
            let State::Mounted(fs) = &mut *self.state.borrow_mut() else { return Ok(Vec::new()) };
            self.taken = fs.take_epoch_writes().map_err(|e| e.message)?;
            if self.taken.is_empty() {
                return Ok(Vec::new());
            }
            checkpoint_record::epoch::encode(&self.taken).map_err(|e| format!("epoch: {e}"))
        }

        fn apply_epoch(&mut self) -> Result<(), String> {
            if self.taken.is_empty() {
                return Ok(());
            }
            write_out(&mut self.writer, &self.taken)?;
            self.taken = Vec::new();
            if let State::Mounted(fs) = &mut *self.state.borrow_mut() {
                fs.epoch_applied();
                resiliency_lib::service::report_held(fs.held_bytes());
            }
            Ok(())
        }

        fn redo_epoch(epoch: &[u8]) -> Result<(), String> {
            let writes = checkpoint_record::epoch::decode(epoch).map_err(|e| format!("{e}"))?;
            write_out(&mut None, &writes)
        }

        fn restore(bytes: &[u8]) -> Result<Self, String> {
            let saved = if bytes.is_empty() { None } else { Some(bytes.to_vec()) };
            if let Some(b) = &saved {
                fs::table::State::decode(b)?.check()?;
            }
            Ok(FsService { state: RefCell::new(State::Pending(saved)), writer: None, taken: Vec::new() })
        }

        fn check(&self) -> Result<(), String> {
            match &*self.state.borrow() {
                State::Mounted(fs) => fs.check(),
                State::Pending(Some(b)) => fs::table::State::decode(b)?.check(),
                State::Pending(None) => Ok(()),
            }
        }

        fn chaos_corrupt(&mut self) {
            match &mut *self.state.borrow_mut() {
                State::Mounted(fs) => fs.corrupt(),
                State::Pending(saved) => *saved = Some(Vec::from(*b"damaged")),
            }
        }

        fn session_closed(&mut self, session: u64) {
            match &mut *self.state.borrow_mut() {
                State::Mounted(fs) => fs.session_closed(session),
                // Not mounted yet: the session's handles leave the saved
                // table, which the mount restores.
                State::Pending(Some(saved)) => {
                    if let Ok(mut table) = fs::table::State::decode(saved) {
                        if table.close_session(session) {
                            *saved = table.encode();
                        }
                    }
                }
                State::Pending(None) => {}
            }
        }

        fn sessions(&self) -> Vec<u64> {
            match &*self.state.borrow() {
                State::Mounted(fs) => fs.sessions(),
                State::Pending(Some(saved)) => {
                    fs::table::State::decode(saved).map(|t| t.sessions.keys().copied().collect()).unwrap_or_default()
                }
                State::Pending(None) => Vec::new(),
            }
        }
    }

    pub fn main() -> i32 {
        serve::<FsService>()
    }
}

#[cfg(target_os = "none")]
libos::main!(main);

#[cfg(target_os = "none")]
fn main() -> i32 {
    guest::main()
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("the fs service runs in the Kintsugi guest");
}
