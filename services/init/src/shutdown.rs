//! Power-off and reset, done so that nothing is lost: init asks every
//! resilient service's companion that keeps its checkpoints in the vault
//! (each registers `NAME.control`) for a final checkpoint, keeps serving
//! the directory while they commit (a companion may need it, e.g. to reach
//! the vault again), and turns the power off once every one has answered
//! or [`FINAL_CHECKPOINT_NS`] has passed.
//!
//! What it says is what happened: a checkpoint that reached the vault is
//! reported with its size, one that did not (the companion refused: the
//! vault could not be used, or the store is not durable; no answer; the
//! companion went away) is a warning naming the service, and a service
//! whose manifest says `store = "memory"` is not asked at all (its
//! checkpoints go with the power): init says it keeps nothing in the vault.
//! A summary line ends it, for a reset as for a power-off.

use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;
use libos::channel::{Channel, ChannelError, Waitable};
use resiliency_lib::control::{Reply as ControlReply, Request as ControlRequest};

/// How long the companions together may take over their final checkpoints.
pub const FINAL_CHECKPOINT_NS: u64 = 10_000_000_000;

/// A power-off (or reset) waiting for the final checkpoints.
pub struct Shutdown {
    /// Reset rather than power off.
    pub reset: bool,
    /// Who asked (each is answered only if the power stays on).
    pub requesters: Vec<u32>,
    /// Companions still committing: service name and control channel.
    pending: Vec<(String, Channel<ControlRequest, ControlReply>)>,
    /// Services whose final checkpoint reached the vault.
    stored: Vec<String>,
    /// Services whose final checkpoint did not.
    lost: Vec<String>,
    deadline_ns: u64,
}

/// What init is about to do, for its messages.
pub fn action(reset: bool) -> &'static str {
    if reset {
        "reset"
    } else {
        "power off"
    }
}

impl Shutdown {
    /// Start: ask each `(service, control channel)` for its checkpoint;
    /// `in_memory` are the services that keep nothing in the vault (not
    /// asked), `unreachable` those whose control endpoint could not be
    /// reached (with why).
    pub fn start(
        reset: bool,
        requester: u32,
        controls: Vec<(String, Channel<ControlRequest, ControlReply>)>,
        in_memory: &[String],
        unreachable: Vec<(String, String)>,
    ) -> Shutdown {
        for service in in_memory {
            log::info!("{service} keeps nothing in the vault (store = \"memory\"): no final checkpoint");
        }
        let mut s = Shutdown {
            reset,
            requesters: Vec::from([requester]),
            pending: Vec::new(),
            stored: Vec::new(),
            lost: Vec::new(),
            deadline_ns: libos::time::now_ns() + FINAL_CHECKPOINT_NS,
        };
        for (service, why) in unreachable {
            s.not_stored(service, &why);
        }
        for (service, mut channel) in controls {
            match channel.send(ControlRequest::Checkpoint) {
                Ok(()) => s.pending.push((service, channel)),
                Err(e) => s.not_stored(service, &alloc::format!("{e}")),
            }
        }
        s
    }

    /// Say (loudly) that `service`'s final checkpoint did not reach the vault.
    fn not_stored(&mut self, service: String, why: &str) {
        log::warn!("final checkpoint of {service} did not reach the vault: {why}");
        self.lost.push(service);
    }

    /// The channels to wait on.
    pub fn waitables(&self) -> impl Iterator<Item = &dyn Waitable> {
        self.pending.iter().map(|(_, c)| c as &dyn Waitable)
    }

    /// How long init may sleep before the deadline.
    pub fn timeout(&self) -> Duration {
        Duration::from_nanos(self.deadline_ns.saturating_sub(libos::time::now_ns()))
    }

    /// Collect the answers that arrived; whether the power may go now
    /// (every companion answered, or the time is up).
    pub fn poll(&mut self) -> bool {
        let mut outcomes = Vec::new();
        self.pending.retain_mut(|(service, channel)| {
            let outcome = match channel.try_recv() {
                Ok(None) => return true,
                Ok(Some(ControlReply::Checkpointed { bytes, ns })) => Ok((bytes, ns)),
                Ok(Some(ControlReply::Refused { message })) => Err(message),
                Ok(Some(other)) => Err(alloc::format!("unexpected answer {other:?}")),
                Err(ChannelError::PeerClosed) => Err(String::from("the companion went away")),
                Err(e) => Err(alloc::format!("{e}")),
            };
            outcomes.push((core::mem::take(service), outcome));
            false
        });
        for (service, outcome) in outcomes {
            match outcome {
                Ok((bytes, ns)) => {
                    log::info!("final checkpoint of {service}: {bytes} bytes in the vault in {} ms", ns / 1_000_000);
                    self.stored.push(service);
                }
                Err(why) => self.not_stored(service, &why),
            }
        }
        if !self.pending.is_empty() && libos::time::now_ns() < self.deadline_ns {
            return false;
        }
        let late: Vec<String> = self.pending.drain(..).map(|(service, _)| service).collect();
        for service in late {
            let why = alloc::format!("no answer in {} s", FINAL_CHECKPOINT_NS / 1_000_000_000);
            self.not_stored(service, &why);
        }
        self.summary();
        true
    }

    /// The last word before the power goes.
    fn summary(&self) {
        let what = action(self.reset);
        let stored = self.stored.join(", ");
        if self.lost.is_empty() {
            log::info!("{what}: final checkpoints in the vault: {}", if stored.is_empty() { "none" } else { &stored });
        } else {
            log::warn!(
                "{what}: final checkpoints NOT in the vault: {}; in the vault: {}",
                self.lost.join(", "),
                if stored.is_empty() { "none" } else { &stored }
            );
        }
    }
}
