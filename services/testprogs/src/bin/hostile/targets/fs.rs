//! fs under attack. It creates, changes and removes only what is under
//! `/hostile/`; a request that decodes into a change elsewhere is not sent.
//! Its scripts open a file and then ask for offsets, lengths and sizes at
//! and past every limit on that handle, close it twice, and open many
//! handles in one session.

use super::{edgy, odd_name, text, Seed, Target};
use crate::probe::{encode, Expect};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use fs::protocol::{Reply, Request};
use libos::channel::Endpoint;
use testprogs::Rng;

/// fs.
pub struct Fs;

const READ: u32 = 1;
const WRITE: u32 = 2;
const CREATE: u32 = 4;
const TRUNCATE: u32 = 8;

fn ours(path: &str) -> bool {
    path.starts_with("/hostile/") && !path.contains("..")
}

fn s(v: &str) -> String {
    String::from(v)
}

/// A session with a deadline on every answer.
struct Client(Endpoint);

impl Client {
    fn go(&mut self, r: Request) -> Result<Reply, String> {
        crate::probe::call::<fs::protocol::Fs>(&mut self.0, r)
    }
    fn mkdir(&mut self, path: String) -> Result<Reply, String> {
        self.go(Request::Mkdir { path })
    }
    fn open(&mut self, path: String, flags: u32) -> Result<Reply, String> {
        self.go(Request::Open { path, flags })
    }
    fn read(&mut self, handle: u64, offset: u64, length: u32) -> Result<Reply, String> {
        self.go(Request::Read { handle, offset, length })
    }
    fn write(&mut self, handle: u64, offset: u64, data: Vec<u8>) -> Result<Reply, String> {
        self.go(Request::Write { handle, offset, data })
    }
    fn truncate(&mut self, handle: u64, size: u64) -> Result<Reply, String> {
        self.go(Request::Truncate { handle, size })
    }
    fn close(&mut self, handle: u64) -> Result<Reply, String> {
        self.go(Request::Close { handle })
    }
    fn remove(&mut self, path: String) -> Result<Reply, String> {
        self.go(Request::Remove { path })
    }
    fn rename(&mut self, from: String, to: String) -> Result<Reply, String> {
        self.go(Request::Rename { from, to })
    }
}

fn client() -> Result<Client, String> {
    Ok(Client(crate::probe::connect("fs")?))
}

/// One step of a script: the typed call's result judged.
fn judge(failures: &mut Vec<String>, what: &str, r: Result<Reply, String>, expect: Expect) {
    let ok = matches!((&r, expect), (Ok(Reply::Failed { .. }), _) | (Ok(_), Expect::Any));
    if !ok {
        failures.push(format!("fs: {what}: {r:?} (wanted {expect:?})"));
    }
}

impl Target for Fs {
    type P = fs::protocol::Fs;
    const NAME: &'static str = "fs";
    const LAST_TAG: u8 = 12;

    fn safe(r: &Request) -> bool {
        match r {
            Request::Open { path, flags } => flags & (WRITE | CREATE | TRUNCATE | 16) == 0 || ours(path),
            Request::Mkdir { path } | Request::Remove { path } => ours(path),
            Request::Rename { from, to } => ours(from) && ours(to),
            _ => true,
        }
    }

    fn seeds() -> Vec<Seed> {
        vec![
            Seed {
                name: "Open",
                bytes: encode(Request::Open { path: s("/hostile/f"), flags: READ }),
                lengths: vec![1, 15],
                flags: vec![],
            },
            Seed {
                name: "Read",
                bytes: encode(Request::Read { handle: 1, offset: 0, length: 10 }),
                lengths: vec![17],
                flags: vec![],
            },
            Seed {
                name: "Write",
                bytes: encode(Request::Write { handle: 1, offset: 0, data: vec![1, 2, 3] }),
                lengths: vec![17],
                flags: vec![],
            },
            Seed { name: "Stat", bytes: encode(Request::Stat { path: s("/") }), lengths: vec![1], flags: vec![] },
            Seed {
                name: "Rename",
                bytes: encode(Request::Rename { from: s("/hostile/a"), to: s("/hostile/b") }),
                lengths: vec![1, 15],
                flags: vec![],
            },
            Seed {
                name: "Mkdir",
                bytes: encode(Request::Mkdir { path: s("/hostile/d") }),
                lengths: vec![1],
                flags: vec![],
            },
            Seed { name: "Volume", bytes: encode(Request::Volume {}), lengths: vec![], flags: vec![] },
        ]
    }

