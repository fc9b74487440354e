//! Memory objects: sets of physical frames that processes map, share and
//! hand to devices; and the page accounts they are charged to.

use crate::mem::{frames, phys_to_virt};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use kintsugi_abi::{Error, MemFlags, PAGE_SIZE};

/// Pages charged to one process (and the limit it was spawned with).
pub struct Account {
    pages: AtomicU64,
    limit: u64,
}

impl Account {
    /// An account with `limit` pages (0 = unlimited).
    pub fn new(limit: u64) -> Account {
        Account { pages: AtomicU64::new(0), limit: if limit == 0 { u64::MAX } else { limit } }
    }

    /// Charge `n` pages, or `LimitReached`.
    pub fn charge(&self, n: u64) -> Result<(), Error> {
        let now = self.pages.load(Ordering::Relaxed);
        if now.saturating_add(n) > self.limit {
            return Err(Error::LimitReached);
        }
        self.pages.store(now + n, Ordering::Relaxed);
        Ok(())
    }

    /// Give back `n` pages.
    pub fn uncharge(&self, n: u64) {
        self.pages.fetch_sub(n.min(self.pages.load(Ordering::Relaxed)), Ordering::Relaxed);
    }

    /// Pages charged now.
    pub fn pages(&self) -> u64 {
        self.pages.load(Ordering::Relaxed)
    }
}

enum Frames {
    Run { base: u64, count: u64 },
    Scattered(Vec<u64>),
}

/// A set of frames.
pub struct MemoryObject {
    frames: Frames,
    account: Option<Arc<Account>>,
    pinned: bool,
}

impl MemoryObject {
    /// Allocate `pages` zeroed frames charged to `account`.
    pub fn alloc(pages: u64, flags: MemFlags, account: &Arc<Account>) -> Result<MemoryObject, Error> {
        if pages == 0 || pages > kintsugi_abi::MAX_MEM_PAGES {
            return Err(if pages == 0 { Error::InvalidArgument } else { Error::TooLarge });
        }
        account.charge(pages)?;
        let below_4g = flags.contains(MemFlags::BELOW_4G);
        let frames = if flags.contains(MemFlags::CONTIGUOUS) {
            match frames::alloc_run(pages as usize, below_4g) {
                Some(base) => Frames::Run { base, count: pages },
                None => {
                    account.uncharge(pages);
                    return Err(Error::OutOfMemory);
                }
            }
        } else {
            let mut v = Vec::new();
            if v.try_reserve_exact(pages as usize).is_err() {
                account.uncharge(pages);
                return Err(Error::OutOfMemory);
            }
            for _ in 0..pages {
                match frames::alloc_run(1, below_4g) {
                    Some(pa) => v.push(pa),
                    None => {
                        v.iter().for_each(|pa| frames::release(*pa));
                        account.uncharge(pages);
                        return Err(Error::OutOfMemory);
                    }
                }
            }
            Frames::Scattered(v)
        };
        Ok(MemoryObject { frames, account: Some(account.clone()), pinned: false })
    }

    /// An object over frames the kernel never frees (a boot module).
    pub fn pinned(base: u64, pages: u64) -> MemoryObject {
        MemoryObject { frames: Frames::Run { base, count: pages }, account: None, pinned: true }
    }

    /// Whether the frames can never change: a boot module (no handle to it
    /// ever carries `WRITE`, and its frames are never freed).
    pub fn is_immutable(&self) -> bool {
        self.pinned
    }

    /// Number of pages.
    pub fn pages(&self) -> u64 {
        match &self.frames {
            Frames::Run { count, .. } => *count,
            Frames::Scattered(v) => v.len() as u64,
        }
    }

    /// Physical address of page `i`.
    pub fn frame(&self, i: u64) -> Option<u64> {
        match &self.frames {
            Frames::Run { base, count } => (i < *count).then(|| base + i * PAGE_SIZE),
            Frames::Scattered(v) => v.get(i as usize).copied(),
        }
    }

    /// The bytes of a physically contiguous object, through the direct map.
    pub fn contiguous_bytes(&self) -> Option<&[u8]> {
        match &self.frames {
            // SAFETY: the run is RAM the object holds a reference to for as
            // long as `self` lives; the direct map covers all RAM.
            Frames::Run { base, count } => {
                Some(unsafe { core::slice::from_raw_parts(phys_to_virt(*base), (*count * PAGE_SIZE) as usize) })
            }
            Frames::Scattered(v) if v.len() == 1 => {
                // SAFETY: as above, one frame.
                Some(unsafe { core::slice::from_raw_parts(phys_to_virt(v[0]), PAGE_SIZE as usize) })
            }
            Frames::Scattered(_) => None,
        }
    }
}

impl Drop for MemoryObject {
    fn drop(&mut self) {
        if self.pinned {
            return;
        }
        match &self.frames {
            Frames::Run { base, count } => (0..*count).for_each(|i| frames::release(base + i * PAGE_SIZE)),
            Frames::Scattered(v) => v.iter().for_each(|pa| frames::release(*pa)),
        }
        if let Some(a) = &self.account {
            a.uncharge(self.pages());
        }
    }
}
