//! The walker on cloud-hypervisor's own tables (captured from CH v53/v54
//! x86_64, `--cpus boot=2,max=4`, by a PVH probe firmware: the bytes at
//! hvm_start_info's rsdp_paddr) and on copies of them with one thing
//! broken each.

extern crate std;
use super::*;
use std::vec;

/// Tables at guest-physical addresses, put into one memory image on
/// demand; tests break one and walk the image.
#[derive(Clone)]
pub(crate) struct Layout {
    pub parts: Vec<(u64, Vec<u8>)>,
}

impl Layout {
    /// CH's x86 tables where CH put them: the RSDP at 0xa0000, then the
    /// DSDT, FACP, APIC, MCFG and XSDT back to back (the addresses the
    /// captured XSDT and FADT hold).
    pub fn ch_x86() -> Layout {
        macro_rules! dat {
            ($n:literal) => {
                include_bytes!(concat!("ch-x86_64/", $n, ".dat")).to_vec()
            };
        }
        Layout {
            parts: vec![
                (0xa_0000, dat!("RSDP")),
                (0xa_0024, dat!("DSDT")),
                (0xa_1385, dat!("FACP")),
                (0xa_1499, dat!("APIC")),
                (0xa_151b, dat!("MCFG")),
                (0xa_1557, dat!("XSDT")),
            ],
        }
    }

    /// The table whose first four bytes are `sig` ("RSD " for the RSDP).
    pub fn get(&mut self, sig: &[u8; 4]) -> &mut Vec<u8> {
        &mut self
            .parts
            .iter_mut()
            .find(|(_, b)| &b[..4] == sig)
            .expect("no such table")
            .1
    }

    /// One image from the lowest address to the end of the highest table.
    pub fn image(&self) -> (u64, Vec<u8>) {
        let base = self.parts.iter().map(|p| p.0).min().unwrap();
        let end = self
            .parts
            .iter()
            .map(|(a, b)| a + b.len() as u64)
            .max()
            .unwrap();
        let mut img = vec![0u8; (end - base) as usize];
        for (a, b) in &self.parts {
            let o = (a - base) as usize;
            img[o..o + b.len()].copy_from_slice(b);
        }
        (base, img)
    }

    pub fn adopt(&self) -> Result<Adopted, Error> {
        let (base, img) = self.image();
        adopt(&Slice { base, bytes: &img }, 0xa_0000)
    }
}

/// Makes a table's checksum valid again after a test changed it.
pub(crate) fn fix(t: &mut [u8]) {
    t[9] = 0;
    t[9] = 0u8.wrapping_sub(byte_sum(t));
}

/// The RSDP's two checksums (ACPI 6.5 5.2.5.3).
fn fix_rsdp(r: &mut [u8]) {
    r[8] = 0;
    r[8] = 0u8.wrapping_sub(byte_sum(&r[..20]));
    r[32] = 0;
    r[32] = 0u8.wrapping_sub(byte_sum(&r[..36]));
}

#[test]
fn ch_x86_tables_walk() {
    let a = Layout::ch_x86().adopt().unwrap();
    assert_eq!(a.rsdp, 0xa_0000);
    assert_eq!(a.xsdt, 0xa_1557);
    let sigs: Vec<Sig> = a.tables.iter().map(Table::signature).collect();
    assert_eq!(sigs, [*b"FACP", *b"APIC", *b"MCFG", *b"DSDT"]);
    assert_eq!(a.need(*b"DSDT").unwrap().addr, 0xa_0024);
    assert_eq!(a.need(*b"APIC").unwrap().bytes.len(), 130);
    assert_eq!(a.facs, None);
    assert_eq!(a.need(*b"HPET"), Err(Error::Missing(*b"HPET")));
}

#[test]
fn bad_checksums_are_refused() {
    for sig in [b"XSDT", b"FACP", b"APIC", b"MCFG", b"DSDT"] {
        let mut l = Layout::ch_x86();
        let t = l.get(sig);
        let last = t.len() - 1;
        t[last] ^= 0x40;
        let e = l.adopt().unwrap_err();
        assert!(
            matches!(e, Error::Checksum { sig: s, .. } if s == *sig),
            "{e}"
        );
        let text = std::format!("{e}");
        assert!(text.contains("bad checksum"), "{text}");
    }
    let mut l = Layout::ch_x86();
    l.get(b"RSD ")[9] ^= 1;
    assert!(matches!(l.adopt(), Err(Error::Checksum { .. })));
    let mut l = Layout::ch_x86();
    l.get(b"RSD ")[35] ^= 1;
    assert!(std::format!("{}", l.adopt().unwrap_err()).contains("extended checksum"));
}

#[test]
fn bad_lengths_are_refused() {
    // Longer than what is mapped: the MADT's length past the end of memory
    // (the XSDT is last, so grow that), then one below the header.
    let mut l = Layout::ch_x86();
    let x = l.get(b"XSDT");
    x[4..8].copy_from_slice(&0x100u32.to_le_bytes());
    fix(x);
    let e = l.adopt().unwrap_err();
    assert!(matches!(e, Error::Unreadable { .. }), "{e}");
    for (len, sig) in [(35u32, b"APIC"), (MAX_TABLE_LEN + 1, b"DSDT")] {
        let mut l = Layout::ch_x86();
        let t = l.get(sig);
        t[4..8].copy_from_slice(&len.to_le_bytes());
        fix(t);
        let e = l.adopt().unwrap_err();
        assert!(matches!(e, Error::Length { .. }), "{sig:?}: {e}");
    }
    // A truncated table: the MADT claims 8 bytes fewer; its tail then
    // no longer sums to zero.
    let mut l = Layout::ch_x86();
    let t = l.get(b"APIC");
    t[4..8].copy_from_slice(&122u32.to_le_bytes());
    assert!(matches!(l.adopt(), Err(Error::Checksum { .. })));
    // An XSDT whose body is not whole entries.
    let mut l = Layout::ch_x86();
    let x = l.get(b"XSDT");
    x[4..8].copy_from_slice(&59u32.to_le_bytes());
    x.truncate(59);
    fix(x);
    assert!(std::format!("{}", l.adopt().unwrap_err()).contains("64-bit entries"));
}

