//! The run-time AML writer: only what depends on the machine (addresses,
//! interrupts, the virtio-mmio list, PCI windows, the vCPUs) is written
//! here; everything constant is built on the host by the build script with
//! the `acpi_tables` builders (`firmware/build/*_aml.rs`) and embedded as
//! bytes.
//!
//! Why not `acpi_tables::aml` at run time: its names are strings parsed at
//! run time (`"_HID".into()`, `Path::new`, `EISAName::new`), which pulls
//! core's string-slicing panic path and `char` formatting with its Unicode
//! tables into the image (about 3.5 KiB), and its objects are `dyn Aml`
//! trees with a `Vec` per node, each node type with its own vtable and
//! serializer (about 5 KiB of `acpi_tables` code on arm, 7 KiB on x86),
//! plus the code building those trees, inlined into the table builders
//! (`arm::build` was 12.5 KiB, the q35 `sb_scope` 16.4 KiB). With this
//! writer and the constant pieces the images shrank by 18 KiB (aarch64)
//! and 26 KiB (x86_64). Here names are `[u8; 4]`, nested objects are
//! written in place and get their PkgLength when closed, and a handful of
//! plain functions cover every object the firmware needs.
//!
//! The encodings are those `acpi_tables` writes (shortest integers, the
//! same PkgLength widths), so the tests compare whole DSDTs byte for byte
//! with the `acpi_tables` builders (`arm::tests`, `x86::tests`).
//! Encodings cite ACPI 6.5 chapter 20 (AML) and 6.4 (resource descriptors).

use alloc::vec::Vec;

/// A NameSeg (ACPI 6.5 20.2.2): four characters, written as they are.
pub type Seg = [u8; 4];

// Data objects (ACPI 6.5 20.2.3).
pub const ZERO: u8 = 0x00;
pub const ONE: u8 = 0x01;
const BYTE_PREFIX: u8 = 0x0a;
const WORD_PREFIX: u8 = 0x0b;
const DWORD_PREFIX: u8 = 0x0c;
const STRING_PREFIX: u8 = 0x0d;
const QWORD_PREFIX: u8 = 0x0e;
// Namespace modifier and named objects (ACPI 6.5 20.2.5.1, 20.2.5.2).
const NAME_OP: u8 = 0x08;
const SCOPE_OP: u8 = 0x10;
const METHOD_OP: u8 = 0x14;
const DEVICE_OP: [u8; 2] = [0x5b, 0x82];
const OP_REGION_OP: [u8; 2] = [0x5b, 0x80];
// Type 2 opcodes (ACPI 6.5 20.2.5.4).
const BUFFER_OP: u8 = 0x11;
const PACKAGE_OP: u8 = 0x12;
/// ReturnOp (ACPI 6.5 20.2.5.3).
pub const RETURN_OP: u8 = 0xa4;
/// IfOp (ACPI 6.5 20.2.5.3), LEqualOp, AndOp (20.2.5.4), NotifyOp
/// (20.2.5.3), Arg0Op, Local0Op (20.2.6).
pub const IF_OP: u8 = 0xa0;
pub const LEQUAL_OP: u8 = 0x93;
pub const AND_OP: u8 = 0x7b;
pub const NOTIFY_OP: u8 = 0x86;
pub const ARG0: u8 = 0x68;
pub const LOCAL0: u8 = 0x60;
/// RootChar and DualNamePrefix (ACPI 6.5 20.2.2).
pub const ROOT: u8 = b'\\';
pub const DUAL_NAME_PREFIX: u8 = 0x2e;

/// Method flags (ACPI 6.5 20.2.5.2 MethodFlags): bits 0-2 the argument
/// count, bit 3 serialized.
pub const SERIALIZED: u8 = 1 << 3;

/// OperationRegion spaces (ACPI 6.5 table 5.149 / 20.2.5.2 RegionSpace).
pub const SYSTEM_MEMORY: u8 = 0;
pub const SYSTEM_IO: u8 = 1;

