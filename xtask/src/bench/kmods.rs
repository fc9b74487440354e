//! Kernel modules for the Linux reference guest: find the requested modules
//! in the unpacked `lib/modules/<release>/kernel`, add what they depend on,
//! and put them in an order `insmod` can load them in (dependencies first),
//! uncompressed.
//!
//! Debian's kernel package does not ship `modules.dep` (its postinst runs
//! `depmod`), so dependencies are read where `depmod` reads them: the
//! `depends=` field of each module's `.modinfo` ELF section.
//!
//! Virtio device drivers (`virtio_blk`, `virtio_net`, ...) bind nothing
//! without a transport and do not depend on one, so when a requested module
//! needs `virtio`, `virtio_pci` (the transport on QEMU's q35) is added.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The virtio core module, and the PCI transport added when it is loaded.
const VIRTIO_CORE: &str = "virtio";
const VIRTIO_PCI: &str = "virtio_pci";

/// A module ready to be put in the initramfs.
pub struct KernelModule {
    /// Module name (`-` written as `_`).
    pub name: String,
    /// The uncompressed `.ko` file.
    pub ko: Vec<u8>,
}

/// A module read from disk with the modules it depends on.
struct ReadModule {
    ko: Vec<u8>,
    depends: Vec<String>,
}

/// The modules to `insmod`, in load order, for `requested` (names as given
/// to `modprobe`); modules built into the kernel are left out.
pub fn modules_to_load(modules_dir: &Path, requested: &[&str]) -> Result<Vec<KernelModule>, String> {
    if requested.is_empty() {
        return Ok(Vec::new());
    }
    let builtin = builtin_modules(modules_dir);
    let files = module_files(&modules_dir.join("kernel"))?;
    let mut roots: Vec<String> = requested.iter().map(|r| module_name(r)).collect();
    let mut read = read_closure(&roots, &files, &builtin)?;
    if read.contains_key(VIRTIO_CORE) && !read.contains_key(VIRTIO_PCI) && !builtin.contains(VIRTIO_PCI) {
        roots.push(VIRTIO_PCI.to_string());
        read.extend(read_closure(&roots[roots.len() - 1..], &files, &builtin)?);
    }
    let depends: BTreeMap<String, Vec<String>> = read.iter().map(|(n, m)| (n.clone(), m.depends.clone())).collect();
    let order = load_order(&roots, &depends)?;
    Ok(order.into_iter().filter_map(|name| read.remove(&name).map(|m| KernelModule { name, ko: m.ko })).collect())
}

/// `name` as the kernel spells module names (`-` and `_` are the same).
fn module_name(name: &str) -> String {
    name.trim().replace('-', "_")
}

/// The module name of a file such as `virtio_blk.ko` or `virtio-gpu.ko.xz`.
fn name_of_module_file(file_name: &str) -> Option<String> {
    let stem = [".ko", ".ko.xz", ".ko.gz", ".ko.zst"].iter().find_map(|ext| file_name.strip_suffix(ext))?;
    Some(module_name(stem))
}

/// Names listed in `modules.builtin` (empty if the file is absent).
fn builtin_modules(modules_dir: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(modules_dir.join("modules.builtin")).unwrap_or_default();
    text.lines().filter_map(|l| l.rsplit('/').next()).filter_map(name_of_module_file).collect()
}

/// Every module file under `dir`, by module name.
fn module_files(dir: &Path) -> Result<BTreeMap<String, PathBuf>, String> {
    let mut found = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| format!("bench: cannot list {}: {e}", d.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Some(name) = name_of_module_file(&entry.file_name().to_string_lossy()) {
                found.insert(name, path);
            }
        }
    }
    Ok(found)
}

