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
//! TEMPORARY (until the lead's runtime with epochs): the held writes
//! reach the data disk at each checkpoint from here, just before the
//! state is handed over. The runtime to come takes the epoch with the
//! state, commits both to the vault, writes the epoch to the disk, and
//! then tells the service (`Fs::epoch_applied`); see `flush_epoch`.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
mod guest {
    extern crate alloc;

    use alloc::format;
    use alloc::string::String;
    use alloc::vec::Vec;
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
    /// checkpoint (TEMPORARY, like `flush_epoch`: the lead's runtime lets
    /// a service ask for one).
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
                    Ok(ep) => break blk::BlkClient::new(libos::channel::Channel::new(ep)),
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

    // One per process: boxing the mounted core would buy nothing.
    #[allow(clippy::large_enum_variant)]
    enum State {
        /// Not mounted yet; the saved state to restore, if any.
        Pending(Option<Vec<u8>>),
        Mounted(Fs<BlkDisk>),
    }

    /// The service: the core, mounted at the first request. Interior
    /// mutability because the runtime's `save` takes `&self` and, for now,
    /// writes the held blocks (see `flush_epoch`).
    struct FsService {
        state: RefCell<State>,
        /// A second session to blk for the temporary epoch writes.
        writer: RefCell<Option<blk::Disk>>,
        /// A session to `fs.control` to ask for checkpoints, and whether
        /// an answer is still to come.
        asker: Option<(libos::channel::Endpoint, bool)>,
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
            let v = fs.volume_summary();
            log::info!("fs: mounted the data disk: {v}");
            *st = State::Mounted(fs);
            Ok(())
        }

        /// TEMPORARY: write the held blocks to the data disk now (the
        /// lead's runtime replaces this: the companion commits the epoch
        /// with the checkpoint, then writes it, then calls
        /// `Fs::epoch_applied`).
        fn flush_epoch(&self, fs: &mut Fs<BlkDisk>) -> Result<(), String> {
            let writes = fs.take_epoch_writes().map_err(|e| e.message)?;
            if writes.is_empty() {
                return Ok(());
            }
            let mut w = self.writer.borrow_mut();
            if w.is_none() {
                *w = Some(blk::Disk::connect(blk::DATA_DISK).map_err(|e| format!("{e}"))?);
            }
            let disk = w.as_mut().ok_or("no blk session")?;
            let result = writes.iter().try_for_each(|x| disk.write(x.lba, &x.data)).and_then(|_| disk.flush());
            if let Err(e) = result {
                *w = None;
                return Err(format!("{e}"));
            }
            fs.epoch_applied();
            Ok(())
        }

        /// TEMPORARY: ask the companion for a checkpoint (answered after
        /// the request being handled), so the held writes stay bounded.
        fn ask_checkpoint(&mut self) {
            use libos::channel::{HandleList, Message};
            if let Some((ep, waiting)) = &mut self.asker {
                if *waiting {
                    match ep.try_recv_raw() {
                        Ok(Some(_)) => *waiting = false,
                        Ok(None) => return,
                        Err(_) => self.asker = None,
                    }
                }
            }
            if self.asker.is_none() {
                match libos::directory::connect("fs.control", false) {
                    Ok(ep) => self.asker = Some((ep, false)),
                    Err(e) => {
                        log::warn!("fs: cannot ask for a checkpoint: {e}");
                        return;
                    }
                }
            }
            if let Some((ep, waiting)) = &mut self.asker {
                let mut w = libos::wire::Writer::new();
                resiliency_lib::control::Request::Checkpoint.encode(&mut w, &mut HandleList::default());
                match ep.send_raw(&w.finish(), HandleList::default()) {
                    Ok(()) => *waiting = true,
                    Err(_) => self.asker = None,
                }
            }
        }
    }

    impl Service for FsService {
        type Protocol = FsProtocol;

        fn new() -> Self {
            FsService { state: RefCell::new(State::Pending(None)), writer: RefCell::new(None), asker: None }
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
            if held > HELD_LIMIT {
                self.ask_checkpoint();
            }
        }

        fn save(&self) -> Vec<u8> {
            let mut st = self.state.borrow_mut();
            match &mut *st {
                State::Pending(saved) => saved.clone().unwrap_or_default(),
                State::Mounted(fs) => {
                    if let Err(e) = self.flush_epoch(fs) {
                        log::error!(
                            "fs: the held writes could not reach the data disk: {e} (kept for the next checkpoint)"
                        );
                    }
                    fs.save()
                }
            }
        }

        fn restore(bytes: &[u8]) -> Result<Self, String> {
            let saved = if bytes.is_empty() { None } else { Some(bytes.to_vec()) };
            if let Some(b) = &saved {
                fs::table::State::decode(b)?.check()?;
            }
            Ok(FsService { state: RefCell::new(State::Pending(saved)), writer: RefCell::new(None), asker: None })
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
            if let State::Mounted(fs) = &mut *self.state.borrow_mut() {
                fs.session_closed(session);
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
