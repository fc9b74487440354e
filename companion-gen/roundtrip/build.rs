//! Generate the code of every contract in `contracts/` into `OUT_DIR`.

use companion_gen::Options;

fn main() {
    println!("cargo:rerun-if-changed=contracts");
    let options = Options { runtime: "libos".into(), resiliency: Some("resiliency_lib".into()) };
    let mut contracts: Vec<String> = std::fs::read_dir("contracts")
        .expect("contracts/")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".contract"))
        .collect();
    contracts.sort();
    for c in contracts {
        companion_gen::build(&format!("contracts/{c}"), &options);
    }
}
