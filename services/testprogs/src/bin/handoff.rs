//! `handoff`: an endpoint handed through a third process. A (this program)
//! starts B (`handoff relay`) and C (`handoff target`), gives B one end of a
//! B-C channel, then creates channel X and sends its far end to B, which
//! forwards it to C. A and C then talk over X directly, which shows the
//! endpoint (memory, link and event handles) moved twice intact.
#![no_std]
#![no_main]

extern crate alloc;

use libos::channel::{Channel, Endpoint, EndpointHandles, HandleList, HandleQueue, Message};
use libos::println;
use libos::wire::{DecodeError, Reader, Writer};
use testprogs::{arg, peer, spawn_with_channel};

/// An endpoint in transit.
struct Carry(EndpointHandles);

impl Message for Carry {
    fn encode(self, w: &mut Writer, h: &mut HandleList) {
        let side = h.push_endpoint(self.0);
        w.u8(side);
    }
    fn decode(r: &mut Reader, h: &mut HandleQueue) -> Result<Self, DecodeError> {
        let side = r.u8()?;
        Ok(Carry(EndpointHandles::take(h, side)?))
    }
}

/// A line of text.
struct Text(alloc::string::String);

impl Message for Text {
    fn encode(self, w: &mut Writer, _h: &mut HandleList) {
        w.str(&self.0);
    }
    fn decode(r: &mut Reader, _h: &mut HandleQueue) -> Result<Self, DecodeError> {
        Ok(Text(r.string(256)?))
    }
}

libos::main!(main);

fn main() -> Result<(), alloc::string::String> {
    match arg(0) {
        Some("relay") => relay(),
        Some("target") => target(),
        _ => origin(),
    }
}

fn err<E: core::fmt::Display>(what: &str) -> impl FnOnce(E) -> alloc::string::String + '_ {
    move |e| alloc::format!("handoff {what}: {e}")
}

fn origin() -> Result<(), alloc::string::String> {
    let (_b, mut to_b) = spawn_with_channel::<Carry, Carry>("handoff", "relay").map_err(err("start relay"))?;
    let (_c, mut to_c) = spawn_with_channel::<Carry, Carry>("handoff", "target").map_err(err("start target"))?;
    // Channel B-C: B gets one end, C the other.
    let (bc_b, bc_c) = Endpoint::pair().map_err(err("pair"))?;
    to_b.send(Carry(bc_b.into_handles())).map_err(err("send to B"))?;
    to_c.send(Carry(bc_c)).map_err(err("send to C"))?;
    // Channel X: we keep side A; side B travels A -> B -> C.
    let (x, x_far) = Endpoint::pair().map_err(err("pair"))?;
    let mut x: Channel<Text, Text> = Channel::new(x);
    to_b.send(Carry(x_far)).map_err(err("send X"))?;
    let hello = x.recv().map_err(err("receive over X"))?;
    x.send(Text(alloc::string::String::from("hello C, this is A"))).map_err(err("reply over X"))?;
    let bye = x.recv().map_err(err("receive over X"))?;
    println!("handoff: C said '{}' then '{}' over an endpoint passed A -> B -> C", hello.0, bye.0);
    Ok(())
}

fn relay() -> Result<(), alloc::string::String> {
    let mut from_a: Channel<Carry, Carry> = peer().ok_or("relay: no channel")?;
    let Carry(bc) = from_a.recv().map_err(err("relay: receive B-C"))?;
    let mut to_c: Channel<Carry, Carry> = Channel::attach(bc).map_err(err("relay: attach B-C"))?;
    let Carry(x) = from_a.recv().map_err(err("relay: receive X"))?;
    to_c.send(Carry(x)).map_err(err("relay: forward X"))?;
    // Stay until A is done.
    let _ = from_a.recv();
    Ok(())
}

fn target() -> Result<(), alloc::string::String> {
    let mut from_a: Channel<Carry, Carry> = peer().ok_or("target: no channel")?;
    let Carry(bc) = from_a.recv().map_err(err("target: receive B-C"))?;
    let mut from_b: Channel<Carry, Carry> = Channel::attach(bc).map_err(err("target: attach B-C"))?;
    let Carry(x) = from_b.recv().map_err(err("target: receive X"))?;
    let mut x: Channel<Text, Text> = Channel::attach(x).map_err(err("target: attach X"))?;
    x.send(Text(alloc::string::String::from("hello A, this is C"))).map_err(err("target: send"))?;
    let reply = x.recv().map_err(err("target: receive"))?;
    x.send(Text(alloc::format!("got '{}'", reply.0))).map_err(err("target: send"))?;
    let _ = from_a.recv();
    Ok(())
}
