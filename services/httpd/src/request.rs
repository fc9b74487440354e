//! Reading an HTTP/1.x request head: the request line, the headers that
//! matter, the limits (a request line over [`MAX_LINE`] is 414, a head
//! over [`MAX_HEAD`] or [`MAX_FIELDS`] fields is 431, a body over
//! [`MAX_BODY`] is 413), and the target path made safe (percent-decoded,
//! `.` and `..` resolved, never above the root: 400).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// Longest request line.
pub const MAX_LINE: usize = 8 * 1024;
/// Longest head (request line and headers).
pub const MAX_HEAD: usize = 16 * 1024;
/// Most header fields.
pub const MAX_FIELDS: usize = 100;
/// Largest request body the server reads (and throws away: GET and HEAD
/// have no use for one).
pub const MAX_BODY: u64 = 64 * 1024;

/// A parsed request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// The method.
    pub method: String,
    /// The path, decoded and normalised (`/` at least; a folder keeps its
    /// trailing `/`).
    pub path: String,
    /// HTTP/1.1 (else 1.0).
    pub http11: bool,
    /// The connection stays open after the response.
    pub keep_alive: bool,
    /// Body bytes that follow the head.
    pub body: u64,
    /// The `Range` header.
    pub range: Option<String>,
    /// The `If-Modified-Since` header.
    pub if_modified_since: Option<String>,
}

/// Why a head was refused: the status to answer with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// 400, 413, 414, 431, 505.
    pub status: u16,
    /// What was wrong.
    pub why: String,
}

fn refuse(status: u16, why: impl Into<String>) -> Refusal {
    Refusal { status, why: why.into() }
}

