//! The nic service: the machine's network card, through the drivers
//! (virtio-net or e1000), as the `nic` contract: raw Ethernet frames in
//! batches. Its state is only its counters; the network outlives it.
//! Frames of an EtherType a session asked for are kept for that session
//! ([`nic::sorter`]).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use drivers::block::DeviceError;
use drivers::net::NetDevice;
use libos::protocol::ReplySink;
use nic::protocol::{dispatch, Nic, NicHandler, Reply};
use nic::sorter::{Sorter, Want};
use nic::{code, MAX_BATCH, MAX_FRAME, MAX_WAIT_MS, MIN_FRAME, STACK_ETHERTYPES};
use resiliency_lib::distill::{from_bytes, to_bytes};
use resiliency_lib::service::{serve, RequestOf, Service};

/// What the service counts (its checkpointed state).
#[derive(Default)]
struct Counters {
    requests: u64,
    frames_sent: u64,
    frames_received: u64,
    bytes_sent: u64,
    bytes_received: u64,
    failed: u64,
}
resiliency_lib::distill!(Counters { requests, frames_sent, frames_received, bytes_sent, bytes_received, failed });

struct NicService {
    counters: Counters,
    card: Option<Box<dyn NetDevice>>,
    /// Frames kept for the sessions that asked for their EtherType (not
    /// checkpointed: frames in flight, lost in a crash as on a wire).
    sorter: Sorter,
    /// The session of the request in hand.
    session: u64,
}

fn open_card() -> Option<Box<dyn NetDevice>> {
    match drivers::net_device() {
        Some(card) => {
            let m = card.mac();
            log::info!(
                "network card {} mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                card.model(),
                m[0],
                m[1],
                m[2],
                m[3],
                m[4],
                m[5]
            );
            Some(card)
        }
        None => {
            log::warn!("no network card");
            None
        }
    }
}

fn failed(code: u32, message: String) -> Reply {
    Reply::Failed { code, message }
}

fn device_failure(e: DeviceError) -> Reply {
    match e {
        DeviceError::Misaligned => failed(code::BAD_FRAME, format!("{e}")),
        DeviceError::NoDevice => failed(code::NO_DEVICE, format!("{e}")),
        _ => failed(code::DEVICE, format!("{e}")),
    }
}

/// The card, or the answer for a machine without one (a free function, so
/// that the rest of the service stays free to borrow while it is in use).
fn present(card: &mut Option<Box<dyn NetDevice>>) -> Result<&mut Box<dyn NetDevice>, Reply> {
    card.as_mut().ok_or_else(|| failed(code::NO_DEVICE, String::from("no network card")))
}

impl NicService {
    // The clock bounds a wait on the card, whose answer comes from the
    // hardware, not from replayed state.
    #[allow(clippy::disallowed_methods)]
    fn send_frames(&mut self, frames: Vec<Vec<u8>>) -> Result<Reply, Reply> {
        if let Some(f) = frames.iter().find(|f| !(MIN_FRAME..=MAX_FRAME).contains(&f.len())) {
            return Err(failed(
                code::BAD_FRAME,
                format!("a frame of {} bytes (frames are {MIN_FRAME} to {MAX_FRAME})", f.len()),
            ));
        }
        let card = present(&mut self.card)?;
        let mut sent = 0;
        let deadline = libos::time::now_ns() + MAX_WAIT_MS as u64 * 1_000_000;
        while sent < frames.len() {
            let batch: Vec<&[u8]> = frames[sent..].iter().map(|f| f.as_slice()).collect();
            let n = card.send(&batch).map_err(device_failure)?;
            sent += n;
            if n == 0 {
                // The transmit ring is full: wait for the card to drain it.
                if libos::time::now_ns() > deadline {
                    return Err(failed(
                        code::DEVICE,
                        format!("the card took {sent} of {} frames in {MAX_WAIT_MS} ms", frames.len()),
                    ));
                }
                card.wait(1_000_000);
            }
        }
        self.counters.frames_sent += sent as u64;
        self.counters.bytes_sent += frames.iter().map(|f| f.len() as u64).sum::<u64>();
        Ok(Reply::Sent { count: sent as u32 })
    }

