//! The web server's core (issue 9): HTTP/1.1 `GET` and `HEAD` with
//! keep-alive and pipelining, `Content-Length`, single `Range` requests,
//! `Last-Modified` and `If-Modified-Since`, content types by extension,
//! listings of folders without `index.html`, the right status for bad
//! requests (400, 404, 405, 413, 414, 416, 431, 505), paths that never
//! leave the served folder, per-connection deadlines, and `/status` and
//! `/status.html`.
//!
//! - [`server`]: [`Server`], the connections' state machine, fed bytes and
//!   time by the program, which owns the sockets;
//! - [`request`]: parsing a request head and its path;
//! - [`response`]: status lines, headers, content types, pages;
//! - [`files`]: the [`files::FileSource`] the files come through (the file
//!   service's, or an in-memory tree);
//! - [`status`]: the resilient services' figures as JSON and as a page;
//! - [`date`]: HTTP dates.
//!
//! The crate is `no_std` and tested on the host; the program (`httpd`) is
//! its glue to the `net` service.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod date;
pub mod files;
#[cfg(target_os = "none")]
pub mod program;
pub mod request;
pub mod response;
pub mod server;
pub mod status;

pub use server::{Config, Server};
