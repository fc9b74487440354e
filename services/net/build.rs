//! Generates the net protocol (messages, client stub, handler trait,
//! protocol checking, resiliency annotations and companion) from
//! `net.contract`.
fn main() {
    let options = companion_gen::Options { runtime: "libos".into(), resiliency: Some("resiliency_lib".into()) };
    companion_gen::build("net.contract", &options);
}
