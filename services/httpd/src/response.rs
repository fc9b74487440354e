//! Building responses: status lines and headers, content types by
//! extension, error pages and folder listings.

use crate::files::DirEntry;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// The server's name in `Server` headers and pages.
pub const SERVER: &str = "kintsugi-httpd";

/// The reason phrase of a status code.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        301 => "Moved Permanently",
        304 => "Not Modified",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// The content type of a file name, by its extension.
pub fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "txt" | "text" | "md" | "log" => "text/plain; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "xml" => "application/xml",
        "csv" => "text/csv; charset=utf-8",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        "tar" => "application/x-tar",
        "wasm" => "application/wasm",
        "mp3" => "audio/mpeg",
        "mp4" => "video/mp4",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// Text made safe inside HTML.
pub fn escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            '\'' => s.push_str("&#39;"),
            c => s.push(c),
        }
    }
    s
}

/// A path segment made safe inside a URL.
pub fn percent_encode(segment: &str) -> String {
    let mut s = String::new();
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// A status line and headers (`extra` are whole lines without CRLF).
pub fn head(status: u16, length: u64, content_type: Option<&str>, keep_alive: bool, extra: &[String]) -> Vec<u8> {
    let mut h = format!("HTTP/1.1 {status} {}\r\nServer: {SERVER}\r\n", reason(status));
    if let Some(t) = content_type {
        h.push_str(&format!("Content-Type: {t}\r\n"));
    }
    h.push_str(&format!("Content-Length: {length}\r\n"));
    for e in extra {
        h.push_str(e);
        h.push_str("\r\n");
    }
    h.push_str(if keep_alive { "Connection: keep-alive\r\n\r\n" } else { "Connection: close\r\n\r\n" });
    h.into_bytes()
}

/// A small HTML page for an error status.
pub fn error_page(status: u16, detail: &str) -> Vec<u8> {
    let r = reason(status);
    format!(
        "<!DOCTYPE html>\n<html><head><title>{status} {r}</title></head><body><h1>{status} {r}</h1><p>{}</p><hr><p>{SERVER}</p></body></html>\n",
        escape(detail)
    )
    .into_bytes()
}

/// The listing of folder `path` (ending in `/`).
pub fn listing(path: &str, entries: &[DirEntry]) -> Vec<u8> {
    let title = escape(path);
    let mut s = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of {title}</title></head><body><h1>Index of {title}</h1>\n<table>\n<tr><th>Name</th><th>Last modified</th><th>Size</th></tr>\n"
    );
    if path != "/" {
        s.push_str("<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
    }
    for e in entries {
        let slash = if e.meta.is_dir { "/" } else { "" };
        let size = if e.meta.is_dir { String::from("-") } else { format!("{}", e.meta.size) };
        s.push_str(&format!(
            "<tr><td><a href=\"{}{slash}\">{}{slash}</a></td><td>{}</td><td>{size}</td></tr>\n",
            percent_encode(&e.name),
            escape(&e.name),
            crate::date::format(e.meta.modified)
        ));
    }
    s.push_str(&format!("</table><hr><p>{SERVER}</p></body></html>\n"));
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::Meta;

    #[test]
    fn types_and_escapes() {
        assert_eq!(content_type("a.HTML"), "text/html; charset=utf-8");
        assert_eq!(content_type("x.tar.gz"), "application/gzip");
        assert_eq!(content_type("noext"), "application/octet-stream");
        assert_eq!(escape("<a href='x'>&</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;");
        assert_eq!(percent_encode("a b/<>.txt"), "a%20b%2F%3C%3E.txt");
        let l = String::from_utf8(listing(
            "/d/",
            &[DirEntry { name: "<x>".into(), meta: Meta { is_dir: false, size: 5, modified: 0 } }],
        ))
        .unwrap();
        assert!(l.contains("<a href=\"%3Cx%3E\">&lt;x&gt;</a>") && l.contains("../"), "{l}");
    }
}
