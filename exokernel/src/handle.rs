//! Per-process handle tables: slots holding an object and its rights, named by
//! index plus generation so stale or forged handles are refused.

use alloc::vec::Vec;
use kintsugi_abi::{Error, Handle, Rights};

struct Slot<T> {
    generation: u16,
    entry: Option<(T, Rights)>,
}

/// A table of objects reachable by [`Handle`]s.
///
/// A handle's value is `generation << 16 | (index + 1)`; the generation of a
/// slot changes every time it is freed, so an old handle value never reaches
/// a new occupant. Value 0 and [`Handle::SELF`] are never produced.
pub struct HandleTable<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u16>,
    used: usize,
    limit: usize,
}

impl<T> HandleTable<T> {
    /// An empty table holding at most `limit` handles (capped at 65534).
    pub fn new(limit: usize) -> Self {
        HandleTable { slots: Vec::new(), free: Vec::new(), used: 0, limit: limit.min(0xfffe) }
    }

    /// Number of live handles.
    pub fn len(&self) -> usize {
        self.used
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// Whether one more handle fits.
    pub fn has_room(&self) -> bool {
        self.used < self.limit
    }

    /// Store `object` with `rights`; its new handle.
    pub fn insert(&mut self, object: T, rights: Rights) -> Result<Handle, Error> {
        if !self.has_room() {
            return Err(Error::LimitReached);
        }
        let index = match self.free.pop() {
            Some(i) => i as usize,
            None => {
                self.slots.try_reserve(1).map_err(|_| Error::OutOfMemory)?;
                self.slots.push(Slot { generation: 1, entry: None });
                self.slots.len() - 1
            }
        };
        let slot = &mut self.slots[index];
        slot.entry = Some((object, rights));
        self.used += 1;
        Ok(Handle(((slot.generation as u32) << 16) | (index as u32 + 1)))
    }

    fn index_of(&self, handle: Handle) -> Result<usize, Error> {
        let raw = handle.raw();
        let index = (raw & 0xffff) as usize;
        let generation = (raw >> 16) as u16;
        if index == 0 || index > self.slots.len() || handle == Handle::SELF {
            return Err(Error::InvalidHandle);
        }
        let slot = &self.slots[index - 1];
        if slot.generation != generation || slot.entry.is_none() {
            return Err(Error::InvalidHandle);
        }
        Ok(index - 1)
    }

    /// The object and rights behind `handle`.
    pub fn get(&self, handle: Handle) -> Result<(&T, Rights), Error> {
        let i = self.index_of(handle)?;
        let (object, rights) = self.slots[i].entry.as_ref().ok_or(Error::InvalidHandle)?;
        Ok((object, *rights))
    }

    /// Take `handle` out of the table.
    pub fn remove(&mut self, handle: Handle) -> Result<(T, Rights), Error> {
        let i = self.index_of(handle)?;
        let slot = &mut self.slots[i];
        let entry = slot.entry.take().ok_or(Error::InvalidHandle)?;
        slot.generation = match slot.generation.wrapping_add(1) {
            0 | 0xffff => 1,
            g => g,
        };
        self.free.push(i as u16);
        self.used -= 1;
        Ok(entry)
    }

    /// Remove every handle, returning the objects (for process teardown).
    pub fn drain(&mut self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.used);
        for slot in self.slots.iter_mut() {
            if let Some((object, _)) = slot.entry.take() {
                out.push(object);
            }
        }
        self.slots.clear();
        self.free.clear();
        self.used = 0;
        out
    }

    /// Iterate over the live objects.
    pub fn iter(&self) -> impl Iterator<Item = (&T, Rights)> {
        self.slots.iter().filter_map(|s| s.entry.as_ref().map(|(o, r)| (o, *r)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_remove() {
        let mut t = HandleTable::new(8);
        let a = t.insert("a", Rights::READ).unwrap();
        let b = t.insert("b", Rights::WRITE).unwrap();
        assert_ne!(a, b);
        assert_eq!(t.get(a).unwrap(), (&"a", Rights::READ));
        assert_eq!(t.remove(a).unwrap().0, "a");
        assert_eq!(t.get(a).err(), Some(Error::InvalidHandle));
        assert_eq!(t.len(), 1);
        assert_eq!(t.get(b).unwrap().0, &"b");
    }

    #[test]
    fn stale_handle_does_not_reach_new_occupant() {
        let mut t = HandleTable::new(8);
        let a = t.insert(1, Rights::all()).unwrap();
        t.remove(a).unwrap();
        let b = t.insert(2, Rights::all()).unwrap();
        assert_eq!(a.raw() & 0xffff, b.raw() & 0xffff, "slot reused");
        assert_eq!(t.get(a).err(), Some(Error::InvalidHandle));
        assert_eq!(*t.get(b).unwrap().0, 2);
    }

    #[test]
    fn garbage_handles_are_refused() {
        let mut t = HandleTable::new(8);
        t.insert(1, Rights::all()).unwrap();
        for raw in [0u32, 0xffff_ffff, 0x0001_0000, 2, 0x0002_0001, 0xdead_beef, 0x0001_ffff] {
            assert_eq!(t.get(Handle(raw)).err(), Some(Error::InvalidHandle), "{raw:#x}");
        }
    }

    #[test]
    fn limit_is_enforced() {
        let mut t = HandleTable::new(2);
        t.insert(1, Rights::all()).unwrap();
        let h = t.insert(2, Rights::all()).unwrap();
        assert_eq!(t.insert(3, Rights::all()).err(), Some(Error::LimitReached));
        t.remove(h).unwrap();
        t.insert(3, Rights::all()).unwrap();
    }

    #[test]
    fn generations_wrap_without_producing_reserved_values() {
        let mut t = HandleTable::new(1);
        for _ in 0..200_000 {
            let h = t.insert(0u8, Rights::all()).unwrap();
            assert_ne!(h, Handle::SELF);
            assert_ne!(h, Handle::NULL);
            assert_ne!(h.raw() >> 16, 0);
            t.remove(h).unwrap();
        }
    }

    #[test]
    fn drain_empties() {
        let mut t = HandleTable::new(8);
        t.insert(1, Rights::all()).unwrap();
        t.insert(2, Rights::all()).unwrap();
        let mut v = t.drain();
        v.sort();
        assert_eq!(v, [1, 2]);
        assert!(t.is_empty());
    }
}