/// Where the head in `buf` ends (the index after its blank line), if it
/// is all there; a refusal if it cannot be a valid head whatever follows.
pub fn head_end(buf: &[u8]) -> Result<Option<usize>, Refusal> {
    // Blank lines before a request are ignored (RFC 9112 2.2).
    let start = buf.iter().position(|b| *b != b'\r' && *b != b'\n').unwrap_or(buf.len());
    let body = &buf[start..];
    let line_end = body.iter().position(|b| *b == b'\n');
    if line_end.unwrap_or(body.len()) > MAX_LINE {
        return Err(refuse(414, "request line too long"));
    }
    let mut i = 0;
    while let Some(nl) = body[i..].iter().position(|b| *b == b'\n') {
        let next = i + nl + 1;
        let rest = &body[next..];
        if rest.starts_with(b"\r\n") {
            return Ok(Some(start + next + 2));
        }
        if rest.starts_with(b"\n") {
            return Ok(Some(start + next + 1));
        }
        i = next;
    }
    if body.len() > MAX_HEAD {
        return Err(refuse(431, "request head too large"));
    }
    Ok(None)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Parse a complete head (as found by [`head_end`]).
pub fn parse(head: &[u8]) -> Result<Head, Refusal> {
    if head.len() > MAX_HEAD + 4 {
        return Err(refuse(431, "request head too large"));
    }
    let text = core::str::from_utf8(head).map_err(|_| refuse(400, "the head is not UTF-8"))?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).skip_while(|l| l.is_empty());
    let line = lines.next().unwrap_or("");
    if line.len() > MAX_LINE {
        return Err(refuse(414, "request line too long"));
    }
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, target, version] = parts.as_slice() else {
        return Err(refuse(400, "malformed request line"));
    };
    if !is_token(method) {
        return Err(refuse(400, "malformed method"));
    }
    let http11 = match *version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        v if v.len() == 8 && v.starts_with("HTTP/") && v.as_bytes()[6] == b'.' => {
            return Err(refuse(505, "HTTP version not supported"))
        }
        _ => return Err(refuse(400, "malformed HTTP version")),
    };
    let mut fields = 0;
    let (mut host, mut keep_alive, mut close) = (false, false, false);
    let mut body: Option<u64> = None;
    let (mut range, mut ims) = (None, None);
    for l in lines {
        if l.is_empty() {
            break;
        }
        fields += 1;
        if fields > MAX_FIELDS {
            return Err(refuse(431, "too many header fields"));
        }
        let Some((name, value)) = l.split_once(':') else { return Err(refuse(400, "malformed header field")) };
        if !is_token(name) {
            return Err(refuse(400, "malformed header field name"));
        }
        let value = value.trim_matches(|c| c == ' ' || c == '\t');
        if value.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f) {
            return Err(refuse(400, "control characters in a header field"));
        }
        match name.to_ascii_lowercase().as_str() {
            "host" => {
                if host {
                    return Err(refuse(400, "two Host fields"));
                }
                host = true;
            }
            "connection" => {
                for t in value.split(',').map(|t| t.trim().to_ascii_lowercase()) {
                    match t.as_str() {
                        "close" => close = true,
                        "keep-alive" => keep_alive = true,
                        _ => {}
                    }
                }
            }
            "content-length" => {
                let n = value
                    .parse::<u64>()
                    .ok()
                    .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(|| refuse(400, "malformed Content-Length"))?;
                if body.is_some_and(|b| b != n) {
                    return Err(refuse(400, "conflicting Content-Length fields"));
                }
                body = Some(n);
            }
            "transfer-encoding" => return Err(refuse(400, "request bodies with Transfer-Encoding are not accepted")),
            "range" => range = Some(value.to_string()),
            "if-modified-since" => ims = Some(value.to_string()),
            _ => {}
        }
    }
    if http11 && !host {
        return Err(refuse(400, "HTTP/1.1 request without Host"));
    }
    let body = body.unwrap_or(0);
    if body > MAX_BODY {
        return Err(refuse(413, "request body too large"));
    }
    let path = target_path(target)?;
    Ok(Head {
        method: method.to_string(),
        path,
        http11,
        keep_alive: if http11 { !close } else { keep_alive && !close },
        body,
        range,
        if_modified_since: ims,
    })
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The path of a request target, decoded and normalised; `..` that would
/// climb above the root, bad percent-encoding, NUL or backslashes are 400.
pub fn target_path(target: &str) -> Result<String, Refusal> {
    let target = match target.strip_prefix("http://") {
        // absolute-form: drop the authority.
        Some(rest) => rest.find('/').map(|i| &rest[i..]).unwrap_or("/"),
        None => target,
    };
    if !target.starts_with('/') {
        return Err(refuse(400, "the target is not a path"));
    }
    let raw = target.split(['?', '#']).next().unwrap_or("/");
    let mut bytes = Vec::with_capacity(raw.len());
    let b = raw.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let (Some(h), Some(l)) = (b.get(i + 1).and_then(|x| hex(*x)), b.get(i + 2).and_then(|x| hex(*x))) else {
                return Err(refuse(400, "bad percent-encoding"));
            };
            bytes.push(h * 16 + l);
            i += 3;
        } else {
            bytes.push(b[i]);
            i += 1;
        }
    }
    let decoded = String::from_utf8(bytes).map_err(|_| refuse(400, "the path is not UTF-8"))?;
    if decoded.bytes().any(|b| b < 0x20 || b == 0x7f || b == b'\\') {
        return Err(refuse(400, "control characters or backslashes in the path"));
    }
    let mut segments: Vec<&str> = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if segments.pop().is_none() {
                    return Err(refuse(400, "the path leaves the root"));
                }
            }
            s => segments.push(s),
        }
    }
    let mut path = String::from("/");
    path.push_str(&segments.join("/"));
    let trailing = decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/..");
    if trailing && !segments.is_empty() {
        path.push('/');
    }
    Ok(path)
}

/// A `Range` header no byte of the file satisfies (answered 416).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unsatisfiable;

