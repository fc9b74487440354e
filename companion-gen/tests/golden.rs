//! Golden tests: the code generated from each `tests/golden/NAME.contract`
//! must equal `tests/golden/NAME.rs` (generated with the runtime `libos`
//! and the resiliency library `resiliency_lib`). After an intended change
//! to the generator, `UPDATE_GOLDEN=1 cargo test -p companion-gen`
//! rewrites the `.rs` files; review their diff.

use companion_gen::{generate, parse, Options};
use std::path::{Path, PathBuf};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn options() -> Options {
    Options { runtime: "libos".into(), resiliency: Some("resiliency_lib".into()) }
}

#[test]
fn generated_code_matches_the_golden_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v != "0");
    let mut contracts: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .expect("tests/golden")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "contract"))
        .collect();
    contracts.sort();
    assert!(!contracts.is_empty(), "no golden contracts");
    let mut stale = Vec::new();
    for path in &contracts {
        let source = std::fs::read_to_string(path).expect("read contract");
        let shown = path.display().to_string();
        let contract = parse(&shown, &source).unwrap_or_else(|ds| {
            panic!("{}", ds.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n"))
        });
        let code = generate(&contract, &options());
        let golden = path.with_extension("rs");
        if update {
            std::fs::write(&golden, &code).expect("write golden file");
            continue;
        }
        match std::fs::read_to_string(&golden) {
            Ok(expected) if expected == code => {}
            Ok(expected) => stale.push(format!("{}: differs from the generated code\n{}", golden.display(), first_difference(&expected, &code))),
            Err(e) => stale.push(format!("{}: {e}", golden.display())),
        }
    }
    assert!(stale.is_empty(), "{}\n(UPDATE_GOLDEN=1 cargo test -p companion-gen rewrites the golden files)", stale.join("\n"));
}

/// The first line where `expected` and `actual` differ.
fn first_difference(expected: &str, actual: &str) -> String {
    let mut e = expected.lines();
    let mut a = actual.lines();
    for n in 1.. {
        match (e.next(), a.next()) {
            (None, None) => return "(only line endings differ)".into(),
            (x, y) if x == y => continue,
            (x, y) => return format!("line {n}:\n  golden:    {}\n  generated: {}", x.unwrap_or("<end>"), y.unwrap_or("<end>")),
        }
    }
    unreachable!()
}

#[test]
fn the_readme_example_is_the_golden_kv_contract() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).expect("README.md");
    let kv = std::fs::read_to_string(golden_dir().join("kv.contract")).expect("kv.contract");
    assert!(readme.contains(kv.trim_end()), "README.md must show tests/golden/kv.contract verbatim");
}

#[test]
fn generation_is_deterministic_and_options_are_honoured() {
    let source = std::fs::read_to_string(golden_dir().join("kv.contract")).expect("kv.contract");
    let contract = parse("kv.contract", &source).expect("kv parses");
    assert_eq!(generate(&contract, &options()), generate(&contract, &options()));
    let inside_libos = generate(&contract, &Options { runtime: "crate".into(), resiliency: None });
    assert!(inside_libos.contains("use crate::{channel, protocol, wire};"));
    assert!(!inside_libos.contains("Resilient"));
    assert!(!inside_libos.contains("run_companion"));
    let full = generate(&contract, &Options { runtime: "libos".into(), resiliency: Some("res".into()) });
    assert!(full.contains("impl res::Resilient for Kv {"));
    assert!(full.contains("res::companion::run::<Kv>(service_program)"));
}
