//! Generates libos's own protocols (the directory, service listeners) from
//! their contracts.
fn main() {
    let options = companion_gen::Options { runtime: "crate".into(), resiliency: None };
    companion_gen::build("contracts/directory.contract", &options);
    companion_gen::build("contracts/listener.contract", &options);
}
