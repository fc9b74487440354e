//! `cargo xtask vault ls|show`: what the vault holds on a checkpoint disk
//! image (its pool file), read from the host with mtools and checked with
//! `checkpoint-record` (per service and slot: generation, state size, time
//! taken, distillation kind, valid or damaged and why, which slot is
//! current, and the service's request log: entries and bytes; `show` adds
//! the log's entries and a hex dump of the head of the current state).

use crate::{disks, tools};
use std::path::PathBuf;

/// The checkpoint image in `dir` (default: the folder `cargo xtask run`
/// uses).
fn image(dir: Option<PathBuf>) -> PathBuf {
    dir.unwrap_or_else(disks::default_dir).join("checkpoint.img")
}

/// `vault ls`.
pub fn ls(dir: Option<PathBuf>) -> Result<(), String> {
    tools::ensure(&[&tools::MTOOLS])?;
    let img = image(dir);
    let slots = kintsugi_tests::vault::read_slots(&img)?;
    println!("{}:", img.display());
    print!("{}", kintsugi_tests::vault::listing(&slots));
    Ok(())
}

/// `vault show SERVICE`.
pub fn show(service: &str, dir: Option<PathBuf>) -> Result<(), String> {
    tools::ensure(&[&tools::MTOOLS])?;
    let img = image(dir);
    let slots = kintsugi_tests::vault::read_slots(&img)?;
    print!("{}", kintsugi_tests::vault::show(&slots, service)?);
    Ok(())
}
