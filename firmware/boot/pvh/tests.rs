//! The start info as cloud-hypervisor lays it out (observed with a probe
//! firmware, `--memory size=512M`): header at 0x6000, memory map at
//! 0x7000, RSDP 0xa0000, an empty command line at 0x20000.

extern crate std;
use super::*;
use crate::acpi::adopt::Slice;
use crate::platform::memmap::{Kind, Region};
use std::vec;

const INFO: u64 = 0x6000;

/// Low memory with a start info of `version`, `entries` and `cmdline`.
fn memory(version: u32, entries: &[(u64, u64, u32)], cmdline: &[u8]) -> Vec<u8> {
    let mut m = vec![0u8; 0x2_1000];
    let h = &mut m[INFO as usize..];
    h[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    h[4..8].copy_from_slice(&version.to_le_bytes());
    h[24..32].copy_from_slice(&0x2_0000u64.to_le_bytes());
    h[32..40].copy_from_slice(&0xa_0000u64.to_le_bytes());
    h[40..48].copy_from_slice(&0x7000u64.to_le_bytes());
    h[48..52].copy_from_slice(&(entries.len() as u32).to_le_bytes());
    for (i, &(a, s, t)) in entries.iter().enumerate() {
        let e = &mut m[0x7000 + i * 24..];
        e[0..8].copy_from_slice(&a.to_le_bytes());
        e[8..16].copy_from_slice(&s.to_le_bytes());
        e[16..20].copy_from_slice(&t.to_le_bytes());
    }
    m[0x2_0000..0x2_0000 + cmdline.len()].copy_from_slice(cmdline);
    m
}

const CH: [(u64, u64, u32); 3] = [
    (0, 0xa_0000, 1),
    (0x10_0000, 0x1ff0_0000, 1),
    (0xe800_0000, 0x1000_0000, 2),
];

fn parse_mem(m: &[u8]) -> Result<StartInfo, Error> {
    parse(&Slice { base: 0, bytes: m }, INFO)
}

#[test]
fn cloud_hypervisors_start_info() {
    let s = parse_mem(&memory(1, &CH, b"")).unwrap();
    assert_eq!(s.version, 1);
    assert_eq!(s.rsdp, 0xa_0000);
    assert!(s.cmdline.is_empty());
    let r = |addr, size, kind| Region { addr, size, kind };
    assert_eq!(
        s.map.regions(),
        [
            r(0, 0xa_0000, Kind::Ram),
            r(0x10_0000, 0x1ff0_0000, Kind::Ram),
            r(0xe800_0000, 0x1000_0000, Kind::Reserved),
        ]
    );
    let s = parse_mem(&memory(1, &CH, b"console=ttyS0\0")).unwrap();
    assert_eq!(s.cmdline, b"console=ttyS0");
}

#[test]
fn bad_start_infos_are_refused() {
    let mut m = memory(1, &CH, b"");
    m[INFO as usize] ^= 1;
    assert!(matches!(parse_mem(&m), Err(Error::BadMagic(_))));
    assert_eq!(parse_mem(&memory(0, &CH, b"")), Err(Error::NoMemoryMap(0)));
    let mut m = memory(1, &CH, b"");
    m[INFO as usize + 48..INFO as usize + 52].copy_from_slice(&129u32.to_le_bytes());
    assert_eq!(parse_mem(&m), Err(Error::TooManyEntries(129)));
    // A memory map past the end of memory, and at 0.
    let mut m = memory(1, &CH, b"");
    m[INFO as usize + 40..INFO as usize + 48].copy_from_slice(&0x2_0ff0u64.to_le_bytes());
    assert!(matches!(parse_mem(&m), Err(Error::Unreadable(..))));
    let mut m = memory(1, &CH, b"");
    m[INFO as usize + 40..INFO as usize + 48].fill(0);
    assert!(matches!(parse_mem(&m), Err(Error::Unreadable(..))));
    // No RAM, a wrapping entry.
    assert!(matches!(
        parse_mem(&memory(1, &[(0xe800_0000, 0x1000, 2)], b"")),
        Err(Error::MemoryMap(_))
    ));
    assert!(matches!(
        parse_mem(&memory(1, &[(u64::MAX, 2, 1)], b"")),
        Err(Error::MemoryMap(_))
    ));
    // A command line without its NUL before the end of memory, and one
    // longer than the limit.
    let mut m = memory(1, &CH, b"");
    m.truncate(0x2_0100);
    m[0x2_0000..].fill(b'a');
    assert!(matches!(parse_mem(&m), Err(Error::Unreadable(..))));
    let mut m = memory(1, &CH, b"");
    m[0x2_0000..0x2_0000 + MAX_CMDLINE].fill(b'a');
    assert_eq!(parse_mem(&m), Err(Error::CmdlineTooLong));
    // The start info at the very end of memory.
    let m = memory(1, &CH, b"");
    assert!(parse(&Slice { base: 0, bytes: &m }, m.len() as u64 - 40).is_err());
    let e = std::format!("{}", parse_mem(&memory(0, &CH, b"")).unwrap_err());
    assert_eq!(e, "PVH start info: version 0 has no memory map");
}

#[test]
fn a_later_version_is_read_as_version_1() {
    let s = parse_mem(&memory(2, &CH, b"")).unwrap();
    assert_eq!(s.version, 2);
    assert_eq!(s.map.ram_total(), 0xa_0000 + 0x1ff0_0000);
}
