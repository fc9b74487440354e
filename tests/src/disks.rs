//! Disk images for the machine: FAT32 images made with `mkfs.fat` (the
//! data disk and the vault's checkpoint disk), and helpers to put files on
//! them and read them back from the host with mtools.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Size of the data disk (disk 0, the file service's) by default: room
/// for real files. `mkfs.fat -C` creates it sparse, so it costs the host
/// only what is written.
pub const DATA_MIB: u64 = 512;

/// Size of the checkpoint disk (disk 1, the vault's).
pub const CHECKPOINT_MIB: u64 = 64;

/// Create `path` as a FAT32 disk of `mib` MiB labelled `label`, replacing
/// any file there.
pub fn make_fat_disk(path: &Path, label: &str, mib: u64) -> Result<(), String> {
    let _ = std::fs::remove_file(path);
    let out = Command::new("mkfs.fat")
        .args(["-F", "32", "-n", label, "-C"])
        .arg(path)
        .arg((mib * 1024).to_string())
        .output()
        .map_err(|e| format!("mkfs.fat (from the dosfstools package): {e}"))?;
    if !out.status.success() {
        let _ = std::fs::remove_file(path);
        return Err(format!("mkfs.fat failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(())
}

/// `dir/data.img` and `dir/checkpoint.img`, created (FAT32; the data disk
/// [`DATA_MIB`] MiB, the checkpoint disk [`CHECKPOINT_MIB`] MiB) where
/// missing; in the order the machine attaches them (disk 0 is the data
/// disk, disk 1 the checkpoint disk).
pub fn ensure(dir: &Path) -> Result<Vec<PathBuf>, String> {
    ensure_sized(dir, None)
}

/// [`ensure`], with the data disk `data_mib` MiB. An existing data disk of
/// another size is an error (it holds the user's files; it is not
/// reformatted behind their back).
pub fn ensure_sized(dir: &Path, data_mib: Option<u64>) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut disks = Vec::new();
    for (name, label, mib) in
        [("data.img", "KDATA", data_mib.unwrap_or(DATA_MIB)), ("checkpoint.img", "KCKPT", CHECKPOINT_MIB)]
    {
        let path = dir.join(name);
        if !path.exists() {
            make_fat_disk(&path, label, mib)?;
            eprintln!("created {} ({mib} MiB, FAT32)", path.display());
        } else if name == "data.img" && data_mib.is_some() {
            let have = std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?.len();
            if have != mib << 20 {
                return Err(format!(
                    "{} exists with {} MiB, not the {mib} MiB asked: remove it (its files go with it) or leave out --disk-size",
                    path.display(),
                    have >> 20
                ));
            }
        }
        disks.push(path);
    }
    Ok(disks)
}

/// A fresh pair of disks in a new folder under the target directory, for
/// one test: `(folder, [data, checkpoint])`.
pub fn fresh(test: &str) -> Result<(PathBuf, Vec<PathBuf>), String> {
    let dir = crate::image::workspace_root().join("target/test-disks").join(format!("{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let disks = ensure(&dir)?;
    Ok((dir, disks))
}

/// Run an mtools command on image `img` (`-i img` goes first); its output,
/// or its error text.
pub fn mtools(command: &str, img: &Path, args: &[&str]) -> Result<Vec<u8>, String> {
    let out = Command::new(command)
        .arg("-i")
        .arg(img)
        .args(args)
        .env("MTOOLS_SKIP_CHECK", "1")
        .env("MTOOLS_NO_VFAT", "0")
        .output()
        .map_err(|e| format!("{command} (from the mtools package): {e}"))?;
    if !out.status.success() {
        let mut text = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if text.is_empty() {
            text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        return Err(format!("{command} {}: {text}", args.join(" ")));
    }
    Ok(out.stdout)
}

/// `::PATH` for mtools (PATH absolute on the image).
fn on_image(path: &str) -> String {
    if path.starts_with('/') {
        format!("::{path}")
    } else {
        format!("::/{path}")
    }
}

/// Whether `path` on the image is a folder.
pub fn is_dir(img: &Path, path: &str) -> bool {
    let p = path.trim_end_matches('/');
    p.is_empty() || mtools("mdir", img, &["-b", &on_image(&format!("{p}/."))]).is_ok()
}

/// Make the folders of `path` on the image (like `mkdir -p`).
pub fn mkdirs(img: &Path, path: &str) -> Result<(), String> {
    let mut at = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        at.push('/');
        at.push_str(part);
        if !is_dir(img, &at) {
            mtools("mmd", img, &[&on_image(&at)])?;
        }
    }
    Ok(())
}

/// Copy host files or folders (recursively) to `dest` on the image: into
/// `dest` if it is a folder there, else as `dest` (its parent folders
/// made as needed). Existing files are replaced.
pub fn put(img: &Path, sources: &[&Path], dest: &str) -> Result<(), String> {
    let into_dir = is_dir(img, dest) || sources.len() > 1 || dest.ends_with('/');
    let parent = if into_dir { dest.trim_end_matches('/') } else { dest.rsplit_once('/').map_or("", |(p, _)| p) };
    mkdirs(img, parent)?;
    let mut args: Vec<&str> = vec!["-s", "-o", "-Q"];
    for src in sources {
        args.push(src.to_str().ok_or_else(|| format!("{}: not a UTF-8 path", src.display()))?);
    }
    let target = on_image(dest);
    args.push(&target);
    mtools("mcopy", img, &args).map(|_| ())
}

/// Copy `src` (a file or a folder, recursively) from the image to `dest`
/// on the host (into `dest` if it is a folder). Existing files are
/// replaced.
pub fn get(img: &Path, src: &str, dest: &Path) -> Result<(), String> {
    let d = dest.to_str().ok_or_else(|| format!("{}: not a UTF-8 path", dest.display()))?;
    mtools("mcopy", img, &["-s", "-n", "-Q", &on_image(src), d]).map(|_| ())
}

/// The bytes of file `src` on the image.
pub fn read(img: &Path, src: &str) -> Result<Vec<u8>, String> {
    mtools("mcopy", img, &["-n", &on_image(src), "-"])
}

/// Remove `path` from the image: a file, or a folder with everything in it.
pub fn remove(img: &Path, path: &str) -> Result<(), String> {
    if is_dir(img, path) {
        mtools("mdeltree", img, &[&on_image(path)]).map(|_| ())
    } else {
        mtools("mdel", img, &[&on_image(path)]).map(|_| ())
    }
}

/// A listing of `path` on the image (`mdir`; `recursive` with `-/`).
pub fn listing(img: &Path, path: &str, recursive: bool) -> Result<String, String> {
    let p = on_image(path);
    let args: Vec<&str> = if recursive { vec!["-/", &p] } else { vec![&p] };
    mtools("mdir", img, &args).map(|o| String::from_utf8_lossy(&o).into_owned())
}

/// A copy of `img` at `copy` with `writes` (whole sectors at their LBAs)
/// written over it: the disk as a boot leaves it once it has applied a
/// redo list again.
pub fn copy_with_writes(
    img: &Path,
    copy: &Path,
    writes: &[checkpoint_record::epoch::BlockWrite],
) -> Result<(), String> {
    use std::io::{Seek, SeekFrom, Write};
    std::fs::copy(img, copy).map_err(|e| format!("{} -> {}: {e}", img.display(), copy.display()))?;
    let mut f = std::fs::OpenOptions::new().write(true).open(copy).map_err(|e| format!("{}: {e}", copy.display()))?;
    for w in writes {
        f.seek(SeekFrom::Start(w.lba * 512))
            .and_then(|_| f.write_all(&w.data))
            .map_err(|e| format!("{}: sector {}: {e}", copy.display(), w.lba))?;
    }
    Ok(())
}

/// `fsck.fat -n` on `img`: Ok if it finds nothing to fix, else its output.
pub fn fsck(img: &Path) -> Result<(), String> {
    let out = Command::new("fsck.fat")
        .arg("-n")
        .arg(img)
        .output()
        .map_err(|e| format!("fsck.fat (from the dosfstools package): {e}"))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() && !text.contains("Dirty bit") {
        Ok(())
    } else {
        Err(text)
    }
}
