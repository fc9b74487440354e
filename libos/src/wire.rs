//! The byte encoding of message fields: little-endian integers, and byte
//! strings as a `u32` length followed by the bytes. [`Writer`] appends;
//! [`Reader`] checks every length against what is left and fails with a
//! [`DecodeError`] instead of panicking, whatever the bytes are.

use alloc::string::String;
use alloc::vec::Vec;

/// Why bytes did not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes ended before the message did.
    Truncated,
    /// A tag, length or value is not allowed.
    Invalid,
    /// Bytes were left over after the message.
    Trailing,
    /// The message needs more handles than arrived with it.
    MissingHandle,
    /// More handles arrived with the message than it names.
    ExtraHandles,
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            DecodeError::Truncated => "message truncated",
            DecodeError::Invalid => "invalid message",
            DecodeError::Trailing => "trailing bytes in message",
            DecodeError::MissingHandle => "message lacks a handle",
            DecodeError::ExtraHandles => "handles the message does not name came with it",
        })
    }
}

/// Appends fields to a byte buffer.
#[derive(Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Writer {
        Writer { buf: Vec::new() }
    }

    /// An empty message with room for `bytes` bytes (so a large one is
    /// not copied again as it grows).
    pub fn with_capacity(bytes: usize) -> Writer {
        Writer { buf: Vec::with_capacity(bytes) }
    }

    /// A byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// A bool as one byte.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(v as u8)
    }

    /// A u32.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A u64.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// An i64.
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.u64(v as u64)
    }

    /// A length-prefixed byte string.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.u32(v.len() as u32);
        self.buf.extend_from_slice(v);
        self
    }

    /// A length-prefixed UTF-8 string.
    pub fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }

    /// Raw bytes with no length.
    pub fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }

    /// A writer appending to `buf` after clearing it (reusing its
    /// capacity: no allocation per message).
    pub fn reuse(mut buf: Vec<u8>) -> Writer {
        buf.clear();
        Writer { buf }
    }

    /// The encoded bytes.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }

    /// The bytes so far.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }
}

/// Reads fields from untrusted bytes.
pub struct Reader<'a> {
    buf: &'a [u8],
    /// Whether [`Reader::bytes_vec`] skips what it checked (see
    /// [`Reader::checking`]).
    skip_bulk: bool,
}

impl<'a> Reader<'a> {
    /// Read from `buf`.
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, skip_bulk: false }
    }

    /// Read from `buf` only to check it: [`Reader::bytes_vec`] checks each
    /// byte string's length as always but skips its bytes and returns it
    /// empty. For a decode whose result is looked at for its kind and not
    /// its data: the companion checking a message against the protocol,
    /// which would otherwise copy every 64 KiB payload once more just to
    /// drop it.
    pub fn checking(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, skip_bulk: true }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// A byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// A bool (0 or 1).
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::Invalid),
        }
    }

    /// A u32.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A u64.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// An i64.
    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(self.u64()? as i64)
    }

    /// `n` raw bytes (no length prefix).
    pub fn take_bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        self.take(n)
    }

    /// A length-prefixed byte string of at most `max` bytes.
    pub fn bytes(&mut self, max: usize) -> Result<&'a [u8], DecodeError> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(DecodeError::Invalid);
        }
        self.take(n)
    }

    /// A length-prefixed byte string, copied (checked and left empty by a
    /// [`Reader::checking`]).
    pub fn bytes_vec(&mut self, max: usize) -> Result<Vec<u8>, DecodeError> {
        let b = self.bytes(max)?;
        Ok(if self.skip_bulk { Vec::new() } else { b.to_vec() })
    }

    /// A length-prefixed UTF-8 string of at most `max` bytes.
    pub fn string(&mut self, max: usize) -> Result<String, DecodeError> {
        let b = self.bytes(max)?;
        core::str::from_utf8(b).map(String::from).map_err(|_| DecodeError::Invalid)
    }

    /// The rest of the bytes.
    pub fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.buf)
    }

    /// Fail unless every byte was consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Trailing)
        }
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends at a
/// character boundary: a string cut to a contract's maximum length
/// (`String::truncate` and slicing panic inside a character).
pub fn char_prefix(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_checking_reader_checks_byte_strings_and_skips_them() {
        let mut w = Writer::new();
        w.bytes(&[7; 100]).u32(42);
        let msg = w.finish();
        let mut r = Reader::checking(&msg);
        assert_eq!(r.bytes_vec(100), Ok(Vec::new()));
        assert_eq!(r.u32(), Ok(42));
        assert_eq!(r.finish(), Ok(()));
        // Lengths are checked as when copying: over the maximum, or past
        // the end of the message.
        assert_eq!(Reader::checking(&msg).bytes_vec(99), Err(DecodeError::Invalid));
        assert_eq!(Reader::checking(&msg[..50]).bytes_vec(100), Err(DecodeError::Truncated));
        assert_eq!(Reader::new(&msg).bytes_vec(100), Ok(alloc::vec![7; 100]));
    }

    #[test]
    fn prefixes_end_at_character_boundaries() {
        assert_eq!(char_prefix("héllo", 2), "h");
        assert_eq!(char_prefix("héllo", 3), "hé");
        assert_eq!(char_prefix("héllo", 99), "héllo");
        assert_eq!(char_prefix("€", 2), "");
    }

    #[test]
    fn round_trip() {
        let mut w = Writer::new();
        w.u8(7).bool(true).u32(0xdead_beef).u64(u64::MAX).i64(-5).bytes(b"abc").str("héllo");
        let buf = w.finish();
        let mut r = Reader::new(&buf);
        assert_eq!(r.u8(), Ok(7));
        assert_eq!(r.bool(), Ok(true));
        assert_eq!(r.u32(), Ok(0xdead_beef));
        assert_eq!(r.u64(), Ok(u64::MAX));
        assert_eq!(r.i64(), Ok(-5));
        assert_eq!(r.bytes(10), Ok(&b"abc"[..]));
        assert_eq!(r.string(10).as_deref(), Ok("héllo"));
        assert_eq!(r.finish(), Ok(()));
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(Reader::new(&[1, 2]).u32(), Err(DecodeError::Truncated));
        assert_eq!(Reader::new(&[2]).bool(), Err(DecodeError::Invalid));
        assert_eq!(Reader::new(&[5, 0, 0, 0, 1]).bytes(10), Err(DecodeError::Truncated));
        assert_eq!(Reader::new(&[50, 0, 0, 0]).bytes(10), Err(DecodeError::Invalid));
        assert_eq!(Reader::new(&[1, 0, 0, 0, 0xff]).string(10), Err(DecodeError::Invalid));
        let r = Reader::new(&[1]);
        assert_eq!(r.finish(), Err(DecodeError::Trailing));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut r = Reader::new(&bytes);
            let _ = r.u8();
            let _ = r.bytes(16);
            let _ = r.string(16);
            let _ = r.u64();
        }

        #[test]
        fn strings_round_trip(s in ".{0,40}", n in any::<u64>()) {
            let mut w = Writer::new();
            w.str(&s).u64(n);
            let buf = w.finish();
            let mut r = Reader::new(&buf);
            prop_assert_eq!(r.string(1000).unwrap(), s);
            prop_assert_eq!(r.u64().unwrap(), n);
            prop_assert!(r.finish().is_ok());
        }
    }
}
