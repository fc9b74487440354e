//! The GRUB hybrid ISO (BIOS and UEFI, Multiboot2): the same kernel and
//! boot modules as direct boot, loaded by GRUB. It can be written to a USB
//! stick with `dd`.

use crate::tools;
use kintsugi_tests::Image;
use std::path::{Path, PathBuf};

/// Make `out` from `image`.
pub fn make(image: &Image, out: &Path) -> Result<PathBuf, String> {
    tools::ensure_grub()?;
    kintsugi_tests::iso::make(&image.kernel, &image.modules, "", out)
}
