//! Power-off and reset, done so that nothing is lost: init asks every
//! resilient service's companion (each registers `NAME.control`) for a
//! final checkpoint, keeps serving the directory while they commit (a
//! companion may need it, e.g. to reach the vault again), and turns the
//! power off once every one has answered or [`FINAL_CHECKPOINT_NS`] has
//! passed.

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
    deadline_ns: u64,
}

impl Shutdown {
    /// Start: ask each `(service, control channel)` for its checkpoint.
    pub fn start(
        reset: bool,
        requester: u32,
        controls: Vec<(String, Channel<ControlRequest, ControlReply>)>,
    ) -> Shutdown {
        let mut pending = Vec::new();
        for (service, mut channel) in controls {
            match channel.send(ControlRequest::Checkpoint) {
                Ok(()) => pending.push((service, channel)),
                Err(e) => log::warn!("final checkpoint of {service}: {e}"),
            }
        }
        Shutdown {
            reset,
            requesters: Vec::from([requester]),
            pending,
            deadline_ns: libos::time::now_ns() + FINAL_CHECKPOINT_NS,
        }
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
        self.pending.retain_mut(|(service, channel)| match channel.try_recv() {
            Ok(None) => true,
            Ok(Some(ControlReply::Checkpointed { bytes, ns })) => {
                log::info!("final checkpoint of {service}: {bytes} bytes in {} ms", ns / 1_000_000);
                false
            }
            Ok(Some(ControlReply::Refused { message })) => {
                log::warn!("final checkpoint of {service}: {message}");
                false
            }
            Ok(Some(other)) => {
                log::warn!("final checkpoint of {service}: unexpected answer {other:?}");
                false
            }
            Err(ChannelError::PeerClosed) => {
                log::warn!("final checkpoint of {service}: the companion went away");
                false
            }
            Err(e) => {
                log::warn!("final checkpoint of {service}: {e}");
                false
            }
        });
        if self.pending.is_empty() {
            return true;
        }
        if libos::time::now_ns() >= self.deadline_ns {
            for (service, _) in &self.pending {
                log::warn!("final checkpoint of {service}: no answer in {} s", FINAL_CHECKPOINT_NS / 1_000_000_000);
            }
            return true;
        }
        false
    }
}
