//! Address spaces: four-level x86_64 page tables reached through the direct
//! map, with the kernel half (PML4 entries 256..512) shared by all.
//!
//! Page-table entries are the only record of what a process has mapped: a
//! mapped RAM frame holds one reference (see `frames`); device memory is
//! marked with a software bit and holds none. Tearing an address space down
//! walks the tables and releases what they hold.

use super::{frames, phys_to_virt};
use crate::object::Account;
use alloc::sync::Arc;
use kintsugi_abi::{Error, PAGE_SIZE, USER_END};
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::{PageTable, PageTableFlags as F, PhysFrame};
use x86_64::PhysAddr;

/// Software bit: this entry maps device memory (no frame reference held).
const DEVICE: F = F::BIT_9;
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// Physical address of the kernel's own PML4 (the boot tables).
fn kernel_pml4() -> u64 {
    extern "C" {
        static boot_pml4: u8;
    }
    // The boot PML4 sits in the .boot section, linked at its physical
    // address, so its address is its physical address.
    core::ptr::addr_of!(boot_pml4) as u64
}

/// The page table at physical address `pa`.
///
/// # Safety
/// `pa` must be a page-table frame; the caller must not hold another
/// reference to the same table.
unsafe fn table<'a>(pa: u64) -> &'a mut PageTable {
    // SAFETY: per the contract, `pa` is a page-table frame in the direct map.
    unsafe { &mut *(phys_to_virt(pa) as *mut PageTable) }
}

/// Entry `i` of the page table at `pa`, as a raw word.
///
/// # Safety
/// As for [`table`]; `i < 512`.
unsafe fn entry_word(pa: u64, i: usize) -> *mut u64 {
    // SAFETY: per the contract.
    unsafe { (phys_to_virt(pa) as *mut u64).add(i) }
}

/// How a page is mapped.
#[derive(Clone, Copy, Debug)]
pub struct PageAccess {
    /// Writable by the user.
    pub write: bool,
    /// Executable.
    pub execute: bool,
}

/// What a user page-table entry says.
#[derive(Clone, Copy, Debug)]
pub struct Mapped {
    /// Physical address of the frame.
    pub pa: u64,
    /// Writable.
    pub write: bool,
    /// Device memory (no frame reference).
    pub device: bool,
}

/// One process's page tables. Their pages are charged to the process's
/// account, so mapping far-apart addresses cannot exhaust memory unseen.
pub struct AddressSpace {
    pml4: u64,
    /// Page-table pages this space owns (its PML4 included).
    pub table_pages: u64,
    account: Arc<Account>,
}

impl AddressSpace {
    /// A new space with an empty user half and the shared kernel half,
    /// charging its table pages to `account`.
    pub fn new(account: Arc<Account>) -> Result<AddressSpace, Error> {
        account.charge(1)?;
        let Some(pml4) = frames::alloc() else {
            account.uncharge(1);
            return Err(Error::OutOfMemory);
        };
        // SAFETY: both tables are valid page tables reachable through the
        // direct map; the new one is ours alone.
        unsafe {
            let k = table(kernel_pml4());
            let t = table(pml4);
            for i in 256..512 {
                t[i] = k[i].clone();
            }
        }
        Ok(AddressSpace { pml4, table_pages: 1, account })
    }

    /// Physical address of the PML4 (what CR3 holds while it runs).
    pub fn root(&self) -> u64 {
        self.pml4
    }

    /// Whether this space is the one loaded in CR3.
    fn is_active(&self) -> bool {
        Cr3::read().0.start_address().as_u64() == self.pml4
    }

    /// Load this space into CR3 (if it is not already there).
    pub fn activate(&self) {
        if !self.is_active() {
            // SAFETY: the PML4 is a valid table whose kernel half equals the
            // kernel's, so the kernel keeps running after the switch.
            unsafe { Cr3::write(PhysFrame::containing_address(PhysAddr::new(self.pml4)), Cr3Flags::empty()) };
        }
    }

