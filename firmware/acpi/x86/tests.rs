extern crate std;

use super::*;
use crate::acpi::oracle::testutil::{build_in, check_revisions, iasl_check, madt_entries, walk};
use std::vec::Vec;

fn cpu(uid: u32, apic: u64, enabled: bool) -> Vcpu {
    Vcpu {
        uid,
        hw_id: apic,
        enabled,
    }
}

fn q35(cpus: Vec<Vcpu>, hotplug: bool) -> Pc {
    Pc {
        chipset: Chipset::Ich9,
        cpus,
        pm_base: 0x600,
        sci_irq: 9,
        lapic_addr: 0xfee0_0000,
        ioapic_id: 0,
        ioapic_addr: 0xfec0_0000,
        hpet: Some((0xfed0_0000, 0x8086_a201)),
        mmcfg_base: 0xb000_0000,
        mmcfg_end_bus: 255,
        pci_io: (0x1000, 0xffff),
        pci_mem32: (0xc000_0000, 0xfebf_ffff),
        pci_mem64: (0x1_8000_0000, 0x1_ffff_ffff),
        cpu_hotplug_io: hotplug.then_some(0x0cd8),
        i8042: true,
        mem_hotplug: None,
        vmm_tables: Vec::new(),
        pvpanic_io: None,
        tpm_tis: false,
        pci_hotplug: None,
    }
}

const BASE: u64 = 0x000e_0000 - 0x10000;

fn build_all(m: &Pc) -> (Built, Vec<u8>) {
    build_in(BASE, |a| build(m, a))
}

#[test]
fn tables_present_and_checksummed() {
    let m = q35(
        std::vec![
            cpu(0, 0, true),
            cpu(1, 1, true),
            cpu(2, 2, false),
            cpu(3, 3, false)
        ],
        false,
    );
    let (built, area) = build_all(&m);
    let t = walk(&built, &area, BASE);
    for sig in ["APIC", "DSDT", "FACP", "FACS", "HPET", "MCFG", "XSDT"] {
        assert!(t.by_sig.contains_key(sig), "{sig} missing");
    }
    let fadt = &t.by_sig["FACP"];
    assert_eq!(fadt.len(), 276);
    assert_eq!(fadt[8], 6, "FADT major revision");
    assert_eq!(fadt[131], 5, "FADT minor revision");
    assert_eq!(u16::from_le_bytes([fadt[46], fadt[47]]), 9, "SCI");
    assert_eq!(u32::from_le_bytes(fadt[56..60].try_into().unwrap()), 0x600);
    assert_eq!(u32::from_le_bytes(fadt[64..68].try_into().unwrap()), 0x604);
    assert_eq!(u32::from_le_bytes(fadt[76..80].try_into().unwrap()), 0x608);
    assert_eq!(u32::from_le_bytes(fadt[80..84].try_into().unwrap()), 0x620);
    assert_eq!(&fadt[88..93], &[4, 2, 0, 4, 16]);
    let flags = u32::from_le_bytes(fadt[112..116].try_into().unwrap());
    assert_ne!(flags & (1 << 10), 0, "RESET_REG_SUP");
    assert_eq!(flags & (1 << 4), 0, "fixed power button");
    assert_eq!(flags & (1 << 20), 0, "not HW-reduced");
    assert_eq!(fadt[116], 1, "reset reg in I/O space");
    assert_eq!(
        u64::from_le_bytes(fadt[120..128].try_into().unwrap()),
        0xcf9
    );
    assert_eq!(fadt[128], 0x06);
    assert_eq!(t.by_sig["FACS"].len(), 64);
    assert_eq!(t.by_sig["HPET"].len(), 56);
    assert_eq!(t.by_sig["MCFG"].len(), 60);
    let mcfg = &t.by_sig["MCFG"];
    assert_eq!(
        u64::from_le_bytes(mcfg[44..52].try_into().unwrap()),
        0xb000_0000
    );
    assert_eq!(mcfg[55], 255);
    check_revisions(&t);
    // X_GPE0_BLK: system I/O, 128 bits, byte access (ACPI 6.5 4.8.4.1).
    assert_eq!(&fadt[220..224], &[1, 128, 0, 1], "X_GPE0_BLK GAS");
    iasl_check(&t, "x86-basic");
}

