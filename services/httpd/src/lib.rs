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
//! - [`files`]: the [`files::FileSource`] the files come through, and an
//!   in-memory tree for the host tests; `fsfiles` (guest only): the file
//!   service's `/www`;
//! - [`status`]: the resilient services' figures as JSON and as a page;
//! - [`site`]: the site put in a missing `/www`;
//! - [`codec`]: the state as bytes (the service's checkpoints);
//! - [`date`]: HTTP dates.
//!
//! The crate is `no_std` and its core is tested on the host; `program`
//! (guest only) is the resilient service: its glue to `net` and `fs`.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod codec;
pub mod date;
pub mod files;
#[cfg(target_os = "none")]
pub mod fsfiles;
#[cfg(target_os = "none")]
pub mod program;
pub mod request;
pub mod response;
pub mod server;
pub mod site;
pub mod status;

pub use server::{Config, Server};

/// Generated from `httpd.contract`: the figures its companion serves.
#[cfg(target_os = "none")]
#[allow(clippy::all, missing_docs)]
pub mod protocol {
    include!(concat!(env!("OUT_DIR"), "/httpd.rs"));
}
