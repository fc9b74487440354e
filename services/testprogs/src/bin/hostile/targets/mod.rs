//! What the hostile client knows of each service it attacks: its contract
//! (the generated protocol), valid requests to mangle and where their
//! length fields are, well-formed requests that must fail, what it may
//! send without touching other clients' data, a well-behaved exchange,
//! and the request for the client that never reads.

pub mod blk;
pub mod fs;
pub mod kv;
pub mod tally;

use crate::probe::Expect;
use alloc::string::String;
use alloc::vec::Vec;
use libos::protocol::Protocol;

/// A valid request to mangle.
pub struct Seed {
    /// Its name in the report.
    pub name: &'static str,
    /// Encoded.
    pub bytes: Vec<u8>,
    /// Offsets of its u32 length and count fields.
    pub lengths: Vec<usize>,
    /// Offsets of its bool (or small enum) bytes.
    pub flags: Vec<usize>,
}

/// A service under attack.
pub trait Target {
    /// Its contract.
    type P: Protocol;
    /// The service's name.
    const NAME: &'static str;
    /// The highest request tag.
    const LAST_TAG: u8;
    /// Whether a request (that decodes) leaves other clients' data alone.
    fn safe(request: &<Self::P as Protocol>::Request) -> bool;
    /// Valid requests to mangle.
    fn seeds() -> Vec<Seed>;
    /// Requests encoded as they are (some past the contract's limits) with
    /// what each must get.
    fn crafted() -> Vec<(&'static str, Vec<u8>, Option<Expect>)>;
    /// A cheap request that changes nothing (for the floods).
    fn cheap() -> Vec<u8>;
    /// Prepare and return the request a client sends and never reads the
    /// answers of, and whether those answers overflow the session's ring
    /// (then the service must drop the session).
    fn never_read() -> Result<(Vec<u8>, bool), String>;
    /// A well-behaved exchange on a fresh connection.
    fn healthy() -> Result<(), String>;
    /// Sequences of requests on one session, judged inside; the failures.
    fn scripts() -> Vec<String> {
        Vec::new()
    }
}
