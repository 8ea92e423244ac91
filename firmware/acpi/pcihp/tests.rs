extern crate std;

use super::*;
use crate::acpi::{table, to_bytes};
use acpi_tables::aml;
use acpi_tables::Aml;
use std::vec;
use std::vec::Vec;

struct Raw(Vec<u8>);
impl Aml for Raw {
    fn to_aml_bytes(&self, sink: &mut dyn acpi_tables::AmlSink) {
        sink.vec(&self.0);
    }
}

fn name(n: &str, v: u32) -> Vec<u8> {
    to_bytes(&aml::Name::new(n.into(), &v))
}

fn device(n: &str, children: &[Vec<u8>]) -> Vec<u8> {
    let raw = Raw(children.concat());
    to_bytes(&aml::Device::new(n.into(), vec![&raw]))
}

fn scope(n: &str, children: &[Vec<u8>]) -> Vec<u8> {
    aml::Scope::raw(n.into(), children.concat())
}

/// A slot as QEMU writes one: `_SUN`, `_EJ0` calling PCEJ (BSEL, _SUN).
fn slot(n: &str, sun: u32) -> Vec<u8> {
    let [pcej, bsel, sun_] = ["PCEJ", "BSEL", "_SUN"].map(aml::Path::new);
    let call = aml::MethodCall::new(pcej, vec![&bsel, &sun_]);
    let ej0 = to_bytes(&aml::Method::new("_EJ0".into(), 1, false, vec![&call]));
    device(n, &[name("_ADR", sun << 16), name("_SUN", sun), ej0])
}

/// A DSDT laid out like QEMU 10.0's for q35 (hw/i386/acpi-build.c): the
/// host bridge with its `_OSC`, then the root bus devices in a second
/// `Scope (\_SB) { Scope (PCI0) { .. } }`, with
/// - S18: root port with a device plugged at boot (its S00 comes before
///   BSEL, the slot's methods in a `Scope (S00)`), bsel 3;
/// - S20: root port holding a PCI bridge whose own bus (bsel 2) is
///   nested in it, bsel 1;
/// - S28: root port with hotplug off (no BSEL);
/// - S31: root port at device 6 function 1, bsel 0;
///
/// then the PCNT methods, and an extra host bridge PC12 whose port has
/// bsel 4; all between a FACS before and another table after, padded the
/// way QEMU pads its blob.
fn qemu_like_blob() -> Vec<u8> {
    let osc = crate::acpi::pci_osc(false).to_vec();
    let pci0 = device(
        "PCI0",
        &[
            to_bytes(&aml::Name::new(
                "_HID".into(),
                &aml::EISAName::new("PNP0A08"),
            )),
            name("_UID", 0),
            osc,
        ],
    );
    let dvnt = {
        let s00 = aml::Path::new("S00_");
        let n = aml::Notify::new(&s00, &aml::Arg(1));
        let c = aml::And::new(&aml::ZERO, &aml::Arg(0), &aml::ONE);
        let i = aml::If::new(&c, vec![&n]);
        to_bytes(&aml::Method::new("DVNT".into(), 2, false, vec![&i]))
    };
    let s18 = device(
        "S18_",
        &[
            name("_ADR", 0x0003_0000),
            device("S00_", &[name("_ADR", 0)]),
            name("BSEL", 3),
            scope("S00_", &[name("_SUN", 0)]),
            dvnt.clone(),
        ],
    );
    let bridge = device(
        "S00_",
        &[
            name("_ADR", 0),
            device("S18_", &[name("_ADR", 0x0003_0000)]),
            name("BSEL", 2),
            slot("S08_", 1),
            slot("S10_", 2),
        ],
    );
    let s20 = device(
        "S20_",
        &[
            name("_ADR", 0x0004_0000),
            bridge,
            name("BSEL", 1),
            dvnt.clone(),
        ],
    );
    let s28 = device("S28_", &[name("_ADR", 0x0005_0000)]);
    let s31 = device(
        "S31_",
        &[
            name("_ADR", 0x0006_0001),
            name("BSEL", 0),
            slot("S00_", 0),
            dvnt,
        ],
    );
    let bus = scope(
        "\\_SB_",
        &[scope(
            "PCI0",
            &[device("S00_", &[name("_ADR", 0)]), s18, s20, s28, s31],
        )],
    );
    let pcnt = {
        // ^S31_.PCNT (): ParentPrefixChar, DualNamePrefix.
        let c = Raw(b"\x5e\x2eS31_PCNT".to_vec());
        scope(
            "\\_SB_.PCI0",
            &[to_bytes(&aml::Method::new(
                "PCNT".into(),
                0,
                false,
                vec![&c],
            ))],
        )
    };
    let pxb = scope(
        "\\_SB_",
        &[device(
            "PC12",
            &[
                name("_UID", 0x12),
                device("S00_", &[name("_ADR", 0), name("BSEL", 4)]),
            ],
        )],
    );
    let dsdt = table(
        *b"DSDT",
        1,
        &[scope("\\_SB_", &[pci0]), bus, pcnt, pxb].concat(),
    );
    let mut blob = b"FACS\x40\x00\x00\x00".to_vec();
    blob.resize(64, 0);
    blob.extend_from_slice(&dsdt);
    blob.extend_from_slice(&table(*b"APIC", 6, &[0u8; 44]));
    blob.resize(128 << 10, 0);
    blob
}

