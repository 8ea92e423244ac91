//! Memory hotplug (pc-dimm) through QEMU's memory hotplug register block,
//! for both q35 (I/O ports, GPE0 bit 3) and virt (MMIO, GED event bit 0).
//!
//! The block (QEMU docs/specs/acpi_mem_hotplug.rst, hw/acpi/memory_hotplug.c),
//! 24 bytes, little-endian:
//! - reads: +0/+4 the selected DIMM's base (low/high dword), +8/+12 its
//!   length, +16 its proximity domain, +20 (byte) status: bit 0 enabled,
//!   bit 1 insert event, bit 2 remove event;
//! - writes: +0 the slot selector, +4/+8 the `_OST` event and status, +20
//!   (byte) control: bit 1 clears the insert event, bit 2 the remove event,
//!   bit 3 ejects the DIMM (QEMU then emits DEVICE_DELETED).
//! - every other byte reads as all ones while the selector names a slot and
//!   as zero past the last slot, which is how the slots are counted.
//!
//! AML under `\_SB.MHPC` (a generic container that claims the block):
//! region MHPR, mutex MLCK, helpers MRST(slot) -> _STA, MCRS(slot) -> _CRS, MOST(slot, event, status), MEJ0(slot), MTFY(slot,
//! code) and MSCN(), the event handler; one PNP0C80 device MPxx per slot.

use super::{emit, Error};
use alloc::vec::Vec;

/// Register block length (QEMU MEMORY_HOTPLUG_IO_LEN).
pub const BLOCK_LEN: u8 = 0x18;
/// Most slots QEMU allows (ACPI_MAX_RAM_SLOTS).
pub const MAX_SLOTS: u32 = 256;
/// The status byte's offset, and the offset of a byte with no register
/// behind it, used to count slots.
pub const STATUS: u8 = 0x14;
pub const PROBE: u8 = 0x15;

/// Where the block is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block {
    Io(u16),
    Mmio(u32),
}

/// The VMM's memory hotplug interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemHotplug {
    pub block: Block,
    pub slots: u32,
}

/// Counts QEMU's DIMM slots with `probe(slot)`, which selects `slot` and
/// reads the byte at [`PROBE`]: all ones for a slot, zero past the last.
/// `status` is the status byte before any selection; bits 3-7 set mean no
/// block answers there (unassigned I/O reads as all ones). Any other answer
/// is a malformed interface and an error.
pub fn count_slots(status: u8, mut probe: impl FnMut(u32) -> u8) -> Result<u32, &'static str> {
    if status & 0xf8 != 0 {
        return Ok(0);
    }
    for slot in 0..MAX_SLOTS {
        match probe(slot) {
            0xff => {}
            0 => return Ok(slot),
            _ => return Err("memory hotplug registers answer neither a slot nor its end"),
        }
    }
    Err("memory hotplug registers claim more than 256 slots")
}

/// QEMU's memory hotplug interface as QEMU's own DSDT describes it (QEMU
/// offers its tables over fw_cfg, `etc/acpi/tables`; hw/acpi/memory_hotplug.c
/// `build_memory_hotplug_aml`): the slot count `Name (MDNR, n)` and the
/// block's `OperationRegion (HPMR, SystemMemory, base, 0x18)`. None when
/// the tables have no memory hotplug (no `slots=`); an error when they are
/// malformed.
pub fn from_qemu_tables(blob: &[u8]) -> Result<Option<MemHotplug>, &'static str> {
    // NameOp, NameSeg (ACPI 6.5 20.2.5.1).
    let Some(slots) = find(blob, b"\x08MDNR").map(|i| data_integer(&blob[i + 5..])) else {
        return Ok(None);
    };
    let slots = slots.ok_or("QEMU's DSDT: MDNR is not an integer")?;
    if slots == 0 {
        return Ok(None);
    }
    if slots > u64::from(MAX_SLOTS) {
        return Err("QEMU's DSDT: more than 256 memory slots");
    }
    // ExtOpPrefix OpRegionOp NameSeg RegionSpace (0 = SystemMemory) Offset Length.
    let i = find(blob, b"\x5b\x80HPMR").ok_or("QEMU's DSDT: MDNR without the HPMR region")?;
    let rest = blob.get(i + 6..).ok_or("QEMU's DSDT: truncated HPMR")?;
    if rest.first() != Some(&0) {
        return Err("QEMU's DSDT: HPMR is not in system memory");
    }
    let (base, used) = data_integer_len(&rest[1..]).ok_or("QEMU's DSDT: bad HPMR base")?;
    let len = data_integer(&rest[1 + used..]).ok_or("QEMU's DSDT: bad HPMR length")?;
    let base = u32::try_from(base).map_err(|_| "QEMU's DSDT: HPMR above 4 GiB")?;
    if len < u64::from(BLOCK_LEN) {
        return Err("QEMU's DSDT: HPMR shorter than the register block");
    }
    Ok(Some(MemHotplug {
        block: Block::Mmio(base),
        slots: slots as u32,
    }))
}

