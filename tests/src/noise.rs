//! Test data: pseudo-random bytes that a test can make again from a seed.

/// `len` pseudo-random bytes (xorshift from `seed`), so a file has every
/// byte value.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
