//! A VMM's own ACPI tables, adopted (`acpi::adopt`, cloud-hypervisor's on
//! x86 and arm64). Input: le16 offset of the RSDP in the image, then the
//! memory image, placed at 0xa0000 (where CH puts its x86 tables). What
//! the walker adopts also goes through the x86 checks.
#![no_main]

use hotstub::acpi::adopt::{self, Slice};
use hotstub::acpi::byte_sum;
use hotstub::acpi::x86::adopt as x86;
use libfuzzer_sys::fuzz_target;

const BASE: u64 = 0xa_0000;

fuzz_target!(|data: &[u8]| {
    let [lo, hi, image @ ..] = data else {
        return;
    };
    let rsdp = BASE + u64::from(u16::from_le_bytes([*lo, *hi]));
    let mem = Slice {
        base: BASE,
        bytes: image,
    };
    let Ok(a) = adopt::adopt(&mem, rsdp) else {
        return;
    };
    // What was adopted is in the image, whole and checksummed.
    for t in &a.tables {
        assert!(t.bytes.len() >= adopt::HEADER_LEN);
        assert_eq!(byte_sum(&t.bytes), 0);
        let off = (t.addr - BASE) as usize;
        assert_eq!(&image[off..off + t.bytes.len()], &t.bytes[..]);
    }
    if let Ok(c) = x86::check(&a, 0) {
        assert!(c.cpus.iter().any(|v| v.enabled && v.hw_id == 0));
        assert!(c.sleep_control.address != 0);
    }
});
