//! Checks an ELF executable before anything is loaded and turns it into a
//! load plan: which bytes go to which user pages with which access.
//!
//! Parsing is done by the `object` crate (bounds-checked, never panics on
//! bad input); this module adds what a loader must refuse: other machines,
//! non-static images, segments outside user space or outside the file,
//! overlapping the kernel's fixed pages, or too many pages.

use arrayvec_lite::SegmentList;
use kintsugi_abi::{Error, PAGE_SIZE, STACK_TOP, USER_BASE};
use object::elf::{FileHeader64, EM_X86_64, ET_EXEC, PF_W, PF_X, PT_DYNAMIC, PT_INTERP, PT_LOAD};
use object::read::elf::{FileHeader, ProgramHeader};
use object::LittleEndian;

/// Most `PT_LOAD` segments an image may have.
pub const MAX_SEGMENTS: usize = 16;
/// Highest address (exclusive) an image may occupy: well below the stack.
pub const IMAGE_END: u64 = STACK_TOP - (1 << 32);

/// One loadable segment, already checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Start address in the process.
    pub vaddr: u64,
    /// Bytes in memory (the tail past `file_len` is zero).
    pub mem_len: u64,
    /// Offset of the initialised bytes in the image.
    pub file_offset: u64,
    /// Number of initialised bytes.
    pub file_len: u64,
    /// Writable.
    pub writable: bool,
    /// Executable.
    pub executable: bool,
}

impl Segment {
    /// First page address covered.
    pub fn first_page(&self) -> u64 {
        self.vaddr & !(PAGE_SIZE - 1)
    }

    /// One past the last page address covered.
    pub fn end_page(&self) -> u64 {
        (self.vaddr + self.mem_len).div_ceil(PAGE_SIZE) * PAGE_SIZE
    }
}

/// What to load and where to start.
#[derive(Clone, Debug)]
pub struct LoadPlan {
    /// Entry point.
    pub entry: u64,
    /// The segments, in file order.
    pub segments: SegmentList,
}

impl LoadPlan {
    /// Number of distinct pages the segments cover (pages shared by two
    /// segments count once).
    pub fn page_count(&self) -> u64 {
        let mut ranges: SegmentList = self.segments.clone();
        ranges.sort_by_key(|s| s.first_page());
        let mut total = 0;
        let mut covered_to = 0;
        for s in ranges.iter() {
            let start = s.first_page().max(covered_to);
            if s.end_page() > start {
                total += (s.end_page() - start) / PAGE_SIZE;
            }
            covered_to = covered_to.max(s.end_page());
        }
        total
    }
}

/// Check `image` and produce its load plan; `max_pages` bounds the memory
/// the segments may cover.
pub fn plan(image: &[u8], max_pages: u64) -> Result<LoadPlan, Error> {
    let header = FileHeader64::<LittleEndian>::parse(image).map_err(|_| Error::BadImage)?;
    let endian = header.endian().map_err(|_| Error::BadImage)?;
    if !header.is_class_64() || !header.is_little_endian() {
        return Err(Error::BadImage);
    }
    if header.e_machine(endian) != EM_X86_64 || header.e_type(endian) != ET_EXEC {
        return Err(Error::BadImage);
    }
    let entry = header.e_entry(endian);
    let phdrs = header.program_headers(endian, image).map_err(|_| Error::BadImage)?;
    let mut segments = SegmentList::new();
    for ph in phdrs {
        match ph.p_type(endian) {
            PT_INTERP | PT_DYNAMIC => return Err(Error::BadImage),
            PT_LOAD => {}
            _ => continue,
        }
        let seg = Segment {
            vaddr: ph.p_vaddr(endian),
            mem_len: ph.p_memsz(endian),
            file_offset: ph.p_offset(endian),
            file_len: ph.p_filesz(endian),
            writable: ph.p_flags(endian) & PF_W != 0,
            executable: ph.p_flags(endian) & PF_X != 0,
        };
        if seg.mem_len == 0 {
            continue;
        }
        check_segment(&seg, image.len() as u64)?;
        segments.push(seg).map_err(|_| Error::BadImage)?;
    }
    if segments.is_empty() {
        return Err(Error::BadImage);
    }
    let in_code = segments.iter().any(|s| s.executable && entry >= s.vaddr && entry < s.vaddr + s.mem_len);
    if !in_code {
        return Err(Error::BadImage);
    }
    let plan = LoadPlan { entry, segments };
    if plan.page_count() > max_pages {
        return Err(Error::TooLarge);
    }
    Ok(plan)
}

