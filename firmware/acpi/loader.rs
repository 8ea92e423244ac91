//! QEMU's table-loader script run as its author meant it, for the machine
//! whose tables Hotstub adopts from QEMU rather than builds (x86
//! `microvm`: its DSDT describes the virtio-mmio transports QEMU filled,
//! its GED and power button, and with `pcie=on` the PCIe host, so Linux
//! gets what QEMU made). The script (hw/acpi/bios-linker-loader.c) asks
//! the firmware to place fw_cfg files in memory (ALLOCATE), to add one
//! file's address to a pointer field in another (ADD_POINTER) and to fix
//! checksums (ADD_CHECKSUM). Parsing and linking are pure: the caller
//! reads the files, picks their addresses ([`place`]) and copies the
//! linked bytes to memory; `acpi::adopt` then walks the result as Linux
//! will.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Commands are 128 bytes: a le32 command, then its fields; file names
/// are NUL-padded to 56 bytes (FW_CFG_MAX_FILE_PATH). Command numbers
/// and zones as in hw/acpi/bios-linker-loader.c.
const ENTRY: usize = 128;
const NAME: usize = 56;
const ALLOCATE: u32 = 1;
const ADD_POINTER: u32 = 2;
const ADD_CHECKSUM: u32 = 3;
const WRITE_POINTER: u32 = 4;
const ZONE_HIGH: u8 = 1;
const ZONE_FSEG: u8 = 2;
/// More commands than any QEMU machine writes (microvm: a dozen); keeps a
/// hostile script from sizing the work.
const MAX_COMMANDS: usize = 1024;

/// The RSDP's file, allocated in the F segment (ACPI_BUILD_RSDP_FILE,
/// include/hw/acpi/aml-build.h).
pub const RSDP_FILE: &str = "etc/acpi/rsdp";

/// Where an allocation must lie: anywhere below 4 GiB, or in the BIOS
/// area that the legacy RSDP scan covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Zone {
    High,
    FSeg,
}

/// One ALLOCATE: load `file` at an address aligned to `align`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alloc {
    pub file: String,
    pub align: u64,
    pub zone: Zone,
}

/// A file as placed: its name, address and bytes (linked in place).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    pub name: String,
    pub addr: u64,
    pub bytes: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The script is not a whole number of commands, or too long.
    Shape,
    /// A file name without a terminating NUL or not UTF-8.
    Name,
    /// An ALLOCATE with an alignment that is not a power of two, or an
    /// unknown zone.
    Allocation,
    /// A command names a file no ALLOCATE placed before it.
    Unallocated(String),
    /// A pointer or checksum range lies outside its file (the file named).
    Range(String),
    /// A pointer field's size is not 1, 2, 4 or 8, or the address does
    /// not fit it.
    Pointer(String),
    /// The allocations do not fit the memory offered for their zone.
    NoRoom(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QEMU's table-loader script: ")?;
        match self {
            Error::Shape => write!(f, "not a whole number of 128-byte commands"),
            Error::Name => write!(f, "a file name is not NUL-terminated UTF-8"),
            Error::Allocation => write!(f, "an allocation has a bad alignment or zone"),
            Error::Unallocated(n) => write!(f, "{n} is used before it is allocated"),
            Error::Range(n) => write!(f, "a command reaches outside {n}"),
            Error::Pointer(n) => write!(f, "a pointer in {n} has a bad size or overflows"),
            Error::NoRoom(n) => write!(f, "no room for {n}"),
        }
    }
}

/// One command, fields still raw. File names are bytes up to their NUL:
/// only an ALLOCATE's must be UTF-8 (it becomes the fw_cfg name to read);
/// the others are compared with allocated names, which a name that is
/// not UTF-8 never equals.
enum Command<'a> {
    Allocate {
        file: &'a [u8],
        align: u64,
        zone: Zone,
    },
    AddPointer {
        dest: &'a [u8],
        src: &'a [u8],
        offset: u32,
        size: u8,
    },
    AddChecksum {
        file: &'a [u8],
        offset: u32,
        start: u32,
        length: u32,
    },
    /// Writes an address back to a writable fw_cfg file (QEMU's vmgenid
    /// and GHES): not done, since no file of microvm's tables needs it.
    WritePointer,
    /// Command 0 pads; others are unknown and skipped, as SeaBIOS does.
    Other,
}

