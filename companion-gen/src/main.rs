//! The `companion-gen` command: `show` prints the code generated from a
//! contract, `check` validates contracts.

use companion_gen::{generate, parse, Options};
use std::process::ExitCode;

const USAGE: &str = "\
usage: companion-gen show FILE.contract [--runtime PATH] [--resiliency PATH]
       companion-gen check FILE.contract...

  show    print the Rust code generated from the contract
            --runtime PATH      Rust path of the libos crate (default: libos)
            --resiliency PATH   Rust path of resiliency-lib (e.g. resiliency_lib);
                                without it, no Resilient impl nor companion
  check   check contracts; errors go to stderr as file:line:column: message";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("show") => show(&args[1..]),
        Some("check") if args.len() > 1 => check(&args[1..]),
        Some("help" | "-h" | "--help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => usage(),
    }
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(2)
}

/// Read and check one file; diagnostics go to stderr.
fn load(file: &str) -> Option<companion_gen::Contract> {
    let source = match std::fs::read_to_string(file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{file}: cannot read: {e}");
            return None;
        }
    };
    match parse(file, &source) {
        Ok(c) => Some(c),
        Err(diagnostics) => {
            for d in diagnostics {
                eprintln!("{d}");
            }
            None
        }
    }
}

fn show(args: &[String]) -> ExitCode {
    let mut options = Options::default();
    let mut file = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runtime" | "--resiliency" => {
                let Some(value) = it.next() else {
                    eprintln!("companion-gen: {a} needs a value");
                    return usage();
                };
                if a == "--runtime" {
                    options.runtime = value.clone();
                } else {
                    options.resiliency = Some(value.clone());
                }
            }
            _ if a.starts_with('-') => {
                eprintln!("companion-gen: unknown option {a}");
                return usage();
            }
            _ if file.is_none() => file = Some(a),
            _ => {
                eprintln!("companion-gen: show takes one file");
                return usage();
            }
        }
    }
    let Some(file) = file else { return usage() };
    match load(file) {
        Some(c) => {
            print!("{}", generate(&c, &options));
            ExitCode::SUCCESS
        }
        None => ExitCode::FAILURE,
    }
}

fn check(files: &[String]) -> ExitCode {
    let mut ok = true;
    for f in files {
        ok &= load(f).is_some();
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
