//! ACPI tables built by the firmware from what it discovered.
//!
//! Tables and AML come from the `acpi_tables` crate where it has them; what
//! it lacks (x2APIC and override MADT entries, HPET, GTDT, IORT, a PL011
//! SPCR, a settable MADT revision) is written here with the small
//! [`Bytes`] writer, and so are the headers, MCFG, XSDT and RSDP, which
//! cost less that way; the DSDTs' AML is `emit`'s. Layout facts cite
//! the ACPI 6.5 specification ("ACPI 6.5 5.2.x").
//!
//! The builders only produce bytes: [`TableArea`] is a bump allocator over
//! memory the caller reserved (and later marks as ACPI reclaimable/NVS in
//! the memory map); the caller also places the returned RSDP where the
//! platform's OS looks for it.

use crate::platform::cpus::Vcpu;
use acpi_tables::Aml;
use alloc::vec::Vec;
use core::fmt;

pub mod adopt;
pub mod arm;
pub mod cpuhp;
pub mod emit;
pub mod loader;
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

/// Creator ID and revision in the headers the firmware writes: those of
/// the `acpi_tables` crate, which writes the FADT and MADT entries, so
/// every table names the same creator (the revision as the crate lays it
/// out, bytes 0, 0, 0, 1).
const CREATOR_ID: [u8; 4] = *b"RVAT";
const CREATOR_REVISION: [u8; 4] = [0, 0, 0, 1];

/// A complete table: standard header (ACPI 6.5 5.2.6: signature, length,
/// revision, checksum, OEM ID, OEM table ID, OEM revision, creator ID and
/// revision) with our OEM fields, then `body`, checksummed. Written here
/// rather than with `acpi_tables::sdt::Sdt` (whose generic appends cost
/// the image about 300 bytes more).
pub fn table(signature: [u8; 4], revision: u8, body: &[u8]) -> Vec<u8> {
    // Sized once: growing it copied each table again under TCG.
    let mut t = Vec::with_capacity(HEADER_LEN + body.len());
    t.resize(HEADER_LEN, 0);
    t.extend_from_slice(body);
    headed(signature, revision, t)
}

/// The standard header's length (ACPI 6.5 5.2.6).
pub(crate) const HEADER_LEN: usize = 36;

/// [`table`] for a body written after [`HEADER_LEN`] bytes kept at the
/// start of `t`: the header goes there, so the body (the DSDT's several
/// KiB) is not copied again.
pub(crate) fn headed(signature: [u8; 4], revision: u8, mut t: Vec<u8>) -> Vec<u8> {
    let mut h = Bytes(Vec::with_capacity(HEADER_LEN));
    h.bytes(&signature)
        .u32(t.len() as u32)
        .u8(revision)
        .u8(0)
        .bytes(&OEM_ID)
        .bytes(&OEM_TABLE_ID)
        .u32(OEM_REVISION)
        .bytes(&CREATOR_ID)
        .bytes(&CREATOR_REVISION);
    t[..HEADER_LEN].copy_from_slice(&h.0);
    t[9] = 0u8.wrapping_sub(byte_sum(&t));
    t
}

/// MCFG (PCI Firmware Specification 3.3 4.1.2, revision 1): 8 reserved
/// bytes, then one allocation for segment 0: the ECAM base bus 0 would
/// have, the segment, the first and last bus, 4 reserved bytes.
pub(crate) fn mcfg(base: u64, first_bus: u8, last_bus: u8) -> Vec<u8> {
    let mut b = Bytes::new();
    b.zeros(8)
        .u64(base)
        .u16(0)
        .u8(first_bus)
        .u8(last_bus)
        .zeros(4);
    table(*b"MCFG", 1, &b.0)
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

/// A constant piece of AML built on the host (`build/dsdt_aml.rs` and
/// its siblings, run by the build script `build/main.rs`).
macro_rules! aml_piece {
    ($name:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".aml"))
    };
}
pub(crate) use aml_piece;

/// `Name (_PRT, Package () { .. })` (ACPI 6.5 6.2.13) with direct GSIs:
/// each entry is {address = device << 16 | 0xffff (any function), pin,
/// source 0, GSI}.
pub(crate) fn prt(out: &mut Vec<u8>, prt: &[PrtEntry]) -> Result<(), Error> {
    // NumElements of a Package is one byte (ACPI 6.5 20.2.5.4 DefPackage).
    if prt.len() > 255 {
        return Err(Error::Invalid("more than 255 _PRT entries"));
    }
    emit::name(out, b"_PRT");
    let all = emit::package(out, prt.len() as u8);
    // QEMU virt's 128 entries take about 1.7 KiB: a two-byte PkgLength.
    emit::widen(out, all, 2);
    if prt.iter().any(|e| e.pin > 3 || e.device > 31) {
        return Err(Error::Invalid("_PRT entry with bad device or pin"));
    }
    let address = |e: &PrtEntry| (u64::from(e.device) << 16) | 0xffff;
    emit::int_packages(
        out,
        prt.iter()
            .map(|e| [address(e), u64::from(e.pin), 0, u64::from(e.gsi)]),
    );
    emit::close(out, all);
    Ok(())
}