/// Where one user page of a loaded image comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageSource {
    /// The image's own page at this byte offset (page-aligned), mapped
    /// as is: a read-only page whose bytes are exactly the file's.
    Shared(u64),
    /// A private zeroed page into which the segments' file bytes are copied.
    Private,
}

/// One page of the address space an image occupies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    /// User address.
    pub va: u64,
    /// Writable (any segment on the page is).
    pub write: bool,
    /// Executable (any segment on the page is).
    pub execute: bool,
    /// Where its bytes come from.
    pub source: PageSource,
}

/// Every page the image covers, in address order, with its access (the
/// union of the segments that share it) and its source. A page can be
/// shared with the image when no segment on it is writable and every
/// segment on it takes the whole of its part of the page from the file at
/// the same page offset (so the process sees exactly the file's bytes
/// there, as with `mmap`); other pages are private copies. `image_len`
/// bounds the file pages that may be shared.
pub fn pages(plan: &LoadPlan, image_len: u64) -> alloc::vec::Vec<Page> {
    let mut out: alloc::vec::Vec<Page> = alloc::vec::Vec::new();
    let mut ranges: alloc::vec::Vec<(u64, u64)> =
        plan.segments.iter().map(|s| (s.first_page(), s.end_page())).collect();
    ranges.sort_unstable();
    for (first, end) in ranges {
        let mut va = first.max(out.last().map_or(0, |p| p.va + PAGE_SIZE));
        while va < end {
            out.push(page_at(plan, va, image_len));
            va += PAGE_SIZE;
        }
    }
    out
}

fn page_at(plan: &LoadPlan, va: u64, image_len: u64) -> Page {
    let mut page = Page { va, write: false, execute: false, source: PageSource::Private };
    let mut shared: Option<Option<u64>> = None; // None: no segment yet; Some(None): cannot share
    for s in plan.segments.iter().filter(|s| s.first_page() <= va && va < s.end_page()) {
        page.write |= s.writable;
        page.execute |= s.executable;
        // The part of this page the segment covers must come whole from
        // the file, from the page-congruent offset.
        let lo = va.max(s.vaddr);
        let hi = (va + PAGE_SIZE).min(s.vaddr + s.mem_len);
        let from_file = hi <= s.vaddr + s.file_len;
        let congruent = s.file_offset % PAGE_SIZE == s.vaddr % PAGE_SIZE;
        let file_page = (s.file_offset + (lo - s.vaddr)) & !(PAGE_SIZE - 1);
        let ok = !s.writable && from_file && congruent && file_page + PAGE_SIZE <= image_len;
        shared = Some(match shared {
            None if ok => Some(file_page),
            Some(Some(p)) if ok && p == file_page => Some(p),
            _ => None,
        });
    }
    if let Some(Some(offset)) = shared {
        page.source = PageSource::Shared(offset);
    }
    page
}

fn check_segment(seg: &Segment, image_len: u64) -> Result<(), Error> {
    let end = seg.vaddr.checked_add(seg.mem_len).ok_or(Error::BadImage)?;
    if seg.vaddr < USER_BASE || end > IMAGE_END {
        return Err(Error::BadImage);
    }
    if seg.file_len > seg.mem_len {
        return Err(Error::BadImage);
    }
    let file_end = seg.file_offset.checked_add(seg.file_len).ok_or(Error::BadImage)?;
    if file_end > image_len {
        return Err(Error::BadImage);
    }
    Ok(())
}