/// Read `roots` and, transitively, every module they depend on.
fn read_closure(
    roots: &[String],
    files: &BTreeMap<String, PathBuf>,
    builtin: &BTreeSet<String>,
) -> Result<BTreeMap<String, ReadModule>, String> {
    let mut read = BTreeMap::new();
    let mut pending: Vec<(String, Option<String>)> = roots.iter().map(|r| (r.clone(), None)).collect();
    while let Some((name, needed_by)) = pending.pop() {
        if read.contains_key(&name) || builtin.contains(&name) {
            continue;
        }
        let path = files.get(&name).ok_or_else(|| match &needed_by {
            Some(parent) => format!("bench: kernel module {name} (needed by {parent}) is not in the kernel package"),
            None => format!("bench: kernel module {name} is neither in the kernel package nor built in"),
        })?;
        let ko = read_module_file(path)?;
        let depends = modinfo_depends(&ko).map_err(|e| format!("bench: {}: {e}", path.display()))?;
        pending.extend(depends.iter().map(|d| (d.clone(), Some(name.clone()))));
        read.insert(name, ReadModule { ko, depends });
    }
    Ok(read)
}

/// The uncompressed contents of a `.ko` or `.ko.xz` file.
fn read_module_file(path: &Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    match path.extension().and_then(|e| e.to_str()) {
        Some("ko") => std::fs::read(path).map_err(|e| format!("bench: cannot read {shown}: {e}")),
        Some("xz") => {
            let out =
                Command::new("xz").arg("-dc").arg(path).output().map_err(|e| {
                    format!("bench: cannot run xz to decompress {shown}: {e} (apt-get install xz-utils)")
                })?;
            if !out.status.success() {
                return Err(format!("bench: xz -dc {shown} failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
            }
            Ok(out.stdout)
        }
        _ => Err(format!("bench: {shown}: unsupported module compression (only .ko and .ko.xz are handled)")),
    }
}

/// The modules named by the `depends=` field of the `.modinfo` section.
fn modinfo_depends(ko: &[u8]) -> Result<Vec<String>, String> {
    let modinfo = elf_section(ko, ".modinfo")?;
    let depends = modinfo
        .split(|&b| b == 0)
        .find_map(|field| field.strip_prefix(b"depends="))
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    Ok(depends.split(',').filter(|d| !d.trim().is_empty()).map(module_name).collect())
}

/// The contents of the section called `wanted` in a little-endian ELF64 file.
fn elf_section<'a>(elf: &'a [u8], wanted: &str) -> Result<&'a [u8], String> {
    if elf.get(..6) != Some(b"\x7fELF\x02\x01".as_slice()) {
        return Err("not a little-endian ELF64 file".into());
    }
    let bad = || "truncated ELF section table".to_string();
    let shoff = read_u64(elf, 0x28).ok_or_else(bad)?;
    let shentsize = read_u16(elf, 0x3a).ok_or_else(bad)?;
    let shnum = read_u16(elf, 0x3c).ok_or_else(bad)?;
    let shstrndx = read_u16(elf, 0x3e).ok_or_else(bad)?;
    let header = |i: usize| shoff.checked_add(i.checked_mul(shentsize)?);
    let contents = |i: usize| -> Option<&'a [u8]> {
        let h = header(i)?;
        let (offset, size) = (read_u64(elf, h + 0x18)?, read_u64(elf, h + 0x20)?);
        elf.get(offset..offset.checked_add(size)?)
    };
    let names = contents(shstrndx).ok_or_else(bad)?;
    for i in 0..shnum {
        let name_offset = header(i).and_then(|h| read_u32(elf, h)).ok_or_else(bad)? as usize;
        let name = names.get(name_offset..).and_then(|s| s.split(|&b| b == 0).next()).ok_or_else(bad)?;
        if name == wanted.as_bytes() {
            return contents(i).ok_or_else(bad);
        }
    }
    Err(format!("no {wanted} section"))
}

fn read_u16(b: &[u8], at: usize) -> Option<usize> {
    Some(u16::from_le_bytes(b.get(at..at.checked_add(2)?)?.try_into().ok()?) as usize)
}

fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn read_u64(b: &[u8], at: usize) -> Option<usize> {
    usize::try_from(u64::from_le_bytes(b.get(at..at.checked_add(8)?)?.try_into().ok()?)).ok()
}

