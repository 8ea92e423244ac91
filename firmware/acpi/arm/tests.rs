extern crate std;

use super::*;
use crate::acpi::oracle::testutil::{build_in, check_revisions, iasl_check, madt_entries, walk};
use std::vec::Vec;

fn cpu(uid: u32, mpidr: u64, enabled: bool) -> Vcpu {
    Vcpu {
        uid,
        hw_id: mpidr,
        enabled,
    }
}

/// QEMU 10 `virt` as its DT describes it (gic-version=3, ITS, PCIe).
fn virt(cpus: Vec<Vcpu>) -> Virt {
    let mut prt = Vec::new();
    for device in 0..32u8 {
        for pin in 0..4u8 {
            // interrupt-map: SPI 3 + (device + pin) % 4.
            prt.push(PrtEntry {
                device,
                pin,
                gsi: 32 + 3 + u32::from((device + pin) % 4),
            });
        }
    }
    Virt {
        cpus,
        gic: Gic {
            version: 3,
            gicd: 0x0800_0000,
            gicr: std::vec![(0x080a_0000, 0x00f6_0000)],
            gicc: None,
            gicv: None,
            gich: None,
            its: Some(0x0808_0000),
            maint_irq: None,
        },
        timer_irqs: [29, 30, 27, 26],
        el2_vtimer: None,
        pmu_irq: Some(23),
        uart: (0x0900_0000, 33),
        rtc: Some((0x0901_0000, 34)),
        fw_cfg: Some(0x0902_0000),
        virtio_mmio: (0..32)
            .map(|i| (0x0a00_0000 + i * 0x200, 0x200, 48 + i as u32))
            .collect(),
        pcie: Some(ArmPcie {
            ecam: (0x40_1000_0000, 0x1000_0000),
            bus: (0, 255),
            mmio32: (0x1000_0000, 0x2eff_0000),
            mmio64: Some((0x80_0000_0000, 0x80_0000_0000)),
            io: Some((0x3eff_0000, 0x1_0000)),
            prt,
        }),
        ged: Some((0x0908_0000, 41)),
        mem_hotplug: None,
        pci_hotplug: None,
        cpu_hotplug: None,
        tpm: None,
        vmm_tables: Vec::new(),
        conduit: Conduit::Hvc,
    }
}

const BASE: u64 = 0x4800_0000;

