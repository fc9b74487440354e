//! Generates the runtime's own protocols from their contracts: the private
//! companion-service protocol, the control protocol, recovery notices, and
//! the vault protocol (the persistent checkpoint store).
fn main() {
    let options = companion_gen::Options { runtime: "libos".into(), resiliency: None };
    for contract in [
        "contracts/companion.contract",
        "contracts/control.contract",
        "contracts/notices.contract",
        "contracts/vault.contract",
    ] {
        companion_gen::build(contract, &options);
    }
}
