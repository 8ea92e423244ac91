//! QEMU's SMBIOS as the firmware hands it on: the structures with the
//! firmware's type 0 merged in (`boot::smbios::with_firmware`), then the
//! entry point patched to describe them (`patch_anchor`). Input: le64 table
//! address, one byte n, n bytes of `etc/smbios/smbios-anchor`, then the
//! contents of `etc/smbios/smbios-tables`.
#![no_main]

use hotstub::boot::smbios::{self, Firmware};
use libfuzzer_sys::fuzz_target;

fn sum(b: &[u8]) -> u8 {
    b.iter().fold(0u8, |a, x| a.wrapping_add(*x))
}

const FW: Firmware = Firmware {
    vendor: "Hotstub",
    version: "0.1.0",
    date: "12/07/2026",
    release: (0, 1),
};

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let addr = u64::from_le_bytes(data[..8].try_into().unwrap());
    let n = usize::from(data[8]).min(data.len() - 9);
    let (before, tables) = data[9..].split_at(n);
    let Ok(table) = smbios::with_firmware(tables, &FW) else {
        return;
    };
    // What comes out is well-formed, and merging again changes nothing.
    let again = smbios::with_firmware(&table.bytes, &FW).expect("the merge's output parses");
    assert_eq!(again, table);
    assert!(table.max_structure <= table.bytes.len());
    let mut a = before.to_vec();
    match smbios::patch_anchor(&mut a, addr, &table) {
        Ok(()) => {
            assert_eq!(a.len(), before.len());
            if a.starts_with(b"_SM3_") {
                let len = usize::from(a[6]);
                assert_eq!(sum(&a[..len]), 0);
                assert_eq!(u64::from_le_bytes(a[0x10..0x18].try_into().unwrap()), addr);
                let size = u32::from_le_bytes(a[0x0c..0x10].try_into().unwrap());
                assert_eq!(size as usize, table.bytes.len());
            } else {
                assert!(a.starts_with(b"_SM_"));
                let len = usize::from(a[5]);
                assert_eq!(sum(&a[..len]), 0);
                assert_eq!(sum(&a[0x10..0x1f]), 0);
                assert_eq!(
                    u64::from(u32::from_le_bytes(a[0x18..0x1c].try_into().unwrap())),
                    addr
                );
                let size = u16::from_le_bytes(a[0x16..0x18].try_into().unwrap());
                assert_eq!(usize::from(size), table.bytes.len());
            }
            // Nothing past the structure changes.
            let len = usize::from(if a.starts_with(b"_SM3_") { a[6] } else { a[5] });
            assert_eq!(a[len..], before[len..]);
        }
        Err(_) => assert_eq!(a, before, "a refused anchor is left as it was"),
    }
});
