//! Safe access to a process's memory from the kernel.
//!
//! The kernel never dereferences a user pointer. It checks the range lies in
//! user space, translates each page through the process's own page tables
//! (requiring a mapped RAM page, and a writable one for writes) and copies
//! through the direct map. A bad pointer is an `Error::BadAddress`, never a
//! kernel fault, and the same code reads any process's memory, not only the
//! current one's.

use super::paging::{AddressSpace, Mapped};
use super::phys_to_virt;
use alloc::vec::Vec;
use kintsugi_abi::{is_user_range, Error, PAGE_SIZE};
use zerocopy::{FromBytes, IntoBytes};

fn each_chunk(
    space: &AddressSpace,
    va: u64,
    len: usize,
    write: bool,
    mut f: impl FnMut(*mut u8, usize, usize),
) -> Result<(), Error> {
    if len == 0 {
        return Ok(());
    }
    if !is_user_range(va, len as u64) {
        return Err(Error::BadAddress);
    }
    let usable = |m: &Mapped| !m.device && (!write || m.write);
    // A write checks every page first so a failed call has no partial
    // effect; a read only fills a kernel buffer that is dropped on failure,
    // so it walks the page tables once per page.
    if write {
        let end = va + len as u64;
        let mut page = va & !(PAGE_SIZE - 1);
        while page < end {
            if !space.translate(page).is_some_and(|m| usable(&m)) {
                return Err(Error::BadAddress);
            }
            page += PAGE_SIZE;
        }
    }
    let mut done = 0usize;
    while done < len {
        let cur = va + done as u64;
        let in_page = (PAGE_SIZE - (cur % PAGE_SIZE)) as usize;
        let n = in_page.min(len - done);
        let m = space.translate(cur & !(PAGE_SIZE - 1)).filter(usable).ok_or(Error::BadAddress)?;
        f(phys_to_virt(m.pa + cur % PAGE_SIZE), done, n);
        done += n;
    }
    Ok(())
}

/// Copy `out.len()` bytes from user address `va`.
pub fn read(space: &AddressSpace, va: u64, out: &mut [u8]) -> Result<(), Error> {
    let len = out.len();
    each_chunk(space, va, len, false, |src, at, n| {
        // SAFETY: `src..src+n` is inside one mapped RAM frame (checked by
        // each_chunk) and `out[at..at+n]` is in bounds.
        unsafe { core::ptr::copy_nonoverlapping(src, out.as_mut_ptr().add(at), n) }
    })
}

/// Copy `data` to user address `va` (which must be writable).
pub fn write(space: &AddressSpace, va: u64, data: &[u8]) -> Result<(), Error> {
    each_chunk(space, va, data.len(), true, |dst, at, n| {
        // SAFETY: `dst..dst+n` is inside one mapped, user-writable RAM frame
        // and `data[at..at+n]` is in bounds.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr().add(at), dst, n) }
    })
}

/// Read `len` bytes (at most `max`) into a new vector.
pub fn read_vec(space: &AddressSpace, va: u64, len: u64, max: usize) -> Result<Vec<u8>, Error> {
    if len > max as u64 {
        return Err(Error::TooLarge);
    }
    let mut v = Vec::new();
    v.try_reserve_exact(len as usize).map_err(|_| Error::OutOfMemory)?;
    v.resize(len as usize, 0);
    read(space, va, &mut v)?;
    Ok(v)
}

/// Read a plain structure.
pub fn read_struct<T: FromBytes + IntoBytes>(space: &AddressSpace, va: u64) -> Result<T, Error> {
    let mut value = T::new_zeroed();
    read(space, va, value.as_mut_bytes())?;
    Ok(value)
}

/// Write a plain structure.
pub fn write_struct<T: IntoBytes + zerocopy::Immutable>(space: &AddressSpace, va: u64, value: &T) -> Result<(), Error> {
    write(space, va, value.as_bytes())
}

/// Check that `[va, va + len)` is writable user memory, without writing.
pub fn check_writable(space: &AddressSpace, va: u64, len: usize) -> Result<(), Error> {
    each_chunk(space, va, len, true, |_, _, _| {})
}