/// A fixed-capacity list of segments (no allocation while parsing).
mod arrayvec_lite {
    use super::{Segment, MAX_SEGMENTS};

    /// Up to [`MAX_SEGMENTS`] segments.
    #[derive(Clone, Debug)]
    pub struct SegmentList {
        items: [Option<Segment>; MAX_SEGMENTS],
        len: usize,
    }

    impl SegmentList {
        /// An empty list.
        pub fn new() -> Self {
            SegmentList { items: [None; MAX_SEGMENTS], len: 0 }
        }

        /// Append; fails when full.
        pub fn push(&mut self, s: Segment) -> Result<(), ()> {
            if self.len == MAX_SEGMENTS {
                return Err(());
            }
            self.items[self.len] = Some(s);
            self.len += 1;
            Ok(())
        }

        /// Whether empty.
        pub fn is_empty(&self) -> bool {
            self.len == 0
        }

        /// Number of segments.
        pub fn len(&self) -> usize {
            self.len
        }

        /// Iterate in order.
        pub fn iter(&self) -> impl Iterator<Item = &Segment> {
            self.items[..self.len].iter().flatten()
        }

        /// Sort in place by a key.
        pub fn sort_by_key<K: Ord>(&mut self, mut f: impl FnMut(&Segment) -> K) {
            self.items[..self.len].sort_by_key(|s| s.as_ref().map(&mut f));
        }
    }