#[test]
fn madt_mixed_enabled() {
    let m = q35(
        std::vec![
            cpu(0, 0, true),
            cpu(1, 1, false),
            cpu(2, 2, true),
            cpu(3, 3, false)
        ],
        false,
    );
    let (built, area) = build_all(&m);
    let t = walk(&built, &area, BASE);
    let madt = &t.by_sig["APIC"];
    assert!(madt[8] >= 5, "MADT revision");
    assert_eq!(
        u32::from_le_bytes(madt[36..40].try_into().unwrap()),
        0xfee0_0000
    );
    let e = madt_entries(madt);
    let lapics: Vec<_> = e.iter().filter(|(ty, _)| *ty == 0).collect();
    assert_eq!(lapics.len(), 4);
    for (i, (_, d)) in lapics.iter().enumerate() {
        // d = [type, len, uid, apic id, flags...]
        assert_eq!(d[2] as usize, i);
        assert_eq!(d[3] as usize, i);
        let flags = u32::from_le_bytes(d[4..8].try_into().unwrap());
        assert_eq!(flags, if i % 2 == 0 { 1 } else { 2 }, "cpu {i} flags");
    }
    assert_eq!(e.iter().filter(|(ty, _)| *ty == 1).count(), 1, "I/O APIC");
    let isos: Vec<_> = e.iter().filter(|(ty, _)| *ty == 2).collect();
    assert_eq!(isos.len(), 2);
    // IRQ0 -> GSI2; IRQ9 level active-high.
    assert_eq!(isos[0].1[3], 0);
    assert_eq!(u32::from_le_bytes(isos[0].1[4..8].try_into().unwrap()), 2);
    assert_eq!(isos[1].1[3], 9);
    assert_eq!(u16::from_le_bytes([isos[1].1[8], isos[1].1[9]]), 0x0d);
    assert_eq!(e.iter().filter(|(ty, _)| *ty == 4).count(), 1, "LAPIC NMI");
    assert_eq!(e.iter().filter(|(ty, _)| *ty == 9).count(), 0, "no x2APIC");

    let dsdt = iasl_check(&t, "x86-mixed");
    if let Some(dsl) = dsdt {
        assert_eq!(dsl.matches("ACPI0007").count(), 4);
        assert!(dsl.contains("Device (C003)"));
        assert_eq!(dsl.matches("Name (_STA, 0x0F)").count(), 2, "enabled _STA");
        assert_eq!(dsl.matches("Name (_STA, 0x0D)").count(), 2, "disabled _STA");
    }
}

#[test]
fn x2apic_for_large_ids() {
    let m = q35(
        std::vec![
            cpu(0, 0, true),
            cpu(1, 254, true),
            cpu(2, 255, false),
            cpu(3, 300, true)
        ],
        false,
    );
    let (built, area) = build_all(&m);
    let t = walk(&built, &area, BASE);
    let e = madt_entries(&t.by_sig["APIC"]);
    let lapic: Vec<_> = e.iter().filter(|(ty, _)| *ty == 0).collect();
    let x2: Vec<_> = e.iter().filter(|(ty, _)| *ty == 9).collect();
    assert_eq!(lapic.len(), 2);
    assert_eq!(x2.len(), 2);
    // d = [type, len, rsvd, rsvd, id(4), flags(4), uid(4)]
    let id = |d: &[u8]| u32::from_le_bytes(d[4..8].try_into().unwrap());
    let flags = |d: &[u8]| u32::from_le_bytes(d[8..12].try_into().unwrap());
    let uid = |d: &[u8]| u32::from_le_bytes(d[12..16].try_into().unwrap());
    assert_eq!((id(&x2[0].1), flags(&x2[0].1), uid(&x2[0].1)), (255, 2, 2));
    assert_eq!((id(&x2[1].1), flags(&x2[1].1), uid(&x2[1].1)), (300, 1, 3));
    assert_eq!(
        e.iter().filter(|(ty, _)| *ty == 0x0a).count(),
        1,
        "x2APIC NMI"
    );
    iasl_check(&t, "x86-x2apic");
}

