//! Tables taken over from the VMM. QEMU describes some of its
//! configuration only in the ACPI tables it offers over fw_cfg
//! (`etc/acpi/tables`): NUMA proximity and distances (`-numa`), memory
//! attributes (`-numa hmat-lb/hmat-cache`), the CPU topology on arm
//! (`-smp sockets,clusters,cores,threads`) and the IOMMUs (intel-iommu,
//! `iommu=smmuv3`, virtio-iommu). Those tables stand alone (they name
//! processors by the same APIC IDs and UIDs as the firmware's MADT, and
//! devices by PCI segment and bus), so the firmware checks them and lists
//! them in its own XSDT rather than re-deriving facts it cannot see.

use crate::platform::cpus::CpuModel;
use alloc::vec::Vec;

/// The fw_cfg file with QEMU's tables, and the most of it the firmware
/// reads: QEMU pads its x86 tables to 128 KiB steps (hw/i386/acpi-build.c
/// ACPI_BUILD_TABLE_SIZE); its largest machines stay well below this.
pub const QEMU_TABLES: &str = crate::platform::fw_cfg::file::ACPI_TABLES;
pub const QEMU_TABLES_MAX: u32 = 1 << 20;

/// What is taken over on q35: NUMA (SRAT, SLIT, HMAT) and the IOMMUs (DMAR
/// for intel-iommu, VIOT for virtio-iommu).
pub const Q35: &[[u8; 4]] = &[*b"SRAT", *b"SLIT", *b"HMAT", *b"DMAR", *b"VIOT", *b"TPM2"];
/// On virt: NUMA, the CPU topology (PPTT) and the IOMMUs (IORT with the
/// SMMUv3, VIOT).
pub const VIRT: &[[u8; 4]] = &[
    *b"SRAT", *b"SLIT", *b"HMAT", *b"PPTT", *b"IORT", *b"VIOT", *b"TPM2",
];

/// QEMU's table-loader script (hw/acpi/bios-linker-loader.c): 128-byte
/// little-endian commands; ADD_CHECKSUM (3) names a file, the checksum's
/// offset and the range it covers, which for QEMU is exactly one table.
pub const QEMU_LOADER: &str = crate::platform::fw_cfg::file::TABLE_LOADER;
const LOADER_ENTRY: usize = 128;
const ADD_CHECKSUM: u32 = 3;
const FILE_NAME: usize = 56;

/// A table taken from the VMM's blob, its checksum made valid: QEMU leaves
/// checksums for the firmware to compute (the loader's ADD_CHECKSUM).
pub struct Found {
    pub signature: [u8; 4],
    pub bytes: Vec<u8>,
}

/// The ranges (start, end) in `blob` (the contents of [`QEMU_TABLES`])
/// that the checksum commands of `loader` cover and that lie in `blob`:
/// one table each, header to end, as QEMU writes them.
fn checksummed<'a>(blob: &'a [u8], loader: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    loader.chunks_exact(LOADER_ENTRY).filter_map(move |e| {
        let word = |o: usize| u32::from_le_bytes([e[o], e[o + 1], e[o + 2], e[o + 3]]) as usize;
        if word(0) as u32 != ADD_CHECKSUM || !names(&e[4..4 + FILE_NAME], QEMU_TABLES) {
            return None;
        }
        let at = 4 + FILE_NAME;
        let (sum, start, len) = (word(at), word(at + 4), word(at + 8));
        let t = start
            .checked_add(len)
            .and_then(|end| blob.get(start..end))?;
        (len >= 36 && start.checked_add(9) == Some(sum)).then_some(t)
    })
}

/// QEMU's DSDT in `blob`, located through the loader's checksum commands:
/// the hotplug interfaces (`memhp`, `pcihp`) are read from its names, and
/// a search of it alone skips the other tables (the MADT and PPTT grow
/// with the vCPUs: 64 of them made the searches 64,000 guest
/// instructions).
pub fn dsdt<'a>(blob: &'a [u8], loader: &'a [u8]) -> Option<&'a [u8]> {
    checksummed(blob, loader).find(|t| t.starts_with(b"DSDT"))
}