    impl Default for SegmentList {
        fn default() -> Self {
            Self::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    /// Build a minimal ELF64 executable with the given program headers
    /// `(type, flags, offset, vaddr, filesz, memsz)`.
    fn elf(entry: u64, machine: u16, etype: u16, phdrs: &[(u32, u32, u64, u64, u64, u64)]) -> Vec<u8> {
        let mut b = vec![0u8; 64 + 56 * phdrs.len()];
        b[0..4].copy_from_slice(b"\x7fELF");
        b[4] = 2; // 64-bit
        b[5] = 1; // little-endian
        b[6] = 1; // version
        b[16..18].copy_from_slice(&etype.to_le_bytes());
        b[18..20].copy_from_slice(&machine.to_le_bytes());
        b[20..24].copy_from_slice(&1u32.to_le_bytes());
        b[24..32].copy_from_slice(&entry.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes()); // phoff
        b[52..54].copy_from_slice(&64u16.to_le_bytes()); // ehsize
        b[54..56].copy_from_slice(&56u16.to_le_bytes()); // phentsize
        b[56..58].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
        for (i, &(t, f, off, va, fsz, msz)) in phdrs.iter().enumerate() {
            let p = 64 + 56 * i;
            b[p..p + 4].copy_from_slice(&t.to_le_bytes());
            b[p + 4..p + 8].copy_from_slice(&f.to_le_bytes());
            b[p + 8..p + 16].copy_from_slice(&off.to_le_bytes());
            b[p + 16..p + 24].copy_from_slice(&va.to_le_bytes());
            b[p + 24..p + 32].copy_from_slice(&va.to_le_bytes());
            b[p + 32..p + 40].copy_from_slice(&fsz.to_le_bytes());
            b[p + 40..p + 48].copy_from_slice(&msz.to_le_bytes());
            b[p + 48..p + 56].copy_from_slice(&4096u64.to_le_bytes());
        }
        b.resize(0x3000, 0xcc);
        b
    }

    const RX: u32 = 5;
    const RW: u32 = 6;

    #[test]
    fn accepts_a_plain_executable() {
        let img = elf(
            0x201000,
            EM_X86_64,
            ET_EXEC,
            &[(PT_LOAD, RX, 0x1000, 0x201000, 0x800, 0x800), (PT_LOAD, RW, 0x2000, 0x202000, 0x100, 0x3000)],
        );
        let p = plan(&img, 100).unwrap();
        assert_eq!(p.entry, 0x201000);
        assert_eq!(p.segments.len(), 2);
        assert_eq!(p.page_count(), 4);
        let s: Vec<_> = p.segments.iter().collect();
        assert!(s[0].executable && !s[0].writable);
        assert!(s[1].writable && !s[1].executable);
    }

    #[test]
    fn shared_pages_count_once() {
        let img = elf(
            0x201000,
            EM_X86_64,
            ET_EXEC,
            &[(PT_LOAD, RX, 0x1000, 0x201000, 0x800, 0x800), (PT_LOAD, RW, 0x1800, 0x201800, 0x100, 0x900)],
        );
        assert_eq!(plan(&img, 100).unwrap().page_count(), 2);
    }

    #[test]
    fn read_only_pages_are_shared_with_the_image() {
        // A linker's usual layout: rodata at offset 0, text page-congruent
        // after it, data and bss writable.
        let mut img = elf(
            0x201100,
            EM_X86_64,
            ET_EXEC,
            &[
                (PT_LOAD, 4, 0x0, 0x200000, 0x10f4, 0x10f4),
                (PT_LOAD, RX, 0x1100, 0x201100, 0x1000, 0x1000),
                (PT_LOAD, RW, 0x2100, 0x203100, 0x80, 0x2000),
            ],
        );
        img.resize(0x4000, 0xcc);
        let p = plan(&img, 100).unwrap();
        let pages = pages(&p, img.len() as u64);
        let va: Vec<u64> = pages.iter().map(|p| p.va).collect();
        assert_eq!(va, [0x200000, 0x201000, 0x202000, 0x203000, 0x204000, 0x205000]);
        // Page 0x201000 holds the end of rodata and the start of text, both
        // from file page 0x1000: shared, readable and executable.
        assert_eq!(pages[0].source, PageSource::Shared(0));
        assert_eq!(pages[1], Page { va: 0x201000, write: false, execute: true, source: PageSource::Shared(0x1000) });
        assert_eq!(pages[2].source, PageSource::Shared(0x2000));
        // Data and bss are private and writable.
        for p in &pages[3..] {
            assert!(p.write && p.source == PageSource::Private, "{p:?}");
        }
        // A shared page never reaches past the image.
        let short = &img[..0x2800];
        let p = plan(short, 100).unwrap();
        let pages = super::pages(&p, short.len() as u64);
        assert_eq!(pages[2].source, PageSource::Private, "file page 0x2000 ends past the image");
    }

    #[test]
    fn pages_that_cannot_be_shared_are_copied() {
        // Text not congruent with its file offset; a read-only segment with
        // a zero tail; a page shared by a read-only and a writable segment.
        let img = elf(
            0x201000,
            EM_X86_64,
            ET_EXEC,
            &[
                (PT_LOAD, RX, 0x1010, 0x201000, 0x800, 0x800),
                (PT_LOAD, 4, 0x2000, 0x202000, 0x100, 0x200),
                (PT_LOAD, 4, 0x2100, 0x203000, 0x100, 0x100),
                (PT_LOAD, RW, 0x2200, 0x203200, 0x100, 0x100),
            ],
        );
        let p = plan(&img, 100).unwrap();
        let pages = pages(&p, img.len() as u64);
        assert_eq!(pages.len(), 3);
        assert!(pages.iter().all(|p| p.source == PageSource::Private), "{pages:?}");
        assert!(pages[2].write);
    }

    #[test]
    fn page_plans_of_random_images_stay_inside_them() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let base = elf(0x201000, EM_X86_64, ET_EXEC, &[(PT_LOAD, RX, 0x1000, 0x201000, 0x800, 0x800)]);
        for _ in 0..20_000 {
            let mut img = base.clone();
            for _ in 0..8 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let pos = 64 + (seed as usize) % 56;
                img[pos] = (seed >> 32) as u8;
            }
            if let Ok(p) = plan(&img, 1000) {
                for page in pages(&p, img.len() as u64) {
                    if let PageSource::Shared(off) = page.source {
                        assert!(off % PAGE_SIZE == 0 && off + PAGE_SIZE <= img.len() as u64 && !page.write);
                    }
                }
            }
        }
    }

