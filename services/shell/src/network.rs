//! The shell's network commands, as a client of the `net` service:
//!
//! - `net`: the interface (MAC, addresses, gateway, DNS), its counters
//!   (frames, bytes, drops, TCP retransmissions) and every open socket;
//! - `ping HOST [COUNT]`: ICMP echo, one line per reply and a summary
//!   (HOST an address or a name, resolved by DNS through net);
//! - `http get URL [PATH]`: an HTTP/1.0 download, with its size, time and
//!   SHA-256 (saving to PATH waits for the file service).
//!
//! Parsing and the HTTP client's logic (URLs, the response head, the
//! digest) are host-tested; running the commands needs the guest.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// Most echo requests one `ping` sends.
pub const PING_MAX: u32 = 1000;

/// A network command.
#[derive(Debug, PartialEq, Eq)]
pub enum NetCommand {
    /// `net`.
    Status,
    /// `ping HOST [COUNT]`.
    Ping {
        /// An address, or a name to resolve.
        host: String,
        /// Echo requests to send.
        count: u32,
    },
    /// `http get URL [PATH]`.
    HttpGet {
        /// Where from.
        url: Url,
        /// Where to save it (data disk).
        save: Option<String>,
    },
}

/// An `http://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// The host: an address, or a name to resolve.
    pub name: String,
    /// The host as written (for the `Host` header).
    pub host: String,
    /// The port (80 by default).
    pub port: u16,
    /// The path with its query (`/` at least).
    pub path: String,
}

/// Whether `host` can be a host name (letters, digits, `-` and `.`).
pub fn is_host_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host
            .split('.')
            .all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

/// Parse `http://HOST[:PORT][/PATH]`; HOST is a name, an IPv4 address or
/// an IPv6 address in brackets.
pub fn parse_url(text: &str) -> Result<Url, String> {
    let rest = text.strip_prefix("http://").ok_or_else(|| format!("'{text}' is not an http:// URL"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(|| format!("'{authority}': missing ']'"))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| format!("'{authority}': bad port"))?),
        };
        (h, port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => 80,
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| format!("bad port '{p}'"))?,
    };
    if net::addr::parse(host).is_none() && !is_host_name(host) {
        return Err(format!("'{host}' is neither an address nor a host name"));
    }
    if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(String::from("the path has spaces or control characters"));
    }
    Ok(Url { name: host.to_string(), host: authority.to_string(), port, path: path.to_string() })
}

/// Parse a network command (`word` is the command name).
pub fn parse(word: &str, rest: &str) -> Result<NetCommand, String> {
    let args: Vec<&str> = rest.split_whitespace().collect();
    match (word, args.as_slice()) {
        ("net", []) => Ok(NetCommand::Status),
        ("net", _) => Err(String::from("net: takes no arguments")),
        ("ping", [host] | [host, _]) => {
            if net::addr::parse(host).is_none() && !is_host_name(host) {
                return Err(format!("ping: '{host}' is neither an address nor a host name"));
            }
            let count = match args.get(1) {
                None => 4,
                Some(c) => c
                    .parse::<u32>()
                    .ok()
                    .filter(|c| (1..=PING_MAX).contains(c))
                    .ok_or_else(|| format!("ping: bad count '{c}' (1 to {PING_MAX})"))?,
            };
            Ok(NetCommand::Ping { host: host.to_string(), count })
        }
        ("ping", _) => Err(String::from("usage: ping HOST [COUNT]")),
        ("http", ["get", url]) => {
            Ok(NetCommand::HttpGet { url: parse_url(url).map_err(|e| format!("http: {e}"))?, save: None })
        }
        ("http", ["get", url, path]) => Ok(NetCommand::HttpGet {
            url: parse_url(url).map_err(|e| format!("http: {e}"))?,
            save: Some(path.to_string()),
        }),
        ("http", _) => Err(String::from("usage: http get URL [PATH]")),
        _ => Err(format!("unknown network command '{word}'")),
    }
}

/// The status line and headers of an HTTP response.
#[derive(Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// `Content-Length`, if given.
    pub length: Option<u64>,
    /// Bytes of the buffer the head took (the body starts there).
    pub head_len: usize,
}