/// An integer in its shortest encoding (ACPI 6.5 20.2.3: ZeroOp, OneOp,
/// then Byte/Word/DWord/QWordPrefix with little-endian data).
pub fn int(out: &mut Vec<u8>, v: u64) {
    let mut b = [0; 9];
    let n = put_int(&mut b, 0, v);
    out.extend_from_slice(&b[..n]);
}

/// [`int`] written into `b` at `at`; returns where it ends.
fn put_int(b: &mut [u8], at: usize, v: u64) -> usize {
    let (prefix, n) = match v {
        0 | 1 => {
            b[at] = v as u8;
            return at + 1;
        }
        2..=0xff => (BYTE_PREFIX, 1),
        0x100..=0xffff => (WORD_PREFIX, 2),
        0x1_0000..=0xffff_ffff => (DWORD_PREFIX, 4),
        _ => (QWORD_PREFIX, 8),
    };
    b[at] = prefix;
    for k in 0..n {
        b[at + 1 + k] = (v >> (8 * k)) as u8;
    }
    at + 1 + n
}

/// `Package (4) { .. }` of integers for each of `entries` (a `_PRT`'s),
/// written through a buffer on the stack rather than a push or copy per
/// object (128 packages on QEMU virt), and without a heap buffer (the
/// resident EL2 firmware keeps the heap as far as the boot grew it).
/// Contents of at most 1 + 4 * 9 bytes: a one-byte PkgLength.
pub fn int_packages(out: &mut Vec<u8>, entries: impl Iterator<Item = [u64; 4]>) {
    let mut b = [0; 512];
    let mut at = 0;
    for e in entries {
        if at > b.len() - 40 {
            out.extend_from_slice(&b[..at]);
            at = 0;
        }
        let start = at;
        b[start] = PACKAGE_OP;
        b[start + 2] = 4;
        at += 3;
        for v in e {
            at = put_int(&mut b, at, v);
        }
        b[start + 1] = (at - start - 1) as u8;
    }
    out.extend_from_slice(&b[..at]);
}

/// A string (ACPI 6.5 20.2.3: StringPrefix, ASCII characters, NullChar).
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(STRING_PREFIX);
    out.extend_from_slice(s);
    out.push(0);
}

/// `Name (seg, ..)` (ACPI 6.5 20.2.5.1 DefName): the caller writes the
/// value next.
pub fn name(out: &mut Vec<u8>, seg: &Seg) {
    out.extend_from_slice(&[NAME_OP, seg[0], seg[1], seg[2], seg[3]]);
}

pub fn name_int(out: &mut Vec<u8>, seg: &Seg, v: u64) {
    name(out, seg);
    int(out, v);
}

pub fn name_str(out: &mut Vec<u8>, seg: &Seg, s: &[u8]) {
    name(out, seg);
    string(out, s);
}

/// The compressed EISA ID of `id` ("PNP0A08"), as ASL's EISAID() makes it
/// (ACPI 6.5 19.6.35: three letters of five bits from 0x40, four hex
/// digits, stored big-endian); callers evaluate it at compile time
/// (`const { eisa(..) }`), so the image carries only the number.
pub const fn eisa(id: &[u8; 7]) -> u64 {
    const fn hex(c: u8) -> u32 {
        match c {
            b'0'..=b'9' => (c - b'0') as u32,
            b'A'..=b'F' => (c - b'A' + 10) as u32,
            _ => panic!("not an upper-case hex digit"),
        }
    }
    let v = (((id[0] - 0x40) as u32) << 26)
        | (((id[1] - 0x40) as u32) << 21)
        | (((id[2] - 0x40) as u32) << 16)
        | (hex(id[3]) << 12)
        | (hex(id[4]) << 8)
        | (hex(id[5]) << 4)
        | hex(id[6]);
    v.swap_bytes() as u64
}

