//! ACPI tables built by the firmware from what it discovered.
//!
//! Tables and AML come from the `acpi_tables` crate where it has them; what
//! it lacks (x2APIC and override MADT entries, HPET, GTDT, IORT, a PL011
//! SPCR, a settable MADT revision) is written here with
//! `acpi_tables::sdt::Sdt` and the small [`Bytes`] writer. Layout facts cite
//! the ACPI 6.5 specification ("ACPI 6.5 5.2.x").
//!
//! The builders only produce bytes: [`TableArea`] is a bump allocator over
//! memory the caller reserved (and later marks as ACPI reclaimable/NVS in
//! the memory map); the caller also places the returned RSDP where the
//! platform's OS looks for it.

use acpi_tables::aml;
use acpi_tables::sdt::Sdt;
use acpi_tables::Aml;
use acpi_tables::AmlSink;
use alloc::vec::Vec;
use core::fmt;

pub mod arm;
pub mod cpuhp;
pub mod memhp;
pub mod pcihp;
pub mod vmm;
pub mod x86;

/// OEM ID in every table header and the RSDP (6 bytes, ACPI 6.5 5.2.6).
pub const OEM_ID: [u8; 6] = *b"HOTSTB";
/// OEM table ID (8 bytes); Linux only matches it in quirk tables.
pub const OEM_TABLE_ID: [u8; 8] = *b"HOTSTUB ";
pub const OEM_REVISION: u32 = 1;

/// Why the tables could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The table area is too small.
    NoSpace,
    /// The machine description cannot be expressed in the tables (the text
    /// says what).
    Invalid(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoSpace => write!(f, "ACPI table area too small"),
            Error::Invalid(what) => write!(f, "cannot describe machine in ACPI: {what}"),
        }
    }
}

/// Bump allocator over the memory that will hold the tables; knows the
/// physical address of `buf[0]` so tables can point at each other.
pub struct TableArea<'a> {
    buf: &'a mut [u8],
    phys_base: u64,
    used: usize,
}

impl<'a> TableArea<'a> {
    pub fn new(buf: &'a mut [u8], phys_base: u64) -> Self {
        TableArea {
            buf,
            phys_base,
            used: 0,
        }
    }

    /// Bytes consumed so far, alignment padding included.
    pub fn used(&self) -> usize {
        self.used
    }

    /// Physical address of the area's first byte.
    pub fn phys_base(&self) -> u64 {
        self.phys_base
    }

    /// Copies `data` to the next address aligned to `align` (a power of
    /// two, in physical address terms) and returns that address.
    pub fn place(&mut self, data: &[u8], align: u64) -> Result<u64, Error> {
        debug_assert!(align.is_power_of_two());
        let cur = self
            .phys_base
            .checked_add(self.used as u64)
            .ok_or(Error::NoSpace)?;
        let aligned = cur.checked_add(align - 1).ok_or(Error::NoSpace)? & !(align - 1);
        let start = self.used + (aligned - cur) as usize;
        let end = start.checked_add(data.len()).ok_or(Error::NoSpace)?;
        if end > self.buf.len() {
            return Err(Error::NoSpace);
        }
        self.buf[self.used..start].fill(0);
        self.buf[start..end].copy_from_slice(data);
        self.used = end;
        Ok(aligned)
    }
}

/// Result of a build: the RSDP (ACPI 2.0+, 36 bytes) to be placed where the
/// OS finds it, and where the XSDT went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Built {
    pub rsdp: [u8; 36],
    pub xsdt_phys: u64,
}

/// One PCI interrupt routing entry for `_PRT` (ACPI 6.5 6.2.13): device
/// number on the root bus, pin (0 = INTA .. 3 = INTD), and the GSI the pin
/// is wired to (no link devices: "source" 0, direct GSI).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrtEntry {
    pub device: u8,
    pub pin: u8,
    pub gsi: u32,
}

