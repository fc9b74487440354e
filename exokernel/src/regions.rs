//! Physical address ranges: what RAM is usable once the kernel image, the
//! boot modules and low memory are taken out, in whole pages.

use alloc::vec;
use alloc::vec::Vec;

/// A range of physical memory, `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

/// Below this the PC keeps BIOS data, the EBDA and legacy holes.
pub const LOW_MEMORY_END: u64 = 0x10_0000;

/// The whole pages of `ram` (clipped to `[LOW_MEMORY_END, limit)`) that
/// no `reserved` range touches, as `(first_page, end_page)` page numbers.
pub fn usable_pages(ram: &[Region], reserved: &[Region], limit: u64, page: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for r in ram {
        let mut pieces = vec![(r.start.max(LOW_MEMORY_END), r.end.min(limit))];
        for res in reserved {
            pieces = pieces
                .into_iter()
                .flat_map(|(s, e)| {
                    if res.end <= s || res.start >= e {
                        vec![(s, e)]
                    } else {
                        vec![(s, res.start.max(s)), (res.end.min(e), e)]
                    }
                })
                .filter(|(s, e)| s < e)
                .collect();
        }
        for (s, e) in pieces {
            let (first, last) = (s.div_ceil(page), e / page);
            if first < last {
                out.push((first, last));
            }
        }
    }
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u64 = 4096;

    fn r(start: u64, end: u64) -> Region {
        Region { start, end }
    }

    #[test]
    fn low_memory_and_reserved_ranges_are_removed() {
        let ram = [r(0, 0x9f000), r(0x10_0000, 0x800_0000)];
        let reserved = [r(0x20_0000, 0x40_0000), r(0x500_0000, 0x500_1000)];
        let pages = usable_pages(&ram, &reserved, u64::MAX, P);
        assert_eq!(pages, [(0x100, 0x200), (0x400, 0x5000), (0x5001, 0x8000)]);
    }

    #[test]
    fn partial_pages_are_dropped() {
        let pages = usable_pages(&[r(0x10_0800, 0x10_3800)], &[], u64::MAX, P);
        assert_eq!(pages, [(0x101, 0x103)]);
    }

    #[test]
    fn limit_clips_and_overlapping_reservations_work() {
        let pages = usable_pages(
            &[r(0x10_0000, 0x1_0000_0000)],
            &[r(0x10_0000, 0x30_0000), r(0x20_0000, 0x40_0000)],
            0x80_0000,
            P,
        );
        assert_eq!(pages, [(0x400, 0x800)]);
    }

    #[test]
    fn nothing_usable() {
        assert!(usable_pages(&[r(0, 0x10_0000)], &[], u64::MAX, P).is_empty());
        assert!(usable_pages(&[r(0x10_0000, 0x20_0000)], &[r(0, u64::MAX)], u64::MAX, P).is_empty());
    }
}