/// PkgLength (ACPI 6.5 20.2.4) for a package whose contents after the
/// PkgLength are `n` bytes: the encoding counts itself; one byte holds up
/// to 63, and with k following bytes the length has 4 + 8k bits.
fn pkg_length(n: usize) -> ([u8; 4], usize) {
    let extra = match n {
        0..=62 => 0,
        63..=0xffd => 1,
        0x0ffe..=0xf_fffc => 2,
        _ => 3,
    };
    let total = n + 1 + extra;
    let mut b = [0u8; 4];
    b[0] = if extra == 0 {
        total as u8
    } else {
        ((extra as u8) << 6) | (total & 0xf) as u8
    };
    for k in 0..extra {
        b[1 + k] = (total >> (4 + 8 * k)) as u8;
    }
    (b, 1 + extra)
}

/// Puts `bytes` where `reserved` bytes were kept at `at`, moving what
/// follows only when the two lengths differ (each move of the contents
/// was a copy under TCG).
fn fit(out: &mut Vec<u8>, at: usize, reserved: usize, bytes: &[u8]) {
    let n = bytes.len();
    if n != reserved {
        let end = out.len();
        if n > reserved {
            out.resize(end + n - reserved, 0);
        }
        out.copy_within(at + reserved..end, at + n);
        out.truncate(end + n - reserved);
    }
    out[at..at + n].copy_from_slice(bytes);
}

/// Writes `op` and a byte kept for the package's PkgLength and returns
/// where it is; [`close`] writes the PkgLength once the contents are
/// written. The kept byte holds how many bytes are kept (1; [`widen`]
/// keeps more).
pub fn open(out: &mut Vec<u8>, op: &[u8]) -> usize {
    out.extend_from_slice(op);
    out.push(1);
    out.len() - 1
}

/// Keeps `n` (2 to 4) bytes for the PkgLength of the package just opened
/// at `at` (its name may follow): for a package that is most likely 64
/// bytes or longer, whose contents would otherwise be moved when it is
/// closed.
pub fn widen(out: &mut Vec<u8>, at: usize, n: u8) {
    fit(out, at + 1, 0, &[0; 3][..usize::from(n) - 1]);
    out[at] = n;
}

/// Ends the package [`open`] started at `at`: the PkgLength goes into the
/// bytes kept for it, and only an encoding of another length moves the
/// contents (most packages are short, and each move of the whole
/// contents was a copy under TCG).
pub fn close(out: &mut Vec<u8>, at: usize) {
    let reserved = usize::from(out[at]);
    let (b, n) = pkg_length(out.len() - at - reserved);
    fit(out, at, reserved, &b[..n]);
}

/// A host-built template (`build/*_aml.rs`) with every placeholder `from`
/// replaced by `to` (same length).
pub fn patch(t: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut v = t.to_vec();
    let mut i = 0;
    while i + from.len() <= v.len() {
        // The first byte before the slice: a compare call per offset was
        // most of the runtime hotplug AML's cost.
        if v[i] == from[0] && &v[i..i + from.len()] == from {
            v[i..i + from.len()].copy_from_slice(to);
            i += from.len();
        } else {
            i += 1;
        }
    }
    v
}

/// `op PkgLength contents` in one go, for already written contents.
pub fn package_of(out: &mut Vec<u8>, op: &[u8], contents: &[u8]) {
    let at = open(out, op);
    out.extend_from_slice(contents);
    close(out, at);
}

/// `Device (seg) { .. }` (ACPI 6.5 20.2.5.2 DefDevice); [`close`] ends it.
pub fn device(out: &mut Vec<u8>, seg: &Seg) -> usize {
    let at = open(out, &DEVICE_OP);
    out.extend_from_slice(seg);
    at
}

/// `Method (seg, flags) { .. }` (ACPI 6.5 20.2.5.2 DefMethod).
pub fn method(out: &mut Vec<u8>, seg: &Seg, flags: u8) -> usize {
    let at = open(out, &[METHOD_OP]);
    out.extend_from_slice(seg);
    out.push(flags);
    at
}