/// Little-endian byte writer for fixed-layout table bodies and subtables.
#[derive(Default)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    pub fn new() -> Self {
        Bytes(Vec::new())
    }
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.0.extend_from_slice(v);
        self
    }
    pub fn zeros(&mut self, n: usize) -> &mut Self {
        self.0.resize(self.0.len() + n, 0);
        self
    }
    /// Generic Address Structure (ACPI 6.5 5.2.3.2).
    pub fn gas(&mut self, space: u8, bit_width: u8, access: u8, address: u64) -> &mut Self {
        self.u8(space).u8(bit_width).u8(0).u8(access).u64(address)
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// GAS address space IDs (ACPI 6.5 table 5.1).
pub(crate) const GAS_MEMORY: u8 = 0;

/// A complete table: standard header (ACPI 6.5 5.2.6) with our OEM fields,
/// then `body`, checksummed.
pub fn table(signature: [u8; 4], revision: u8, body: &[u8]) -> Vec<u8> {
    let mut sdt = Sdt::new(signature, 36, revision, OEM_ID, OEM_TABLE_ID, OEM_REVISION);
    sdt.append_slice(body);
    sdt.as_slice().to_vec()
}

/// Serializes any `acpi_tables` object (table or AML) into bytes.
pub fn to_bytes(obj: &dyn Aml) -> Vec<u8> {
    let mut v = Vec::new();
    obj.to_aml_bytes(&mut v);
    v
}

/// DSDT revision 2: integers are 64 bits wide (ACPI 6.5 5.2.11.1), needed
/// for QWord windows and 64-bit MMIO addresses.
pub const DSDT_REVISION: u8 = 2;

/// AML opcodes the crate has no type for (ACPI 6.5 20.2.5): emitted as the
/// opcode followed by the operands in order.
pub(crate) mod op {
    pub const LAND: &[u8] = &[0x90];
}

/// An AML expression made of a fixed opcode and operands (see [`op`]).
pub(crate) struct Op<'a> {
    code: &'static [u8],
    args: Vec<&'a dyn Aml>,
}

impl<'a> Op<'a> {
    pub fn new(code: &'static [u8], args: Vec<&'a dyn Aml>) -> Self {
        Op { code, args }
    }
}

impl Aml for Op<'_> {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        sink.vec(self.code);
        for a in &self.args {
            a.to_aml_bytes(sink);
        }
    }
}

/// Short IRQ descriptor without flags (edge, active-high, exclusive: the
/// ISA default), ACPI 6.5 6.4.2.1: tag 0x22, 16-bit IRQ mask.
pub(crate) struct IrqNoFlags(pub u8);

impl Aml for IrqNoFlags {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        sink.byte(0x22);
        sink.word(1u16 << (self.0 & 15));
    }
}

/// A UUID as ToUUID lays it out in AML (ACPI 6.5 19.6.142: the first
/// three fields little-endian, the rest in order), computed at compile time
/// so the image carries 16 bytes and no parser.
pub(crate) const fn guid(s: &[u8; 36]) -> [u8; 16] {
    const fn hex(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => panic!("not a hex digit"),
        }
    }
    const fn at(s: &[u8; 36], i: usize) -> u8 {
        (hex(s[i]) << 4) | hex(s[i + 1])
    }
    // Source offsets of bytes 0..16 in "aabbccdd-eeff-gghh-iijj-kkllmmnnoopp".
    const ORDER: [usize; 16] = [6, 4, 2, 0, 11, 9, 16, 14, 19, 21, 24, 26, 28, 30, 32, 34];
    let mut out = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        out[i] = at(s, ORDER[i]);
        i += 1;
    }
    out
}

/// `_PRT` package (ACPI 6.5 6.2.13) with direct GSIs: each entry is
/// {address = device << 16 | 0xffff (any function), pin, source 0, GSI}.
pub(crate) fn prt_package(prt: &[PrtEntry]) -> Result<aml::PackageBuilder, Error> {
    // NumElements of a Package is one byte (ACPI 6.5 20.2.5.4 DefPackage).
    if prt.len() > 255 {
        return Err(Error::Invalid("more than 255 _PRT entries"));
    }
    let mut pkg = aml::PackageBuilder::new();
    for e in prt {
        if e.pin > 3 || e.device > 31 {
            return Err(Error::Invalid("_PRT entry with bad device or pin"));
        }
        let addr = (u32::from(e.device) << 16) | 0xffff;
        pkg.add_element(&aml::Package::new(alloc::vec![
            &addr,
            &e.pin,
            &aml::ZERO,
            &e.gsi
        ]));
    }
    Ok(pkg)
}

