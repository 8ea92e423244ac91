//! Host-test helpers: walk the built tables the way an OS does (RSDP ->
//! XSDT -> tables, FADT -> DSDT/FACS), check every checksum, and run
//! `iasl -d` on each table.

extern crate std;

use crate::acpi::{byte_sum, Built, Error, TableArea};
use std::collections::BTreeMap;
use std::string::String;
use std::vec::Vec;

pub struct Tables {
    /// Signature -> table bytes (FACS included, keyed "FACS").
    pub by_sig: BTreeMap<String, Vec<u8>>,
    /// Physical address of each table.
    #[allow(dead_code)]
    pub addr: BTreeMap<String, u64>,
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

fn slice_at(area: &[u8], base: u64, addr: u64) -> &[u8] {
    assert!(addr >= base, "table at {addr:#x} below area {base:#x}");
    let off = (addr - base) as usize;
    assert!(off + 8 <= area.len(), "table at {addr:#x} outside area");
    let len = u32_at(area, off + 4) as usize;
    assert!(off + len <= area.len(), "table at {addr:#x} overruns area");
    &area[off..off + len]
}

/// Walks everything reachable from the RSDP and checks checksums, lengths
/// and signatures on the way.
/// Builds tables into a 192 KiB area at `base` (the arm firmware's ACPI
/// hand-off area, linker/aarch64.ld HANDOFF_ACPI_SIZE); returns the result
/// and the used bytes.
pub fn build_in(
    base: u64,
    build: impl FnOnce(&mut TableArea) -> Result<Built, Error>,
) -> (Built, Vec<u8>) {
    let mut buf = std::vec![0u8; 192 * 1024];
    let mut area = TableArea::new(&mut buf, base);
    let built = build(&mut area).expect("build");
    let used = area.used();
    buf.truncate(used);
    (built, buf)
}

/// (type, whole subtable including type and length bytes) of every MADT
/// subtable.
pub fn madt_entries(t: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut o = 44;
    while o < t.len() {
        let len = t[o + 1] as usize;
        assert!(len >= 2 && o + len <= t.len(), "bad MADT subtable at {o}");
        out.push((t[o], t[o..o + len].to_vec()));
        o += len;
    }
    out
}

pub fn walk(built: &Built, area: &[u8], base: u64) -> Tables {
    let r = &built.rsdp;
    assert_eq!(&r[0..8], b"RSD PTR ");
    assert_eq!(byte_sum(&r[0..20]), 0, "RSDP checksum");
    assert_eq!(byte_sum(r), 0, "RSDP extended checksum");
    assert_eq!(r[15], 2, "RSDP revision");
    assert_eq!(u32_at(r, 20), 36);
    assert_eq!(u64_at(r, 24), built.xsdt_phys);

    let mut by_sig = BTreeMap::new();
    let mut addr = BTreeMap::new();
    let xsdt = slice_at(area, base, built.xsdt_phys);
    assert_eq!(&xsdt[0..4], b"XSDT");
    assert_eq!(byte_sum(xsdt), 0, "XSDT checksum");
    assert_eq!((xsdt.len() - 36) % 8, 0);
    for i in 0..(xsdt.len() - 36) / 8 {
        let a = u64_at(xsdt, 36 + i * 8);
        let t = slice_at(area, base, a);
        let sig = String::from_utf8(t[0..4].to_vec()).unwrap();
        assert_eq!(byte_sum(t), 0, "{sig} checksum");
        assert!(
            by_sig.insert(sig.clone(), t.to_vec()).is_none(),
            "{sig} twice"
        );
        addr.insert(sig, a);
    }
    by_sig.insert("XSDT".into(), xsdt.to_vec());
    addr.insert("XSDT".into(), built.xsdt_phys);

    let fadt = by_sig.get("FACP").expect("no FADT").clone();
    let x_dsdt = u64_at(&fadt, 140);
    let x_facs = u64_at(&fadt, 132);
    let dsdt = slice_at(area, base, x_dsdt);
    assert_eq!(&dsdt[0..4], b"DSDT");
    assert_eq!(byte_sum(dsdt), 0, "DSDT checksum");
    by_sig.insert("DSDT".into(), dsdt.to_vec());
    addr.insert("DSDT".into(), x_dsdt);
    if x_facs != 0 {
        assert_eq!(x_facs % 64, 0, "FACS must be 64-byte aligned");
        let facs = slice_at(area, base, x_facs);
        assert_eq!(&facs[0..4], b"FACS");
        by_sig.insert("FACS".into(), facs.to_vec());
        addr.insert("FACS".into(), x_facs);
    }
    Tables { by_sig, addr }
}

/// The revision every table must carry, given the ACPI version the FADT
/// declares (FADT revision = major version, byte 131 = minor). Tables
/// defined outside the ACPI specification have revisions of their own
/// specification, whatever the ACPI version. A table not listed here fails
/// the check, so a new table comes with its revision.
fn expected_revision(sig: &str, acpi: (u8, u8)) -> Option<u8> {
    // ACPI 6.5 table 5.19 (MADT 6), 6.3/6.4 (MADT 5); GTDT 3 since 6.3
    // (ACPI 6.5 table 5.121); DSDT 2 for 64-bit integers; XSDT 1.
    let madt = match acpi {
        (6, 5) => 6,
        (6, 3) | (6, 4) => 5,
        _ => return None,
    };
    Some(match sig {
        "FACP" => acpi.0,
        "APIC" => madt,
        "GTDT" => 3,
        "DSDT" | "SSDT" => 2,
        "XSDT" => 1,
        // PCI Firmware Specification 3.3 (MCFG 1); IA-PC HPET specification
        // 1.0a (HPET 1); Microsoft SPCR specification (revision 2 layout);
        // Arm DEN0049 (the IORT layout written here, revision 0).
        "MCFG" | "HPET" => 1,
        "SPCR" => 2,
        "IORT" => 0,
        _ => return None,
    })
}

/// Checks every table's revision (and the FACS version, ACPI 6.5 table
/// 5.14: 2) against the ACPI version the FADT declares.
pub fn check_revisions(tables: &Tables) {
    let fadt = &tables.by_sig["FACP"];
    let acpi = (fadt[8], fadt[131]);
    for (sig, t) in &tables.by_sig {
        if sig == "FACS" {
            assert_eq!(t[32], 2, "FACS version");
            continue;
        }
        let want = expected_revision(sig, acpi)
            .unwrap_or_else(|| panic!("no known revision of {sig} for ACPI {}.{}", acpi.0, acpi.1));
        assert_eq!(t[8], want, "{sig} revision for ACPI {}.{}", acpi.0, acpi.1);
    }
}

#[test]
fn revision_table_follows_the_acpi_version() {
    assert_eq!(expected_revision("APIC", (6, 5)), Some(6));
    assert_eq!(expected_revision("APIC", (6, 3)), Some(5));
    assert_eq!(expected_revision("GTDT", (6, 4)), Some(3));
    assert_eq!(expected_revision("FACP", (6, 5)), Some(6));
    assert_eq!(expected_revision("APIC", (5, 1)), None);
    assert_eq!(expected_revision("ZZZZ", (6, 5)), None);
}

/// Runs `iasl -d` on every table; panics with iasl's output on any error.
/// Returns the disassembled DSDT text, or None (with a notice) when iasl is
/// not installed.
pub fn iasl_check(tables: &Tables, tag: &str) -> Option<String> {
    use std::process::Command;
    if Command::new("iasl").arg("-v").output().is_err() {
        std::println!("NOTICE: iasl not installed; skipping disassembly check");
        return None;
    }
    let dir = std::env::temp_dir().join(std::format!("hotstub-acpi-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut dsdt_text = None;
    for (sig, bytes) in &tables.by_sig {
        let file = dir.join(std::format!("{sig}.dat"));
        std::fs::write(&file, bytes).unwrap();
        let (ok, text) = iasl(&dir, &["-d".as_ref(), file.as_os_str()]);
        let dsl = std::fs::read_to_string(dir.join(std::format!("{sig}.dsl"))).unwrap_or_default();
        assert!(
            ok && !text.contains("Error") && !dsl.contains("**** "),
            "iasl -d {sig} failed:\n{text}\n{dsl}"
        );
        if sig == "DSDT" {
            // Compile the disassembly back: catches AML that disassembles
            // but is not valid ASL (bad names, wrong operand types).
            let (out, dsl_in) = (dir.join("DSDT-recompiled"), dir.join("DSDT.dsl"));
            let (ok, text) = iasl(&dir, &["-p".as_ref(), out.as_os_str(), dsl_in.as_os_str()]);
            assert!(
                ok && text.contains("0 Errors"),
                "iasl recompile of DSDT failed:\n{text}\n{dsl}"
            );
            dsdt_text = Some(dsl);
        }
    }
    // HOTSTUB_ACPI_KEEP=1 keeps the tables and disassembly for inspection.
    if std::env::var_os("HOTSTUB_ACPI_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        std::println!("tables kept in {}", dir.display());
    }
    dsdt_text
}

/// Runs iasl in `dir`; returns whether it succeeded and its whole output.
fn iasl(dir: &std::path::Path, args: &[&std::ffi::OsStr]) -> (bool, String) {
    let out = std::process::Command::new("iasl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let text = std::format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
