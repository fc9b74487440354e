//! `memtest`: the memory exports a supervisor needs to snapshot and restore
//! a child: dirty-bit read-and-clear on a child's range, mapping a child's
//! pages (shared both ways), and mapping memory into a child created
//! suspended before it first runs.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use libos::abi::{Error, Handle, MapFlags, MemFlags, PAGE_SIZE};
use libos::channel::Channel;
use libos::directory::{self, SpawnRequest};
use libos::handle::{Event, Memory};
use libos::{println, sys};
use testprogs::{arg, peer, spawn_with_channel};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Where the child keeps the region the parent watches.
const REGION: u64 = 0x0000_2400_0000_0000;
const PAGES: u64 = 16;
/// Where a suspended child finds the memory its parent put there.
const PRELOAD: u64 = 0x0000_2500_0000_0000;

#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct Step {
    n: u64,
}
libos::pod_message!(Step);

libos::main!(main);

fn main() -> Result<(), String> {
    match arg(0) {
        Some("child") => child(),
        Some("preloaded") => preloaded(),
        _ => parent(),
    }
}

fn page(i: u64) -> *mut u64 {
    (REGION + i * PAGE_SIZE) as *mut u64
}

fn child() -> Result<(), String> {
    let mut ch: Channel<Step, Step> = peer().ok_or("memtest child: no channel")?;
    let mem = sys::mem_alloc(PAGES, MemFlags::empty()).map_err(|e| alloc::format!("{e}"))?;
    sys::mem_map(Handle::SELF, mem, 0, REGION, PAGES, MapFlags::WRITE).map_err(|e| alloc::format!("{e}"))?;
    // SAFETY: the region was just mapped writable and is ours.
    unsafe {
        for i in [4u64, 5, 9] {
            core::ptr::write_volatile(page(i), 0x1000 + i);
        }
    }
    ch.send(Step { n: 1 }).map_err(|e| alloc::format!("{e}"))?;
    let _ = ch.recv().map_err(|e| alloc::format!("{e}"))?;
    // SAFETY: as above; the parent wrote page 7 through its own mapping.
    let seen = unsafe {
        let v = core::ptr::read_volatile(page(7));
        core::ptr::write_volatile(page(12), 0x1234);
        v
    };
    ch.send(Step { n: seen }).map_err(|e| alloc::format!("{e}"))?;
    let _ = ch.recv();
    Ok(())
}

fn dirty(process: Handle) -> Result<Vec<u64>, Error> {
    let mut bitmap = [0u8; (PAGES as usize).div_ceil(8)];
    sys::mem_dirty(process, REGION, PAGES, &mut bitmap)?;
    Ok((0..PAGES).filter(|i| bitmap[(*i / 8) as usize] & (1 << (i % 8)) != 0).collect())
}

fn parent() -> Result<(), String> {
    let e = |e: Error| alloc::format!("memtest: {e}");
    let (process, mut ch) = spawn_with_channel::<Step, Step>("memtest", "child").map_err(|e| alloc::format!("{e}"))?;
    ch.recv().map_err(|e| alloc::format!("{e}"))?;
    let first = dirty(process.raw()).map_err(e)?;
    let second = dirty(process.raw()).map_err(e)?;
    // Map the child's pages here, read what it wrote, write for it to see.
    let va = libos::vm::reserve(PAGES).map_err(e)?;
    sys::process_map_child(process.raw(), REGION, PAGES, va, MapFlags::WRITE).map_err(e)?;
    // SAFETY: the child's frames are now mapped at va as well.
    let seen = unsafe {
        let v = core::ptr::read_volatile((va + 4 * PAGE_SIZE) as *const u64);
        core::ptr::write_volatile((va + 7 * PAGE_SIZE) as *mut u64, 0x77);
        v
    };
    ch.send(Step { n: 0 }).map_err(|e| alloc::format!("{e}"))?;
    let child_saw = ch.recv().map_err(|e| alloc::format!("{e}"))?.n;
    let third = dirty(process.raw()).map_err(e)?;
    let missing =
        sys::process_map_child(process.raw(), REGION + PAGES * PAGE_SIZE, 1, va + PAGES * PAGE_SIZE, MapFlags::empty());
    let _ = ch.send(Step { n: 0 });
    drop(ch);

    // A child created suspended runs with memory its parent mapped first.
    let preload = preload().map_err(e)?;

    println!(
        "memtest: child dirty pages {first:?} then {second:?} then {third:?}; parent read {seen:#x}; child read {child_saw:#x}; unmapped child range {missing:?}; preloaded child {preload}"
    );
    let ok = first == [4, 5, 9]
        && second.is_empty()
        && third == [12]
        && seen == 0x1004
        && child_saw == 0x77
        && missing == Err(Error::NotFound)
        && preload == "exited with code 0";
    if ok {
        Ok(())
    } else {
        Err(String::from("memtest: FAILED"))
    }
}

fn preload() -> Result<String, Error> {
    let mem = Memory::alloc(1, MemFlags::empty())?;
    let map = mem.map(MapFlags::WRITE)?;
    // SAFETY: a fresh private mapping.
    unsafe { core::ptr::write_volatile(map.as_ptr() as *mut u64, 0xfeed_f00d) };
    let (_, child) = directory::spawn(SpawnRequest {
        program: String::from("memtest"),
        name: String::new(),
        args: String::from("preloaded"),
        suspended: true,
        handles: Vec::new(),
    })
    .map_err(|_| Error::NotFound)?;
    sys::mem_map(child.raw(), mem.raw(), 0, PRELOAD, 1, MapFlags::empty())?;
    let ended = Event::new()?;
    child.watch(&ended, 1)?;
    child.start()?;
    ended.wait(10_000_000_000)?;
    let mut how = String::new();
    let _ = child.info()?.describe_end(&mut how);
    Ok(how)
}

fn preloaded() -> Result<(), String> {
    // SAFETY: the parent mapped this page before starting us.
    let v = unsafe { core::ptr::read_volatile(PRELOAD as *const u64) };
    if v == 0xfeed_f00d {
        Ok(())
    } else {
        Err(alloc::format!("memtest preloaded: read {v:#x}"))
    }
}
