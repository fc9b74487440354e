//! Random operation sequences against a model: after every operation the
//! replies match the model's, and at random points the crash model holds:
//! the epoch taken then, applied to the disk as it was, mounts as exactly
//! the tree the model holds, and `fsck.fat -n` finds it clean. Sometimes
//! the epoch is applied for real (and `epoch_applied` called), sometimes
//! not, so both paths are covered.

use super::{fsck, image, T};
use crate::protocol::{Reply, Request};
use crate::{code, flags, kind};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::OnceLock;

const DIRS: [&str; 4] = ["", "/d0", "/d1", "/d0/sub"];
const NAMES: [&str; 4] = ["f0.txt", "File One.txt", "f2", "a much longer file name.bin"];

#[derive(Clone, Debug)]
enum Op {
    Create(usize),
    Write(usize, u32, u16, u8),
    Append(usize, u16, u8),
    Truncate(usize, u32),
    Read(usize, u32, u16),
    Rename(usize, usize),
    Remove(usize),
    Mkdir(usize),
    Rmdir(usize),
    List(usize),
    Checkpoint(bool),
}

fn file_path(i: usize) -> String {
    format!("{}/{}", DIRS[i / NAMES.len() % DIRS.len()], NAMES[i % NAMES.len()])
}

fn dir_path(i: usize) -> String {
    let d = DIRS[i % DIRS.len()];
    if d.is_empty() {
        String::from("/")
    } else {
        String::from(d)
    }
}

fn op() -> impl Strategy<Value = Op> {
    let f = 0..DIRS.len() * NAMES.len();
    prop_oneof![
        3 => f.clone().prop_map(Op::Create),
        4 => (f.clone(), 0..70_000u32, 0..9000u16, any::<u8>()).prop_map(|(a, b, c, d)| Op::Write(a, b, c, d)),
        2 => (f.clone(), 0..3000u16, any::<u8>()).prop_map(|(a, b, c)| Op::Append(a, b, c)),
        1 => (f.clone(), 0..80_000u32).prop_map(|(a, b)| Op::Truncate(a, b)),
        2 => (f.clone(), 0..80_000u32, 0..20_000u16).prop_map(|(a, b, c)| Op::Read(a, b, c)),
        2 => (f.clone(), f.clone()).prop_map(|(a, b)| Op::Rename(a, b)),
        1 => f.clone().prop_map(Op::Remove),
        2 => (1..DIRS.len()).prop_map(Op::Mkdir),
        1 => (1..DIRS.len()).prop_map(Op::Rmdir),
        1 => (0..DIRS.len()).prop_map(Op::List),
        1 => any::<bool>().prop_map(Op::Checkpoint),
    ]
}

/// The model: files by lower-case path, and the directories that exist.
#[derive(Default)]
struct Model {
    files: BTreeMap<String, Vec<u8>>,
    dirs: Vec<String>,
}

impl Model {
    fn key(p: &str) -> String {
        p.to_lowercase()
    }
    fn parent(p: &str) -> String {
        match p.rfind('/') {
            Some(0) | None => String::from("/"),
            Some(i) => p[..i].to_lowercase(),
        }
    }
    fn dir_exists(&self, d: &str) -> bool {
        d == "/" || self.dirs.contains(&d.to_lowercase())
    }
    fn children(&self, d: &str) -> usize {
        let d = Self::key(d);
        self.files.keys().filter(|f| Self::parent(f) == d).count()
            + self.dirs.iter().filter(|x| Self::parent(x) == d).count()
    }
}

fn fill(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| seed.wrapping_add((i * 13 % 251) as u8)).collect()
}

fn failed(r: &Reply) -> Option<u32> {
    match r {
        Reply::Failed { code, .. } => Some(*code),
        _ => None,
    }
}

/// The whole tree under `dir` as (lower-case path, contents or None for a
/// directory).
fn tree(t: &mut T, dir: &str, out: &mut BTreeMap<String, Option<Vec<u8>>>) {
    for r in t.req(7, Request::List { path: dir.into() }) {
        if let Reply::Entry { name, kind: k, .. } = r {
            let p = if dir == "/" { format!("/{name}") } else { format!("{dir}/{name}") };
            if k == kind::DIR {
                out.insert(p.to_lowercase(), None);
                tree(t, &p, out);
            } else {
                let data = t.get(&p);
                out.insert(p.to_lowercase(), Some(data));
            }
        }
    }
}

