//! The state arena: a region at a fixed address ([`ARENA_BASE`]) with its
//! own allocator whose metadata lives inside the region.
//!
//! A resilient service keeps the state it wants captured here. Because the
//! program image and the arena address are identical in every run, a byte
//! copy of the arena (including the allocator's free lists at its start) is
//! a valid state for a fresh process of the same program: image distillation
//! copies it out, and restoring copies it back before the service starts.

use crate::sys;
use crate::vm::{ARENA_BASE, ARENA_MAX};
use buddy_system_allocator::Heap;
use core::alloc::Layout;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};
use kintsugi_abi::{Error, Handle, MapFlags, MemFlags, PAGE_SIZE};
use zerocopy::{FromBytes, FromZeros};

/// Bytes at the start of the arena reserved for its allocator's state.
const HEADER: u64 = PAGE_SIZE;
const MAGIC: u64 = 0x4b41_5245_4e41_0001; // "KARENA" v1

#[repr(C)]
struct ArenaHeader {
    magic: u64,
    pages: u64,
    root: u64,
    heap: Heap<32>,
}

/// Handle to the arena of this process.
pub struct Arena {
    pages: u64,
}

static ARENA: spin::Mutex<Option<Arena>> = spin::Mutex::new(None);

/// Whether the program's global allocator takes from the arena.
static GLOBAL_HEAP: AtomicBool = AtomicBool::new(false);

fn header() -> *mut ArenaHeader {
    ARENA_BASE as *mut ArenaHeader
}

/// Create the arena with `pages` pages, fresh and empty, or (if `restored`)
/// adopt the bytes a supervisor already mapped there (checking its header).
pub fn init(pages: u64, restored: bool) -> Result<(), Error> {
    if pages * PAGE_SIZE > ARENA_MAX || pages < 2 {
        return Err(Error::InvalidArgument);
    }
    let mut g = ARENA.lock();
    if g.is_some() {
        return Err(Error::AlreadyExists);
    }
    if restored {
        // SAFETY: the supervisor mapped a checkpointed arena at ARENA_BASE;
        // its header is checked before use.
        let h = unsafe { &*header() };
        if h.magic != MAGIC || h.pages != pages {
            return Err(Error::InvalidArgument);
        }
    } else {
        let mem = sys::mem_alloc(pages, MemFlags::empty())?;
        let mapped = sys::mem_map(Handle::SELF, mem, 0, ARENA_BASE, pages, MapFlags::WRITE);
        let _ = sys::handle_close(mem);
        mapped?;
        // SAFETY: the arena was just mapped, zeroed, and is ours alone.
        unsafe {
            let h = &mut *header();
            h.magic = MAGIC;
            h.pages = pages;
            h.root = 0;
            core::ptr::write(&mut h.heap, Heap::new());
            h.heap.init((ARENA_BASE + HEADER) as usize, ((pages * PAGE_SIZE) - HEADER) as usize);
        }
    }
    *g = Some(Arena { pages });
    Ok(())
}

/// Allocate from the arena.
pub fn alloc(layout: Layout) -> Option<NonNull<u8>> {
    let g = ARENA.lock();
    g.as_ref()?;
    // SAFETY: the arena is mapped (init succeeded); the lock serialises use.
    unsafe { (*header()).heap.alloc(layout).ok() }
}

/// Free an arena allocation.
///
/// # Safety
/// `ptr` must come from [`alloc`] with the same layout.
pub unsafe fn dealloc(ptr: NonNull<u8>, layout: Layout) {
    let g = ARENA.lock();
    if g.is_some() {
        // SAFETY: per the contract.
        unsafe { (*header()).heap.dealloc(ptr, layout) }
    }
}

/// The root pointer a service stores to find its state again after a
/// restore (0 if unset).
pub fn root() -> u64 {
    if ARENA.lock().is_none() {
        return 0;
    }
    // SAFETY: the arena header is mapped.
    unsafe { (*header()).root }
}

/// Set the root pointer.
pub fn set_root(value: u64) {
    if ARENA.lock().is_some() {
        // SAFETY: the arena header is mapped and writable.
        unsafe { (*header()).root = value };
    }
}

/// Whether the root object was handed out (as `&'static mut`, so once).
static ROOT_TAKEN: AtomicBool = AtomicBool::new(false);

/// A fresh zeroed `T` allocated in the arena and made its root: the
/// state of an image-distilled service. Once per process (the reference
/// is the only one); fails without an arena, without room, or a second
/// time.
pub fn create_root<T: FromZeros>() -> Result<&'static mut T, Error> {
    if ROOT_TAKEN.swap(true, Ordering::AcqRel) {
        return Err(Error::AlreadyExists);
    }
    let layout = Layout::new::<T>();
    let Some(ptr) = alloc(layout) else {
        ROOT_TAKEN.store(false, Ordering::Release);
        return Err(Error::OutOfMemory);
    };
    let object = ptr.as_ptr() as *mut T;
    // SAFETY: a fresh arena allocation of T's size and alignment, which
    // nothing else references; all-zero bytes are a valid T (FromZeros).
    unsafe { core::ptr::write_bytes(object as *mut u8, 0, layout.size()) };
    set_root(object as u64);
    // SAFETY: valid and initialised (above); the arena stays mapped for the
    // life of the process, and ROOT_TAKEN makes this the only reference.
    Ok(unsafe { &mut *object })
}