#[test]
fn the_rsdp_is_checked() {
    let mut l = Layout::ch_x86();
    l.get(b"RSD ")[0] = b'X';
    assert!(matches!(l.adopt(), Err(Error::Signature { .. })));
    let mut l = Layout::ch_x86();
    let r = l.get(b"RSD ");
    r[15] = 0;
    fix_rsdp(r);
    assert!(matches!(l.adopt(), Err(Error::Revision { min: 2, .. })));
    let mut l = Layout::ch_x86();
    let r = l.get(b"RSD ");
    r[24..32].copy_from_slice(&0u64.to_le_bytes());
    fix_rsdp(r);
    assert!(std::format!("{}", l.adopt().unwrap_err()).contains("no XSDT"));
    // Pointing the RSDP at the MADT: the XSDT signature is wanted there.
    let mut l = Layout::ch_x86();
    let r = l.get(b"RSD ");
    r[24..32].copy_from_slice(&0xa_1499u64.to_le_bytes());
    fix_rsdp(r);
    assert!(matches!(
        l.adopt(),
        Err(Error::Signature { want, .. }) if want == *b"XSDT"
    ));
    // Nothing at the address at all.
    let (base, img) = Layout::ch_x86().image();
    let e = adopt(&Slice { base, bytes: &img }, 0x9_0000).unwrap_err();
    assert!(matches!(e, Error::Unreadable { .. }), "{e}");
}

#[test]
fn xsdt_entries_are_checked() {
    // The XSDT's MADT entry names the DSDT instead.
    let mut l = Layout::ch_x86();
    let x = l.get(b"XSDT");
    x[44..52].copy_from_slice(&0xa_0024u64.to_le_bytes());
    fix(x);
    assert!(std::format!("{}", l.adopt().unwrap_err()).contains("does not belong"));
    // Two MADT entries.
    let mut l = Layout::ch_x86();
    let x = l.get(b"XSDT");
    x[52..60].copy_from_slice(&0xa_1499u64.to_le_bytes());
    fix(x);
    assert_eq!(l.adopt(), Err(Error::Duplicate(*b"APIC")));
    // A null entry.
    let mut l = Layout::ch_x86();
    let x = l.get(b"XSDT");
    x[52..60].fill(0);
    fix(x);
    assert!(std::format!("{}", l.adopt().unwrap_err()).contains("null"));
    // An entry into the middle of the DSDT: no header there.
    let mut l = Layout::ch_x86();
    let x = l.get(b"XSDT");
    x[52..60].copy_from_slice(&0xa_0100u64.to_le_bytes());
    fix(x);
    assert!(l.adopt().is_err());
}

#[test]
fn overlapping_tables_are_refused() {
    // The MCFG's length grown over the XSDT behind it, its checksum kept.
    let (base, mut img) = Layout::ch_x86().image();
    let at = (0xa_151b - base) as usize;
    img[at + 4..at + 8].copy_from_slice(&(60u32 + 8).to_le_bytes());
    // Sum of the 68 bytes zero again: adjust the checksum.
    img[at + 9] = 0;
    img[at + 9] = 0u8.wrapping_sub(byte_sum(&img[at..at + 68]));
    let e = adopt(&Slice { base, bytes: &img }, 0xa_0000).unwrap_err();
    assert_eq!(e, Error::Overlap(*b"MCFG", *b"XSDT"));
}

#[test]
fn fadt_pointers_are_checked() {
    // X_DSDT and DSDT both set and different.
    let mut l = Layout::ch_x86();
    let f = l.get(b"FACP");
    f[40..44].copy_from_slice(&0xa_1385u32.to_le_bytes());
    fix(f);
    assert!(std::format!("{}", l.adopt().unwrap_err()).contains("differ"));
    // No DSDT.
    let mut l = Layout::ch_x86();
    let f = l.get(b"FACP");
    f[140..148].fill(0);
    fix(f);
    assert!(std::format!("{}", l.adopt().unwrap_err()).contains("names no DSDT"));
    // The 32-bit field alone is used.
    let mut l = Layout::ch_x86();
    let f = l.get(b"FACP");
    f[140..148].fill(0);
    f[40..44].copy_from_slice(&0xa_0024u32.to_le_bytes());
    fix(f);
    assert!(l.adopt().is_ok());
    // A FACS that is not one.
    let mut l = Layout::ch_x86();
    let f = l.get(b"FACP");
    f[132..140].copy_from_slice(&0xa_1499u64.to_le_bytes());
    fix(f);
    assert!(matches!(
        l.adopt(),
        Err(Error::Signature { want, .. }) if want == *b"FACS"
    ));
}

#[test]
fn every_truncation_of_memory_fails_cleanly() {
    let (base, img) = Layout::ch_x86().image();
    for cut in 0..img.len() {
        assert!(adopt(
            &Slice {
                base,
                bytes: &img[..cut]
            },
            0xa_0000
        )
        .is_err());
    }
}

#[test]
fn slice_reads_are_bounded() {
    let s = Slice {
        base: u64::MAX - 3,
        bytes: &[1, 2, 3, 4],
    };
    let mut b = [0u8; 4];
    assert!(s.read(u64::MAX - 3, &mut b));
    assert!(!s.read(u64::MAX - 2, &mut b));
    assert!(!s.read(0, &mut b));
}
