//! The Debian packages the Linux reference guest is made of (the distribution
//! kernel and a static busybox), fetched with `apt-get download` and unpacked
//! with `dpkg-deb -x` into a cache folder, once: later runs find the unpacked
//! trees and touch neither apt nor the network.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Metapackage whose dependency names the current Debian kernel package.
const KERNEL_METAPACKAGE: &str = "linux-image-amd64";
/// Package providing a static `/bin/busybox`.
const BUSYBOX_PACKAGE: &str = "busybox-static";

/// The unpacked pieces the guest is built from.
pub struct GuestParts {
    /// The kernel image (`boot/vmlinuz-<release>`).
    pub vmlinuz: PathBuf,
    /// The kernel release, e.g. `6.1.0-57-amd64`.
    pub kernel_release: String,
    /// `lib/modules/<release>` of that kernel.
    pub modules_dir: PathBuf,
    /// The static busybox binary.
    pub busybox: PathBuf,
}

/// Make sure the kernel and busybox are unpacked under `work_dir`,
/// downloading them on the first run.
pub fn ensure_guest_parts(work_dir: &Path) -> Result<GuestParts, String> {
    let kernel_root = work_dir.join("kernel");
    if find_kernel(&kernel_root).is_none() {
        let package = resolve_kernel_package()?;
        fetch_and_unpack(&package, work_dir, &kernel_root)?;
    }
    let (vmlinuz, kernel_release) = find_kernel(&kernel_root)
        .ok_or_else(|| format!("bench: no boot/vmlinuz-* in the unpacked kernel at {}", kernel_root.display()))?;
    let modules_dir = kernel_root.join("lib/modules").join(&kernel_release);
    if !modules_dir.is_dir() {
        return Err(format!("bench: the kernel package has no {}", modules_dir.display()));
    }

    let busybox_root = work_dir.join("busybox");
    let busybox = busybox_root.join("bin/busybox");
    if !busybox.is_file() {
        fetch_and_unpack(BUSYBOX_PACKAGE, work_dir, &busybox_root)?;
    }
    if !busybox.is_file() {
        return Err(format!("bench: {BUSYBOX_PACKAGE} did not provide {}", busybox.display()));
    }
    Ok(GuestParts { vmlinuz, kernel_release, modules_dir, busybox })
}

/// `boot/vmlinuz-<release>` under `root` and its release.
fn find_kernel(root: &Path) -> Option<(PathBuf, String)> {
    let entries = std::fs::read_dir(root.join("boot")).ok()?;
    entries.flatten().find_map(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        let release = name.strip_prefix("vmlinuz-")?.to_string();
        Some((e.path(), release))
    })
}

/// The concrete kernel package `linux-image-amd64` depends on
/// (e.g. `linux-image-6.1.0-57-amd64`), updating apt's lists if needed.
fn resolve_kernel_package() -> Result<String, String> {
    if let Ok(Some(p)) = kernel_dependency() {
        return Ok(p);
    }
    apt_update()?;
    kernel_dependency()?.ok_or_else(|| {
        format!("bench: `apt-cache depends {KERNEL_METAPACKAGE}` names no linux-image-* package (is this Debian?)")
    })
}

/// What apt currently says `linux-image-amd64` depends on.
fn kernel_dependency() -> Result<Option<String>, String> {
    let out = run_captured(Command::new("apt-cache").args(["depends", KERNEL_METAPACKAGE]))?;
    Ok(parse_kernel_dependency(&out))
}

/// The `Depends: linux-image-...` line of `apt-cache depends` output.
fn parse_kernel_dependency(apt_cache_output: &str) -> Option<String> {
    apt_cache_output.lines().find_map(|l| {
        let dep = l.trim().strip_prefix("Depends:")?.trim();
        (dep.starts_with("linux-image-") && dep != KERNEL_METAPACKAGE).then(|| dep.to_string())
    })
}

/// Download `package` into `<work_dir>/debs` (unless already there) and
/// unpack it into `dest` (via a temporary folder, so an interrupted run
/// leaves no half-unpacked tree behind).
fn fetch_and_unpack(package: &str, work_dir: &Path, dest: &Path) -> Result<(), String> {
    let debs = work_dir.join("debs");
    std::fs::create_dir_all(&debs).map_err(|e| format!("bench: cannot create {}: {e}", debs.display()))?;
    let deb = match find_deb(&debs, package) {
        Some(deb) => deb,
        None => {
            eprintln!("bench: downloading {package} (first run only)");
            download(package, &debs)?;
            find_deb(&debs, package)
                .ok_or_else(|| format!("bench: apt-get download {package} left no .deb in {}", debs.display()))?
        }
    };
    let partial = dest.with_extension("partial");
    let _ = std::fs::remove_dir_all(&partial);
    run_captured(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&partial))?;
    let _ = std::fs::remove_dir_all(dest);
    std::fs::rename(&partial, dest).map_err(|e| format!("bench: cannot move {} into place: {e}", partial.display()))
}

/// `<package>_*.deb` in `dir`.
fn find_deb(dir: &Path, package: &str) -> Option<PathBuf> {
    let prefix = format!("{package}_");
    let entries = std::fs::read_dir(dir).ok()?;
    entries.flatten().map(|e| e.path()).find(|p| {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        name.starts_with(&prefix) && name.ends_with(".deb")
    })
}

/// `apt-get download package` in `dir`, updating apt's lists and retrying
/// once if apt does not know the package.
fn download(package: &str, dir: &Path) -> Result<(), String> {
    let attempt = || run_captured(Command::new("apt-get").args(["download", "-q", package]).current_dir(dir));
    if attempt().is_ok() {
        return Ok(());
    }
    apt_update()?;
    attempt().map(|_| ()).map_err(|e| format!("{e}\n(the Linux reference guest needs Debian's {package})"))
}

fn apt_update() -> Result<(), String> {
    eprintln!("bench: apt-get update");
    run_captured(Command::new("apt-get").args(["update", "-qq"])).map(|_| ())
}

/// Run `cmd`, returning its stdout, or an error quoting its stderr.
fn run_captured(cmd: &mut Command) -> Result<String, String> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().map_err(|e| format!("bench: cannot run {shown}: {e}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!("bench: {shown} failed ({}):\n{}", out.status, stderr.trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_concrete_kernel_package() {
        let out = "linux-image-amd64\n  Depends: linux-image-6.1.0-57-amd64\n";
        assert_eq!(parse_kernel_dependency(out).as_deref(), Some("linux-image-6.1.0-57-amd64"));
        assert_eq!(parse_kernel_dependency("linux-image-amd64\n"), None);
    }
}
