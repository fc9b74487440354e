//! The site httpd puts in `/www` on the data disk when it finds no `/www`
//! there (a fresh disk): a home page, a text file, and a folder without
//! `index.html` (listed) holding a binary pattern the system tests check.
//! A `/www` that exists is served as it is and never written to.

use alloc::vec::Vec;

/// Byte `i` of `/www/files/pattern.bin` (the system tests compute it too).
pub fn pattern_byte(i: u64) -> u8 {
    (i.wrapping_mul(31).wrapping_add(i >> 8).wrapping_add(7)) as u8
}

/// Bytes of `/www/files/pattern.bin`.
pub const PATTERN_LEN: u64 = 256 * 1024;

/// The folders to create, parents first (under the served folder).
pub const FOLDERS: [&str; 1] = ["/files"];

/// The files (paths under the served folder) and their contents.
pub fn files() -> Vec<(&'static str, Vec<u8>)> {
    Vec::from([
        (
            "/index.html",
            Vec::from(
                &b"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Kintsugi</title></head><body>\n\
         <h1>Kintsugi</h1>\n<p>An exokernel whose services crash and come back without their clients noticing.</p>\n\
         <ul><li><a href=\"/status.html\">the resilient services, live</a></li><li><a href=\"/files/\">files</a></li></ul>\n\
         </body></html>\n"[..],
            ),
        ),
        ("/hello.txt", Vec::from(&b"Hello from Kintsugi.\n"[..])),
        ("/files/notes.txt", Vec::from(&b"This folder has no index.html, so the server lists it.\n"[..])),
        ("/files/pattern.bin", (0..PATTERN_LEN).map(pattern_byte).collect()),
    ])
}
