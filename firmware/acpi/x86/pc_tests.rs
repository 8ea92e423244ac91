//! The `pc` (i440FX/PIIX4) tables: what differs from q35's.

extern crate std;

use super::*;
use crate::acpi::oracle::testutil::{build_in, check_revisions, iasl_check, madt_entries, walk};
use std::vec::Vec;

fn pc(hotplug: bool) -> Pc {
    let cpus = (0..4)
        .map(|i| Vcpu {
            uid: i,
            hw_id: i.into(),
            enabled: i < 2,
        })
        .collect();
    Pc {
        chipset: Chipset::Piix4,
        cpus,
        pm_base: 0x600,
        sci_irq: 9,
        lapic_addr: 0xfee0_0000,
        ioapic_id: 0,
        ioapic_addr: 0xfec0_0000,
        hpet: Some((0xfed0_0000, 0x8086_a201)),
        mmcfg_base: 0,
        mmcfg_end_bus: 255,
        pci_io: (0x1000, 0xffff),
        pci_mem32: (0xc000_0000, 0xfebf_ffff),
        pci_mem64: (0x1_8000_0000, 0x1_ffff_ffff),
        cpu_hotplug_io: hotplug.then_some(0xaf00),
        i8042: true,
        mem_hotplug: hotplug.then_some(crate::acpi::memhp::MemHotplug {
            block: crate::acpi::memhp::Block::Io(0x0a00),
            slots: 4,
        }),
        vmm_tables: Vec::new(),
        pvpanic_io: None,
        tpm_tis: false,
        pci_hotplug: None,
    }
}

const BASE: u64 = 0x000e_0000 - 0x10000;

#[test]
fn piix4_fadt_madt_and_no_mcfg() {
    let (built, area) = build_in(BASE, |a| build(&pc(false), a));
    let t = walk(&built, &area, BASE);
    for sig in ["APIC", "DSDT", "FACP", "FACS", "HPET", "XSDT"] {
        assert!(t.by_sig.contains_key(sig), "{sig} missing");
    }
    assert!(!t.by_sig.contains_key("MCFG"), "i440FX has no MMCONFIG");
    let fadt = &t.by_sig["FACP"];
    assert_eq!(u16::from_le_bytes([fadt[46], fadt[47]]), 9, "SCI");
    assert_eq!(u32::from_le_bytes(fadt[56..60].try_into().unwrap()), 0x600);
    assert_eq!(u32::from_le_bytes(fadt[64..68].try_into().unwrap()), 0x604);
    assert_eq!(u32::from_le_bytes(fadt[76..80].try_into().unwrap()), 0x608);
    // GPE0 at PIIX4's fixed 0xafe0, 4 bytes (2 status, 2 enable).
    assert_eq!(u32::from_le_bytes(fadt[80..84].try_into().unwrap()), 0xafe0);
    assert_eq!(fadt[92], 4);
    assert_eq!(&fadt[220..224], &[1, 32, 0, 1], "X_GPE0_BLK GAS");
    assert_eq!(
        u64::from_le_bytes(fadt[224..232].try_into().unwrap()),
        0xafe0
    );
    // Reset through 0xcf9 (PIIX3's RCR).
    assert_eq!(
        u64::from_le_bytes(fadt[120..128].try_into().unwrap()),
        0xcf9
    );
    // Overrides: IRQ 0 -> 2, then 9, 5, 10, 11 level-triggered, active
    // high (flags 0xd), as QEMU's MADT for pc.
    let isos: Vec<(u8, u32, u16)> = madt_entries(&t.by_sig["APIC"])
        .into_iter()
        .filter(|(ty, _)| *ty == 2)
        .map(|(_, e)| {
            (
                e[3],
                u32::from_le_bytes(e[4..8].try_into().unwrap()),
                u16::from_le_bytes([e[8], e[9]]),
            )
        })
        .collect();
    assert_eq!(
        isos,
        [
            (0, 2, 0),
            (9, 9, 0xd),
            (5, 5, 0xd),
            (10, 10, 0xd),
            (11, 11, 0xd)
        ]
    );
    check_revisions(&t);
    if let Some(dsl) = iasl_check(&t, "x86-pc") {
        assert!(dsl.contains("Name (_HID, EisaId (\"PNP0A03\")"));
        assert!(!dsl.contains("PNP0A08"));
        assert!(dsl.contains("Device (ISA)") || dsl.contains("Device (ISA_)"));
        assert_eq!(dsl.matches("PNP0C0F").count(), 5, "LNKA-D and LNKS");
        assert!(!dsl.contains("_OSC"));
        assert!(dsl.contains("0xAFE0"), "GPE0 block reserved");
    }
}

#[test]
fn piix4_hotplug_aml() {
    use crate::acpi::pcihp::{PciHotplug, SlotBus};
    let mut m = pc(true);
    m.pci_hotplug = Some(PciHotplug::pc(
        0xae00,
        std::vec![
            SlotBus {
                adr: None,
                bsel: 0,
                slots: !0b10111,
            },
            SlotBus {
                adr: Some(0x0004_0000),
                bsel: 1,
                slots: !0,
            },
        ],
    ));
    let (built, area) = build_in(BASE, |a| build(&m, a));
    let t = walk(&built, &area, BASE);
    if let Some(dsl) = iasl_check(&t, "x86-pc-hotplug") {
        assert!(dsl.contains("OperationRegion (PRST, SystemIO, 0xAF00, 0x0C)"));
        assert!(dsl.contains("OperationRegion (PCST, SystemIO, 0xAE00, 0x18)"));
        assert!(dsl.contains("Method (_E01"));
        assert!(dsl.contains("Method (_E02"));
        assert!(dsl.contains("Method (_E03"));
        assert!(dsl.contains("PCEJ (BSEL, _SUN)"));
        // 28 root slots (all but 0, 1, 2 and the bridge's 4), 32 behind
        // the bridge, then the 4 vCPUs and 4 DIMM slots.
        assert_eq!(dsl.matches("Method (_EJ0").count(), 28 + 32 + 4 + 4);
    }
}

/// QEMU's own `_PRT` for pc (hw/i386/acpi-build.c build_prt) as the
/// SeaBIOS boot shows it: slot 0 INTA on LNKD, slot 1 INTA on LNKS (the
/// PM function's SCI), slot 1 INTB on LNKB, slot 2 INTA on LNKB, slot 3
/// INTA on LNKC; four pins for each of the 32 slots.
#[test]
fn pc_routing_matches_qemu() {
    let r: Vec<(u8, u8, u8)> = routing::pc().collect();
    assert_eq!(r.len(), 128);
    let link = |d: u8, p: u8| r.iter().find(|e| e.0 == d && e.1 == p).unwrap().2;
    assert_eq!(link(0, 0), 3);
    assert_eq!(link(1, 0), 4);
    assert_eq!(link(1, 1), 1);
    assert_eq!(link(2, 0), 1);
    assert_eq!(link(3, 0), 2);
    assert_eq!(link(31, 3), 1);
}
