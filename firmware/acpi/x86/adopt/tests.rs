//! The x86 rules on cloud-hypervisor's captured tables
//! (`acpi::adopt::tests::Layout::ch_x86`) and broken copies of them.

extern crate std;
use super::*;
use crate::acpi::adopt::tests::{fix, Layout};
use std::format;

fn checked(l: &Layout) -> Result<Checked, Error> {
    check(&l.adopt()?, 0)
}

/// `check`'s error text for `l`.
fn refused(l: &Layout) -> std::string::String {
    format!("{}", checked(l).unwrap_err())
}

#[test]
fn ch_x86_tables_pass() {
    let c = checked(&Layout::ch_x86()).unwrap();
    let cpus: std::vec::Vec<_> = c.cpus.iter().map(|v| (v.uid, v.hw_id, v.enabled)).collect();
    // --cpus boot=2,max=4.
    assert_eq!(
        cpus,
        [(0, 0, true), (1, 1, true), (2, 2, false), (3, 3, false)]
    );
    let port = |address| Gas {
        space: SPACE_IO,
        bit_width: 8,
        bit_offset: 0,
        access: 1,
        address,
    };
    assert_eq!(c.reset, Some((port(0x600), 1)));
    assert_eq!(c.sleep_control, port(0x600));
    // _S5 is Package { 5, 5, 0, 0 }: SLP_TYP 5 with SLP_EN.
    assert_eq!(c.s5_value, 5 << 2 | 1 << 5);
    assert_eq!(c.pm_timer, Some(0x608));
    assert_eq!(
        c.ecam,
        Some(Ecam {
            base: 0xe800_0000,
            first_bus: 0,
            last_bus: 0
        })
    );
}

#[test]
fn the_boot_vcpu_must_be_enabled() {
    let a = Layout::ch_x86().adopt().unwrap();
    assert!(check(&a, 1).is_ok());
    for id in [2, 7] {
        let e = format!("{}", check(&a, id).unwrap_err());
        assert!(e.contains("boot vCPU"), "{e}");
    }
}

/// The MADT's bytes changed by `f`, checksum fixed.
fn madt(f: impl FnOnce(&mut std::vec::Vec<u8>)) -> Layout {
    let mut l = Layout::ch_x86();
    let t = l.get(b"APIC");
    f(t);
    fix(t);
    l
}

#[test]
fn inconsistent_madts_are_refused() {
    // Entries at 44, 60, 76, 92 (x2APIC), 108 (I/O APIC), 120 (override).
    let dup_id = madt(|t| t[64..68].copy_from_slice(&0u32.to_le_bytes()));
    assert!(refused(&dup_id).contains("share an APIC ID"));
    let dup_uid = madt(|t| t[72..76].copy_from_slice(&0u32.to_le_bytes()));
    assert!(refused(&dup_uid).contains("share a UID"));
    let none = madt(|t| {
        t[52] = 0;
        t[68] = 0;
    });
    assert!(refused(&none).contains("no processor is enabled"));
    let bad_len = madt(|t| t[61] = 12);
    assert!(refused(&bad_len).contains("wrong length"));
    let past_end = madt(|t| t[121] = 40);
    assert!(refused(&past_end).contains("past the table's end"));
    let zero_len = madt(|t| t[121] = 0);
    assert!(refused(&zero_len).contains("past the table's end"));
    let no_ioapic = madt(|t| t[108] = 0x7f);
    assert!(refused(&no_ioapic).contains("no I/O APIC"));
    let old = madt(|t| t[8] = 4);
    assert!(refused(&old).contains("online-capable"));
    let no_lapic = madt(|t| t[36..40].fill(0));
    assert!(refused(&no_lapic).contains("local APIC address"));
}

#[test]
fn a_processor_neither_enabled_nor_capable_is_not_possible() {
    let l = madt(|t| t[100] = 0);
    let c = checked(&l).unwrap();
    assert_eq!(c.cpus.len(), 3);
}

fn fadt(f: impl FnOnce(&mut std::vec::Vec<u8>)) -> Layout {
    let mut l = Layout::ch_x86();
    let t = l.get(b"FACP");
    f(t);
    fix(t);
    l
}

#[test]
fn fadts_are_checked() {
    let full = fadt(|t| t[114] &= !0x10);
    assert!(refused(&full).contains("hardware-reduced"));
    let old = fadt(|t| t[8] = 4);
    assert!(refused(&old).contains("revision 4"));
    let no_sleep = fadt(|t| t[248..256].fill(0));
    assert!(refused(&no_sleep).contains("sleep control"));
    let wide = fadt(|t| t[245] = 32);
    assert!(refused(&wide).contains("sleep control"));
    let pci_space = fadt(|t| t[116] = 2);
    assert!(refused(&pci_space).contains("reset register"));
    let big_port = fadt(|t| t[120..128].copy_from_slice(&0x1_0000u64.to_le_bytes()));
    assert!(refused(&big_port).contains("reset register"));
    // Without RESET_REG_SUP the reset register is not used.
    let no_reset = fadt(|t| {
        t[113] &= !0x04;
        t[116..128].fill(0);
    });
    assert_eq!(checked(&no_reset).unwrap().reset, None);
}

#[test]
fn s5_is_read_from_the_dsdt() {
    let mut l = Layout::ch_x86();
    let d = l.get(b"DSDT");
    let at = d.windows(4).position(|w| w == b"_S5_").unwrap();
    d[at + 1] = b'X';
    fix(d);
    assert!(refused(&l).contains("no _S5"));
    // Sleep type as a OneOp.
    let mut l = Layout::ch_x86();
    let d = l.get(b"DSDT");
    let at = d.windows(4).position(|w| w == b"_S5_").unwrap();
    // _S5_ 0x12 PkgLength NumElements 0x0a 0x05: BytePrefix 5 becomes
    // OneOp OneOp, two bytes as before.
    assert_eq!(&d[at + 7..at + 9], &[0x0a, 0x05]);
    d[at + 7] = 0x01;
    d[at + 8] = 0x01;
    fix(d);
    assert_eq!(checked(&l).unwrap().s5_value, 1 << 2 | 1 << 5);
}

#[test]
fn mcfg_is_checked() {
    let mut l = Layout::ch_x86();
    let m = l.get(b"MCFG");
    m[55] = 0;
    m[54] = 1;
    fix(m);
    assert!(refused(&l).contains("ends before"));
    let mut l = Layout::ch_x86();
    let m = l.get(b"MCFG");
    m[44] = 0x10;
    fix(m);
    assert!(refused(&l).contains("usable ECAM"));
    // Another segment only: no ECAM for segment 0.
    let mut l = Layout::ch_x86();
    let m = l.get(b"MCFG");
    m[52] = 1;
    fix(m);
    assert_eq!(checked(&l).unwrap().ecam, None);
}
