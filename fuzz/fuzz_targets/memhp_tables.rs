//! QEMU's memory hotplug interface as its own ACPI tables describe it
//! (`acpi::memhp::from_qemu_tables`), and our AML for what was found.
//! Input: the contents of `etc/acpi/tables`.
#![no_main]

use hotstub::acpi::memhp::{self, Block, MAX_SLOTS};
use libfuzzer_sys::fuzz_target;

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fuzz_target!(|data: &[u8]| {
    match memhp::from_qemu_tables(data) {
        Ok(Some(m)) => {
            assert!(m.slots >= 1 && m.slots <= MAX_SLOTS);
            assert!(matches!(m.block, Block::Mmio(_)));
            assert!(contains(data, b"\x08MDNR") && contains(data, b"\x5b\x80HPMR"));
            let aml = memhp::container(&m).expect("a found interface has AML");
            assert!(!aml.is_empty());
        }
        Ok(None) | Err(_) => {}
    }
});