/// `Scope (path) { .. }` (ACPI 6.5 20.2.5.1 DefScope), `path` an encoded
/// NameString.
pub fn scope(out: &mut Vec<u8>, path: &[u8]) -> usize {
    let at = open(out, &[SCOPE_OP]);
    out.extend_from_slice(path);
    at
}

/// `Package (n) { .. }` (ACPI 6.5 20.2.5.4 DefPackage: NumElements is one
/// byte).
pub fn package(out: &mut Vec<u8>, elements: u8) -> usize {
    let at = open(out, &[PACKAGE_OP]);
    out.push(elements);
    at
}

/// `OperationRegion (seg, space, base, len)` (ACPI 6.5 20.2.5.2).
pub fn op_region(out: &mut Vec<u8>, seg: &Seg, space: u8, base: u64, len: u64) {
    out.extend_from_slice(&OP_REGION_OP);
    out.extend_from_slice(seg);
    out.push(space);
    int(out, base);
    int(out, len);
}

/// `Buffer () { .. }` (ACPI 6.5 20.2.5.4 DefBuffer: PkgLength, BufferSize,
/// bytes); [`close_buffer`] writes both lengths. Two bytes are kept for
/// the BufferSize, a BytePrefix size: every buffer the firmware writes
/// holds 2 to 255 bytes.
pub fn buffer(out: &mut Vec<u8>) -> usize {
    let at = open(out, &[BUFFER_OP]);
    out.extend_from_slice(&[0, 0]);
    at
}

pub fn close_buffer(out: &mut Vec<u8>, at: usize) {
    let mut size = [0; 9];
    let n = put_int(&mut size, 0, (out.len() - at - 3) as u64);
    fit(out, at + 1, 2, &size[..n]);
    close(out, at);
}

/// A Buffer holding `bytes`.
pub fn buffer_of(out: &mut Vec<u8>, bytes: &[u8]) {
    let at = buffer(out);
    out.extend_from_slice(bytes);
    close_buffer(out, at);
}

/// `Name (_CRS, ResourceTemplate () { .. })`: a buffer of resource
/// descriptors, ended by [`end_crs`].
pub fn crs(out: &mut Vec<u8>) -> usize {
    name(out, b"_CRS");
    buffer(out)
}

/// The end tag (ACPI 6.5 6.4.2.9: 0x79, checksum 0 = "treat as valid")
/// and the buffer's lengths.
pub fn end_crs(out: &mut Vec<u8>, at: usize) {
    out.extend_from_slice(&[0x79, 0]);
    close_buffer(out, at);
}

