//! Generates the waiter protocol and companion from `waiter.contract`.
fn main() {
    let options = companion_gen::Options { runtime: "libos".into(), resiliency: Some("resiliency_lib".into()) };
    companion_gen::build("waiter.contract", &options);
}
