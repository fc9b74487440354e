//! The message log: what a service was given since its last committed
//! checkpoint, in order, so a fresh process restored from that checkpoint
//! can be brought to the same state by feeding it the same inputs again.
//!
//! Entries are client sessions opening and closing, the requests that may
//! change state (idempotent ones are not logged), the events the companion
//! originated (timer ticks), and the inputs the service asked for while
//! handling them. The log also remembers, per logged
//! request, the replies its client already received (as hashes): a replay
//! suppresses those and flags a divergence if the replay produced something
//! else. The log is trimmed when a checkpoint commits.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// One thing the service was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// Session `.0` opened.
    Open(u64),
    /// Session `.0` closed.
    Close(u64),
    /// A client request.
    Request {
        /// The session.
        session: u64,
        /// Its sequence number in the session.
        seq: u64,
        /// The request as the client encoded it.
        bytes: Vec<u8>,
    },
    /// An event the companion originated (`crate::held::Event`): number
    /// `seq` of session 0 (`crate::held::EVENT_SESSION`).
    Event {
        /// Its number.
        seq: u64,
        /// Its kind.
        kind: u8,
        /// Its data.
        data: Vec<u8>,
    },
    /// An input the service asked for while handling the request or event
    /// before it.
    Input(Vec<u8>),
}

impl Entry {
    /// The id of a request or event entry (an event's session is
    /// `crate::held::EVENT_SESSION`).
    pub fn id(&self) -> Option<RequestId> {
        match self {
            Entry::Request { session, seq, .. } => Some((*session, *seq)),
            Entry::Event { seq, .. } => Some((crate::held::EVENT_SESSION, *seq)),
            _ => None,
        }
    }
}

/// A request's identity.
pub type RequestId = (u64, u64);

/// The log since the last checkpoint.
#[derive(Default)]
pub struct Log {
    entries: Vec<Entry>,
    delivered: BTreeMap<RequestId, Vec<u64>>,
    bytes: usize,
}

