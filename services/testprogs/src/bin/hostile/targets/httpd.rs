//! httpd under attack through its contract: the figures its companion
//! serves (`Figures`). Its HTTP side is attacked from the host (the
//! network system tests' bad requests); here every malformed, lying and
//! out-of-turn message must be refused without a crash.

use super::{Seed, Target};
use crate::probe::{call, connect, encode, Expect};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use httpd::protocol::{Httpd as Contract, Reply, Request};
use testprogs::Rng;

/// httpd.
pub struct Httpd;

impl Target for Httpd {
    type P = Contract;
    const NAME: &'static str = "httpd";
    const LAST_TAG: u8 = 1;

    fn safe(_: &Request) -> bool {
        true
    }

    fn seeds() -> Vec<Seed> {
        vec![Seed { name: "Figures", bytes: encode(Request::Figures), lengths: vec![], flags: vec![] }]
    }

    fn crafted() -> Vec<(&'static str, Vec<u8>, Option<Expect>)> {
        vec![
            ("Figures with a length after it", Vec::from([1, 0xff, 0xff, 0xff, 0xff]), Some(Expect::Rejected)),
            ("Figures", encode(Request::Figures), Some(Expect::Any)),
        ]
    }

    fn cheap() -> Vec<u8> {
        encode(Request::Figures)
    }

    fn never_read() -> Result<(Vec<u8>, bool), String> {
        Ok((encode(Request::Figures), false))
    }

    fn healthy() -> Result<(), String> {
        let mut c = connect("httpd")?;
        match call::<Contract>(&mut c, Request::Figures) {
            Ok(Reply::Counts { .. }) => Ok(()),
            other => Err(format!("figures: {other:?}")),
        }
    }

    fn random_valid(_: &mut Rng) -> Vec<u8> {
        encode(Request::Figures)
    }
}