#[test]
fn no_mem64_window_and_no_hpet() {
    let mut m = q35(std::vec![cpu(0, 0, true)], false);
    m.pci_mem64 = (1, 0);
    m.hpet = None;
    let (built, area) = build_all(&m);
    let t = walk(&built, &area, BASE);
    assert!(!t.by_sig.contains_key("HPET"));
    if let Some(dsl) = iasl_check(&t, "x86-nomem64") {
        assert!(!dsl.contains("QWordMemory"));
    }
}

#[test]
fn rejects_bad_input() {
    let mut buf = [0u8; 64 * 1024];
    let m = q35(std::vec![], false);
    assert!(matches!(
        build(&m, &mut TableArea::new(&mut buf, 0)),
        Err(Error::Invalid(_))
    ));
    let m = q35(std::vec![cpu(0, 0, true), cpu(1, 0, true)], false);
    assert!(matches!(
        build(&m, &mut TableArea::new(&mut buf, 0)),
        Err(Error::Invalid(_))
    ));
    let m = q35(std::vec![cpu(0, 0, true)], false);
    let mut small = [0u8; 512];
    assert_eq!(
        build(&m, &mut TableArea::new(&mut small, 0)),
        Err(Error::NoSpace)
    );
}

#[test]
fn hotplug_aml() {
    let m = q35(
        std::vec![
            cpu(0, 0, true),
            cpu(1, 1, false),
            cpu(2, 2, false),
            cpu(3, 3, false)
        ],
        true,
    );
    let (built, area) = build_all(&m);
    let t = walk(&built, &area, BASE);
    // The MADT still follows the boot-time enabled set.
    let e = madt_entries(&t.by_sig["APIC"]);
    let flags: Vec<u32> = e
        .iter()
        .filter(|(ty, _)| *ty == 0)
        .map(|(_, d)| u32::from_le_bytes(d[4..8].try_into().unwrap()))
        .collect();
    assert_eq!(flags, [1, 2, 2, 2]);
    if let Some(dsl) = iasl_check(&t, "x86-hotplug") {
        assert!(dsl.contains("OperationRegion (PRST, SystemIO, 0x0CD8, 0x0C)"));
        assert!(dsl.contains("Method (_E02"));
        assert!(dsl.contains("\\_SB.CSCN ()"));
        for name in ["_EJ0", "_OST"] {
            assert_eq!(
                dsl.matches(&std::format!("Method ({name}")).count(),
                4,
                "{name}"
            );
        }
        // A constant enabled entry, as QEMU's: Linux reads it only once
        // the vCPU's _STA says it is plugged.
        assert_eq!(dsl.matches("Name (_MAT, Buffer").count(), 4, "_MAT");
        // _STA a Name: the boot-time status, kept current by CNTF and
        // _EJ0.
        assert_eq!(dsl.matches("Name (_STA, 0x0F)").count(), 1, "plugged");
        assert_eq!(dsl.matches("Name (_STA, Zero)").count(), 3, "absent");
        assert!(dsl.contains("^C003._STA = Arg2"));
        assert!(dsl.contains("_STA = CEJX (0x03)"));
        assert!(dsl.contains("Notify (C003, Arg1)"));
        // The CPU hotplug block is reserved as a motherboard resource.
        assert!(dsl.contains("0x0CD8,             // Range Minimum"));
    }
}

#[test]
fn hotplug_requires_selector_uids() {
    let mut buf = [0u8; 64 * 1024];
    let m = q35(std::vec![cpu(0, 0, true), cpu(5, 1, false)], true);
    assert!(matches!(
        build(&m, &mut TableArea::new(&mut buf, 0)),
        Err(Error::Invalid(_))
    ));
}

