//! The memory objects a process has mapped: a mapping holds its object, so
//! the object's frames stay charged to the account that allocated them for
//! as long as any of its pages is mapped, not only while a handle names it.
//!
//! Without this, a program that allocated memory, mapped it and closed the
//! handle (what every program's heap does when it grows) kept the frames
//! through its page tables while its account was given the pages back: the
//! page limits of the manifest did not bound the heap, and `ps` showed a
//! companion holding 100 MiB of log as 1.5 MiB.
//!
//! Pages are counted per range, not per page: a page mapped later into a
//! hole an earlier range left (part of it unmapped) is attributed to the
//! later range. The worst that does is keep an object charged until the
//! process ends; frames are reference-counted by the page tables, so no
//! page is ever freed while mapped.

use alloc::vec::Vec;
use kintsugi_abi::{Error, PAGE_SIZE};

/// One `mem_map`: `pages` pages from `va`, of which `mapped` are still
/// mapped.
struct Range<T> {
    va: u64,
    pages: u64,
    mapped: u64,
    /// Held, never read: the reference that keeps the object alive.
    #[allow(dead_code)]
    object: T,
}

/// A process's mappings of memory objects, sorted by first address (a
/// vector, so room for one more is reserved fallibly before the mapping is
/// made). Ranges never overlap: a mapping is refused where any of its
/// pages is mapped.
/// (`T` is the reference held: an `Arc<MemoryObject>` in the kernel.)
pub struct MappedObjects<T> {
    ranges: Vec<Range<T>>,
}

impl<T> Default for MappedObjects<T> {
    fn default() -> Self {
        MappedObjects { ranges: Vec::new() }
    }
}

impl<T> MappedObjects<T> {
    /// Room for one more range, so that a mapping, once made, can be held.
    pub fn reserve(&mut self) -> Result<(), Error> {
        self.ranges.try_reserve(1).map_err(|_| Error::OutOfMemory)
    }

    /// `pages` pages of `object` were just mapped at `va` (after
    /// [`MappedObjects::reserve`]).
    pub fn add(&mut self, va: u64, pages: u64, object: T) {
        if pages > 0 {
            let at = self.ranges.partition_point(|r| r.va < va);
            self.ranges.insert(at, Range { va, pages, mapped: pages, object });
        }
    }

    /// The page at `va` was unmapped: when it was the last mapped page of
    /// its range, the range lets its object go.
    pub fn unmapped(&mut self, va: u64) {
        let at = self.ranges.partition_point(|r| r.va <= va);
        let Some(i) = at.checked_sub(1) else { return };
        let r = &mut self.ranges[i];
        if va >= r.va + r.pages * PAGE_SIZE {
            return;
        }
        // Saturating: a page mapped into the range's hole by other means
        // (`map_child`) may be counted against it too.
        r.mapped = r.mapped.saturating_sub(1);
        if r.mapped == 0 {
            self.ranges.remove(i);
        }
    }

    /// How many ranges are held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.ranges.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::rc::Rc;

    #[test]
    fn an_object_is_held_until_its_last_page_is_unmapped() {
        let object = Rc::new(());
        let mut m = MappedObjects::default();
        m.reserve().unwrap();
        m.add(0x10_0000, 3, object.clone());
        m.reserve().unwrap();
        m.add(0x20_0000, 1, Rc::new(()));
        assert_eq!(Rc::strong_count(&object), 2);
        // Pages outside every range, and below the first, change nothing.
        m.unmapped(0x10_0000 + 3 * PAGE_SIZE);
        m.unmapped(0x1000);
        m.unmapped(0x10_0000 + PAGE_SIZE);
        m.unmapped(0x10_0000);
        assert_eq!(Rc::strong_count(&object), 2, "one page still mapped");
        m.unmapped(0x10_0000 + 2 * PAGE_SIZE);
        assert_eq!(Rc::strong_count(&object), 1, "the last page let it go");
        assert_eq!(m.len(), 1);
        m.unmapped(0x20_0000);
        assert_eq!(m.len(), 0);
    }

    #[test]
    fn ranges_stay_sorted_whatever_order_they_come_in() {
        let mut m = MappedObjects::default();
        for va in [0x50_0000u64, 0x10_0000, 0x30_0000] {
            m.reserve().unwrap();
            m.add(va, 2, va);
        }
        let firsts: Vec<u64> = m.ranges.iter().map(|r| r.va).collect();
        assert_eq!(firsts, [0x10_0000, 0x30_0000, 0x50_0000]);
        m.unmapped(0x30_0000 + PAGE_SIZE);
        m.unmapped(0x30_0000);
        assert_eq!(m.ranges.iter().map(|r| r.object).collect::<Vec<_>>(), [0x10_0000, 0x50_0000]);
    }
}
