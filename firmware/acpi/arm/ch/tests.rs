//! CH's captured tables (tests/fixtures/cloud-hypervisor/aarch64/) adopted
//! against its captured DT, and mutated copies each refused with its line.

extern crate std;

use super::*;
use crate::acpi::adopt::{self, Slice};
use crate::acpi::byte_sum;
use crate::platform::dt;
use std::string::{String, ToString};
use std::vec::Vec;

fn fixture(name: &str) -> Vec<u8> {
    let path = std::format!(
        "{}/../tests/fixtures/cloud-hypervisor/aarch64/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn tables() -> Vec<u8> {
    fixture("acpi-40200000.bin")
}

fn board(name: &str) -> Board {
    dt::parse(&fixture(name)).unwrap()
}

/// The generic walk over a window at CH's address.
fn walk(mem: &[u8], base: u64, rsdp: u64) -> Result<Adopted, Error> {
    adopt::adopt(&Slice { base, bytes: mem }, rsdp)
}

/// Walk and arm checks, as the firmware runs them.
fn adopt(mem: &[u8], b: &Board) -> Result<(Adopted, Checked), Error> {
    let a = walk(mem, CH_RSDP, CH_RSDP)?;
    let c = check(&a, b)?;
    Ok((a, c))
}

/// The offset in the window of the table with `sig` (through the XSDT).
fn offset_of(mem: &[u8], sig: &[u8; 4]) -> usize {
    let w = walk(mem, CH_RSDP, CH_RSDP).unwrap();
    if sig == b"XSDT" {
        return (w.xsdt - CH_RSDP) as usize;
    }
    (w.find(*sig).unwrap().addr - CH_RSDP) as usize
}

/// Makes the table at `off` sum to zero again after an edit.
fn fix_sum(mem: &mut [u8], off: usize) {
    let len = u32::from_le_bytes(mem[off + 4..off + 8].try_into().unwrap()) as usize;
    mem[off + 9] = 0;
    mem[off + 9] = 0u8.wrapping_sub(byte_sum(&mem[off..off + len]));
}

fn refused(mem: &[u8], b: &Board) -> String {
    match adopt(mem, b) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_captured_tables_pass_and_need_pres() {
    let mem = tables();
    let (a, c) = adopt(&mem, &board("fdt-boot2max4.dtb")).unwrap();
    let sigs: Vec<[u8; 4]> = a.tables.iter().map(|t| t.signature()).collect();
    assert_eq!(
        sigs,
        [
            *b"FACP", *b"APIC", *b"PPTT", *b"GTDT", *b"MCFG", *b"SPCR", *b"DBG2", *b"IORT",
            *b"DSDT"
        ]
    );
    assert_eq!(a.find(*b"DSDT").unwrap().addr, 0x4020_0024);
    assert_eq!(c.listed.len(), 8);
    assert_eq!(c.span, (CH_RSDP, CH_RSDP + mem.len() as u64));
    assert_eq!(c.enabled_uids, [true, true]);
    assert!(c.needs_pres);
}

#[test]
fn mutated_tables_are_refused_with_one_line() {
    let b = board("fdt-boot2max4.dtb");
    let good = tables();
    let apic = offset_of(&good, b"APIC");
    let cases: Vec<(&str, Vec<u8>, &str)> = std::vec![
        (
            "bad checksum",
            {
                let mut m = good.clone();
                m[apic + 40] ^= 1;
                m
            },
            "APIC at 0x402012eb has a bad checksum"
        ),
        (
            "truncated window",
            good[..good.len() - 10].to_vec(),
            "XSDT at 0x4020164b (100 bytes) is not in readable memory"
        ),
        (
            "truncated table",
            {
                let mut m = good.clone();
                let x = offset_of(&m, b"XSDT");
                m[x + 4..x + 8].copy_from_slice(&0x1000u32.to_le_bytes());
                m
            },
            "XSDT at 0x4020164b (4096 bytes) is not in readable memory"
        ),
        (
            "RSDP checksum",
            {
                let mut m = good.clone();
                m[10] ^= 1;
                m
            },
            "RSD  at 0x40200000 has a bad checksum"
        ),
        (
            "XSDT outside",
            {
                let mut m = good.clone();
                m[24..32].copy_from_slice(&0x5000_0000u64.to_le_bytes());
                m[8] = 0;
                m[8] = 0u8.wrapping_sub(byte_sum(&m[..20]));
                m[32] = 0;
                m[32] = 0u8.wrapping_sub(byte_sum(&m[..36]));
                m
            },
            "XSDT at 0x50000000 (36 bytes) is not in readable memory"
        ),
        (
            "GICC MPIDR not the DT's",
            {
                let mut m = good.clone();
                // The second GICC (at MADT offset 124) claims MPIDR 2.
                m[apic + 124 + 68] = 2;
                fix_sum(&mut m, apic);
                m
            },
            "APIC: a DT CPU's MPIDR has no single enabled GICC"
        ),
        (
            "GICC disabled",
            {
                let mut m = good.clone();
                m[apic + 124 + 12] = 0;
                fix_sum(&mut m, apic);
                m
            },
            "APIC: enabled GICCs and the DT's CPUs differ in number"
        ),
        (
            "GICD elsewhere",
            {
                let mut m = good.clone();
                m[apic + 204 + 9] ^= 0x10;
                fix_sum(&mut m, apic);
                m
            },
            "APIC: GIC distributor differs from the DT's"
        ),
        (
            "MADT subtable overrun",
            {
                let mut m = good.clone();
                m[apic + 244 + 1] = 0x40;
                fix_sum(&mut m, apic);
                m
            },
            "APIC: a subtable runs past the table"
        ),
        (
            "FADT not hardware-reduced",
            {
                let mut m = good.clone();
                let f = offset_of(&m, b"FACP");
                m[f + 114] = 0;
                fix_sum(&mut m, f);
                m
            },
            "FACP: not hardware-reduced ACPI"
        ),
        (
            "FADT revision",
            {
                let mut m = good.clone();
                let f = offset_of(&m, b"FACP");
                m[f + 8] = 4;
                fix_sum(&mut m, f);
                m
            },
            "FACP: revision older than ACPI 5.1"
        ),
        (
            "DSDT checksum",
            {
                let mut m = good.clone();
                let d = offset_of(&m, b"DSDT");
                m[d + 100] ^= 0x20;
                m
            },
            "DSDT at 0x40200024 has a bad checksum"
        ),
    ];
    for (what, mem, line) in cases {
        let want = std::format!("VMM's ACPI tables: {line}");
        assert_eq!(refused(&mem, &b), want, "{what}");
        assert!(!line.contains('\n'));
    }
}

#[test]
fn a_dt_that_disagrees_is_refused() {
    let mem = tables();
    // CH's one-vCPU DT against the two-vCPU tables.
    assert_eq!(
        refused(&mem, &board("fdt-boot1.dtb")),
        "VMM's ACPI tables: APIC: enabled GICCs and the DT's CPUs differ in number"
    );
    let mut smc = board("fdt-boot2max4.dtb");
    smc.psci = Some(Conduit::Smc);
    assert_eq!(
        refused(&mem, &smc),
        "VMM's ACPI tables: FACP: PSCI conduit differs from the DT's"
    );
    let mut other_ecam = board("fdt-boot2max4.dtb");
    other_ecam.pcie.as_mut().unwrap().ecam_base = 0x4010_0000_0000;
    assert!(refused(&mem, &other_ecam).contains("MCFG"));
}

#[test]
fn pres_definitions_are_recognised() {
    assert!(!defines_pres(&tables()));
    let ssdt = pres_ssdt(&[true]);
    assert!(defines_pres(&ssdt[36..]));
    // Device (\_SB.PRES) as CH's x86 DSDT writes it.
    let mut x86 = std::vec![0x5b, 0x82, 0x0c, b'\\', 0x2e];
    x86.extend_from_slice(b"_SB_PRES");
    assert!(defines_pres(&x86));
    assert!(!refers_to_pres(b"_SB_PCI0"));
}

/// The fixed tables: the new RSDP leads to CH's tables and the SSDT;
/// `(area base, area bytes)` followed by CH's window make one memory.
fn fixed() -> (u64, Vec<u8>, Vec<&'static str>) {
    let mem = tables();
    let (_, c) = adopt(&mem, &board("fdt-boot2max4.dtb")).unwrap();
    let base = 0x4010_0000u64;
    let mut area_buf = std::vec![0u8; (CH_RSDP - base) as usize];
    let mut area = TableArea::new(&mut area_buf, base);
    let (rsdp, lines) = c.fix(CH_RSDP, &mut area).unwrap();
    assert!(rsdp >= base && rsdp < CH_RSDP);
    let mut all = area_buf;
    all.extend_from_slice(&mem);
    (rsdp, all, lines)
}

#[test]
fn the_fix_adds_an_ssdt_and_a_madt_copy_to_a_new_xsdt() {
    let (rsdp, all, lines) = fixed();
    assert_eq!(lines.len(), 2);
    let w = walk(&all, 0x4010_0000, rsdp).unwrap();
    let sigs: Vec<[u8; 4]> = w.tables.iter().map(|t| t.signature()).collect();
    assert_eq!(sigs.len(), 10);
    assert_eq!(sigs[8], *b"SSDT");
    // CH's tables but the MADT are where CH put them, unchanged.
    let ch = tables();
    for t in w.tables.iter().filter(|t| t.addr >= CH_RSDP) {
        let off = (t.addr - CH_RSDP) as usize;
        assert_eq!(&ch[off..off + t.bytes.len()], &t.bytes[..]);
    }
    assert_eq!(w.find(*b"DSDT").unwrap().addr, 0x4020_0024);
    // The MADT's copy names the DT's PMU PPI 7 (INTID 23) in both GICCs.
    let madt = w.find(*b"APIC").unwrap();
    assert!(madt.addr < CH_RSDP);
    let perf: Vec<u32> = gicc_offsets(&madt.bytes)
        .map(|(o, _)| le32(&madt.bytes, o + GICC_PERF_GSIV).unwrap())
        .collect();
    assert_eq!(perf, [23, 23]);
    // The fixed set passes the arm checks again, with nothing left to fix.
    let c = check(&w, &board("fdt-boot2max4.dtb")).unwrap();
    assert_eq!(c.listed.len(), 9);
    assert!(c.pmu_unnamed.is_none());
}

#[test]
fn without_a_dt_pmu_the_madt_stays_chs() {
    let mem = tables();
    let mut b = board("fdt-boot2max4.dtb");
    b.pmu_irq = None;
    let (_, c) = adopt(&mem, &b).unwrap();
    assert!(c.pmu_unnamed.is_none());
    let mut buf = std::vec![0u8; 64 << 10];
    let mut area = TableArea::new(&mut buf, 0x4010_0000);
    let (_, lines) = c.fix(CH_RSDP, &mut area).unwrap();
    assert_eq!(lines.len(), 1, "only the SSDT");
}

/// Runs `acpiexec` on CH's DSDT with the SSDT and evaluates `cmds`;
/// None (with a notice) without acpica-tools.
fn acpiexec(ssdt: Option<&[u8]>, cmds: &[&str]) -> Option<String> {
    use std::process::Command;
    if Command::new("acpiexec").arg("-v").output().is_err() {
        std::println!("NOTICE: acpiexec not installed; skipping the AML evaluation");
        return None;
    }
    let tag = if ssdt.is_some() { "ssdt" } else { "bare" };
    let dir =
        std::env::temp_dir().join(std::format!("hotstub-ch-arm-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mem = tables();
    let w = walk(&mem, CH_RSDP, CH_RSDP).unwrap();
    std::fs::write(dir.join("dsdt.aml"), &w.find(*b"DSDT").unwrap().bytes).unwrap();
    let mut files = std::vec!["dsdt.aml".to_string()];
    if let Some(s) = ssdt {
        std::fs::write(dir.join("ssdt.aml"), s).unwrap();
        files.push("ssdt.aml".into());
    }
    let mut out = String::new();
    for c in cmds {
        let o = Command::new("acpiexec")
            .arg("-b")
            .arg(c)
            .args(&files)
            .current_dir(&dir)
            .output()
            .unwrap();
        out += &String::from_utf8_lossy(&o.stdout);
        out += &String::from_utf8_lossy(&o.stderr);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Some(out)
}

#[test]
fn without_the_ssdt_the_cpu_methods_fail() {
    if let Some(out) = acpiexec(None, &["execute \\_SB.CPUS.CSTA 0"]) {
        assert!(out.contains("AE_NOT_FOUND"), "{out}");
    }
}

#[test]
fn with_the_ssdt_the_cpu_methods_run_and_agree_with_the_madt() {
    let ssdt = pres_ssdt(&[true, true]);
    let cmds = [
        "execute \\_SB.CPUS.CSTA 0",
        "execute \\_SB.CPUS.CSTA 1",
        "execute \\_SB.CPUS.CSTA 3",
        "execute \\_SB.CPUS.CSCN",
        "execute \\_SB.CPUS.CEJ0 3",
        "execute \\_SB.GEC.ESCN",
    ];
    let Some(out) = acpiexec(Some(&ssdt), &cmds) else {
        return;
    };
    for bad in ["Error", "AE_", "Warning"] {
        let hit: Vec<&str> = out
            .lines()
            .filter(|l| l.contains(bad) && !l.contains("Outstanding"))
            .collect();
        assert!(hit.is_empty(), "{bad}: {hit:?}\n{out}");
    }
    let values: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("Evaluation of \\_SB.CPUS.CSTA returned object"))
        .collect();
    assert_eq!(values.len(), 3, "{out}");
    let ret: Vec<&str> = out
        .lines()
        .filter_map(|l| l.trim().strip_prefix("[Integer] = "))
        .collect();
    assert_eq!(
        ret,
        ["000000000000000F", "000000000000000F", "0000000000000000"],
        "{out}"
    );
}

#[test]
fn the_ssdt_disassembles_and_recompiles() {
    use std::process::Command;
    if Command::new("iasl").arg("-v").output().is_err() {
        std::println!("NOTICE: iasl not installed; skipping disassembly check");
        return;
    }
    let dir = std::env::temp_dir().join(std::format!("hotstub-ch-ssdt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("SSDT.dat"), pres_ssdt(&[true, false, true])).unwrap();
    let run = |args: &[&str]| {
        let o = Command::new("iasl")
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        std::format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let d = run(&["-d", "SSDT.dat"]);
    let dsl = std::fs::read_to_string(dir.join("SSDT.dsl")).unwrap_or_default();
    assert!(
        dsl.contains("Device (_SB.PRES)") || dsl.contains("Device (PRES)"),
        "{d}\n{dsl}"
    );
    assert!(dsl.contains("Method (CPEN"), "{dsl}");
    let c = run(&["-p", "SSDT-re", "SSDT.dsl"]);
    assert!(c.contains("0 Errors"), "{c}\n{dsl}");
    let _ = std::fs::remove_dir_all(&dir);
}