#[test]
fn memory_hotplug_aml() {
    use crate::acpi::memhp::{Block, MemHotplug};
    let mut m = q35(std::vec![cpu(0, 0, true), cpu(1, 1, false)], true);
    m.mem_hotplug = Some(MemHotplug {
        block: Block::Io(0x0a00),
        slots: 3,
    });
    let (built, area) = build_all(&m);
    let t = walk(&built, &area, BASE);
    if let Some(dsl) = iasl_check(&t, "x86-memhp") {
        assert_eq!(
            dsl.matches("PNP0C80").count(),
            3,
            "one memory device per slot"
        );
        for want in [
            "Device (MP00)",
            "Device (MP02)",
            "Method (_E03",
            "Method (_E02",
            "MSCN",
            "0x0A00",
        ] {
            assert!(dsl.contains(want), "{want} missing from DSDT");
        }
        assert!(!dsl.contains("Device (MP03)"));
    }
    m.mem_hotplug = Some(MemHotplug {
        block: Block::Io(0x0a00),
        slots: 0,
    });
    let mut buf = [0u8; 64 * 1024];
    let mut area = crate::acpi::TableArea::new(&mut buf, BASE);
    assert!(
        build(&m, &mut area).is_err(),
        "no slots is not a hotplug interface"
    );
}

#[test]
fn pci_hotplug_aml() {
    use crate::acpi::pcihp::{PciHotplug, RootPort};
    let mut m = q35(std::vec![cpu(0, 0, true), cpu(1, 1, false)], true);
    m.pci_hotplug = Some(PciHotplug {
        block: crate::acpi::pcihp::Block::Io(crate::acpi::pcihp::BASE),
        buses: Vec::new(),
        ports: std::vec![
            RootPort {
                adr: 0x0003_0000,
                bsel: 1,
            },
            RootPort {
                adr: 0x0006_0001,
                bsel: 0,
            },
        ],
    });
    let (built, area) = build_all(&m);
    let t = walk(&built, &area, BASE);
    if let Some(dsl) = iasl_check(&t, "x86-pcihp") {
        for want in [
            "OperationRegion (PCST, SystemIO, 0x0CC0, 0x18)",
            "Mutex (BLCK, 0x00)",
            "Device (S18)",
            "Device (S31)",
            "Name (_ADR, 0x00030000)",
            "Name (_ADR, 0x00060001)",
            "Name (BSEL, One)",
            "Name (BSEL, Zero)",
            "Name (_SUN, Zero)",
            "PCEJ (BSEL)",
            "^S18.PCNT ()",
            "^S31.PCNT ()",
            "Notify (S00, One)",
            "Notify (S00, 0x03)",
            "Method (_E01",
            "\\_SB.PCI0.PCNT ()",
            // _OSC keeps native hotplug (bit 0) from the OS.
            "Local0 = (CDW3 & 0x1C)",
            // The block is reserved as a motherboard resource.
            "0x0CC0,             // Range Minimum",
        ] {
            assert!(dsl.contains(want), "{want} missing from DSDT:\n{dsl}");
        }
        assert_eq!(dsl.matches("Method (_EJ0").count(), 2 + 2, "slots + vCPUs");
    }
    // Without ACPI PCI hotplug the OS gets native hotplug.
    m.pci_hotplug = None;
    let (built, area) = build_all(&m);
    let t = walk(&built, &area, BASE);
    if let Some(dsl) = iasl_check(&t, "x86-native-pcihp") {
        assert!(dsl.contains("Local0 = (CDW3 & 0x1D)"));
        assert!(!dsl.contains("PCST") && !dsl.contains("_E01"));
    }
}

#[test]
fn pvpanic_device() {
    let mut m = q35(std::vec![cpu(0, 0, true)], false);
    m.pvpanic_io = Some(0x505);
    m.tpm_tis = true;
    let (built, area) = build_all(&m);
    let t = walk(&built, &area, BASE);
    if let Some(dsl) = iasl_check(&t, "x86-pvpanic") {
        assert!(dsl.contains("\"QEMU0001\""), "pvpanic device");
        assert!(dsl.contains("0x0505"), "at its port");
        assert!(dsl.contains("\"MSFT0101\""), "TPM device");
        assert!(dsl.contains("0xFED40000"), "at the TIS address");
    }
}

