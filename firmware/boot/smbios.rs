//! SMBIOS pass-through: QEMU builds the structures (`etc/smbios/smbios-tables`)
//! and an entry point (`etc/smbios/smbios-anchor`) whose table address the
//! firmware fills in once it has placed the structures (QEMU
//! hw/smbios/smbios.c; DMTF DSP0134 3.7, 5.2). The firmware's own part,
//! the BIOS Information (type 0) strings QEMU leaves empty, is merged in
//! first ([`with_firmware`]).

use alloc::vec::Vec;
use core::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Neither "_SM_" (2.1, 32-bit) nor "_SM3_" (3.0, 64-bit).
    UnknownAnchor,
    /// The anchor is shorter than its own length field says.
    Truncated,
    /// A 32-bit entry point cannot address the structures.
    AddressTooHigh(u64),
    /// A structure runs past the table or its strings are unterminated.
    Malformed,
    /// The structures outgrow what the entry point can describe.
    TooLarge,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::UnknownAnchor => f.write_str("SMBIOS entry point has an unknown anchor"),
            Error::Truncated => f.write_str("SMBIOS entry point is truncated"),
            Error::AddressTooHigh(a) => write!(
                f,
                "SMBIOS tables at {a:#x} are beyond a 32-bit entry point's reach"
            ),
            Error::Malformed => f.write_str("SMBIOS structures are malformed"),
            Error::TooLarge => f.write_str("SMBIOS structures are too large"),
        }
    }
}

fn checksum(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b)))
}

/// What type 0 says about the firmware. `date` is mm/dd/yyyy (DSP0134
/// 7.1, BIOS Release Date).
pub struct Firmware<'a> {
    pub vendor: &'a str,
    pub version: &'a str,
    pub date: &'a str,
    /// System BIOS major and minor release.
    pub release: (u8, u8),
}

/// This firmware, as its type 0 names it (the build script sets the date).
pub const HOTSTUB: Firmware<'static> = Firmware {
    vendor: crate::NAME,
    version: crate::VERSION,
    date: env!("HOTSTUB_BUILD_DATE"),
    release: (
        digits(env!("CARGO_PKG_VERSION_MAJOR")),
        digits(env!("CARGO_PKG_VERSION_MINOR")),
    ),
};

/// A version component as a byte (0xff, "unknown", past 254).
const fn digits(s: &str) -> u8 {
    let (b, mut i, mut n) = (s.as_bytes(), 0, 0u32);
    while i < b.len() {
        n = n * 10 + (b[i] - b'0') as u32;
        i += 1;
    }
    if n < 0xff {
        n as u8
    } else {
        0xff
    }
}

/// The structure table as placed: its bytes, its largest structure and how
/// many structures it has (the entry point states all three).
#[derive(Debug, PartialEq, Eq)]
pub struct Table {
    pub bytes: Vec<u8>,
    pub max_structure: usize,
    pub count: usize,
}

/// Type 0's fields (DSP0134 7.1): string numbers of vendor, version and
/// release date; BIOS Characteristics Extension Byte 2, whose bit 3 says
/// "UEFI is supported" (QEMU sets it on machines whose usual firmware is
/// EDK2; Hotstub has no UEFI boot services) and bit 4 "this is a VM".
const T0_VENDOR: usize = 0x04;
const T0_VERSION: usize = 0x05;
const T0_DATE: usize = 0x08;
const T0_EXT2: usize = 0x13;
const T0_EXT2_UEFI: u8 = 1 << 3;
/// The SMBIOS 2.4 layout of type 0 (through the embedded controller's
/// release), which the firmware writes when QEMU has none: QEMU builds
/// type 0 only from `-smbios type=0,...` and otherwise leaves it to the
/// firmware (hw/smbios/smbios.c, smbios_build_type_0_table).
const T0_LEN: usize = 0x18;
/// Type 127, End-of-Table (DSP0134 7.45): nothing after it counts.
const END_OF_TABLE: u8 = 127;

