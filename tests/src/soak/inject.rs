//! What the soak does to the running system, chosen at random (seeded):
//! crashes of every kind into every resilient service, a driver killed
//! with the services above it crashed meanwhile, chaos (a share of
//! requests crash the service) for a while, `kill vault` while kvcommit's
//! checkpoints are committing, the memory hog, the hostile client (see
//! [`super::attackers`]; the syscall fuzzer is not chosen here, it runs
//! again as soon as its last run ended), and the shell's own checked
//! calls to blk and nic. Companion kills with their flag (on by default),
//! of the services in [`COMPANION_KILLS`]. The network joins it: net (the
//! stack over nic) and httpd (the web server over net and fs) are crashed
//! like the others, and together with what is below them (nic with net,
//! net with httpd, fs with httpd) while the host downloads from httpd
//! (see [`super::web`]).

use super::rng::Rng;

/// The resilient services the soak crashes (waiter, the test service of
/// held requests and timer events, included: every crash of it replays
/// the ticks its companion originated).
pub const SERVICES: [&str; 8] = ["kv", "tally", "blk", "nic", "fs", "net", "httpd", "waiter"];
/// The services whose companions the soak kills: those whose clients lose
/// nothing when the companion dies. kv's writes are durable (acknowledged
/// only once in the vault); blk's state is the device. fs acknowledges a
/// write before it is durable (only `sync` waits), as a disk does, so a
/// companion death loses what a power cut would: the soak's fsload checks
/// every answer and would count it; tally likewise. net and httpd keep
/// their checkpoints in their companions' memory (`store = "memory"`): a
/// companion's death is their state's death (every connection reset), as
/// a power cut would be.
pub const COMPANION_KILLS: [&str; 2] = ["kv", "blk"];
/// `crash NAME KIND`: the ways (empty: killed by the kernel).
pub const KINDS: [&str; 6] = ["", "fault", "hang", "panic", "violation", "corrupt"];

