//! The console log's storage: records (writer pid and name, level, text)
//! packed into a fixed byte ring, oldest dropped first. No allocation, so
//! the console can log from any kernel context, a panic included. Records
//! are read out in the ABI's layout ([`LogRecordHeader`], name, text).

use kintsugi_abi::{LogRecordHeader, MAX_LOG_NAME, MAX_LOG_TEXT};
use zerocopy::{FromBytes, IntoBytes};

const HEADER: usize = core::mem::size_of::<LogRecordHeader>();

/// The next record does not fit in the buffer given to [`LogRing::read`].
#[derive(Debug, PartialEq, Eq)]
pub struct RecordTooLarge;

/// A ring of `N` bytes of log records.
pub struct LogRing<const N: usize> {
    buf: [u8; N],
    /// Absolute offset of the oldest record.
    start: u64,
    /// Absolute offset one past the newest record.
    end: u64,
    /// Sequence number of the oldest record.
    first_seq: u64,
    /// Sequence number the next record gets.
    next_seq: u64,
}

impl<const N: usize> Default for LogRing<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> LogRing<N> {
    /// An empty ring.
    pub const fn new() -> Self {
        LogRing { buf: [0; N], start: 0, end: 0, first_seq: 0, next_seq: 0 }
    }

    /// Whether the ring holds no record.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Bytes in use.
    pub fn used(&self) -> usize {
        (self.end - self.start) as usize
    }

