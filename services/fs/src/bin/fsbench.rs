//! `fsbench MIB FILES READS REPS`: the file-system figures of `cargo xtask
//! bench`, measured through the fs service (and its companion) on the data
//! disk. Each of REPS repetitions does, in this order:
//!
//! - sequential write: open `/fsbench/big.bin` (create, truncate), MIB MiB
//!   in 64 KiB `Write`s, `Sync`, close (MiB/s);
//! - sequential read: open it, 64 KiB `ReadShared`s to the end (through
//!   the session's shared buffer, as `fs::read_into` reads), close (MiB/s);
//! - random reads: READS 4 KiB `ReadShared`s at page-aligned offsets in it, one
//!   at a time (reads per second; the offsets come from the generator and
//!   seed the Linux reference uses);
//! - small files: in a new folder `/fsbench/small-R`, FILES times: open
//!   (create, exclusive), one 4 KiB `Write`, close; then `Sync` (files per
//!   second until the last close, and until the sync returned).
//!
//! "Sync" is `Sync` followed by `Volume`: `Sync` is durable, answered once
//! the requests before it are in the vault's log, before the checkpoint it
//! triggers (which commits the epoch and writes it to the disk); `Volume`
//! is answered only after that checkpoint, so the time includes the disk
//! writes.
//!
//! `fsbench resiliency`: what resiliency costs the file service, each
//! figure beside its reference measured in the same boot:
//!
//! - recovery with 100 open files (a kill through `fs.control`, to the
//!   first reply served on one of the open handles), beside a cold start
//!   of fs (a `direct` instance started, to its first reply);
//! - bytes the companion handed to the vault (states, epochs, log
//!   appends) per MiB written and synced;
//! - 4 KiB reads (cached) through the companion, beside the same reads
//!   straight to a `direct` instance;
//! - a 16 MiB sequential write then sync through the companion (epochs
//!   committed to the vault, then applied), beside the same straight to
//!   the direct instance (written out at the sync, no vault). Last: the
//!   direct instance writes the disk behind the resilient fs's back, so
//!   nothing may use the volume after it (the bench powers off).
//!
//! Prints the median of each figure over the repetitions as
//! `BENCH name value` lines (`BENCH-ERROR what` on a failure). The Linux
//! reference (`linuxbench fs`, xtask/bench/linuxbench.c) does the same on a
//! `vfat` mount of the same kind of disk.
// Not service code (a benchmark client outside the service: it times it).
#![allow(clippy::disallowed_methods)]
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
mod guest {
    extern crate alloc;

    use alloc::format;
    use alloc::string::{String, ToString};
    use alloc::vec;
    use alloc::vec::Vec;
    use fs::{code, flags, FsClient, Reply, CURRENT};
    use libos::println;
    use libos::rand::Rng;

    /// Bytes per sequential request.
    const CHUNK: usize = 65536;
    /// Bytes per random read and per small file.
    const PAGE: usize = 4096;
    /// The random offsets' generator seed (the same in linuxbench).
    const SEED: u64 = 0x00f5_bec4;
    const DIR: &str = "/fsbench";
    const BIG: &str = "/fsbench/big.bin";

    type R<T> = Result<T, String>;

    fn num(s: Option<&&str>, default: u64) -> u64 {
        s.and_then(|s| s.parse().ok()).unwrap_or(default)
    }

    struct Files(FsClient);

