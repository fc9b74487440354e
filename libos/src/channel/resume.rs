//! Sessions that outlive their server process: what a resumable
//! [`Channel`](super::Channel) remembers to carry its session over a
//! restart of the process that serves it (a resilient service's companion,
//! restarted by init).
//!
//! The client opens every connection with a *session hello*: a 24-byte
//! frame (`KSESSION`, a random token naming the session, the sequence
//! number of the next request). The companion names the session by the
//! token and counts requests from that number, so a request is the same
//! `(session, seq)` on both sides. When the server goes away the channel
//! connects again by name (waiting while init restarts it), says hello
//! with the same token and the number of the request still unanswered,
//! sends that request again and skips the replies it already had. The
//! companion recognises a request its previous incarnation applied (it is
//! in the durable log it restored) and answers it from the replies the
//! replay produced instead of applying it twice.
//!
//! The frame cannot be mistaken for a contract message: a message starts
//! with its variant tag, and no contract has 0x4953_454b variants.
//!
//! A hello may carry one handle: the session's *shared buffer*, a memory
//! object the client made and maps, which the companion hands to the
//! service (and to each service process it restarts) so that bulk data
//! (block payloads) moves between client and service without a copy per
//! hop. The client sends it again with every hello, so a restarted
//! companion has it too.

use alloc::string::String;
use alloc::vec::Vec;

/// The first bytes of a session hello.
pub const HELLO_MAGIC: [u8; 8] = *b"KSESSION";
/// A session hello's length.
pub const HELLO_LEN: usize = 24;

/// The hello naming session `token`, whose next request is `next_seq`.
pub fn hello(token: u64, next_seq: u64) -> [u8; HELLO_LEN] {
    let mut b = [0u8; HELLO_LEN];
    b[..8].copy_from_slice(&HELLO_MAGIC);
    b[8..16].copy_from_slice(&token.to_le_bytes());
    b[16..].copy_from_slice(&next_seq.to_le_bytes());
    b
}

/// `(token, next_seq)` if `bytes` is a session hello.
pub fn parse_hello(bytes: &[u8]) -> Option<(u64, u64)> {
    if bytes.len() != HELLO_LEN || bytes[..8] != HELLO_MAGIC {
        return None;
    }
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(w)
    };
    Some((word(8), word(16)))
}

/// What a resumable channel keeps.
pub(super) struct Resume {
    /// The service's name in the directory.
    pub name: String,
    /// The session's token.
    pub token: u64,
    /// The sequence number of the next request.
    pub next_seq: u64,
    /// The last request sent (its number and bytes) while its replies may
    /// still be owed, and how many of them were taken.
    pub pending: Option<(u64, Vec<u8>)>,
    pub taken: usize,
    /// Resumes in a row after which the server closed the session again
    /// before answering anything (a server that refuses the session).
    pub fruitless: u32,
    /// The session's shared buffer, if it has one: the object (whose
    /// handle every hello carries a duplicate of) and this side's mapping.
    pub shared: Option<(crate::handle::Memory, crate::handle::Mapping)>,
}

/// Most bytes a session's shared buffer may have (the companion refuses a
/// hello with a larger one).
pub const MAX_SHARED_BYTES: usize = 1 << 20;

/// The rights a shared buffer's handle travels with: map it, read and
/// write it, and pass it on (the companion hands it to each service
/// process); not its physical addresses.
pub const SHARED_RIGHTS: kintsugi_abi::Rights = kintsugi_abi::Rights::READ
    .union(kintsugi_abi::Rights::WRITE)
    .union(kintsugi_abi::Rights::MAP)
    .union(kintsugi_abi::Rights::DUPLICATE)
    .union(kintsugi_abi::Rights::TRANSFER);

/// Resumes in a row that bring no answer after which the session is
/// given up: a companion that restarts reconnects in one, while one that
/// refuses the connection (its client holds too many sessions) would
/// otherwise be asked again forever.
pub const MAX_FRUITLESS_RESUMES: u32 = 4;

/// A token no other session is likely to have: the clock, the pid and a
/// counter, mixed.
pub(super) fn new_token() -> u64 {
    use core::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let seed = crate::time::now_ns()
        ^ ((crate::start::pid() as u64) << 40)
        ^ COUNT.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    crate::rand::Rng::new(seed | 1).next() | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hellos_round_trip_and_nothing_else_is_one() {
        assert_eq!(parse_hello(&hello(7, 9)), Some((7, 9)));
        assert_eq!(parse_hello(&hello(7, 9)[..23]), None);
        let mut other = hello(1, 2);
        other[0] = b'X';
        assert_eq!(parse_hello(&other), None);
        assert_eq!(parse_hello(b"KSESSION"), None);
    }
}
