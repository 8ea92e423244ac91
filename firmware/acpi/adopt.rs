//! Tables a VMM owns, adopted rather than rebuilt. cloud-hypervisor writes
//! its own ACPI tables (its DSDT holds hotplug AML at addresses only it
//! knows), so the firmware hands Linux those tables, but only after walking
//! them as an OS would and refusing what an OS would choke on.
//!
//! This walker is architecture-neutral: RSDP -> XSDT -> every table, and
//! the FADT's DSDT and FACS, each header checked (signature, length within
//! bounds, checksum, revision) and no two overlapping. The architecture's
//! own rules (which tables must be there, the FADT's flags, the MADT's
//! processors) live next to its table builder (`acpi::x86::adopt`). Memory
//! is read through [`PhysMem`], so host tests and fuzz targets feed byte
//! slices ([`Slice`]) and the firmware a view of guest RAM.

use super::byte_sum;
use alloc::vec::Vec;
use core::fmt;

/// Reads guest-physical memory.
pub trait PhysMem {
    /// Copies the bytes at `addr` into `buf`; false when any of them is
    /// not memory the caller may read.
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool;
}

/// Bytes placed at a guest-physical base: the tests' and fuzzers' memory.
pub struct Slice<'a> {
    pub base: u64,
    pub bytes: &'a [u8],
}

impl PhysMem for Slice<'_> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        let Some(off) = addr.checked_sub(self.base) else {
            return false;
        };
        let Ok(off) = usize::try_from(off) else {
            return false;
        };
        match off
            .checked_add(buf.len())
            .and_then(|end| self.bytes.get(off..end))
        {
            Some(src) => {
                buf.copy_from_slice(src);
                true
            }
            None => false,
        }
    }
}

/// A table signature ("APIC", "FACP", ...).
pub type Sig = [u8; 4];

/// Standard header length (ACPI 6.5 5.2.6).
pub const HEADER_LEN: usize = 36;
/// The ACPI 2.0+ RSDP's length (ACPI 6.5 5.2.5.3).
const RSDP_LEN: usize = 36;
/// Bounds no sane VMM reaches: cloud-hypervisor's largest table, the DSDT,
/// is a few KiB with four vCPUs; QEMU's x86 tables all fit 128 KiB steps.
/// They keep a hostile length from sizing an allocation.
pub const MAX_TABLE_LEN: u32 = 1 << 20;
pub const MAX_TABLES: usize = 64;
/// FACS: signature, length, ... (ACPI 6.5 5.2.10); it has no checksum.
const FACS_MIN_LEN: u32 = 64;

/// Why the VMM's tables were refused. Each names the table and where it
/// is, so the one error line says what to look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The bytes at `addr` are not readable memory.
    Unreadable { what: Sig, addr: u64, len: u64 },
    /// `addr` should hold `want` and does not.
    Signature { want: Sig, addr: u64 },
    /// The bytes of `sig` do not sum to zero.
    Checksum { sig: Sig, addr: u64 },
    /// The length field is impossible (`min` is what the table needs).
    Length {
        sig: Sig,
        addr: u64,
        len: u64,
        min: u64,
    },
    /// A revision the firmware does not accept (`min` the first it does).
    Revision { sig: Sig, revision: u8, min: u8 },
    /// Two tables of a kind that must be unique.
    Duplicate(Sig),
    /// Two tables share memory.
    Overlap(Sig, Sig),
    /// The XSDT lists more than [`MAX_TABLES`].
    TooMany(usize),
    /// A table the platform needs is not there.
    Missing(Sig),
    /// Anything else, with the table it is in.
    Invalid { sig: Sig, what: &'static str },
}

/// A signature as text; bytes that are not printable ASCII as `?`.
pub struct SigText(pub Sig);

impl fmt::Display for SigText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            let c = if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '?'
            };
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// The adopted tables' signatures, space-separated, for the console.
pub struct Sigs<'a>(pub &'a Adopted);

