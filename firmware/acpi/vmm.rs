//! Tables taken over from the VMM. QEMU describes some of its
//! configuration only in the ACPI tables it offers over fw_cfg
//! (`etc/acpi/tables`): NUMA proximity and distances (`-numa`), memory
//! attributes (`-numa hmat-lb/hmat-cache`), the CPU topology on arm
//! (`-smp sockets,clusters,cores,threads`) and the IOMMUs (intel-iommu,
//! `iommu=smmuv3`, virtio-iommu). Those tables stand alone (they name
//! processors by the same APIC IDs and UIDs as the firmware's MADT, and
//! devices by PCI segment and bus), so the firmware checks them and lists
//! them in its own XSDT rather than re-deriving facts it cannot see.

/// The fw_cfg file with QEMU's tables, and the most of it the firmware
/// reads (QEMU's tables for its largest machines are well below this).
pub const QEMU_TABLES: &str = "etc/acpi/tables";
pub const QEMU_TABLES_MAX: u32 = 256 << 10;

/// What is taken over on q35: NUMA (SRAT, SLIT, HMAT) and the IOMMUs (DMAR
/// for intel-iommu, VIOT for virtio-iommu).
pub const Q35: &[[u8; 4]] = &[*b"SRAT", *b"SLIT", *b"HMAT", *b"DMAR", *b"VIOT"];
/// On virt: NUMA, the CPU topology (PPTT) and the IOMMUs (IORT with the
/// SMMUv3, VIOT).
pub const VIRT: &[[u8; 4]] = &[*b"SRAT", *b"SLIT", *b"HMAT", *b"PPTT", *b"IORT", *b"VIOT"];

/// A table found in the VMM's blob: signature, revision and bytes.
pub struct Found<'a> {
    pub signature: [u8; 4],
    pub bytes: &'a [u8],
}

/// Every table in `blob` (QEMU lays its tables out back to back, with
/// alignment padding) whose signature is in `wanted`, each checked: a
/// header that fits, a length that fits the blob and a zero checksum. A
/// signature seen twice keeps its first table.
pub fn find<'a>(blob: &'a [u8], wanted: &[[u8; 4]]) -> alloc::vec::Vec<Found<'a>> {
    let mut out: alloc::vec::Vec<Found<'a>> = alloc::vec::Vec::new();
    let mut i = 0;
    while i + 36 <= blob.len() {
        let sig: [u8; 4] = [blob[i], blob[i + 1], blob[i + 2], blob[i + 3]];
        let len = u32::from_le_bytes([blob[i + 4], blob[i + 5], blob[i + 6], blob[i + 7]]) as usize;
        let fits = len >= 36 && len <= blob.len() - i;
        if wanted.contains(&sig) && fits && !out.iter().any(|f| f.signature == sig) {
            let t = &blob[i..i + len];
            if super::byte_sum(t) == 0 {
                out.push(Found {
                    signature: sig,
                    bytes: t,
                });
                i += len;
                continue;
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn table(sig: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut t = sig.to_vec();
        t.extend_from_slice(&((36 + body.len()) as u32).to_le_bytes());
        t.extend_from_slice(&[1, 0]);
        t.extend_from_slice(&[0u8; 26]);
        t.extend_from_slice(body);
        let sum = t.iter().fold(0u8, |a, b| a.wrapping_add(*b));
        t[9] = 0u8.wrapping_sub(sum);
        t
    }

    #[test]
    fn finds_checked_tables_among_others() {
        let mut blob = table(b"FACP", &[1, 2, 3]);
        blob.extend_from_slice(&[0; 5]);
        blob.extend(table(b"SRAT", &[9; 40]));
        blob.extend(table(b"SLIT", &[8, 0, 0, 0, 0, 0, 0, 0, 10]));
        let found = find(&blob, &[*b"SRAT", *b"SLIT", *b"PPTT"]);
        let sigs: Vec<[u8; 4]> = found.iter().map(|f| f.signature).collect();
        assert_eq!(sigs, [*b"SRAT", *b"SLIT"]);
        assert_eq!(found[0].bytes.len(), 76);
    }

    #[test]
    fn rejects_bad_checksums_lengths_and_truncation() {
        let mut bad = table(b"SRAT", &[1; 8]);
        bad[9] ^= 1;
        assert!(find(&bad, &[*b"SRAT"]).is_empty(), "checksum");
        let mut long = table(b"SRAT", &[1; 8]);
        long[4] = 200;
        assert!(find(&long, &[*b"SRAT"]).is_empty(), "length past the blob");
        let t = table(b"SRAT", &[1; 8]);
        assert!(find(&t[..40], &[*b"SRAT"]).is_empty(), "truncated");
        assert!(
            find(b"SRAT", &[*b"SRAT"]).is_empty(),
            "shorter than a header"
        );
        // A second SRAT is ignored.
        let mut two = table(b"SRAT", &[1; 8]);
        two.extend(table(b"SRAT", &[2; 8]));
        assert_eq!(find(&two, &[*b"SRAT"]).len(), 1);
    }
}
