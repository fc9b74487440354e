//! Owning handle types: a handle closed when its owner is dropped, and typed
//! wrappers for each kind of kernel object.

use crate::memcpy::copy_bytes;
use crate::sys;
use alloc::vec::Vec;
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
        self.wait(0).unwrap_or_default()
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
            Ok(()) => Ok(Mapping { va, pages, writable: flags.contains(MapFlags::WRITE) }),
            Err(e) => {
                crate::vm::release(va, pages);
                Err(e)
            }
        }
    }

    /// A new object of whole pages (at least one) holding `bytes` at its
    /// start, zeros after them.
    pub fn from_bytes(bytes: &[u8]) -> Result<Memory, Error> {
        let pages = (bytes.len() as u64).div_ceil(PAGE_SIZE).max(1);
        let memory = Memory::alloc(pages, MemFlags::empty())?;
        memory.map(MapFlags::WRITE)?.copy_in(0, bytes)?;
        Ok(memory)
    }

    /// A copy of the object's first `len` bytes, each read once: the
    /// object may be another process's to write, and only the copy is
    /// used. [`Error::InvalidArgument`] if the object is smaller.
    pub fn read(&self, len: u64) -> Result<Vec<u8>, Error> {
        let map = self.map(MapFlags::empty())?;
        let len = usize::try_from(len).map_err(|_| Error::InvalidArgument)?;
        map.copy_out_vec(0, len)
    }

    /// Copy out the first `len` bytes as two buffers, split at `at` (a
    /// state and the epoch after it, say), each byte copied once: reading
    /// the whole and splitting the Vec would copy the tail twice.
    pub fn read_split(&self, at: u64, len: u64) -> Result<(Vec<u8>, Vec<u8>), Error> {
        if at > len {
            return Err(Error::InvalidArgument);
        }
        let map = self.map(MapFlags::empty())?;
        let (at, len) = (
            usize::try_from(at).map_err(|_| Error::InvalidArgument)?,
            usize::try_from(len).map_err(|_| Error::InvalidArgument)?,
        );
        Ok((map.copy_out_vec(0, at)?, map.copy_out_vec(at, len - at)?))
    }

    /// The raw handle.
    pub fn raw(&self) -> Handle {
        self.0.raw()
    }
}

/// A range of this process's address space mapped by [`Memory::map`];
/// unmapped when dropped.
///
/// Its bytes are only reached by copying ([`Mapping::copy_out`],
/// [`Mapping::copy_in`]), never as a `&[u8]`: the memory may be shared
/// with another process that writes it at any time, and a slice the
/// compiler believes immutable could change underneath (a check on one
/// read and a use of another). Each byte is read or written once, with
/// volatile accesses.
#[derive(Debug)]
pub struct Mapping {
    va: u64,
    pages: u64,
    writable: bool,
}

impl Mapping {
    /// Take over a range mapped read-only by other means (e.g.
    /// `ProcessMapChild`) at an address from `vm::reserve`.
    pub fn adopt(va: u64, pages: u64) -> Mapping {
        Mapping { va, pages, writable: false }
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

    /// Raw pointer to the start (for libraries that lay out shared
    /// structures themselves, such as channel rings and DMA buffers).
    pub fn as_ptr(&self) -> *mut u8 {
        self.va as *mut u8
    }

    /// The range `offset..offset + len` if it lies inside the mapping.
    fn range(&self, offset: usize, len: usize) -> Result<*mut u8, Error> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len() => Ok(self.as_ptr().wrapping_add(offset)),
            _ => Err(Error::InvalidArgument),
        }
    }

    /// Copy `buf.len()` bytes from `offset` into `buf`, reading each byte
    /// once. [`Error::InvalidArgument`] if the range leaves the mapping.
    pub fn copy_out(&self, offset: usize, buf: &mut [u8]) -> Result<(), Error> {
        let src = self.range(offset, buf.len())?;
        // SAFETY: `src..src + buf.len()` is inside the mapping, which stays
        // mapped while `self` lives; `copy_bytes` reads each byte once (it
        // is assembly), valid whatever another process writes meanwhile.
        unsafe { copy_bytes(buf.as_mut_ptr(), src, buf.len()) };
        Ok(())
    }

    /// `len` bytes from `offset` as a new Vec, each byte read once (and the
    /// Vec not zeroed first: for the MiBs of an epoch that was a memset as
    /// long as the copy). [`Error::InvalidArgument`] if the range leaves
    /// the mapping, checked before anything is allocated.
    pub fn copy_out_vec(&self, offset: usize, len: usize) -> Result<Vec<u8>, Error> {
        let src = self.range(offset, len)?;
        let mut out: Vec<u8> = Vec::with_capacity(len);
        // SAFETY: `src..src + len` is inside the mapping (checked above),
        // which stays mapped while `self` lives; `out` has room for `len`
        // bytes, which the copy writes every one of before `set_len`.
        unsafe {
            copy_bytes(out.as_mut_ptr(), src, len);
            out.set_len(len);
        }
        Ok(out)
    }

    /// Copy `bytes` to `offset`, writing each byte once.
    /// [`Error::InvalidArgument`] if the range leaves the mapping,
    /// [`Error::AccessDenied`] if the mapping is not writable.
    pub fn copy_in(&self, offset: usize, bytes: &[u8]) -> Result<(), Error> {
        if !self.writable {
            return Err(Error::AccessDenied);
        }
        let dst = self.range(offset, bytes.len())?;
        // SAFETY: `dst..dst + bytes.len()` is inside the mapping, mapped
        // writable while `self` lives; no reference into it exists (the
        // mapping hands out none).
        unsafe { copy_bytes(dst, bytes.as_ptr(), bytes.len()) };
        Ok(())
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
