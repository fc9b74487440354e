//! Generates the protocols of the test services from their contracts.
fn main() {
    let options = companion_gen::Options { runtime: "libos".into(), resiliency: None };
    companion_gen::build("contracts/fanin.contract", &options);
}