/// Where `needle` first occurs (Horspool's search: each step compares
/// the window's last byte and skips by how far that byte lies from the
/// needle's end, so most bytes are never looked at; a comparison at every
/// offset cost the arm64 boot milliseconds under TCG). Needles longer than
/// 255 bytes are not found (the skip table holds bytes).
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let n = needle.len();
    if n == 0 || n > 255 || hay.len() < n {
        return None;
    }
    let mut skip = [n as u8; 256];
    for (i, &b) in needle[..n - 1].iter().enumerate() {
        skip[usize::from(b)] = (n - 1 - i) as u8;
    }
    let (head, last) = needle.split_at(n - 1);
    let mut at = 0;
    while let Some(&b) = hay.get(at + n - 1) {
        // The first byte before the rest: a needle ending in a common
        // byte (PCST's NUL) has many candidates.
        if b == last[0] && hay[at] == needle[0] && hay.get(at..at + n - 1) == Some(head) {
            return Some(at);
        }
        at += usize::from(skip[usize::from(b)]);
    }
    None
}

/// An AML integer data object (ZeroOp, OneOp, Byte/Word/DWord/QWordPrefix,
/// ACPI 6.5 20.2.3).
fn data_integer(b: &[u8]) -> Option<u64> {
    data_integer_len(b).map(|(v, _)| v)
}

pub(crate) fn data_integer_len(b: &[u8]) -> Option<(u64, usize)> {
    let n = match *b.first()? {
        0x00 => return Some((0, 1)),
        0x01 => return Some((1, 1)),
        0x0a => 1,
        0x0b => 2,
        0x0c => 4,
        0x0e => 8,
        _ => return None,
    };
    let mut v = [0u8; 8];
    v[..n].copy_from_slice(b.get(1..1 + n)?);
    Some((u64::from_le_bytes(v), 1 + n))
}

/// The constant AML, built on the host (see `build/memhp_aml.rs`).
const IDENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/memhp_ident.aml"));
const METHODS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/memhp_methods.aml"));
const SLOT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/memhp_slot.aml"));
/// What the slot template carries for its slot number: BytePrefix 0xAA
/// (memhp_aml::TEMPLATE_SLOT) and the name MPAA.
const TEMPLATE_INT: [u8; 2] = [0x0a, 0xaa];
const TEMPLATE_NAME: &[u8; 4] = b"MPAA";

/// `\_SB.MHPC` with its slot devices, to place in `\_SB`.
pub fn container(m: &MemHotplug) -> Result<Vec<u8>, Error> {
    if m.slots == 0 || m.slots > MAX_SLOTS {
        return Err(Error::Invalid("memory hotplug slot count out of range"));
    }
    let mut out = Vec::new();
    let d = emit::device(&mut out, b"MHPC");
    out.extend_from_slice(IDENT);
    // _CRS claims the block, and the region over it.
    let r = emit::crs(&mut out);
    let (space, base) = match m.block {
        Block::Io(p) => {
            emit::io(&mut out, p, p, 1, BLOCK_LEN);
            (emit::SYSTEM_IO, u64::from(p))
        }
        Block::Mmio(a) => {
            emit::memory32_fixed(&mut out, a, u32::from(BLOCK_LEN));
            (emit::SYSTEM_MEMORY, u64::from(a))
        }
    };
    emit::end_crs(&mut out, r);
    emit::op_region(&mut out, b"MHPR", space, base, u64::from(BLOCK_LEN));
    // Name (MDNR, slots): MSCN's bound.
    emit::name_int(&mut out, b"MDNR", u64::from(m.slots));
    out.extend_from_slice(METHODS);
    mtfy(m.slots, &mut out);
    for slot in 0..m.slots {
        out.extend_from_slice(&slot_device(slot));
    }
    emit::close(&mut out, d);
    Ok(out)
}

/// The slot's NameSeg: MP and two hex digits.
fn slot_name(slot: u32) -> [u8; 4] {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    [
        b'M',
        b'P',
        HEX[(slot >> 4) as usize & 15],
        HEX[slot as usize & 15],
    ]
}

/// The slot template with its number and name patched in.
fn slot_device(slot: u32) -> Vec<u8> {
    let named = emit::patch(SLOT, TEMPLATE_NAME, &slot_name(slot));
    emit::patch(&named, &TEMPLATE_INT, &[TEMPLATE_INT[0], slot as u8])
}

