//! The soak's TCP stream client: a sink on the host that the guest's
//! `tcpsend` streams to (net over nic, through QEMU's user network: the
//! guest reaches the host as 10.0.2.2), one stream at a time, each of a
//! seeded length and starting at a seeded place in the pattern so that no
//! two are alike. The sink checks every byte in order, the total, then
//! sends a seeded number of bytes back (the other pattern), which tcpsend
//! checks; tcpsend's summary line on the console must say it sent and
//! received exactly that. A stream is finished when both ends agree.
//!
//! A reset, a wrong byte, a gap, a stream that gets nothing for
//! [`STALL`], an early end, or tcpsend saying it failed is a client error,
//! unless a power cut (or the end of a boot for a hang or a panic) came
//! while it ran: the soak moves the boot generation on ([`Stream::cut`])
//! before it kills QEMU, and such streams are counted apart. A connection
//! that reaches the sink after a cut and before the next boot has started
//! a stream is the cut machine's (slirp still connecting as QEMU was
//! killed, or a connection left in the listen backlog), not an error.

use super::rng::Rng;
use super::stats::Stats;
use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A stream that receives nothing for this long has failed (on either
/// end: tcpsend's own calls time out sooner and say so).
pub const STALL: Duration = Duration::from_secs(90);
/// The length of a stream to the host: a value in this range.
pub const BYTES: (u64, u64) = (32 * 1024, 6 * 1024 * 1024);
/// The length of what the host sends back: a value in this range.
pub const BACK: (u64, u64) = (0, 512 * 1024);

/// Byte `i` of what tcpsend sends (as `net::stream_byte`).
pub fn stream_byte(i: u64) -> u8 {
    let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i >> 7);
    (x >> 29) as u8
}

/// Byte `i` of what the host sends back (as `net::back_byte`).
pub fn back_byte(i: u64) -> u8 {
    !stream_byte(i)
}

/// What the soak counts of one stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Every byte both ways was right: `bytes` to the host, `back` to the
    /// guest, in `ms` milliseconds from the command.
    Finished { bytes: u64, back: u64, ms: u64 },
    /// A power cut (or the end of a boot) came while it ran: not an error.
    Cut(String),
    /// It failed, or a byte was wrong, with no power cut to explain it.
    Error(String),
}

/// The stream the soak started and the sink waits for.
#[derive(Clone, Copy, Debug)]
struct Expect {
    id: u64,
    first: u64,
    total: u64,
    back: u64,
}

/// What the sink found of one connection.
#[derive(Debug)]
enum Sunk {
    Ok { id: u64 },
    Error { id: Option<u64>, what: String },
}

/// What the soak and the sink's threads share.
#[derive(Default)]
struct Shared {
    /// The stream to take the next connection as.
    expect: Mutex<Option<Expect>>,
    /// Moved on before each power cut (under the `sunk` lock).
    generation: AtomicU64,
    /// The generation in which a stream was last expected, plus one (0:
    /// none yet).
    expected_in: AtomicU64,
    /// Connections being read.
    busy: AtomicU64,
    stop: AtomicBool,
    /// Failures found while the generation had not moved, and successes.
    sunk: Mutex<Vec<Sunk>>,
}

/// One stream's two ends, as far as they are known.
#[derive(Debug)]
struct Open {
    e: Expect,
    started: Instant,
    /// The sink received every byte and sent back all it should.
    sink_ok: bool,
    /// tcpsend's summary said so too.
    console_ok: bool,
    /// An error was reported (once per stream).
    failed: bool,
}

/// The sink on the host and the soak's side of the streams.
pub struct Stream {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// The host port the sink listens on (the same in every boot).
    pub port: u16,
    rng: Rng,
    next_id: u64,
    /// Streams not yet finished or cut, by id.
    open: BTreeMap<u64, Open>,
    /// The one whose tcpsend runs in the current boot.
    running: Option<u64>,
    /// What to count.
    done: Vec<Event>,
}