impl fmt::Display for Sigs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.0.tables.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            write!(f, "{sep}{}", SigText(t.signature()))?;
        }
        Ok(())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VMM's ACPI tables: ")?;
        match *self {
            Error::Unreadable { what, addr, len } => write!(
                f,
                "{} at {addr:#x} ({len} bytes) is not in readable memory",
                SigText(what)
            ),
            Error::Signature { want, addr } => {
                write!(f, "no {} signature at {addr:#x}", SigText(want))
            }
            Error::Checksum { sig, addr } => {
                write!(f, "{} at {addr:#x} has a bad checksum", SigText(sig))
            }
            Error::Length {
                sig,
                addr,
                len,
                min,
            } => write!(
                f,
                "{} at {addr:#x} claims {len} bytes (needs {min}..={MAX_TABLE_LEN})",
                SigText(sig)
            ),
            Error::Revision { sig, revision, min } => write!(
                f,
                "{} revision {revision} is older than {min}",
                SigText(sig)
            ),
            Error::Duplicate(sig) => write!(f, "more than one {}", SigText(sig)),
            Error::Overlap(a, b) => write!(f, "{} and {} overlap", SigText(a), SigText(b)),
            Error::TooMany(n) => write!(f, "XSDT lists {n} tables, more than {MAX_TABLES}"),
            Error::Missing(sig) => write!(f, "no {} table", SigText(sig)),
            Error::Invalid { sig, what } => write!(f, "{}: {what}", SigText(sig)),
        }
    }
}

/// One table as read from the VMM, checksum verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    pub addr: u64,
    pub bytes: Vec<u8>,
}

impl Table {
    pub fn signature(&self) -> Sig {
        [self.bytes[0], self.bytes[1], self.bytes[2], self.bytes[3]]
    }
    pub fn revision(&self) -> u8 {
        self.bytes[8]
    }
    /// The bytes after the standard header.
    pub fn body(&self) -> &[u8] {
        &self.bytes[HEADER_LEN..]
    }
}

/// The VMM's tables, walked and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Adopted {
    /// Where the RSDP is; Linux gets this address.
    pub rsdp: u64,
    pub xsdt: u64,
    /// The XSDT's tables in its order, then the FADT's DSDT.
    pub tables: Vec<Table>,
    /// The FACS the FADT names, if any (hardware-reduced ACPI has none).
    pub facs: Option<u64>,
}

impl Adopted {
    /// The first table with signature `sig`.
    pub fn find(&self, sig: Sig) -> Option<&Table> {
        self.tables.iter().find(|t| t.signature() == sig)
    }

    /// The table with signature `sig`, or [`Error::Missing`].
    pub fn need(&self, sig: Sig) -> Result<&Table, Error> {
        self.find(sig).ok_or(Error::Missing(sig))
    }
}

/// Little-endian fields of a table, bounds-checked.
pub fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
pub fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
pub fn le64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Tables an XSDT must not list: the root tables themselves, and the DSDT
/// and FACS, which only the FADT names (ACPI 6.5 5.2.9, 5.2.11.1).
const NOT_IN_XSDT: [Sig; 4] = [*b"RSDT", *b"XSDT", *b"DSDT", *b"FACS"];
/// The one table kind that may repeat (ACPI 6.5 5.2.11.2).
const MAY_REPEAT: Sig = *b"SSDT";