    impl Files {
        fn open(&mut self, path: &str, fl: u32) -> R<u64> {
            match self.0.open(path.to_string(), fl).map_err(|e| format!("open {path}: {e}"))? {
                Reply::Opened { handle, .. } => Ok(handle),
                r => Err(format!("open {path}: {r:?}")),
            }
        }
        fn done(what: &str, r: Result<Reply, libos::protocol::ClientError>) -> R<()> {
            match r.map_err(|e| format!("{what}: {e}"))? {
                Reply::Done => Ok(()),
                r => Err(format!("{what}: {r:?}")),
            }
        }
        fn close(&mut self, h: u64) -> R<()> {
            Self::done("close", self.0.close(h))
        }
        /// `Sync`, then one more request: the companion answers `Sync`
        /// once it is in the vault's log, before the checkpoint it asks
        /// for, and the next request waits for that checkpoint, which
        /// commits the epoch and writes it to the disk.
        fn sync(&mut self) -> R<()> {
            Self::done("sync", self.0.sync())?;
            match self.0.volume().map_err(|e| format!("volume: {e}"))? {
                Reply::VolumeInfo { .. } => Ok(()),
                r => Err(format!("volume: {r:?}")),
            }
        }
        fn mkdir(&mut self, path: &str) -> R<()> {
            match self.0.mkdir(path.to_string()).map_err(|e| format!("mkdir {path}: {e}"))? {
                Reply::Done => Ok(()),
                Reply::Failed { code: code::EXISTS, .. } => Ok(()),
                r => Err(format!("mkdir {path}: {r:?}")),
            }
        }
        fn write(&mut self, h: u64, offset: u64, data: Vec<u8>) -> R<()> {
            let len = data.len() as u64;
            match self.0.write(h, offset, data).map_err(|e| format!("write: {e}"))? {
                Reply::Written { .. } => Ok(()),
                r => Err(format!("write of {len} bytes: {r:?}")),
            }
        }
        /// Read exactly `len` bytes at `offset` (not `CURRENT`) into `buf`,
        /// through the session's shared buffer (`fs::read_into`).
        fn read_at(&mut self, h: u64, offset: u64, buf: &mut [u8]) -> R<()> {
            match fs::read_into(&mut self.0, h, offset, buf).map_err(|e| format!("read: {e}"))? {
                Ok(n) if n == buf.len() => Ok(()),
                Ok(n) => Err(format!("read at {offset}: {n} bytes, not {}", buf.len())),
                Err(r) => Err(format!("read at {offset}: {r:?}")),
            }
        }
        /// Read exactly `len` bytes at `offset`, in the reply.
        fn read(&mut self, h: u64, offset: u64, len: usize) -> R<()> {
            match self.0.read(h, offset, len as u32).map_err(|e| format!("read: {e}"))? {
                Reply::Data { data, .. } if data.len() == len => Ok(()),
                Reply::Data { data, .. } => Err(format!("read at {offset}: {} bytes, not {len}", data.len())),
                r => Err(format!("read at {offset}: {r:?}")),
            }
        }
    }

    /// One repetition's figures.
    struct Rep {
        write_mib_s: f64,
        read_mib_s: f64,
        rand_read_iops: f64,
        small_files_s: f64,
        small_files_synced_s: f64,
    }

    fn seconds_since(t0: u64) -> f64 {
        (libos::time::now_ns().saturating_sub(t0)) as f64 / 1e9
    }

    fn rep(f: &mut Files, r: u64, mib: u64, files: u64, reads: u64, rng: &mut Rng) -> R<Rep> {
        let chunks = mib * 1024 * 1024 / CHUNK as u64;
        let mib_done = (chunks * CHUNK as u64) as f64 / (1024.0 * 1024.0);
        let data: Vec<u8> = (0..CHUNK).map(|i| (i * 7 % 251) as u8).collect();

        let t0 = libos::time::now_ns();
        let h = f.open(BIG, flags::WRITE | flags::CREATE | flags::TRUNCATE)?;
        for _ in 0..chunks {
            f.write(h, CURRENT, data.clone())?;
        }
        f.sync()?;
        f.close(h)?;
        let write_mib_s = mib_done / seconds_since(t0);

        let t0 = libos::time::now_ns();
        let h = f.open(BIG, flags::READ)?;
        let mut buf = vec![0u8; CHUNK];
        for i in 0..chunks {
            f.read_at(h, i * CHUNK as u64, &mut buf)?;
        }
        f.close(h)?;
        let read_mib_s = mib_done / seconds_since(t0);

        let pages = chunks * (CHUNK / PAGE) as u64;
        let t0 = libos::time::now_ns();
        let h = f.open(BIG, flags::READ)?;
        for _ in 0..reads {
            let offset = rng.below(pages) * PAGE as u64;
            f.read_at(h, offset, &mut buf[..PAGE])?;
        }
        f.close(h)?;
        let rand_read_iops = reads as f64 / seconds_since(t0);

        let dir = format!("{DIR}/small-{r}");
        f.mkdir(&dir)?;
        let page = vec![0xa5u8; PAGE];
        let t0 = libos::time::now_ns();
        for i in 0..files {
            let h = f.open(&format!("{dir}/f{i:04}"), flags::WRITE | flags::CREATE | flags::EXCLUSIVE)?;
            f.write(h, 0, page.clone())?;
            f.close(h)?;
        }
        let closed = seconds_since(t0);
        f.sync()?;
        let synced = seconds_since(t0);
        Ok(Rep {
            write_mib_s,
            read_mib_s,
            rand_read_iops,
            small_files_s: files as f64 / closed,
            small_files_synced_s: files as f64 / synced,
        })
    }

