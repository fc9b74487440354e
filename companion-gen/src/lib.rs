//! companion-gen: the contract compiler. It reads a service contract
//! (`*.contract`: messages, the protocol as a state machine, resiliency
//! annotations) and generates Rust: message types with their wire
//! encoding, the protocol for `libos::protocol::Checker`, a client stub,
//! the service's handler trait and dispatch, and the companion's
//! `Resilient` impl (DESIGN.md section 4). README.md describes the
//! language (with its grammar) and the generated code.
//!
//! From a build script:
//!
//! ```no_run
//! companion_gen::build("contracts/kv.contract", &companion_gen::Options::default());
//! ```
//!
//! and in the crate: `mod kv { include!(concat!(env!("OUT_DIR"), "/kv.rs")); }`.
//!
//! The pipeline: [`lexer`] → [`parser`] (syntax tree in [`ast`]) →
//! [`check`] (the checked [`model`]) → [`codegen`]; errors are
//! [`Diagnostic`]s (`file:line:column: message`).

pub mod ast;
pub mod check;
pub mod codegen;
pub mod diagnostics;
pub mod lexer;
pub mod model;
mod names;
pub mod parser;

pub use diagnostics::Diagnostic;
pub use model::Contract;

use std::path::Path;

/// How to generate code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// The Rust path of the libos crate in the generated code: `"libos"`,
    /// or `"crate"` when generating inside libos itself.
    pub runtime: String,
    /// The Rust path of the resiliency library (e.g. `"resiliency_lib"`);
    /// `None` leaves out the `Resilient` impl and the companion even if
    /// the contract has a `resilience` section.
    pub resiliency: Option<String>,
}

impl Default for Options {
    /// `libos` as the runtime, no resiliency code.
    fn default() -> Self {
        Options { runtime: "libos".to_string(), resiliency: None }
    }
}

/// Parse and check a contract. `file_name` is used in diagnostics (and,
/// without its directories, in the header of the generated code).
pub fn parse(file_name: &str, source: &str) -> Result<Contract, Vec<Diagnostic>> {
    let mut sink = diagnostics::Sink::new(file_name);
    let tokens = lexer::lex(source, &mut sink);
    if !sink.is_empty() {
        return Err(sink.finish());
    }
    let file = match parser::parse_file(&tokens, &sink) {
        Ok(file) => file,
        Err(d) => return Err(vec![d]),
    };
    match check::check(&file, file_name, &mut sink) {
        Some(contract) if sink.is_empty() => Ok(contract),
        _ => Err(sink.finish()),
    }
}

/// Generate the Rust code of a checked contract.
pub fn generate(contract: &Contract, options: &Options) -> String {
    codegen::generate(contract, options)
}

/// For build scripts: read `contract` (a path relative to
/// `CARGO_MANIFEST_DIR`), write `OUT_DIR/<contract name>.rs`, and print
/// `cargo:rerun-if-changed=...`. On errors, print every diagnostic and
/// panic, which fails the build with `file:line:column: message` lines.
pub fn build(contract: &str, options: &Options) {
    let manifest_dir =
        std::env::var("CARGO_MANIFEST_DIR").expect("companion_gen::build runs in a build script (CARGO_MANIFEST_DIR)");
    let out_dir = std::env::var("OUT_DIR").expect("companion_gen::build runs in a build script (OUT_DIR)");
    let path = Path::new(&manifest_dir).join(contract);
    println!("cargo:rerun-if-changed={}", path.display());
    let shown = path.display().to_string();
    let source = match std::fs::read_to_string(&path) {
        Ok(s) => s,
        Err(e) => panic!("{shown}: cannot read the contract: {e}"),
    };
    match parse(&shown, &source) {
        Ok(c) => {
            let out = Path::new(&out_dir).join(format!("{}.rs", c.name));
            if let Err(e) = std::fs::write(&out, generate(&c, options)) {
                panic!("{}: cannot write: {e}", out.display());
            }
        }
        Err(diagnostics) => {
            for d in &diagnostics {
                eprintln!("{d}");
            }
            let n = diagnostics.len();
            panic!("companion-gen: {n} error{} in {shown} (listed above)", if n == 1 { "" } else { "s" });
        }
    }
}
