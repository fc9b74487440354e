//! `fsload CLIENTS OPS`: load on the fs service from CLIENTS client
//! processes running OPS mixed file operations in total, each checking
//! every answer against its own model.
//!
//! Each client has a private folder `/fsload/rRUN/cID` where it creates
//! (exclusively), writes at random offsets, appends, reads and verifies,
//! truncates, renames (across its folders too), removes files, makes and
//! removes folders, and lists; every answer must be what its model says.
//! Shared files are used under a scheme that keeps every answer checkable:
//! in each `shared-K` file a client writes and reads only its own slot
//! (`SLOT` bytes at `ID * SLOT`), through a handle it keeps open for the
//! whole run; and all clients append fixed-size records `cID#SEQ` to
//! `log` (append mode), each checking that its record landed at a record
//! boundary. At the end a client stores a report (errors, model hashes,
//! first mismatches) as `report-cID`; the driver then reads every client's
//! folder, slots and log records back, compares them with the reports
//! (the log must hold each client's records exactly once, in order), and
//! prints `fsload: clients=C ops=N errors=E` and the first mismatches.
// Not service code (a load generator, a client outside the service: its clock is not replayed state).
#![allow(clippy::disallowed_methods)]
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
mod guest {
    extern crate alloc;

    use alloc::collections::{BTreeMap, BTreeSet};
    use alloc::format;
    use alloc::string::{String, ToString};
    use alloc::vec;
    use alloc::vec::Vec;
    use fs::{code, flags, kind, FsClient, Reply, CURRENT};
    use libos::handle::Event;
    use libos::println;
    use libos::rand::Rng;

    const FILES: u64 = 6;
    const DIRS: u64 = 2;
    const SHARED: u64 = 2;
    const SLOT: u64 = 8192;
    const RECORD: usize = 16;
    const MAX_FILE: u64 = 192 * 1024;
    const MAX_REPORTED: usize = 5;

    fn num(s: Option<&&str>, default: u64) -> u64 {
        s.and_then(|s| s.parse().ok()).unwrap_or(default)
    }

    pub fn main() -> i32 {
        let a: Vec<&str> = libos::start::args().split_whitespace().collect();
        match a.first().copied() {
            Some("client") => client(num(a.get(1), 0), num(a.get(2), 0), num(a.get(3), 100)),
            _ => driver(num(a.first(), 4).max(1), num(a.get(1), 1000)),
        }
    }

