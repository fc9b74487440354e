//! `fscheck errors` and `fscheck handles`: checks of the fs service from
//! a client, for the system tests.
//!
//! - `errors`: every kind of bad request gets its `Failed` code (read-only
//!   and write-only handles, bad handles, another session's handle, no such
//!   file, is a directory, not a directory, not empty, bad names, exists,
//!   busy, too large), and a client that sends malformed messages (unknown
//!   tags, truncated fields, trailing bytes, over-long strings) loses only
//!   its own session: fs keeps serving the others.
//! - `handles`: a file is opened and written in parts; between parts `fs`
//!   is crashed in each way (kill, fault, hang, panic, contract violation,
//!   corrupt state) through `fs.control`; every part goes through the same
//!   handle at its position; then the whole file is read back through it.
//!
//! - `hold SECONDS`: a file is opened and written, fs takes a checkpoint
//!   (so the open handle is in the checkpoint and nowhere in the log after
//!   it), the client says `fscheck: holding` and sends nothing for
//!   SECONDS, while the test restarts the vault and then fs's companion;
//!   then it writes and reads through the same handle. Its session must
//!   not be taken for one of an earlier boot (RELIABILITY finding 16).
//!
//! Each prints `fscheck: ok` or one line per failure and `fscheck: N
//! failures`.
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
    use libos::channel::HandleList;
    use libos::println;

    struct Report(Vec<String>);

    impl Report {
        fn expect_code(&mut self, what: &str, r: Result<Reply, libos::protocol::ClientError>, want: u32) {
            match r {
                Ok(Reply::Failed { code, message }) if code == want => {
                    println!("fscheck: {what}: {code} {message}");
                }
                other => self.0.push(format!("{what}: expected Failed {want}, got {other:?}")),
            }
        }
        fn expect(&mut self, what: &str, ok: bool, detail: String) {
            if !ok {
                self.0.push(format!("{what}: {detail}"));
            }
        }
        fn finish(self) -> i32 {
            if self.0.is_empty() {
                println!("fscheck: ok");
                return 0;
            }
            for f in &self.0 {
                println!("fscheck: FAILED {f}");
            }
            println!("fscheck: {} failures", self.0.len());
            1
        }
    }

    fn connect() -> Result<FsClient, String> {
        fs::connect().map_err(|e| format!("{e}"))
    }

    fn opened(r: Result<Reply, libos::protocol::ClientError>) -> Option<u64> {
        match r {
            Ok(Reply::Opened { handle, .. }) => Some(handle),
            _ => None,
        }
    }

    fn errors() -> i32 {
        let mut rep = Report(Vec::new());
        let (Ok(mut a), Ok(mut b)) = (connect(), connect()) else {
            println!("fscheck: cannot connect to fs");
            return 1;
        };
        let _ = a.mkdir("/fscheck".into());
        let _ = a.mkdir("/fscheck/full".into());
        let _ = opened(a.open("/fscheck/full/x".into(), flags::WRITE | flags::CREATE));
        let Some(h) =
            opened(a.open("/fscheck/file".into(), flags::READ | flags::WRITE | flags::CREATE | flags::TRUNCATE))
        else {
            println!("fscheck: cannot create /fscheck/file");
            return 1;
        };
        let _ = a.write(h, 0, b"0123456789".to_vec());
        let ro = opened(a.open("/fscheck/file".into(), flags::READ)).unwrap_or(0);
        let wo = opened(a.open("/fscheck/file".into(), flags::WRITE)).unwrap_or(0);
        rep.expect_code("write on a read-only handle", a.write(ro, 0, b"x".to_vec()), code::NOT_PERMITTED);
        rep.expect_code("truncate on a read-only handle", a.truncate(ro, 0), code::NOT_PERMITTED);
        rep.expect_code("read on a write-only handle", a.read(wo, 0, 1), code::NOT_PERMITTED);
        rep.expect_code("read on a bad handle", a.read(999_999, 0, 1), code::BAD_HANDLE);
        rep.expect_code("another session's handle", b.read(h, 0, 1), code::BAD_HANDLE);
        rep.expect_code("close another session's handle", b.close(h), code::BAD_HANDLE);
        rep.expect_code("a read over 64 KiB", a.read(h, 0, 65537), code::TOO_LARGE);
        rep.expect_code("a write past 4 GiB", a.write(h, u32::MAX as u64, b"x".to_vec()), code::TOO_LARGE);
        rep.expect_code("no such file", a.open("/fscheck/nope".into(), flags::READ), code::NOT_FOUND);
        rep.expect_code(
            "no such folder",
            a.open("/nope/x".into(), flags::READ | flags::WRITE | flags::CREATE),
            code::NOT_FOUND,
        );
        rep.expect_code("is a directory", a.open("/fscheck".into(), flags::READ), code::IS_DIR);
        rep.expect_code("not a directory", a.list("/fscheck/file".into()), code::NOT_DIR);
        rep.expect_code("not empty", a.remove("/fscheck/full".into()), code::NOT_EMPTY);
        rep.expect_code("exists", a.mkdir("/fscheck/file".into()), code::EXISTS);
        rep.expect_code(
            "exclusive create of an existing file",
            a.open("/fscheck/file".into(), flags::WRITE | flags::CREATE | flags::EXCLUSIVE),
            code::EXISTS,
        );
        rep.expect_code("busy (open)", b.remove("/fscheck/file".into()), code::BUSY);
        rep.expect_code("move into itself", a.rename("/fscheck".into(), "/fscheck/full/in".into()), code::BUSY);
        let long = format!("/fscheck/{}", "n".repeat(256));
        rep.expect_code("name too long", a.open(long, flags::WRITE | flags::CREATE), code::BAD_NAME);
        rep.expect_code("invalid name", a.open("/fscheck/a?b".into(), flags::WRITE | flags::CREATE), code::BAD_NAME);
        rep.expect_code("relative path", a.open("fscheck/file".into(), flags::READ), code::BAD_REQUEST);
        rep.expect_code("unknown flags", a.open("/fscheck/file".into(), 0x4000 | flags::READ), code::BAD_REQUEST);
        // Malformed messages on a third session: raw bytes that no request
        // encodes. The companion ends that session; fs serves the others.
        for (i, bytes) in [
            vec![0u8],                                   // no such tag
            vec![99, 1, 2, 3],                           // unknown tag
            vec![1, 5, 0, 0],                            // Open: string length cut off
            vec![1, 0xff, 0xff, 0xff, 0x7f, b'/'],       // Open: a 2 GiB string
            vec![1, 1, 0, 0, 0, b'/', 1, 0, 0, 0, 9],    // Open with a byte too many
            vec![2, 1, 0, 0, 0, 0, 0, 0, 0],             // Read: fields cut off
            vec![1, 2, 0, 0, 0, 0xc3, 0x28, 1, 0, 0, 0], // Open: invalid UTF-8
        ]
        .into_iter()
        .enumerate()
        {
            match libos::directory::connect(fs::SERVICE, true) {
                Ok(mut ep) => {
                    let _ = ep.send_raw(&bytes, HandleList::default());
                    let answer = ep.recv_raw(Some(core::time::Duration::from_secs(20)));
                    rep.expect(
                        &format!("malformed message {i}"),
                        answer.is_err(),
                        format!("was answered: {:?}", answer.map(|(b, _)| b)),
                    );
                }
                Err(e) => rep.0.push(format!("connect for malformed message {i}: {e}")),
            }
        }
        // Everyone else is still served, with their handles.
        match a.read(h, 0, 100) {
            Ok(Reply::Data { data, .. }) => {
                rep.expect("read after the errors", data == b"0123456789", format!("{data:?}"))
            }
            other => rep.0.push(format!("read after the errors: {other:?}")),
        }
        match b.stat("/fscheck/file".into()) {
            Ok(Reply::Info { size: 10, .. }) => {}
            other => rep.0.push(format!("stat from the other session: {other:?}")),
        }
        for x in [h, ro, wo] {
            let _ = a.close(x);
        }
        rep.finish()
    }

    fn part(i: usize) -> Vec<u8> {
        (0..20_000 + i * 777).map(|j| (i * 31 + j * 7) as u8).collect()
    }

    /// Connect to fs and fs.control, and create (or empty) `path` in
    /// `/fscheck` for reading and writing: the clients, and the file's
    /// handle. None, said why, if any of it fails.
    fn connect_and_create(path: &str) -> Option<(FsClient, resiliency_lib::control::ControlClient, u64)> {
        let (Ok(mut f), Ok(ctl)) = (connect(), fs::control()) else {
            println!("fscheck: cannot connect to fs and fs.control");
            return None;
        };
        let _ = f.mkdir("/fscheck".into());
        let Some(h) = opened(f.open(path.into(), flags::READ | flags::WRITE | flags::CREATE | flags::TRUNCATE)) else {
            println!("fscheck: cannot create {path}");
            return None;
        };
        Some((f, ctl, h))
    }

    fn handles() -> i32 {
        let mut rep = Report(Vec::new());
        let path = "/fscheck/across crashes.bin".to_string();
        let Some((mut f, mut ctl, h)) = connect_and_create(&path) else { return 1 };
        let Some(r) = opened(f.open(path.clone(), flags::READ)) else {
            println!("fscheck: cannot open {path} again");
            return 1;
        };
        let kinds = [1u8, 2, 3, 4, 5, 6, 1];
        let mut want = Vec::new();
        for (i, kind) in kinds.iter().enumerate() {
            let data = part(i);
            match f.write(h, CURRENT, data.clone()) {
                Ok(Reply::Written { offset, .. }) => rep.expect(
                    &format!("part {i}"),
                    offset == want.len() as u64,
                    format!("written at {offset}, not {}", want.len()),
                ),
                other => rep.0.push(format!("write part {i}: {other:?}")),
            }
            want.extend_from_slice(&data);
            // Read the new part through the other handle at its position.
            match f.read(r, CURRENT, data.len() as u32) {
                Ok(Reply::Data { data: got, .. }) => {
                    rep.expect(&format!("read part {i}"), got == data, format!("{} bytes differ", got.len()))
                }
                other => rep.0.push(format!("read part {i}: {other:?}")),
            }
            match ctl.crash(*kind) {
                Ok(resiliency_lib::control::Reply::Done { restarts, .. }) => {
                    println!("fscheck: crash {kind} done, restart #{restarts}")
                }
                other => rep.0.push(format!("crash {kind}: {other:?}")),
            }
        }
        let mut got = Vec::new();
        loop {
            match f.read(h, got.len() as u64, 65536) {
                Ok(Reply::Data { data, .. }) if data.is_empty() => break,
                Ok(Reply::Data { data, .. }) => got.extend_from_slice(&data),
                other => {
                    rep.0.push(format!("read back: {other:?}"));
                    break;
                }
            }
        }
        rep.expect("the whole file", got == want, format!("{} bytes read, {} written", got.len(), want.len()));
        let _ = f.close(h);
        let _ = f.close(r);
        rep.finish()
    }

    fn hold(seconds: u64) -> i32 {
        let mut rep = Report(Vec::new());
        let path = "/fscheck/held.bin";
        let Some((mut f, mut ctl, h)) = connect_and_create(path) else { return 1 };
        if !matches!(f.write(h, CURRENT, b"before|".to_vec()), Ok(Reply::Written { .. })) {
            println!("fscheck: cannot write {path}");
            return 1;
        }
        match ctl.checkpoint() {
            Ok(resiliency_lib::control::Reply::Checkpointed { .. }) => {}
            other => rep.0.push(format!("checkpoint: {other:?}")),
        }
        println!("fscheck: holding {path} open for {seconds} s");
        libos::time::sleep(core::time::Duration::from_secs(seconds));
        match f.write(h, CURRENT, b"after".to_vec()) {
            Ok(Reply::Written { offset, .. }) => {
                rep.expect("write after holding", offset == 7, format!("written at {offset}, not 7"))
            }
            other => rep.0.push(format!("write after holding: {other:?}")),
        }
        match f.read(h, 0, 100) {
            Ok(Reply::Data { data, .. }) => {
                rep.expect("read after holding", data == b"before|after", format!("{data:?}"))
            }
            other => rep.0.push(format!("read after holding: {other:?}")),
        }
        let _ = f.close(h);
        rep.finish()
    }

    pub fn main() -> i32 {
        let a: Vec<&str> = libos::start::args().split_whitespace().collect();
        match a.as_slice() {
            ["errors"] => errors(),
            ["handles"] => handles(),
            ["hold", s] if s.parse::<u64>().is_ok() => hold(s.parse().unwrap_or(0)),
            _ => {
                println!("usage: fscheck errors|handles|hold SECONDS");
                2
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
    eprintln!("fscheck runs in the Kintsugi guest");
}