/// A byte range of a file of `size` bytes: `Ok(Some((first, last)))`
/// (inclusive) to serve, `Ok(None)` to ignore the header (serve it all),
/// `Err(Unsatisfiable)` when unsatisfiable (416).
pub fn byte_range(header: &str, size: u64) -> Result<Option<(u64, u64)>, Unsatisfiable> {
    let Some(spec) = header.trim().strip_prefix("bytes=") else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None); // several ranges: the whole file instead
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return Ok(None) };
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    match (a.trim(), b.trim()) {
        ("", suffix) => match num(suffix) {
            Some(0) => Err(Unsatisfiable),
            Some(n) if size > 0 => Ok(Some((size.saturating_sub(n), size - 1))),
            Some(_) => Err(Unsatisfiable),
            None => Ok(None),
        },
        (first, "") => match num(first) {
            Some(f) if f < size => Ok(Some((f, size - 1))),
            Some(_) => Err(Unsatisfiable),
            None => Ok(None),
        },
        (first, last) => match (num(first), num(last)) {
            (Some(f), Some(l)) if f <= l => {
                if f < size {
                    Ok(Some((f, l.min(size - 1))))
                } else {
                    Err(Unsatisfiable)
                }
            }
            _ => Ok(None),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(s: &str) -> Result<Head, Refusal> {
        let end = head_end(s.as_bytes())?.expect("complete");
        parse(&s.as_bytes()[..end])
    }

    #[test]
    fn heads() {
        let h = head("GET /a/b.txt?x=1 HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\n\r\n").unwrap();
        assert_eq!(h.method, "GET");
        assert_eq!(h.path, "/a/b.txt");
        assert!(h.http11 && h.keep_alive);
        assert_eq!(h.range.as_deref(), Some("bytes=0-9"));
        let h = head("GET / HTTP/1.0\r\n\r\n").unwrap();
        assert!(!h.keep_alive);
        let h = head("HEAD / HTTP/1.0\nConnection: Keep-Alive\n\n").unwrap();
        assert!(h.keep_alive);
        let h = head("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\n\r\n").unwrap();
        assert!(!h.keep_alive);
        assert_eq!(h.body, 5);
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), Ok(None));
        let status = |s: &str| head(s).unwrap_err().status;
        assert_eq!(status("GET / HTTP/1.1\r\n\r\n"), 400, "no Host");
        assert_eq!(status("GET /\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/2.0\r\nHost: x\r\n\r\n"), 505);
        assert_eq!(status("GET / FTP/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status("G(T / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nHost x\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n"), 413);
        assert_eq!(status("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
        assert_eq!(status("GET /../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status("GET /%2e%2e/x HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status("GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        let long = alloc::format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(10 * 1024));
        assert_eq!(head_end(long.as_bytes()).unwrap_err().status, 414);
        let long_partial = alloc::format!("GET /{}", "a".repeat(9 * 1024));
        assert_eq!(head_end(long_partial.as_bytes()).unwrap_err().status, 414);
        let mut many = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
        for i in 0..2000 {
            many.push_str(&alloc::format!("X-{i}: {}\r\n", "v".repeat(10)));
        }
        assert_eq!(head_end(many.as_bytes()).unwrap_err().status, 431);
        let mut fields = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
        for i in 0..150 {
            fields.push_str(&alloc::format!("X-{i}: v\r\n"));
        }
        fields.push_str("\r\n");
        assert_eq!(status(&fields), 431);
    }

    #[test]
    fn paths_never_leave_the_root() {
        assert_eq!(target_path("/").unwrap(), "/");
        assert_eq!(target_path("/a/./b/../c").unwrap(), "/a/c");
        assert_eq!(target_path("/a/b/").unwrap(), "/a/b/");
        assert_eq!(target_path("/a/b/..").unwrap(), "/a/");
        assert_eq!(target_path("//a//b").unwrap(), "/a/b");
        assert_eq!(target_path("/a%20b").unwrap(), "/a b");
        assert_eq!(target_path("http://host:8080/x?y").unwrap(), "/x");
        for bad in ["/..", "/a/../..", "/%2E%2E/", "/a/%2e%2e/%2e%2e/b", "x", "/a%00b", "/a\\..\\b", "/%c3%28"] {
            assert_eq!(target_path(bad).unwrap_err().status, 400, "{bad}");
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(byte_range("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(byte_range("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(byte_range("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(byte_range("bytes=-1000", 100), Ok(Some((0, 99))));
        assert_eq!(byte_range("bytes=50-5000", 100), Ok(Some((50, 99))));
        assert_eq!(byte_range("bytes=100-", 100), Err(Unsatisfiable));
        assert_eq!(byte_range("bytes=-0", 100), Err(Unsatisfiable));
        assert_eq!(byte_range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(byte_range("bytes=9-1", 100), Ok(None));
        assert_eq!(byte_range("items=0-1", 100), Ok(None));
        assert_eq!(byte_range("bytes=x-1", 100), Ok(None));
    }
}
