//! `hog`: try to exhaust kernel resources from one program: handles (events
//! until the table is full), exit watches on one process, page tables (one
//! page mapped at thousands of far-apart addresses) and memory (allocate
//! until the page limit). Each must stop with an error code, charged to
//! this program, while the rest of the system keeps working.
//!
//! `hog heap` grows the heap instead (the allocator maps memory objects
//! and closes their handles): it must stop at the page limit too, with an
//! allocation the heap refuses.
#![no_std]
#![no_main]

extern crate alloc;

use libos::abi::{Error, Handle, MapFlags, MemFlags};
use libos::{println, sys};

libos::main!(main);

fn main() -> i32 {
    if testprogs::arg(0) == Some("heap") {
        return heap();
    }
    // Connect to the directory first: its handles must survive the flood.
    let _ = libos::directory::list();
    let mut made = alloc::vec::Vec::new();
    let events_stop = loop {
        match sys::event_create() {
            Ok(h) => made.push(h),
            Err(e) => break e,
        }
    };
    let events = made.len();
    // Free some handles for the rest.
    for h in made.drain(..64) {
        let _ = sys::handle_close(h);
    }
    let mut watches = 0;
    let ev = sys::event_create().expect("event");
    let child = libos::directory::run("spin", "").map(|(_, p)| p);
    let watch_stop = match &child {
        Ok(p) => loop {
            match sys::process_watch(p.raw(), ev, 1) {
                Ok(()) => watches += 1,
                Err(e) => break e,
            }
        },
        Err(_) => Error::NotFound,
    };
    if let Ok(p) = &child {
        let _ = p.kill();
    }
    let page = sys::mem_alloc(1, MemFlags::empty()).expect("page");
    let mut maps = 0;
    let map_stop = loop {
        let va = 0x0000_0100_0000_0000u64 + (maps as u64) * (1 << 30);
        match sys::mem_map(Handle::SELF, page, 0, va, 1, MapFlags::empty()) {
            Ok(()) => maps += 1,
            Err(e) => break e,
        }
    };
    let mut pages = 0u64;
    let alloc_stop = loop {
        match sys::mem_alloc(64, MemFlags::empty()) {
            Ok(_) => pages += 64,
            Err(e) => break e,
        }
    };
    println!(
        "hog: {events} events then {events_stop:?}; {watches} watches then {watch_stop:?}; \
         {maps} far mappings then {map_stop:?}; {pages} more pages then {alloc_stop:?}"
    );
    0
}

/// Chunks the heap phase allocates, and where it stops if no limit stops it.
const HEAP_CHUNK: usize = 256 * 1024;
const HEAP_GIVE_UP: usize = 256 << 20;

/// Grow the heap a chunk at a time (each written, so its pages are real)
/// until the heap refuses; print how far it got.
fn heap() -> i32 {
    let mut chunks: alloc::vec::Vec<alloc::vec::Vec<u8>> = alloc::vec::Vec::new();
    let mut bytes = 0;
    let stop = loop {
        if bytes >= HEAP_GIVE_UP {
            break "no limit";
        }
        let mut chunk = alloc::vec::Vec::new();
        if chunk.try_reserve_exact(HEAP_CHUNK).is_err() || chunks.try_reserve(1).is_err() {
            break "OutOfMemory";
        }
        chunk.resize(HEAP_CHUNK, 0x5a);
        bytes += HEAP_CHUNK;
        chunks.push(chunk);
    };
    println!("hog: {} KiB of heap then {stop}", bytes / 1024);
    0
}