/// Where the tables the loader's checksum commands name end in
/// [`QEMU_TABLES`], read from `loader` alone: how much of that file to
/// read. QEMU pads its tables with zeros to 128 KiB (ACPI_BUILD_TABLE_SIZE,
/// on virt and q35 alike), which cost the arm64 boot a 128 KiB buffer to
/// clear. None when they name none.
pub fn loader_end(loader: &[u8]) -> Option<usize> {
    loader
        .chunks_exact(LOADER_ENTRY)
        .filter(|e| {
            u32::from_le_bytes([e[0], e[1], e[2], e[3]]) == ADD_CHECKSUM
                && names(&e[4..4 + FILE_NAME], QEMU_TABLES)
        })
        .filter_map(|e| {
            let word = |o: usize| u32::from_le_bytes([e[o], e[o + 1], e[o + 2], e[o + 3]]) as usize;
            let at = 4 + FILE_NAME;
            word(at + 4).checked_add(word(at + 8))
        })
        .max()
}

/// How much of `blob` holds tables: the end of the last table the loader's
/// checksum commands cover, or all of it when they cover none. QEMU pads
/// its tables with zeros to 128 KiB (ACPI_BUILD_TABLE_SIZE, on virt and
/// q35 alike), and a scan of the padding cost the arm64 boot 5 ms under
/// TCG, most of its time.
pub fn extent(blob: &[u8], loader: &[u8]) -> usize {
    let base = blob.as_ptr() as usize;
    checksummed(blob, loader)
        .map(|t| t.as_ptr() as usize - base + t.len())
        .max()
        .unwrap_or(blob.len())
}

/// The tables in `blob` (the contents of [`QEMU_TABLES`]) whose signature
/// is in `wanted`, located through the checksum commands of `loader`. A
/// command whose range does not hold exactly one table header-to-end is
/// skipped; a signature seen twice keeps its first table.
pub fn find(blob: &[u8], loader: &[u8], wanted: &[[u8; 4]]) -> Vec<Found> {
    let mut out: Vec<Found> = Vec::new();
    for t in checksummed(blob, loader) {
        let sig = [t[0], t[1], t[2], t[3]];
        let header_len = u32::from_le_bytes([t[4], t[5], t[6], t[7]]) as usize;
        if header_len != t.len() || !wanted.contains(&sig) || out.iter().any(|f| f.signature == sig)
        {
            continue;
        }
        let mut bytes = t.to_vec();
        bytes[9] = 0;
        bytes[9] = 0u8.wrapping_sub(super::byte_sum(&bytes));
        out.push(Found {
            signature: sig,
            bytes,
        });
    }
    out
}

/// The tables of `wanted` taken over from QEMU's `blob` and `loader`, each
/// checked against the CPU model (a table naming other processors is left
/// out, with a warning), the TPM2 table pointing at the firmware's event
/// log `tpm_log` (address, length) or at none.
pub fn take_over(
    blob: &[u8],
    loader: &[u8],
    wanted: &[[u8; 4]],
    cpus: &CpuModel,
    tpm_log: Option<(u64, u32)>,
) -> Vec<Vec<u8>> {
    let hw: Vec<u64> = cpus.iter().map(|c| c.hw_id).collect();
    let uids: Vec<u32> = cpus.iter().map(|c| c.uid).collect();
    let mut out = Vec::new();
    for f in find(blob, loader, wanted) {
        let mut t = f.bytes;
        if !consistent(&t, &hw, &uids) {
            crate::println!(
                "hotstub: warning: QEMU's {} names processors the firmware does not describe; left out",
                core::str::from_utf8(&f.signature).unwrap_or("table")
            );
            continue;
        }
        if t.starts_with(b"TPM2") {
            set_tpm_log(&mut t, tpm_log);
        }
        out.push(t);
    }
    out
}