impl Stream {
    /// Listen on a free host port; lengths and places come from `seed`.
    pub fn start(seed: u64) -> Result<Stream, String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("a port for the TCP sink: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let shared = Arc::new(Shared::default());
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("soak-tcp-sink".into())
            .spawn(move || accept(&s, &listener))
            .map_err(|e| format!("a thread for the TCP sink: {e}"))?;
        Ok(Stream {
            shared,
            thread: Some(thread),
            port,
            rng: Rng::new(seed ^ 0x5443_5053),
            next_id: 0,
            open: BTreeMap::new(),
            running: None,
            done: Vec::new(),
        })
    }

    /// Whether a tcpsend runs in this boot (started, its summary not seen).
    pub fn running(&self) -> bool {
        self.running.is_some()
    }

    /// The shell command for the next stream (started in the background);
    /// the sink expects it from now on.
    pub fn command(&mut self) -> String {
        self.next_id += 1;
        let e = Expect {
            id: self.next_id,
            first: self.rng.below(1 << 40),
            total: self.rng.range(BYTES.0, BYTES.1),
            back: self.rng.range(BACK.0, BACK.1),
        };
        *self.shared.expect.lock().unwrap() = Some(e);
        self.shared.expected_in.store(self.shared.generation.load(Ordering::SeqCst) + 1, Ordering::SeqCst);
        self.open.insert(e.id, Open { e, started: Instant::now(), sink_ok: false, console_ok: false, failed: false });
        self.running = Some(e.id);
        format!("run tcpsend 10.0.2.2 {} {} {} {} &", self.port, e.total, e.first, e.back)
    }

    /// The shell did not start the last command (the soak counts that).
    pub fn not_started(&mut self) {
        if let Some(id) = self.running.take() {
            self.open.remove(&id);
        }
        *self.shared.expect.lock().unwrap() = None;
    }

    /// Look at one console line for tcpsend's summary.
    pub fn scan(&mut self, line: &str) {
        let Some(at) = line.find("tcpsend: ") else { return };
        let summary = line[at..].trim();
        // None: the rest of a boot whose stream was cut (the console is
        // read once more after QEMU is killed).
        let Some(id) = self.running.take() else { return };
        let Some(o) = self.open.get_mut(&id) else { return };
        match summary_counts(summary) {
            Some((sent, back)) if sent == o.e.total && back == o.e.back => o.console_ok = true,
            _ => {
                let what =
                    format!("stream {} ({} bytes from {}, {} back): {summary}", id, o.e.total, o.e.first, o.e.back);
                if !o.failed {
                    o.failed = true;
                    self.done.push(Event::Error(what));
                }
            }
        }
        self.settle();
    }

    /// What the sink found since the last call, with the console's side.
    fn drain(&mut self, sunk: Vec<Sunk>) {
        for s in sunk {
            match s {
                Sunk::Ok { id } => {
                    if let Some(o) = self.open.get_mut(&id) {
                        o.sink_ok = true;
                    }
                }
                Sunk::Error { id, what } => match id.and_then(|id| self.open.get_mut(&id)) {
                    Some(o) => {
                        if !o.failed {
                            o.failed = true;
                            self.done.push(Event::Error(format!("stream {} to the host sink: {what}", o.e.id)));
                        }
                    }
                    None => self.done.push(Event::Error(format!("the host sink: {what}"))),
                },
            }
        }
        self.settle();
    }

    /// Streams whose two ends agree are finished.
    fn settle(&mut self) {
        let finished: Vec<u64> =
            self.open.iter().filter(|(_, o)| o.sink_ok && o.console_ok).map(|(id, _)| *id).collect();
        for id in finished {
            if let Some(o) = self.open.remove(&id) {
                if !o.failed {
                    let ms = o.started.elapsed().as_millis() as u64;
                    self.done.push(Event::Finished { bytes: o.e.total, back: o.e.back, ms });
                }
            }
        }
    }

    /// The streams finished, failed or cut since the last call.
    pub fn events(&mut self) -> Vec<Event> {
        let sunk = std::mem::take(&mut *self.shared.sunk.lock().unwrap());
        self.drain(sunk);
        std::mem::take(&mut self.done)
    }

