//! The waiter service: held requests and events under a companion. `Wait`
//! and `Sleep` are held (kept in the state as `Held`, distilled with the
//! rest) and answered later: a `Wait` by a `Notify` on its key, a `Sleep`
//! by the timer tick that ends it. Ticks come every 100 ms as events from
//! the companion; the service counts them and checks their numbers follow
//! each other, so a tick lost or seen twice by a replay shows in `Ticks`.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use libos::protocol::ReplySink;
use resiliency_lib::distill::{from_bytes, to_bytes};
use resiliency_lib::service::{self, serve, Event, Held, RequestOf, Service};
use waiter::protocol::{dispatch, Reply, Waiter, WaiterHandler};

/// The service's state.
struct State {
    /// Held `Wait`s: who, on which key.
    waiters: Vec<(Held, String)>,
    /// Held `Sleep`s: who, (the tick count it began at, the count it ends).
    sleepers: Vec<(Held, (u64, u64))>,
    /// Ticks seen.
    ticks: u64,
    /// The number of the last tick (the companion's count).
    last: u64,
    /// Ticks whose number skipped one or more.
    gaps: u64,
    /// Ticks whose number was not past the last one.
    repeats: u64,
}
resiliency_lib::distill!(State { waiters, sleepers, ticks, last, gaps, repeats });

/// Waiters held at most (a client cannot make the state grow without end).
const MAX_HELD: usize = 4096;

impl State {
    fn held(&self) -> usize {
        self.waiters.len() + self.sleepers.len()
    }

    fn tick(&mut self, number: u64) {
        self.ticks += 1;
        // A companion numbers its ticks from 1: a new companion process
        // starts again (not a repeat).
        if number != 1 && number <= self.last {
            self.repeats += 1;
        } else if number > 1 && number > self.last + 1 {
            self.gaps += 1;
        }
        self.last = number;
        let now = self.ticks;
        let (done, waiting): (Vec<_>, Vec<_>) = self.sleepers.drain(..).partition(|(_, (_, until))| *until <= now);
        self.sleepers = waiting;
        for (held, (from, _)) in done {
            service::answer(held, Reply::Slept { from, until: now });
            service::release(held);
        }
    }
}

impl WaiterHandler for State {
    fn wait(&mut self, key: String, out: &mut dyn ReplySink<Reply>) {
        if self.held() >= MAX_HELD {
            return out.reply(Reply::Failed { code: 429, message: String::from("too many requests held") });
        }
        match service::hold() {
            Some(held) => self.waiters.push((held, key)),
            None => out.reply(Reply::Failed { code: 500, message: String::from("cannot hold the request") }),
        }
    }

    fn notify(&mut self, key: String, value: u64, out: &mut dyn ReplySink<Reply>) {
        let (woken, waiting): (Vec<_>, Vec<_>) = self.waiters.drain(..).partition(|(_, k)| *k == key);
        self.waiters = waiting;
        for (held, key) in &woken {
            service::answer(*held, Reply::Woken { key: key.clone(), value });
            service::release(*held);
        }
        out.reply(Reply::Notified { woken: woken.len() as u32 });
    }

    fn sleep(&mut self, ticks: u32, out: &mut dyn ReplySink<Reply>) {
        if ticks == 0 {
            return out.reply(Reply::Slept { from: self.ticks, until: self.ticks });
        }
        if self.held() >= MAX_HELD {
            return out.reply(Reply::Failed { code: 429, message: String::from("too many requests held") });
        }
        match service::hold() {
            Some(held) => self.sleepers.push((held, (self.ticks, self.ticks + ticks as u64))),
            None => out.reply(Reply::Failed { code: 500, message: String::from("cannot hold the request") }),
        }
    }

    fn ticks(&mut self, out: &mut dyn ReplySink<Reply>) {
        out.reply(Reply::Count {
            ticks: self.ticks,
            last: self.last,
            gaps: self.gaps,
            repeats: self.repeats,
            held: self.held() as u32,
        });
    }
}

impl Service for State {
    type Protocol = Waiter;
    const TICK_MS: u64 = 100;

    fn new() -> Self {
        State { waiters: Vec::new(), sleepers: Vec::new(), ticks: 0, last: 0, gaps: 0, repeats: 0 }
    }

    fn handle(&mut self, request: RequestOf<Self>, out: &mut dyn ReplySink<Reply>) {
        dispatch(self, request, out);
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Tick { number, .. } => self.tick(number),
            other => log::warn!("waiter: an event it does not use: {other:?}"),
        }
    }

    fn session_closed(&mut self, session: u64) {
        self.waiters.retain(|(h, _)| h.session != session);
        self.sleepers.retain(|(h, _)| h.session != session);
    }

    fn save(&self) -> Vec<u8> {
        to_bytes(self)
    }

    fn restore(bytes: &[u8]) -> Result<Self, String> {
        from_bytes(bytes).map_err(|e| format!("damaged checkpoint: {e}"))
    }

    fn check(&self) -> Result<(), String> {
        match self.sleepers.iter().find(|(_, (from, until))| from > until || *until <= self.ticks) {
            Some((h, _)) => Err(format!("waiter state damaged: sleeper {h:?} should have woken")),
            None => Ok(()),
        }
    }

    fn chaos_corrupt(&mut self) {
        self.sleepers.push((Held { session: 0, seq: 0 }, (1, 0)));
    }
}

libos::main!(main);

fn main() -> i32 {
    serve::<State>()
}