/// Parse a response head from the start of `buf`: `Ok(None)` if it is not
/// complete yet, `Err` if it is malformed (or longer than 16 KiB).
pub fn parse_head(buf: &[u8]) -> Result<Option<ResponseHead>, String> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > 16384 { Err(String::from("response head over 16 KiB")) } else { Ok(None) };
    };
    let text = core::str::from_utf8(&buf[..end]).map_err(|_| String::from("response head is not text"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1 response: '{status_line}'"));
    }
    let status =
        parts.next().and_then(|s| s.parse::<u16>().ok()).ok_or_else(|| format!("bad status line '{status_line}'"))?;
    let reason = parts.next().unwrap_or("").to_string();
    let mut length = None;
    for line in lines {
        let (name, value) = line.split_once(':').ok_or_else(|| format!("bad header line '{line}'"))?;
        if name.trim().eq_ignore_ascii_case("content-length") {
            length = Some(value.trim().parse::<u64>().map_err(|_| format!("bad Content-Length '{}'", value.trim()))?);
        }
    }
    Ok(Some(ResponseHead { status, reason, length, head_len: end + 4 }))
}

/// The request `http get` sends.
pub fn request_for(url: &Url) -> Vec<u8> {
    format!(
        "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: kintsugi-shell\r\nConnection: close\r\n\r\n",
        url.path, url.host
    )
    .into_bytes()
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(target_os = "none")]
pub use guest::run;

#[cfg(target_os = "none")]
mod guest {
    use super::*;
    use libos::{print, println};
    use net::protocol::{NetClient, Reply};
    use sha2::{Digest, Sha256};

    /// The shell's session with net, opened on first use, dropped when it breaks.
    static SESSION: spin::Mutex<Option<NetClient>> = spin::Mutex::new(None);