/// Memory32Fixed (ReadWrite, base, len) (ACPI 6.5 6.4.3.4: tag 0x86,
/// length 9, information byte bit 0 = writeable).
pub fn memory32_fixed(out: &mut Vec<u8>, base: u32, len: u32) {
    out.extend_from_slice(&[0x86, 0x09, 0x00, 0x01]);
    out.extend_from_slice(&base.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
}

/// `Name (_CRS, ResourceTemplate () { Memory32Fixed (ReadWrite, base,
/// len) Interrupt (ResourceConsumer, Level, ActiveHigh, Exclusive) { irq }
/// })`, the interrupt only with `irq`: what [`crs`], [`memory32_fixed`],
/// [`ext_irq`] and [`end_crs`] write, built on the stack and copied once
/// (each device of QEMU virt's 32 virtio-mmio has one).
pub fn mmio_crs(out: &mut Vec<u8>, base: u32, len: u32, irq: Option<u32>) {
    // Name, BufferOp, PkgLength, BytePrefix size; Memory32Fixed; the
    // Interrupt; the end tag (ACPI 6.5 6.4.2.9).
    const T: [u8; 32] = [
        NAME_OP,
        b'_',
        b'C',
        b'R',
        b'S',
        BUFFER_OP,
        26,
        BYTE_PREFIX,
        23,
        0x86,
        0x09,
        0x00,
        0x01,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0x89,
        0x06,
        0x00,
        IRQ_CONSUMER,
        0x01,
        0,
        0,
        0,
        0,
        0x79,
        0,
    ];
    let mut b = T;
    b[13..17].copy_from_slice(&base.to_le_bytes());
    b[17..21].copy_from_slice(&len.to_le_bytes());
    let n = match irq {
        Some(irq) => {
            b[26..30].copy_from_slice(&irq.to_le_bytes());
            32
        }
        None => {
            // Nine bytes fewer: the end tag moves up.
            b[6] = 17;
            b[8] = 14;
            b[21] = 0x79;
            b[22] = 0;
            23
        }
    };
    out.extend_from_slice(&b[..n]);
}

/// Extended Interrupt descriptor flags (ACPI 6.5 6.4.3.6): bit 0 consumer,
/// bit 1 edge-triggered (else level), bit 2 active-low, bit 3 shared.
pub const IRQ_CONSUMER: u8 = 1 << 0;
pub const IRQ_EDGE: u8 = 1 << 1;

/// Interrupt (ResourceConsumer, .., ) { intid } (ACPI 6.5 6.4.3.6: tag
/// 0x89, length 6, flags, one interrupt).
pub fn ext_irq(out: &mut Vec<u8>, flags: u8, intid: u32) {
    out.extend_from_slice(&[0x89, 0x06, 0x00, flags, 0x01]);
    out.extend_from_slice(&intid.to_le_bytes());
}

/// IO (Decode16, min, max, align, len) (ACPI 6.5 6.4.2.5: tag 0x47,
/// information byte 1 = 16-bit decode).
pub fn io(out: &mut Vec<u8>, min: u16, max: u16, align: u8, len: u8) {
    out.extend_from_slice(&[0x47, 0x01]);
    out.extend_from_slice(&min.to_le_bytes());
    out.extend_from_slice(&max.to_le_bytes());
    out.extend_from_slice(&[align, len]);
}

/// Address space resource types (ACPI 6.5 6.4.3.5.1 table 6.50: 0 memory,
/// 1 I/O, 2 bus number) with their type-specific flags (tables 6.51-6.53):
/// memory bit 0 read-write, bits 1-2 cacheability (0 non-cacheable, 1
/// cacheable); I/O bits 0-1 = 3, the entire range; none for bus numbers.
#[derive(Clone, Copy)]
pub enum Space {
    Memory { cacheable: bool },
    Io,
    Bus,
}

/// Word, DWord or QWord address space descriptor (`width` 2, 4 or 8
/// bytes; ACPI 6.5 6.4.3.5.3 tag 0x88, 6.4.3.5.2 0x87, 6.4.3.5.1 0x8a) for
/// `min..=max`, with the fixed minimum and maximum bits set (general flags
/// bits 2, 3), granularity 0 and translation offset `tra`. The values are
/// truncated to `width`.
pub fn address(out: &mut Vec<u8>, width: usize, space: Space, min: u64, max: u64, tra: u64) {
    let tag = match width {
        2 => 0x88,
        4 => 0x87,
        _ => 0x8a,
    };
    let (ty, flags) = match space {
        Space::Memory { cacheable } => (0, 1 | (u8::from(cacheable) << 1)),
        Space::Io => (1, 3),
        Space::Bus => (2, 0),
    };
    let len = (3 + 5 * width) as u16;
    out.push(tag);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&[ty, 0x0c, flags]);
    let length = max.wrapping_sub(min).wrapping_add(1);
    for v in [0, min, max, tra, length] {
        out.extend_from_slice(&v.to_le_bytes()[..width]);
    }
}

#[cfg(test)]
mod tests {
    //! Each writer against the `acpi_tables` object it replaces.
    extern crate std;
    use super::*;
    use acpi_tables::aml;
    use acpi_tables::Aml;
    use std::vec;

    fn crate_bytes(obj: &dyn Aml) -> Vec<u8> {
        let mut v = Vec::new();
        obj.to_aml_bytes(&mut v);
        v
    }

