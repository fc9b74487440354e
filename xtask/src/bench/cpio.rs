//! A writer for the "newc" cpio archive format (the one the Linux kernel
//! unpacks as an initramfs): directories, regular files, symbolic links and
//! character devices, built in memory. Written by hand so that device nodes
//! such as `/dev/console` can go in without root or `mknod` on the host.

/// File type bits of `st_mode`.
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// Magic of a newc header (no checksum).
const NEWC_MAGIC: &str = "070701";
/// Name of the entry that ends an archive.
const TRAILER: &str = "TRAILER!!!";

/// One archive member before it is encoded.
struct Entry<'a> {
    path: &'a str,
    mode: u32,
    nlink: u32,
    rdev: (u32, u32),
    data: &'a [u8],
}

/// A newc archive being built in memory.
pub struct CpioWriter {
    out: Vec<u8>,
    next_ino: u32,
}

impl Default for CpioWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl CpioWriter {
    /// An empty archive.
    pub fn new() -> Self {
        CpioWriter { out: Vec::new(), next_ino: 1 }
    }

    /// A directory `path` (relative, e.g. `"dev"`) with permissions `perm`.
    pub fn dir(&mut self, path: &str, perm: u32) -> Result<(), String> {
        self.push(&Entry { path, mode: S_IFDIR | perm, nlink: 2, rdev: (0, 0), data: &[] })
    }

    /// A regular file `path` holding `data`.
    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) -> Result<(), String> {
        self.push(&Entry { path, mode: S_IFREG | perm, nlink: 1, rdev: (0, 0), data })
    }

    /// A symbolic link `path` pointing at `target`.
    pub fn symlink(&mut self, path: &str, target: &str) -> Result<(), String> {
        self.push(&Entry { path, mode: S_IFLNK | 0o777, nlink: 1, rdev: (0, 0), data: target.as_bytes() })
    }

    /// A character device node `path` with device number `major:minor`.
    pub fn char_device(&mut self, path: &str, perm: u32, major: u32, minor: u32) -> Result<(), String> {
        self.push(&Entry { path, mode: S_IFCHR | perm, nlink: 1, rdev: (major, minor), data: &[] })
    }

    /// Append the trailer and return the archive, padded to 512 bytes.
    pub fn finish(mut self) -> Vec<u8> {
        // The trailer has no data and a fixed name; encoding it cannot fail.
        let trailer = Entry { path: TRAILER, mode: 0, nlink: 1, rdev: (0, 0), data: &[] };
        self.encode(&trailer, 0, 0);
        pad_to(&mut self.out, 512);
        self.out
    }

    fn push(&mut self, e: &Entry) -> Result<(), String> {
        let path = e.path.trim_start_matches('/');
        if path.is_empty() || path == TRAILER {
            return Err(format!("cpio: invalid member name {:?}", e.path));
        }
        let size = u32::try_from(e.data.len()).map_err(|_| format!("cpio: {path} is larger than 4 GiB"))?;
        let ino = self.next_ino;
        self.next_ino += 1;
        self.encode(&Entry { path, ..*e }, ino, size);
        Ok(())
    }

    /// Header, NUL-terminated name, padding, data, padding.
    fn encode(&mut self, e: &Entry, ino: u32, size: u32) {
        let name_size = e.path.len() as u32 + 1;
        let fields = [ino, e.mode, 0, 0, e.nlink, 0, size, 0, 0, e.rdev.0, e.rdev.1, name_size, 0];
        self.out.extend_from_slice(NEWC_MAGIC.as_bytes());
        for f in fields {
            self.out.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        self.out.extend_from_slice(e.path.as_bytes());
        self.out.push(0);
        pad_to(&mut self.out, 4);
        self.out.extend_from_slice(e.data);
        pad_to(&mut self.out, 4);
    }
}

/// Append NUL bytes until `out.len()` is a multiple of `align`.
fn pad_to(out: &mut Vec<u8>, align: usize) {
    while !out.len().is_multiple_of(align) {
        out.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Field `i` (0 = ino) of the header starting at `at`.
    fn field(archive: &[u8], at: usize, i: usize) -> u32 {
        let start = at + 6 + i * 8;
        u32::from_str_radix(std::str::from_utf8(&archive[start..start + 8]).unwrap(), 16).unwrap()
    }

    #[test]
    fn writes_newc_header_data_and_trailer() {
        let mut w = CpioWriter::new();
        w.file("/bin/hello", 0o755, b"hi!").unwrap();
        let a = w.finish();

        assert_eq!(&a[..6], b"070701");
        assert_eq!(field(&a, 0, 1), S_IFREG | 0o755);
        assert_eq!(field(&a, 0, 6), 3, "file size");
        assert_eq!(field(&a, 0, 11), 10, "name size counts the NUL");
        // Name right after the 110-byte header, leading '/' removed.
        assert_eq!(&a[110..120], b"bin/hello\0");
        // 110 + 10 = 120 is 4-aligned, so the data follows at once, then pads to 124.
        assert_eq!(&a[120..123], b"hi!");
        assert_eq!(a[123], 0);

        let trailer = 124;
        assert_eq!(&a[trailer..trailer + 6], b"070701");
        assert_eq!(field(&a, trailer, 11), 11);
        assert_eq!(&a[trailer + 110..trailer + 121], b"TRAILER!!!\0");
        assert_eq!(a.len() % 512, 0);
        assert!(a[trailer + 121..].iter().all(|&b| b == 0));
    }

    #[test]
    fn writes_device_numbers_and_symlink_targets() {
        let mut w = CpioWriter::new();
        w.char_device("dev/console", 0o600, 5, 1).unwrap();
        w.symlink("bin/sh", "busybox").unwrap();
        let a = w.finish();

        assert_eq!(field(&a, 0, 1), S_IFCHR | 0o600);
        assert_eq!((field(&a, 0, 9), field(&a, 0, 10)), (5, 1));
        // "dev/console\0" is 12 bytes: 110 + 12 = 122, padded to 124.
        let second = 124;
        assert_eq!(field(&a, second, 1), S_IFLNK | 0o777);
        assert_eq!(field(&a, second, 6), 7);
        assert_eq!(&a[second + 110..second + 117], b"bin/sh\0");
        assert_eq!(&a[second + 120..second + 127], b"busybox");
        assert_ne!(field(&a, 0, 0), field(&a, second, 0), "distinct inode numbers");
    }

    #[test]
    fn rejects_empty_and_reserved_names() {
        let mut w = CpioWriter::new();
        assert!(w.dir("/", 0o755).is_err());
        assert!(w.file("TRAILER!!!", 0o644, b"").is_err());
    }
}