    /// The leaf entry for `va`, creating intermediate tables if `create`.
    fn leaf(&mut self, va: u64, create: bool) -> Result<Option<*mut u64>, Error> {
        let idx = [(va >> 39) & 511, (va >> 30) & 511, (va >> 21) & 511, (va >> 12) & 511];
        let mut t = self.pml4;
        for &i in &idx[..3] {
            // SAFETY: `t` is a page table of this space, in the direct map.
            let entry = unsafe { &mut table(t)[i as usize] };
            if entry.flags().contains(F::PRESENT) {
                if entry.flags().contains(F::HUGE_PAGE) {
                    return Err(Error::InvalidArgument);
                }
                t = entry.addr().as_u64();
            } else if create {
                self.account.charge(1)?;
                let Some(new) = frames::alloc() else {
                    self.account.uncharge(1);
                    return Err(Error::OutOfMemory);
                };
                self.table_pages += 1;
                entry.set_addr(PhysAddr::new(new), F::PRESENT | F::WRITABLE | F::USER_ACCESSIBLE);
                t = new;
            } else {
                return Ok(None);
            }
        }
        // SAFETY: as above; entries are 8-byte words.
        Ok(Some(unsafe { entry_word(t, idx[3] as usize) }))
    }

    fn read_leaf(&self, va: u64) -> Option<u64> {
        let idx = [(va >> 39) & 511, (va >> 30) & 511, (va >> 21) & 511, (va >> 12) & 511];
        let mut t = self.pml4;
        for &i in &idx[..3] {
            // SAFETY: `t` is a page table of this space, in the direct map.
            let entry = unsafe { &table(t)[i as usize] };
            if !entry.flags().contains(F::PRESENT) || entry.flags().contains(F::HUGE_PAGE) {
                return None;
            }
            t = entry.addr().as_u64();
        }
        // SAFETY: as above.
        let raw = unsafe { *entry_word(t, idx[3] as usize) };
        (raw & F::PRESENT.bits() != 0).then_some(raw)
    }

    /// Whether `va` is mapped.
    pub fn is_mapped(&self, va: u64) -> bool {
        self.read_leaf(va).is_some()
    }

    /// What `va` maps to, if anything.
    pub fn translate(&self, va: u64) -> Option<Mapped> {
        let raw = self.read_leaf(va)?;
        let f = F::from_bits_truncate(raw);
        Some(Mapped { pa: raw & ADDR_MASK, write: f.contains(F::WRITABLE), device: f.contains(DEVICE) })
    }

    /// Map the frame at `pa` at user address `va`. A RAM frame gains a
    /// reference; `device` memory is mapped uncached and holds none. Fails
    /// with `AlreadyExists` if `va` is mapped.
    pub fn map(&mut self, va: u64, pa: u64, access: PageAccess, device: bool) -> Result<(), Error> {
        debug_assert!(va < USER_END && va.is_multiple_of(PAGE_SIZE));
        let slot = self.leaf(va, true)?.ok_or(Error::OutOfMemory)?;
        // SAFETY: `slot` points at this space's leaf entry for `va`.
        unsafe {
            if *slot & F::PRESENT.bits() != 0 {
                return Err(Error::AlreadyExists);
            }
            let mut flags = F::PRESENT | F::USER_ACCESSIBLE;
            if access.write {
                flags |= F::WRITABLE;
            }
            if !access.execute {
                flags |= F::NO_EXECUTE;
            }
            if device {
                flags |= DEVICE | F::NO_CACHE | F::WRITE_THROUGH;
            } else {
                frames::retain(pa);
            }
            *slot = (pa & ADDR_MASK) | flags.bits();
        }
        Ok(())
    }

    /// Remove the mapping at `va`, releasing its frame. Returns whether a
    /// page was mapped there.
    pub fn unmap(&mut self, va: u64) -> bool {
        let Ok(Some(slot)) = self.leaf(va, false) else { return false };
        // SAFETY: `slot` points at this space's leaf entry for `va`.
        let raw = unsafe { core::ptr::replace(slot, 0) };
        if raw & F::PRESENT.bits() == 0 {
            return false;
        }
        if self.is_active() {
            x86_64::instructions::tlb::flush(x86_64::VirtAddr::new(va));
        }
        if raw & DEVICE.bits() == 0 {
            frames::release(raw & ADDR_MASK);
        }
        true
    }