/// The bytes of a NUL-padded name field up to its NUL, found eight bytes
/// a step: the script is parsed on every microvm boot, which `bench
/// --icount` counts instruction by instruction.
fn name(field: &[u8]) -> Result<&[u8], Error> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut at = 0;
    for w in field.chunks_exact(8) {
        let v = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        // The has-zero-byte test: its lowest set bit is the high bit of
        // the first zero byte (bits above it may be set spuriously).
        let zero = v.wrapping_sub(ONES) & !v & HIGHS;
        if zero != 0 {
            return Ok(&field[..at + zero.trailing_zeros() as usize / 8]);
        }
        at += 8;
    }
    let end = at
        + field[at..]
            .iter()
            .position(|&b| b == 0)
            .ok_or(Error::Name)?;
    Ok(&field[..end])
}

/// A name that must be text: an ALLOCATE's, or one for a message.
fn text(name: &[u8]) -> Result<&str, Error> {
    core::str::from_utf8(name).map_err(|_| Error::Name)
}

/// A name for an error message.
fn lossy(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

/// The le32 at `at` of a command (0 past its end, which the fixed
/// offsets used never reach).
fn u32_at(e: &[u8], at: usize) -> u32 {
    e.get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

/// The script's commands in order, each parsed when reached.
fn commands(script: &[u8]) -> Result<impl Iterator<Item = Result<Command<'_>, Error>>, Error> {
    if !script.len().is_multiple_of(ENTRY) || script.len() / ENTRY > MAX_COMMANDS {
        return Err(Error::Shape);
    }
    Ok(script.chunks_exact(ENTRY).map(command))
}

fn command(e: &[u8]) -> Result<Command<'_>, Error> {
    let file = &e[4..4 + NAME];
    let second = &e[4 + NAME..4 + 2 * NAME];
    let after1 = 4 + NAME;
    let after2 = 4 + 2 * NAME;
    Ok(match u32_at(e, 0) {
        ALLOCATE => {
            let align = u64::from(u32_at(e, after1));
            let zone = match e[after1 + 4] {
                ZONE_HIGH => Zone::High,
                ZONE_FSEG => Zone::FSeg,
                _ => return Err(Error::Allocation),
            };
            if !align.is_power_of_two() {
                return Err(Error::Allocation);
            }
            let file = name(file)?;
            text(file)?;
            Command::Allocate { file, align, zone }
        }
        ADD_POINTER => Command::AddPointer {
            dest: name(file)?,
            src: name(second)?,
            offset: u32_at(e, after2),
            size: e[after2 + 4],
        },
        ADD_CHECKSUM => Command::AddChecksum {
            file: name(file)?,
            offset: u32_at(e, after1),
            start: u32_at(e, after1 + 4),
            length: u32_at(e, after1 + 8),
        },
        WRITE_POINTER => Command::WritePointer,
        _ => Command::Other,
    })
}

/// The files `script` allocates, in its order; a file allocated twice
/// keeps its first allocation, as SeaBIOS does.
pub fn allocations(script: &[u8]) -> Result<Vec<Alloc>, Error> {
    let mut out: Vec<Alloc> = Vec::new();
    for c in commands(script)? {
        if let Command::Allocate { file, align, zone } = c? {
            if !out.iter().any(|o| o.file.as_bytes() == file) {
                out.push(Alloc {
                    file: text(file)?.into(),
                    align,
                    zone,
                });
            }
        }
    }
    Ok(out)
}

/// Addresses for `allocs` whose files have `sizes` bytes: each zone's
/// files one after another from the start of its area `[start, end)`,
/// aligned as asked.
pub fn place(
    allocs: &[Alloc],
    sizes: &[u64],
    high: (u64, u64),
    fseg: (u64, u64),
) -> Result<Vec<u64>, Error> {
    let (mut next_high, mut next_fseg) = (high.0, fseg.0);
    let mut out = Vec::with_capacity(allocs.len());
    for (a, &size) in allocs.iter().zip(sizes) {
        let (next, end) = match a.zone {
            Zone::High => (&mut next_high, high.1),
            Zone::FSeg => (&mut next_fseg, fseg.1),
        };
        let at = next
            .checked_next_multiple_of(a.align)
            .filter(|at| at.checked_add(size).is_some_and(|e| e <= end))
            .ok_or_else(|| Error::NoRoom(a.file.clone()))?;
        *next = at + size;
        out.push(at);
    }
    Ok(out)
}