/// The PCI host bridge `_OSC` (`dsdt_aml::osc` describes it): with
/// `native_hotplug` the OS is granted native PCIe hotplug; without, the
/// VMM hotplugs through ACPI and keeps it.
pub(crate) fn pci_osc(native_hotplug: bool) -> &'static [u8] {
    if native_hotplug {
        aml_piece!("osc_native")
    } else {
        aml_piece!("osc_acpi")
    }
}

/// Processor device name for a UID: "C" + three hex digits.
pub(crate) fn cpu_name(uid: u32) -> Result<emit::Seg, Error> {
    if uid > 0xfff {
        return Err(Error::Invalid("processor UID above 0xfff"));
    }
    let hex = |shift: u32| b"0123456789ABCDEF"[(uid >> shift) as usize & 15];
    Ok([b'C', hex(8), hex(4), hex(0)])
}

/// Processor device `c` (ACPI 6.5 8.4: ACPI0007, `_UID` the MADT's UID)
/// up to its status; [`emit::close`] ends it.
pub(crate) fn processor(out: &mut Vec<u8>, c: &Vcpu) -> Result<usize, Error> {
    let d = emit::device(out, &cpu_name(c.uid)?);
    emit::name_str(out, b"_HID", b"ACPI0007");
    emit::name_int(out, b"_UID", u64::from(c.uid));
    Ok(d)
}

/// A processor's `_STA` (ACPI 6.5 6.3.7) without runtime hotplug:
/// present, shown and functioning, and enabled only for enabled vCPUs, so
/// a hotplug-aware OS can enable the others later (Linux
/// Documentation/arch/arm64/cpu-hotplug.rst). A Name, not a method: Linux
/// reads every processor's `_STA` several times at boot, and a method is
/// parsed and run each time (at 123 arm64 vCPUs the methods cost Linux
/// 14 ms more than QEMU's `_STA`-less processors, `bench --scale`).
pub(crate) fn fixed_sta(out: &mut Vec<u8>, enabled: bool) {
    emit::name_int(out, b"_STA", if enabled { 0x0f } else { 0x0d });
}

/// The vCPU rules both machines' tables need
/// (`platform::cpus::validate`); `dup_hw_id` names a repeated hardware ID.
pub(crate) fn check_cpus(cpus: &[Vcpu], dup_hw_id: &'static str) -> Result<(), Error> {
    use crate::platform::cpus::CpuError;
    crate::platform::cpus::validate(cpus).map_err(|e| {
        Error::Invalid(match e {
            CpuError::Empty => "no vCPUs",
            CpuError::DuplicateUid(_) => "duplicate vCPU UID",
            CpuError::DuplicateHwId(_) => dup_hw_id,
            CpuError::NoneEnabled => "no enabled vCPU",
        })
    })
}

/// Places `tables` (complete) after those already `placed`, then an XSDT
/// listing them all (ACPI 6.5 5.2.8, revision 1), and returns the RSDP.
pub(crate) fn finish<'t>(
    area: &mut TableArea,
    placed: &[u64],
    tables: impl Iterator<Item = &'t Vec<u8>>,
) -> Result<Built, Error> {
    let mut list = Bytes::new();
    for &e in placed {
        list.u64(e);
    }
    for t in tables {
        list.u64(area.place(t, 16)?);
    }
    let xsdt_phys = area.place(&table(*b"XSDT", 1, &list.0), 16)?;
    Ok(Built {
        rsdp: rsdp(xsdt_phys),
        xsdt_phys,
    })
}

/// The RSDP (ACPI 6.5 5.2.5.3, revision 2): signature, checksum of the
/// first 20 bytes, OEM ID, revision, RSDT address (none), length 36, XSDT
/// address, extended checksum of all 36 bytes, 3 reserved bytes.
fn rsdp(xsdt_phys: u64) -> [u8; 36] {
    let mut r = [0u8; 36];
    r[0..8].copy_from_slice(b"RSD PTR ");
    r[9..15].copy_from_slice(&OEM_ID);
    r[15] = 2;
    r[20] = 36;
    r[24..32].copy_from_slice(&xsdt_phys.to_le_bytes());
    r[8] = 0u8.wrapping_sub(byte_sum(&r[..20]));
    r[32] = 0u8.wrapping_sub(byte_sum(&r));
    r
}