    // As in `send_frames`: the clock bounds a wait on the card.
    #[allow(clippy::disallowed_methods)]
    fn receive_frames(&mut self, want: Want, max: u32, wait_ms: u32) -> Result<Reply, Reply> {
        let max = (max as usize).min(MAX_BATCH);
        let session = self.session;
        if let Want::Type(t) = want {
            self.sorter.claim(session, t);
        }
        let deadline = libos::time::now_ns() + wait_ms.min(MAX_WAIT_MS) as u64 * 1_000_000;
        let mut frames = self.sorter.take(want, max);
        let card = present(&mut self.card)?;
        while frames.is_empty() && max > 0 {
            let mut fresh = card.receive(max).map_err(device_failure)?;
            let none = fresh.is_empty();
            // Never trust the device: a frame of an impossible size is dropped.
            fresh.retain(|f| {
                let ok = (MIN_FRAME..=MAX_FRAME).contains(&f.len());
                if !ok {
                    log::warn!("dropping a received frame of {} bytes", f.len());
                }
                ok
            });
            frames.extend(self.sorter.sort(session, want, fresh));
            let now = libos::time::now_ns();
            if !frames.is_empty() || now >= deadline {
                break;
            }
            if none {
                card.wait(deadline - now);
            }
        }
        self.counters.frames_received += frames.len() as u64;
        self.counters.bytes_received += frames.iter().map(|f| f.len() as u64).sum::<u64>();
        Ok(Reply::Frames { frames })
    }

    fn answer(&mut self, result: Result<Reply, Reply>, out: &mut dyn ReplySink<Reply>) {
        self.counters.requests += 1;
        match result {
            Ok(r) => out.reply(r),
            Err(r) => {
                if let Reply::Failed { code, message } = &r {
                    log::warn!("request failed ({code}): {message}");
                }
                self.counters.failed += 1;
                out.reply(r)
            }
        }
    }
}

impl NicHandler for NicService {
    fn info(&mut self, out: &mut dyn ReplySink<Reply>) {
        let result = present(&mut self.card).map(|card| Reply::Status {
            mac: card.mac().to_vec(),
            link_up: card.link_up(),
            model: card.model().chars().take(64).collect(),
        });
        self.answer(result, out);
    }

    fn send(&mut self, frames: Vec<Vec<u8>>, out: &mut dyn ReplySink<Reply>) {
        let result = self.send_frames(frames);
        self.answer(result, out);
    }

    fn receive(&mut self, max: u32, wait_ms: u32, out: &mut dyn ReplySink<Reply>) {
        let result = self.receive_frames(Want::Unclaimed, max, wait_ms);
        self.answer(result, out);
    }

    fn receive_type(&mut self, ethertype: u32, max: u32, wait_ms: u32, out: &mut dyn ReplySink<Reply>) {
        let result = match u16::try_from(ethertype) {
            Ok(t) if STACK_ETHERTYPES.contains(&t) => {
                Err(failed(code::BAD_FRAME, format!("EtherType {t:#06x} is the network stack's")))
            }
            Ok(t) if t >= 0x0600 => self.receive_frames(Want::Type(t), max, wait_ms),
            _ => Err(failed(code::BAD_FRAME, format!("EtherType {ethertype:#x} (types are 0x0600 to 0xffff)"))),
        };
        self.answer(result, out);
    }
}

impl Service for NicService {
    type Protocol = Nic;
    // Every request is idempotent and answered within `MAX_WAIT_MS`,
    // never held, and makes no calls.
    const LANES: bool = true;

    fn new() -> Self {
        NicService { counters: Counters::default(), card: open_card(), sorter: Sorter::default(), session: 0 }
    }

    fn handle(&mut self, request: RequestOf<Self>, out: &mut dyn ReplySink<Reply>) {
        dispatch(self, request, out);
    }

    fn handle_in_session(&mut self, session: u64, request: RequestOf<Self>, out: &mut dyn ReplySink<Reply>) {
        self.session = session;
        dispatch(self, request, out);
    }

    fn session_closed(&mut self, session: u64) {
        self.sorter.release_session(session);
    }

    fn save(&self) -> Vec<u8> {
        to_bytes(&self.counters)
    }

    fn restore(bytes: &[u8]) -> Result<Self, String> {
        let counters: Counters = from_bytes(bytes).map_err(|e| format!("damaged checkpoint: {e}"))?;
        let s = NicService { counters, card: open_card(), sorter: Sorter::default(), session: 0 };
        s.check()?;
        Ok(s)
    }

    fn check(&self) -> Result<(), String> {
        let c = &self.counters;
        if c.failed > c.requests || c.bytes_sent < c.frames_sent * MIN_FRAME as u64 {
            return Err(format!(
                "nic counters damaged: {} failures of {} requests, {} bytes in {} frames sent",
                c.failed, c.requests, c.bytes_sent, c.frames_sent
            ));
        }
        Ok(())
    }

    fn chaos_corrupt(&mut self) {
        self.counters.failed = self.counters.requests + 1;
    }
}

libos::main!(main);

fn main() -> i32 {
    serve::<NicService>()
}