/// Runs the pointer and checksum commands of `script` over `blobs` (every
/// file the script allocates, at its address); returns how many
/// WRITE_POINTER commands were passed over.
pub fn link(script: &[u8], blobs: &mut [Blob]) -> Result<usize, Error> {
    // The blobs' indices, in the order the script allocated them: a
    // command may use only a file allocated before it.
    let mut allocated: Vec<usize> = Vec::new();
    let used = |allocated: &[usize], blobs: &[Blob], n: &[u8]| {
        allocated
            .iter()
            .copied()
            .find(|&i| blobs[i].name.as_bytes() == n)
            .ok_or_else(|| Error::Unallocated(lossy(n)))
    };
    let mut skipped = 0;
    for c in commands(script)? {
        match c? {
            Command::Allocate { file, .. } => {
                let i = blobs
                    .iter()
                    .position(|b| b.name.as_bytes() == file)
                    .ok_or_else(|| Error::Unallocated(lossy(file)))?;
                allocated.push(i);
            }
            Command::AddPointer {
                dest,
                src,
                offset,
                size,
            } => {
                let add = blobs[used(&allocated, blobs, src)?].addr;
                let d = used(&allocated, blobs, dest)?;
                add_pointer(&mut blobs[d].bytes, offset, size, add)
                    .ok_or_else(|| Error::Pointer(lossy(dest)))?;
            }
            Command::AddChecksum {
                file,
                offset,
                start,
                length,
            } => {
                let i = used(&allocated, blobs, file)?;
                add_checksum(&mut blobs[i].bytes, offset, start, length)
                    .ok_or_else(|| Error::Range(lossy(file)))?;
            }
            Command::WritePointer => skipped += 1,
            Command::Other => {}
        }
    }
    Ok(skipped)
}

/// The placed files as guest memory, for `acpi::adopt`'s walk of what
/// Linux will find: a read must lie within one file.
pub struct Placed<'a>(pub &'a [Blob]);

impl super::adopt::PhysMem for Placed<'_> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        self.0.iter().any(|b| {
            super::adopt::Slice {
                base: b.addr,
                bytes: &b.bytes,
            }
            .read(addr, buf)
        })
    }
}

/// Adds `add` to the little-endian unsigned field of `size` bytes at
/// `offset`; None when the field is outside `b`, its size is not 1, 2, 4
/// or 8, or the sum does not fit it.
fn add_pointer(b: &mut [u8], offset: u32, size: u8, add: u64) -> Option<()> {
    let size = usize::from(size);
    if ![1, 2, 4, 8].contains(&size) {
        return None;
    }
    let at = usize::try_from(offset).ok()?;
    let field = b.get_mut(at..at.checked_add(size)?)?;
    let mut v = [0u8; 8];
    v[..size].copy_from_slice(field);
    let sum = u64::from_le_bytes(v).checked_add(add)?;
    if size < 8 && sum >> (8 * size) != 0 {
        return None;
    }
    field.copy_from_slice(&sum.to_le_bytes()[..size]);
    Some(())
}

/// Adds minus the byte sum of `[start, start + length)` to the byte at
/// `offset` (the command's definition: with that byte zero and inside the
/// range, the range then sums to zero).
fn add_checksum(b: &mut [u8], offset: u32, start: u32, length: u32) -> Option<()> {
    let start = usize::try_from(start).ok()?;
    let end = start.checked_add(usize::try_from(length).ok()?)?;
    let sum = super::byte_sum(b.get(start..end)?);
    let c = b.get_mut(usize::try_from(offset).ok()?)?;
    *c = c.wrapping_sub(sum);
    Some(())
}

#[cfg(test)]
mod tests;