/// One injection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `crash SERVICE KIND`.
    Crash { service: &'static str, kind: &'static str },
    /// `kill DRIVER`, then `crash` each of the services above it while the
    /// driver restarts (blk under fs and kv; nic under net and kv; net
    /// under httpd; fs under httpd).
    Together { driver: &'static str, above: Vec<(&'static str, &'static str)> },
    /// `chaos SERVICE PERCENT` for a while.
    ChaosOn { service: &'static str, percent: &'static str },
    /// `chaos SERVICE 0`.
    ChaosOff { service: &'static str },
    /// `kill vault` (kvcommit commits every few ops, so mostly mid-commit).
    KillVault,
    /// `run hog &`: takes all the memory and handles it may, then gives
    /// them back.
    Hog,
    /// `kill SERVICE-companion` (only with the companion-kills flag).
    KillCompanion { service: &'static str },
    /// The shell writes 8 random bytes to a sector of the data disk's
    /// blkpattern area and reads them back.
    BlkProbe { lba: u64, bytes: [u8; 8] },
    /// The shell asks nic for its status.
    NicProbe,
    /// `run hostile seed=SEED ... SERVICE &` (if it is not running
    /// already).
    Hostile { seed: u64, service: &'static str },
}

/// The services whose chaos stays on all the time with steady chaos (see
/// `Options::steady_chaos`): those whose clients keep them busy; the
/// periods of chaos then come and go on net, httpd and waiter.
pub const STEADY_CHAOS: [&str; 5] = ["kv", "tally", "blk", "fs", "nic"];

/// The chaos percentages per service: high enough for many crashes under
/// the clients' load, low enough that the load makes progress.
pub fn chaos_percent(service: &str) -> &'static str {
    match service {
        "kv" | "tally" => "3",
        // Every frame and every poll of httpd is a request of net's.
        "net" => "1",
        _ => "2",
    }
}

/// The chaos percentages of steady chaos: several times those of a
/// period, since a crash the companion injects is never counted against
/// the request (its rerun has no chaos), so clients see only delay. The
/// services that recover in a few milliseconds (kv, tally, nic) take the
/// most; blk (its card is set up again) and fs (its mount) less. (Until
/// 2026-12-07 kv and tally had 8 and the rest 5, and 60-minute runs
/// injected about 6,000 crashes at either rate: a chaos hang spun at
/// service priority and held up the clients whose requests the chaos
/// strikes, RELIABILITY finding 26. Since that was fixed, these rates
/// make about 13,000 an hour.)
pub fn steady_percent(service: &str) -> &'static str {
    match service {
        "kv" | "tally" => "20",
        "nic" => "15",
        "net" => "2",
        _ => "5",
    }
}

/// Choose the next injection. `chaos_on` are the services with chaos on
/// that may be turned off, `steady` those whose chaos stays on.
pub fn choose(rng: &mut Rng, chaos_on: &[&'static str], steady: &[&str], companion_kills: bool) -> Action {
    let roll = rng.below(100);
    match roll {
        0..=44 => Action::Crash { service: rng.pick(&SERVICES), kind: rng.pick(&KINDS) },
        45..=59 => {
            let above: Vec<(&'static str, &'static str)> = match rng.below(3) {
                0 => vec![("fs", rng.pick(&KINDS))],
                1 => vec![("kv", rng.pick(&KINDS))],
                _ => vec![("fs", rng.pick(&KINDS)), ("kv", rng.pick(&KINDS))],
            };
            match rng.below(8) {
                0 => Action::Together { driver: "nic", above: vec![("net", rng.pick(&KINDS))] },
                1 => {
                    Action::Together { driver: "nic", above: vec![("net", rng.pick(&KINDS)), ("kv", rng.pick(&KINDS))] }
                }
                2 => Action::Together { driver: "net", above: vec![("httpd", rng.pick(&KINDS))] },
                3 => Action::Together { driver: "fs", above: vec![("httpd", rng.pick(&KINDS))] },
                _ => Action::Together { driver: "blk", above },
            }
        }
        60..=71 => {
            let off: Vec<&'static str> = chaos_on.to_vec();
            if !off.is_empty() && (chaos_on.len() >= 3 || rng.chance(35)) {
                Action::ChaosOff { service: rng.pick(&off) }
            } else {
                let candidates: Vec<&'static str> =
                    SERVICES.iter().copied().filter(|s| !chaos_on.contains(s) && !steady.contains(s)).collect();
                if candidates.is_empty() {
                    return Action::NicProbe;
                }
                let service = rng.pick(&candidates);
                Action::ChaosOn { service, percent: chaos_percent(service) }
            }
        }
        72..=77 => Action::KillVault,
        78..=81 => Action::Hog,
        82..=90 => {
            let lba = rng.range(super::clients::BLK_LO, super::clients::BLK_HI - 1);
            Action::BlkProbe { lba, bytes: rng.next_u64().to_le_bytes() }
        }
        91..=95 if companion_kills => Action::KillCompanion { service: rng.pick(&COMPANION_KILLS) },
        96 | 97 => Action::Hostile { seed: rng.below(1 << 32), service: rng.pick(&super::attackers::HOSTILE_TARGETS) },
        _ => Action::NicProbe,
    }
}

/// `crash SERVICE KIND` as typed.
pub fn crash_line(service: &str, kind: &str) -> String {
    if kind.is_empty() {
        format!("crash {service}")
    } else {
        format!("crash {service} {kind}")
    }
}

/// The recovery time in `crash`'s answer (`NAME: VERB; recovered in
/// 12.345 ms (restart #N)`), in ns.
pub fn recovery_ns(answer: &str) -> Option<u64> {
    let rest = answer.split("; recovered in ").nth(1)?;
    let ms = rest.split(" ms").next()?;
    let (whole, frac) = ms.split_once('.').unwrap_or((ms, "0"));
    let frac: String = frac.chars().chain("000".chars()).take(3).collect();
    Some(whole.trim().parse::<u64>().ok()? * 1_000_000 + frac.parse::<u64>().ok()? * 1000)
}

/// The hex bytes as `blk read` prints them on one line.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_times() {
        assert_eq!(recovery_ns("kv: faulted; recovered in 12.345 ms (restart #3)"), Some(12_345_000));
        assert_eq!(recovery_ns("crash: no"), None);
    }

    #[test]
    fn choices_cover_everything_and_respect_the_flag() {
        let mut rng = Rng::new(1);
        let mut kinds = std::collections::HashSet::new();
        for _ in 0..2000 {
            let a = choose(&mut rng, &["kv"], &[], false);
            assert!(!matches!(a, Action::KillCompanion { .. }));
            kinds.insert(std::mem::discriminant(&a));
        }
        assert_eq!(kinds.len(), 9);
        assert!((0..2000).any(|_| matches!(choose(&mut rng, &[], &[], true), Action::KillCompanion { .. })));
        let mut drivers = std::collections::BTreeSet::new();
        let mut crashed = std::collections::BTreeSet::new();
        for _ in 0..4000 {
            match choose(&mut rng, &[], &[], true) {
                Action::Together { driver, above } => {
                    drivers.insert((driver, above[0].0));
                }
                Action::Crash { service, kind } => {
                    crashed.insert((service, kind));
                }
                _ => {}
            }
        }
        for pair in [("blk", "fs"), ("blk", "kv"), ("nic", "net"), ("net", "httpd"), ("fs", "httpd")] {
            assert!(drivers.contains(&pair), "{pair:?} never crashed together");
        }
        assert_eq!(crashed.len(), SERVICES.len() * KINDS.len(), "every kind into every service");
    }

    #[test]
    fn steady_chaos_is_never_turned_on_or_off_by_the_periods() {
        let mut rng = Rng::new(3);
        for _ in 0..2000 {
            match choose(&mut rng, &["net"], &STEADY_CHAOS, true) {
                Action::ChaosOn { service, .. } => assert!(["httpd", "waiter"].contains(&service), "{service}"),
                Action::ChaosOff { service } => assert_eq!(service, "net"),
                _ => {}
            }
        }
    }
}