/// A cheap hash of a reply's bytes, to recognise a replayed reply. It
/// takes eight bytes per step (a multiply and a rotate each), then mixes
/// the result: a byte-at-a-time FNV-1a over every 64 KiB read reply was a
/// tenth of fs's and blk's companions' time. Kept only in memory, so it
/// may change between builds.
pub fn reply_hash(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ bytes.len() as u64;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let w = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        h = (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
    }
    for b in words.remainder() {
        h = (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 32;
    h = h.wrapping_mul(0xd6e8_feb8_6659_fd93);
    h ^ (h >> 32)
}

impl Log {
    /// An empty log.
    pub fn new() -> Log {
        Log::default()
    }

    /// Append an entry.
    pub fn push(&mut self, e: Entry) {
        self.bytes += match &e {
            Entry::Request { bytes, .. } | Entry::Input(bytes) | Entry::Event { data: bytes, .. } => bytes.len(),
            _ => 0,
        };
        self.entries.push(e);
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Payload bytes held.
    pub fn payload_bytes(&self) -> usize {
        self.bytes
    }

    /// Number of logged requests.
    pub fn requests(&self) -> usize {
        self.entries.iter().filter(|e| matches!(e, Entry::Request { .. })).count()
    }

    /// The largest event number in the log (0: none).
    pub fn last_event(&self) -> u64 {
        self.entries
            .iter()
            .filter_map(|e| if let Entry::Event { seq, .. } = e { Some(*seq) } else { None })
            .max()
            .unwrap_or(0)
    }

    /// Whether request `id` is in the log.
    pub fn contains(&self, id: RequestId) -> bool {
        self.entries.iter().any(|e| matches!(e, Entry::Request { session, seq, .. } if (*session, *seq) == id))
    }

    /// Remember that the client of `id` received a reply with these bytes.
    pub fn record_delivered(&mut self, id: RequestId, reply: &[u8]) {
        self.delivered.entry(id).or_default().push(reply_hash(reply));
    }

    /// How many replies the client of `id` has received.
    pub fn delivered_count(&self, id: RequestId) -> usize {
        self.delivered.get(&id).map_or(0, |v| v.len())
    }

    /// Whether the `index`th reply to `id`, produced again by a replay,
    /// matches what the client received. `None` if the client never
    /// received an `index`th reply (the replayed one is new).
    pub fn matches_delivered(&self, id: RequestId, index: usize, reply: &[u8]) -> Option<bool> {
        self.delivered.get(&id).and_then(|v| v.get(index)).map(|h| *h == reply_hash(reply))
    }

    /// Forget the replies recorded for `id` (a finished request that is not
    /// in the log).
    pub fn forget_delivered(&mut self, id: RequestId) {
        self.delivered.remove(&id);
    }

    /// Remove request (or event) `id` and the inputs recorded for it (a
    /// request that cannot be recovered). Returns where it was and how many
    /// entries went.
    pub fn remove_request(&mut self, id: RequestId) -> Option<(usize, usize)> {
        let pos = self.entries.iter().position(|e| e.id() == Some(id))?;
        let mut end = pos + 1;
        while matches!(self.entries.get(end), Some(Entry::Input(_))) {
            end += 1;
        }
        for e in self.entries.drain(pos..end) {
            if let Entry::Request { bytes, .. } | Entry::Input(bytes) | Entry::Event { data: bytes, .. } = e {
                self.bytes -= bytes.len();
            }
        }
        self.delivered.remove(&id);
        Some((pos, end - pos))
    }

    /// Put `entries` before the log's own (the log of an older checkpoint,
    /// when the newer one cannot be restored).
    pub fn prepend(&mut self, entries: Vec<Entry>) {
        let mut all = Log::new();
        entries.into_iter().chain(core::mem::take(&mut self.entries)).for_each(|e| all.push(e));
        self.entries = all.entries;
        self.bytes = all.bytes;
    }

    /// A checkpoint committed: everything before it is in the checkpoint.
    /// Empties the log and hands back its entries (the companion keeps them
    /// to fall back on).
    pub fn take(&mut self) -> Vec<Entry> {
        self.delivered.clear();
        self.bytes = 0;
        core::mem::take(&mut self.entries)
    }
}

/// Encode `entries` as one batch for the checkpoint store's log (what a
/// durable request's reply waits for).
pub fn encode_batch(entries: &[Entry]) -> Vec<u8> {
    let size = 4 + entries
        .iter()
        .map(|e| match e {
            Entry::Open(_) | Entry::Close(_) => 9,
            Entry::Request { bytes, .. } => 21 + bytes.len(),
            Entry::Input(bytes) => 5 + bytes.len(),
            Entry::Event { data, .. } => 14 + data.len(),
        })
        .sum::<usize>();
    let mut w = libos::wire::Writer::with_capacity(size);
    w.u32(entries.len() as u32);
    for e in entries {
        match e {
            Entry::Open(session) => w.u8(1).u64(*session),
            Entry::Close(session) => w.u8(2).u64(*session),
            Entry::Request { session, seq, bytes } => w.u8(3).u64(*session).u64(*seq).bytes(bytes),
            Entry::Input(bytes) => w.u8(4).bytes(bytes),
            Entry::Event { seq, kind, data } => w.u8(5).u64(*seq).u8(*kind).bytes(data),
        };
    }
    w.finish()
}

/// The largest request or input a batch may hold.
const MAX_ENTRY_BYTES: usize = 16 << 20;

/// Decode a batch made by [`encode_batch`] (from the checkpoint disk: a
/// damaged one is an error, never a panic).
pub fn decode_batch(bytes: &[u8]) -> Result<Vec<Entry>, libos::wire::DecodeError> {
    let mut r = libos::wire::Reader::new(bytes);
    let count = r.u32()? as usize;
    let mut entries = Vec::with_capacity(count.min(bytes.len()));
    for _ in 0..count {
        entries.push(match r.u8()? {
            1 => Entry::Open(r.u64()?),
            2 => Entry::Close(r.u64()?),
            3 => Entry::Request { session: r.u64()?, seq: r.u64()?, bytes: r.bytes_vec(MAX_ENTRY_BYTES)? },
            4 => Entry::Input(r.bytes_vec(MAX_ENTRY_BYTES)?),
            5 => Entry::Event { seq: r.u64()?, kind: r.u8()?, data: r.bytes_vec(MAX_ENTRY_BYTES)? },
            _ => return Err(libos::wire::DecodeError::Invalid),
        });
    }
    r.finish()?;
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn req(session: u64, seq: u64, b: &[u8]) -> Entry {
        Entry::Request { session, seq, bytes: b.to_vec() }
    }

    #[test]
    fn entries_keep_their_order_and_size() {
        let mut log = Log::new();
        log.push(Entry::Open(1));
        log.push(req(1, 0, b"put a"));
        log.push(Entry::Input(vec![1, 2, 3]));
        log.push(req(1, 1, b"put b"));
        log.push(Entry::Close(1));
        assert_eq!(log.len(), 5);
        assert_eq!(log.requests(), 2);
        assert_eq!(log.payload_bytes(), 13);
        assert!(log.contains((1, 1)));
        assert!(!log.contains((2, 0)));
        log.take();
        assert!(log.is_empty());
        assert_eq!(log.payload_bytes(), 0);
    }

    #[test]
    fn delivered_replies_are_recognised() {
        let mut log = Log::new();
        log.push(req(3, 7, b"list"));
        log.record_delivered((3, 7), b"key a");
        log.record_delivered((3, 7), b"key b");
        assert_eq!(log.delivered_count((3, 7)), 2);
        assert_eq!(log.matches_delivered((3, 7), 0, b"key a"), Some(true));
        assert_eq!(log.matches_delivered((3, 7), 1, b"key c"), Some(false));
        assert_eq!(log.matches_delivered((3, 7), 2, b"end"), None);
    }

    #[test]
    fn removing_a_request_takes_its_inputs() {
        let mut log = Log::new();
        log.push(req(1, 0, b"a"));
        log.push(req(1, 1, b"poison"));
        log.push(Entry::Input(vec![9; 4]));
        log.push(req(2, 0, b"b"));
        log.record_delivered((1, 1), b"x");
        assert_eq!(log.remove_request((1, 1)), Some((1, 2)));
        assert_eq!(log.entries(), &[req(1, 0, b"a"), req(2, 0, b"b")]);
        assert_eq!(log.payload_bytes(), 2);
        assert_eq!(log.delivered_count((1, 1)), 0);
        assert_eq!(log.remove_request((1, 1)), None);
    }

    #[test]
    fn events_are_logged_in_order_and_removed_with_their_inputs() {
        let mut log = Log::new();
        log.push(req(1, 0, b"wait"));
        log.push(Entry::Event { seq: 4, kind: 1, data: vec![0; 16] });
        log.push(Entry::Input(vec![7; 8]));
        log.push(req(2, 0, b"notify"));
        assert_eq!(log.payload_bytes(), 34);
        assert_eq!(log.last_event(), 4);
        assert_eq!(log.requests(), 2);
        assert_eq!(log.remove_request((crate::held::EVENT_SESSION, 4)), Some((1, 2)));
        assert_eq!(log.entries(), &[req(1, 0, b"wait"), req(2, 0, b"notify")]);
        assert_eq!(log.last_event(), 0);
    }

    #[test]
    fn prepended_entries_come_first_and_count() {
        let mut log = Log::new();
        log.push(req(2, 1, b"new"));
        log.record_delivered((2, 1), b"r");
        log.prepend(alloc::vec![Entry::Open(1), req(1, 1, b"older")]);
        assert_eq!(log.len(), 3);
        assert_eq!(log.entries()[1], req(1, 1, b"older"));
        assert_eq!(log.payload_bytes(), 8);
        assert_eq!(log.delivered_count((2, 1)), 1);
    }

    #[test]
    fn batches_round_trip_and_damage_is_an_error() {
        let entries = vec![
            Entry::Open(7),
            req(7, 0, b"put"),
            Entry::Input(vec![5; 9]),
            Entry::Event { seq: 3, kind: 1, data: vec![1; 16] },
            Entry::Input(vec![6; 8]),
            Entry::Close(7),
        ];
        let bytes = encode_batch(&entries);
        assert_eq!(bytes.len(), bytes.capacity(), "sized once, never grown");
        assert_eq!(decode_batch(&bytes).unwrap(), entries);
        assert!(decode_batch(&bytes[..bytes.len() - 1]).is_err());
        let mut bad = bytes.clone();
        bad[4] = 9;
        assert!(decode_batch(&bad).is_err());
        assert!(decode_batch(&[0xff, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn hash_tells_replies_apart() {
        // A change of any one bit, in the words and in the tail, and of
        // the length alone.
        let base: Vec<u8> = (0..37u8).collect();
        for i in 0..base.len() {
            for bit in 0..8 {
                let mut d = base.clone();
                d[i] ^= 1 << bit;
                assert_ne!(reply_hash(&d), reply_hash(&base), "byte {i} bit {bit}");
            }
        }
        assert_ne!(reply_hash(&[0; 8]), reply_hash(&[0; 16]));
        assert_ne!(reply_hash(&[]), reply_hash(&[0]));
        assert_ne!(reply_hash(b"a"), reply_hash(b"b"));
        assert_eq!(reply_hash(b""), reply_hash(b""));
    }
}
