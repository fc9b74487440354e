//! The companions' figures (`NAME.control` Stats) before and after an
//! attack: restarts, divergences and abandoned requests must not grow
//! because of hostile input.

use crate::Report;
use alloc::format;
use libos::println;
use resiliency_lib::control::{Control, Reply, Request};

/// The figures that must not grow.
#[derive(Clone, Copy, Debug, Default)]
pub struct Figures {
    restarts: u64,
    unexplained: u64,
    divergences: u64,
    abandoned: u64,
    injected: u64,
}

/// Service `name`'s figures, or `None` if its companion does not answer.
/// The vault has no companion: its figures are those of its process
/// (`restarts` is its process id, which a restart by init changes).
pub fn read(name: &str) -> Option<Figures> {
    if name == "vault" {
        let list = libos::directory::list().ok()?;
        let p = list.iter().find(|p| p.name() == name && !p.state().is_ended())?;
        return Some(Figures { restarts: p.pid as u64, ..Figures::default() });
    }
    let mut ep = crate::probe::connect(&format!("{name}.control")).ok()?;
    match crate::probe::call::<Control>(&mut ep, Request::Stats {}) {
        Ok(Reply::Figures { restarts, unexplained, divergences, abandoned, injected, .. }) => {
            Some(Figures { restarts, unexplained, divergences, abandoned, injected })
        }
        _ => None,
    }
}

/// Print the change; with `check`, fail on any growth.
pub fn compare(name: &str, before: Option<Figures>, after: Option<Figures>, check: bool, report: &mut Report) {
    let (Some(b), Some(a)) = (before, after) else {
        return report.fail(format!("{name}: its companion's figures cannot be read ({name}.control)"));
    };
    println!(
        "hostile: {name}: restarts {}->{} unexplained {}->{} divergences {}->{} abandoned {}->{} injected {}->{}",
        b.restarts,
        a.restarts,
        b.unexplained,
        a.unexplained,
        b.divergences,
        a.divergences,
        b.abandoned,
        a.abandoned,
        b.injected,
        a.injected
    );
    if !check {
        return;
    }
    for (what, was, is) in [
        ("restarts", b.restarts, a.restarts),
        ("unexplained restarts", b.unexplained, a.unexplained),
        ("divergences", b.divergences, a.divergences),
        ("abandoned requests", b.abandoned, a.abandoned),
    ] {
        if is != was {
            report.fail(format!("{name}: {what} went from {was} to {is} during the attack"));
        }
    }
}