/// The PCI host bridge `_OSC` (PCI Firmware Specification 3.3 4.5): for the
/// PCI UUID it grants the OS native control of what QEMU's PCIe hardware
/// implements (native hotplug, PME, AER, PCIe capability structure; control
/// DWORD bits 0, 2, 3, 4), masking the rest and saying so in the status
/// DWORD; other UUIDs are answered "unrecognized UUID". Without
/// `native_hotplug` bit 0 is kept: the VMM hotplugs through ACPI (as QEMU's
/// own q35 `_OSC` does while its ACPI PCI hotplug is on,
/// hw/i386/acpi-build.c build_q35_osc_method).
pub(crate) fn pci_osc(native_hotplug: bool) -> Vec<u8> {
    // Bits of the first (status) DWORD, ACPI 6.5 6.2.12.
    const UNRECOGNIZED_UUID: u8 = 1 << 2;
    const UNRECOGNIZED_REVISION: u8 = 1 << 3;
    const CAPABILITIES_MASKED: u8 = 1 << 4;
    // Control DWORD bit 0: PCI Express Native Hot Plug control.
    const NATIVE_HOTPLUG: u8 = 1 << 0;
    const GRANTABLE_ALL: u8 = 0x1d;
    let grantable = if native_hotplug {
        GRANTABLE_ALL
    } else {
        GRANTABLE_ALL & !NATIVE_HOTPLUG
    };

    let cdw1 = aml::Path::new("CDW1");
    let cdw2 = aml::Path::new("CDW2");
    let cdw3 = aml::Path::new("CDW3");
    const PCI_HOST_BRIDGE: [u8; 16] = guid(b"33DB4D5B-1FF7-401C-9657-7441C03DD766");
    let uuid = aml::BufferData::new(PCI_HOST_BRIDGE.to_vec());
    let mk_cdw1 = aml::CreateDWordField::new(&cdw1, &aml::Arg(3), &aml::ZERO);
    let mk_cdw2 = aml::CreateDWordField::new(&cdw2, &aml::Arg(3), &4u8);
    let mk_cdw3 = aml::CreateDWordField::new(&cdw3, &aml::Arg(3), &8u8);
    let is_pci = aml::Equal::new(&aml::Arg(0), &uuid);
    let granted = aml::And::new(&aml::Local(0), &cdw3, &grantable);
    let bad_rev = aml::NotEqual::new(&aml::Arg(1), &aml::ONE);
    let set_bad_rev = aml::Or::new(&cdw1, &cdw1, &UNRECOGNIZED_REVISION);
    let if_bad_rev = aml::If::new(&bad_rev, alloc::vec![&set_bad_rev]);
    let masked = aml::NotEqual::new(&cdw3, &aml::Local(0));
    let set_masked = aml::Or::new(&cdw1, &cdw1, &CAPABILITIES_MASKED);
    let if_masked = aml::If::new(&masked, alloc::vec![&set_masked]);
    let store_granted = aml::Store::new(&cdw3, &aml::Local(0));
    let if_pci = aml::If::new(
        &is_pci,
        alloc::vec![
            &mk_cdw2,
            &mk_cdw3,
            &granted,
            &if_bad_rev,
            &if_masked,
            &store_granted
        ],
    );
    let set_bad_uuid = aml::Or::new(&cdw1, &cdw1, &UNRECOGNIZED_UUID);
    let else_other = aml::Else::new(alloc::vec![&set_bad_uuid]);
    let ret = aml::Return::new(&aml::Arg(3));
    to_bytes(&aml::Method::new(
        "_OSC".into(),
        4,
        false,
        alloc::vec![&mk_cdw1, &if_pci, &else_other, &ret],
    ))
}