fn expected_tree(m: &Model) -> BTreeMap<String, Option<Vec<u8>>> {
    let mut out: BTreeMap<String, Option<Vec<u8>>> =
        m.files.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect();
    for d in &m.dirs {
        out.insert(d.clone(), None);
    }
    out
}

fn base() -> Vec<u8> {
    static BASE: OnceLock<Vec<u8>> = OnceLock::new();
    BASE.get_or_init(|| image(34, 1)).clone()
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut t = T::on(base());
    let mut m = Model::default();
    for (step, o) in ops.iter().enumerate() {
        let ctx = format!("step {step}: {o:?}");
        match o.clone() {
            Op::Create(i) => {
                let p = file_path(i);
                let r = t.one(1, Request::Open { path: p.clone(), flags: flags::WRITE | flags::CREATE });
                let parent_ok = m.dir_exists(&Model::parent(&p));
                let is_dir = m.dirs.contains(&Model::key(&p));
                match (&r, parent_ok, is_dir) {
                    (Reply::Opened { handle, created, .. }, true, false) => {
                        prop_assert_eq!(*created, !m.files.contains_key(&Model::key(&p)), "{}", ctx);
                        m.files.entry(Model::key(&p)).or_default();
                        t.ok(1, Request::Close { handle: *handle });
                    }
                    (_, false, _) => prop_assert_eq!(failed(&r), Some(code::NOT_FOUND), "{}", ctx),
                    (_, true, true) => prop_assert_eq!(failed(&r), Some(code::IS_DIR), "{}", ctx),
                    _ => prop_assert!(false, "{}: {:?}", ctx, r),
                }
            }
            Op::Write(i, ..) | Op::Truncate(i, _) => {
                let p = file_path(i);
                let Some(cur) = m.files.get(&Model::key(&p)).cloned() else {
                    let r = t.one(1, Request::Open { path: p.clone(), flags: flags::WRITE });
                    prop_assert!(failed(&r).is_some(), "{}: {:?}", ctx, r);
                    continue;
                };
                let h = t.open(1, &p, flags::WRITE);
                let mut want = cur;
                let r = if let Op::Write(_, off, len, seed) = o.clone() {
                    let data = fill(len as usize, seed);
                    let end = off as usize + data.len();
                    if !data.is_empty() {
                        if want.len() < end {
                            want.resize(end, 0);
                        }
                        want[off as usize..end].copy_from_slice(&data);
                    }
                    t.one(1, Request::Write { handle: h, offset: off as u64, data })
                } else {
                    let Op::Truncate(_, size) = o.clone() else { unreachable!() };
                    want.resize(size as usize, 0);
                    t.one(1, Request::Truncate { handle: h, size: size as u64 })
                };
                prop_assert!(failed(&r).is_none(), "{}: {:?}", ctx, r);
                m.files.insert(Model::key(&p), want);
                t.ok(1, Request::Close { handle: h });
            }
            Op::Append(i, len, seed) => {
                let p = file_path(i);
                let r = t.one(1, Request::Open { path: p.clone(), flags: flags::WRITE | flags::APPEND });
                match (r, m.files.get_mut(&Model::key(&p))) {
                    (Reply::Opened { handle, size, .. }, Some(cur)) => {
                        prop_assert_eq!(size as usize, cur.len(), "{}", ctx);
                        let data = fill(len as usize, seed);
                        let r = t.one(1, Request::Write { handle, offset: 0, data: data.clone() });
                        prop_assert_eq!(
                            r,
                            Reply::Written { offset: cur.len() as u64, size: (cur.len() + data.len()) as u64 },
                            "{}",
                            ctx
                        );
                        cur.extend_from_slice(&data);
                        t.ok(1, Request::Close { handle });
                    }
                    (r, None) => prop_assert!(failed(&r).is_some(), "{}: {:?}", ctx, r),
                    (r, Some(_)) => prop_assert!(false, "{}: {:?}", ctx, r),
                }
            }
            Op::Read(i, off, len) => {
                let p = file_path(i);
                let r = t.one(1, Request::Open { path: p.clone(), flags: flags::READ });
                match (r, m.files.get(&Model::key(&p))) {
                    (Reply::Opened { handle, .. }, Some(cur)) => {
                        let start = (off as usize).min(cur.len());
                        let end = (off as usize + len as usize).min(cur.len());
                        let got = t.read(1, handle, off as u64, len as u32);
                        prop_assert!(got == cur[start..end], "{}: read differs", ctx);
                        t.ok(1, Request::Close { handle });
                    }
                    (r, None) => prop_assert!(failed(&r).is_some(), "{}: {:?}", ctx, r),
                    (r, Some(_)) => prop_assert!(false, "{}: {:?}", ctx, r),
                }
            }
            Op::Rename(a, b) => {
                let (pa, pb) = (file_path(a), file_path(b));
                let r = t.one(1, Request::Rename { from: pa.clone(), to: pb.clone() });
                let (ka, kb) = (Model::key(&pa), Model::key(&pb));
                let src = m.files.contains_key(&ka);
                let dst_parent = m.dir_exists(&Model::parent(&pb));
                let dst_taken = m.files.contains_key(&kb) || m.dirs.contains(&kb);
                if src && dst_parent && (!dst_taken || ka == kb) {
                    prop_assert_eq!(&r, &Reply::Done, "{}", ctx);
                    let data = m.files.remove(&ka).unwrap_or_default();
                    m.files.insert(kb, data);
                } else {
                    prop_assert!(failed(&r).is_some(), "{}: {:?}", ctx, r);
                }
            }
            Op::Remove(i) => {
                let p = file_path(i);
                let r = t.one(1, Request::Remove { path: p.clone() });
                if m.files.remove(&Model::key(&p)).is_some() {
                    prop_assert_eq!(r, Reply::Done, "{}", ctx);
                } else {
                    prop_assert!(failed(&r).is_some(), "{}: {:?}", ctx, r);
                }
            }
            Op::Mkdir(d) => {
                let p = dir_path(d);
                let r = t.one(1, Request::Mkdir { path: p.clone() });
                let k = Model::key(&p);
                if m.dir_exists(&Model::parent(&p)) && !m.dir_exists(&p) && !m.files.contains_key(&k) {
                    prop_assert_eq!(r, Reply::Done, "{}", ctx);
                    m.dirs.push(k);
                } else {
                    prop_assert!(failed(&r).is_some(), "{}: {:?}", ctx, r);
                }
            }
            Op::Rmdir(d) => {
                let p = dir_path(d);
                let r = t.one(1, Request::Remove { path: p.clone() });
                let k = Model::key(&p);
                if m.dirs.contains(&k) {
                    if m.children(&p) == 0 {
                        prop_assert_eq!(r, Reply::Done, "{}", ctx);
                        m.dirs.retain(|x| *x != k);
                    } else {
                        prop_assert_eq!(failed(&r), Some(code::NOT_EMPTY), "{}", ctx);
                    }
                } else {
                    prop_assert!(failed(&r).is_some(), "{}: {:?}", ctx, r);
                }
            }
            Op::List(d) => {
                let p = dir_path(d);
                let replies = t.req(1, Request::List { path: p.clone() });
                if m.dir_exists(&p) {
                    prop_assert_eq!(replies.len(), m.children(&p) + 1, "{}", ctx);
                } else {
                    prop_assert!(failed(&replies[0]).is_some(), "{}: {:?}", ctx, replies);
                }
            }
            Op::Checkpoint(apply) => {
                let copy = t.committed_copy();
                if let Err(e) = fsck(&copy) {
                    prop_assert!(false, "{}: fsck: {}", ctx, e);
                }
                let mut fresh = T::on(copy.clone());
                let mut got = BTreeMap::new();
                tree(&mut fresh, "/", &mut got);
                prop_assert!(got == expected_tree(&m), "{}: committed tree differs from the model", ctx);
                if apply {
                    *t.disk.bytes.borrow_mut() = copy;
                    t.fs.epoch_applied();
                }
            }
        }
        t.fs.check().map_err(TestCaseError::fail)?;
    }
    let copy = t.committed_copy();
    if let Err(e) = fsck(&copy) {
        prop_assert!(false, "final fsck: {}", e);
    }
    let mut fresh = T::on(copy);
    let mut got = BTreeMap::new();
    tree(&mut fresh, "/", &mut got);
    prop_assert!(got == expected_tree(&m), "final committed tree differs from the model");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_match_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(&ops)?;
    }

    #[test]
    fn restore_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200), keep in any::<bool>()) {
        let mut t = T::on(base());
        let mut saved = if keep { t.fs.save() } else { Vec::new() };
        saved.extend_from_slice(&bytes);
        let _ = crate::Fs::restore(t.disk.clone(), &saved);
        let _ = t.fs.take_epoch();
    }
}
