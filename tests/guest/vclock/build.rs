// The guest builds (the firmware's bare-metal targets, no libc) link a
// static Linux executable entered at `_start`; host builds get nothing.
fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.ends_with("-unknown-none") || target.ends_with("-unknown-none-softfloat") {
        println!("cargo:rustc-link-arg-bins=--entry=_start");
        println!("cargo:rustc-link-arg-bins=-static");
        // No dynamic relocations exist to apply: the code reaches its data
        // PC-relative only, so a plain static executable is enough.
        println!("cargo:rustc-link-arg-bins=--no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
