//! Generates the tally protocol and companion from `tally.contract`.
fn main() {
    let options = companion_gen::Options { runtime: "libos".into(), resiliency: Some("resiliency_lib".into()) };
    companion_gen::build("tally.contract", &options);
}
