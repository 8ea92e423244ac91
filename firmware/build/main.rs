// The build script (Cargo.toml `build = "build/main.rs"`): everything in
// this folder runs on the host at build time and never in the firmware.
// It picks the linker script for the firmware binary by target (host
// builds of the library, cargo test, get none), and builds the constant
// AML the firmware embeds (acpi/emit.rs says why; dsdt_aml.rs,
// memhp_aml.rs, pcihp_aml.rs and cpuhp_aml.rs beside this file build it).

mod cpuhp_aml;
mod dsdt_aml;
mod memhp_aml;
mod pcihp_aml;
mod piix_aml;
// The one source file shared with the firmware library: the PC boards' PCI
// interrupt routing, which the library's test oracle reads too
// (acpi/oracle/x86.rs) and which this script turns into the `_PRT` bytes.
#[path = "../acpi/x86/routing.rs"]
mod routing;

use acpi_tables::{aml, Aml};

/// Serializes any `acpi_tables` object (as the firmware's `acpi::to_bytes`).
fn to_bytes(obj: &dyn Aml) -> Vec<u8> {
    let mut v = Vec::new();
    obj.to_aml_bytes(&mut v);
    v
}

fn path(s: &str) -> aml::Path {
    aml::Path::new(s)
}

/// `Name (_CRS, ResourceTemplate () { .. })` of `descriptors`.
fn crs(descriptors: Vec<&dyn Aml>) -> aml::Name {
    aml::Name::new("_CRS".into(), &aml::ResourceTemplate::new(descriptors))
}

/// Notification codes (ACPI 6.5 5.6.6): Device Check on insert, Eject
/// Request on a removal request.
const DEVICE_CHECK: u8 = 1;
const EJECT_REQUEST: u8 = 3;

/// _STA values (ACPI 6.5 6.3.7): present, shown and functioning, plus
/// enabled when the device is plugged (q35 vCPUs and DIMMs: QEMU says so;
/// arm vCPUs: the firmware's policy, Linux
/// `Documentation/arch/arm64/cpu-hotplug.rst`).
const STA_DISABLED: u8 = 0x0d;
const STA_ENABLED: u8 = 0x0f;

/// `Name (_PRT, ..)` of q35's fixed routing (ACPI 6.5 6.2.13), each entry
/// {device << 16 | 0xffff (any function), pin, source 0, GSI}: what
/// `acpi::prt` writes at run time for arm.
fn q35_prt() -> Vec<u8> {
    let entries: Vec<(u32, u8, u32)> = routing::q35()
        .map(|(d, pin, gsi)| ((u32::from(d) << 16) | 0xffff, pin, gsi))
        .collect();
    let pkgs: Vec<aml::Package> = entries
        .iter()
        .map(|(addr, pin, gsi)| aml::Package::new(vec![addr, pin, &aml::ZERO, gsi]))
        .collect();
    let all: Vec<&dyn Aml> = pkgs.iter().map(|p| p as &dyn Aml).collect();
    to_bytes(&aml::Name::new("_PRT".into(), &aml::Package::new(all)))
}

fn main() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let pieces: [(&str, Vec<u8>); 32] = [
        ("q35_prt", q35_prt()),
        ("memhp_ident", memhp_aml::ident()),
        ("memhp_methods", memhp_aml::methods()),
        ("memhp_slot", memhp_aml::slot_template()),
        ("pcihp_pci0", pcihp_aml::pci0()),
        ("pcihp_pci0_slots", pcihp_aml::pci0_slots()),
        ("pcihp_port", pcihp_aml::port_tail()),
        ("pcihp_gpe", pcihp_aml::gpe()),
        ("pcihp_ged", pcihp_aml::ged_evt()),
        ("cpuhp_cpu", cpuhp_aml::processor_tail()),
        ("cpuhp_evt", cpuhp_aml::evt_cpu()),
        ("cpuhp_ged", cpuhp_aml::ged_head()),
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
        ("isa_fixed", dsdt_aml::isa_fixed()),
        ("pc_prt", piix_aml::prt()),
        ("pc_isa_head", piix_aml::isa_head()),
        ("pc_links", piix_aml::links()),
        ("tpm_tis", dsdt_aml::tpm_tis()),
        ("cpuhp_methods", dsdt_aml::cpuhp_methods()),
        ("cscn_head", dsdt_aml::cscn_head()),
        ("cscn_tail", dsdt_aml::cscn_tail()),
    ];
    for (name, bytes) in pieces {
        std::fs::write(out.join(format!("{name}.aml")), bytes).unwrap();
    }
    // SMBIOS type 0's BIOS Release Date (DSP0134 7.1: mm/dd/yyyy), from
    // SOURCE_DATE_EPOCH when set (reproducible builds), else today.
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(|| {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            now.map_or(0, |d| d.as_secs() as i64)
        });
    let (y, m, d) = civil_date(secs.div_euclid(86_400));
    println!("cargo:rustc-env=HOTSTUB_BUILD_DATE={m:02}/{d:02}/{y:04}");
    // Paths are relative to the package (firmware/); `build` covers this
    // folder, the script and its generators.
    println!("cargo:rerun-if-changed=build");
    println!("cargo:rerun-if-changed=acpi/x86/routing.rs");
    let dir = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let script = match std::env::var("TARGET").unwrap_or_default().as_str() {
        "x86_64-unknown-none" => Some("x86_64.ld"),
        "aarch64-unknown-none-softfloat" => Some("aarch64.ld"),
        _ => None,
    };
    if let Some(s) = script {
        let path = dir.join("..").join("linker").join(s);
        println!("cargo:rerun-if-changed={}", path.display());
        println!("cargo:rustc-link-arg-bins=-T{}", path.display());
    }
}

/// The proleptic Gregorian (year, month, day) of a day count since
/// 1970-01-01: the days-from-civil inverse over 400-year eras of 146,097
/// days, with years starting in March so the leap day falls last.
fn civil_date(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}
