//! The server core against an in-memory tree: every feature and every bad
//! request of issue 9's web server, through byte streams as a socket would
//! carry them.

use httpd::files::MemoryTree;
use httpd::status::ServiceFigures;
use httpd::{Config, Server};

const MODIFIED: u64 = 1_700_000_000; // Tue, 14 Nov 2023 22:13:20 GMT

fn tree() -> MemoryTree {
    let mut t = MemoryTree::new();
    t.add("/www/index.html", "<h1>hello</h1>\n", MODIFIED);
    t.add("/www/style.css", "body{}", MODIFIED);
    t.add("/www/data/big.bin", (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>(), MODIFIED);
    t.add("/www/data/notes.txt", "notes", MODIFIED + 10);
    t.add("/www/data/a <b>.txt", "odd name", MODIFIED);
    t.add("/secret.txt", "top secret", MODIFIED);
    t
}

struct Harness {
    server: Server,
    fs: MemoryTree,
    now: u64,
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl Harness {
    fn new() -> Harness {
        Harness { server: Server::new(Config::default()), fs: tree(), now: 1000 }
    }

    /// Let `ms` pass as a running program does, looking at the deadlines
    /// every half second; the connections dropped meanwhile.
    fn pass(&mut self, ms: u64) -> Vec<u32> {
        let end = self.now + ms;
        let mut dropped = Vec::new();
        while self.now < end {
            self.now = (self.now + 500).min(end);
            dropped.extend(self.server.on_timer(self.now));
        }
        dropped
    }

    /// Everything the server has to send on `conn`, taken in pieces of
    /// `piece` bytes.
    fn drain(&mut self, conn: u32, piece: usize) -> Vec<u8> {
        let mut all = Vec::new();
        loop {
            let out = self.server.pending(conn, piece, &mut self.fs).to_vec();
            if out.is_empty() {
                break;
            }
            let n = out.len().min(piece);
            all.extend_from_slice(&out[..n]);
            self.server.sent(conn, n, self.now, &mut self.fs);
        }
        all
    }

    fn exchange(&mut self, conn: u32, request: &[u8]) -> Vec<u8> {
        self.server.on_data(conn, request, self.now, &mut self.fs);
        self.drain(conn, 65536)
    }
}

/// Split a byte stream into responses (`head_only` for HEAD requests).
fn responses(mut bytes: &[u8], head_only: &[bool]) -> Vec<Resp> {
    let mut out = Vec::new();
    let mut i = 0;
    while !bytes.is_empty() {
        let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete head") + 4;
        let text = std::str::from_utf8(&bytes[..end - 4]).unwrap();
        let mut lines = text.split("\r\n");
        let status: u16 = lines.next().unwrap()[9..12].parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(": ").unwrap();
                (n.to_string(), v.to_string())
            })
            .collect();
        let len: usize =
            headers.iter().find(|(n, _)| n == "Content-Length").map(|(_, v)| v.parse().unwrap()).unwrap_or(0);
        let len = if head_only.get(i).copied().unwrap_or(false) || status == 304 { 0 } else { len };
        out.push(Resp { status, headers, body: bytes[end..end + len].to_vec() });
        bytes = &bytes[end + len..];
        i += 1;
    }
    out
}

fn get(h: &mut Harness, conn: u32, path: &str, extra: &str) -> Resp {
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\n{extra}\r\n");
    let out = h.exchange(conn, req.as_bytes());
    let mut r = responses(&out, &[]);
    assert_eq!(r.len(), 1, "{}", String::from_utf8_lossy(&out));
    r.remove(0)
}