    /// Bytes the fs companion handed to its store so far.
    fn stored(ctl: &mut resiliency_lib::control::ControlClient) -> R<u64> {
        match ctl.stats().map_err(|e| format!("stats: {e}"))? {
            resiliency_lib::control::Reply::Figures { stored_bytes, .. } => Ok(stored_bytes),
            r => Err(format!("stats: {r:?}")),
        }
    }

    /// A session with service `name` (a direct instance), waiting for it.
    fn session(name: &str) -> R<Files> {
        let ep = libos::directory::connect(name, true).map_err(|e| format!("{name}: {e}"))?;
        Ok(Files(FsClient::new(libos::channel::Channel::new(ep))))
    }

    /// Start a direct fs instance registered as `name`.
    fn start_direct(name: &str) -> R<libos::handle::Process> {
        libos::directory::run("fs", &format!("direct {name}")).map(|(_, p)| p).map_err(|e| format!("start {name}: {e}"))
    }

    fn ms_since(t0: u64) -> f64 {
        libos::time::now_ns().saturating_sub(t0) as f64 / 1e6
    }

    /// `reads` 4 KiB reads at the generator's offsets in the first `pages`
    /// pages of `BIG`; reads per second.
    fn random_reads(f: &mut Files, pages: u64, reads: u64) -> R<f64> {
        let mut rng = Rng::new(SEED);
        let h = f.open(BIG, flags::READ)?;
        let t0 = libos::time::now_ns();
        for _ in 0..reads {
            f.read(h, rng.below(pages) * PAGE as u64, PAGE)?;
        }
        let rate = reads as f64 / seconds_since(t0);
        f.close(h)?;
        Ok(rate)
    }

    /// Write `mib` MiB to `path` in 64 KiB writes, then sync; MiB/s.
    fn write_file(f: &mut Files, path: &str, mib: u64) -> R<f64> {
        let data: Vec<u8> = (0..CHUNK).map(|i| (i * 13 % 251) as u8).collect();
        let t0 = libos::time::now_ns();
        let h = f.open(path, flags::WRITE | flags::CREATE | flags::TRUNCATE)?;
        for _ in 0..mib * 16 {
            f.write(h, CURRENT, data.clone())?;
        }
        f.sync()?;
        f.close(h)?;
        Ok(mib as f64 / seconds_since(t0))
    }