fn build_all(m: &Virt) -> (Built, Vec<u8>) {
    build_in(BASE, |a| build(m, a))
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

#[test]
fn gicv3_tables() {
    let m = virt(std::vec![
        cpu(0, 0, true),
        cpu(1, 1, true),
        cpu(2, 2, false),
        cpu(3, 0x1_0000_0100, false)
    ]);
    let (built, area) = build_all(&m);
    let t = walk(&built, &area, BASE);
    for sig in [
        "APIC", "DSDT", "FACP", "GTDT", "IORT", "MCFG", "SPCR", "XSDT",
    ] {
        assert!(t.by_sig.contains_key(sig), "{sig} missing");
    }
    assert!(!t.by_sig.contains_key("FACS"));
    let fadt = &t.by_sig["FACP"];
    assert_eq!((fadt[8], fadt[131]), (6, 5));
    assert_ne!(u32_at(fadt, 112) & (1 << 20), 0, "HW_REDUCED_ACPI");
    assert_eq!(
        u16::from_le_bytes([fadt[129], fadt[130]]),
        0b11,
        "PSCI + HVC"
    );

    let e = madt_entries(&t.by_sig["APIC"]);
    let giccs: Vec<_> = e.iter().filter(|(ty, _)| *ty == 0x0b).collect();
    assert_eq!(giccs.len(), 4);
    for (i, (_, g)) in giccs.iter().enumerate() {
        assert_eq!(g.len(), 82);
        assert_eq!(u32_at(g, 8), i as u32, "uid");
        let flags = u32_at(g, 12);
        if i < 2 {
            assert_eq!(flags & 0b1001, 1, "cpu {i} enabled");
        } else {
            assert_eq!(flags & 0b1001, 0b1000, "cpu {i} online-capable");
        }
        assert_eq!(u32_at(g, 20), 23, "PMU GSIV");
        assert_eq!(u64_at(g, 60), 0, "GICR base in GICR structure");
        assert_eq!(u64_at(g, 68), m.cpus[i].hw_id, "MPIDR");
    }
    assert_eq!(e.iter().filter(|(ty, _)| *ty == 0x0c).count(), 1, "GICD");
    assert_eq!(e.iter().filter(|(ty, _)| *ty == 0x0e).count(), 1, "GICR");
    assert_eq!(e.iter().filter(|(ty, _)| *ty == 0x0f).count(), 1, "ITS");
    let gicd = &e.iter().find(|(ty, _)| *ty == 0x0c).unwrap().1;
    assert_eq!(gicd[20], 3, "GIC version");

    check_revisions(&t);
    let gtdt = &t.by_sig["GTDT"];
    assert_eq!(gtdt.len(), 104);
    assert_eq!(gtdt[8], 3, "GTDT revision 3");
    // No EL2 virtual timer for a kernel at EL1: GSIV and flags zero.
    assert_eq!((u32_at(gtdt, 96), u32_at(gtdt, 100)), (0, 0));
    assert_eq!(u32_at(gtdt, 88), 0, "no platform timers");
    assert_eq!(
        [
            u32_at(gtdt, 48),
            u32_at(gtdt, 56),
            u32_at(gtdt, 64),
            u32_at(gtdt, 72)
        ],
        [29, 30, 27, 26]
    );
    let spcr = &t.by_sig["SPCR"];
    assert_eq!(spcr.len(), 80);
    assert_eq!(spcr[36], 3, "PL011");
    assert_eq!(u64_at(spcr, 44), 0x0900_0000);
    assert_eq!(u32_at(spcr, 54), 33);
    let mcfg = &t.by_sig["MCFG"];
    assert_eq!(u64_at(mcfg, 44), 0x40_1000_0000);

    if let Some(dsl) = iasl_check(&t, "arm-v3") {
        assert_eq!(dsl.matches("ACPI0007").count(), 4);
        assert_eq!(dsl.matches("Name (_STA, 0x0F)").count(), 2);
        assert_eq!(dsl.matches("Name (_STA, 0x0D)").count(), 2);
        for want in [
            "ARMH0011",
            "QEMU0002",
            "LNRO0005",
            "ACPI0013",
            "PNP0C0C",
            "arm,pl031",
        ] {
            assert!(dsl.contains(want), "{want} missing from DSDT");
        }
        assert!(dsl.contains("Notify (PWRB, 0x80)"));
        assert!(dsl.contains("Edge, ActiveHigh"), "GED edge");
    }
}

#[test]
fn gicv2_smc_minimal() {
    let mut m = virt(std::vec![cpu(0, 0, true), cpu(1, 1, true)]);
    m.gic = Gic {
        version: 2,
        gicd: 0x0800_0000,
        gicr: Vec::new(),
        gicc: Some(0x0801_0000),
        gicv: Some(0x0804_0000),
        gich: Some(0x0803_0000),
        its: None,
        maint_irq: Some(25),
    };
    m.conduit = Conduit::Smc;
    m.pcie.as_mut().unwrap().mmio64 = None;
    m.ged = None;
    m.rtc = None;
    m.el2_vtimer = Some(28);
    let (built, area) = build_all(&m);
    let t = walk(&built, &area, BASE);
    check_revisions(&t);
    assert!(!t.by_sig.contains_key("IORT"), "no ITS, no IORT");
    // A VHE kernel at EL2: the virtual EL2 timer (GTDT rev 3, offset 96).
    let gtdt = &t.by_sig["GTDT"];
    assert_eq!((gtdt.len(), gtdt[8]), (104, 3));
    assert_eq!((u32_at(gtdt, 96), u32_at(gtdt, 100)), (28, 1 << 2));
    let fadt = &t.by_sig["FACP"];
    assert_eq!(
        u16::from_le_bytes([fadt[129], fadt[130]]),
        0b01,
        "PSCI, SMC"
    );
    let e = madt_entries(&t.by_sig["APIC"]);
    let giccs: Vec<_> = e.iter().filter(|(ty, _)| *ty == 0x0b).collect();
    for (i, (_, g)) in giccs.iter().enumerate() {
        assert_eq!(u32_at(g, 4), i as u32, "CPU interface number");
        assert_eq!(u64_at(g, 32), 0x0801_0000, "GICC base");
        assert_eq!(u64_at(g, 40), 0x0804_0000, "GICV");
        assert_eq!(u64_at(g, 48), 0x0803_0000, "GICH");
        assert_eq!(u32_at(g, 56), 25, "maintenance interrupt");
    }
    let gicd = &e.iter().find(|(ty, _)| *ty == 0x0c).unwrap().1;
    assert_eq!(gicd[20], 2);
    assert_eq!(e.iter().filter(|(ty, _)| *ty == 0x0e).count(), 0);
    if let Some(dsl) = iasl_check(&t, "arm-v2") {
        assert!(!dsl.contains("ACPI0013"));
    }
}

#[test]
fn rejects_bad_input() {
    let mut buf = [0u8; 64 * 1024];
    let mut m = virt(std::vec![cpu(0, 0, true)]);
    m.gic.version = 4;
    assert!(matches!(
        build(&m, &mut TableArea::new(&mut buf, 0)),
        Err(Error::Invalid(_))
    ));
    let m = virt(std::vec![cpu(0, 1 << 24, true)]);
    assert!(matches!(
        build(&m, &mut TableArea::new(&mut buf, 0)),
        Err(Error::Invalid(_))
    ));
    let mut m = virt(std::vec![cpu(0, 0, true)]);
    m.gic.gicr.clear();
    assert!(matches!(
        build(&m, &mut TableArea::new(&mut buf, 0)),
        Err(Error::Invalid(_))
    ));
}

/// QEMU 11's block at VIRT_ACPI_PCIHP and two root ports.
fn virt_pci_hotplug() -> crate::acpi::pcihp::PciHotplug {
    use crate::acpi::pcihp::{Block, PciHotplug, RootPort};
    PciHotplug {
        block: Block::Mmio(0x090d_0000),
        buses: Vec::new(),
        ports: std::vec![
            RootPort {
                adr: 0x0001_0000,
                bsel: 1,
            },
            RootPort {
                adr: 0x0002_0000,
                bsel: 0,
            },
        ],
    }
}

#[test]
fn pci_hotplug_through_the_ged() {
    let mut m = virt(std::vec![cpu(0, 0, true)]);
    m.pci_hotplug = Some(virt_pci_hotplug());
    let (built, area) = build_all(&m);
    let t = walk(&built, &area, BASE);
    if let Some(dsl) = iasl_check(&t, "arm-pcihp") {
        assert!(
            dsl.contains("OperationRegion (PCST, SystemMemory, 0x090D0000, 0x18)"),
            "{dsl}"
        );
        assert!(dsl.contains("Device (S08)") && dsl.contains("Device (S10)"));
        assert!(
            dsl.contains("\\_SB.PCI0.PCNT ()"),
            "GED dispatches PCI events"
        );
        assert!(dsl.contains("If ((Local1 == 0x10))"), "{dsl}");
    }
    // _OSC keeps native hotplug from the OS exactly when the block exists.
    let osc = crate::acpi::pci_osc(false);
    let t = dsdt(&m).unwrap();
    assert!(t.windows(osc.len()).any(|w| w == osc));
    m.pci_hotplug = None;
    let native = crate::acpi::pci_osc(true);
    let t = dsdt(&m).unwrap();
    assert!(t.windows(native.len()).any(|w| w == native));
    assert!(!t.windows(4).any(|w| w == b"PCST"));
    // Without a GED nothing would deliver the events.
    m.pci_hotplug = Some(virt_pci_hotplug());
    m.ged = None;
    assert!(dsdt(&m).is_err());
}

/// QEMU virt's largest GICv3 machine (`-smp 512`): the first 123
/// redistributors in the low region, the rest in the second one above RAM
/// (hw/arm/virt.c `base_memmap` VIRT_GIC_REDIST and `extended_memmap`
/// VIRT_HIGH_GIC_REDIST2, 256 GiB with up to 255 GiB of RAM), MPIDRs 16 to
/// a cluster (`virt_cpu_mp_affinity`).
#[test]
fn two_redistributor_regions_and_512_vcpus() {
    let regions = [(0x080a_0000, 0x00f6_0000), (0x40_0000_0000, 0x400_0000)];
    let mut m = virt(
        (0..512u32)
            .map(|i| cpu(i, u64::from(i / 16) << 8 | u64::from(i % 16), i < 4))
            .collect(),
    );
    m.gic.gicr = regions.to_vec();
    // At EL3 with the control channel: each processor's hotplug AML too,
    // the largest DSDT; all of it must fit the firmware's 192 KiB.
    m.cpu_hotplug = Some(crate::acpi::cpuhp::CpuHotplug {
        block: 0x4013_f000,
        intid: 44,
    });
    let (built, area) = build_all(&m);
    let t = walk(&built, &area, BASE);
    let e = madt_entries(&t.by_sig["APIC"]);
    let giccs: Vec<_> = e.iter().filter(|(ty, _)| *ty == 0x0b).collect();
    assert_eq!(giccs.len(), 512);
    let (last, first) = (&giccs[511].1, &giccs[0].1);
    assert_eq!((u32_at(last, 8), u64_at(last, 68)), (511, 0x1f0f));
    assert_eq!(u32_at(last, 12) & 0b1001, 0b1000, "online-capable");
    assert_eq!(u32_at(first, 12) & 0b1001, 1, "enabled");
    // ACPI 6.5 5.2.12.17: type 0xe, length 16, base at 4, length at 12.
    let gicrs: Vec<(u64, u64)> = e
        .iter()
        .filter(|(ty, _)| *ty == 0x0e)
        .map(|(_, g)| (u64_at(g, 4), u64::from(u32_at(g, 12))))
        .collect();
    assert_eq!(gicrs, regions);
    if let Some(dsl) = iasl_check(&t, "arm-512") {
        assert_eq!(dsl.matches("ACPI0007").count(), 512);
    }
    // The length field is 32 bits.
    m.gic.gicr[1].1 = 1 << 32;
    let mut buf = std::vec![0u8; 256 * 1024];
    assert!(matches!(
        build(&m, &mut TableArea::new(&mut buf, BASE)),
        Err(Error::Invalid(_))
    ));
}

#[test]
fn memory_hotplug_through_the_ged() {
    use crate::acpi::memhp::{Block, MemHotplug};
    let mut m = virt(std::vec![cpu(0, 0, true)]);
    m.mem_hotplug = Some(MemHotplug {
        block: Block::Mmio(0x0907_0000),
        slots: 2,
    });
    let (built, area) = build_all(&m);
    let t = walk(&built, &area, BASE);
    if let Some(dsl) = iasl_check(&t, "arm-memhp") {
        assert_eq!(dsl.matches("PNP0C80").count(), 2);
        assert!(
            dsl.contains("Memory32Fixed (ReadWrite,\n                    0x09070000"),
            "{dsl}"
        );
        assert!(
            dsl.contains("\\_SB.MHPC.MSCN ()"),
            "GED dispatches memory events"
        );
        assert!(
            dsl.contains("Notify (PWRB, 0x80)"),
            "and still the power button"
        );
    }
    m.ged = None;
    let mut buf = [0u8; 64 * 1024];
    let mut area = crate::acpi::TableArea::new(&mut buf, BASE);
    assert!(
        build(&m, &mut area).is_err(),
        "memory hotplug needs the GED"
    );
}

#[test]
fn runtime_cpu_hotplug_aml() {
    use crate::acpi::cpuhp::CpuHotplug;
    let mut m = virt(std::vec![
        cpu(0, 0, true),
        cpu(1, 1, true),
        cpu(2, 2, false)
    ]);
    m.cpu_hotplug = Some(CpuHotplug {
        block: 0x4013_f000,
        intid: 44,
    });
    let (built, area) = build_all(&m);
    let t = walk(&built, &area, BASE);
    let Some(dsl) = iasl_check(&t, "arm-cpuhp") else {
        return;
    };
    // Each processor's slot, 8 bytes apart, and its methods.
    for (i, addr) in [
        "0x000000004013F000",
        "0x000000004013F008",
        "0x000000004013F010",
    ]
    .iter()
    .enumerate()
    {
        assert!(
            dsl.contains(&std::format!(
                "OperationRegion (HPSL, SystemMemory, {addr}, 0x08)"
            )),
            "cpu {i}: {dsl}"
        );
    }
    assert_eq!(dsl.matches("Method (_EJ0, 1").count(), 3);
    assert_eq!(dsl.matches("Method (_OST, 3").count(), 3);
    // The firmware's GED: its own interrupt, one Notify per processor.
    assert!(dsl.contains("Device (HPGE)"), "{dsl}");
    assert!(dsl.contains("0x0000002C,"), "GED interrupt 44: {dsl}");
    assert!(dsl.contains("Notify (\\_SB.C002, Local0)"), "{dsl}");
    assert!(!dsl.contains("CAAA"), "a placeholder left: {dsl}");
}

/// The DSDT the firmware writes is, byte for byte, the one the
/// `acpi_tables` builders write (`acpi/oracle/arm.rs`), on every variation the
/// machine description allows.
#[test]
fn dsdt_matches_the_acpi_tables_builders() {
    use crate::acpi::memhp::{Block, MemHotplug};
    let cpus = || {
        std::vec![
            cpu(0, 0, true),
            cpu(1, 1, false),
            cpu(0x2a, 0x100, true),
            cpu(0xfff, 0x1_0000_0000, false)
        ]
    };
    let mut machines = std::vec![virt(cpus())];
    let mut m = virt(cpus());
    m.rtc = None;
    m.fw_cfg = None;
    m.ged = None;
    m.virtio_mmio.clear();
    m.pcie = None;
    machines.push(m);
    let mut m = virt(cpus());
    m.mem_hotplug = Some(MemHotplug {
        block: Block::Mmio(0x0907_0000),
        slots: 3,
    });
    m.tpm = Some((0x0c00_0000, 0x5000));
    let p = m.pcie.as_mut().unwrap();
    p.mmio64 = None;
    p.io = None;
    p.bus = (0x10, 0x1f);
    p.ecam = (0x40_1100_0000, 0x100_0000);
    p.prt.truncate(3);
    machines.push(m);
    let mut m = virt(cpus());
    m.pci_hotplug = Some(virt_pci_hotplug());
    machines.push(m);
    // Enough virtio devices for two-byte PkgLengths and beyond 4 KiB.
    let mut m = virt((0..64).map(|i| cpu(i, u64::from(i), i < 8)).collect());
    m.virtio_mmio = (0..100)
        .map(|i| (0x0a00_0000 + i * 0x200, 0x200, 48 + i as u32))
        .collect();
    machines.push(m);
    for (i, m) in machines.iter().enumerate() {
        let want = oracle::dsdt(m).unwrap();
        assert_eq!(dsdt(m).unwrap(), want, "machine {i}");
    }
    let mut bad = virt(std::vec![cpu(0x1000, 0, true)]);
    assert!(dsdt(&bad).is_err());
    bad.cpus = std::vec![cpu(0, 0, true)];
    bad.mem_hotplug = Some(MemHotplug {
        block: Block::Mmio(0x0907_0000),
        slots: 1,
    });
    bad.ged = None;
    assert!(dsdt(&bad).is_err());
}