/// Classifies one table entry: Some(known) for a processor, None else.
type EntryCheck = fn(&[u8], &[u64], &[u32]) -> Option<bool>;

/// Whether a taken-over table names only processors Hotstub describes:
/// the SRAT's processor affinities (ACPI 6.5 5.2.16: type 0 xAPIC by APIC
/// ID at byte 3, type 2 x2APIC by ID at 8, type 3 GICC by ACPI processor
/// UID at 6) and the PPTT's leaf processors (5.2.30.1: type 0, flags at 4
/// with bit 1 "ACPI processor ID valid" and bit 3 "leaf", ID at 12) must
/// be among the MADT's `hw_ids` (APIC IDs or MPIDRs) or `uids`. Other
/// tables name no processors. A table that fails is not taken over.
pub fn consistent(t: &[u8], hw_ids: &[u64], uids: &[u32]) -> bool {
    let (first, ids): (usize, EntryCheck) = match t.get(0..4) {
        Some(b"SRAT") => (48, srat_entry),
        Some(b"PPTT") => (36, pptt_entry),
        _ => return true,
    };
    let mut o = first;
    while o + 2 <= t.len() {
        let len = usize::from(t[o + 1]);
        let Some(e) = t.get(o..o + len).filter(|_| len >= 2) else {
            return false;
        };
        if ids(e, hw_ids, uids) == Some(false) {
            return false;
        }
        o += len;
    }
    o == t.len()
}

fn u32_at(e: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(e.get(o..o + 4)?.try_into().ok()?))
}

/// Some(known) for a processor entry, None for others.
fn srat_entry(e: &[u8], hw_ids: &[u64], uids: &[u32]) -> Option<bool> {
    match e[0] {
        0 => Some(e.get(3).is_some_and(|&id| hw_ids.contains(&u64::from(id)))),
        2 => Some(u32_at(e, 8).is_some_and(|id| hw_ids.contains(&u64::from(id)))),
        3 => Some(u32_at(e, 6).is_some_and(|uid| uids.contains(&uid))),
        _ => None,
    }
}

fn pptt_entry(e: &[u8], _: &[u64], uids: &[u32]) -> Option<bool> {
    const ID_VALID: u32 = 1 << 1;
    const LEAF: u32 = 1 << 3;
    let flags = u32_at(e, 4)?;
    (e[0] == 0 && flags & ID_VALID != 0 && flags & LEAF != 0)
        .then(|| u32_at(e, 12).is_some_and(|id| uids.contains(&id)))
}

/// Points QEMU's TPM2 table at the firmware's event log, or at none.
/// QEMU's points at a log area it has the firmware allocate through the
/// loader, which Hotstub does not. The log fields are LAML (u32 at 64)
/// and LASA (u64 at 68), present from revision 4 on (TCG ACPI
/// specification 1.3, 8.3 table 7; Linux reads them when the table is
/// 76 bytes or more, drivers/char/tpm/eventlog/acpi.c). A shorter table
/// is extended to that layout (its start method parameters kept, zero
/// padded) and given revision 4; the checksum is made right.
pub fn set_tpm_log(t: &mut Vec<u8>, log: Option<(u64, u32)>) {
    const WITH_LOG: usize = 76;
    if t.len() < WITH_LOG {
        t.resize(WITH_LOG, 0);
        t[4..8].copy_from_slice(&(WITH_LOG as u32).to_le_bytes());
        t[8] = t[8].max(4);
    }
    let (lasa, laml) = log.unwrap_or((0, 0));
    t[64..68].copy_from_slice(&laml.to_le_bytes());
    t[68..76].copy_from_slice(&lasa.to_le_bytes());
    t[9] = 0;
    t[9] = 0u8.wrapping_sub(super::byte_sum(t));
}

