//! The PVH boot protocol's start info, which a VMM that loads the
//! firmware as a PVH ELF (cloud-hypervisor's `--firmware`, QEMU's
//! `-kernel`) leaves in memory and names in EBX at the entry. Layout from
//! Xen's public header `arch-x86/hvm/start_info.h` (the protocol's
//! definition, docs/misc/pvh.pandoc): a 56-byte header (magic, version,
//! flags, modules, command line, RSDP; from version 1 the memory map) and
//! 24-byte memory map entries of e820 types.
//!
//! Everything here comes from the VMM, so it is read through
//! [`PhysMem`], every address and count bounded before it is used.

use crate::acpi::adopt::{le32, le64, PhysMem};
use crate::platform::memmap::{self, MemoryMap};
use alloc::vec::Vec;
use core::fmt;

/// `XEN_HVM_START_MAGIC_VALUE` (start_info.h).
pub const MAGIC: u32 = 0x336e_c578;
/// Header fields (start_info.h `struct hvm_start_info`).
const HEADER_V0: usize = 40;
const HEADER_V1: usize = 56;
const VERSION: usize = 4;
const CMDLINE: usize = 24;
const RSDP: usize = 32;
const MEMMAP: usize = 40;
const MEMMAP_ENTRIES: usize = 48;
/// `struct hvm_memmap_table_entry`: le64 address, le64 size, le32 type
/// (e820's numbers), le32 reserved.
const MEMMAP_ENTRY: usize = 24;
/// Linux takes at most 128 e820 entries from the zero page (bootparam.h
/// E820_MAX_ENTRIES_ZEROPAGE); cloud-hypervisor writes a handful.
pub const MAX_MEMMAP_ENTRIES: usize = 128;
/// Longest command line read; the firmware passes it on after the boot
/// entry's (Linux's x86 COMMAND_LINE_SIZE is 2048).
pub const MAX_CMDLINE: usize = 2048;

/// Why the start info was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The start info (or the part named) is not readable memory.
    Unreadable(&'static str, u64),
    BadMagic(u32),
    /// Version 0 has no memory map; a later version is read as 1.
    NoMemoryMap(u32),
    TooManyEntries(u32),
    /// The command line has no NUL within [`MAX_CMDLINE`] bytes.
    CmdlineTooLong,
    MemoryMap(memmap::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PVH start info: ")?;
        match *self {
            Error::Unreadable(what, at) => write!(f, "{what} at {at:#x} is not readable memory"),
            Error::BadMagic(m) => write!(f, "magic {m:#x}, not {MAGIC:#x}"),
            Error::NoMemoryMap(v) => write!(f, "version {v} has no memory map"),
            Error::TooManyEntries(n) => {
                write!(f, "{n} memory map entries, more than {MAX_MEMMAP_ENTRIES}")
            }
            Error::CmdlineTooLong => {
                write!(f, "command line longer than {MAX_CMDLINE} bytes")
            }
            Error::MemoryMap(e) => write!(f, "{e}"),
        }
    }
}

/// What the firmware takes from the start info.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartInfo {
    pub version: u32,
    /// The memory map, RAM first and the VMM's other ranges laid over it.
    pub map: MemoryMap,
    /// The ACPI RSDP, 0 when the VMM gave none.
    pub rsdp: u64,
    /// The command line without its NUL; empty when there is none.
    pub cmdline: Vec<u8>,
}

/// Reads the start info at `addr`.
pub fn parse(mem: &impl PhysMem, addr: u64) -> Result<StartInfo, Error> {
    let mut h = [0u8; HEADER_V1];
    if !mem.read(addr, &mut h[..HEADER_V0]) {
        return Err(Error::Unreadable("the start info", addr));
    }
    let magic = le32(&h, 0).unwrap_or(0);
    if magic != MAGIC {
        return Err(Error::BadMagic(magic));
    }
    let version = le32(&h, VERSION).unwrap_or(0);
    if version < 1 {
        return Err(Error::NoMemoryMap(version));
    }
    if !mem.read(addr, &mut h) {
        return Err(Error::Unreadable("the start info", addr));
    }
    let n = le32(&h, MEMMAP_ENTRIES).unwrap_or(0);
    if n as usize > MAX_MEMMAP_ENTRIES {
        return Err(Error::TooManyEntries(n));
    }
    let at = le64(&h, MEMMAP).unwrap_or(0);
    let mut raw = alloc::vec![0u8; n as usize * MEMMAP_ENTRY];
    if at == 0 || !mem.read(at, &mut raw) {
        return Err(Error::Unreadable("the memory map", at));
    }
    // Into QEMU's e820 file format (20-byte entries), whose parser lays
    // the VMM's reserved ranges over its RAM.
    let e820: Vec<u8> = raw
        .chunks_exact(MEMMAP_ENTRY)
        .flat_map(|e| e[..20].iter().copied())
        .collect();
    let map = MemoryMap::from_qemu_e820(&e820).map_err(Error::MemoryMap)?;
    let cmdline = match le64(&h, CMDLINE).unwrap_or(0) {
        0 => Vec::new(),
        at => read_cmdline(mem, at)?,
    };
    Ok(StartInfo {
        version,
        map,
        rsdp: le64(&h, RSDP).unwrap_or(0),
        cmdline,
    })
}

/// The NUL-terminated string at `at`, read in small steps so that a line
/// near the end of memory is still found.
fn read_cmdline(mem: &impl PhysMem, at: u64) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    while out.len() < MAX_CMDLINE {
        let a = at
            .checked_add(out.len() as u64)
            .ok_or(Error::Unreadable("the command line", at))?;
        if !mem.read(a, &mut b) {
            return Err(Error::Unreadable("the command line", at));
        }
        if b[0] == 0 {
            return Ok(out);
        }
        out.push(b[0]);
    }
    Err(Error::CmdlineTooLong)
}

#[cfg(test)]
mod tests;