#[test]
fn root_ports_from_a_qemu_like_dsdt() {
    let ports = from_qemu_tables(&qemu_like_blob()).unwrap();
    assert_eq!(
        ports,
        [
            RootPort {
                adr: 0x0003_0000,
                bsel: 3
            },
            RootPort {
                adr: 0x0004_0000,
                bsel: 1
            },
            RootPort {
                adr: 0x0006_0001,
                bsel: 0
            },
        ]
    );
}

#[test]
fn tables_without_hotplug_ports() {
    let dsdt = table(
        *b"DSDT",
        1,
        &scope("\\_SB_", &[device("PCI0", &[name("_UID", 0)])]),
    );
    assert_eq!(from_qemu_tables(&dsdt), Ok(vec![]));
}

/// A DSDT holding `objects` under `\_SB.PCI0`'s bus scope.
fn dsdt_with(objects: &[Vec<u8>]) -> Vec<u8> {
    table(*b"DSDT", 1, &scope("\\_SB_", &[scope("PCI0", objects)]))
}

#[test]
fn malformed_tables_are_errors() {
    let err = |b: &[u8]| from_qemu_tables(b).unwrap_err();
    assert_eq!(err(b"no tables at all"), "QEMU's ACPI tables have no DSDT");
    // A DSDT header whose length runs past the blob.
    let mut cut = qemu_like_blob();
    let at = cut.windows(4).position(|w| w == b"DSDT").unwrap();
    cut.truncate(at + 100);
    assert_eq!(err(&cut), "QEMU's ACPI tables have no DSDT");
    // BSEL that is not an integer (a string).
    let bad = to_bytes(&aml::Name::new("BSEL".into(), &"x"));
    let d = dsdt_with(&[device("S10_", &[name("_ADR", 0x0002_0000), bad])]);
    assert!(err(&d).contains("not an integer"));
    // BSEL in no device: the root bus's (virt), no port.
    assert_eq!(from_qemu_tables(&dsdt_with(&[name("BSEL", 1)])), Ok(vec![]));
    // A port whose first object is not _ADR.
    let d = dsdt_with(&[device("S10_", &[name("_UID", 1), name("BSEL", 1)])]);
    assert!(err(&d).contains("no _ADR"));
    // Out of range values.
    let d = dsdt_with(&[device(
        "S10_",
        &[name("_ADR", 0x0002_0000), name("BSEL", 256)],
    )]);
    assert!(err(&d).contains("above 255"));
    for adr in [0x0020_0000, 0x0002_0008] {
        let d = dsdt_with(&[device("S10_", &[name("_ADR", adr), name("BSEL", 1)])]);
        assert!(err(&d).contains("not a PCI device"), "{adr:#x}");
    }
    // Two ports claiming one bus selector.
    let d = dsdt_with(&[
        device("S10_", &[name("_ADR", 0x0002_0000), name("BSEL", 1)]),
        device("S18_", &[name("_ADR", 0x0003_0000), name("BSEL", 1)]),
    ]);
    assert!(err(&d).contains("same _ADR or BSEL"));
}