/// Whether a NUL-padded loader file name is `name`.
fn names(field: &[u8], name: &str) -> bool {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end] == name.as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Vec;

    /// A table as QEMU leaves it: checksum zero.
    fn table(sig: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut t = sig.to_vec();
        t.extend_from_slice(&((36 + body.len()) as u32).to_le_bytes());
        t.extend_from_slice(&[1, 0]);
        t.extend_from_slice(&[0u8; 26]);
        t.extend_from_slice(body);
        t
    }

    fn checksum_cmd(file: &str, start: usize, len: usize) -> Vec<u8> {
        let mut e = ADD_CHECKSUM.to_le_bytes().to_vec();
        let mut name = [0u8; FILE_NAME];
        name[..file.len()].copy_from_slice(file.as_bytes());
        e.extend_from_slice(&name);
        for v in [start.wrapping_add(9), start, len] {
            e.extend_from_slice(&(v as u32).to_le_bytes());
        }
        e.resize(LOADER_ENTRY, 0);
        e
    }

    #[test]
    fn finds_the_wanted_tables_and_fixes_their_checksums() {
        let facp = table(b"FACP", &[1, 2, 3]);
        let srat = table(b"SRAT", &[9; 40]);
        let slit = table(b"SLIT", &[2, 0, 0, 0, 0, 0, 0, 0, 10, 21, 21, 10]);
        let mut blob = facp.clone();
        blob.extend_from_slice(&[0; 5]);
        let (s0, s1) = (blob.len(), blob.len() + srat.len());
        blob.extend(&srat);
        blob.extend(&slit);
        let mut loader = Vec::new();
        loader.extend(checksum_cmd(QEMU_TABLES, 0, facp.len()));
        loader.extend(checksum_cmd(QEMU_TABLES, s0, srat.len()));
        loader.extend(checksum_cmd(QEMU_TABLES, s1, slit.len()));
        loader.extend(checksum_cmd("etc/other", s0, srat.len()));
        let found = find(&blob, &loader, &[*b"SRAT", *b"SLIT", *b"PPTT"]);
        let sigs: Vec<[u8; 4]> = found.iter().map(|f| f.signature).collect();
        assert_eq!(sigs, [*b"SRAT", *b"SLIT"]);
        assert_eq!(found[0].bytes.len(), 76);
        assert!(found.iter().all(|f| super::super::byte_sum(&f.bytes) == 0));
    }

    #[test]
    fn extent_ends_at_the_last_checksummed_table() {
        let dsdt = table(b"DSDT", &[7; 20]);
        let facp = table(b"FACP", &[1, 2, 3]);
        let mut blob = dsdt.clone();
        blob.extend(&facp);
        let end = blob.len();
        // QEMU's zero padding.
        blob.resize(4096, 0);
        let mut loader = checksum_cmd(QEMU_TABLES, dsdt.len(), facp.len());
        loader.extend(checksum_cmd(QEMU_TABLES, 0, dsdt.len()));
        assert_eq!(extent(&blob, &loader), end);
        // Nothing the loader covers (or a range past the blob): all of it.
        assert_eq!(extent(&blob, &[]), 4096);
        let past = checksum_cmd(QEMU_TABLES, 4000, 200);
        assert_eq!(extent(&blob, &past), 4096);
        assert_eq!(extent(&blob, &checksum_cmd("etc/other", 0, 40)), 4096);
        assert_eq!(loader_end(&loader), Some(end));
        assert_eq!(loader_end(&past), Some(4200));
        assert_eq!(loader_end(&checksum_cmd("etc/other", 0, 40)), None);
    }

    #[test]
    fn processors_must_be_the_madts() {
        // SRAT: two x2APIC affinities (type 2, 24 bytes, ID at 8) and a
        // memory affinity.
        let mut body = std::vec![0u8; 12];
        for id in [0u32, 1] {
            let mut e = std::vec![2u8, 24, 0, 0, 0, 0, 0, 0];
            e.extend_from_slice(&id.to_le_bytes());
            e.extend_from_slice(&[1, 0, 0, 0]);
            e.resize(24, 0);
            body.extend(e);
        }
        let mut mem = std::vec![1u8, 40];
        mem.resize(40, 0);
        body.extend(mem);
        let srat = table(b"SRAT", &body);
        assert!(consistent(&srat, &[0, 1], &[0, 1]));
        assert!(!consistent(&srat, &[0], &[0]), "APIC ID 1 unknown");
        let mut cut = srat.clone();
        cut.truncate(cut.len() - 3);
        assert!(!consistent(&cut, &[0, 1], &[0, 1]), "truncated entry");
        // PPTT: a package (not a leaf) and two leaf processors.
        let node = |flags: u32, id: u32| {
            let mut e = std::vec![0u8, 20, 0, 0];
            e.extend_from_slice(&flags.to_le_bytes());
            e.extend_from_slice(&0u32.to_le_bytes());
            e.extend_from_slice(&id.to_le_bytes());
            e.extend_from_slice(&0u32.to_le_bytes());
            e
        };
        let mut body = node(1 | 2, 99);
        body.extend(node(2 | 8, 0));
        body.extend(node(2 | 8, 1));
        let pptt = table(b"PPTT", &body);
        assert!(consistent(&pptt, &[], &[0, 1]));
        assert!(!consistent(&pptt, &[], &[0, 2]), "UID 1 unknown");
        assert!(consistent(&table(b"SLIT", &[1; 9]), &[], &[]));
    }

    #[test]
    fn tpm_log_pointers_are_the_firmwares() {
        let mut t = table(b"TPM2", &[0x11; 40]);
        set_tpm_log(&mut t, None);
        assert!(t[64..76].iter().all(|&b| b == 0));
        assert_eq!(super::super::byte_sum(&t), 0);
        set_tpm_log(&mut t, Some((0x8_0000, 0x4000)));
        assert_eq!(&t[64..68], &0x4000u32.to_le_bytes());
        assert_eq!(&t[68..76], &0x8_0000u64.to_le_bytes());
        assert_eq!(super::super::byte_sum(&t), 0);
        // A revision 3 table without the log fields grows to 76 bytes.
        let mut short = table(b"TPM2", &[0x11; 8]);
        short[8] = 3;
        set_tpm_log(&mut short, Some((0x4100_0000, 0x4000)));
        assert_eq!(short.len(), 76);
        assert_eq!(&short[4..8], &76u32.to_le_bytes());
        assert_eq!(short[8], 4);
        assert_eq!(&short[36..44], &[0x11; 8]);
        assert_eq!(&short[68..76], &0x4100_0000u64.to_le_bytes());
        assert_eq!(super::super::byte_sum(&short), 0);
    }

    #[test]
    fn malformed_commands_are_skipped() {
        let srat = table(b"SRAT", &[1; 8]);
        let n = srat.len();
        let bad = [
            checksum_cmd(QEMU_TABLES, 0, n + 1),
            checksum_cmd(QEMU_TABLES, 1, n),
            checksum_cmd(QEMU_TABLES, 0xffff_fff0, 10),
            checksum_cmd(QEMU_TABLES, 0, 20),
        ];
        for cmd in &bad {
            assert!(find(&srat, cmd, &[*b"SRAT"]).is_empty());
        }
        // A truncated loader and a second SRAT.
        let ok = checksum_cmd(QEMU_TABLES, 0, n);
        assert!(find(&srat, &ok[..100], &[*b"SRAT"]).is_empty());
        let mut two = ok.clone();
        two.extend(ok.clone());
        assert_eq!(find(&srat, &two, &[*b"SRAT"]).len(), 1);
    }
}
