//! A small byte codec for the server's state (logical distillation: the
//! httpd service saves its connections, queued responses and figures as
//! bytes at each checkpoint and reads them back after a crash). Integers
//! are little-endian `u64`, byte strings a `u64` length then the bytes.
//! Decoding is bounds-checked: damaged bytes are an error, never a panic.

use alloc::string::String;
use alloc::vec::Vec;

/// Appends values.
#[derive(Default)]
pub struct Enc {
    buf: Vec<u8>,
}

impl Enc {
    /// An empty encoder.
    pub fn new() -> Enc {
        Enc::default()
    }

    /// A `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A flag.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.buf.push(v as u8);
        self
    }

    /// Bytes (length first).
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.u64(v.len() as u64);
        self.buf.extend_from_slice(v);
        self
    }

    /// A string.
    pub fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }

    /// An optional `u64`.
    pub fn opt(&mut self, v: Option<u64>) -> &mut Self {
        self.bool(v.is_some());
        self.u64(v.unwrap_or(0))
    }

    /// The bytes written.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Why bytes did not decode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damaged(pub &'static str);

/// Reads values back.
pub struct Dec<'a> {
    buf: &'a [u8],
}

impl<'a> Dec<'a> {
    /// A decoder over `buf`.
    pub fn new(buf: &'a [u8]) -> Dec<'a> {
        Dec { buf }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Damaged> {
        if n > self.buf.len() {
            return Err(Damaged("the bytes end early"));
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }

    /// A `u64`.
    pub fn u64(&mut self) -> Result<u64, Damaged> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A `u64` that must fit a `usize` below `max`.
    pub fn count(&mut self, max: usize) -> Result<usize, Damaged> {
        let n = self.u64()?;
        if n > max as u64 {
            return Err(Damaged("a count is out of range"));
        }
        Ok(n as usize)
    }

    /// A `u32`.
    pub fn u32(&mut self) -> Result<u32, Damaged> {
        u32::try_from(self.u64()?).map_err(|_| Damaged("a number is out of range"))
    }

    /// A flag.
    pub fn bool(&mut self) -> Result<bool, Damaged> {
        match self.take(1)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Damaged("a flag is neither 0 nor 1")),
        }
    }

    /// Bytes.
    pub fn bytes(&mut self) -> Result<Vec<u8>, Damaged> {
        let n = self.count(self.buf.len())?;
        Ok(self.take(n)?.to_vec())
    }

    /// A string.
    pub fn str(&mut self) -> Result<String, Damaged> {
        String::from_utf8(self.bytes()?).map_err(|_| Damaged("a string is not UTF-8"))
    }

    /// An optional `u64`.
    pub fn opt(&mut self) -> Result<Option<u64>, Damaged> {
        let some = self.bool()?;
        let v = self.u64()?;
        Ok(some.then_some(v))
    }

    /// Everything was read.
    pub fn end(&self) -> Result<(), Damaged> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(Damaged("bytes are left over"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_come_back_and_damage_is_an_error() {
        let mut e = Enc::new();
        e.u64(7).bool(true).bytes(b"abc").str("h\u{e9}").opt(None).opt(Some(9));
        let b = e.finish();
        let mut d = Dec::new(&b);
        assert_eq!(d.u64(), Ok(7));
        assert_eq!(d.bool(), Ok(true));
        assert_eq!(d.bytes().unwrap(), b"abc");
        assert_eq!(d.str().unwrap(), "h\u{e9}");
        assert_eq!(d.opt(), Ok(None));
        assert_eq!(d.opt(), Ok(Some(9)));
        assert!(d.end().is_ok());
        for cut in 0..b.len() {
            let mut d = Dec::new(&b[..cut]);
            let r = (|| -> Result<(), Damaged> {
                d.u64()?;
                d.bool()?;
                d.bytes()?;
                d.str()?;
                d.opt()?;
                d.opt()?;
                Ok(())
            })();
            assert!(r.is_err(), "cut at {cut} decoded");
        }
        let huge = [0xffu8; 16];
        assert!(Dec::new(&huge).bytes().is_err());
    }
}