    fn with_net<R>(f: impl FnOnce(&mut NetClient) -> Result<R, libos::protocol::ClientError>) -> Option<R> {
        let mut g = SESSION.lock();
        if g.is_none() {
            match libos::directory::connect_within(net::SERVICE, core::time::Duration::from_secs(10)) {
                Ok(ep) => *g = Some(NetClient::new(libos::channel::Channel::new(ep))),
                Err(e) => {
                    println!("net: {e}");
                    return None;
                }
            }
        }
        let r = f(g.as_mut()?);
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                println!("net: {e}");
                *g = None;
                None
            }
        }
    }

    /// The address of `host` (written out, or asked of DNS through net).
    fn address_of(host: &str) -> Option<Vec<u8>> {
        if let Some(a) = net::addr::parse(host) {
            return Some(a);
        }
        match with_net(|n| n.resolve(String::from(host), 5000))? {
            Reply::Resolved { mut addresses } if !addresses.is_empty() => Some(addresses.remove(0)),
            Reply::Resolved { .. } => {
                println!("{host}: no address");
                None
            }
            other => {
                failure(host, other);
                None
            }
        }
    }

    /// Run a network command.
    pub fn run(cmd: NetCommand) {
        match cmd {
            NetCommand::Status => status(),
            NetCommand::Ping { host, count } => {
                if let Some(address) = address_of(&host) {
                    ping(&address, count)
                }
            }
            NetCommand::HttpGet { url, save } => {
                if let Some(path) = save {
                    println!("http: saving to {path} needs the file service, which is not there yet");
                    return;
                }
                http_get(&url);
            }
        }
    }

    fn failure(what: &str, r: Reply) {
        match r {
            Reply::Failed { code, message } => println!("{what}: error {code}: {message}"),
            other => println!("{what}: unexpected answer {other:?}"),
        }
    }

    fn status() {
        let Some(r) = with_net(|n| n.status()) else { return };
        let Reply::Interface {
            mac,
            config,
            ipv4,
            prefix,
            gateway,
            dns,
            ipv6,
            frames_in,
            frames_out,
            bytes_in,
            bytes_out,
            dropped,
            retransmissions,
            failed_requests,
            sockets,
        } = r
        else {
            return failure("net", r);
        };
        let mac: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
        let v4 = if ipv4.is_empty() { String::from("none") } else { format!("{}/{prefix}", net::addr::show(&ipv4)) };
        println!("mac {}  ipv4 {v4} ({config})", mac.join(":"));
        let dns: Vec<String> = dns.iter().map(|d| net::addr::show(d)).collect();
        println!(
            "gateway {}  dns {}",
            if gateway.is_empty() { String::from("none") } else { net::addr::show(&gateway) },
            if dns.is_empty() { String::from("none") } else { dns.join(", ") }
        );
        if !ipv6.is_empty() {
            let v6: Vec<String> = ipv6.iter().map(|a| net::addr::show(a)).collect();
            println!("ipv6 {}", v6.join(", "));
        }
        println!(
            "frames in {frames_in} ({bytes_in} bytes), out {frames_out} ({bytes_out} bytes), dropped {dropped}, retransmissions {retransmissions}, failed requests {failed_requests}"
        );
        let Some(list) = with_net(|n| n.sockets()) else { return };
        let Reply::SocketList { sessions, sockets: ids, states, local, remote, send_queue, recv_queue } = list else {
            return failure("net", list);
        };
        println!("{sockets} sockets");
        if !ids.is_empty() {
            println!(
                "{:>7} {:>6}  {:<24} {:<24} {:<24} {:>6} {:>6}",
                "SESSION", "SOCKET", "STATE", "LOCAL", "REMOTE", "SENDQ", "RECVQ"
            );
        }
        for i in 0..ids.len() {
            println!(
                "{:>7} {:>6}  {:<24} {:<24} {:<24} {:>6} {:>6}",
                sessions[i], ids[i], states[i], local[i], remote[i], send_queue[i], recv_queue[i]
            );
        }
    }

    fn ping(address: &[u8], count: u32) {
        let host = net::addr::show(address);
        let (mut received, mut rtts) = (0u32, Vec::new());
        for seq in 1..=count {
            let started = libos::time::now_ns();
            let Some(r) = with_net(|n| n.ping(address.to_vec(), 56, 2000)) else { return };
            match r {
                Reply::Pong { rtt_us, size } => {
                    received += 1;
                    rtts.push(rtt_us);
                    println!("{size} bytes from {host}: seq={seq} time={}.{:03} ms", rtt_us / 1000, rtt_us % 1000);
                }
                Reply::Failed { code: net::code::TIMED_OUT, .. } => println!("no answer from {host}: seq={seq}"),
                other => {
                    failure("ping", other);
                    return;
                }
            }
            let spent = libos::time::now_ns() - started;
            if seq < count && spent < 500_000_000 {
                libos::time::sleep(core::time::Duration::from_nanos(500_000_000 - spent));
            }
        }
        let loss = (count - received) * 100 / count;
        print!("{count} sent, {received} received, {loss}% loss");
        if let (Some(min), Some(max)) = (rtts.iter().min(), rtts.iter().max()) {
            let avg = rtts.iter().sum::<u64>() / rtts.len() as u64;
            print!(
                ", rtt min/avg/max {}.{:03}/{}.{:03}/{}.{:03} ms",
                min / 1000,
                min % 1000,
                avg / 1000,
                avg % 1000,
                max / 1000,
                max % 1000
            );
        }
        println!();
    }

    fn http_get(url: &Url) {
        let started = libos::time::now_ns();
        let Some(address) = address_of(&url.name) else { return };
        let target = net::addr::show_endpoint(&address, url.port);
        let Some(r) = with_net(|n| n.connect(address.clone(), url.port, 10_000)) else { return };
        let socket = match r {
            Reply::Opened { socket, .. } => socket,
            other => return failure(&format!("http: {target}"), other),
        };
        let result = download(socket, url);
        let _ = with_net(|n| n.close(socket, false));
        let (head, size, digest) = match result {
            Ok(x) => x,
            Err(e) => {
                println!("http: {e}");
                return;
            }
        };
        let ns = (libos::time::now_ns() - started).max(1);
        let kib_s = size as u128 * 1_000_000_000 / 1024 / ns as u128;
        println!(
            "{} {}: {size} bytes in {}.{:03} s ({kib_s} KiB/s), sha256 {}",
            head.status,
            head.reason,
            ns / 1_000_000_000,
            (ns / 1_000_000) % 1000,
            hex(&digest)
        );
    }

    /// Send the request and read the response to its end: the head, the
    /// body's size and SHA-256.
    fn download(socket: u32, url: &Url) -> Result<(ResponseHead, u64, [u8; 32]), String> {
        let request = request_for(url);
        let mut sent = 0;
        while sent < request.len() {
            match with_net(|n| n.send(socket, request[sent..].to_vec(), 10_000)) {
                Some(Reply::Sent { count }) => sent += count as usize,
                Some(Reply::Failed { code, message }) => return Err(format!("send: error {code}: {message}")),
                Some(other) => return Err(format!("send: {other:?}")),
                None => return Err(String::from("net is gone")),
            }
        }
        let mut buf = Vec::new();
        let mut head: Option<ResponseHead> = None;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        loop {
            let r = with_net(|n| n.receive(socket, 65536, 30_000)).ok_or("net is gone")?;
            let (data, end) = match r {
                Reply::Received { data, end } => (data, end),
                Reply::NotReady => return Err(String::from("no data for 30 s")),
                Reply::Failed { code, message } => return Err(format!("receive: error {code}: {message}")),
                other => return Err(format!("receive: {other:?}")),
            };
            if head.is_none() {
                buf.extend_from_slice(&data);
                if let Some(h) = parse_head(&buf)? {
                    let body = &buf[h.head_len..];
                    hasher.update(body);
                    size += body.len() as u64;
                    head = Some(h);
                    buf = Vec::new();
                }
            } else {
                hasher.update(&data);
                size += data.len() as u64;
            }
            let done = head.as_ref().is_some_and(|h| h.length.is_some_and(|l| size >= l));
            if end || done {
                break;
            }
        }
        let head = head.ok_or("the connection ended before a response")?;
        if let Some(l) = head.length {
            if size != l {
                return Err(format!("{size} bytes of {l}"));
            }
        }
        Ok((head, size, hasher.finalize().into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse() {
        assert_eq!(parse("net", ""), Ok(NetCommand::Status));
        assert_eq!(parse("ping", "10.0.2.2"), Ok(NetCommand::Ping { host: "10.0.2.2".into(), count: 4 }));
        assert_eq!(parse("ping", "example.org 3"), Ok(NetCommand::Ping { host: "example.org".into(), count: 3 }));
        let NetCommand::HttpGet { url, save } = parse("http", "get http://10.0.2.2:8000/a/b?c=1 /x.bin").unwrap()
        else {
            panic!()
        };
        assert_eq!(
            url,
            Url { name: "10.0.2.2".into(), host: "10.0.2.2:8000".into(), port: 8000, path: "/a/b?c=1".into() }
        );
        assert_eq!(save.as_deref(), Some("/x.bin"));
        let u = parse_url("http://[fec0::2]/").unwrap();
        assert_eq!((u.port, u.name.as_str(), u.path.as_str()), (80, "fec0::2", "/"));
        assert_eq!(parse_url("http://deb.debian.org/x").unwrap().name, "deb.debian.org");
        assert_eq!(parse_url("http://10.0.2.2").unwrap().path, "/");
        for (w, r, msg) in [
            ("net", "x", "net: takes no arguments"),
            ("ping", "", "usage: ping"),
            ("ping", "host_name!", "neither an address nor a host name"),
            ("ping", "10.0.2.2 0", "bad count"),
            ("ping", "10.0.2.2 x", "bad count"),
            ("http", "", "usage: http get"),
            ("http", "put http://10.0.2.2/", "usage: http get"),
            ("http", "get ftp://x/", "not an http:// URL"),
            ("http", "get http://10.0.2.2:0/", "bad port"),
            ("http", "get http://10.0.2.2:99999/", "bad port"),
            ("http", "get http://exa$mple.com/", "neither an address nor a host name"),
            ("http", "get http://[fec0::2/", "missing ']'"),
        ] {
            let e = parse(w, r).unwrap_err();
            assert!(e.contains(msg), "{w} {r}: {e}");
        }
    }

    #[test]
    fn response_heads() {
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Le"), Ok(None));
        let h = parse_head(b"HTTP/1.1 200 OK\r\nServer: x\r\ncontent-length: 12\r\n\r\nhello").unwrap().unwrap();
        assert_eq!((h.status, h.reason.as_str(), h.length, h.head_len), (200, "OK", Some(12), 50));
        assert!(parse_head(b"SSH-2.0\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 abc OK\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(parse_head(&[b'a'; 20000]).is_err());
        assert_eq!(
            request_for(&parse_url("http://10.0.2.2:8000/f").unwrap()),
            b"GET /f HTTP/1.0\r\nHost: 10.0.2.2:8000\r\nUser-Agent: kintsugi-shell\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
    }
}
