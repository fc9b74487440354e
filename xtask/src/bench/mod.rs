//! `cargo xtask bench`: Kintsugi's figures beside the same operations in a
//! Linux guest booted under the same QEMU settings in the same run.

/// Run the benchmarks and print the table.
pub fn run() -> Result<(), String> {
    Err("bench: not built yet".into())
}
