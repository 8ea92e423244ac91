//! The root ports and bus selectors of QEMU's ACPI PCI hotplug, read from
//! QEMU's DSDT (`acpi::pcihp::from_qemu_tables`; on virt also the register
//! block and the GED event, `virt_from_qemu_tables`), and our AML for them.
//! Input: the contents of `etc/acpi/tables`.
#![no_main]

use hotstub::acpi::pcihp::{self, PciHotplug};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(h)) = pcihp::virt_from_qemu_tables(data) {
        assert!(matches!(h.block, pcihp::Block::Mmio(b) if b % 4 == 0));
        pcihp::pci0_objects(&h).expect("valid ports have AML");
    }
    let Ok(ports) = pcihp::from_qemu_tables(data) else {
        return;
    };
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
