//! The companion engine (being built; see DESIGN.md 5.1-5.4).

use crate::Resilient;

/// Run the companion of `P`'s service, supervising the boot program
/// `service`. Returns the exit code (only on a fatal error).
pub fn run<P: Resilient>(service: &str) -> i32 {
    log::error!("companion for {} ({service}) is not built yet", P::NAME);
    1
}
