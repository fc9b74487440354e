//! Every request kind, every error, sessions, save/restore, epochs, a full
//! disk and a large directory.

use super::{fsck, image, T};
use crate::memdisk::{apply_epoch, MemDisk};
use crate::protocol::{Reply, Request};
use crate::{code, flags, kind, Fs, CURRENT};

const RW: u32 = flags::READ | flags::WRITE;
const NEW: u32 = flags::READ | flags::WRITE | flags::CREATE;

fn open_req(path: &str, fl: u32) -> Request {
    Request::Open { path: path.into(), flags: fl }
}

#[test]
fn create_write_read_close() {
    let mut t = T::new(40);
    match t.one(1, open_req("/hello.txt", NEW)) {
        Reply::Opened { size: 0, created: true, .. } => {}
        other => panic!("{other:?}"),
    }
    let h = t.open(1, "/hello.txt", RW);
    assert_eq!(t.write(1, h, 0, b"hello, world"), 12);
    assert_eq!(t.read(1, h, 7, 100), b"world");
    assert_eq!(t.read(1, h, 12, 100), b"");
    assert_eq!(t.read(1, h, 1000, 100), b"");
    t.ok(1, Request::Close { handle: h });
    assert_eq!(t.fail(1, Request::Close { handle: h }).0, code::BAD_HANDLE);
    match t.one(1, open_req("/HELLO.TXT", flags::READ)) {
        Reply::Opened { size: 12, created: false, .. } => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(t.get("/hello.txt"), b"hello, world");
}

#[test]
fn open_errors() {
    let mut t = T::new(40);
    t.put("/f", b"x");
    t.ok(1, Request::Mkdir { path: "/d".into() });
    let cases: &[(&str, u32, u32)] = &[
        ("/f", 0x100 | flags::READ, code::BAD_REQUEST),
        ("/f", 0, code::BAD_REQUEST),
        ("/f", flags::READ | flags::TRUNCATE, code::BAD_REQUEST),
        ("/f", flags::READ | flags::APPEND, code::BAD_REQUEST),
        ("/f", flags::WRITE | flags::EXCLUSIVE, code::BAD_REQUEST),
        ("/f", NEW | flags::EXCLUSIVE, code::EXISTS),
        ("/nope", flags::READ, code::NOT_FOUND),
        ("/nodir/x", NEW, code::NOT_FOUND),
        ("/f/x", NEW, code::NOT_DIR),
        ("/d", flags::READ, code::IS_DIR),
        ("/", flags::READ, code::IS_DIR),
        ("relative", flags::READ, code::BAD_REQUEST),
        ("/a:b", NEW, code::BAD_NAME),
        ("/a\u{1}b", NEW, code::BAD_NAME),
        ("/trailing.", NEW, code::BAD_NAME),
    ];
    for (p, fl, c) in cases {
        let (got, message) = t.fail(1, open_req(p, *fl));
        assert_eq!(got, *c, "open {p:?} {fl:#x}: {message}");
        assert!(!message.is_empty());
    }
    let long = format!("/{}", "n".repeat(256));
    let (c, m) = t.fail(1, open_req(&long, NEW));
    assert_eq!(c, code::BAD_NAME);
    assert!(m.contains("name too long or invalid"), "{m}");
    let ok = format!("/{}", "n".repeat(255));
    t.open(1, &ok, NEW);
    let (c, m) = t.fail(1, open_req("/nope", flags::READ));
    assert_eq!((c, m.as_str()), (code::NOT_FOUND, "/nope: no such file or directory"));
    // Nothing of the failures is on the volume.
    let mut names = t.ls("/");
    names.sort();
    assert_eq!(names, vec!["d".to_string(), "f".to_string(), "n".repeat(255)]);
}

#[test]
fn modes_and_handles_per_session() {
    let mut t = T::new(40);
    t.put("/f", b"abc");
    let r = t.open(1, "/f", flags::READ);
    let w = t.open(1, "/f", flags::WRITE);
    assert_eq!(t.fail(1, Request::Write { handle: r, offset: 0, data: b"x".to_vec() }).0, code::NOT_PERMITTED);
    assert_eq!(t.fail(1, Request::Truncate { handle: r, size: 0 }).0, code::NOT_PERMITTED);
    assert_eq!(t.fail(1, Request::Read { handle: w, offset: 0, length: 1 }).0, code::NOT_PERMITTED);
    // Session 2 cannot use session 1's handles.
    assert_eq!(t.fail(2, Request::Read { handle: r, offset: 0, length: 1 }).0, code::BAD_HANDLE);
    assert_eq!(t.fail(2, Request::Close { handle: r }).0, code::BAD_HANDLE);
    assert_eq!(t.fail(1, Request::Read { handle: 12345, offset: 0, length: 1 }).0, code::BAD_HANDLE);
    assert_eq!(t.fail(1, Request::Read { handle: r, offset: 0, length: 65537 }).0, code::TOO_LARGE);
    assert_eq!(t.fs.state().open_count, 2);
    t.fs.session_closed(1);
    assert_eq!(t.fs.state().open_count, 0);
    assert_eq!(t.fail(1, Request::Read { handle: r, offset: 0, length: 1 }).0, code::BAD_HANDLE);
    t.fs.check().unwrap();
}

#[test]
fn positions_append_gaps_truncate() {
    let mut t = T::new(40);
    let h = t.open(1, "/p", NEW);
    t.write(1, h, CURRENT, b"one ");
    t.write(1, h, CURRENT, b"two ");
    assert_eq!(t.read(1, h, 0, 3), b"one");
    assert_eq!(t.read(1, h, CURRENT, 100), b" two ");
    let a = t.open(1, "/p", flags::WRITE | flags::APPEND);
    t.write(1, a, 0, b"three");
    assert_eq!(t.get("/p"), b"one two three");
    // A write past the end fills with zeros.
    t.write(1, h, 20, b"Z");
    let mut want = b"one two three".to_vec();
    want.resize(20, 0);
    want.push(b'Z');
    assert_eq!(t.get("/p"), want);
    t.ok(1, Request::Truncate { handle: h, size: 3 });
    assert_eq!(t.get("/p"), b"one");
    t.ok(1, Request::Truncate { handle: h, size: 6000 });
    let mut want = b"one".to_vec();
    want.resize(6000, 0);
    assert_eq!(t.get("/p"), want);
    t.ok(1, Request::Truncate { handle: h, size: 0 });
    assert_eq!(t.get("/p"), b"");
    assert_eq!(t.fail(1, Request::Truncate { handle: h, size: 1 << 32 }).0, code::TOO_LARGE);
    assert_eq!(
        t.fail(1, Request::Write { handle: h, offset: u32::MAX as u64, data: b"x".to_vec() }).0,
        code::TOO_LARGE
    );
    // Open with truncate empties the file.
    t.put("/q", b"data");
    let q = t.open(1, "/q", flags::WRITE | flags::TRUNCATE);
    t.ok(1, Request::Close { handle: q });
    assert_eq!(t.get("/q"), b"");
    fsck(&t.committed_copy()).unwrap();
}

#[test]
fn large_transfers() {
    let mut t = T::new(40);
    let data: Vec<u8> = (0..3 * 65536 + 777).map(|i| (i * 7 % 251) as u8).collect();
    t.put("/big.bin", &data);
    assert_eq!(t.get("/big.bin"), data);
    let h = t.open(1, "/big.bin", flags::READ);
    assert_eq!(t.read(1, h, 1000, 65536), data[1000..1000 + 65536]);
    let copy = t.committed_copy();
    fsck(&copy).unwrap();
    let mut other = T::on(copy);
    assert_eq!(other.get("/BIG.BIN"), data);
}

/// Sequential writes go on from where the handle's last write ended
/// without fatfs walking the chain (`Fs::write_ends`): the right bytes
/// must land with two handles interleaved (two files growing cluster by
/// cluster, so their chains interleave), after a truncate through the
/// other handle, after a write past the end and after a checkpoint.
#[test]
fn sequential_writes_land_right_across_handles_truncates_and_epochs() {
    let mut t = T::new(40);
    let a = t.open(1, "/a.bin", NEW);
    let b = t.open(1, "/b.bin", NEW);
    let a2 = t.open(2, "/a.bin", RW);
    let mut model_a: Vec<u8> = Vec::new();
    let mut model_b: Vec<u8> = Vec::new();
    // Where a's own writes go on (its position).
    let mut pos_a = 0usize;
    let chunk = |i: usize, n: usize| -> Vec<u8> { (0..n).map(|j| ((i * 31 + j * 7) % 251) as u8).collect() };
    for i in 0..40 {
        let d = chunk(i, 3000 + i * 101);
        t.write(1, a, CURRENT, &d);
        if model_a.len() < pos_a + d.len() {
            model_a.resize(pos_a + d.len(), 0);
        }
        model_a[pos_a..pos_a + d.len()].copy_from_slice(&d);
        pos_a += d.len();
        let e = chunk(i + 1000, 5000);
        t.write(1, b, CURRENT, &e);
        model_b.extend_from_slice(&e);
        if i == 12 {
            // The other handle cuts the file short, b takes the clusters
            // that freed, and the other handle makes the file longer than
            // before again (in new clusters): a's next write, at its old
            // end, must go to the new clusters, not the ones b holds now.
            t.ok(2, Request::Truncate { handle: a2, size: 5000 });
            model_a.truncate(5000);
            let e = chunk(i + 3000, 40_000);
            t.write(1, b, CURRENT, &e);
            model_b.extend_from_slice(&e);
            let d = chunk(i + 4000, 60_000);
            t.write(2, a2, 5000, &d);
            model_a.extend_from_slice(&d);
        }
        if i == 20 {
            // A write past the end, then on from there.
            let d = chunk(i + 2000, 700);
            let at = model_a.len() as u64 + 4096;
            t.write(1, a, at, &d);
            model_a.resize(at as usize, 0);
            model_a.extend_from_slice(&d);
            pos_a = model_a.len();
        }
        if i == 30 {
            let _ = t.committed_copy();
        }
    }
    assert_eq!(t.read(1, a, 0, 65536).len(), 65536.min(model_a.len()));
    assert_eq!(t.get("/a.bin"), model_a);
    assert_eq!(t.get("/b.bin"), model_b);
    for h in [a, b] {
        t.ok(1, Request::Close { handle: h });
    }
    t.ok(2, Request::Close { handle: a2 });
    fsck(&t.committed_copy()).unwrap();
}

#[test]
fn reads_of_fragmented_files_follow_every_change() {
    // Two files written a cluster (512 bytes here) at a time in turn, so
    // their clusters alternate: every read crosses fragments.
    let mut t = T::new(40);
    let (a, b) = (
        t.open(1, "/a.bin", flags::READ | flags::WRITE | flags::CREATE),
        t.open(1, "/b.bin", flags::READ | flags::WRITE | flags::CREATE),
    );
    let mut want_a: Vec<u8> = Vec::new();
    let mut want_b: Vec<u8> = Vec::new();
    for i in 0..300usize {
        let chunk: Vec<u8> = (0..512).map(|j| (i * 3 + j) as u8).collect();
        t.write(1, a, CURRENT, &chunk);
        want_a.extend_from_slice(&chunk);
        let chunk: Vec<u8> = chunk.iter().map(|x| x ^ 0xff).collect();
        t.write(1, b, CURRENT, &chunk);
        want_b.extend_from_slice(&chunk);
    }
    let check = |t: &mut T, h: u64, want: &[u8]| {
        for (off, len) in [(0u64, 65536u32), (100, 1000), (511, 2), (70_000, 65536), (153_000, 5000), (153_599, 10)] {
            let end = (off as usize + len as usize).min(want.len());
            let start = (off as usize).min(end);
            assert_eq!(t.read(1, h, off, len), want[start..end], "read {len} at {off}");
        }
    };
    check(&mut t, a, &want_a);
    check(&mut t, b, &want_b);
    // Overwrite inside a, grow b, and read both again (the maps are stale).
    t.write(1, a, 1000, &[7u8; 3000]);
    want_a[1000..4000].fill(7);
    t.write(1, b, want_b.len() as u64, &[9u8; 4096]);
    want_b.extend_from_slice(&[9u8; 4096]);
    check(&mut t, a, &want_a);
    check(&mut t, b, &want_b);
    assert_eq!(t.read(1, b, want_b.len() as u64 - 100, 65536), want_b[want_b.len() - 100..]);
    // The held writes reach the disk; the reads stay the same.
    let copy = t.committed_copy();
    check(&mut t, a, &want_a);
    let mut other = T::on(copy);
    assert_eq!(other.get("/a.bin"), want_a);
    assert_eq!(other.get("/b.bin"), want_b);
}

#[test]
fn stat_list_mkdir_volume() {
    let mut t = T::new(40);
    t.fs.set_time(1_700_000_000); // 2023-11-14 22:13:20
    t.ok(1, Request::Mkdir { path: "/docs".into() });
    t.ok(1, Request::Mkdir { path: "/docs/deep".into() });
    t.put("/docs/Read Me.txt", b"12345");
    match t.one(1, Request::Stat { path: "/docs/read me.TXT".into() }) {
        Reply::Info { kind: kind::FILE, size: 5, modified, created, .. } => {
            assert_eq!(modified, 1_700_000_000);
            assert_eq!(created, 1_700_000_000);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(t.one(1, Request::Stat { path: "/docs".into() }), Reply::Info { kind: kind::DIR, .. }));
    assert!(matches!(t.one(1, Request::Stat { path: "/".into() }), Reply::Info { kind: kind::DIR, .. }));
    assert_eq!(t.fail(1, Request::Stat { path: "/docs/none".into() }).0, code::NOT_FOUND);
    assert_eq!(t.fail(1, Request::Stat { path: "/docs/Read Me.txt/x".into() }).0, code::NOT_DIR);
    let mut names = t.ls("/docs");
    names.sort();
    assert_eq!(names, ["Read Me.txt", "deep"]);
    assert_eq!(t.ls("/docs/./deep/../deep"), Vec::<String>::new());
    assert_eq!(t.fail(1, Request::List { path: "/docs/Read Me.txt".into() }).0, code::NOT_DIR);
    assert_eq!(t.fail(1, Request::List { path: "/none".into() }).0, code::NOT_FOUND);
    assert_eq!(t.fail(1, Request::Mkdir { path: "/docs".into() }).0, code::EXISTS);
    assert_eq!(t.fail(1, Request::Mkdir { path: "/DOCS".into() }).0, code::EXISTS);
    assert_eq!(t.fail(1, Request::Mkdir { path: "/".into() }).0, code::EXISTS);
    assert_eq!(t.fail(1, Request::Mkdir { path: "/x/y".into() }).0, code::NOT_FOUND);
    let (total, free) = match t.one(1, Request::Volume) {
        Reply::VolumeInfo { total, free, cluster: 512, kind, label, .. } => {
            assert_eq!(kind, "FAT32");
            assert_eq!(label, "KINTSUGI");
            (total, free)
        }
        other => panic!("{other:?}"),
    };
    assert!(total > 38 << 20 && free < total);
    t.put("/fill", &vec![1u8; 100_000]);
    match t.one(1, Request::Volume) {
        Reply::VolumeInfo { free: after, .. } => assert_eq!(after, free - 100_352),
        other => panic!("{other:?}"),
    }
    t.ok(1, Request::Remove { path: "/fill".into() });
    match t.one(1, Request::Volume) {
        Reply::VolumeInfo { free: after, .. } => assert_eq!(after, free),
        other => panic!("{other:?}"),
    }
    t.ok(1, Request::Sync);
    fsck(&t.committed_copy()).unwrap();
}

#[test]
fn remove_and_busy() {
    let mut t = T::new(40);
    t.ok(1, Request::Mkdir { path: "/d".into() });
    t.put("/d/f", b"x");
    assert_eq!(t.fail(1, Request::Remove { path: "/d".into() }).0, code::NOT_EMPTY);
    let h = t.open(2, "/D/F", flags::READ);
    let (c, m) = t.fail(1, Request::Remove { path: "/d/f".into() });
    assert_eq!(c, code::BUSY, "{m}");
    t.ok(2, Request::Close { handle: h });
    t.ok(1, Request::Remove { path: "/d/F".into() });
    t.ok(1, Request::Remove { path: "/d".into() });
    assert_eq!(t.fail(1, Request::Remove { path: "/d".into() }).0, code::NOT_FOUND);
    assert_eq!(t.fail(1, Request::Remove { path: "/".into() }).0, code::BUSY);
    assert_eq!(t.ls("/"), Vec::<String>::new());
    fsck(&t.committed_copy()).unwrap();
}

#[test]
fn rename_everything() {
    let mut t = T::new(40);
    t.ok(1, Request::Mkdir { path: "/a".into() });
    t.ok(1, Request::Mkdir { path: "/a/sub".into() });
    t.ok(1, Request::Mkdir { path: "/b".into() });
    t.put("/a/sub/file.txt", b"payload");
    t.put("/a/x", b"x");
    let h = t.open(1, "/a/sub/file.txt", RW);
    // A directory moves to another directory; its open file follows.
    t.ok(1, Request::Rename { from: "/a/sub".into(), to: "/b/moved".into() });
    assert_eq!(t.read(1, h, 0, 100), b"payload");
    t.write(1, h, CURRENT, b"+more");
    assert_eq!(t.get("/b/moved/file.txt"), b"payload+more");
    // `..` of the moved directory points at its new parent (fsck checks).
    fsck(&t.committed_copy()).unwrap();
    t.ok(1, Request::Rename { from: "/b/moved".into(), to: "/top".into() });
    fsck(&t.committed_copy()).unwrap();
    assert_eq!(t.ls("/top"), ["file.txt"]);
    // Into itself, onto an existing name, from nowhere, root.
    assert_eq!(t.fail(1, Request::Rename { from: "/top".into(), to: "/top/in".into() }).0, code::BUSY);
    assert_eq!(t.fail(1, Request::Rename { from: "/a/x".into(), to: "/top/file.txt".into() }).0, code::EXISTS);
    assert_eq!(t.fail(1, Request::Rename { from: "/none".into(), to: "/z".into() }).0, code::NOT_FOUND);
    assert_eq!(t.fail(1, Request::Rename { from: "/a/x".into(), to: "/no/z".into() }).0, code::NOT_FOUND);
    assert_eq!(t.fail(1, Request::Rename { from: "/".into(), to: "/z".into() }).0, code::BUSY);
    assert_eq!(t.fail(1, Request::Rename { from: "/a/x".into(), to: "/".into() }).0, code::EXISTS);
    // A change of case only.
    t.ok(1, Request::Rename { from: "/a/x".into(), to: "/a/X".into() });
    assert_eq!(t.ls("/a"), ["X"]);
    // A file across directories, with a long name.
    t.ok(1, Request::Rename { from: "/a/X".into(), to: "/top/A much longer name, with spaces.txt".into() });
    let mut names = t.ls("/top");
    names.sort();
    assert_eq!(names, ["A much longer name, with spaces.txt", "file.txt"]);
    t.ok(1, Request::Close { handle: h });
    fsck(&t.committed_copy()).unwrap();
}

/// Reads and writes find a handle's file through the place of its entry
/// (`Fs::file_of`): the place must still lead to the right file after the
/// file is renamed, a new file takes its old name, and its neighbours are
/// removed and replaced.
#[test]
fn handles_find_their_files_among_renames_and_new_neighbours() {
    let mut t = T::new(40);
    t.ok(1, Request::Mkdir { path: "/d".into() });
    for i in 0..50 {
        t.put(&format!("/d/neighbour {i}"), b"n");
    }
    t.put("/d/f", b"first");
    let h = t.open(1, "/d/f", RW);
    assert_eq!(t.read(1, h, 0, 100), b"first");
    t.ok(1, Request::Rename { from: "/d/f".into(), to: "/d/g".into() });
    t.put("/d/f", b"other");
    t.write(1, h, CURRENT, b"+");
    assert_eq!(t.get("/d/g"), b"first+");
    assert_eq!(t.get("/d/f"), b"other");
    for i in 0..50 {
        t.ok(1, Request::Remove { path: format!("/d/neighbour {i}") });
    }
    for i in 0..60 {
        t.put(&format!("/d/new {i}"), b"m");
    }
    t.write(1, h, CURRENT, b"!");
    assert_eq!(t.read(1, h, 0, 100), b"first+!");
    t.ok(1, Request::Truncate { handle: h, size: 0 });
    t.write(1, h, 0, b"again");
    assert_eq!(t.get("/d/g"), b"again");
    assert_eq!(t.get("/d/f"), b"other");
    t.ok(1, Request::Close { handle: h });
    fsck(&t.committed_copy()).unwrap();
}

#[test]
fn names_case_and_unicode() {
    let mut t = T::new(40);
    t.put("/MixedCase.Txt", b"1");
    t.put("/a ключ значение.txt", b"2");
    assert_eq!(t.fail(1, open_req("/ключ", NEW)).0, code::BAD_NAME);
    assert_eq!(t.fail(1, Request::Mkdir { path: "/ключ".into() }).0, code::BAD_NAME);
    t.put("/a.b.c.d", b"3");
    t.put("/UPPER", b"4");
    t.put("/lower", b"5");
    assert_eq!(t.get("/mixedcase.txt"), b"1");
    assert_eq!(t.get("/A КЛЮЧ ЗНАЧЕНИЕ.TXT"), b"2");
    let mut names = t.ls("/");
    names.sort();
    assert_eq!(names, ["MixedCase.Txt", "UPPER", "a ключ значение.txt", "a.b.c.d", "lower"]);
    // Opening with another case and create does not make a second file.
    t.open(1, "/MIXEDCASE.TXT", NEW);
    assert_eq!(t.ls("/").len(), 5);
    let copy = t.committed_copy();
    fsck(&copy).unwrap();
    let mut again = T::on(copy);
    let mut names2 = again.ls("/");
    names2.sort();
    assert_eq!(names, names2);
}

#[test]
fn five_thousand_entries() {
    let mut t = T::new(40);
    t.ok(1, Request::Mkdir { path: "/many".into() });
    for i in 0..5000 {
        // Short names (one directory entry each) keep the test quick; the
        // last 200 have long names (three entries each).
        let name = if i < 4800 { format!("/many/F{i:05}.TXT") } else { format!("/many/file number {i:05}.txt") };
        let h = t.open(1, &name, NEW | flags::EXCLUSIVE);
        if i % 100 == 0 {
            t.write(1, h, 0, format!("{i}").as_bytes());
        }
        t.ok(1, Request::Close { handle: h });
    }
    let names = t.ls("/many");
    assert_eq!(names.len(), 5000);
    assert_eq!(t.get("/many/FILE NUMBER 04900.TXT"), b"4900");
    assert_eq!(t.get("/many/f00300.txt"), b"300");
    let copy = t.committed_copy();
    fsck(&copy).unwrap();
    assert_eq!(T::on(copy).ls("/many").len(), 5000);
}

#[test]
fn full_disk() {
    let mut t = T::new(34);
    t.put("/keep.txt", b"earlier file");
    let h = t.open(1, "/fill", NEW);
    let chunk = vec![0xabu8; 65536];
    let mut written = 0u64;
    let (c, m) = loop {
        match t.one(1, Request::Write { handle: h, offset: CURRENT, data: chunk.clone() }) {
            Reply::Written { size, .. } => written = size,
            Reply::Failed { code, message } => break (code, message),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(c, code::NO_SPACE, "{m}");
    assert!(m.contains("no space left"), "{m}");
    assert!(written > 30 << 20);
    // The failed write changed nothing; small writes fill what is left,
    // then a new file cannot be created or grown.
    loop {
        match t.one(1, Request::Write { handle: h, offset: CURRENT, data: vec![1u8; 512] }) {
            Reply::Written { size, .. } => written = size,
            Reply::Failed { code, .. } => {
                assert_eq!(code, code::NO_SPACE);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    let f2 = t.open(1, "/second", NEW);
    assert_eq!(t.fail(1, Request::Write { handle: f2, offset: 0, data: b"x".to_vec() }).0, code::NO_SPACE);
    assert_eq!(t.fail(1, Request::Truncate { handle: f2, size: 4096 }).0, code::NO_SPACE);
    assert_eq!(t.get("/keep.txt"), b"earlier file");
    match t.one(1, Request::Stat { path: "/fill".into() }) {
        Reply::Info { size, .. } => assert_eq!(size, written),
        other => panic!("{other:?}"),
    }
    fsck(&t.committed_copy()).unwrap();
    // Deleting frees the space.
    t.ok(1, Request::Close { handle: h });
    t.ok(1, Request::Remove { path: "/fill".into() });
    t.write(1, f2, 0, &chunk);
    assert_eq!(t.get("/keep.txt"), b"earlier file");
    t.commit();
    fsck(&t.disk.snapshot()).unwrap();
}

#[test]
fn held_writes_never_reach_the_disk() {
    let mut t = T::new(40);
    let before = t.disk.snapshot();
    t.put("/a", &vec![7u8; 300_000]);
    t.ok(1, Request::Mkdir { path: "/dir".into() });
    assert!(t.fs.held_bytes() >= 300_000);
    assert_eq!(t.disk.snapshot(), before, "the fs wrote the disk itself");
    // Taking the epoch holds on until it is applied.
    let epoch = t.fs.take_epoch().unwrap();
    assert!(!epoch.is_empty());
    let held = t.fs.held_bytes();
    // A write after the epoch was taken stays held after it is applied.
    t.put("/late", b"late");
    crate::memdisk::apply_epoch(&mut t.disk.bytes.borrow_mut(), 0, &epoch).unwrap();
    t.fs.epoch_applied();
    assert!(t.fs.held_bytes() < held);
    assert!(t.fs.held_bytes() > 0);
    assert_eq!(t.get("/late"), b"late");
    t.commit();
    assert_eq!(t.fs.held_bytes(), 0);
    fsck(&t.disk.snapshot()).unwrap();
    let mut fresh = T::on(t.disk.snapshot());
    assert_eq!(fresh.get("/late"), b"late");
    assert_eq!(fresh.get("/a"), vec![7u8; 300_000]);
    // Nothing held: an empty epoch.
    assert!(t.fs.take_epoch().unwrap().is_empty());
}

#[test]
fn save_restore_keeps_handles_and_positions() {
    let mut t = T::new(40);
    let h1 = t.open(1, "/one", NEW);
    t.write(1, h1, CURRENT, b"first half,");
    let h2 = t.open(2, "/one", flags::READ);
    assert_eq!(t.read(2, h2, CURRENT, 5), b"first");
    let saved = t.fs.save();
    t.commit();
    // A new service on the disk with the epoch applied, from the state.
    let mut fs = Fs::restore(t.disk.clone(), &saved).unwrap();
    fs.check().unwrap();
    let mut r = |s: u64, req: Request| fs.handle(s, req);
    assert!(matches!(
        &r(1, Request::Write { handle: h1, offset: CURRENT, data: b" second half".to_vec() })[0],
        Reply::Written { offset: 11, .. }
    ));
    match &r(2, Request::Read { handle: h2, offset: CURRENT, length: 100 })[0] {
        Reply::Data { offset: 5, data } => assert_eq!(data, b" half, second half"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        &r(2, Request::Write { handle: h2, offset: 0, data: b"x".to_vec() })[0],
        Reply::Failed { code: code::NOT_PERMITTED, .. }
    ));
    assert!(matches!(
        &r(2, Request::Read { handle: h1, offset: 0, length: 1 })[0],
        Reply::Failed { code: code::BAD_HANDLE, .. }
    ));
    // New handles do not reuse old numbers.
    match &r(1, open_req("/two", NEW))[0] {
        Reply::Opened { handle, .. } => assert!(*handle > h2),
        other => panic!("{other:?}"),
    }
}

#[test]
fn restore_refuses_garbage_and_other_volumes() {
    let t = T::new(34);
    assert!(Fs::restore(t.disk.clone(), b"").is_err());
    assert!(Fs::restore(t.disk.clone(), b"KFS1\x01").is_err());
    let mut saved = t.fs.save();
    saved.push(0);
    assert!(Fs::restore(t.disk.clone(), &saved).is_err());
    // The state of another volume: handles dropped, serving goes on.
    let mut other = T::new(34);
    other.open(1, "/x", NEW);
    let fs = Fs::restore(MemDisk::from_bytes(image(35, 1)), &other.fs.save()).unwrap();
    assert_eq!(fs.state().open_count, 0);
}

#[test]
fn disk_errors_are_replies() {
    let mut t = T::new(34);
    t.put("/f", b"x");
    t.commit();
    let mut fs = Fs::mount_with_cache(t.disk.clone(), 256).unwrap();
    *t.disk.fail.borrow_mut() = true;
    for r in [open_req("/f", flags::READ), Request::List { path: "/".into() }, Request::Mkdir { path: "/m".into() }] {
        let replies = fs.handle(1, r.clone());
        match &replies[..] {
            [Reply::Failed { code: code::IO, message }] => assert!(message.contains("disk error"), "{message}"),
            other => panic!("{r:?}: {other:?}"),
        }
    }
}

/// A request that a disk error stops half-way leaves nothing half-done:
/// with the disk failing from its k-th read on, for every k that lands
/// inside the sequence, each request either takes effect whole or fails
/// with no effect, so the epoch taken afterwards gives an `fsck.fat`-clean
/// volume (no lost clusters, right free count) holding what succeeded.
#[test]
fn a_request_a_disk_error_stops_leaves_nothing_half_done() {
    let mut base = T::new(34);
    base.put("/old.bin", &vec![3u8; 200_000]);
    base.ok(1, Request::Mkdir { path: "/d".into() });
    base.commit();
    let base = base.disk.snapshot();
    let chunk = vec![0x5au8; 65536];
    let mut failures_seen = 0;
    for k in 0..400u64 {
        let disk = MemDisk::from_bytes(base.clone());
        let mut fs = Fs::mount_with_cache(disk.clone(), 256).unwrap();
        *disk.reads_left.borrow_mut() = Some(k);
        let mut failed = 0;
        let mut handle = None;
        let mut step = |fs: &mut Fs<MemDisk>, r: Request| {
            let replies = fs.handle(1, r);
            if let [Reply::Failed { code: code::IO, .. }] = &replies[..] {
                failed += 1;
            }
            replies
        };
        if let [Reply::Opened { handle: h, .. }] = &step(&mut fs, open_req("/d/new.bin", NEW))[..] {
            handle = Some(*h);
        }
        for _ in 0..4 {
            if let Some(h) = handle {
                step(&mut fs, Request::Write { handle: h, offset: CURRENT, data: chunk.clone() });
            }
        }
        step(&mut fs, Request::Mkdir { path: "/d/e".into() });
        step(&mut fs, Request::Rename { from: "/old.bin".into(), to: "/d/e/moved.bin".into() });
        step(&mut fs, Request::Remove { path: "/d/e/moved.bin".into() });
        if let Some(h) = handle {
            step(&mut fs, Request::Truncate { handle: h, size: 1000 });
        }
        *disk.reads_left.borrow_mut() = None;
        if failed == 0 {
            break;
        }
        failures_seen += 1;
        let epoch = fs.take_epoch().unwrap();
        apply_epoch(&mut disk.bytes.borrow_mut(), 0, &epoch).unwrap();
        fs.epoch_applied();
        if let Err(report) = fsck(&disk.snapshot()) {
            panic!("disk failing from read {k}: {failed} requests failed and the volume is damaged:\n{report}");
        }
    }
    assert!(failures_seen > 5, "the injected errors hit only {failures_seen} sequences");
}

#[test]
fn not_a_fat_volume() {
    let disk = MemDisk::new(70000);
    match Fs::mount(disk) {
        Err(e) => assert_eq!(e.code, code::CORRUPT),
        Ok(_) => panic!("mounted zeros"),
    }
    let mut junk = MemDisk::new(70000);
    junk.bytes.borrow_mut().iter_mut().enumerate().for_each(|(i, b)| *b = (i * 31 % 253) as u8);
    assert!(Fs::mount(junk.clone()).is_err());
    let _ = &mut junk;
}

#[test]
fn reads_files_mtools_wrote() {
    // Interplay: a file and a folder put with mtools are read back.
    let bytes = image(34, 1);
    let p = std::env::temp_dir().join(format!("kintsugi-fs-mtools-{}.img", std::process::id()));
    std::fs::write(&p, &bytes).unwrap();
    let src = std::env::temp_dir().join(format!("kintsugi-fs-mtools-src-{}", std::process::id()));
    std::fs::write(&src, b"from the host").unwrap();
    let img = p.to_str().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(args[0]).args(&args[1..]).env("MTOOLS_SKIP_CHECK", "1").output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    run(&["mmd", "-i", img, "::/Host Folder"]);
    run(&["mcopy", "-i", img, src.to_str().unwrap(), "::/Host Folder/A Long Host Name.txt"]);
    let mut t = T::on(std::fs::read(&p).unwrap());
    assert_eq!(t.ls("/host folder"), ["A Long Host Name.txt"]);
    assert_eq!(t.get("/Host Folder/a long host name.TXT"), b"from the host");
    // And mtools reads what the fs wrote.
    t.put("/Host Folder/Written By Guest.bin", &[1, 2, 3, 250]);
    std::fs::write(&p, t.committed_copy()).unwrap();
    let out = run(&["mtype", "-i", img, "::/Host Folder/Written By Guest.bin"]);
    assert_eq!(out, [1, 2, 3, 250]);
    let _ = std::fs::remove_file(&p);
    let _ = std::fs::remove_file(&src);
}

/// Creates put their entries where fatfs's own free-slot search would
/// (the vendored patch finds the place in the lookup's scan): the first
/// run of deleted entries long enough for the name (its long-name entries
/// and the short one), else the end. A listing shows the new names in
/// those places, and fsck is clean.
#[test]
fn creates_fill_the_first_hole_that_fits() {
    let mut t = T::new(40);
    t.ok(1, Request::Mkdir { path: "/d".into() });
    // Ten files of one long-name entry each (two entries with the short
    // one): "file-0" .. "file-9".
    for i in 0..10 {
        t.put(&format!("/d/file-{i}"), b"x");
    }
    // Holes: two entries where file-2 was, four where file-5 and file-6
    // were.
    for name in ["file-2", "file-5", "file-6"] {
        t.ok(1, Request::Remove { path: format!("/d/{name}") });
    }
    // A name of 14 characters takes two long-name entries and the short
    // one: three entries, so it skips the two-entry hole and takes the
    // start of the four-entry one; a short name then fits the first hole;
    // the next three-entry name fits nowhere before the end.
    for name in ["a-longer-name1", "s1", "a-longer-name2"] {
        t.put(&format!("/d/{name}"), name.as_bytes());
    }
    let mut names = t.ls("/d");
    names.retain(|n| n != "." && n != "..");
    let want = [
        "file-0",
        "file-1",
        "s1",
        "file-3",
        "file-4",
        "a-longer-name1",
        "file-7",
        "file-8",
        "file-9",
        "a-longer-name2",
    ];
    assert_eq!(names, want);
    for name in ["a-longer-name1", "s1", "a-longer-name2", "file-9"] {
        let want: &[u8] = if name.starts_with("file") { b"x" } else { name.as_bytes() };
        assert_eq!(t.get(&format!("/d/{name}")), want, "{name}");
    }
    fsck(&t.committed_copy()).unwrap();
}

/// A file read from the start in 64 KiB requests goes to the disk in runs
/// of 64 KiB (fs reads a file's contiguous clusters as one run), not a
/// cluster at a time; random 4 KiB reads read little more than they ask;
/// every byte read is the file's.
#[test]
fn reads_go_to_the_disk_in_runs() {
    let mut t = T::new(40);
    let data: Vec<u8> = (0..1024 * 1024u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    t.put("/big.bin", &data);
    // On the disk, then read by a fresh mount (nothing cached or held).
    let mut t = T::on(t.committed_copy());
    let h = t.open(1, "/big.bin", flags::READ);
    let before = t.fs.blocks().disk_reads;
    for at in (0..data.len()).step_by(65536) {
        assert_eq!(t.read(1, h, at as u64, 65536), data[at..at + 65536], "at {at}");
    }
    let sequential = t.fs.blocks().disk_reads - before;
    // 16 reads of 64 KiB: about one disk run each, against 256 clusters
    // read one by one.
    assert!(sequential <= 20, "{sequential} disk reads for 1 MiB read in order");
    let mut t = T::on(t.committed_copy());
    let h = t.open(1, "/big.bin", flags::READ);
    let before = t.fs.blocks().disk_reads;
    for at in [700_416usize, 12_288, 1_040_384, 352_256] {
        assert_eq!(t.read(1, h, at as u64, 4096), data[at..at + 4096], "at {at}");
    }
    assert!(t.fs.blocks().disk_reads - before <= 8, "random reads read more than they ask");
}

/// Shared buffers in memory: session -> bytes (the guest's are memory the
/// client maps).
struct MemShared(std::rc::Rc<std::cell::RefCell<std::collections::BTreeMap<u64, Vec<u8>>>>);

impl crate::shared::SharedBuffers for MemShared {
    fn put(&self, session: u64, at: usize, data: &[u8]) -> Result<(), crate::shared::SharedError> {
        let mut buffers = self.0.borrow_mut();
        let buf = buffers.get_mut(&session).ok_or(crate::shared::SharedError::NoBuffer)?;
        let len = buf.len();
        let place = at.checked_add(data.len()).and_then(|end| buf.get_mut(at..end));
        place.ok_or(crate::shared::SharedError::PastEnd(len))?.copy_from_slice(data);
        Ok(())
    }
}

#[test]
fn shared_reads_fill_the_sessions_buffer_and_leave_the_position() {
    let mut t = T::new(40);
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    t.put("/big.bin", &data);
    let buffers = std::rc::Rc::new(std::cell::RefCell::new(std::collections::BTreeMap::new()));
    buffers.borrow_mut().insert(1, vec![0u8; 65536 + 100]);
    t.fs.set_shared(Box::new(MemShared(buffers.clone())));
    let h = t.open(1, "/big.bin", flags::READ);
    // A positioned read into the buffer at 100.
    let r = t.one(1, Request::ReadShared { handle: h, offset: 1000, length: 65536, at: 100 });
    assert_eq!(r, Reply::Filled { offset: 1000, length: 65536 });
    assert_eq!(&buffers.borrow()[&1][100..], &data[1000..1000 + 65536]);
    // The position did not move: a plain read at CURRENT starts at 0.
    assert_eq!(t.read(1, h, CURRENT, 10), &data[..10]);
    // Short at the end of the file, empty past it.
    let r = t.one(1, Request::ReadShared { handle: h, offset: 99_990, length: 100, at: 0 });
    assert_eq!(r, Reply::Filled { offset: 99_990, length: 10 });
    assert_eq!(&buffers.borrow()[&1][..10], &data[99_990..]);
    let r = t.one(1, Request::ReadShared { handle: h, offset: 200_000, length: 100, at: 0 });
    assert_eq!(r, Reply::Filled { offset: 200_000, length: 0 });
    // Errors: CURRENT, past the buffer, no buffer (another session), a
    // write-only handle, a bad handle, too long.
    let (c, _) = t.fail(1, Request::ReadShared { handle: h, offset: CURRENT, length: 10, at: 0 });
    assert_eq!(c, code::BAD_REQUEST);
    let (c, m) = t.fail(1, Request::ReadShared { handle: h, offset: 0, length: 200, at: 65536 });
    assert_eq!(c, code::BAD_REQUEST, "{m}");
    assert!(m.contains("past the shared buffer"), "{m}");
    let h2 = t.open(2, "/big.bin", flags::READ);
    let (c, m) = t.fail(2, Request::ReadShared { handle: h2, offset: 0, length: 10, at: 0 });
    assert_eq!(c, code::NO_SHARED_BUFFER, "{m}");
    let w = t.open(1, "/big.bin", flags::WRITE);
    let (c, _) = t.fail(1, Request::ReadShared { handle: w, offset: 0, length: 10, at: 0 });
    assert_eq!(c, code::NOT_PERMITTED);
    let (c, _) = t.fail(1, Request::ReadShared { handle: 999, offset: 0, length: 10, at: 0 });
    assert_eq!(c, code::BAD_HANDLE);
    let (c, _) = t.fail(1, Request::ReadShared { handle: h, offset: 0, length: 65537, at: 0 });
    assert_eq!(c, code::TOO_LARGE);
}