/// A Device object from its name and already-serialized children (the
/// crate's `Device` only takes `&dyn Aml` children).
pub(crate) fn raw_device(name: &str, children: Vec<u8>) -> Vec<u8> {
    struct Raw(Vec<u8>);
    impl Aml for Raw {
        fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
            sink.vec(&self.0);
        }
    }
    to_bytes(&aml::Device::new(name.into(), alloc::vec![&Raw(children)]))
}

/// Processor device name for a UID: "C" + three hex digits.
pub(crate) fn cpu_name(uid: u32) -> Result<alloc::string::String, Error> {
    if uid > 0xfff {
        return Err(Error::Invalid("processor UID above 0xfff"));
    }
    Ok(alloc::format!("C{uid:03X}"))
}

/// Places the given tables (already complete), then an XSDT listing them,
/// and returns the RSDP.
pub(crate) fn finish(area: &mut TableArea, entries: &[u64]) -> Result<Built, Error> {
    let mut xsdt = acpi_tables::xsdt::XSDT::new(OEM_ID, OEM_TABLE_ID, OEM_REVISION);
    for &e in entries {
        xsdt.add_entry(e);
    }
    let xsdt_phys = area.place(&to_bytes(&xsdt), 16)?;
    let rsdp = acpi_tables::rsdp::Rsdp::new(OEM_ID, xsdt_phys);
    let mut out = [0u8; 36];
    out.copy_from_slice(&to_bytes(&rsdp));
    Ok(Built {
        rsdp: out,
        xsdt_phys,
    })
}

/// Sum of all bytes modulo 256; a valid table sums to zero.
pub fn byte_sum(data: &[u8]) -> u8 {
    data.iter().fold(0u8, |a, b| a.wrapping_add(*b))
}

#[cfg(test)]
pub(crate) mod testutil;

#[cfg(test)]
mod guid_tests {
    #[test]
    fn guid_matches_the_crates_parser() {
        use acpi_tables::Aml;
        let s = "33DB4D5B-1FF7-401C-9657-7441C03DD766";
        let mut a = alloc::vec::Vec::new();
        acpi_tables::aml::Uuid::new(s).to_aml_bytes(&mut a);
        let mut b = alloc::vec::Vec::new();
        acpi_tables::aml::BufferData::new(
            super::guid(b"33DB4D5B-1FF7-401C-9657-7441C03DD766").to_vec(),
        )
        .to_aml_bytes(&mut b);
        assert_eq!(a, b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn area_aligns_and_bounds() {
        let mut buf = [0xaau8; 64];
        {
            let mut area = TableArea::new(&mut buf, 0x1003);
            assert_eq!(area.place(&[1, 2, 3], 1), Ok(0x1003));
            assert_eq!(area.used(), 3);
            // Next 16-aligned physical address is 0x1010, i.e. offset 13.
            assert_eq!(area.place(&[4], 16), Ok(0x1010));
            assert_eq!(area.used(), 14);
            assert_eq!(area.place(&[0; 51], 1), Err(Error::NoSpace));
            assert_eq!(area.place(&[0; 50], 1), Ok(0x1011));
        }
        assert_eq!(&buf[..4], &[1, 2, 3, 0]);
        assert_eq!(buf[13], 4);
    }

    #[test]
    fn table_header_and_checksum() {
        let t = table(*b"TEST", 3, &[1, 2, 3, 4, 5]);
        assert_eq!(t.len(), 41);
        assert_eq!(&t[0..4], b"TEST");
        assert_eq!(u32::from_le_bytes(t[4..8].try_into().unwrap()), 41);
        assert_eq!(t[8], 3);
        assert_eq!(&t[10..16], &OEM_ID);
        assert_eq!(byte_sum(&t), 0);
    }

    #[test]
    fn prt_rejects_bad_entries() {
        let bad = [PrtEntry {
            device: 1,
            pin: 4,
            gsi: 16,
        }];
        assert!(prt_package(&bad).is_err());
    }
}