/// Walks the VMM's tables from the RSDP at `rsdp`.
pub fn adopt(mem: &impl PhysMem, rsdp: u64) -> Result<Adopted, Error> {
    let xsdt_addr = read_rsdp(mem, rsdp)?;
    let xsdt = read_table(mem, xsdt_addr, Some(*b"XSDT"))?;
    // XSDT revision 1 (ACPI 6.5 5.2.8).
    min_revision(&xsdt, 1)?;
    let entries = xsdt.body();
    if entries.len() % 8 != 0 {
        return Err(Error::Invalid {
            sig: *b"XSDT",
            what: "length is not a whole number of 64-bit entries",
        });
    }
    let n = entries.len() / 8;
    if n > MAX_TABLES {
        return Err(Error::TooMany(n));
    }
    let mut tables: Vec<Table> = Vec::with_capacity(n + 1);
    for e in entries.chunks_exact(8) {
        let addr = u64::from_le_bytes(e.try_into().unwrap_or([0; 8]));
        if addr == 0 {
            return Err(Error::Invalid {
                sig: *b"XSDT",
                what: "an entry is a null address",
            });
        }
        let t = read_table(mem, addr, None)?;
        let sig = t.signature();
        if !sig
            .iter()
            .all(|&b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(Error::Invalid {
                sig,
                what: "signature is not upper-case letters, digits or _",
            });
        }
        if NOT_IN_XSDT.contains(&sig) {
            return Err(Error::Invalid {
                sig,
                what: "listed in the XSDT, where it does not belong",
            });
        }
        if sig != MAY_REPEAT && tables.iter().any(|o| o.signature() == sig) {
            return Err(Error::Duplicate(sig));
        }
        tables.push(t);
    }
    let mut facs = None;
    if let Some(fadt) = tables.iter().find(|t| t.signature() == *b"FACP") {
        let (dsdt, f) = fadt_pointers(fadt)?;
        facs = f;
        if let Some(f) = facs {
            check_facs(mem, f)?;
        }
        let dsdt = read_table(mem, dsdt, Some(*b"DSDT"))?;
        // DSDT revision 2 and up has 64-bit integers (ACPI 6.5 5.2.11.1);
        // 1 is still valid, with 32-bit ones.
        min_revision(&dsdt, 1)?;
        tables.push(dsdt);
    }
    // Every range, the roots' included, apart from the others.
    let mut ranges: Vec<(u64, u64, Sig)> = Vec::with_capacity(tables.len() + 3);
    ranges.push((rsdp, RSDP_LEN as u64, *b"RSD "));
    ranges.push((xsdt_addr, xsdt.bytes.len() as u64, *b"XSDT"));
    if let Some(f) = facs {
        ranges.push((f, u64::from(FACS_MIN_LEN), *b"FACS"));
    }
    ranges.extend(
        tables
            .iter()
            .map(|t| (t.addr, t.bytes.len() as u64, t.signature())),
    );
    // At most MAX_TABLES + 3 ranges: no core sort instantiated for them.
    crate::platform::sort_small(&mut ranges);
    for w in ranges.windows(2) {
        // read_table already refused ranges that wrap.
        if w[0].0 + w[0].1 > w[1].0 {
            return Err(Error::Overlap(w[0].2, w[1].2));
        }
    }
    Ok(Adopted {
        rsdp,
        xsdt: xsdt_addr,
        tables,
        facs,
    })
}

/// Checks the RSDP (ACPI 6.5 5.2.5.3) and returns its XSDT address: the
/// first 20 bytes sum to zero; revision 2 and up has the length, the XSDT
/// address and the extended checksum over all of it.
fn read_rsdp(mem: &impl PhysMem, addr: u64) -> Result<u64, Error> {
    const SIG: Sig = *b"RSD ";
    let mut r = [0u8; RSDP_LEN];
    if !mem.read(addr, &mut r) {
        return Err(Error::Unreadable {
            what: SIG,
            addr,
            len: RSDP_LEN as u64,
        });
    }
    if &r[..8] != b"RSD PTR " {
        return Err(Error::Signature {
            want: *b"RSD ",
            addr,
        });
    }
    if byte_sum(&r[..20]) != 0 {
        return Err(Error::Checksum { sig: SIG, addr });
    }
    if r[15] < 2 {
        return Err(Error::Revision {
            sig: SIG,
            revision: r[15],
            min: 2,
        });
    }
    let len = le32(&r, 20).unwrap_or(0);
    // A later revision may grow the RSDP; this one reads the 36 bytes it
    // knows, so only that exact length can be checksummed.
    if len as usize != RSDP_LEN {
        return Err(Error::Length {
            sig: SIG,
            addr,
            len: u64::from(len),
            min: RSDP_LEN as u64,
        });
    }
    if byte_sum(&r) != 0 {
        return Err(Error::Invalid {
            sig: SIG,
            what: "bad extended checksum",
        });
    }
    match le64(&r, 24) {
        Some(x) if x != 0 => Ok(x),
        _ => Err(Error::Invalid {
            sig: SIG,
            what: "no XSDT address",
        }),
    }
}

