// The bare-metal build links with its own script as a position-independent
// executable (it relocates itself at start-up, see src/start.S); host
// builds (cargo test on the parsers) get nothing.
fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    if target == "aarch64-unknown-none-softfloat" {
        let dir = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
        let script = dir.join("link.ld");
        println!("cargo:rerun-if-changed={}", script.display());
        println!("cargo:rerun-if-changed=src/start.S");
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
        // PIE: absolute addresses in data (vtables, string tables) become
        // R_AARCH64_RELATIVE entries the start-up code applies; -z notext
        // lets them sit in read-only data (there is one RWX image anyway).
        println!("cargo:rustc-link-arg-bins=-pie");
        println!("cargo:rustc-link-arg-bins=--no-dynamic-linker");
        println!("cargo:rustc-link-arg-bins=-znotext");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
