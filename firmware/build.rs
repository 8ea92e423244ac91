// Picks the linker script for the firmware binary by target (host builds
// of the library, cargo test, get none), and builds the constant AML the
// firmware embeds (acpi/emit.rs says why; acpi/dsdt_aml.rs,
// acpi/memhp_aml.rs, acpi/pcihp_aml.rs and acpi/cpuhp_aml.rs build it).

#[path = "acpi/dsdt_aml.rs"]
mod dsdt_aml;

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
    let pieces: [(&str, Vec<u8>); 16] = [
        ("osc_native", dsdt_aml::osc(true)),
        ("osc_acpi", dsdt_aml::osc(false)),
        ("ged_field", dsdt_aml::ged_field()),
        ("ged_evt_power", dsdt_aml::ged_evt_power()),
        ("ged_evt_memory", dsdt_aml::ged_evt_memory()),
        ("pwrb", dsdt_aml::pwrb()),
        ("rtc_dsd", dsdt_aml::rtc_dsd()),
        ("s5", dsdt_aml::s5()),
        ("gpe_cpu", dsdt_aml::gpe_cpu()),
        ("gpe_memory", dsdt_aml::gpe_memory()),
        ("lpc_fixed", dsdt_aml::lpc_fixed()),
        ("lpc_i8042", dsdt_aml::lpc_i8042()),
        ("tpm_tis", dsdt_aml::tpm_tis()),
        ("cpuhp_methods", dsdt_aml::cpuhp_methods()),
        ("cscn_head", dsdt_aml::cscn_head()),
        ("cscn_tail", dsdt_aml::cscn_tail()),
    ];
    for (name, bytes) in pieces {
        std::fs::write(out.join(format!("{name}.aml")), bytes).unwrap();
    }
    println!("cargo:rerun-if-changed=acpi/dsdt_aml.rs");
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
