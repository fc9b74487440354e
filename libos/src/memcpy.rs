//! `memcpy` for user programs: the copy every message, ring and buffer
//! goes through, made to suit the emulator's software TLB.
//!
//! Under QEMU's TCG every guest memory access goes through a software TLB
//! that is direct-mapped by virtual page number (`(va >> 12) & (entries -
//! 1)`, at least 64 entries, resized on the fly), backed by a small victim
//! TLB reached only through a helper call. A copy whose source and
//! destination pages fall on the same entry evicts one with the other at
//! every switch between loading and storing. Such collisions are common
//! here: the heap's buddy allocator and the mapping region both hand out
//! large, power-of-two-aligned blocks at round addresses, so a message
//! buffer and a channel ring or a DMA staging buffer often sit a multiple
//! of 64 pages apart. blk's copies between its DMA staging buffers and its
//! message buffers were 40 % of its time.
//!
//! The built-in `memcpy` is `rep movsq`, which alternates a load and a
//! store every 8 bytes. This one moves 64 bytes at a time through eight
//! registers: eight loads, then eight stores, so a collision costs two
//! switches per 64 bytes instead of sixteen. Measured under TCG (`bench
//! copy`, 64 KiB from the heap, medians): `rep movsq` 17.5 us, or 218 us
//! when the pages collide; the 64-byte blocks 11.6 us, or 40 us when they
//! collide. Copies shorter than a block stay `rep movsb`/`rep movsq`. This
//! symbol takes the place of the built-in one (which is weak); `memmove`,
//! `memset` and `memcmp` stay the built-in ones. Written by hand because
//! no crate tunes a copy for this emulator; on hardware the block loop is
//! an ordinary unrolled copy.

/// Bytes per block of [`copy_blocks`].
const BLOCK: usize = 64;

/// `n` bytes from `src` to `dst` with `rep movsq` and `rep movsb`.
///
/// # Safety
/// As `memcpy`: both ranges valid for `n` bytes, not overlapping.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn rep_movs(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: the caller guarantees both ranges; the direction flag is clear
    // (the ABI requires it on every call); rcx, rsi and rdi are declared.
    unsafe {
        core::arch::asm!(
            "rep movsq",
            "mov ecx, {tail:e}",
            "rep movsb",
            tail = in(reg) n % 8,
            inout("rcx") n / 8 => _,
            inout("rdi") dst => _,
            inout("rsi") src => _,
            options(nostack, preserves_flags)
        );
    }
}

/// `blocks` blocks of [`BLOCK`] bytes, each loaded whole into registers
/// before it is stored: two switches of TLB entry per block when the
/// sides collide.
///
/// # Safety
/// As `memcpy`, for `blocks * 64` bytes.
#[cfg(target_arch = "x86_64")]
unsafe fn copy_blocks(dst: *mut u8, src: *const u8, blocks: usize) {
    if blocks == 0 {
        return;
    }
    // SAFETY: the caller guarantees both ranges; every register the loop
    // uses is declared.
    unsafe {
        core::arch::asm!(
            "2:",
            "mov rax, [rsi]",
            "mov rdx, [rsi + 8]",
            "mov r8, [rsi + 16]",
            "mov r9, [rsi + 24]",
            "mov r10, [rsi + 32]",
            "mov r11, [rsi + 40]",
            "mov r12, [rsi + 48]",
            "mov r13, [rsi + 56]",
            "mov [rdi], rax",
            "mov [rdi + 8], rdx",
            "mov [rdi + 16], r8",
            "mov [rdi + 24], r9",
            "mov [rdi + 32], r10",
            "mov [rdi + 40], r11",
            "mov [rdi + 48], r12",
            "mov [rdi + 56], r13",
            "add rsi, 64",
            "add rdi, 64",
            "dec rcx",
            "jnz 2b",
            inout("rcx") blocks => _,
            inout("rdi") dst => _,
            inout("rsi") src => _,
            out("rax") _,
            out("rdx") _,
            out("r8") _,
            out("r9") _,
            out("r10") _,
            out("r11") _,
            out("r12") _,
            out("r13") _,
            options(nostack)
        );
    }
}

/// Copy `n` bytes from `src` to `dst`, reading each source byte exactly
/// once (the copy is assembly the compiler cannot re-read from): for
/// memory another process may write while we copy (a channel's or a
/// checkpoint's pages), as for any other.
///
/// # Safety
/// `src` valid for reads and `dst` for writes of `n` bytes, not
/// overlapping.
#[cfg(target_arch = "x86_64")]
pub unsafe fn copy_bytes(dst: *mut u8, src: *const u8, n: usize) {
    let blocks = n / BLOCK;
    let done = blocks * BLOCK;
    // SAFETY: the blocks and the tail after them lie inside the caller's
    // ranges.
    unsafe {
        copy_blocks(dst, src, blocks);
        rep_movs(dst.add(done), src.add(done), n - done);
    }
}

/// The C `memcpy` every copy of the program ends in.
///
/// # Safety
/// `dst` and `src` valid for `n` bytes and not overlapping.
#[cfg(all(target_os = "none", target_arch = "x86_64"))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: forwarded with the caller's guarantees.
    unsafe { copy_bytes(dst, src, n) };
    dst
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn copies_every_byte_at_every_length_and_offset() {
        for n in [0usize, 1, 7, 8, 63, 64, 65, 127, 128, 511, 512, 513, 4095, 70_000] {
            let src: std::vec::Vec<u8> = (0..n + 8).map(|i| (i * 7 + 3) as u8).collect();
            for (from, to) in [(0, 0), (3, 0), (0, 5), (1, 7)] {
                let mut dst = std::vec![0u8; n + 16];
                // SAFETY: both buffers hold `n` bytes from the given starts.
                unsafe { copy_bytes(dst.as_mut_ptr().add(to), src.as_ptr().add(from), n) };
                assert_eq!(&dst[to..to + n], &src[from..from + n], "{n} bytes from {from} to {to}");
                assert!(dst[..to].iter().chain(&dst[to + n..]).all(|&b| b == 0), "{n} bytes: outside");
            }
        }
    }

    /// Every pair of start offsets within a word, and short lengths (what
    /// `Mapping`'s copies relied on from their earlier word loop).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn copies_any_alignment_and_length() {
        let src: std::vec::Vec<u8> = (0..64u8).collect();
        for from in 0..9 {
            for to in 0..9 {
                for len in [0, 1, 7, 8, 9, 23, 40] {
                    let mut dst = std::vec![0xeeu8; 64];
                    // SAFETY: both ranges lie inside their 64-byte vectors.
                    unsafe { copy_bytes(dst.as_mut_ptr().add(to), src.as_ptr().add(from), len) };
                    assert_eq!(&dst[to..to + len], &src[from..from + len]);
                    assert!(dst[..to].iter().chain(&dst[to + len..]).all(|b| *b == 0xee));
                }
            }
        }
    }
}