    /// FNV-1a over a model.
    fn hash<'a>(items: impl Iterator<Item = (&'a String, &'a Vec<u8>)>) -> u64 {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for (k, v) in items {
            for b in k.bytes().chain([0xff]).chain(v.iter().copied()).chain([0xfe]) {
                h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
            }
        }
        h
    }

    struct Check {
        errors: u64,
        mismatches: Vec<String>,
    }

    impl Check {
        fn fail(&mut self, what: String) {
            self.errors += 1;
            if self.mismatches.len() < MAX_REPORTED {
                self.mismatches.push(what);
            }
        }
    }

    /// The fs session, with answers as results, and whether the last read
    /// went through the shared buffer.
    struct Files(FsClient, bool);

    type R<T> = Result<T, String>;

    impl Files {
        fn connect() -> R<Files> {
            fs::connect().map(|c| Files(c, false)).map_err(|e| format!("{e}"))
        }
        fn open(&mut self, path: &str, fl: u32) -> R<Reply> {
            self.0.open(path.to_string(), fl).map_err(|e| format!("open {path}: {e}"))
        }
        fn handle(&mut self, path: &str, fl: u32) -> R<u64> {
            match self.open(path, fl)? {
                Reply::Opened { handle, .. } => Ok(handle),
                r => Err(format!("open {path}: {r:?}")),
            }
        }
        fn close(&mut self, h: u64) -> R<()> {
            match self.0.close(h).map_err(|e| format!("close: {e}"))? {
                Reply::Done => Ok(()),
                r => Err(format!("close {h}: {r:?}")),
            }
        }
        fn write(&mut self, h: u64, offset: u64, data: Vec<u8>) -> R<(u64, u64)> {
            match self.0.write(h, offset, data).map_err(|e| format!("write: {e}"))? {
                Reply::Written { offset, size } => Ok((offset, size)),
                r => Err(format!("write: {r:?}")),
            }
        }
        /// Read up to `len` bytes at `offset`: every other read at an offset
        /// through the session's shared buffer (`ReadShared`, which leaves
        /// the position; nothing here reads at `CURRENT` after one), the
        /// others in the reply.
        fn read(&mut self, h: u64, offset: u64, len: u32) -> R<Vec<u8>> {
            self.1 = !self.1;
            if offset != CURRENT && self.1 {
                let mut buf = vec![0u8; len as usize];
                return match fs::read_into(&mut self.0, h, offset, &mut buf).map_err(|e| format!("read: {e}"))? {
                    Ok(n) => {
                        buf.truncate(n);
                        Ok(buf)
                    }
                    Err(r) => Err(format!("shared read: {r:?}")),
                };
            }
            match self.0.read(h, offset, len).map_err(|e| format!("read: {e}"))? {
                Reply::Data { data, .. } => Ok(data),
                r => Err(format!("read: {r:?}")),
            }
        }
        fn read_all(&mut self, path: &str) -> R<Vec<u8>> {
            let h = self.handle(path, flags::READ)?;
            let mut out = Vec::new();
            loop {
                let d = self.read(h, CURRENT, 65536)?;
                if d.is_empty() {
                    break;
                }
                out.extend_from_slice(&d);
            }
            self.close(h)?;
            Ok(out)
        }
        fn list(&mut self, path: &str) -> R<Vec<(String, u8)>> {
            let mut r = self.0.list(path.to_string()).map_err(|e| format!("list {path}: {e}"))?;
            let mut out = Vec::new();
            loop {
                match r {
                    Reply::Entry { name, kind, .. } => out.push((name, kind)),
                    Reply::EndList { count } if count as usize == out.len() => return Ok(out),
                    other => return Err(format!("list {path}: {other:?}")),
                }
                r = self.0.next_reply().map_err(|e| format!("list {path}: {e}"))?;
            }
        }
    }

    fn simple(what: &str, r: Result<Reply, libos::protocol::ClientError>) -> R<Reply> {
        r.map_err(|e| format!("{what}: {e}"))
    }

    fn failed_code(r: &Reply) -> Option<u32> {
        match r {
            Reply::Failed { code, .. } => Some(*code),
            _ => None,
        }
    }

    fn pattern(rng: &mut Rng, len: usize) -> Vec<u8> {
        let seed = rng.below(256) as u8;
        (0..len).map(|i| seed.wrapping_add((i * 7 % 251) as u8)).collect()
    }

    /// A client's private tree: files by path relative to its folder.
    struct Model {
        files: BTreeMap<String, Vec<u8>>,
        dirs: BTreeSet<String>,
    }

    impl Model {
        fn dir_of(p: &str) -> Option<&str> {
            p.rfind('/').map(|i| &p[..i])
        }
    }

    fn client(run: u64, id: u64, ops: u64) -> i32 {
        let mut f = match Files::connect() {
            Ok(f) => f,
            Err(e) => {
                println!("fsload client {id}: {e}");
                return 1;
            }
        };
        let top = format!("/fsload/r{run}");
        let base = format!("{top}/c{id}");
        let mut rng = Rng::new(run ^ (id + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut m = Model { files: BTreeMap::new(), dirs: BTreeSet::new() };
        let mut check = Check { errors: 0, mismatches: Vec::new() };
        if let Err(e) = simple("mkdir", f.0.mkdir(base.clone())).and_then(|r| match r {
            Reply::Done => Ok(()),
            r => Err(format!("mkdir {base}: {r:?}")),
        }) {
            println!("fsload client {id}: {e}");
            return 1;
        }
        // Shared files: this client's slot in each, through handles kept
        // open for the whole run.
        let mut slots: Vec<(u64, Vec<u8>)> = Vec::new();
        for k in 0..SHARED {
            match f.handle(&format!("{top}/shared-{k}"), flags::READ | flags::WRITE | flags::CREATE) {
                Ok(h) => slots.push((h, Vec::new())),
                Err(e) => {
                    println!("fsload client {id}: {e}");
                    return 1;
                }
            }
        }
        let log = match f.handle(&format!("{top}/log"), flags::WRITE | flags::CREATE | flags::APPEND) {
            Ok(h) => h,
            Err(e) => {
                println!("fsload client {id}: {e}");
                return 1;
            }
        };
        let mut appended = 0u64;
        for op in 0..ops {
            let dir = match rng.below(3) {
                0 => String::new(),
                d => format!("d{}", d - 1),
            };
            let rel = |dir: &str, n: u64| {
                let name = if n.is_multiple_of(2) { format!("f{n}") } else { format!("File number {n}.dat") };
                if dir.is_empty() {
                    name
                } else {
                    format!("{dir}/{name}")
                }
            };
            let file = rel(&dir, rng.below(FILES));
            let path = format!("{base}/{file}");
            let dir_ok = dir.is_empty() || m.dirs.contains(&dir);
            let roll = rng.below(100);
            let result: R<()> = (|| {
                match roll {
                    0..=11 => {
                        let r = f.open(&path, flags::WRITE | flags::CREATE | flags::EXCLUSIVE)?;
                        match (&r, dir_ok, m.files.contains_key(&file)) {
                            (Reply::Opened { handle, created: true, size: 0 }, true, false) => {
                                let h = *handle;
                                m.files.insert(file.clone(), Vec::new());
                                f.close(h)?;
                            }
                            (_, true, true) if failed_code(&r) == Some(code::EXISTS) => {}
                            (_, false, _) if failed_code(&r) == Some(code::NOT_FOUND) => {}
                            _ => return Err(format!("op {op}: create {file}: {r:?}")),
                        }
                    }
                    12..=29 | 58..=63 => {
                        let Some(cur) = m.files.get(&file).cloned() else { return Ok(()) };
                        let h = f.handle(&path, flags::READ | flags::WRITE)?;
                        let mut want = cur;
                        if roll < 58 {
                            let off = rng.below(MAX_FILE);
                            let len = 1 + rng.below(16384) as usize;
                            let data = pattern(&mut rng, len);
                            let end = off as usize + len;
                            if want.len() < end {
                                want.resize(end, 0);
                            }
                            want[off as usize..end].copy_from_slice(&data);
                            let (at, size) = f.write(h, off, data)?;
                            if at != off || size != want.len() as u64 {
                                return Err(format!(
                                    "op {op}: write {file} at {off}: at {at} size {size}, model {}",
                                    want.len()
                                ));
                            }
                        } else {
                            let size = rng.below(MAX_FILE);
                            want.resize(size as usize, 0);
                            match f.0.truncate(h, size).map_err(|e| format!("{e}"))? {
                                Reply::Done => {}
                                r => return Err(format!("op {op}: truncate {file}: {r:?}")),
                            }
                        }
                        m.files.insert(file.clone(), want);
                        f.close(h)?;
                    }
                    30..=39 => {
                        let r = f.open(&path, flags::WRITE | flags::APPEND)?;
                        match (r, m.files.get_mut(&file)) {
                            (Reply::Opened { handle, size, .. }, Some(cur)) if size == cur.len() as u64 => {
                                let len = 1 + rng.below(4096) as usize;
                                let data = pattern(&mut rng, len);
                                let (at, size) = f.write(handle, 0, data.clone())?;
                                if at != cur.len() as u64 || size != at + data.len() as u64 {
                                    return Err(format!(
                                        "op {op}: append {file}: at {at} size {size}, model {}",
                                        cur.len()
                                    ));
                                }
                                cur.extend_from_slice(&data);
                                f.close(handle)?;
                            }
                            (r, None) if failed_code(&r) == Some(code::NOT_FOUND) => {}
                            (r, cur) => {
                                return Err(format!("op {op}: append {file}: {r:?}, model {:?}", cur.map(|c| c.len())))
                            }
                        }
                    }
                    40..=57 => {
                        let r = f.open(&path, flags::READ)?;
                        match (r, m.files.get(&file)) {
                            (Reply::Opened { handle, size, .. }, Some(cur)) if size == cur.len() as u64 => {
                                let off = rng.below(cur.len() as u64 + 100);
                                let len = rng.below(65537) as u32;
                                let got = f.read(handle, off, len)?;
                                let s = (off as usize).min(cur.len());
                                let e = (off as usize + len as usize).min(cur.len());
                                if got != cur[s..e] {
                                    return Err(format!(
                                        "op {op}: read {file} {off}+{len}: {} bytes differ from the model",
                                        got.len()
                                    ));
                                }
                                f.close(handle)?;
                            }
                            (r, None) if failed_code(&r) == Some(code::NOT_FOUND) => {}
                            (r, cur) => {
                                return Err(format!("op {op}: read {file}: {r:?}, model {:?}", cur.map(|c| c.len())))
                            }
                        }
                    }
                    64..=69 => {
                        let to_dir = match rng.below(3) {
                            0 => String::new(),
                            d => format!("d{}", d - 1),
                        };
                        let to = rel(&to_dir, rng.below(FILES));
                        let r = simple("rename", f.0.rename(path.clone(), format!("{base}/{to}")))?;
                        let to_ok = to_dir.is_empty() || m.dirs.contains(&to_dir);
                        let ok = m.files.contains_key(&file) && to_ok && (!m.files.contains_key(&to) || to == file);
                        match (&r, ok) {
                            (Reply::Done, true) => {
                                let data = m.files.remove(&file).unwrap_or_default();
                                m.files.insert(to, data);
                            }
                            (Reply::Failed { .. }, false) => {}
                            _ => return Err(format!("op {op}: rename {file} -> {to}: {r:?}")),
                        }
                    }
                    70..=74 => {
                        let r = simple("remove", f.0.remove(path.clone()))?;
                        match (&r, m.files.remove(&file).is_some()) {
                            (Reply::Done, true) => {}
                            (r, false) if failed_code(r) == Some(code::NOT_FOUND) => {}
                            _ => return Err(format!("op {op}: remove {file}: {r:?}")),
                        }
                    }
                    75..=79 => {
                        let d = format!("d{}", rng.below(DIRS));
                        let p = format!("{base}/{d}");
                        if m.dirs.contains(&d) {
                            let empty = !m.files.keys().any(|k| Model::dir_of(k) == Some(&d));
                            let r = simple("rmdir", f.0.remove(p))?;
                            match (&r, empty) {
                                (Reply::Done, true) => {
                                    m.dirs.remove(&d);
                                }
                                (r, false) if failed_code(r) == Some(code::NOT_EMPTY) => {}
                                _ => return Err(format!("op {op}: rmdir {d}: {r:?}")),
                            }
                        } else {
                            match simple("mkdir", f.0.mkdir(p))? {
                                Reply::Done => {
                                    m.dirs.insert(d);
                                }
                                r => return Err(format!("op {op}: mkdir {d}: {r:?}")),
                            }
                        }
                    }
                    80..=84 => {
                        let p = if dir.is_empty() { base.clone() } else { format!("{base}/{dir}") };
                        let listed = f.list(&p);
                        if !dir_ok {
                            return match listed {
                                Err(e) if e.contains("Failed") => Ok(()),
                                other => Err(format!("op {op}: list of missing {dir}: {other:?}")),
                            };
                        }
                        let mut got: Vec<String> = listed?
                            .into_iter()
                            .map(|(n, k)| if k == kind::DIR { format!("{n}/") } else { n })
                            .collect();
                        got.sort();
                        let mut want: Vec<String> = m
                            .files
                            .keys()
                            .filter(|k| Model::dir_of(k).unwrap_or("") == dir.as_str())
                            .map(|k| String::from(k.rsplit('/').next().unwrap_or(k)))
                            .collect();
                        if dir.is_empty() {
                            want.extend(m.dirs.iter().map(|d| format!("{d}/")));
                        }
                        want.sort();
                        if got != want {
                            return Err(format!("op {op}: list {dir}: {got:?}, model {want:?}"));
                        }
                    }
                    85..=94 => {
                        let k = rng.below(SHARED) as usize;
                        let (h, model) = &mut slots[k];
                        let at = id * SLOT;
                        if rng.below(2) == 0 {
                            let off = rng.below(SLOT - 512);
                            let len = 1 + rng.below(511) as usize;
                            let data = pattern(&mut rng, len);
                            let end = off as usize + data.len();
                            if model.len() < end {
                                model.resize(end, 0);
                            }
                            model[off as usize..end].copy_from_slice(&data);
                            let (w, size) = f.write(*h, at + off, data)?;
                            if w != at + off || size < at + end as u64 {
                                return Err(format!("op {op}: shared-{k} write at {}: at {w} size {size}", at + off));
                            }
                        } else {
                            let got = f.read(*h, at, model.len() as u32)?;
                            if got != *model {
                                return Err(format!("op {op}: shared-{k}: own slot differs from the model"));
                            }
                        }
                    }
                    _ => {
                        let mut rec = format!("c{id}#{appended}");
                        while rec.len() < RECORD - 1 {
                            rec.push('.');
                        }
                        rec.push('\n');
                        let (at, size) = f.write(log, 0, rec.into_bytes())?;
                        if at % RECORD as u64 != 0 || size < at + RECORD as u64 {
                            return Err(format!("op {op}: log append landed at {at} (size {size})"));
                        }
                        appended += 1;
                    }
                }
                Ok(())
            })();
            if let Err(e) = result {
                check.fail(e);
            }
        }
        let slot_hash: Vec<String> =
            slots.iter().map(|(_, s)| format!("{:x}:{}", hash([(&String::new(), s)].into_iter()), s.len())).collect();
        let mut report = format!(
            "errors={} hash={:x} files={} appended={appended} slots={}",
            check.errors,
            hash(m.files.iter()),
            m.files.len(),
            slot_hash.join(",")
        );
        for d in &m.dirs {
            report.push_str(&format!(" dir={d}"));
        }
        for e in &check.mismatches {
            report.push('\n');
            report.push_str(e);
        }
        let stored = f
            .handle(&format!("{top}/report-c{id}"), flags::WRITE | flags::CREATE | flags::TRUNCATE)
            .and_then(|h| f.write(h, 0, report.into_bytes()).and_then(|_| f.close(h)));
        if let Err(e) = stored {
            println!("fsload client {id}: cannot store its report: {e}");
            return 1;
        }
        0
    }

    fn field<'a>(report: &'a str, name: &str) -> Option<&'a str> {
        report.lines().next()?.split_whitespace().find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
    }

    /// Read a client's folder back: files by relative path, and folders.
    fn read_tree(
        f: &mut Files,
        base: &str,
        rel: &str,
        files: &mut BTreeMap<String, Vec<u8>>,
        dirs: &mut Vec<String>,
    ) -> R<()> {
        let p = if rel.is_empty() { String::from(base) } else { format!("{base}/{rel}") };
        for (name, k) in f.list(&p)? {
            let r = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
            if k == kind::DIR {
                dirs.push(r.clone());
                read_tree(f, base, &r, files, dirs)?;
            } else {
                let data = f.read_all(&format!("{base}/{r}"))?;
                files.insert(r, data);
            }
        }
        Ok(())
    }

    fn driver(clients: u64, ops: u64) -> i32 {
        let run = libos::time::now_ns() % 1_000_000_000;
        let each = ops / clients;
        let mut check = Check { errors: 0, mismatches: Vec::new() };
        let mut f = match Files::connect() {
            Ok(f) => f,
            Err(e) => {
                println!("fsload: {e}");
                return 1;
            }
        };
        let top = format!("/fsload/r{run}");
        for d in ["/fsload", top.as_str()] {
            match simple("mkdir", f.0.mkdir(d.to_string())) {
                Ok(Reply::Done) => {}
                Ok(r) if failed_code(&r) == Some(code::EXISTS) => {}
                other => {
                    println!("fsload: mkdir {d}: {other:?}");
                    return 1;
                }
            }
        }
        let done = Event::new().expect("event");
        let mut procs = Vec::new();
        for id in 0..clients {
            match libos::directory::run("fsload", &format!("client {run} {id} {each}")) {
                Ok((_, p)) => {
                    let _ = p.watch(&done, 1);
                    procs.push(p);
                }
                Err(e) => {
                    println!("fsload: cannot start client {id}: {e}");
                    return 1;
                }
            }
        }
        for (id, p) in procs.iter().enumerate() {
            let info = loop {
                let info = p.info().unwrap_or_default();
                if info.state().is_ended() {
                    break info;
                }
                let _ = done.wait(1_000_000_000);
            };
            if !(info.state() == libos::abi::ProcessState::Exited && info.exit_code == 0) {
                let mut how = String::new();
                let _ = info.describe_end(&mut how);
                check.fail(format!("client {id} {how}"));
            }
        }
        let log = f.read_all(&format!("{top}/log")).unwrap_or_default();
        let mut seen: BTreeMap<u64, u64> = BTreeMap::new();
        for (i, rec) in log.chunks(RECORD).enumerate() {
            let text = core::str::from_utf8(rec).unwrap_or("");
            let parsed = text.strip_prefix('c').and_then(|t| t.split_once('#')).and_then(|(c, rest)| {
                let seq = rest.trim_end_matches(['.', '\n']);
                Some((c.parse::<u64>().ok()?, seq.parse::<u64>().ok()?))
            });
            match parsed {
                Some((c, seq)) if seen.get(&c).copied().unwrap_or(0) == seq => {
                    seen.insert(c, seq + 1);
                }
                _ => check.fail(format!("log record {i} is out of order, duplicated or damaged: {text:?}")),
            }
        }
        let shared: Vec<Vec<u8>> =
            (0..SHARED).map(|k| f.read_all(&format!("{top}/shared-{k}")).unwrap_or_default()).collect();
        for id in 0..clients {
            let report = f.read_all(&format!("{top}/report-c{id}")).ok().and_then(|r| String::from_utf8(r).ok());
            let Some(report) = report else {
                check.fail(format!("client {id} left no report"));
                continue;
            };
            check.errors += field(&report, "errors").and_then(|e| e.parse().ok()).unwrap_or(1);
            for m in report.lines().skip(1) {
                if check.mismatches.len() < MAX_REPORTED {
                    check.mismatches.push(format!("client {id}: {m}"));
                }
            }
            let base = format!("{top}/c{id}");
            let mut files = BTreeMap::new();
            let mut dirs = Vec::new();
            if let Err(e) = read_tree(&mut f, &base, "", &mut files, &mut dirs) {
                check.fail(format!("client {id}: cannot read its folder back: {e}"));
                continue;
            }
            let want_hash = field(&report, "hash").and_then(|h| u64::from_str_radix(h, 16).ok());
            if Some(hash(files.iter())) != want_hash {
                check.fail(format!(
                    "client {id}: its folder ({} files) differs from its model ({:?} files)",
                    files.len(),
                    field(&report, "files")
                ));
            }
            let mut want_dirs: Vec<String> = report
                .lines()
                .next()
                .unwrap_or("")
                .split_whitespace()
                .filter_map(|w| w.strip_prefix("dir="))
                .map(String::from)
                .collect();
            want_dirs.sort();
            dirs.sort();
            if dirs != want_dirs {
                check.fail(format!("client {id}: folders {dirs:?}, model {want_dirs:?}"));
            }
            let slot_hashes: Vec<&str> = field(&report, "slots").unwrap_or("").split(',').collect();
            for (k, s) in shared.iter().enumerate() {
                let Some(want) = slot_hashes.get(k) else { continue };
                let Some((want, len)) = want.split_once(':') else { continue };
                let len: usize = len.parse().unwrap_or(0);
                let at = (id * SLOT) as usize;
                let mut slot = if s.len() > at { s[at..(at + len).min(s.len())].to_vec() } else { vec![] };
                slot.resize(len, 0);
                let model_len_hash =
                    (format!("{:x}", hash([(&String::new(), &slot)].into_iter())) == want).then_some(());
                if model_len_hash.is_none() {
                    check.fail(format!("client {id}: its slot in shared-{k} differs from its model"));
                }
            }
            let appended = field(&report, "appended").and_then(|a| a.parse::<u64>().ok()).unwrap_or(0);
            if seen.get(&id).copied().unwrap_or(0) != appended {
                check.fail(format!("client {id}: {appended} log records acknowledged, {:?} in the log", seen.get(&id)));
            }
        }
        println!("fsload: clients={clients} ops={} errors={}", each * clients, check.errors);
        for m in &check.mismatches {
            println!("fsload: mismatch: {m}");
        }
        if check.errors == 0 {
            0
        } else {
            1
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
    eprintln!("fsload runs in the Kintsugi guest");
}
