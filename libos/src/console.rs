//! The console log as programs read it: [`LogReader`] follows the kernel's
//! log of everything written to the console, record by record (writer pid
//! and name, level, text); [`records`] decodes a buffer of them.

use crate::sys;
use alloc::vec::Vec;
use kintsugi_abi::{Error, Handle, LogLevel, LogRecordHeader, MAX_LOG_RECORD};
use zerocopy::FromBytes;

/// One console log record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Sequence number.
    pub seq: u64,
    /// Writer's pid (0: the kernel).
    pub pid: u32,
    /// Writer's name (`kernel` for the kernel).
    pub name: &'a [u8],
    /// How the text reads.
    pub level: LogLevel,
    /// What was written.
    pub text: &'a [u8],
}

/// The records in `buf` (as `ConsoleOp::LogRead` writes them); stops at
/// the first malformed one.
pub fn records(buf: &[u8]) -> impl Iterator<Item = Record<'_>> {
    const HEADER: usize = core::mem::size_of::<LogRecordHeader>();
    let mut at = 0;
    core::iter::from_fn(move || {
        let h = LogRecordHeader::read_from_bytes(buf.get(at..at + HEADER)?).ok()?;
        let name_at = at + HEADER;
        let text_at = name_at + h.name_len as usize;
        let end = text_at + h.text_len as usize;
        let r = Record {
            seq: h.seq,
            pid: h.pid,
            name: buf.get(name_at..text_at)?,
            level: LogLevel::from_u8(h.level),
            text: buf.get(text_at..end)?,
        };
        at = end;
        Some(r)
    })
}

/// Whether `info` describes a display at all (a kind, a size and memory).
pub fn display_geometry_known(info: &kintsugi_abi::DisplayInfo) -> bool {
    info.kind != kintsugi_abi::DISPLAY_NONE
        && info.width > 0
        && info.height > 0
        && info.span() > 0
        && info.address.checked_add(info.span()).is_some()
}

/// Follows the console log from a cursor.
pub struct LogReader {
    console: Handle,
    cursor: u64,
    buf: Vec<u8>,
}

impl LogReader {
    /// A reader from the oldest record the kernel still keeps.
    pub fn new(console: Handle) -> LogReader {
        LogReader { console, cursor: 0, buf: alloc::vec![0; 4 * MAX_LOG_RECORD] }
    }

    /// Records written since the last call (or the oldest kept, at first),
    /// as one buffer to decode with [`records`]; empty when there are none.
    pub fn next_batch(&mut self) -> Result<&[u8], Error> {
        let (next, n) = sys::console_log_read(self.console, self.cursor, &mut self.buf)?;
        self.cursor = next;
        Ok(&self.buf[..n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::IntoBytes;

    #[test]
    fn decodes_records_and_stops_at_garbage() {
        let mut buf = Vec::new();
        for (seq, name, text) in [(7u64, "kv", "kv is up\n"), (8, "kernel", "kernel: warning: x\n")] {
            let h = LogRecordHeader {
                seq,
                pid: 3,
                text_len: text.len() as u16,
                name_len: name.len() as u8,
                level: LogLevel::of_text(text.as_bytes()) as u8,
            };
            buf.extend_from_slice(h.as_bytes());
            buf.extend_from_slice(name.as_bytes());
            buf.extend_from_slice(text.as_bytes());
        }
        buf.extend_from_slice(&[1, 2, 3]);
        let all: Vec<Record> = records(&buf).collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].name, b"kv");
        assert_eq!(all[1].level, LogLevel::Warning);
        assert_eq!(all[1].seq, 8);
    }
}