/// Sum of all bytes modulo 256; a valid table sums to zero.
pub fn byte_sum(data: &[u8]) -> u8 {
    // Eight bytes at a time, each lane added mod 256 without a carry into
    // the next: a checksum is the sum mod 256, so the lanes' sum is the
    // same. A byte at a time cost x86 a tenth of its instructions before
    // the kernel.
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut chunks = data.chunks_exact(8);
    let mut lanes = 0u64;
    for c in &mut chunks {
        let x = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        lanes = ((lanes & !HIGH) + (x & !HIGH)) ^ ((lanes ^ x) & HIGH);
    }
    let bytes = lanes.to_le_bytes();
    bytes
        .iter()
        .chain(chunks.remainder())
        .fold(0u8, |a, b| a.wrapping_add(*b))
}

// The tests' oracles (the same tables built another way, and a walker
// that reads tables as an OS does): test-only, never in the firmware image.
#[cfg(test)]
pub(crate) mod oracle;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sum_is_the_sum_mod_256() {
        // Every length around the 8-byte steps, bytes that carry in every
        // lane.
        let data: Vec<u8> = (0..300u32).map(|i| (i * 151 + 200) as u8).collect();
        for len in 0..data.len() {
            let want = data[..len].iter().fold(0u8, |a, b| a.wrapping_add(*b));
            assert_eq!(byte_sum(&data[..len]), want, "length {len}");
        }
        assert_eq!(byte_sum(&[0xff; 64]), 0xc0);
    }

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
    fn headers_mcfg_xsdt_rsdp_as_the_crate_writes_them() {
        let mut sdt =
            acpi_tables::sdt::Sdt::new(*b"TEST", 36, 3, OEM_ID, OEM_TABLE_ID, OEM_REVISION);
        sdt.append_slice(&[1, 2, 3]);
        assert_eq!(table(*b"TEST", 3, &[1, 2, 3]), sdt.as_slice());
        let mut m = acpi_tables::mcfg::MCFG::new(OEM_ID, OEM_TABLE_ID, OEM_REVISION);
        m.add_ecam(0x40_1000_0000, 0, 0x10, 0xfe);
        assert_eq!(mcfg(0x40_1000_0000, 0x10, 0xfe), to_bytes(&m));
        let mut buf = std::vec![0u8; 4096];
        let mut area = TableArea::new(&mut buf, 0x4800_0000);
        let built = finish(&mut area, &[0x4800_1000, 0x1_2345_6789], [].iter()).unwrap();
        let used = area.used();
        let mut x = acpi_tables::xsdt::XSDT::new(OEM_ID, OEM_TABLE_ID, OEM_REVISION);
        x.add_entry(0x4800_1000);
        x.add_entry(0x1_2345_6789);
        assert_eq!(&buf[..used], to_bytes(&x).as_slice());
        let r = acpi_tables::rsdp::Rsdp::new(OEM_ID, built.xsdt_phys);
        assert_eq!(built.rsdp.as_slice(), to_bytes(&r).as_slice());
    }

    #[test]
    fn prt_rejects_bad_entries() {
        let bad = [PrtEntry {
            device: 1,
            pin: 4,
            gsi: 16,
        }];
        assert!(prt(&mut Vec::new(), &bad).is_err());
    }

    #[test]
    fn prt_as_the_crate_writes_it() {
        let entries: Vec<PrtEntry> = (0..40u8)
            .map(|i| PrtEntry {
                device: i % 32,
                pin: i % 4,
                gsi: 16 + u32::from(i) * 1000,
            })
            .collect();
        let mut b = Vec::new();
        prt(&mut b, &entries).unwrap();
        let want = to_bytes(&acpi_tables::aml::Name::new(
            "_PRT".into(),
            &oracle::prt_package(&entries).unwrap(),
        ));
        assert_eq!(b, want);
    }

    #[test]
    fn osc_as_the_crate_writes_it() {
        for native in [true, false] {
            assert_eq!(pci_osc(native), oracle::pci_osc(native));
        }
    }

    #[test]
    fn cpu_names() {
        assert_eq!(cpu_name(0), Ok(*b"C000"));
        assert_eq!(cpu_name(0xabc), Ok(*b"CABC"));
        assert!(cpu_name(0x1000).is_err());
        for uid in [0, 9, 10, 0x1f, 0xfff] {
            let want = oracle::cpu_name(uid).unwrap();
            assert_eq!(&cpu_name(uid).unwrap(), want.as_bytes());
        }
    }
}
