//! The SMBIOS entry point QEMU serves, patched with the table address
//! (`boot::smbios::patch_anchor`). Input: le64 table address, then the
//! contents of `etc/smbios/smbios-anchor`.
#![no_main]

use hotstub::boot::smbios;
use libfuzzer_sys::fuzz_target;

fn sum(b: &[u8]) -> u8 {
    b.iter().fold(0u8, |a, x| a.wrapping_add(*x))
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let addr = u64::from_le_bytes(data[..8].try_into().unwrap());
    let before = &data[8..];
    let mut a = before.to_vec();
    match smbios::patch_anchor(&mut a, addr) {
        Ok(()) => {
            assert_eq!(a.len(), before.len());
            if a.starts_with(b"_SM3_") {
                let len = usize::from(a[6]);
                assert_eq!(sum(&a[..len]), 0);
                assert_eq!(u64::from_le_bytes(a[0x10..0x18].try_into().unwrap()), addr);
            } else {
                assert!(a.starts_with(b"_SM_"));
                let len = usize::from(a[5]);
                assert_eq!(sum(&a[..len]), 0);
                assert_eq!(sum(&a[0x10..0x1f]), 0);
                assert_eq!(
                    u64::from(u32::from_le_bytes(a[0x18..0x1c].try_into().unwrap())),
                    addr
                );
            }
            // Nothing past the structure changes.
            let len = usize::from(if a.starts_with(b"_SM3_") { a[6] } else { a[5] });
            assert_eq!(a[len..], before[len..]);
        }
        Err(_) => assert_eq!(a, before, "a refused anchor is left as it was"),
    }
});