    #[test]
    fn refuses_bad_images() {
        let ok_seg = (PT_LOAD, RX, 0x1000, 0x201000, 0x800, 0x800);
        // Wrong machine, wrong type, garbage, truncated.
        assert_eq!(plan(&elf(0x201000, 3, ET_EXEC, &[ok_seg]), 100).err(), Some(Error::BadImage));
        assert_eq!(plan(&elf(0x201000, EM_X86_64, 3, &[ok_seg]), 100).err(), Some(Error::BadImage));
        assert_eq!(plan(b"not an elf at all", 100).err(), Some(Error::BadImage));
        assert_eq!(plan(&elf(0x201000, EM_X86_64, ET_EXEC, &[ok_seg])[..40], 100).err(), Some(Error::BadImage));
        // Entry outside code.
        assert_eq!(plan(&elf(0x400000, EM_X86_64, ET_EXEC, &[ok_seg]), 100).err(), Some(Error::BadImage));
        // Kernel address, null page, wrapping size, file range outside the image.
        for seg in [
            (PT_LOAD, RX, 0x1000, 0xffff_ffff_8000_0000, 0x800, 0x800),
            (PT_LOAD, RX, 0x1000, 0x0, 0x800, 0x800),
            (PT_LOAD, RX, 0x1000, 0x201000, 0x800, u64::MAX),
            (PT_LOAD, RX, 0x1000, 0x201000, 0x100_0000, 0x100_0000),
            (PT_LOAD, RX, u64::MAX - 10, 0x201000, 0x800, 0x800),
            (PT_LOAD, RX, 0x1000, 0x201000, 0x900, 0x800),
            (PT_LOAD, RX, 0x1000, IMAGE_END - 0x100, 0x80, 0x800),
        ] {
            let img = elf(seg.3.wrapping_add(0x10), EM_X86_64, ET_EXEC, &[seg]);
            assert!(plan(&img, 1 << 40).is_err(), "{seg:x?}");
        }
        // Dynamic executables.
        let img = elf(0x201000, EM_X86_64, ET_EXEC, &[ok_seg, (PT_INTERP, 4, 0, 0, 0, 0)]);
        assert_eq!(plan(&img, 100).err(), Some(Error::BadImage));
    }

    #[test]
    fn page_limit_is_enforced() {
        let img = elf(0x201000, EM_X86_64, ET_EXEC, &[(PT_LOAD, RX, 0x1000, 0x201000, 0x800, 0x10_0000)]);
        assert_eq!(plan(&img, 10).err(), Some(Error::TooLarge));
    }

    #[test]
    fn too_many_segments() {
        let segs: Vec<_> = (0..17u64).map(|i| (PT_LOAD, RX, 0x1000, 0x201000 + i * 0x1000, 0x10, 0x10)).collect();
        let img = elf(0x201000, EM_X86_64, ET_EXEC, &segs);
        assert_eq!(plan(&img, 100).err(), Some(Error::BadImage));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        let base = elf(0x201000, EM_X86_64, ET_EXEC, &[(PT_LOAD, RX, 0x1000, 0x201000, 0x800, 0x800)]);
        for _ in 0..20_000 {
            let mut img = base.clone();
            for _ in 0..8 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let pos = (seed as usize) % 200;
                img[pos] = (seed >> 32) as u8;
            }
            let _ = plan(&img, 1000);
        }
    }
}
