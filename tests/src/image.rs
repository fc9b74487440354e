//! Where a built image lives: the kernel ELF and the boot modules (one file
//! per program, named as the program, plus `manifest`), as `cargo xtask
//! build` leaves them in `target/kintsugi/image/`.

use std::path::{Path, PathBuf};

/// A built image.
#[derive(Clone, Debug)]
pub struct Image {
    /// The kernel ELF.
    pub kernel: PathBuf,
    /// Boot modules, in load order (the file name is the module name).
    pub modules: Vec<PathBuf>,
    /// The GRUB ISO, if `cargo xtask image` made one.
    pub iso: Option<PathBuf>,
}

/// The workspace root (this crate lives in `<root>/tests`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The folder `cargo xtask build` writes the image to.
pub fn image_dir() -> PathBuf {
    std::env::var_os("KINTSUGI_IMAGE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/kintsugi/image"))
}

impl Image {
    /// Read the image folder: `kernel`, `modules.txt` (module file names in
    /// order) and the module files.
    pub fn load(dir: &Path) -> Result<Image, String> {
        let kernel = dir.join("kernel");
        let list = dir.join("modules.txt");
        let text = std::fs::read_to_string(&list).map_err(|e| {
            format!(
                "no built image at {} ({e}); run `cargo xtask build` (or `cargo xtask test`, which builds first)",
                dir.display()
            )
        })?;
        let modules: Vec<PathBuf> = text.lines().filter(|l| !l.trim().is_empty()).map(|l| dir.join(l.trim())).collect();
        for m in std::iter::once(&kernel).chain(modules.iter()) {
            if !m.exists() {
                return Err(format!("image file {} is missing; rebuild with `cargo xtask build`", m.display()));
            }
        }
        let iso = dir.join("kintsugi.iso");
        Ok(Image { kernel, modules, iso: iso.exists().then_some(iso) })
    }

    /// The image `cargo xtask build` made for this workspace.
    pub fn built() -> Result<Image, String> {
        Image::load(&image_dir())
    }
}