/// The DSDT the firmware writes is, byte for byte, the one the
/// `acpi_tables` builders write (`acpi/oracle/x86.rs`), on every variation the
/// machine description allows.
#[test]
fn dsdt_matches_the_acpi_tables_builders() {
    use crate::acpi::memhp::{Block, MemHotplug};
    use crate::acpi::pcihp::{PciHotplug, RootPort};
    let cpus = || {
        std::vec![
            cpu(0, 0, true),
            cpu(1, 1, false),
            cpu(2, 300, true),
            cpu(3, 255, false)
        ]
    };
    let mut machines = std::vec![q35(cpus(), false), q35(cpus(), true)];
    let mut m = q35(cpus(), true);
    m.mem_hotplug = Some(MemHotplug {
        block: Block::Io(0x0a00),
        slots: 3,
    });
    m.pci_hotplug = Some(PciHotplug {
        block: crate::acpi::pcihp::Block::Io(crate::acpi::pcihp::BASE),
        buses: Vec::new(),
        ports: std::vec![
            RootPort {
                adr: 0x0003_0000,
                bsel: 1,
            },
            RootPort {
                adr: 0x0006_0001,
                bsel: 0,
            },
        ],
    });
    m.pvpanic_io = Some(0x505);
    m.tpm_tis = true;
    machines.push(m);
    let mut m = q35(std::vec![cpu(0, 0, true)], false);
    m.i8042 = false;
    m.pci_mem64 = (1, 0);
    m.mmcfg_end_bus = 63;
    m.pci_hotplug = Some(PciHotplug::q35(std::vec::Vec::new()));
    machines.push(m);
    // Enough vCPUs for long PkgLengths in CNTF and the scope.
    let many: Vec<Vcpu> = (0..200).map(|i| cpu(i, u64::from(i), i < 4)).collect();
    machines.push(q35(many.clone(), true));
    machines.push(q35(many, false));
    for (i, m) in machines.iter().enumerate() {
        let want = oracle::dsdt(m).unwrap();
        assert_eq!(dsdt(m).unwrap(), want, "machine {i}");
    }
}

#[test]
fn area_size_bounds_the_tables() {
    use crate::acpi::memhp::{Block, MemHotplug, MAX_SLOTS};
    use crate::acpi::pcihp::{PciHotplug, RootPort};
    for n in [1usize, 8, 288, 1024, 4096] {
        // Every vCPU past the first absent, the APIC IDs spread as QEMU's
        // topology can (x2APIC entries for most), every DIMM slot, the
        // root ports (31, every device but the host bridge) and a NUMA SRAT-sized table from the VMM.
        let cpus = (0..n)
            .map(|i| cpu(i as u32, (i as u64) * 2, i == 0))
            .collect();
        let mut m = q35(cpus, true);
        m.mem_hotplug = Some(MemHotplug {
            block: Block::Io(0x0a00),
            slots: MAX_SLOTS,
        });
        let ports = (1..=31)
            .map(|d| RootPort {
                adr: d << 16,
                bsel: d,
            })
            .collect();
        m.pci_hotplug = Some(PciHotplug::q35(ports));
        m.vmm_tables = std::vec![table(*b"SRAT", 3, &std::vec![0; 48 + 24 * n])];
        m.pvpanic_io = Some(0x505);
        m.tpm_tis = true;
        let mut buf = std::vec![0u8; area_size(n)];
        let mut area = TableArea::new(&mut buf, 0x1000_0000);
        let r = build(&m, &mut area);
        assert!(r.is_ok(), "{n} vCPUs: {r:?} after {} bytes", area.used());
        assert!(
            area.used() * 10 > area_size(n) * 5,
            "{n}: the bound is tight enough"
        );
    }
}
