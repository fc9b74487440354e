//! The soak's network client, on the host: a thread that downloads a
//! known file from the guest's web server again and again (httpd over
//! net over nic, the file read through fs from the data disk), through a
//! host port QEMU forwards to the guest's port 80, and compares every
//! byte. Now and then it asks for a byte range (206) instead.
//!
//! A download that fails is a client error unless a power cut (or the end
//! of a boot for a hang or a panic, counted on their own) came while it
//! ran: the soak moves the boot generation on before it kills QEMU, and
//! a failed download that started in an older generation is counted as
//! cut off by the power, not as an error; what it received before the
//! cut is still judged (status, length, every body byte so far), and a
//! wrong byte is an error, cut or not. A download that stops for
//! [`STALL`] without a byte fails.

use super::rng::Rng;
use crate::noise::noise;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The file's name in `/www` on the data disk (and its URL path).
pub const FILE: &str = "soak.bin";
/// Its length: a few MiB, not a round number.
pub const SIZE: usize = 3 * 1024 * 1024 + 4321;
/// The seed of its noise.
pub const NOISE_SEED: u64 = 0x50a6;
/// A download that receives nothing for this long has failed.
pub const STALL: Duration = Duration::from_secs(90);
/// One download in this many asks for a byte range.
const RANGE_EVERY: u64 = 2;

/// The file's contents.
pub fn contents() -> Vec<u8> {
    noise(SIZE, NOISE_SEED)
}

/// What one download came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The bytes were right (`range`: a byte range, else the whole file),
    /// in `ms` milliseconds.
    Ok { range: bool, bytes: u64, ms: u64 },
    /// It failed, and a power cut came while it ran: not an error; the
    /// `bytes` of body it received first were right.
    Cut { what: String, bytes: u64 },
    /// It failed or the bytes were wrong, with no power cut to explain it.
    Error(String),
}

/// What the soak and the thread share.
#[derive(Default)]
struct Shared {
    /// The forwarded host port while a boot serves (`None` between boots
    /// and at the end).
    port: Mutex<Option<u16>>,
    /// Moved on before each power cut.
    generation: AtomicU64,
    /// A download is under way (set under the `port` lock).
    busy: AtomicBool,
    stop: AtomicBool,
    events: Mutex<Vec<Event>>,
}

/// The running client.
pub struct Web {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Web {
    /// Start the thread (idle until [`Web::serve`]); its choices of range
    /// come from `seed`.
    pub fn start(seed: u64) -> Web {
        let shared = Arc::new(Shared::default());
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("soak-http".into())
            .spawn(move || client(&s, seed))
            .expect("a thread for the soak's HTTP client");
        Web { shared, thread: Some(thread) }
    }

    /// A boot serves on host port `port`: download from it.
    pub fn serve(&self, port: u16) {
        *self.shared.port.lock().unwrap() = Some(port);
    }

    /// The power is about to be cut (or QEMU killed): what fails from now
    /// on was cut off.
    pub fn cut(&self) {
        let mut port = self.shared.port.lock().unwrap();
        self.shared.generation.fetch_add(1, Ordering::SeqCst);
        *port = None;
    }

    /// The boot winds down: start no new download and let the one under
    /// way finish (up to `limit`); whether it did.
    pub fn rest(&self, limit: Duration) -> bool {
        *self.shared.port.lock().unwrap() = None;
        let deadline = std::time::Instant::now() + limit;
        while self.shared.busy.load(Ordering::SeqCst) {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        true
    }

    /// The downloads finished since the last call.
    pub fn events(&self) -> Vec<Event> {
        std::mem::take(&mut *self.shared.events.lock().unwrap())
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.cut();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The thread: download while a boot serves.
fn client(s: &Shared, seed: u64) {
    let data = contents();
    let mut rng = Rng::new(seed ^ 0x4854_5450);
    while !s.stop.load(Ordering::SeqCst) {
        let (port, generation) = {
            let port = s.port.lock().unwrap();
            if port.is_some() {
                s.busy.store(true, Ordering::SeqCst);
            }
            (*port, s.generation.load(Ordering::SeqCst))
        };
        let Some(port) = port else {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        };
        let range = (rng.below(RANGE_EVERY) == 0).then(|| {
            let first = rng.below(SIZE as u64) as usize;
            let len = 1 + rng.below(256 * 1024) as usize;
            (first, (first + len).min(SIZE) - 1)
        });
        let started = std::time::Instant::now();
        let mut got = Vec::with_capacity(data.len() + 1024);
        let result = download(port, range, &data, &mut got);
        let event = match result {
            Ok(bytes) => Event::Ok { range: range.is_some(), bytes, ms: started.elapsed().as_millis() as u64 },
            Err(what) => {
                let secs = started.elapsed().as_secs_f64();
                let what = match range {
                    Some((a, b)) => format!("GET /{FILE} bytes {a}-{b} from port {port}: {what} ({secs:.1} s in)"),
                    None => format!("GET /{FILE} from port {port}: {what} ({secs:.1} s in)"),
                };
                if s.generation.load(Ordering::SeqCst) != generation {
                    match check_prefix(&got, range, &data) {
                        Ok(bytes) => Event::Cut { what, bytes },
                        Err(wrong) => Event::Error(format!("{what}, and before the cut: {wrong}")),
                    }
                } else {
                    Event::Error(what)
                }
            }
        };
        s.events.lock().unwrap().push(event);
        s.busy.store(false, Ordering::SeqCst);
        // Some room for the guest's other clients.
        std::thread::sleep(Duration::from_millis(rng.range(200, 1500)));
    }
}

/// One request on a fresh connection (`Connection: close`), the answer
/// read into `got`; the body's length if every byte is right.
fn download(port: u16, range: Option<(usize, usize)>, data: &[u8], got: &mut Vec<u8>) -> Result<u64, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(30)).map_err(|e| format!("connect: {e}"))?;
    c.set_read_timeout(Some(STALL)).map_err(|e| e.to_string())?;
    c.set_write_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    let extra = range.map_or(String::new(), |(a, b)| format!("Range: bytes={a}-{b}\r\n"));
    let request = format!("GET /{FILE} HTTP/1.1\r\nHost: soak\r\n{extra}Connection: close\r\n\r\n");
    c.write_all(request.as_bytes()).map_err(|e| format!("send the request: {e}"))?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Err(format!("nothing for {} s after {} bytes", STALL.as_secs(), got.len()));
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("{e} after {} bytes", got.len())),
        }
    }
    check(got, range, data)
}