    /// The sequence number the next record will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    fn put(&mut self, at: u64, bytes: &[u8]) {
        for (i, &b) in bytes.iter().enumerate() {
            self.buf[((at + i as u64) % N as u64) as usize] = b;
        }
    }

    fn get(&self, at: u64, out: &mut [u8]) {
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = self.buf[((at + i as u64) % N as u64) as usize];
        }
    }

    fn header_at(&self, at: u64) -> LogRecordHeader {
        let mut raw = [0u8; HEADER];
        self.get(at, &mut raw);
        LogRecordHeader::read_from_bytes(&raw).unwrap_or_default()
    }

    fn record_len(h: &LogRecordHeader) -> u64 {
        (HEADER + h.name_len as usize + h.text_len as usize) as u64
    }

    fn drop_oldest(&mut self) {
        let h = self.header_at(self.start);
        self.start += Self::record_len(&h);
        self.first_seq = h.seq + 1;
        if self.is_empty() {
            // Keep offsets small; nothing refers to them from outside.
            self.start = 0;
            self.end = 0;
        }
    }

    /// Append a record (name cut to [`MAX_LOG_NAME`], text to
    /// [`MAX_LOG_TEXT`] bytes), dropping the oldest ones to make room;
    /// returns its sequence number.
    pub fn push(&mut self, pid: u32, name: &[u8], level: u8, text: &[u8]) -> u64 {
        let name = &name[..name.len().min(MAX_LOG_NAME)];
        let text = &text[..text.len().min(MAX_LOG_TEXT)];
        let len = (HEADER + name.len() + text.len()) as u64;
        if len > N as u64 {
            return self.next_seq;
        }
        while self.end - self.start + len > N as u64 {
            self.drop_oldest();
        }
        let seq = self.next_seq;
        let h = LogRecordHeader { seq, pid, text_len: text.len() as u16, name_len: name.len() as u8, level };
        let at = self.end;
        self.put(at, h.as_bytes());
        self.put(at + HEADER as u64, name);
        self.put(at + (HEADER + name.len()) as u64, text);
        if self.is_empty() {
            self.first_seq = seq;
        }
        self.end += len;
        self.next_seq += 1;
        seq
    }

    /// Copy whole records with `seq >= cursor`, oldest first, into `out`;
    /// returns the cursor after the last one copied and the bytes written.
    /// An error if the first such record does not fit in `out`.
    pub fn read(&self, cursor: u64, out: &mut [u8]) -> Result<(u64, usize), RecordTooLarge> {
        let mut at = self.start;
        let mut next = cursor;
        let mut written = 0;
        while at < self.end {
            let h = self.header_at(at);
            let len = Self::record_len(&h);
            if h.seq >= cursor {
                if written + len as usize > out.len() {
                    if written == 0 {
                        return Err(RecordTooLarge);
                    }
                    break;
                }
                self.get(at, &mut out[written..written + len as usize]);
                written += len as usize;
                next = h.seq + 1;
            }
            at += len;
        }
        Ok((next, written))
    }

    /// Visit every record, oldest first: `(pid, name, level, text)`.
    pub fn for_each(&self, mut f: impl FnMut(u32, &[u8], u8, &[u8])) {
        let mut at = self.start;
        let mut name = [0u8; MAX_LOG_NAME];
        let mut text = [0u8; MAX_LOG_TEXT];
        while at < self.end {
            let h = self.header_at(at);
            let (n, t) = (h.name_len as usize, h.text_len as usize);
            self.get(at + HEADER as u64, &mut name[..n]);
            self.get(at + (HEADER + n) as u64, &mut text[..t]);
            f(h.pid, &name[..n], h.level, &text[..t]);
            at += Self::record_len(&h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(bytes: &[u8]) -> Vec<(u64, String, String)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let h = LogRecordHeader::read_from_bytes(&bytes[at..at + HEADER]).unwrap();
            let n = at + HEADER;
            let t = n + h.name_len as usize;
            let e = t + h.text_len as usize;
            out.push((
                h.seq,
                String::from_utf8_lossy(&bytes[n..t]).into_owned(),
                String::from_utf8_lossy(&bytes[t..e]).into_owned(),
            ));
            at = e;
        }
        out
    }

    #[test]
    fn push_and_read_back() {
        let mut r = LogRing::<256>::new();
        r.push(3, b"kv", 0, b"kv is up\n");
        r.push(0, b"kernel", 1, b"kernel: warning: x\n");
        let mut out = [0u8; 256];
        let (next, n) = r.read(0, &mut out).unwrap();
        assert_eq!(next, 2);
        let recs = records(&out[..n]);
        assert_eq!(recs[0], (0, "kv".into(), "kv is up\n".into()));
        assert_eq!(recs[1].1, "kernel");
        let (next2, n2) = r.read(next, &mut out).unwrap();
        assert_eq!((next2, n2), (2, 0));
        let (_, n3) = r.read(1, &mut out).unwrap();
        assert_eq!(records(&out[..n3]).len(), 1);
    }

    #[test]
    fn oldest_records_go_first_and_wrap() {
        let mut r = LogRing::<100>::new();
        for i in 0..50u64 {
            r.push(1, b"p", 0, format!("line {i}").as_bytes());
        }
        let mut out = [0u8; 100];
        let (next, n) = r.read(0, &mut out).unwrap();
        let recs = records(&out[..n]);
        assert_eq!(next, 50);
        assert_eq!(recs.last().unwrap().2, "line 49");
        assert!(recs.len() >= 3 && recs[0].0 > 0, "{recs:?}");
        for w in recs.windows(2) {
            assert_eq!(w[0].0 + 1, w[1].0);
        }
    }

    #[test]
    fn a_small_buffer_gets_whole_records_only() {
        let mut r = LogRing::<1024>::new();
        r.push(1, b"a", 0, &[b'x'; 40]);
        r.push(1, b"a", 0, &[b'y'; 40]);
        let mut out = [0u8; 70];
        let (next, n) = r.read(0, &mut out).unwrap();
        assert_eq!((next, n), (1, HEADER + 41));
        let mut tiny = [0u8; 10];
        assert!(r.read(0, &mut tiny).is_err());
    }

    #[test]
    fn long_text_is_cut_and_oversized_records_refused() {
        let mut r = LogRing::<{ 8 * 1024 }>::new();
        r.push(1, &[b'n'; 100], 0, &[b't'; 10_000]);
        let mut seen = Vec::new();
        r.for_each(|_, name, _, text| seen.push((name.len(), text.len())));
        assert_eq!(seen, [(MAX_LOG_NAME, MAX_LOG_TEXT)]);
        let mut small = LogRing::<32>::new();
        small.push(1, b"x", 0, &[0; 64]);
        assert!(small.is_empty());
    }
}