    fn crafted() -> Vec<(&'static str, Vec<u8>, Option<Expect>)> {
        let e = Some(Expect::Error);
        let any = Some(Expect::Any);
        let open = |p: &str, flags: u32| encode(Request::Open { path: s(p), flags });
        let deep: String = "/a".repeat(512);
        vec![
            ("Stat of a 1025-byte path", encode(Request::Stat { path: "/".repeat(1025) }), Some(Expect::Rejected)),
            (
                "Write of 65537 bytes",
                encode(Request::Write { handle: 1, offset: 0, data: vec![0; 65537] }),
                Some(Expect::Rejected),
            ),
            ("Open of a relative path", open("hostile/f", READ), e),
            ("Open with no mode", open("/hostile/f", 0), e),
            ("Open with unknown flags", open("/hostile/f", 0xffff_ff00 | READ), e),
            ("Open with every flag", open("/hostile/every", u32::MAX), any),
            ("Open of an invalid name", open("/hostile/a*b?", READ | WRITE | CREATE), e),
            ("Open of a name with a control character", open("/hostile/a\u{1}b", READ | WRITE | CREATE), e),
            ("Open of a 300-character name", open(&format!("/hostile/{}", "n".repeat(300)), READ | CREATE), e),
            ("Open of the root", open("/", READ | WRITE), e),
            ("Read of a handle never opened", encode(Request::Read { handle: 99, offset: 0, length: 1 }), e),
            (
                "Write to a handle never opened",
                encode(Request::Write { handle: u64::MAX, offset: 0, data: vec![1] }),
                e,
            ),
            ("Truncate of a handle never opened", encode(Request::Truncate { handle: 7, size: 0 }), e),
            ("Close of handle 0", encode(Request::Close { handle: 0 }), e),
            ("Stat of a missing path", encode(Request::Stat { path: s("/no/such/hostile/path") }), e),
            ("Stat of /../../..", encode(Request::Stat { path: s("/../../..") }), any),
            ("Stat of a 1024-byte deep path", encode(Request::Stat { path: deep }), any),
            ("Stat of an empty path", encode(Request::Stat { path: String::new() }), any),
            ("List of the root", encode(Request::List { path: s("/") }), any),
            ("List of a missing directory", encode(Request::List { path: s("/no/such/dir") }), e),
            ("Remove of the root", encode(Request::Remove { path: s("/") }), e),
            ("Rename of the root", encode(Request::Rename { from: s("/"), to: s("/hostile/root") }), e),
            ("Rename of a missing file", encode(Request::Rename { from: s("/hostile/none"), to: s("/hostile/x") }), e),
            ("Mkdir of an existing directory", encode(Request::Mkdir { path: s("/hostile") }), any),
            ("Mkdir under a missing parent", encode(Request::Mkdir { path: s("/hostile/no/such/d") }), e),
            ("Sync", encode(Request::Sync {}), any),
        ]
    }

    fn random_valid(rng: &mut Rng) -> Vec<u8> {
        let path = |rng: &mut Rng| format!("/{}", text(rng, 200));
        let mine = |rng: &mut Rng| format!("/hostile/r/{}", odd_name(rng));
        let handle = edgy(rng, 8);
        encode(match rng.below(10) {
            0 => Request::Stat { path: path(rng) },
            1 => Request::List { path: path(rng) },
            2 => Request::Open { path: path(rng), flags: READ | (rng.below(64) as u32 & 32) },
            3 => Request::Open { path: mine(rng), flags: edgy(rng, 64) as u32 },
            4 => Request::Read { handle, offset: edgy(rng, 1 << 20), length: edgy(rng, 70_000) as u32 },
            5 => Request::Write { handle, offset: edgy(rng, 1 << 20), data: vec![7; rng.below(100) as usize] },
            6 => Request::Truncate { handle, size: edgy(rng, 1 << 20) },
            7 => Request::Mkdir { path: mine(rng) },
            8 => Request::Rename { from: mine(rng), to: mine(rng) },
            _ => Request::Remove { path: mine(rng) },
        })
    }

    fn cheap() -> Vec<u8> {
        encode(Request::Stat { path: s("/") })
    }

    fn never_read() -> Result<(Vec<u8>, bool), String> {
        Ok((encode(Request::List { path: s("/") }), false))
    }

    fn healthy() -> Result<(), String> {
        let mut c = client()?;
        let _ = c.mkdir(s("/hostile"));
        let h = match c.open(s("/hostile/healthy"), READ | WRITE | CREATE | TRUNCATE) {
            Ok(Reply::Opened { handle, .. }) => handle,
            other => return Err(format!("open: {other:?}")),
        };
        match c.write(h, 0, Vec::from(&b"well-behaved"[..])) {
            Ok(Reply::Written { size: 12, .. }) => {}
            other => return Err(format!("write: {other:?}")),
        }
        match c.read(h, 0, 100) {
            Ok(Reply::Data { data, .. }) if data == b"well-behaved" => {}
            other => return Err(format!("read: {other:?}")),
        }
        match c.close(h) {
            Ok(Reply::Done) => Ok(()),
            other => Err(format!("close: {other:?}")),
        }
    }