/// Judge a whole response: status, `Content-Length` and every body byte.
pub fn check(response: &[u8], range: Option<(usize, usize)>, data: &[u8]) -> Result<u64, String> {
    let (body, want) = judge_head(response, range, data)?;
    if body.len() != want.len() {
        return Err(format!("{} of {} body bytes", body.len(), want.len()));
    }
    same_bytes(body, want)
}

/// Judge the part of a response that came before a cut: if its head is
/// whole, the status, `Content-Length` and every body byte so far; the
/// body bytes judged.
pub fn check_prefix(response: &[u8], range: Option<(usize, usize)>, data: &[u8]) -> Result<u64, String> {
    if !response.windows(4).any(|w| w == b"\r\n\r\n") {
        return Ok(0);
    }
    let (body, want) = judge_head(response, range, data)?;
    if body.len() > want.len() {
        return Err(format!("{} body bytes of {}", body.len(), want.len()));
    }
    same_bytes(body, &want[..body.len()])
}

/// Every byte of `body` is `want`'s: its length.
fn same_bytes(body: &[u8], want: &[u8]) -> Result<u64, String> {
    if let Some(i) = body.iter().zip(want).position(|(a, b)| a != b) {
        return Err(format!("body byte {i} is {:#04x}, not {:#04x}", body[i], want[i]));
    }
    Ok(body.len() as u64)
}

/// A response's head judged (status and `Content-Length`): its body so
/// far and the body wanted.
fn judge_head<'a>(
    response: &'a [u8],
    range: Option<(usize, usize)>,
    data: &'a [u8],
) -> Result<(&'a [u8], &'a [u8]), String> {
    let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Err(format!("no complete head in {} bytes", response.len()));
    };
    let head = String::from_utf8_lossy(&response[..end]);
    let body = &response[end + 4..];
    let status = head.lines().next().unwrap_or("");
    let length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok())?
    });
    let (want_status, want) = match range {
        Some((a, b)) => ("HTTP/1.1 206", &data[a..=b]),
        None => ("HTTP/1.1 200", data),
    };
    if !status.starts_with(want_status) {
        return Err(format!("status {status:?}, wanted {want_status}"));
    }
    if length != Some(want.len()) {
        return Err(format!("Content-Length {length:?}, wanted {}", want.len()));
    }
    Ok((body, want))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: &str, body: &[u8]) -> Vec<u8> {
        let mut r = format!("{status}\r\nContent-Length: {}\r\nServer: x\r\n\r\n", body.len()).into_bytes();
        r.extend_from_slice(body);
        r
    }

    #[test]
    fn responses_are_judged_byte_for_byte() {
        let data: Vec<u8> = (0..100u8).collect();
        assert_eq!(check(&response("HTTP/1.1 200 OK", &data), None, &data), Ok(100));
        assert_eq!(check(&response("HTTP/1.1 206 Partial Content", &data[10..=19]), Some((10, 19)), &data), Ok(10));
        assert!(check(&response("HTTP/1.1 200 OK", &data[..99]), None, &data).is_err());
        assert!(check(&response("HTTP/1.1 500 Oops", &data), None, &data).is_err());
        assert!(check(&response("HTTP/1.1 200 OK", &data[10..=19]), Some((10, 19)), &data).is_err());
        let mut wrong = data.clone();
        wrong[57] ^= 1;
        assert!(check(&response("HTTP/1.1 200 OK", &wrong), None, &data).unwrap_err().contains("byte 57"));
        let mut short = response("HTTP/1.1 200 OK", &data);
        short.truncate(short.len() - 3);
        assert!(check(&short, None, &data).unwrap_err().contains("97 of 100"));
        assert!(check(b"HTTP/1.1 200 OK\r\n", None, &data).is_err());
    }

    #[test]
    fn what_came_before_a_cut_is_judged_too() {
        let data: Vec<u8> = (0..100u8).collect();
        let mut cut = response("HTTP/1.1 200 OK", &data);
        cut.truncate(cut.len() - 40);
        assert_eq!(check_prefix(&cut, None, &data), Ok(60));
        assert_eq!(check_prefix(b"HTTP/1.1 200 OK\r\nContent-Le", None, &data), Ok(0));
        assert_eq!(check_prefix(b"", None, &data), Ok(0));
        let mut wrong = cut.clone();
        let at = wrong.len() - 5;
        wrong[at] ^= 1;
        assert!(check_prefix(&wrong, None, &data).unwrap_err().contains("byte 55"));
        let mut ranged = response("HTTP/1.1 206 Partial Content", &data[10..=49]);
        ranged.truncate(ranged.len() - 10);
        assert_eq!(check_prefix(&ranged, Some((10, 49)), &data), Ok(30));
        assert!(check_prefix(&response("HTTP/1.1 404 Not Found", b"no"), None, &data).is_err());
    }
}
