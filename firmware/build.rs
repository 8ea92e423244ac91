// Picks the linker script for the firmware binary by target (host builds
// of the library, cargo test, get none), and builds the constant AML the
// firmware embeds (acpi/memhp_aml.rs says why; pcihp_aml.rs, cpuhp_aml.rs too).

#[path = "acpi/cpuhp_aml.rs"]
mod cpuhp_aml;
#[path = "acpi/memhp_aml.rs"]
mod memhp_aml;
#[path = "acpi/pcihp_aml.rs"]
mod pcihp_aml;

fn main() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::write(out.join("memhp_ident.aml"), memhp_aml::ident()).unwrap();
    std::fs::write(out.join("memhp_methods.aml"), memhp_aml::methods()).unwrap();
    std::fs::write(out.join("memhp_slot.aml"), memhp_aml::slot_template()).unwrap();
    println!("cargo:rerun-if-changed=acpi/memhp_aml.rs");
    std::fs::write(out.join("pcihp_pci0.aml"), pcihp_aml::pci0()).unwrap();
    std::fs::write(out.join("pcihp_port.aml"), pcihp_aml::port_tail()).unwrap();
    std::fs::write(out.join("pcihp_gpe.aml"), pcihp_aml::gpe()).unwrap();
    println!("cargo:rerun-if-changed=acpi/pcihp_aml.rs");
    std::fs::write(out.join("cpuhp_cpu.aml"), cpuhp_aml::processor_tail()).unwrap();
    std::fs::write(out.join("cpuhp_evt.aml"), cpuhp_aml::evt_cpu()).unwrap();
    std::fs::write(out.join("cpuhp_ged.aml"), cpuhp_aml::ged_head()).unwrap();
    println!("cargo:rerun-if-changed=acpi/cpuhp_aml.rs");
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
