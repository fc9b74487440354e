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
        let contract = parse(&shown, &source)
            .unwrap_or_else(|ds| panic!("{}", ds.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n")));
        let code = generate(&contract, &options());
        let golden = path.with_extension("rs");
        if update {
            std::fs::write(&golden, &code).expect("write golden file");
            continue;
        }
        match std::fs::read_to_string(&golden) {
            Ok(expected) if expected == code => {}
            Ok(expected) => stale.push(format!(
                "{}: differs from the generated code\n{}",
                golden.display(),
                first_difference(&expected, &code)
            )),
            Err(e) => stale.push(format!("{}: {e}", golden.display())),
        }
    }
    assert!(
        stale.is_empty(),
        "{}\n(UPDATE_GOLDEN=1 cargo test -p companion-gen rewrites the golden files)",
        stale.join("\n")
    );
}

/// The first line where `expected` and `actual` differ.
fn first_difference(expected: &str, actual: &str) -> String {
    let mut e = expected.lines();
    let mut a = actual.lines();
    for n in 1.. {
        match (e.next(), a.next()) {
            (None, None) => return "(only line endings differ)".into(),
            (x, y) if x == y => continue,
            (x, y) => {
                return format!(
                    "line {n}:\n  golden:    {}\n  generated: {}",
                    x.unwrap_or("<end>"),
                    y.unwrap_or("<end>")
                )
            }
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

/// The `#[derive]` of `Reply` and the `use` lines, for a contract whose
/// one reply has a field of type `ty`.
fn reply_derives_and_imports(ty: &str) -> (Option<String>, Vec<String>) {
    let src = format!(
        "contract c {{ request A {{ }} reply R {{ x: {ty} }} protocol {{ start S; state S {{ A -> R -> S; }} }} }}"
    );
    let contract = parse("c.contract", &src).unwrap_or_else(|ds| panic!("{ty}: {ds:?}"));
    let code = generate(&contract, &Options::default());
    let enum_at = code.find("pub enum Reply {").expect("pub enum Reply");
    let doc_at = code[..enum_at].rfind("/// A message of the `c` contract from the service").expect("its doc");
    let derive =
        code[doc_at..enum_at].lines().find_map(|l| l.strip_prefix("#[derive(")?.strip_suffix(")]").map(String::from));
    let uses = code.lines().filter(|l| l.starts_with("use ")).map(String::from).collect();
    (derive, uses)
}

#[test]
fn lists_get_the_derives_and_imports_of_their_elements() {
    let all = Some("Clone, Debug, PartialEq, Eq".to_string());
    for (ty, derive) in [
        ("u8", all.clone()),
        ("list<u8>[2]", all.clone()),
        ("list<string>[2]", all.clone()),
        ("handle", Some("Debug".into())),
        ("list<handle>[2]", Some("Debug".into())),
        ("endpoint", None),
        ("list<endpoint>[2]", None),
    ] {
        assert_eq!(reply_derives_and_imports(ty).0, derive, "derives for {ty}");
    }
    let uses = |ty: &str| reply_derives_and_imports(ty).1.join("\n");
    assert_eq!(uses("list<u8>[2]"), "use alloc::vec::Vec;\nuse libos::{channel, protocol, wire};");
    assert_eq!(
        uses("list<string[4]>[2]"),
        "use alloc::string::String;\nuse alloc::vec::Vec;\nuse libos::{channel, protocol, wire};"
    );
    assert_eq!(uses("list<handle>[2]"), "use alloc::vec::Vec;\nuse libos::{channel, handle, protocol, wire};");
    assert!(!uses("u8").contains("Vec"));
}
