//! Logical distillation: a service's state as bytes and back.
//!
//! [`Distill`] is implemented for the plain data a service keeps (integers,
//! booleans, strings, byte vectors, options, tuples, vectors and ordered
//! maps of those), and the [`distill!`](crate::distill) macro implements it
//! for a struct of such fields, so a service with plain-data state writes
//! no serialisation code. Decoding is bounds-checked: a damaged checkpoint
//! is an error, never a panic.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use libos::wire::{DecodeError, Reader, Writer};

/// State that can be written as bytes and read back.
pub trait Distill: Sized {
    /// Append to `w`.
    fn write(&self, w: &mut Writer);
    /// Read back.
    fn read(r: &mut Reader) -> Result<Self, DecodeError>;
    /// Append a sequence of values (a `Vec`'s elements). Bytes override
    /// this to be written as they are.
    fn write_many(items: &[Self], w: &mut Writer) {
        items.iter().for_each(|x| x.write(w));
    }
    /// Read `n` values written by `write_many`.
    fn read_many(n: u64, r: &mut Reader) -> Result<Vec<Self>, DecodeError> {
        let mut v = Vec::new();
        for _ in 0..n {
            v.push(Self::read(r)?);
        }
        Ok(v)
    }
}

/// The bytes of `value`.
pub fn to_bytes<T: Distill>(value: &T) -> Vec<u8> {
    let mut w = Writer::new();
    value.write(&mut w);
    w.finish()
}

/// A value from bytes written by [`to_bytes`].
pub fn from_bytes<T: Distill>(bytes: &[u8]) -> Result<T, DecodeError> {
    let mut r = Reader::new(bytes);
    let v = T::read(&mut r)?;
    r.finish()?;
    Ok(v)
}

const MAX_ITEM: usize = 64 << 20;

// Integers are stored as 64-bit words; signed ones as two's complement.
impl Distill for u64 {
    fn write(&self, w: &mut Writer) {
        w.u64(*self);
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        r.u64()
    }
}

impl Distill for i64 {
    fn write(&self, w: &mut Writer) {
        w.i64(*self);
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        r.i64()
    }
}

macro_rules! distill_narrow {
    ($($t:ty),*) => {$(
        impl Distill for $t {
            fn write(&self, w: &mut Writer) {
                w.i64(*self as i64);
            }
            fn read(r: &mut Reader) -> Result<Self, DecodeError> {
                <$t>::try_from(r.i64()?).map_err(|_| DecodeError::Invalid)
            }
        }
    )*};
}
distill_narrow!(u16, u32, i8, i16, i32, usize);

impl Distill for u8 {
    fn write(&self, w: &mut Writer) {
        w.u8(*self);
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        r.u8()
    }
    fn write_many(items: &[Self], w: &mut Writer) {
        w.raw(items);
    }
    fn read_many(n: u64, r: &mut Reader) -> Result<Vec<Self>, DecodeError> {
        let n = usize::try_from(n).map_err(|_| DecodeError::Invalid)?;
        r.take_bytes(n).map(<[u8]>::to_vec)
    }
}

impl Distill for bool {
    fn write(&self, w: &mut Writer) {
        w.bool(*self);
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        r.bool()
    }
}

impl Distill for String {
    fn write(&self, w: &mut Writer) {
        w.str(self);
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        r.string(MAX_ITEM)
    }
}

impl<T: Distill> Distill for Vec<T> {
    fn write(&self, w: &mut Writer) {
        w.u64(self.len() as u64);
        T::write_many(self, w);
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let n = r.u64()?;
        T::read_many(n, r)
    }
}

impl<T: Distill> Distill for Option<T> {
    fn write(&self, w: &mut Writer) {
        match self {
            Some(x) => {
                w.bool(true);
                x.write(w);
            }
            None => {
                w.bool(false);
            }
        }
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(if r.bool()? { Some(T::read(r)?) } else { None })
    }
}

impl<K: Distill + Ord, V: Distill> Distill for BTreeMap<K, V> {
    fn write(&self, w: &mut Writer) {
        w.u64(self.len() as u64);
        for (k, v) in self {
            k.write(w);
            v.write(w);
        }
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let n = r.u64()?;
        let mut m = BTreeMap::new();
        for _ in 0..n {
            let k = K::read(r)?;
            let v = V::read(r)?;
            m.insert(k, v);
        }
        Ok(m)
    }
}

impl<A: Distill, B: Distill> Distill for (A, B) {
    fn write(&self, w: &mut Writer) {
        self.0.write(w);
        self.1.write(w);
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok((A::read(r)?, B::read(r)?))
    }
}

/// Implement [`Distill`] for a struct whose fields all implement it:
/// `distill!(Store { map, count });`.
#[macro_export]
macro_rules! distill {
    ($t:ident { $($field:ident),* $(,)? }) => {
        impl $crate::distill::Distill for $t {
            fn write(&self, w: &mut libos::wire::Writer) {
                $( $crate::distill::Distill::write(&self.$field, w); )*
            }
            fn read(r: &mut libos::wire::Reader) -> Result<Self, libos::wire::DecodeError> {
                Ok($t { $( $field: $crate::distill::Distill::read(r)?, )* })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[derive(Debug, PartialEq)]
    struct State {
        map: BTreeMap<String, Vec<u8>>,
        count: u32,
        owner: Option<String>,
        pairs: Vec<(u64, i64)>,
        on: bool,
    }
    crate::distill!(State { map, count, owner, pairs, on });

    fn sample() -> State {
        let mut map = BTreeMap::new();
        map.insert(String::from("a"), vec![1, 2]);
        map.insert(String::from("b"), vec![]);
        State { map, count: 2, owner: Some(String::from("me")), pairs: vec![(1, -1), (u64::MAX, i64::MIN)], on: true }
    }

    #[test]
    fn round_trip() {
        let s = sample();
        assert_eq!(from_bytes::<State>(&to_bytes(&s)).unwrap(), s);
    }

    #[test]
    fn damaged_bytes_are_errors() {
        let bytes = to_bytes(&sample());
        for cut in 0..bytes.len() {
            assert!(from_bytes::<State>(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(from_bytes::<State>(&longer), Err(DecodeError::Trailing));
        let mut bad = bytes;
        bad[0] = 0xff; // map length now huge
        assert!(from_bytes::<State>(&bad).is_err());
    }

    #[test]
    fn byte_vectors_are_stored_as_bytes() {
        let v: Vec<u8> = vec![1, 2, 3, 4];
        assert_eq!(to_bytes(&v).len(), 8 + 4);
        assert_eq!(from_bytes::<Vec<u8>>(&to_bytes(&v)).unwrap(), v);
        let mut short = to_bytes(&v);
        short.pop();
        assert!(from_bytes::<Vec<u8>>(&short).is_err());
        let mut huge = to_bytes(&v);
        huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(from_bytes::<Vec<u8>>(&huge).is_err());
    }

    #[test]
    fn narrow_integers_refuse_out_of_range() {
        let big = to_bytes(&1000u64);
        assert!(from_bytes::<u8>(&big).is_err());
        assert_eq!(from_bytes::<u16>(&big), Ok(1000));
    }
}