/// One structure's formatted-area length, how many strings follow it and
/// its whole size (DSP0134 6.1.3: each string NUL-terminated, then one
/// more NUL; a structure without strings ends in two NULs).
fn split(table: &[u8]) -> Result<(usize, usize, usize), Error> {
    let len = *table.get(1).ok_or(Error::Malformed)? as usize;
    if len < 4 || table.len() < len + 2 {
        return Err(Error::Malformed);
    }
    let mut strings = 0;
    let mut at = len;
    loop {
        match (table.get(at), table.get(at + 1)) {
            (Some(0), Some(0)) if at == len => return Ok((len, 0, len + 2)),
            (Some(0), Some(0)) => return Ok((len, strings + 1, at + 2)),
            (Some(0), Some(_)) => strings += 1,
            (Some(_), Some(_)) => {}
            _ => return Err(Error::Malformed),
        }
        at += 1;
    }
}

/// The firmware's own type 0 with `handle`: its strings, no
/// characteristics beyond "not supported" (bit 3) and the extension
/// bytes: ACPI (byte 1 bit 0), targeted content distribution and "this is
/// a VM" (byte 2 bits 2 and 4; not UEFI), no embedded controller (0xff).
fn type0(handle: u16, fw: &Firmware) -> Vec<u8> {
    let mut t = alloc::vec![0u8; T0_LEN];
    t[1] = T0_LEN as u8;
    t[2..4].copy_from_slice(&handle.to_le_bytes());
    (t[T0_VENDOR], t[T0_VERSION], t[T0_DATE]) = (1, 2, 3);
    t[0x0a] = 1 << 3;
    (t[0x12], t[T0_EXT2]) = (1, 1 << 2 | 1 << 4);
    (t[0x14], t[0x15], t[0x16], t[0x17]) = (fw.release.0, fw.release.1, 0xff, 0xff);
    for s in [fw.vendor, fw.version, fw.date] {
        t.extend_from_slice(s.as_bytes());
        t.push(0);
    }
    t.push(0);
    t
}

/// QEMU's structures with the firmware's type 0: QEMU's own, when a user
/// gave one, with the firmware's strings where it left them empty and the
/// UEFI bit cleared; else the firmware's, first.
pub fn with_firmware(table: &[u8], fw: &Firmware) -> Result<Table, Error> {
    let mut out = Table {
        bytes: Vec::with_capacity(table.len() + 64),
        max_structure: 0,
        count: 0,
    };
    let mut at = 0;
    let mut handles = Vec::new();
    let mut have_type0 = false;
    while at < table.len() {
        let s = &table[at..];
        let (len, mut strings, size) = split(s)?;
        let start = out.bytes.len();
        handles.push(u16::from_le_bytes([s[2], s[3]]));
        have_type0 |= s[0] == 0;
        if s[0] == 0 && len > T0_EXT2 {
            out.bytes.extend_from_slice(&s[..len]);
            // The old strings keep their numbers; new ones follow.
            if strings > 0 {
                out.bytes.extend_from_slice(&s[len..size - 1]);
            }
            for (field, text) in [
                (T0_VENDOR, fw.vendor),
                (T0_VERSION, fw.version),
                (T0_DATE, fw.date),
            ] {
                let n = usize::from(s[field]);
                if n == 0 || n > strings {
                    if strings == usize::from(u8::MAX) {
                        return Err(Error::TooLarge);
                    }
                    strings += 1;
                    out.bytes[start + field] = strings as u8;
                    out.bytes.extend_from_slice(text.as_bytes());
                    out.bytes.push(0);
                }
            }
            out.bytes.push(0);
            if strings == 0 {
                out.bytes.push(0);
            }
            out.bytes[start + T0_EXT2] &= !T0_EXT2_UEFI;
        } else {
            out.bytes.extend_from_slice(&s[..size]);
        }
        out.max_structure = out.max_structure.max(out.bytes.len() - start);
        out.count += 1;
        at += size;
        if s[0] == END_OF_TABLE {
            break;
        }
    }
    if !have_type0 {
        // The lowest free handle: 0 on QEMU, which keeps it for type 0
        // (0xff00 up are reserved, DSP0134 6.1.2).
        let handle = (0..0xff00)
            .find(|h| !handles.contains(h))
            .ok_or(Error::TooLarge)?;
        let t = type0(handle, fw);
        out.max_structure = out.max_structure.max(t.len());
        out.count += 1;
        out.bytes.splice(0..0, t);
    }
    Ok(out)
}