    #[test]
    fn integers() {
        for v in [
            0u64,
            1,
            2,
            0xff,
            0x100,
            0xffff,
            0x1_0000,
            0xffff_ffff,
            0x1_0000_0000,
            u64::MAX,
        ] {
            let mut b = Vec::new();
            int(&mut b, v);
            assert_eq!(b, crate_bytes(&v), "{v:#x}");
        }
    }

    #[test]
    fn package_lengths_at_every_boundary() {
        struct Raw(Vec<u8>);
        impl Aml for Raw {
            fn to_aml_bytes(&self, sink: &mut dyn acpi_tables::AmlSink) {
                sink.vec(&self.0);
            }
        }
        // The method's contents are its name, its flags and n bytes: the
        // lengths around 63 and 4094 (one, two and three PkgLength bytes).
        let around = |b: usize| b - 8..b;
        for n in around(63).chain(around(4094)).chain([0, 70_000]) {
            let body = Raw(vec![0x5a; n]);
            let mut b = Vec::new();
            let at = method(&mut b, b"TEST", 0);
            b.extend_from_slice(&body.0);
            close(&mut b, at);
            let want = crate_bytes(&aml::Method::new("TEST".into(), 0, false, vec![&body]));
            assert_eq!(b, want, "{n}");
        }
    }

    #[test]
    fn widened_packages_of_every_length_are_as_narrow_ones() {
        for n in [0, 5, 61, 62, 63, 64, 4093, 4094, 4095, 70_000] {
            for keep in 2..=4 {
                let mut narrow = Vec::new();
                let at = device(&mut narrow, b"DEV0");
                narrow.extend(core::iter::repeat_n(0x5a, n));
                close(&mut narrow, at);
                let mut wide = vec![7];
                let at = device(&mut wide, b"DEV0");
                widen(&mut wide, at, keep);
                wide.extend(core::iter::repeat_n(0x5a, n));
                close(&mut wide, at);
                assert_eq!(wide[1..], narrow[..], "{n} bytes, {keep} kept");
            }
        }
        let entries = [[0x1f_ffff, 3, 0, u64::MAX], [0xffff, 1, 2, 0x1_0000]];
        let mut b = vec![7];
        int_packages(&mut b, entries.into_iter().cycle().take(40));
        let mut want = vec![7];
        for e in entries.into_iter().cycle().take(40) {
            let p = package(&mut want, 4);
            for v in e {
                int(&mut want, v);
            }
            close(&mut want, p);
        }
        assert_eq!(b, want);
        for len in [0usize, 1, 2, 255, 256] {
            let mut b = Vec::new();
            buffer_of(&mut b, &vec![9; len]);
            let data = aml::BufferData::new(vec![9; len]);
            assert_eq!(b, crate_bytes(&data), "buffer of {len}");
        }
    }

    #[test]
    fn names_strings_and_eisa_ids() {
        let mut b = Vec::new();
        name_str(&mut b, b"_HID", b"ACPI0007");
        assert_eq!(b, crate_bytes(&aml::Name::new("_HID".into(), &"ACPI0007")));
        for id in [b"PNP0A08", b"PNP0C02", b"PNP0B00", b"PNP0F13"] {
            let mut b = Vec::new();
            name_int(&mut b, b"_HID", eisa(id));
            let s = std::str::from_utf8(id).unwrap();
            let want = crate_bytes(&aml::Name::new("_HID".into(), &aml::EISAName::new(s)));
            assert_eq!(b, want, "{s}");
        }
    }

