//! What the kernel gave init: the root resource (start handle 0) and the
//! boot modules (handles 1.., named with their sizes in the argument
//! string as `name:size`), and the system manifest read from the module
//! named `manifest`.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use kintsugi_manifest::Manifest;
use libos::abi::{Handle, PAGE_SIZE};
use libos::handle::{Memory, OwnedHandle};

/// A boot module.
pub struct Module {
    /// Its memory object (read-only).
    pub memory: Memory,
    /// Its size in bytes.
    pub size: u64,
}

/// The boot resources.
pub struct Boot {
    /// The root resource.
    pub root: Handle,
    /// Modules by name.
    pub modules: BTreeMap<String, Module>,
    /// The parsed manifest.
    pub manifest: Manifest,
}

/// Read the start handles and the manifest.
pub fn load() -> Result<Boot, String> {
    let root = libos::start::take_handle(0).ok_or("no root resource")?;
    let mut modules = BTreeMap::new();
    for (i, entry) in libos::start::args().split_whitespace().enumerate() {
        let (name, size) = entry.split_once(':').ok_or_else(|| format!("bad module entry '{entry}'"))?;
        let size = size.parse().map_err(|_| format!("bad module size in '{entry}'"))?;
        let handle = libos::start::take_handle(i + 1).ok_or_else(|| format!("no handle for module {name}"))?;
        modules.insert(name.to_string(), Module { memory: Memory(OwnedHandle::from_raw(handle)), size });
    }
    let manifest = {
        let m = modules.get("manifest").ok_or("no boot module named 'manifest'")?;
        let pages = m.memory.pages().map_err(|e| format!("cannot size the manifest: {e}"))?;
        let bytes =
            m.memory.read(m.size.min(pages * PAGE_SIZE)).map_err(|e| format!("cannot read the manifest: {e}"))?;
        let text = core::str::from_utf8(&bytes).map_err(|_| "manifest is not UTF-8")?;
        Manifest::parse(text).map_err(|e| format!("manifest: {e}"))?
    };
    for p in &manifest.programs {
        if !modules.contains_key(&p.name) {
            log::warn!("manifest names '{}' but the image has no such program", p.name);
        }
    }
    Ok(Boot { root, modules, manifest })
}