    /// The power is about to be cut (or QEMU killed): the stream under way
    /// was cut off; what the sink found before counts.
    pub fn cut(&mut self) {
        let sunk = {
            let mut sunk = self.shared.sunk.lock().unwrap();
            self.shared.generation.fetch_add(1, Ordering::SeqCst);
            std::mem::take(&mut *sunk)
        };
        *self.shared.expect.lock().unwrap() = None;
        self.drain(sunk);
        self.running = None;
        for (id, o) in std::mem::take(&mut self.open) {
            if !o.failed {
                let ends = match (o.sink_ok, o.console_ok) {
                    (true, _) => "the sink had every byte, tcpsend had not said so",
                    (false, true) => "tcpsend said it was done, the sink was not",
                    (false, false) => "under way",
                };
                self.done.push(Event::Cut(format!(
                    "stream {id} ({} bytes from {}, {} back): {ends}",
                    o.e.total, o.e.first, o.e.back
                )));
            }
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.cut();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Count `events` in `stats`; an error says `at` (when) and `log` (where
/// the console was kept).
pub fn count(stats: &mut Stats, events: Vec<Event>, at: &str, log: &str) {
    for e in events {
        match e {
            Event::Finished { bytes, back, ms } => {
                *stats.client_ops.entry("tcpsend".to_string()).or_default() += 1;
                *stats.client_runs.entry("tcpsend".to_string()).or_default() += 1;
                stats.tcp.streams += 1;
                stats.tcp.bytes += bytes;
                stats.tcp.back_bytes += back;
                stats.tcp.ms.push(ms);
            }
            Event::Cut(what) => {
                stats.tcp.cut_by_power += 1;
                stats.tcp.cut_examples.truncate(4);
                stats.tcp.cut_examples.push(what);
            }
            Event::Error(what) => {
                stats.fail(|z| &mut z.client_errors, 1, format!("tcp stream to the host, {at}: {what}{log}"));
            }
        }
    }
}

/// `(sent, received)` from a successful summary line of tcpsend.
pub fn summary_counts(summary: &str) -> Option<(u64, u64)> {
    let rest = summary.strip_prefix("tcpsend: sent ")?;
    let sent = rest.split_whitespace().next()?.parse().ok()?;
    let back = match rest.split_once(", received ") {
        Some((_, r)) => r.split_whitespace().next()?.parse().ok()?,
        None => 0,
    };
    Some((sent, back))
}

/// The sink's thread: take each connection as the stream expected, and
/// read it on a thread of its own.
fn accept(s: &Arc<Shared>, listener: &TcpListener) {
    while !s.stop.load(Ordering::SeqCst) {
        let conn = match listener.accept() {
            Ok((c, _)) => c,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            Err(e) => {
                report(s, s.generation.load(Ordering::SeqCst), None, format!("accept: {e}"));
                std::thread::sleep(Duration::from_millis(500));
                continue;
            }
        };
        let generation = s.generation.load(Ordering::SeqCst);
        let Some(e) = s.expect.lock().unwrap().take() else {
            // Before this boot's first stream: the machine the power was
            // cut on connected late (RELIABILITY finding 33); drop it.
            if s.expected_in.load(Ordering::SeqCst) == generation + 1 {
                report(s, generation, None, "a connection no stream was expected for".to_string());
            }
            continue;
        };
        s.busy.fetch_add(1, Ordering::SeqCst);
        let shared = Arc::clone(s);
        let spawned = std::thread::Builder::new().name("soak-tcp-stream".into()).spawn(move || {
            let result = sink(conn, e);
            match result {
                Ok(()) => shared.sunk.lock().unwrap().push(Sunk::Ok { id: e.id }),
                Err(what) => report(&shared, generation, Some(e.id), what),
            }
            shared.busy.fetch_sub(1, Ordering::SeqCst);
        });
        if let Err(err) = spawned {
            s.busy.fetch_sub(1, Ordering::SeqCst);
            report(s, generation, Some(e.id), format!("a thread for the connection: {err}"));
        }
    }
}

/// A failure of generation `generation`: counted only if no cut came
/// since (the generation moves under the same lock).
fn report(s: &Shared, generation: u64, id: Option<u64>, what: String) {
    let mut sunk = s.sunk.lock().unwrap();
    if s.generation.load(Ordering::SeqCst) == generation {
        sunk.push(Sunk::Error { id, what });
    }
}

/// Read one stream, checking every byte in order and the total; then send
/// back what tcpsend expects and close.
fn sink(mut c: TcpStream, e: Expect) -> Result<(), String> {
    c.set_nonblocking(false).map_err(|err| err.to_string())?;
    c.set_read_timeout(Some(STALL)).map_err(|err| err.to_string())?;
    c.set_write_timeout(Some(STALL)).map_err(|err| err.to_string())?;
    let mut check = Checker::new(e.first, e.total);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => check.take(&buf[..n])?,
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(format!("nothing for {} s after {} of {} bytes", STALL.as_secs(), check.at, e.total));
            }
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(err) => return Err(format!("{err} after {} of {} bytes", check.at, e.total)),
        }
    }
    check.end()?;
    let back: Vec<u8> = (0..e.back).map(|i| back_byte(e.first.wrapping_add(i))).collect();
    c.write_all(&back).map_err(|err| format!("sending back {} bytes: {err}", e.back))?;
    c.shutdown(Shutdown::Write).map_err(|err| format!("closing after sending back: {err}"))?;
    Ok(())
}

/// The sink's check of one stream: every byte in order, no more than the
/// total, and the total at the end.
pub struct Checker {
    first: u64,
    total: u64,
    /// Bytes checked so far.
    pub at: u64,
}

impl Checker {
    /// A stream of `total` bytes from byte `first` of the pattern.
    pub fn new(first: u64, total: u64) -> Checker {
        Checker { first, total, at: 0 }
    }

