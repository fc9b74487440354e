//! Where `ReadShared` puts the bytes it reads: the client sessions' shared
//! buffers. In the guest they are the runtime's (`resiliency_lib::shared`,
//! memory the client maps too); [`Fs`](crate::Fs) reaches them through
//! [`SharedBuffers`], so the engine stays a host-testable library.

use alloc::string::String;

/// Why bytes could not go to a session's shared buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SharedError {
    /// The session has no shared buffer.
    NoBuffer,
    /// The bytes run past the buffer's end (its length).
    PastEnd(usize),
    /// Copying failed (what happened).
    Failed(String),
}

/// The sessions' shared buffers.
pub trait SharedBuffers {
    /// Copy `data` to byte `at` of session `session`'s shared buffer.
    fn put(&self, session: u64, at: usize, data: &[u8]) -> Result<(), SharedError>;
}

/// No session has a shared buffer (a service without a runtime behind it).
pub struct NoSharedBuffers;

impl SharedBuffers for NoSharedBuffers {
    fn put(&self, _session: u64, _at: usize, _data: &[u8]) -> Result<(), SharedError> {
        Err(SharedError::NoBuffer)
    }
}
