// Picks the linker script for the firmware binary by target; host builds of
// the library (cargo test) get none.
fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    let dir = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let script = match target.as_str() {
        "x86_64-unknown-none" => Some("x86_64.ld"),
        "aarch64-unknown-none-softfloat" => Some("aarch64.ld"),
        _ => None,
    };
    if let Some(s) = script {
        let path = dir.join("..").join("linker").join(s);
        println!("cargo:rerun-if-changed={}", path.display());
        println!("cargo:rustc-link-arg-bins=-T{}", path.display());
    }
    println!("cargo:rerun-if-changed=build.rs");
}