/// Whatever the bytes, the parser answers and never panics: every cut of
/// the DSDT, and every byte of it overwritten with the values that matter
/// to the parser.
#[test]
fn damaged_tables_never_panic() {
    let blob = qemu_like_blob();
    let at = blob.windows(4).position(|w| w == b"DSDT").unwrap();
    let len = u32::from_le_bytes(blob[at + 4..at + 8].try_into().unwrap()) as usize;
    let dsdt = &blob[at..at + len];
    for n in 0..dsdt.len() {
        let _ = from_qemu_tables(&dsdt[..n]);
    }
    for i in 0..dsdt.len() {
        for v in [0x00, 0x08, 0x0c, 0x0e, 0x5b, 0x82, 0x7f, 0xc0, 0xff] {
            let mut d = dsdt.to_vec();
            d[i] = v;
            let _ = from_qemu_tables(&d);
        }
    }
}

#[test]
fn probe_tells_block_from_nothing() {
    assert_eq!(probe(0), Ok(true));
    assert_eq!(probe(u32::MAX), Ok(false));
    assert!(probe(0x1234).is_err());
}

#[test]
fn port_objects() {
    let h = PciHotplug {
        block: crate::acpi::memhp::Block::Io(super::BASE),
        buses: Vec::new(),
        ports: vec![
            RootPort {
                adr: 0x0003_0000,
                bsel: 1,
            },
            RootPort {
                adr: 0x001e_0007,
                bsel: 0x12,
            },
        ],
    };
    let o = pci0_objects(&h).unwrap();
    // OperationRegion (PCST, SystemIO, 0x0cc0, 0x18), then the constant part.
    let region = b"\x5b\x80PCST\x01\x0b\xc0\x0c\x0a\x18";
    assert!(o.starts_with(region));
    assert!(o[region.len()..].starts_with(PCI0));
    assert_eq!(
        o.windows(PORT_TAIL.len())
            .filter(|w| *w == PORT_TAIL)
            .count(),
        2
    );
    // Names from devfn: 3 << 3 = 0x18; 0x1e << 3 | 7 = 0xf7.
    for want in [
        &b"S18_"[..],
        b"SF7_",
        b"\x5e\x2eS18_PCNT",
        b"\x5e\x2eSF7_PCNT",
    ] {
        assert!(o.windows(want.len()).any(|w| w == want), "{want:?}");
    }
    // _ADR and BSEL as integers in their shortest form (ACPI 6.5 20.2.3).
    assert!(o.windows(10).any(|w| w == b"\x08_ADR\x0c\x00\x00\x03\x00"));
    assert!(o.windows(7).any(|w| w == b"\x08BSEL\x0a\x12"));
    let bad = PciHotplug {
        block: crate::acpi::memhp::Block::Io(super::BASE),
        buses: Vec::new(),
        ports: vec![RootPort {
            adr: 0x0020_0000,
            bsel: 0,
        }],
    };
    assert!(pci0_objects(&bad).is_err());
}

/// QEMU 11's virt DSDT, the parts `virt_from_qemu_tables` reads
/// (hw/arm/virt-acpi-build.c, hw/acpi/pcihp.c, generic_event_device.c):
/// the GED's `_EVT` dispatching event `bit` to PCNT under BLCK, the root
/// bus's own BSEL and a root port in `Scope (\_SB.PCI0)`, and the region
/// PCST at `base`.
fn virt_blob(base: u32, bit: u32) -> Vec<u8> {
    let local0 = aml::Local(0);
    let and = aml::And::new(&aml::ZERO, &local0, &bit);
    let lock = aml::Path::new("\\_SB_.PCI0.BLCK");
    let acq = aml::Acquire::new(lock, 0xffff);
    let pcnt = aml::MethodCall::new("\\_SB_.PCI0.PCNT".into(), vec![]);
    let rel = aml::Release::new(aml::Path::new("\\_SB_.PCI0.BLCK"));
    let eq = aml::Equal::new(&and, &bit);
    let iff = aml::If::new(&eq, vec![&acq, &pcnt, &rel]);
    let evt = to_bytes(&aml::Method::new("_EVT".into(), 1, true, vec![&iff]));
    let ged = device("GED_", &[name("_UID", 0), evt]);
    let region = to_bytes(&aml::OpRegion::new(
        "PCST".into(),
        aml::OpRegionSpace::SystemMemory,
        &base,
        &8u8,
    ));
    let port = device("S08_", &[name("_ADR", 0x0001_0000), name("BSEL", 1)]);
    let pci0 = scope("PCI0", &[port, name("BSEL", 0), region]);
    table(*b"DSDT", 2, &scope("\\_SB_", &[ged, pci0]))
}

