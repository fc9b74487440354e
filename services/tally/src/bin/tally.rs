//! The tally service: named counters in an open-addressing table that lives
//! in the libos state arena. Nothing is serialised: the companion copies the
//! arena's dirty pages (image distillation), and a restarted process finds
//! the table again through the arena's root pointer. The time a counter last
//! changed is an input from the outside world, so it is asked of the
//! companion (recorded, and replayed identically); `Publish` calls the kv
//! service through the companion's recorded path.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use libos::channel::{HandleList, Message};
use libos::protocol::ReplySink;
use resiliency_lib::service::{serve, RequestOf, Service};
use tally::protocol::{dispatch, Reply, Tally, TallyHandler};
use zerocopy::FromBytes;

const SLOTS: usize = 1024;
const NAME_MAX: usize = 32;
const MAGIC: u64 = 0x5441_4c4c_5954_4231; // "TALLYTB1"

#[repr(C)]
#[derive(Clone, Copy, FromBytes)]
struct Slot {
    used: u8,
    len: u8,
    _pad: [u8; 6],
    name: [u8; NAME_MAX],
    value: i64,
    updated_ns: u64,
}

/// The whole state, in the arena.
#[repr(C)]
#[derive(FromBytes)]
struct Table {
    magic: u64,
    used: u64,
    /// Sum of every value, kept beside them for the invariant check.
    sum: i64,
    slots: [Slot; SLOTS],
}

/// The service: its table in the arena.
struct Counters {
    table: &'static mut Table,
}

fn hash(name: &[u8]) -> usize {
    name.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3)) as usize
}

impl Counters {
    fn table(&mut self) -> &mut Table {
        self.table
    }

    fn find(&mut self, name: &[u8], create: bool) -> Option<usize> {
        let t = self.table();
        let start = hash(name) % SLOTS;
        for i in 0..SLOTS {
            let at = (start + i) % SLOTS;
            let s = &mut t.slots[at];
            if s.used == 0 {
                if !create {
                    return None;
                }
                s.used = 1;
                s.len = name.len() as u8;
                s.name[..name.len()].copy_from_slice(name);
                t.used += 1;
                return Some(at);
            }
            if &s.name[..s.len as usize] == name {
                return Some(at);
            }
        }
        None
    }
}

impl TallyHandler for Counters {
    fn add(&mut self, name: String, delta: i64, out: &mut dyn ReplySink<Reply>) {
        if name.is_empty() || name.len() > NAME_MAX {
            return out.reply(Reply::Failed { code: 400, message: String::from("bad counter name") });
        }
        let Some(at) = self.find(name.as_bytes(), true) else {
            return out.reply(Reply::Failed { code: 507, message: String::from("no room for another counter") });
        };
        let now = resiliency_lib::service::now_ns();
        let t = self.table();
        t.slots[at].value = t.slots[at].value.wrapping_add(delta);
        t.slots[at].updated_ns = now;
        t.sum = t.sum.wrapping_add(delta);
        out.reply(Reply::Total { value: t.slots[at].value, updated_ns: now });
    }

    fn get(&mut self, name: String, out: &mut dyn ReplySink<Reply>) {
        let (value, updated_ns) = match self.find(name.as_bytes(), false) {
            Some(at) => {
                let s = &self.table().slots[at];
                (s.value, s.updated_ns)
            }
            None => (0, 0),
        };
        out.reply(Reply::Total { value, updated_ns });
    }

    fn list(&mut self, out: &mut dyn ReplySink<Reply>) {
        let mut count = 0;
        for s in self.table().slots.iter().filter(|s| s.used != 0) {
            let name = String::from_utf8_lossy(&s.name[..s.len as usize]).into_owned();
            out.reply(Reply::Entry { name, value: s.value });
            count += 1;
        }
        out.reply(Reply::End { count });
    }

