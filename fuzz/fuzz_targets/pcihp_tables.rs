//! The root ports and bus selectors of QEMU's ACPI PCI hotplug, read from
//! QEMU's DSDT (`acpi::pcihp::from_qemu_tables`, with the root bus's own
//! bsel `with_root_bsel`; on virt also the register block and the GED
//! event, `virt_from_qemu_tables`), and our AML for them: q35's ports and
//! pc's slots (every slot hotpluggable, the most AML).
//! Input: the contents of `etc/acpi/tables`.
#![no_main]

use hotstub::acpi::pcihp::{self, PciHotplug, SlotBus};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(h)) = pcihp::virt_from_qemu_tables(data) {
        assert!(matches!(h.block, pcihp::Block::Mmio(b) if b % 4 == 0));
        pcihp::pci0_objects(&h).expect("valid ports have AML");
    }
    let Ok((root, ports)) = pcihp::with_root_bsel(data) else {
        return;
    };
    assert!(root.is_none_or(|b| b <= 255));
    let buses = root
        .map(|bsel| SlotBus {
            adr: None,
            bsel,
            slots: !0,
        })
        .into_iter()
        .chain(ports.iter().map(|p| SlotBus {
            adr: Some(p.adr),
            bsel: p.bsel,
            slots: !0,
        }))
        .collect();
    let pc = pcihp::pci0_objects(&PciHotplug::pc(0xae00, buses)).expect("valid buses have AML");
    assert!(!pc.is_empty());
    for w in ports.windows(2) {
        assert!(w[0].adr < w[1].adr, "sorted by _ADR, no duplicates");
    }
    for (i, p) in ports.iter().enumerate() {
        assert!(p.bsel <= 255);
        assert!(p.adr >> 16 <= 31 && p.adr & 0xffff <= 7);
        assert!(ports[i + 1..].iter().all(|q| q.bsel != p.bsel));
    }
    let aml = pcihp::pci0_objects(&PciHotplug::q35(ports)).expect("valid ports have AML");
    assert!(!aml.is_empty());
});
