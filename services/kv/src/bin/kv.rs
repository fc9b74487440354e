//! The kv service: an ordered map from strings to byte strings, with
//! logical distillation (the map is the state that matters). It runs under
//! its companion, which logs, checkpoints and restarts it.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use kv::protocol::{dispatch, Kv, KvHandler, Reply};
use libos::protocol::ReplySink;
use resiliency_lib::distill::{from_bytes, to_bytes};
use resiliency_lib::service::{serve, RequestOf, Service};

/// The service's state.
struct Store {
    map: BTreeMap<String, Vec<u8>>,
    /// Number of keys, kept separately so the invariant check can catch a
    /// damaged state.
    count: u64,
    /// Total bytes of the values.
    bytes: u64,
}
resiliency_lib::distill!(Store { map, count, bytes });

impl Store {
    fn insert(&mut self, key: String, value: Vec<u8>) -> bool {
        self.bytes += value.len() as u64;
        match self.map.insert(key, value) {
            Some(old) => {
                self.bytes -= old.len() as u64;
                true
            }
            None => {
                self.count += 1;
                false
            }
        }
    }

    fn remove(&mut self, key: &str) -> bool {
        match self.map.remove(key) {
            Some(old) => {
                self.bytes -= old.len() as u64;
                self.count -= 1;
                true
            }
            None => false,
        }
    }
}

impl KvHandler for Store {
    fn get(&mut self, key: String, out: &mut dyn ReplySink<Reply>) {
        let value = self.map.get(&key);
        out.reply(Reply::Value { found: value.is_some(), value: value.cloned().unwrap_or_default() });
    }

    fn put(&mut self, key: String, value: Vec<u8>, out: &mut dyn ReplySink<Reply>) {
        if value == kv::POISON {
            // The deliberate bug: a wild write (the kernel stops this process).
            libos::sys::fault(0x10);
        }
        let existed = self.insert(key, value);
        out.reply(Reply::Done { existed });
    }

    fn delete(&mut self, key: String, out: &mut dyn ReplySink<Reply>) {
        let existed = self.remove(&key);
        out.reply(Reply::Done { existed });
    }

    fn list(&mut self, prefix: String, out: &mut dyn ReplySink<Reply>) {
        let mut count = 0;
        for key in self.map.range(prefix.clone()..).map(|(k, _)| k).take_while(|k| k.starts_with(&prefix)) {
            out.reply(Reply::Key { key: key.clone() });
            count += 1;
        }
        out.reply(Reply::EndList { count });
    }

    fn cas(
        &mut self,
        key: String,
        expected_present: bool,
        expected: Vec<u8>,
        new_present: bool,
        new: Vec<u8>,
        out: &mut dyn ReplySink<Reply>,
    ) {
        let current = self.map.get(&key).cloned();
        let matches = match &current {
            Some(v) => expected_present && *v == expected,
            None => !expected_present,
        };
        if matches {
            if new_present {
                self.insert(key, new.clone());
            } else {
                self.remove(&key);
            }
            out.reply(Reply::Swapped {
                ok: true,
                current_present: new_present,
                current: if new_present { new } else { Vec::new() },
            });
        } else {
            out.reply(Reply::Swapped {
                ok: false,
                current_present: current.is_some(),
                current: current.unwrap_or_default(),
            });
        }
    }
}

impl Service for Store {
    type Protocol = Kv;

    fn new() -> Self {
        Store { map: BTreeMap::new(), count: 0, bytes: 0 }
    }

    fn handle(&mut self, request: RequestOf<Self>, out: &mut dyn ReplySink<Reply>) {
        dispatch(self, request, out);
    }

    fn save(&self) -> Vec<u8> {
        to_bytes(self)
    }

    fn restore(bytes: &[u8]) -> Result<Self, String> {
        let s: Store = from_bytes(bytes).map_err(|e| format!("damaged checkpoint: {e}"))?;
        s.check()?;
        Ok(s)
    }

    fn check(&self) -> Result<(), String> {
        let bytes: u64 = self.map.values().map(|v| v.len() as u64).sum();
        if self.count != self.map.len() as u64 || self.bytes != bytes {
            return Err(format!(
                "kv state damaged: count {} for {} keys, {} bytes counted for {}",
                self.count,
                self.map.len(),
                self.bytes,
                bytes
            ));
        }
        Ok(())
    }

    fn chaos_corrupt(&mut self) {
        self.count = self.count.wrapping_add(1);
    }
}

libos::main!(main);

fn main() -> i32 {
    serve::<Store>()
}
