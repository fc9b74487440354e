//! Owning handle types: a handle closed when its owner is dropped, and typed
//! wrappers for each kind of kernel object.

use crate::sys;
use kintsugi_abi::{Error, Handle, MapFlags, MemFlags, ProcessInfo, Rights, PAGE_SIZE};

/// A handle this program owns; closed on drop.
#[derive(Debug)]
pub struct OwnedHandle(Handle);

impl OwnedHandle {
    /// Take ownership of a raw handle.
    pub fn from_raw(h: Handle) -> OwnedHandle {
        OwnedHandle(h)
    }

    /// The raw handle (still owned).
    pub fn raw(&self) -> Handle {
        self.0
    }

    /// Give up ownership without closing.
    pub fn into_raw(self) -> Handle {
        let h = self.0;
        core::mem::forget(self);
        h
    }

    /// A second handle with `rights`.
    pub fn duplicate(&self, rights: Rights) -> Result<OwnedHandle, Error> {
        sys::handle_duplicate(self.0, rights).map(OwnedHandle)
    }

    /// The rights this handle carries.
    pub fn rights(&self) -> Result<Rights, Error> {
        sys::handle_info(self.0).map(|(_, r)| r)
    }
}

impl Drop for OwnedHandle {
    fn drop(&mut self) {
        let _ = sys::handle_close(self.0);
    }
}

/// An event: a 64-bit signal word.
#[derive(Debug)]
pub struct Event(pub OwnedHandle);

impl Event {
    /// A new event.
    pub fn new() -> Result<Event, Error> {
        sys::event_create().map(|h| Event(OwnedHandle(h)))
    }

    /// Set bits.
    pub fn signal(&self, bits: u64) -> Result<(), Error> {
        sys::event_signal(self.0.raw(), bits)
    }

    /// Wait for bits (or the timeout); returns and clears them.
    pub fn wait(&self, timeout_ns: u64) -> Result<u64, Error> {
        sys::event_wait(&[self.0.raw()], timeout_ns).map(|(_, bits)| bits)
    }

    /// Take the bits set now without waiting (0 if none).
    pub fn poll(&self) -> u64 {
        match self.wait(0) {
            Ok(bits) => bits,
            Err(_) => 0,
        }
    }

    /// The raw handle.
    pub fn raw(&self) -> Handle {
        self.0.raw()
    }
}

/// A memory object.
#[derive(Debug)]
pub struct Memory(pub OwnedHandle);

impl Memory {
    /// Allocate `pages` zeroed pages.
    pub fn alloc(pages: u64, flags: MemFlags) -> Result<Memory, Error> {
        sys::mem_alloc(pages, flags).map(|h| Memory(OwnedHandle(h)))
    }

    /// Size in pages.
    pub fn pages(&self) -> Result<u64, Error> {
        sys::mem_size(self.0.raw())
    }

    /// Physical address of page `i`.
    pub fn phys(&self, i: u64) -> Result<u64, Error> {
        sys::mem_phys(self.0.raw(), i)
    }

    /// Map the whole object somewhere free in this process.
    pub fn map(&self, flags: MapFlags) -> Result<Mapping, Error> {
        let pages = self.pages()?;
        let va = crate::vm::reserve(pages)?;
        match sys::mem_map(Handle::SELF, self.0.raw(), 0, va, pages, flags) {
            Ok(()) => Ok(Mapping { va, pages }),
            Err(e) => {
                crate::vm::release(va, pages);
                Err(e)
            }
        }
    }

    /// The raw handle.
    pub fn raw(&self) -> Handle {
        self.0.raw()
    }
}

/// A range of this process's address space mapped by [`Memory::map`];
/// unmapped when dropped.
#[derive(Debug)]
pub struct Mapping {
    va: u64,
    pages: u64,
}

impl Mapping {
    /// Take over a range mapped by other means (e.g. `ProcessMapChild`) at an
    /// address from `vm::reserve`.
    pub fn adopt(va: u64, pages: u64) -> Mapping {
        Mapping { va, pages }
    }

    /// Start address.
    pub fn addr(&self) -> u64 {
        self.va
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        (self.pages * PAGE_SIZE) as usize
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.pages == 0
    }

    /// Raw pointer to the start.
    pub fn as_ptr(&self) -> *mut u8 {
        self.va as *mut u8
    }

    /// The mapped bytes.
    ///
    /// # Safety
    /// Another process may write the memory concurrently; only use this for
    /// memory no one else writes while the slice lives.
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: the range is mapped for the life of self; aliasing is the
        // caller's promise.
        unsafe { core::slice::from_raw_parts(self.as_ptr(), self.len()) }
    }

    /// The mapped bytes, writable.
    ///
    /// # Safety
    /// As for [`Mapping::as_slice`], and the mapping must be writable.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn as_mut_slice(&self) -> &mut [u8] {
        // SAFETY: as above.
        unsafe { core::slice::from_raw_parts_mut(self.as_ptr(), self.len()) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping owns the range; nothing borrows it past drop.
        let _ = unsafe { sys::mem_unmap(Handle::SELF, self.va, self.pages) };
        crate::vm::release(self.va, self.pages);
    }
}

/// A process.
#[derive(Debug)]
pub struct Process(pub OwnedHandle);

impl Process {
    /// Its status.
    pub fn info(&self) -> Result<ProcessInfo, Error> {
        sys::process_info(self.0.raw())
    }

    /// Kill it.
    pub fn kill(&self) -> Result<(), Error> {
        sys::process_kill(self.0.raw())
    }

    /// Start it (if spawned suspended).
    pub fn start(&self) -> Result<(), Error> {
        sys::process_start(self.0.raw())
    }

    /// Signal `event` with `bits` when it ends.
    pub fn watch(&self, event: &Event, bits: u64) -> Result<(), Error> {
        sys::process_watch(self.0.raw(), event.raw(), bits)
    }

    /// The raw handle.
    pub fn raw(&self) -> Handle {
        self.0.raw()
    }
}