    fn resiliency() -> R<()> {
        const OPEN: usize = 100;
        const TIMES: usize = 5;
        const WRITE_MIB: u64 = 16;
        let mut f = Files(fs::connect().map_err(|e| format!("connect: {e}"))?);
        let mut ctl = fs::control()?;
        f.mkdir(DIR)?;
        f.mkdir("/fsbench/open")?;
        // The file the reads use (present already after the main bench).
        write_file(&mut f, BIG, 4)?;
        let mut handles = Vec::new();
        for i in 0..OPEN {
            let h = f.open(&format!("/fsbench/open/f{i:03}"), flags::READ | flags::WRITE | flags::CREATE)?;
            f.write(h, 0, vec![i as u8; 512])?;
            handles.push(h);
        }
        f.sync()?;
        let mut recovery = Vec::new();
        for i in 0..TIMES {
            let t0 = libos::time::now_ns();
            ctl.crash(1).map_err(|e| format!("crash fs: {e}"))?;
            f.read(handles[i * 17 % OPEN], 0, 512)?;
            recovery.push(ms_since(t0));
        }
        let mut cold = Vec::new();
        for i in 0..TIMES {
            let name = format!("fs-cold{i}");
            let t0 = libos::time::now_ns();
            let p = start_direct(&name)?;
            let mut d = session(&name)?;
            match d.0.volume().map_err(|e| format!("{name}: volume: {e}"))? {
                Reply::VolumeInfo { .. } => cold.push(ms_since(t0)),
                r => return Err(format!("{name}: volume: {r:?}")),
            }
            let _ = p.kill();
        }
        println!("BENCH fs_recovery_open100_ms {:.2}", median(recovery));
        println!("BENCH fs_cold_start_ms {:.2}", median(cold));

        let before = stored(&mut ctl)?;
        let companion_write = write_file(&mut f, "/fsbench/through-companion.bin", WRITE_MIB)?;
        let after = stored(&mut ctl)?;
        println!("BENCH fs_vault_bytes_per_mib {:.0}", (after - before) as f64 / WRITE_MIB as f64);

        let pages = 4 * 1024 * 1024 / PAGE as u64;
        let companion_reads = random_reads(&mut f, pages, 1000)?;
        let direct = start_direct("fs-direct")?;
        let mut d = session("fs-direct")?;
        let direct_reads = random_reads(&mut d, pages, 1000)?;
        println!("BENCH fs_cached_reads_companion_s {companion_reads:.1}");
        println!("BENCH fs_cached_reads_direct_s {direct_reads:.1}");
        // Last: the direct instance now writes behind the resilient fs.
        let direct_write = write_file(&mut d, "/fsbench/direct.bin", WRITE_MIB)?;
        println!("BENCH fs_write_companion_mib_s {companion_write:.2}");
        println!("BENCH fs_write_direct_mib_s {direct_write:.2}");
        let _ = direct.kill();
        Ok(())
    }

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        match v.len() {
            0 => 0.0,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    fn run(mib: u64, files: u64, reads: u64, reps: u64) -> R<()> {
        let mut f = Files(fs::connect().map_err(|e| format!("connect: {e}"))?);
        f.mkdir(DIR)?;
        let mut rng = Rng::new(SEED);
        let mut all = Vec::new();
        for r in 0..reps {
            let x = rep(&mut f, r, mib, files, reads, &mut rng)?;
            println!(
                "fsbench: rep {r}: write {:.2} MiB/s, read {:.2} MiB/s, random reads {:.0}/s, files {:.0}/s ({:.0}/s with sync)",
                x.write_mib_s,
                x.read_mib_s,
                x.rand_read_iops,
                x.small_files_s,
                x.small_files_synced_s
            );
            all.push(x);
        }
        let m = |get: fn(&Rep) -> f64| median(all.iter().map(get).collect());
        println!("BENCH fs_seq_write_mib_s {:.2}", m(|x| x.write_mib_s));
        println!("BENCH fs_seq_read_mib_s {:.2}", m(|x| x.read_mib_s));
        println!("BENCH fs_rand_read_iops {:.1}", m(|x| x.rand_read_iops));
        println!("BENCH fs_small_files_s {:.1}", m(|x| x.small_files_s));
        println!("BENCH fs_small_files_synced_s {:.1}", m(|x| x.small_files_synced_s));
        Ok(())
    }

    pub fn main() -> i32 {
        let a: Vec<&str> = libos::start::args().split_whitespace().collect();
        let result = if a.first() == Some(&"resiliency") {
            resiliency()
        } else {
            let (mib, files, reads, reps) =
                (num(a.first(), 64), num(a.get(1), 1000), num(a.get(2), 1000), num(a.get(3), 3));
            run(mib.max(1), files, reads, reps.max(1))
        };
        match result {
            Ok(()) => 0,
            Err(e) => {
                println!("BENCH-ERROR {e}");
                1
            }
        }
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
    eprintln!("fsbench runs in the Kintsugi guest");
}