    fn import(&mut self, prefix: String, out: &mut dyn ReplySink<Reply>) {
        let failed = |what: &str| Reply::Failed { code: 502, message: format!("import: {what}") };
        // kv's List answers Key, Key, ..., EndList: one call, then the rest
        // of its answer reply by reply.
        let mut keys = Vec::new();
        let mut reply = match call_kv(kv::Request::List { prefix }) {
            Ok(r) => r,
            Err(e) => return out.reply(failed(&e)),
        };
        loop {
            match reply {
                kv::Reply::Key { key } => keys.push(key),
                kv::Reply::EndList { .. } => break,
                other => return out.reply(failed(&format!("kv answered the listing with {other:?}"))),
            }
            reply =
                match resiliency_lib::service::call_next(kv::SERVICE).map_err(|e| format!("{e:?}")).and_then(decode_kv)
                {
                    Ok(r) => r,
                    Err(e) => return out.reply(failed(&e)),
                };
        }
        let (mut values, mut counters) = (0u32, 0u32);
        for key in keys {
            let value = match call_kv(kv::Request::Get { key }) {
                Ok(kv::Reply::Value { found: true, value }) => value,
                Ok(_) => continue,
                Err(e) => return out.reply(failed(&e)),
            };
            values += 1;
            for line in String::from_utf8_lossy(&value).lines() {
                let Some((name, number)) = line.split_once('=') else { continue };
                let (Ok(delta), false) = (number.trim().parse::<i64>(), name.is_empty() || name.len() > NAME_MAX)
                else {
                    continue;
                };
                let Some(at) = self.find(name.as_bytes(), true) else { continue };
                let t = self.table();
                t.slots[at].value = t.slots[at].value.wrapping_add(delta);
                t.sum = t.sum.wrapping_add(delta);
                counters += 1;
            }
        }
        out.reply(Reply::Imported { values, counters });
    }

    fn publish(&mut self, key: String, out: &mut dyn ReplySink<Reply>) {
        let mut text = String::new();
        for s in self.table().slots.iter().filter(|s| s.used != 0) {
            text.push_str(&format!("{}={}\n", String::from_utf8_lossy(&s.name[..s.len as usize]), s.value));
        }
        let request = kv::Request::Put { key, value: text.into_bytes() };
        if !request.within_limits() {
            // kv would drop the session for a value past its contract's
            // limit: say no instead of breaking kv's contract.
            log::warn!("publish: the counters do not fit in one kv value; not published");
            return out.reply(Reply::Published { ok: false });
        }
        let mut w = libos::wire::Writer::new();
        request.encode(&mut w, &mut HandleList::default());
        let ok = match resiliency_lib::service::call(kv::SERVICE, w.as_slice()) {
            Ok(reply) => {
                let mut r = libos::wire::Reader::new(&reply);
                let mut q = libos::channel::HandleQueue::new(Vec::new());
                matches!(kv::Reply::decode(&mut r, &mut q), Ok(kv::Reply::Done { .. }))
            }
            Err(_) => false,
        };
        out.reply(Reply::Published { ok });
    }
}

/// A kv reply from its bytes.
fn decode_kv(bytes: Vec<u8>) -> Result<kv::Reply, String> {
    let mut r = libos::wire::Reader::new(&bytes);
    let mut q = libos::channel::HandleQueue::new(Vec::new());
    kv::Reply::decode(&mut r, &mut q).map_err(|e| format!("kv's reply does not decode: {e}"))
}

/// Call kv with `request`; its first reply.
fn call_kv(request: kv::Request) -> Result<kv::Reply, String> {
    let mut w = libos::wire::Writer::new();
    request.encode(&mut w, &mut HandleList::default());
    resiliency_lib::service::call(kv::SERVICE, w.as_slice()).map_err(|e| format!("{e:?}")).and_then(decode_kv)
}

impl Service for Counters {
    type Protocol = Tally;
    const ARENA_PAGES: u64 = 64;

    fn new() -> Self {
        let table = match libos::arena::create_root::<Table>() {
            Ok(t) => t,
            Err(e) => panic!("the state arena cannot hold the counter table: {e}"),
        };
        table.magic = MAGIC;
        Counters { table }
    }

    fn adopt_arena() -> Result<Self, String> {
        let table = libos::arena::adopt_root::<Table>()
            .map_err(|e| format!("arena root does not point at a counter table: {e}"))?;
        if table.magic != MAGIC {
            return Err(String::from("no counter table in the arena"));
        }
        let c = Counters { table };
        c.check()?;
        Ok(c)
    }

    fn handle(&mut self, request: RequestOf<Self>, out: &mut dyn ReplySink<Reply>) {
        dispatch(self, request, out);
    }

    fn check(&self) -> Result<(), String> {
        let t = &*self.table;
        let used = t.slots.iter().filter(|s| s.used != 0).count() as u64;
        let sum = t.slots.iter().filter(|s| s.used != 0).fold(0i64, |a, s| a.wrapping_add(s.value));
        if used != t.used || sum != t.sum {
            return Err(format!(
                "counter table damaged: {used} slots used (recorded {}), sum {sum} (recorded {})",
                t.used, t.sum
            ));
        }
        Ok(())
    }

    fn chaos_corrupt(&mut self) {
        let t = self.table();
        t.sum = t.sum.wrapping_add(1);
    }
}

libos::main!(main);

fn main() -> i32 {
    serve::<Counters>()
}