    /// Read and clear the dirty bit of the page at `va` (false if unmapped).
    pub fn take_dirty(&mut self, va: u64) -> bool {
        let Ok(Some(slot)) = self.leaf(va, false) else { return false };
        // SAFETY: `slot` points at this space's leaf entry for `va`.
        let raw = unsafe { *slot };
        if raw & F::PRESENT.bits() == 0 || raw & F::DIRTY.bits() == 0 {
            return false;
        }
        // SAFETY: as above; clearing D only makes the CPU set it again.
        unsafe { *slot = raw & !F::DIRTY.bits() };
        if self.is_active() {
            x86_64::instructions::tlb::flush(x86_64::VirtAddr::new(va));
        }
        true
    }

    /// Map `count` pages starting at `va` to the frames `pa_of(i)`, all or
    /// nothing.
    pub fn map_range(
        &mut self,
        va: u64,
        count: u64,
        access: PageAccess,
        device: bool,
        mut pa_of: impl FnMut(u64) -> u64,
    ) -> Result<(), Error> {
        for i in 0..count {
            if self.is_mapped(va + i * PAGE_SIZE) {
                return Err(Error::AlreadyExists);
            }
        }
        for i in 0..count {
            if let Err(e) = self.map(va + i * PAGE_SIZE, pa_of(i), access, device) {
                for j in 0..i {
                    self.unmap(va + j * PAGE_SIZE);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    fn free_level(pa: u64, level: u8) {
        for i in 0..512 {
            // SAFETY: `pa` is a page table of this space (user half only).
            let raw = unsafe { *entry_word(pa, i) };
            if raw & F::PRESENT.bits() == 0 {
                continue;
            }
            let child = raw & ADDR_MASK;
            if level == 1 {
                if raw & DEVICE.bits() == 0 {
                    frames::release(child);
                }
            } else {
                Self::free_level(child, level - 1);
                frames::release(child);
            }
        }
    }
}

impl Drop for AddressSpace {
    fn drop(&mut self) {
        if self.is_active() {
            // SAFETY: the kernel PML4 maps the kernel half, all the kernel
            // needs once this space is gone.
            unsafe { Cr3::write(PhysFrame::containing_address(PhysAddr::new(kernel_pml4())), Cr3Flags::empty()) };
        }
        for i in 0..256 {
            // SAFETY: the PML4 is ours; entries below 256 are the user half.
            let raw = unsafe { *entry_word(self.pml4, i) };
            if raw & F::PRESENT.bits() != 0 {
                Self::free_level(raw & ADDR_MASK, 3);
                frames::release(raw & ADDR_MASK);
            }
        }
        frames::release(self.pml4);
        self.account.uncharge(self.table_pages);
    }
}

/// Bytes of physical memory the direct map can cover (one PML4 entry).
pub const DIRECT_MAP_SPAN: u64 = 512 << 30;

/// Drop the boot identity mapping of low memory (PML4 entry 0) so the lower
/// half is free for user space, and extend the direct map to cover RAM up to
/// `max_phys` (the boot tables cover the first 4 GiB) and the physical
/// range `also` (the screen's framebuffer, which some PCs place above
/// 4 GiB; the kernel draws its messages and panics there), up to
/// [`DIRECT_MAP_SPAN`].
pub fn finish_kernel_tables(max_phys: u64, also: core::ops::Range<u64>) -> Result<(), Error> {
    const GIB: u64 = 1 << 30;
    let ram = 4..max_phys.div_ceil(GIB).min(512);
    let extra = (also.start / GIB).max(4)..also.end.div_ceil(GIB).min(512);
    // SAFETY: the kernel PML4 and its direct-map PDPT are valid tables. The
    // kernel runs in the higher half, so dropping the identity map is safe.
    unsafe {
        let k = table(kernel_pml4());
        k[0].set_unused();
        let pdpt = k[256].addr().as_u64();
        for g in ram.clone().chain(extra.filter(|g| !ram.contains(g))) {
            let pd = frames::alloc_run(1, true).ok_or(Error::OutOfMemory)?;
            let pdt = table(pd);
            for i in 0..512u64 {
                let pa = (g << 30) + (i << 21);
                pdt[i as usize]
                    .set_addr(PhysAddr::new(pa), F::PRESENT | F::WRITABLE | F::HUGE_PAGE | F::NO_EXECUTE | F::GLOBAL);
            }
            table(pdpt)[g as usize].set_addr(PhysAddr::new(pd), F::PRESENT | F::WRITABLE);
        }
        x86_64::instructions::tlb::flush_all();
    }
    Ok(())
}