    /// The next bytes that arrived.
    pub fn take(&mut self, bytes: &[u8]) -> Result<(), String> {
        for b in bytes {
            if self.at >= self.total {
                return Err(format!("more than the {} bytes sent", self.total));
            }
            let want = stream_byte(self.first.wrapping_add(self.at));
            if *b != want {
                return Err(format!("byte {} of {} is {b:#04x}, not {want:#04x}", self.at, self.total));
            }
            self.at += 1;
        }
        Ok(())
    }

    /// The sender closed: was that all?
    pub fn end(&self) -> Result<(), String> {
        if self.at == self.total {
            Ok(())
        } else {
            Err(format!("the stream ended after {} of {} bytes", self.at, self.total))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_and_the_total_are_checked() {
        let first = 1 << 33;
        let data: Vec<u8> = (0..1000).map(|i| stream_byte(first + i)).collect();
        let mut c = Checker::new(first, 1000);
        c.take(&data[..400]).unwrap();
        assert!(c.end().unwrap_err().contains("400 of 1000"));
        c.take(&data[400..]).unwrap();
        c.end().unwrap();
        assert!(c.take(&[0]).unwrap_err().contains("more than"));
        // A gap: bytes 500.. arrive where 400.. belong.
        let mut c = Checker::new(first, 1000);
        c.take(&data[..400]).unwrap();
        assert!(c.take(&data[500..]).unwrap_err().contains("byte 400"));
        // Another place in the pattern is another stream.
        let mut c = Checker::new(first + 1, 1000);
        assert!(c.take(&data).is_err());
    }

    #[test]
    fn summaries_give_both_counts() {
        assert_eq!(summary_counts("tcpsend: sent 4096 bytes in 12 ms, received 77 bytes"), Some((4096, 77)));
        assert_eq!(summary_counts("tcpsend: sent 4096 bytes in 12 ms"), Some((4096, 0)));
        assert_eq!(summary_counts("tcpsend: send after 10 bytes: Err(Timeout)"), None);
        assert_eq!(summary_counts("tcpsend: received byte 3 is 0x00, not 0x11"), None);
    }

    /// The sink itself, with the host playing tcpsend: a right stream
    /// finishes (and gets its bytes back), a wrong byte is an error.
    #[test]
    fn the_sink_checks_a_real_connection() {
        let mut s = Stream::start(3).unwrap();
        let play = |s: &mut Stream, flip: Option<u64>| {
            let cmd = s.command();
            let w: Vec<u64> = cmd.split_whitespace().skip(4).take(3).filter_map(|w| w.parse().ok()).collect();
            let (total, first, back) = (w[0], w[1], w[2]);
            let mut c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
            let mut data: Vec<u8> = (0..total).map(|i| stream_byte(first + i)).collect();
            if let Some(at) = flip {
                data[at as usize] ^= 0x10;
            }
            // With a wrong byte the sink may close before all is written.
            let wrote = c.write_all(&data).and_then(|()| c.shutdown(Shutdown::Write));
            assert!(wrote.is_ok() || flip.is_some(), "{wrote:?}");
            let mut got = Vec::new();
            let _ = c.read_to_end(&mut got);
            if flip.is_none() {
                assert_eq!(got.len() as u64, back);
                assert!(got.iter().enumerate().all(|(i, b)| *b == back_byte(first + i as u64)));
                s.scan(&format!("[3] tcpsend: sent {total} bytes in 9 ms, received {back} bytes"));
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let events = s.events();
                if !events.is_empty() || Instant::now() > deadline {
                    return events;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        assert!(matches!(play(&mut s, None)[..], [Event::Finished { .. }]));
        let events = play(&mut s, Some(1000));
        assert!(matches!(&events[..], [Event::Error(e)] if e.contains("byte 1000 ")), "{events:?}");
    }

    /// RELIABILITY finding 33 (the short soak of a CI run, seed 7): a
    /// connection that reaches the sink after a cut, before the next boot
    /// has started a stream, is the cut machine's and no error; one that
    /// comes when a stream of this boot has already been taken is.
    #[test]
    fn a_late_connection_of_the_cut_machine_is_not_an_error() {
        let mut s = Stream::start(5).unwrap();
        s.command();
        s.cut();
        assert!(matches!(s.events()[..], [Event::Cut(_)]));
        let late = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(s.events(), []);
        drop(late);
        // The next boot's stream, then a second connection for it.
        s.command();
        let first = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        let stray = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let events = loop {
            let events = s.events();
            if !events.is_empty() || Instant::now() > deadline {
                break events;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(matches!(&events[..], [Event::Error(e)] if e.contains("no stream was expected")), "{events:?}");
        drop((first, stray));
    }

    /// The soak's side: a stream is finished only when both ends agree,
    /// fails once whatever each end says, and a cut is not an error.
    #[test]
    fn both_ends_must_agree() {
        let mut s = Stream::start(1).unwrap();
        let cmd = s.command();
        let (total, back) = {
            let w: Vec<u64> = cmd.split_whitespace().skip(4).take(3).filter_map(|w| w.parse().ok()).collect();
            (w[0], w[2])
        };
        assert!(s.running());
        s.scan(&format!("[9] tcpsend: sent {total} bytes in 5 ms, received {back} bytes"));
        assert!(!s.running());
        assert_eq!(s.events(), []);
        s.drain(vec![Sunk::Ok { id: 1 }]);
        assert!(matches!(s.events()[..], [Event::Finished { bytes, .. }] if bytes == total));
        // A wrong count from tcpsend and a sink error: one error.
        s.command();
        s.scan("tcpsend: sent 1 bytes in 5 ms, received 0 bytes");
        s.drain(vec![Sunk::Error { id: Some(2), what: "reset".into() }]);
        assert!(matches!(s.events()[..], [Event::Error(_)]));
        // Cut under way.
        s.command();
        s.cut();
        assert!(matches!(s.events()[..], [Event::Cut(_)]));
        assert!(!s.running());
    }
}
