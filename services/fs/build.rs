//! Generates the fs protocol (messages, client stub, handler trait,
//! protocol checking, resiliency annotations and companion) from
//! `fs.contract`.
fn main() {
    let options = companion_gen::Options { runtime: "libos".into(), resiliency: Some("resiliency_lib".into()) };
    companion_gen::build("fs.contract", &options);
}