/// The `T` at the root of a restored arena (after `init(pages, true)`):
/// the state an image-distilled service left there. Once per process; fails
/// if the root does not point at a whole, aligned `T` inside the arena.
/// Any bytes are a valid `T` (FromBytes); the service checks its own
/// invariants.
pub fn adopt_root<T: FromBytes>() -> Result<&'static mut T, Error> {
    let (base, pages) = range().ok_or(Error::NotFound)?;
    let at = root();
    let size = core::mem::size_of::<T>() as u64;
    let inside = at >= base + HEADER && at.checked_add(size).is_some_and(|end| end <= base + pages * PAGE_SIZE);
    if !inside || !at.is_multiple_of(core::mem::align_of::<T>() as u64) {
        return Err(Error::InvalidArgument);
    }
    if ROOT_TAKEN.swap(true, Ordering::AcqRel) {
        return Err(Error::AlreadyExists);
    }
    // SAFETY: a whole, aligned T inside the mapped arena past its header
    // (checked above); any bytes are a valid T; the arena stays mapped for
    // the life of the process, and ROOT_TAKEN makes this the only
    // reference.
    Ok(unsafe { &mut *(at as *mut T) })
}

/// A value [`keep_root`] put in the arena: its tag and layout, checked by
/// [`adopt_kept`], then the value.
#[repr(C)]
struct Kept<T> {
    tag: u64,
    size: u64,
    align: u64,
    value: T,
}

/// Move `value` into the arena and make it the root, tagged `tag` (a
/// number the program chooses for the type): the state of an
/// image-distilled service that is not plain bytes (it holds pointers into
/// the arena, as smoltcp's structures do). Once per process; fails without
/// an arena, without room, or a second time.
pub fn keep_root<T>(tag: u64, value: T) -> Result<&'static mut T, Error> {
    if ROOT_TAKEN.swap(true, Ordering::AcqRel) {
        return Err(Error::AlreadyExists);
    }
    let layout = Layout::new::<Kept<T>>();
    let Some(ptr) = alloc(layout) else {
        ROOT_TAKEN.store(false, Ordering::Release);
        return Err(Error::OutOfMemory);
    };
    let kept = ptr.as_ptr() as *mut Kept<T>;
    let size = core::mem::size_of::<T>() as u64;
    let align = core::mem::align_of::<T>() as u64;
    // SAFETY: a fresh arena allocation of Kept<T>'s size and alignment,
    // which nothing else references.
    unsafe { core::ptr::write(kept, Kept { tag, size, align, value }) };
    set_root(kept as u64);
    // SAFETY: initialised just above; the arena stays mapped for the life
    // of the process, and ROOT_TAKEN makes this the only reference.
    Ok(unsafe { &mut (*kept).value })
}

/// The value [`keep_root`] left at the root of a restored arena (after
/// `init(pages, true)`), if the root points at a whole, aligned `Kept<T>`
/// inside the arena with tag `tag` and `T`'s size and alignment. Once per
/// process.
///
/// This trusts what the arena's design promises (module doc): a restored
/// arena is a byte copy of an arena of this same program, at the same
/// address, taken by its supervisor between two of the service's requests
/// (no reference into it in use), so the value there is the `T` the
/// program kept, with its pointers into the arena intact. The tag and the
/// layout catch an arena of another type or program version; the service
/// checks its own invariants on top.
pub fn adopt_kept<T>(tag: u64) -> Result<&'static mut T, Error> {
    let (base, pages) = range().ok_or(Error::NotFound)?;
    let at = root();
    let size = core::mem::size_of::<Kept<T>>() as u64;
    let inside = at >= base + HEADER && at.checked_add(size).is_some_and(|end| end <= base + pages * PAGE_SIZE);
    if !inside || !at.is_multiple_of(core::mem::align_of::<Kept<T>>() as u64) {
        return Err(Error::InvalidArgument);
    }
    let kept = at as *mut Kept<T>;
    // SAFETY: a whole, aligned Kept<T> inside the mapped arena (checked
    // above); its first three fields are plain u64s, valid for any bytes.
    let (t, s, a) = unsafe { ((*kept).tag, (*kept).size, (*kept).align) };
    if t != tag || s != core::mem::size_of::<T>() as u64 || a != core::mem::align_of::<T>() as u64 {
        return Err(Error::InvalidArgument);
    }
    if ROOT_TAKEN.swap(true, Ordering::AcqRel) {
        return Err(Error::AlreadyExists);
    }
    // SAFETY: the value is the T keep_root wrote in an arena of this same
    // program, copied byte for byte at the same address while unused (the
    // arena's premise, above; tag and layout checked); the arena stays
    // mapped for the life of the process, and ROOT_TAKEN makes this the
    // only reference.
    Ok(unsafe { &mut (*kept).value })
}

/// The arena's address range, `(base, pages)`, if it exists.
pub fn range() -> Option<(u64, u64)> {
    ARENA.lock().as_ref().map(|a| (ARENA_BASE, a.pages))
}

/// Bytes allocated from the arena.
pub fn used_bytes() -> usize {
    if ARENA.lock().is_none() {
        return 0;
    }
    // SAFETY: the arena header is mapped.
    unsafe { (*header()).heap.stats_alloc_actual() }
}

/// From now on, every allocation of the program (`Box`, `Vec`, anything
/// through the global allocator) comes from the arena, so a library whose
/// state cannot be serialised (smoltcp) keeps it there without knowing.
/// Memory allocated before stays where it is and is freed there. Fails if
/// there is no arena.
pub fn hold_global_heap() -> Result<(), Error> {
    if ARENA.lock().is_none() {
        return Err(Error::NotFound);
    }
    GLOBAL_HEAP.store(true, Ordering::Release);
    Ok(())
}

/// Whether the global allocator takes from the arena.
pub fn holds_global_heap() -> bool {
    GLOBAL_HEAP.load(Ordering::Acquire)
}

/// Whether `ptr` points into the arena's address range.
pub fn contains(ptr: *const u8) -> bool {
    (ARENA_BASE..ARENA_BASE + ARENA_MAX).contains(&(ptr as u64))
}
