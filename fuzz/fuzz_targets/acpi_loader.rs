//! QEMU's table-loader script run over its files (`acpi::loader`), as
//! the microvm boot does, and what it links walked and checked as
//! adopted (`acpi::adopt`, `acpi::x86::adopt`). Input: one byte n (the
//! script is the next (n % 32) * 128 bytes), one byte m (the RSDP file is
//! the next m bytes), the script, the RSDP file, then `etc/acpi/tables`;
//! any other file the script allocates is 64 zero bytes.
#![no_main]

use hotstub::acpi::adopt;
use hotstub::acpi::byte_sum;
use hotstub::acpi::loader::{self, Blob, Placed};
use hotstub::acpi::x86::adopt as x86;
use libfuzzer_sys::fuzz_target;

const TABLES: &str = "etc/acpi/tables";
/// The firmware's areas: the BIOS area below the SMBIOS slot, and the
/// RSDP's slot.
const HIGH: (u64, u64) = (0xe_0000, 0xf_fe80);
const FSEG: (u64, u64) = (0xf_ffc0, 0x10_0000);

fuzz_target!(|data: &[u8]| {
    let [n, m, rest @ ..] = data else {
        return;
    };
    let script_len = (usize::from(*n) % 32 * 128).min(rest.len());
    let (script, rest) = rest.split_at(script_len);
    let (rsdp, tables) = rest.split_at(usize::from(*m).min(rest.len()));
    let Ok(allocs) = loader::allocations(script) else {
        return;
    };
    let mut blobs: Vec<Blob> = allocs
        .iter()
        .map(|a| Blob {
            name: a.file.clone(),
            addr: 0,
            bytes: match a.file.as_str() {
                TABLES => tables.to_vec(),
                loader::RSDP_FILE => rsdp.to_vec(),
                _ => vec![0; 64],
            },
        })
        .collect();
    let sizes: Vec<u64> = blobs.iter().map(|b| b.bytes.len() as u64).collect();
    let Ok(at) = loader::place(&allocs, &sizes, HIGH, FSEG) else {
        return;
    };
    // Placed in their zone, aligned, apart.
    for (i, (a, &addr)) in allocs.iter().zip(&at).enumerate() {
        let (start, end) = match a.zone {
            loader::Zone::High => HIGH,
            loader::Zone::FSeg => FSEG,
        };
        assert!(addr >= start && addr + sizes[i] <= end && addr % a.align == 0);
        for (j, &other) in at.iter().enumerate().take(i) {
            assert!(addr >= other + sizes[j] || other >= addr + sizes[i] || sizes[i] == 0);
        }
    }
    for (b, a) in blobs.iter_mut().zip(&at) {
        b.addr = *a;
    }
    if loader::link(script, &mut blobs).is_err() {
        return;
    }
    assert!(blobs.iter().zip(&sizes).all(|(b, &s)| b.bytes.len() as u64 == s));
    let Some(r) = blobs.iter().find(|b| b.name == loader::RSDP_FILE) else {
        return;
    };
    let Ok(a) = adopt::adopt(&Placed(&blobs), r.addr) else {
        return;
    };
    for t in &a.tables {
        assert_eq!(byte_sum(&t.bytes), 0);
    }
    let _ = x86::check(&a, 0);
});