/// Reads the table at `addr`: header, a length within bounds, the whole
/// table, its checksum; `want` its signature when the pointer says what
/// it points at.
pub fn read_table(mem: &impl PhysMem, addr: u64, want: Option<Sig>) -> Result<Table, Error> {
    let mut h = [0u8; HEADER_LEN];
    let what = want.unwrap_or(*b"????");
    if !mem.read(addr, &mut h) {
        return Err(Error::Unreadable {
            what,
            addr,
            len: HEADER_LEN as u64,
        });
    }
    let sig = [h[0], h[1], h[2], h[3]];
    if let Some(w) = want {
        if sig != w {
            return Err(Error::Signature { want: w, addr });
        }
    }
    let len = le32(&h, 4).unwrap_or(0);
    if (len as usize) < HEADER_LEN
        || len > MAX_TABLE_LEN
        || addr.checked_add(u64::from(len)).is_none()
    {
        return Err(Error::Length {
            sig,
            addr,
            len: u64::from(len),
            min: HEADER_LEN as u64,
        });
    }
    let mut bytes = alloc::vec![0u8; len as usize];
    if !mem.read(addr, &mut bytes) {
        return Err(Error::Unreadable {
            what: sig,
            addr,
            len: u64::from(len),
        });
    }
    if byte_sum(&bytes) != 0 {
        return Err(Error::Checksum { sig, addr });
    }
    Ok(Table { addr, bytes })
}

/// `Error::Revision` unless `t` is at least revision `min`.
pub fn min_revision(t: &Table, min: u8) -> Result<(), Error> {
    if t.revision() < min {
        return Err(Error::Revision {
            sig: t.signature(),
            revision: t.revision(),
            min,
        });
    }
    Ok(())
}

/// FADT field offsets (ACPI 6.5 table 5.9): FIRMWARE_CTRL (32-bit FACS),
/// DSDT (32-bit), X_FIRMWARE_CTRL, X_DSDT.
const FADT_FACS32: usize = 36;
const FADT_DSDT32: usize = 40;
const FADT_X_FACS: usize = 132;
const FADT_X_DSDT: usize = 140;

/// The FADT's DSDT and FACS: the 64-bit field when the FADT is long
/// enough to have it and it is set, else the 32-bit one; both set and
/// different is refused (ACPI 6.5 table 5.9 allows only one to be used).
fn fadt_pointers(fadt: &Table) -> Result<(u64, Option<u64>), Error> {
    let b = &fadt.bytes;
    let pick = |p32: usize, p64: usize, what: &'static str| -> Result<u64, Error> {
        let a32 = le32(b, p32).map_or(0, u64::from);
        let a64 = le64(b, p64).unwrap_or(0);
        match (a32, a64) {
            (a, 0) | (0, a) => Ok(a),
            (a, x) if a == x => Ok(a),
            _ => Err(Error::Invalid {
                sig: *b"FACP",
                what,
            }),
        }
    };
    if b.len() < FADT_DSDT32 + 4 {
        return Err(Error::Length {
            sig: *b"FACP",
            addr: fadt.addr,
            len: b.len() as u64,
            min: (FADT_DSDT32 + 4) as u64,
        });
    }
    let dsdt = pick(FADT_DSDT32, FADT_X_DSDT, "DSDT and X_DSDT differ")?;
    if dsdt == 0 {
        return Err(Error::Invalid {
            sig: *b"FACP",
            what: "names no DSDT",
        });
    }
    let facs = pick(
        FADT_FACS32,
        FADT_X_FACS,
        "FIRMWARE_CTRL and X_FIRMWARE_CTRL differ",
    )?;
    Ok((dsdt, (facs != 0).then_some(facs)))
}

/// The FACS's signature and length (it has no checksum).
fn check_facs(mem: &impl PhysMem, addr: u64) -> Result<(), Error> {
    let mut h = [0u8; 8];
    if !mem.read(addr, &mut h) {
        return Err(Error::Unreadable {
            what: *b"FACS",
            addr,
            len: 8,
        });
    }
    if &h[..4] != b"FACS" {
        return Err(Error::Signature {
            want: *b"FACS",
            addr,
        });
    }
    let len = le32(&h, 4).unwrap_or(0);
    let mut all = [0u8; FACS_MIN_LEN as usize];
    if !(FACS_MIN_LEN..=MAX_TABLE_LEN).contains(&len) || !mem.read(addr, &mut all) {
        return Err(Error::Length {
            sig: *b"FACS",
            addr,
            len: u64::from(len),
            min: u64::from(FACS_MIN_LEN),
        });
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