#[test]
fn virt_block_event_and_ports() {
    let h = virt_from_qemu_tables(&virt_blob(0x090d_0000, 0x10))
        .unwrap()
        .unwrap();
    assert_eq!(h.block, Block::Mmio(0x090d_0000));
    assert_eq!(
        h.ports,
        vec![RootPort {
            adr: 0x0001_0000,
            bsel: 1
        }]
    );
    // Without the region (the option off): native hotplug.
    assert_eq!(virt_from_qemu_tables(&dsdt_with(&[])), Ok(None));
    // Another event bit, or a block that is not dword aligned.
    assert!(virt_from_qemu_tables(&virt_blob(0x090d_0000, 0x20)).is_err());
    assert!(virt_from_qemu_tables(&virt_blob(0x090d_0002, 0x10)).is_err());
}

/// pc's layout (hw/acpi/pcihp.c build_append_pci_bus_devices as the
/// SeaBIOS boot shows it): the root bus's BSEL in `Scope (\_SB.PCI0)`,
/// a pci-bridge at 00:04.0 with bsel 1.
#[test]
fn pc_root_bsel_and_bridge() {
    let bridge = device("S20_", &[name("_ADR", 0x0004_0000), name("BSEL", 1)]);
    let d = dsdt_with(&[bridge, name("BSEL", 0)]);
    assert_eq!(
        with_root_bsel(&d),
        Ok((
            Some(0),
            vec![RootPort {
                adr: 0x0004_0000,
                bsel: 1
            }]
        ))
    );
    // No root BSEL (root-bus hotplug off): only the bridge.
    let bridge = device("S20_", &[name("_ADR", 0x0004_0000), name("BSEL", 0)]);
    assert_eq!(with_root_bsel(&dsdt_with(&[bridge])).unwrap().0, None);
    assert!(with_root_bsel(&dsdt_with(&[name("BSEL", 256)])).is_err());
}

/// pc's objects: slot devices for the hotpluggable slots only (never the
/// bridge's own slot), DVNT per bus, PCNT of the bridge and of the root,
/// which calls the bridge's.
#[test]
fn pc_slot_objects() {
    let h = PciHotplug::pc(
        0xae00,
        vec![
            SlotBus {
                adr: None,
                bsel: 0,
                // Slots 3, 4 (the bridge's) and 31.
                slots: 1 << 3 | 1 << 4 | 1 << 31,
            },
            SlotBus {
                adr: Some(0x0004_0000),
                bsel: 1,
                slots: 0b11,
            },
        ],
    );
    let o = pci0_objects(&h).unwrap();
    let has = |s: &[u8]| o.windows(s.len()).any(|w| w == s);
    assert!(has(b"S18_"), "root slot 3");
    assert!(has(b"SF8_"), "root slot 31");
    assert!(has(b"S20_"), "the bridge");
    // The bridge's slots 0 and 1 and nothing else of it.
    assert!(has(b"S00_") && has(b"S08_"));
    assert!(!has(b"S10_"));
    // The root's PCNT calls the bridge's.
    assert!(has(b"\x5e\x2eS20_PCNT"));
    // Slot 4 is the bridge's device, not a second `Device (S20_)`.
    assert_eq!(o.windows(4).filter(|w| w == b"S20_").count(), 2);
    let bad = PciHotplug::pc(
        0xae00,
        vec![SlotBus {
            adr: Some(0x0020_0000),
            bsel: 1,
            slots: 1,
        }],
    );
    assert!(pci0_objects(&bad).is_err());
}