    fn scripts(rng: &mut Rng, rounds: u64) -> Vec<String> {
        let mut f = Vec::new();
        let mut c = match client() {
            Ok(c) => c,
            Err(e) => return vec![format!("fs: scripts: {e}")],
        };
        let _ = c.mkdir(s("/hostile"));
        let h = match c.open(s("/hostile/f"), READ | WRITE | CREATE) {
            Ok(Reply::Opened { handle, .. }) => handle,
            other => return vec![format!("fs: scripts: open: {other:?}")],
        };
        let any = Expect::Any;
        let e = Expect::Error;
        judge(&mut f, "read at u64::MAX", c.read(h, u64::MAX, 65536), any);
        judge(&mut f, "read of u32::MAX bytes", c.read(h, 0, u32::MAX), e);
        judge(&mut f, "read of 65537 bytes", c.read(h, 0, 65537), e);
        judge(&mut f, "write at u64::MAX - 2", c.write(h, u64::MAX - 2, vec![1, 2, 3]), e);
        judge(&mut f, "write across 4 GiB", c.write(h, 0xffff_fffe, vec![1, 2, 3]), e);
        judge(&mut f, "write past the volume's end", c.write(h, 0xf000_0000, vec![1]), e);
        judge(&mut f, "truncate to u64::MAX", c.truncate(h, u64::MAX), e);
        judge(&mut f, "truncate to 4 GiB", c.truncate(h, 1 << 32), e);
        judge(&mut f, "truncate to 1 MiB", c.truncate(h, 1 << 20), any);
        judge(&mut f, "read at the position", c.read(h, u64::MAX, 10), any);
        judge(&mut f, "truncate to 0", c.truncate(h, 0), any);
        judge(&mut f, "remove of the open file", c.remove(s("/hostile/f")), e);
        judge(&mut f, "rename of a directory into itself", c.rename(s("/hostile"), s("/hostile/in/itself")), e);
        judge(&mut f, "close", c.close(h), any);
        judge(&mut f, "close again", c.close(h), e);
        judge(&mut f, "read of the closed handle", c.read(h, 0, 1), e);
        judge(&mut f, "write to the closed handle", c.write(h, 0, vec![1]), e);
        let mut handles = Vec::new();
        for i in 0..200 {
            match c.open(s("/hostile/f"), READ) {
                Ok(Reply::Opened { handle, .. }) => handles.push(handle),
                Ok(Reply::Failed { .. }) => break,
                other => {
                    f.push(format!("fs: open number {i} of one file: {other:?}"));
                    break;
                }
            }
        }
        // The session ends with the handles open: closing it closes them.
        random_script(rng, rounds, &mut f);
        f
    }
}

/// `rounds` random operations with edge values on one file of one session
/// (offsets and sizes up to a few MiB), and on names under `/hostile/r/`;
/// every one must be answered.
fn random_script(rng: &mut Rng, rounds: u64, f: &mut Vec<String>) {
    const CURRENT: u64 = u64::MAX;
    let mut c = match client() {
        Ok(c) => c,
        Err(e) => return f.push(format!("fs: random script: {e}")),
    };
    let _ = c.mkdir(s("/hostile/r"));
    let mut h = 0;
    for i in 0..rounds {
        if i % 16 == 0 {
            let _ = c.close(h);
            h = match c.open(s("/hostile/r.bin"), READ | WRITE | CREATE | (rng.below(2) as u32 * 16)) {
                Ok(Reply::Opened { handle, .. }) => handle,
                other => return f.push(format!("fs: random script: open: {other:?}")),
            };
        }
        let offset = if rng.chance(200) { CURRENT } else { edgy(rng, 4 << 20).min(4 << 20) };
        let mine = |rng: &mut Rng| format!("/hostile/r/{}", odd_name(rng));
        let (what, r) = match rng.below(7) {
            0 => ("read", c.read(h, offset, edgy(rng, 70_000) as u32)),
            1 => ("write", c.write(h, offset, vec![rng.next() as u8; rng.below(9000) as usize])),
            2 => ("truncate", c.truncate(h, edgy(rng, 4 << 20).min(4 << 20))),
            3 => ("mkdir", c.mkdir(mine(rng))),
            4 => ("rename", c.rename(mine(rng), mine(rng))),
            5 => ("remove", c.remove(mine(rng))),
            _ => ("open", c.open(mine(rng), edgy(rng, 64) as u32)),
        };
        judge(f, &format!("random step {i}: {what}"), r, Expect::Any);
    }
    let _ = c.truncate(h, 0);
    let _ = c.close(h);
}
