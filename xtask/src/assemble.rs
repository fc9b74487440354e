//! Building the image: the kernel and every program the manifest names, for
//! `x86_64-unknown-none`, copied into `target/kintsugi/image/` as the kernel
//! plus one boot module per program (named as the program), `manifest`,
//! and `modules.txt` listing the modules in load order.

use kintsugi_manifest::Manifest;
use kintsugi_tests::image::{image_dir, workspace_root};
use kintsugi_tests::Image;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the manifest lives.
pub const MANIFEST: &str = "services/system.toml";
/// The target of the kernel and every program.
pub const TARGET: &str = "x86_64-unknown-none";

/// Read the system manifest.
pub fn manifest() -> Result<Manifest, String> {
    let path = workspace_root().join(MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Manifest::parse(&text).map_err(|e| format!("{MANIFEST}: {e}"))
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// The packages built for the image: the kernel, init and every package
/// the manifest's programs come from.
pub fn packages(manifest: &Manifest) -> Vec<String> {
    let mut packages = vec!["exokernel".to_string(), "init".to_string()];
    for p in &manifest.programs {
        if !packages.contains(&p.package) {
            packages.push(p.package.clone());
        }
    }
    packages
}

/// Build everything and lay the image out; returns it.
pub fn build() -> Result<Image, String> {
    let root = workspace_root();
    let manifest = manifest()?;
    let packages = packages(&manifest);
    let mut cmd = Command::new(cargo());
    cmd.current_dir(&root).args(["build", "--release", "--target", TARGET]);
    for p in &packages {
        cmd.args(["-p", p]);
    }
    eprintln!("xtask: building the kernel and {} programs", manifest.programs.len() + 1);
    let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("the build failed".into());
    }
    let out = root.join("target").join(TARGET).join("release");
    let dir = image_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let copy = |from: &Path, name: &str| -> Result<PathBuf, String> {
        let to = dir.join(name);
        std::fs::copy(from, &to).map_err(|e| format!("copy {} -> {}: {e}", from.display(), to.display()))?;
        Ok(to)
    };
    // Programs go in without their debug information: boot modules live in
    // the machine's memory, and the debug sections were two thirds of it.
    // Their symbols stay (the profiler names functions with them); gdb
    // reads the full ELFs under target/.
    let copy_program = |from: &Path, name: &str| -> Result<PathBuf, String> {
        let to = dir.join(name);
        let data = std::fs::read(from).map_err(|e| format!("{}: {e}", from.display()))?;
        let stripped = without_debug_sections(&data).map_err(|e| format!("{}: {e}", from.display()))?;
        std::fs::write(&to, stripped).map_err(|e| format!("{}: {e}", to.display()))?;
        Ok(to)
    };
    let kernel = out.join("kintsugi-kernel");
    check_kernel_layout(&kernel)?;
    copy(&kernel, "kernel")?;
    let mut modules = vec!["init".to_string(), "manifest".to_string()];
    copy_program(&out.join("init"), "init")?;
    copy(&root.join(MANIFEST), "manifest")?;
    for p in &manifest.programs {
        let bin = out.join(&p.binary);
        if !bin.exists() {
            return Err(format!("program '{}': package '{}' built no binary '{}'", p.name, p.package, p.binary));
        }
        copy_program(&bin, &p.name)?;
        modules.push(p.name.clone());
    }
    std::fs::write(dir.join("modules.txt"), modules.join("\n") + "\n").map_err(|e| e.to_string())?;
    Image::load(&dir)
}

/// Check that the kernel's loadable segments form one run in the file with
/// the same offsets as in physical memory: QEMU's Multiboot1 loader copies
/// the file as a flat image (a.out kludge), GRUB loads the ELF segments, and
/// both must put the same bytes at the same addresses.
fn check_kernel_layout(kernel: &Path) -> Result<(), String> {
    let bytes = std::fs::read(kernel).map_err(|e| format!("{}: {e}", kernel.display()))?;
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap());
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" {
        return Err("the kernel is not an ELF file".into());
    }
    let (phoff, phentsize, phnum) = (u64_at(32) as usize, u16_at(54), u16_at(56));
    let mut delta = None;
    for i in 0..phnum {
        let p = phoff + i * phentsize;
        if u32_at(p) != 1 {
            continue; // not PT_LOAD
        }
        let (offset, paddr) = (u64_at(p + 8) as i64, u64_at(p + 24) as i64);
        let d = offset - paddr;
        if *delta.get_or_insert(d) != d {
            return Err("kernel segments are not laid out contiguously (check exokernel/linker.ld)".into());
        }
    }
    Ok(())
}

/// `elf` without its `.debug_*` sections (what `strip --strip-debug` does),
/// through the `object` crate's ELF builder.
fn without_debug_sections(elf: &[u8]) -> Result<Vec<u8>, String> {
    let mut builder = object::build::elf::Builder::read(elf).map_err(|e| format!("reading the ELF: {e}"))?;
    for section in builder.sections.iter_mut() {
        if section.name.as_slice().starts_with(b".debug") {
            section.delete = true;
        }
    }
    let mut out = Vec::new();
    builder.write(&mut out).map_err(|e| format!("writing the ELF: {e}"))?;
    Ok(out)
}
