//! The companion's other doors, `NAME.control` and `NAME.notices`:
//! malformed and out-of-turn messages (dropped or refused), crash kinds
//! that do not exist (refused, nothing crashed), a controller that sends
//! many requests and never reads the answers (dropped, while the service
//! and a fresh controller are still served), and a subscriber that breaks
//! the notices protocol (dropped).

use crate::probe::{self, Expect};
use crate::targets::Target;
use crate::{Report, WAIT};
use alloc::format;
use alloc::vec::Vec;
use core::time::Duration;
use libos::channel::HandleList;
use resiliency_lib::control::{self, Request as Ctl};
use resiliency_lib::notices;

/// Stats requests sent at once by the controller that never reads.
const UNREAD_STATS: usize = 400;

/// Every attack on the two doors of service `T`.
pub fn attack<T: Target>(report: &mut Report) {
    let name = format!("{}.control", T::NAME);
    let stats = probe::encode(Ctl::Stats {});
    let mut trailing = stats.clone();
    trailing.push(0);
    let cases: [(&str, Vec<u8>); 9] = [
        ("an empty message", Vec::new()),
        ("an unknown tag", Vec::from([99])),
        ("Stats with a trailing byte", trailing),
        ("Crash without its kind", Vec::from([2])),
        ("Chaos cut short", Vec::from([3, 1, 2])),
        ("Crash of kind 0", probe::encode(Ctl::Crash { kind: 0 })),
        ("Crash of kind 9", probe::encode(Ctl::Crash { kind: 9 })),
        ("Crash of kind 255", probe::encode(Ctl::Crash { kind: 255 })),
        ("random bytes", Vec::from([0x17, 0xff, 0x00, 0x42, 0x99])),
    ];
    for (label, bytes) in cases {
        report.cases += 1;
        let outcome = probe::exchange::<control::Control>(&name, &bytes, false, WAIT);
        if !Expect::Rejected.allows(&outcome) {
            report.fail(format!("{name}: {label}: {outcome:?}, wanted {:?}", Expect::Rejected));
        }
    }
    unread_controller::<T>(&name, &stats, report);
    bad_subscribers(&format!("{}.notices", T::NAME), report);
}

fn unread_controller<T: Target>(name: &str, stats: &[u8], report: &mut Report) {
    report.cases += 1;
    let mut ep = match probe::connect(name) {
        Ok(ep) => ep,
        Err(e) => return report.fail(e),
    };
    for _ in 0..UNREAD_STATS {
        if ep.send_raw(stats, HandleList::default()).is_err() {
            break;
        }
    }
    libos::time::sleep(Duration::from_millis(300));
    if crate::figures::read(T::NAME).is_none() {
        report.fail(format!("{name}: a controller beside one that never reads is not answered"));
    }
    if let Err(e) = T::healthy() {
        report.fail(format!("{}: a client while a controller never reads: {e}", T::NAME));
    }
    let deadline = libos::time::now_ns() + WAIT.as_nanos() as u64;
    while !ep.peer_closed() && libos::time::now_ns() < deadline {
        libos::time::sleep(Duration::from_millis(100));
    }
    if !ep.peer_closed() {
        report.fail(format!("{name}: a controller whose answers fill its ring unread was not dropped"));
    }
}

fn bad_subscribers(name: &str, report: &mut Report) {
    let subscribe = probe::encode(notices::Request::Subscribe {});
    let mut twice = subscribe.clone();
    twice.extend_from_slice(&subscribe);
    let cases: [(&str, Vec<Vec<u8>>); 4] = [
        ("an unknown tag", Vec::from([Vec::from([9u8])])),
        ("Subscribe with trailing bytes", Vec::from([twice])),
        ("Subscribe twice", Vec::from([subscribe.clone(), subscribe])),
        ("an empty message", Vec::from([Vec::new()])),
    ];
    for (label, messages) in cases {
        report.cases += 1;
        let mut ep = match probe::connect(name) {
            Ok(ep) => ep,
            Err(e) => return report.fail(e),
        };
        for m in &messages {
            let _ = ep.send_raw(m, HandleList::default());
        }
        let outcome = probe::next::<notices::Notices>(&mut ep, WAIT);
        if outcome != probe::Outcome::Dropped {
            report.fail(format!("{name}: {label}: {outcome:?}, wanted the subscriber dropped"));
        }
    }
}