/// Module names in an order where each comes after everything it depends
/// on, starting from `roots`; names without an entry in `depends` (built
/// into the kernel) are left out.
fn load_order(roots: &[String], depends: &BTreeMap<String, Vec<String>>) -> Result<Vec<String>, String> {
    fn visit(
        name: &str,
        depends: &BTreeMap<String, Vec<String>>,
        visiting: &mut Vec<String>,
        order: &mut Vec<String>,
    ) -> Result<(), String> {
        let Some(deps) = depends.get(name) else { return Ok(()) };
        if order.iter().any(|n| n == name) {
            return Ok(());
        }
        if visiting.iter().any(|n| n == name) {
            return Err(format!(
                "bench: kernel modules depend on each other in a cycle: {} -> {name}",
                visiting.join(" -> ")
            ));
        }
        visiting.push(name.to_string());
        for d in deps {
            visit(d, depends, visiting, order)?;
        }
        visiting.pop();
        order.push(name.to_string());
        Ok(())
    }
    let mut order = Vec::new();
    for root in roots {
        visit(root, depends, &mut Vec::new(), &mut order)?;
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deps(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs.iter().map(|(n, d)| (n.to_string(), d.iter().map(|s| s.to_string()).collect())).collect()
    }

    #[test]
    fn orders_dependencies_first_once_each() {
        let d = deps(&[
            ("virtio_blk", &["virtio", "virtio_ring"]),
            ("virtio_ring", &["virtio"]),
            ("virtio", &[]),
            ("virtio_pci", &["virtio_ring", "virtio"]),
        ]);
        let roots = vec!["virtio_blk".to_string(), "virtio_pci".to_string()];
        assert_eq!(load_order(&roots, &d).unwrap(), ["virtio", "virtio_ring", "virtio_blk", "virtio_pci"]);
    }

    #[test]
    fn reports_cycles() {
        let d = deps(&[("a", &["b"]), ("b", &["a"])]);
        assert!(load_order(&["a".to_string()], &d).unwrap_err().contains("cycle"));
    }

    /// A minimal ELF64: header, `.shstrtab` and `.modinfo`, then the section table.
    fn fake_module(modinfo: &[u8]) -> Vec<u8> {
        let shstrtab = b"\0.shstrtab\0.modinfo\0";
        let mut elf = vec![0u8; 64];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        let strtab_at = elf.len();
        elf.extend_from_slice(shstrtab);
        let modinfo_at = elf.len();
        elf.extend_from_slice(modinfo);
        let shoff = elf.len();
        let sections: [(u32, usize, usize); 3] =
            [(0, 0, 0), (1, strtab_at, shstrtab.len()), (11, modinfo_at, modinfo.len())];
        for (name, offset, size) in sections {
            let mut h = vec![0u8; 64];
            h[..4].copy_from_slice(&name.to_le_bytes());
            h[0x18..0x20].copy_from_slice(&(offset as u64).to_le_bytes());
            h[0x20..0x28].copy_from_slice(&(size as u64).to_le_bytes());
            elf.extend_from_slice(&h);
        }
        elf[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        elf[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        elf[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        elf[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes());
        elf
    }

    #[test]
    fn reads_depends_from_modinfo() {
        let ko = fake_module(b"license=GPL\0depends=virtio,virtio-ring\0name=virtio_blk\0");
        assert_eq!(modinfo_depends(&ko).unwrap(), ["virtio", "virtio_ring"]);
        let ko = fake_module(b"depends=\0name=virtio\0");
        assert!(modinfo_depends(&ko).unwrap().is_empty());
    }

    #[test]
    fn rejects_non_elf_and_truncated_files() {
        assert!(modinfo_depends(b"not an elf").is_err());
        let mut ko = fake_module(b"depends=\0");
        ko.truncate(100);
        assert!(modinfo_depends(&ko).is_err());
    }

    #[test]
    fn names_module_files() {
        assert_eq!(name_of_module_file("virtio-gpu.ko.xz").as_deref(), Some("virtio_gpu"));
        assert_eq!(name_of_module_file("virtio_blk.ko").as_deref(), Some("virtio_blk"));
        assert_eq!(name_of_module_file("modules.dep"), None);
    }
}