/// MTFY(slot, code): `If (Arg0 == slot) { Notify (MPxx, Arg1) }` per slot.
fn mtfy(slots: u32, out: &mut Vec<u8>) {
    use emit::{ARG0, IF_OP, LEQUAL_OP, NOTIFY_OP};
    let f = emit::method(out, b"MTFY", 2 | emit::SERIALIZED);
    for s in 0..slots {
        let i = emit::open(out, &[IF_OP]);
        out.extend_from_slice(&[LEQUAL_OP, ARG0]);
        emit::int(out, u64::from(s));
        out.push(NOTIFY_OP);
        out.extend_from_slice(&slot_name(s));
        out.push(ARG0 + 1);
        emit::close(out, i);
    }
    emit::close(out, f);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_from_the_registers() {
        // Two slots: all ones for 0 and 1, zero from 2.
        assert_eq!(count_slots(0, |s| if s < 2 { 0xff } else { 0 }), Ok(2));
        // No block: unassigned I/O reads all ones.
        assert_eq!(count_slots(0xff, |_| unreachable!()), Ok(0));
        // A block with no slots answers zero at once.
        assert_eq!(count_slots(0, |_| 0), Ok(0));
        // Malformed: neither answer, or slots without end.
        assert!(count_slots(0, |s| if s == 0 { 0xff } else { 0x5a }).is_err());
        assert!(count_slots(0, |_| 0xff).is_err());
    }

    #[test]
    fn interface_from_qemus_tables() {
        // As QEMU writes it: Name (MDNR, 0x02) ... OperationRegion (HPMR,
        // SystemMemory, 0x09070000, 0x18).
        let mut t = b"DSDT....junk\x08MDNR\x0a\x02more".to_vec();
        t.extend_from_slice(b"\x5b\x80HPMR\x00\x0c\x00\x00\x07\x09\x0a\x18");
        assert_eq!(
            from_qemu_tables(&t),
            Ok(Some(MemHotplug {
                block: Block::Mmio(0x0907_0000),
                slots: 2
            }))
        );
        assert_eq!(from_qemu_tables(b"no hotplug here"), Ok(None));
        assert_eq!(from_qemu_tables(b"\x08MDNR\x00"), Ok(None));
        assert!(from_qemu_tables(b"\x08MDNR\x0a\x02").is_err(), "no region");
        assert!(from_qemu_tables(b"\x08MDNR\xff").is_err(), "not an integer");
        assert!(
            from_qemu_tables(b"\x08MDNR\x0b\x00\x10").is_err(),
            "4096 slots"
        );
        let mut io = b"\x08MDNR\x01".to_vec();
        io.extend_from_slice(b"\x5b\x80HPMR\x01\x0b\x00\x0a\x0a\x18");
        assert!(from_qemu_tables(&io).is_err(), "I/O space on virt");
        let mut short = b"\x08MDNR\x01".to_vec();
        short.extend_from_slice(b"\x5b\x80HPMR\x00\x0c\x00\x00\x07\x09\x0a\x08");
        assert!(from_qemu_tables(&short).is_err(), "8-byte region");
        assert!(
            from_qemu_tables(b"\x08MDNR\x01\x5b\x80HPMR").is_err(),
            "truncated"
        );
    }
}

#[cfg(test)]
mod search {
    extern crate std;
    use super::find;

    #[test]
    fn finds_the_first_occurrence_or_none() {
        let naive = |h: &[u8], n: &[u8]| h.windows(n.len()).position(|w| w == n);
        let hay = b"\x08MDNR\x08MDNRa\x5b\x80HPMR abcabcabd MDNR";
        for needle in [
            &b"MDNR"[..],
            b"\x08MDNRa",
            b"abcabd",
            b"HPMR",
            b"x",
            b"R",
            b"zz",
            b"dd",
        ] {
            assert_eq!(find(hay, needle), naive(hay, needle), "{needle:?}");
        }
        assert_eq!(find(b"ab", b"abc"), None);
        assert_eq!(find(b"ab", b""), None);
        assert_eq!(find(b"aaaa", b"aa"), Some(0));
        // Every needle cut from a pseudo-random haystack over a small
        // alphabet (many partial matches).
        let mut x = 12345u32;
        let hay: std::vec::Vec<u8> = (0..2000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                b"abc\x08"[(x >> 16) as usize % 4]
            })
            .collect();
        for len in 1..12 {
            for at in (0..hay.len() - len).step_by(37) {
                let n = &hay[at..at + len];
                assert_eq!(find(&hay, n), naive(&hay, n));
            }
        }
    }
}

#[cfg(test)]
mod encoding {
    use super::*;
    use emit::package_of;

    #[test]
    fn package_lengths() {
        let mut v = Vec::new();
        package_of(&mut v, &[0x14], &[0u8; 10]);
        assert_eq!(&v[..2], &[0x14, 11]);
        let mut v = Vec::new();
        package_of(&mut v, &[0x14], &[0u8; 100]);
        // 100 + 2 = 102 = 0x66: low nibble 6, then 0x06.
        assert_eq!(&v[..3], &[0x14, 0x46, 0x06]);
        let mut v = Vec::new();
        package_of(&mut v, &[0x14], &[0u8; 5000]);
        // 5000 + 3 = 0x138b.
        assert_eq!(&v[..4], &[0x14, 0x8b, 0x38, 0x01]);
    }

    #[test]
    fn slot_template_is_patched_everywhere() {
        let d = slot_device(0x1f);
        assert!(!d.windows(4).any(|w| w == TEMPLATE_NAME));
        assert!(!d.windows(2).any(|w| w == TEMPLATE_INT));
        assert!(d.windows(4).any(|w| w == b"MP1F"));
        // _UID and the five helper calls carry the slot.
        assert_eq!(d.windows(2).filter(|w| *w == [0x0a, 0x1f]).count(), 6);
    }
}
