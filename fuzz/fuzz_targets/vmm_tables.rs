//! The tables taken over from the VMM (`acpi::vmm::find`), located by
//! QEMU's table-loader script. Input: one byte n (the loader is the next
//! (n % 16) * 128 bytes), one byte choosing the q35 or virt list, the
//! loader, then the contents of `etc/acpi/tables`.
#![no_main]

use hotstub::acpi::{byte_sum, vmm};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [n, which, rest @ ..] = data else {
        return;
    };
    let loader_len = (usize::from(*n) % 16 * 128).min(rest.len());
    let (loader, blob) = rest.split_at(loader_len);
    let wanted = if which & 1 == 0 { vmm::Q35 } else { vmm::VIRT };
    let found = vmm::find(blob, loader, wanted);
    assert!(found.len() <= wanted.len() && found.len() <= loader.len() / 128);
    for (i, f) in found.iter().enumerate() {
        assert!(wanted.contains(&f.signature));
        assert!(found[..i].iter().all(|g| g.signature != f.signature));
        assert!(f.bytes.len() >= 36);
        assert_eq!(&f.bytes[..4], &f.signature);
        let len = u32::from_le_bytes(f.bytes[4..8].try_into().unwrap()) as usize;
        assert_eq!(len, f.bytes.len());
        assert_eq!(byte_sum(&f.bytes), 0, "checksum made valid");
        // The table is the blob's bytes but for the checksum.
        let mut t = f.bytes.clone();
        t[9] = 0;
        assert!(blob
            .windows(t.len())
            .any(|w| { w[..9] == t[..9] && w[10..] == t[10..] }));
    }
});