/// The firmware's structures alone, where the VMM offers none (QEMU's
/// microvm): its type 0 and an End-of-Table (type 127, handle 1), with
/// an SMBIOS 3.0 entry point (DSP0134 5.2.2 table 2: "_SM3_", length
/// 0x18 at 0x06, version 3.0 at 0x07, entry point revision 1 at 0x0a)
/// that [`patch_anchor`] points at them.
pub fn standalone(fw: &Firmware) -> Result<([u8; 0x18], Table), Error> {
    let end = [END_OF_TABLE, 4, 1, 0, 0, 0];
    let table = with_firmware(&end, fw)?;
    let mut anchor = [0u8; 0x18];
    anchor[..5].copy_from_slice(b"_SM3_");
    (anchor[6], anchor[7], anchor[0x0a]) = (0x18, 3, 1);
    Ok((anchor, table))
}

/// Points the entry point at `table_addr`, states the table's size (and
/// for the 32-bit one its largest structure and count) and fixes the
/// checksums.
pub fn patch_anchor(anchor: &mut [u8], table_addr: u64, table: &Table) -> Result<(), Error> {
    if anchor.starts_with(b"_SM3_") {
        // 64-bit entry point (DSP0134 table 2): length at 0x06, checksum at
        // 0x05 over the whole structure, table maximum size at 0x0c, table
        // address at 0x10.
        let len = *anchor.get(6).ok_or(Error::Truncated)? as usize;
        if len < 0x18 || anchor.len() < len {
            return Err(Error::Truncated);
        }
        let size = u32::try_from(table.bytes.len()).map_err(|_| Error::TooLarge)?;
        anchor[0x0c..0x10].copy_from_slice(&size.to_le_bytes());
        anchor[0x10..0x18].copy_from_slice(&table_addr.to_le_bytes());
        anchor[5] = 0;
        anchor[5] = checksum(&anchor[..len]);
        Ok(())
    } else if anchor.starts_with(b"_SM_") {
        // 32-bit entry point (DSP0134 table 1): length at 0x05, checksum at
        // 0x04, maximum structure size at 0x08; intermediate "_DMI_" part
        // 0x10..0x1f with its checksum at 0x15, the table length at 0x16,
        // address at 0x18 and the number of structures at 0x1c.
        let len = *anchor.get(5).ok_or(Error::Truncated)? as usize;
        if len < 0x1f || anchor.len() < len {
            return Err(Error::Truncated);
        }
        let addr = u32::try_from(table_addr).map_err(|_| Error::AddressTooHigh(table_addr))?;
        let u16_of = |n: usize| u16::try_from(n).map_err(|_| Error::TooLarge);
        anchor[0x08..0x0a].copy_from_slice(&u16_of(table.max_structure)?.to_le_bytes());
        anchor[0x16..0x18].copy_from_slice(&u16_of(table.bytes.len())?.to_le_bytes());
        anchor[0x18..0x1c].copy_from_slice(&addr.to_le_bytes());
        anchor[0x1c..0x1e].copy_from_slice(&u16_of(table.count)?.to_le_bytes());
        anchor[0x15] = 0;
        anchor[0x15] = checksum(&anchor[0x10..0x1f]);
        anchor[4] = 0;
        anchor[4] = checksum(&anchor[..len]);
        Ok(())
    } else {
        Err(Error::UnknownAnchor)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn standalone_has_type0_and_end_behind_a_3_0_entry_point() {
        let (mut anchor, t) = super::standalone(&super::HOTSTUB).unwrap();
        assert_eq!(t.count, 2);
        assert_eq!(t.bytes[0], 0);
        let end = &t.bytes[t.bytes.len() - 6..];
        assert_eq!(end, [127, 4, 1, 0, 0, 0]);
        super::patch_anchor(&mut anchor, 0xf_0000, &t).unwrap();
        assert_eq!(&anchor[0x10..0x18], &0xf_0000u64.to_le_bytes());
        assert_eq!(anchor.iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0);
    }

    use super::*;

    fn sum(b: &[u8]) -> u8 {
        b.iter().fold(0u8, |a, x| a.wrapping_add(*x))
    }

    fn table() -> Table {
        Table {
            bytes: alloc::vec![0; 40],
            max_structure: 30,
            count: 2,
        }
    }

    const FW: Firmware = Firmware {
        vendor: "Hotstub",
        version: "0.1.0",
        date: "12/07/2026",
        release: (0, 1),
    };

    /// QEMU's type 0 (hw/smbios/smbios.c smbios_build_type_0_table: 0x1a
    /// bytes, no strings unless `-smbios type=0` gives them, UEFI bit on
    /// virt), a type 1 with two strings, the end of table.
    fn qemu_tables(vendor: Option<&str>) -> Vec<u8> {
        let mut t0 = alloc::vec![0u8; 0x1a];
        t0[0] = 0;
        t0[1] = 0x1a;
        t0[0x12] = 0x14;
        t0[0x13] = 0x08 | 0x10;
        let mut v = t0;
        match vendor {
            Some(s) => {
                v[T0_VENDOR] = 1;
                v.extend_from_slice(s.as_bytes());
                v.extend_from_slice(&[0, 0]);
            }
            None => v.extend_from_slice(&[0, 0]),
        }
        v.extend_from_slice(&[1, 8, 0x00, 0x01, 1, 2, 0, 0]);
        v.extend_from_slice(b"QEMU\0Standard PC\0\0");
        v.extend_from_slice(&[127, 4, 0xff, 0xfe, 0, 0]);
        v
    }

    /// A structure's formatted area and its strings.
    fn parts(t: &[u8]) -> (&[u8], Vec<&[u8]>, usize) {
        let (len, n, size) = split(t).unwrap();
        let strings = match n {
            0 => Vec::new(),
            _ => t[len..size - 2].split(|&b| b == 0).collect(),
        };
        assert_eq!(strings.len(), n);
        (&t[..len], strings, size)
    }

    #[test]
    fn type0_gets_the_firmware_strings_and_loses_the_uefi_bit() {
        let q = qemu_tables(None);
        let t = with_firmware(&q, &FW).unwrap();
        let (area, strings, size) = parts(&t.bytes);
        assert_eq!(strings, [&b"Hotstub"[..], b"0.1.0", b"12/07/2026"]);
        assert_eq!(
            (area[T0_VENDOR], area[T0_VERSION], area[T0_DATE]),
            (1, 2, 3)
        );
        assert_eq!(area[T0_EXT2], 0x10, "VM bit kept, UEFI bit cleared");
        // The rest is QEMU's, byte for byte.
        assert_eq!(t.bytes[size..], q[0x1a + 2..]);
        assert_eq!(t.count, 3);
        assert_eq!(t.max_structure, size);
        assert_eq!(parts(&t.bytes[size..]).1, [&b"QEMU"[..], b"Standard PC"]);
    }

    #[test]
    fn a_users_type0_strings_stay() {
        let t = with_firmware(&qemu_tables(Some("ACME")), &FW).unwrap();
        let (area, strings, _) = parts(&t.bytes);
        assert_eq!(strings, [&b"ACME"[..], b"0.1.0", b"12/07/2026"]);
        assert_eq!(area[T0_VENDOR], 1);
    }

    #[test]
    fn malformed_structures_are_refused() {
        let q = qemu_tables(None);
        assert_eq!(with_firmware(&q[..0x1a], &FW), Err(Error::Malformed));
        assert_eq!(
            with_firmware(&[0, 2, 0, 0, 0, 0], &FW),
            Err(Error::Malformed)
        );
        let unterminated = [1u8, 4, 0, 0, b'a', 0];
        assert_eq!(
            with_firmware(&unterminated[..5], &FW),
            Err(Error::Malformed)
        );
        // Nothing after the end of table counts.
        let mut tail = q.clone();
        tail.extend_from_slice(&[9, 9, 9]);
        assert_eq!(with_firmware(&tail, &FW).unwrap().count, 3);
    }

    #[test]
    fn without_a_type0_from_qemu_the_firmware_writes_its_own_first() {
        // QEMU's default: type 1 (handle 0x100) and the end, no type 0.
        let q = qemu_tables(None);
        let rest = &q[0x1a + 2..];
        let t = with_firmware(rest, &FW).unwrap();
        let (area, strings, size) = parts(&t.bytes);
        assert_eq!((area[0], area.len(), area[2], area[3]), (0, T0_LEN, 0, 0));
        assert_eq!(strings, [&b"Hotstub"[..], b"0.1.0", b"12/07/2026"]);
        assert_eq!(area[T0_EXT2] & T0_EXT2_UEFI, 0);
        assert_eq!((area[0x14], area[0x15]), (0, 1));
        assert_eq!(t.bytes[size..], *rest);
        assert_eq!(t.count, 3);
        assert_eq!(t.max_structure, size);
        // Handle 0 taken: the next above the highest.
        let mut taken = rest.to_vec();
        taken[2..4].copy_from_slice(&[0, 0]);
        let t = with_firmware(&taken, &FW).unwrap();
        assert_eq!(t.bytes[2..4], [1, 0]);
        // An empty table gets just the firmware's type 0.
        let t = with_firmware(&[], &FW).unwrap();
        assert_eq!(t.count, 1);
        assert_eq!(parts(&t.bytes).2, t.bytes.len());
    }

    #[test]
    fn version_components_as_bytes() {
        assert_eq!(
            (digits("0"), digits("12"), digits("254"), digits("300")),
            (0, 12, 254, 0xff)
        );
    }

    #[test]
    fn patches_64bit_anchor() {
        let mut a = [0u8; 24];
        a[..5].copy_from_slice(b"_SM3_");
        a[6] = 24;
        patch_anchor(&mut a, 0x1234_5678_9abc, &table()).unwrap();
        assert_eq!(u32::from_le_bytes(a[0x0c..0x10].try_into().unwrap()), 40);
        assert_eq!(
            u64::from_le_bytes(a[0x10..0x18].try_into().unwrap()),
            0x1234_5678_9abc
        );
        assert_eq!(sum(&a), 0);
    }

    #[test]
    fn patches_32bit_anchor() {
        let mut a = [0u8; 31];
        a[..4].copy_from_slice(b"_SM_");
        a[5] = 31;
        a[0x10..0x15].copy_from_slice(b"_DMI_");
        patch_anchor(&mut a, 0xf_1000, &table()).unwrap();
        assert_eq!(a[0x08..0x0a], [30, 0], "largest structure");
        assert_eq!(a[0x16..0x18], [40, 0], "table length");
        assert_eq!(a[0x1c..0x1e], [2, 0], "structures");
        assert_eq!(
            u32::from_le_bytes(a[0x18..0x1c].try_into().unwrap()),
            0xf_1000
        );
        assert_eq!(sum(&a), 0);
        assert_eq!(sum(&a[0x10..0x1f]), 0);
        assert_eq!(
            patch_anchor(&mut a, 1 << 32, &table()),
            Err(Error::AddressTooHigh(1 << 32))
        );
    }

    #[test]
    fn rejects_bad_anchors() {
        assert_eq!(
            patch_anchor(&mut [0u8; 24], 0, &table()),
            Err(Error::UnknownAnchor)
        );
        let mut a = *b"_SM3_\0\x40";
        assert_eq!(patch_anchor(&mut a, 0, &table()), Err(Error::Truncated));
        let mut a = *b"_SM_";
        assert_eq!(patch_anchor(&mut a, 0, &table()), Err(Error::Truncated));
    }
}