    #[test]
    fn resource_descriptors() {
        let mut b = Vec::new();
        let at = crs(&mut b);
        memory32_fixed(&mut b, 0x0900_0000, 0x1000);
        ext_irq(&mut b, IRQ_CONSUMER, 33);
        ext_irq(&mut b, IRQ_CONSUMER | IRQ_EDGE, 41);
        io(&mut b, 0x600, 0x600, 1, 0x80);
        address(&mut b, 2, Space::Bus, 0, 255, 0);
        address(&mut b, 2, Space::Io, 0x0d00, 0xffff, 0);
        address(
            &mut b,
            4,
            Space::Memory { cacheable: true },
            0xa_0000,
            0xb_ffff,
            0,
        );
        address(
            &mut b,
            4,
            Space::Memory { cacheable: false },
            0x1000_0000,
            0x3efe_ffff,
            0,
        );
        address(
            &mut b,
            8,
            Space::Memory { cacheable: false },
            1 << 39,
            (1 << 40) - 1,
            0,
        );
        address(&mut b, 8, Space::Io, 0, 0xffff, 0x3eff_0000);
        end_crs(&mut b, at);

        use aml::AddressSpaceCacheable::{Cacheable, NotCacheable};
        let m = aml::Memory32Fixed::new(true, 0x0900_0000, 0x1000);
        let i = aml::Interrupt::new(true, false, false, false, 33);
        let e = aml::Interrupt::new(true, true, false, false, 41);
        let p = aml::IO::new(0x600, 0x600, 1, 0x80);
        let bus = aml::AddressSpace::<u16>::new_bus_number(0, 255);
        let wio = aml::AddressSpace::<u16>::new_io(0x0d00, 0xffff, None);
        let vga = aml::AddressSpace::<u32>::new_memory(Cacheable, true, 0xa_0000, 0xb_ffff, None);
        let m32 = aml::AddressSpace::<u32>::new_memory(
            NotCacheable,
            true,
            0x1000_0000,
            0x3efe_ffff,
            None,
        );
        let m64 =
            aml::AddressSpace::<u64>::new_memory(NotCacheable, true, 1 << 39, (1 << 40) - 1, None);
        let qio = aml::AddressSpace::<u64>::new_io(0, 0xffff, Some(0x3eff_0000));
        let rt =
            aml::ResourceTemplate::new(vec![&m, &i, &e, &p, &bus, &wio, &vga, &m32, &m64, &qio]);
        assert_eq!(b, crate_bytes(&aml::Name::new("_CRS".into(), &rt)));
    }

    #[test]
    fn mmio_crs_as_the_pieces_write_it() {
        for irq in [None, Some(33), Some(0x1_0000)] {
            let mut b = vec![7];
            mmio_crs(&mut b, 0x0a00_3e00, 0x200, irq);
            let mut want = vec![7];
            let at = crs(&mut want);
            memory32_fixed(&mut want, 0x0a00_3e00, 0x200);
            if let Some(irq) = irq {
                ext_irq(&mut want, IRQ_CONSUMER, irq);
            }
            end_crs(&mut want, at);
            assert_eq!(b, want, "{irq:?}");
        }
    }

    #[test]
    fn containers() {
        let mut b = Vec::new();
        let d = device(&mut b, b"DEV0");
        name_int(&mut b, b"_UID", 0x1234);
        let p = package(&mut b, 2);
        int(&mut b, 7);
        buffer_of(&mut b, &[1, 2, 3]);
        close(&mut b, p);
        op_region(&mut b, b"REGN", SYSTEM_MEMORY, 0x0908_0000, 4);
        close(&mut b, d);
        let s = scope(&mut b, b"\\_SB_");
        close(&mut b, s);

        let uid = aml::Name::new("_UID".into(), &0x1234u32);
        let buf = aml::BufferData::new(vec![1, 2, 3]);
        let pkg = aml::Package::new(vec![&7u8, &buf]);
        let region = aml::OpRegion::new(
            "REGN".into(),
            aml::OpRegionSpace::SystemMemory,
            &0x0908_0000u32,
            &4u8,
        );
        let mut want = crate_bytes(&aml::Device::new("DEV0".into(), vec![&uid, &pkg, &region]));
        want.extend(aml::Scope::raw("\\_SB_".into(), Vec::new()));
        assert_eq!(b, want);
    }
}
