//! Host tests of the file service core: every request kind and error,
//! save and restore, epochs (the disk never moves; an epoch applied to the
//! base image gives the state reported, and `fsck.fat -n` is clean), a full
//! disk, large directories, and random operation sequences against a model.
//! Images are made with `mkfs.fat` and checked with `fsck.fat` (dosfstools).

mod model;
mod requests;

use crate::memdisk::{apply_epoch, MemDisk};
use crate::protocol::{Reply, Request};
use crate::{flags, Fs, CURRENT};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

fn temp_path(tag: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("kintsugi-fs-{}-{tag}-{n}.img", std::process::id()))
}

/// A FAT32 image of `mib` MiB made by mkfs.fat, `spc` sectors per cluster.
pub fn image(mib: u64, spc: u32) -> Vec<u8> {
    let p = temp_path("mkfs");
    let _ = std::fs::remove_file(&p);
    let out = Command::new("mkfs.fat")
        .args(["-F", "32", "-s", &spc.to_string(), "-n", "KINTSUGI", "-i", "12345678", "-C"])
        .arg(&p)
        .arg((mib * 1024).to_string())
        .output()
        .expect("mkfs.fat (dosfstools) must be installed");
    assert!(out.status.success(), "mkfs.fat: {}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(&p).unwrap();
    let _ = std::fs::remove_file(&p);
    bytes
}

/// `fsck.fat -n` on `bytes`: Ok if clean, else its output.
pub fn fsck(bytes: &[u8]) -> Result<(), String> {
    let p = temp_path("fsck");
    std::fs::write(&p, bytes).unwrap();
    let out = Command::new("fsck.fat").arg("-n").arg(&p).output().expect("fsck.fat (dosfstools) must be installed");
    let _ = std::fs::remove_file(&p);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() && !text.contains("Dirty bit") {
        Ok(())
    } else {
        Err(text)
    }
}

/// A mounted fs over an image, with helpers.
pub struct T {
    pub fs: Fs<MemDisk>,
    pub disk: MemDisk,
}

impl T {
    pub fn new(mib: u64) -> T {
        T::on(image(mib, 1))
    }

    pub fn on(bytes: Vec<u8>) -> T {
        let disk = MemDisk::from_bytes(bytes);
        let fs = Fs::mount(disk.clone()).expect("mount");
        T { fs, disk }
    }

    pub fn req(&mut self, session: u64, r: Request) -> Vec<Reply> {
        self.fs.handle(session, r)
    }

    pub fn one(&mut self, session: u64, r: Request) -> Reply {
        let mut v = self.req(session, r);
        assert_eq!(v.len(), 1, "one reply expected: {v:?}");
        v.remove(0)
    }

    pub fn ok(&mut self, session: u64, r: Request) {
        let rep = self.one(session, r.clone());
        assert_eq!(rep, Reply::Done, "{r:?}");
    }

    pub fn fail(&mut self, session: u64, r: Request) -> (u32, String) {
        match self.one(session, r.clone()) {
            Reply::Failed { code, message } => (code, message),
            other => panic!("{r:?} should fail, got {other:?}"),
        }
    }

    pub fn open(&mut self, session: u64, path: &str, fl: u32) -> u64 {
        match self.one(session, Request::Open { path: path.into(), flags: fl }) {
            Reply::Opened { handle, .. } => handle,
            other => panic!("open {path}: {other:?}"),
        }
    }

    pub fn write(&mut self, session: u64, handle: u64, offset: u64, data: &[u8]) -> u64 {
        match self.one(session, Request::Write { handle, offset, data: data.to_vec() }) {
            Reply::Written { size, .. } => size,
            other => panic!("write: {other:?}"),
        }
    }

    pub fn read(&mut self, session: u64, handle: u64, offset: u64, length: u32) -> Vec<u8> {
        match self.one(session, Request::Read { handle, offset, length }) {
            Reply::Data { data, .. } => data,
            other => panic!("read: {other:?}"),
        }
    }

    /// Create (or replace) the file `path` with `data`, then close it.
    pub fn put(&mut self, path: &str, data: &[u8]) {
        let h = self.open(99, path, flags::WRITE | flags::CREATE | flags::TRUNCATE);
        for (i, c) in data.chunks(65536).enumerate() {
            self.write(99, h, (i * 65536) as u64, c);
        }
        self.ok(99, Request::Close { handle: h });
    }

    /// The whole file `path`.
    pub fn get(&mut self, path: &str) -> Vec<u8> {
        let h = self.open(98, path, flags::READ);
        let mut out = Vec::new();
        loop {
            let d = self.read(98, h, CURRENT, 65536);
            if d.is_empty() {
                break;
            }
            out.extend_from_slice(&d);
        }
        self.ok(98, Request::Close { handle: h });
        out
    }

    /// Names in directory `path`.
    pub fn ls(&mut self, path: &str) -> Vec<String> {
        let replies = self.req(1, Request::List { path: path.into() });
        let mut names = Vec::new();
        for r in replies {
            match r {
                Reply::Entry { name, .. } => names.push(name),
                Reply::EndList { count } => assert_eq!(count as usize, names.len()),
                other => panic!("ls {path}: {other:?}"),
            }
        }
        names
    }

    /// Take the epoch, apply it to a copy of the disk as it is (the disk
    /// itself unchanged), and return the copy.
    pub fn committed_copy(&mut self) -> Vec<u8> {
        let epoch = self.fs.take_epoch().expect("epoch");
        let mut copy = self.disk.snapshot();
        if !epoch.is_empty() {
            apply_epoch(&mut copy, 0, &epoch).expect("apply");
        }
        copy
    }

    /// Take the epoch, write it to the disk, and tell the fs.
    pub fn commit(&mut self) {
        let epoch = self.fs.take_epoch().expect("epoch");
        if !epoch.is_empty() {
            apply_epoch(&mut self.disk.bytes.borrow_mut(), 0, &epoch).expect("apply");
        }
        self.fs.epoch_applied();
    }
}