#[test]
fn files_types_dates_and_keep_alive() {
    let mut h = Harness::new();
    h.server.open(1, h.now);
    let r = get(&mut h, 1, "/", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"<h1>hello</h1>\n");
    assert_eq!(r.header("Content-Type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("Last-Modified"), Some("Tue, 14 Nov 2023 22:13:20 GMT"));
    assert_eq!(r.header("Connection"), Some("keep-alive"));
    // The same connection serves the next requests.
    let r = get(&mut h, 1, "/style.css", "");
    assert_eq!((r.status, r.header("Content-Type")), (200, Some("text/css; charset=utf-8")));
    let r = get(&mut h, 1, "/data/big.bin", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 300_000);
    assert!(r.body.iter().enumerate().all(|(i, b)| *b == (i as u32 * 7 % 251) as u8));
    assert_eq!(r.header("Content-Type"), Some("application/octet-stream"));
    // Not modified since.
    let r = get(&mut h, 1, "/style.css", "If-Modified-Since: Tue, 14 Nov 2023 22:13:20 GMT\r\n");
    assert_eq!(r.status, 304);
    let r = get(&mut h, 1, "/style.css", "If-Modified-Since: Tue, 14 Nov 2023 22:13:19 GMT\r\n");
    assert_eq!(r.status, 200);
    // HEAD: the same headers, no body.
    let out = h.exchange(1, b"HEAD /data/big.bin HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = responses(&out, &[true]);
    assert_eq!((r[0].status, r[0].header("Content-Length")), (200, Some("300000")));
    assert_eq!(out.len(), out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4);
    // Connection: close ends it after the response.
    let r = get(&mut h, 1, "/style.css", "Connection: close\r\n");
    assert_eq!(r.header("Connection"), Some("close"));
    assert!(h.server.finished(1));
}

#[test]
fn pipelined_requests_and_slow_readers() {
    let mut h = Harness::new();
    h.server.open(7, h.now);
    let reqs = b"GET /style.css HTTP/1.1\r\nHost: t\r\n\r\nHEAD / HTTP/1.1\r\nHost: t\r\n\r\nGET /data/notes.txt HTTP/1.1\r\nHost: t\r\n\r\n";
    // Byte by byte in, 7 bytes at a time out.
    for b in reqs.iter() {
        h.server.on_data(7, &[*b], h.now, &mut h.fs);
    }
    let out = h.drain(7, 7);
    let r = responses(&out, &[false, true, false]);
    assert_eq!(r.iter().map(|r| r.status).collect::<Vec<_>>(), [200, 200, 200]);
    assert_eq!(r[0].body, b"body{}");
    assert_eq!(r[2].body, b"notes");
}

#[test]
fn ranges() {
    let mut h = Harness::new();
    h.server.open(1, h.now);
    let r = get(&mut h, 1, "/data/big.bin", "Range: bytes=1000-1999\r\n");
    assert_eq!(r.status, 206);
    assert_eq!(r.header("Content-Range"), Some("bytes 1000-1999/300000"));
    assert_eq!(r.body.len(), 1000);
    assert_eq!(r.body[0], (1000 * 7 % 251) as u8);
    let r = get(&mut h, 1, "/data/big.bin", "Range: bytes=-10\r\n");
    assert_eq!((r.status, r.body.len()), (206, 10));
    assert_eq!(r.header("Content-Range"), Some("bytes 299990-299999/300000"));
    let r = get(&mut h, 1, "/data/big.bin", "Range: bytes=299999-\r\n");
    assert_eq!((r.status, r.body.len()), (206, 1));
    let r = get(&mut h, 1, "/data/big.bin", "Range: bytes=300000-\r\n");
    assert_eq!(r.status, 416);
    assert_eq!(r.header("Content-Range"), Some("bytes */300000"));
    let r = get(&mut h, 1, "/data/big.bin", "Range: bytes=0-1,4-5\r\n");
    assert_eq!((r.status, r.body.len()), (200, 300_000));
}

#[test]
fn folders_are_listed_or_redirected() {
    let mut h = Harness::new();
    h.server.open(1, h.now);
    let r = get(&mut h, 1, "/data", "");
    assert_eq!((r.status, r.header("Location")), (301, Some("/data/")));
    let r = get(&mut h, 1, "/data/", "");
    assert_eq!(r.status, 200);
    let page = String::from_utf8(r.body).unwrap();
    assert!(page.contains("Index of /data/"));
    assert!(page.contains("<a href=\"big.bin\">big.bin</a>") && page.contains("<td>300000</td>"), "{page}");
    assert!(page.contains("<a href=\"a%20%3Cb%3E.txt\">a &lt;b&gt;.txt</a>"), "{page}");
    let r = get(&mut h, 1, "/data/a%20%3Cb%3E.txt", "");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"odd name"[..]));
}

#[test]
fn bad_requests_get_their_status_and_the_server_goes_on() {
    let mut h = Harness::new();
    let long_url = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "x".repeat(10 * 1024));
    let mut big_head = String::from("GET / HTTP/1.1\r\nHost: t\r\n");
    for i in 0..1000 {
        big_head.push_str(&format!("X-Filler-{i}: {}\r\n", "y".repeat(30)));
    }
    big_head.push_str("\r\n");
    let cases: Vec<(Vec<u8>, u16, bool)> = vec![
        (b"GET /nope.html HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), 404, false),
        (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc".to_vec(), 405, false),
        (b"DELETE /index.html HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), 405, false),
        (b"GET / HTTP/1.1\r\n\r\n".to_vec(), 400, true),
        (b"GARBAGE\r\n\r\n".to_vec(), 400, true),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(), 400, true),
        (b"GET /../secret.txt HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), 400, true),
        (b"GET /data/../../secret.txt HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), 400, true),
        (b"GET /%2e%2e/secret.txt HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), 400, true),
        (b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000\r\n\r\n".to_vec(), 413, true),
        (long_url.into_bytes(), 414, true),
        (big_head.into_bytes(), 431, true),
        (b"GET / HTTP/3.0\r\nHost: t\r\n\r\n".to_vec(), 505, true),
    ];
    for (i, (req, status, closes)) in cases.into_iter().enumerate() {
        let conn = 100 + i as u32;
        h.server.open(conn, h.now);
        let out = h.exchange(conn, &req);
        let r = responses(&out, &[]);
        assert_eq!(r[0].status, status, "{}", String::from_utf8_lossy(&req[..req.len().min(60)]));
        assert_eq!(h.server.finished(conn), closes, "request {i}");
        assert!(!String::from_utf8_lossy(&out).contains("top secret"));
        if !closes {
            // The same connection still serves.
            assert_eq!(get(&mut h, conn, "/style.css", "").status, 200);
        }
        h.server.close(conn);
    }
    // A new connection is served as ever.
    h.server.open(1, h.now);
    assert_eq!(get(&mut h, 1, "/", "").status, 200);
    let c = h.server.counters();
    assert_eq!((c.client_errors, c.server_errors), (12, 1));
}

#[test]
fn a_half_sent_request_times_out_without_holding_up_others() {
    let mut h = Harness::new();
    h.server.open(1, h.now);
    h.server.open(2, h.now);
    h.server.on_data(1, b"GET /index.html HTTP/1.1\r\nHo", h.now, &mut h.fs);
    assert!(h.drain(1, 65536).is_empty());
    // Meanwhile connection 2 is served, again and again.
    for _ in 0..5 {
        h.now += 1000;
        assert_eq!(get(&mut h, 2, "/style.css", "").status, 200);
        assert!(h.server.on_timer(h.now).is_empty());
    }
    let deadline = h.server.next_timer().unwrap();
    assert_eq!(deadline, 1000 + 10_000);
    assert!(h.pass(deadline - h.now).is_empty());
    let r = responses(&h.drain(1, 65536), &[]);
    assert_eq!(r[0].status, 408);
    assert!(h.server.finished(1));
    assert!(!h.server.finished(2));
    // An idle keep-alive connection is closed after a minute.
    assert!(h.pass(60_000).is_empty());
    assert!(h.server.finished(2));
    // A client that stops reading is dropped.
    h.server.open(3, h.now);
    h.server.on_data(3, b"GET /data/big.bin HTTP/1.1\r\nHost: t\r\n\r\n", h.now, &mut h.fs);
    let _ = h.server.pending(3, 1000, &mut h.fs);
    h.server.sent(3, 1000, h.now, &mut h.fs);
    assert_eq!(h.pass(60_000), vec![3]);
}

/// RELIABILITY finding 31: a minute in which the server itself was away
/// (its tick held up behind a stalled net) is not held against a client
/// that is downloading; the client's own minute without reading still is.
#[test]
fn the_servers_own_absence_does_not_count_against_a_client() {
    let mut h = Harness::new();
    h.server.open(1, h.now);
    h.server.on_data(1, b"GET /data/big.bin HTTP/1.1\r\nHost: t\r\n\r\n", h.now, &mut h.fs);
    let _ = h.server.pending(1, 1000, &mut h.fs);
    h.server.sent(1, 1000, h.now, &mut h.fs);
    assert!(h.pass(2000).is_empty());
    // Away for 70 s: the next look drops nothing.
    h.now += 70_000;
    assert!(h.server.on_timer(h.now).is_empty(), "dropped for the server's own absence");
    // The state a checkpoint keeps carries the last look.
    let mut e = httpd::codec::Enc::new();
    h.server.save(&mut e);
    let bytes = e.finish();
    h.server = Server::restore(Config::default(), &mut httpd::codec::Dec::new(&bytes)).unwrap();
    // The client still takes nothing: dropped once a minute has passed
    // with the server there to see it (3 s counted before, 1 s of the gap).
    assert!(h.pass(55_000).is_empty());
    assert_eq!(h.pass(2000), vec![1]);
}

#[test]
fn status_json_and_page() {
    let mut h = Harness::new();
    h.server.board.update(
        5000,
        vec![ServiceFigures {
            name: "net".into(),
            pid: 9,
            restarts: 0,
            checkpoints: 4,
            log_len: 12,
            ..Default::default()
        }],
    );
    h.server.board.update(
        6000,
        vec![ServiceFigures {
            name: "net".into(),
            pid: 19,
            restarts: 1,
            checkpoints: 5,
            log_len: 3,
            last_recovery_ns: 2_000_000,
            ..Default::default()
        }],
    );
    h.server.open(1, h.now);
    let r = get(&mut h, 1, "/status", "");
    assert_eq!((r.status, r.header("Content-Type")), (200, Some("application/json")));
    let j = String::from_utf8(r.body).unwrap();
    assert!(j.contains("\"name\":\"net\",\"pid\":19,\"restarts\":1,\"checkpoints\":5,\"log_length\":3,\"last_recovery_ns\":2000000"), "{j}");
    assert!(j.contains("\"recoveries\":[{\"service\":\"net\",\"at_ms\":6000,\"recovery_ns\":2000000}]"), "{j}");
    let r = get(&mut h, 1, "/status.html", "");
    assert_eq!(r.status, 200);
    let page = String::from_utf8(r.body).unwrap();
    assert!(page.contains("<td>net</td><td>19</td><td>1</td><td>5</td><td>3</td><td>2.000 ms</td>"), "{page}");
    assert!(page.contains("setInterval(tick,2000)"));
}
