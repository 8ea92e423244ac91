//! cloud-hypervisor's arm64 ACPI tables, adopted and checked rather than
//! rebuilt: its DSDT holds the hotplug AML for devices at addresses only
//! cloud-hypervisor knows (PCI hotplug `\_SB.PHPR`, the GED's register),
//! so the firmware keeps every table where CH wrote it and hands Linux an
//! RSDP that leads to them.
//!
//! Where they are: CH writes them from `ACPI_START` = RAM base + the 2 MiB
//! it keeps for the DT (0x4020_0000, at most `ACPI_MAX_SIZE` = 2 MiB, the
//! RSDP first: `RSDP_POINTER` in its `arch/src/aarch64/layout.rs`); its DT
//! names no address for them (no `/chosen` property, no reserved-memory
//! node), so that fixed address is the contract, the one EDK2's CloudHv
//! platform reads too. Every pointer the walk follows must stay inside that
//! window: a table elsewhere is refused, never read.
//!
//! What is checked ([`adopt`]): the RSDP (both checksums, revision 2,
//! length), the XSDT (revision 1, whole entries), every table it lists and
//! the DSDT (signature, length inside the window, checksum), the FADT (ACPI
//! 5.1 or later, hardware-reduced, PSCI with the DT's conduit), the MADT
//! (its subtables whole; the enabled GICCs the DT's CPUs one for one, by
//! MPIDR, UIDs unique; the distributor, redistributors and ITS where the DT
//! has them), a GTDT (Linux's arch timer needs it in ACPI mode) and the
//! MCFG's ECAM where the DT has a host bridge.
//!
//! What is fixed ([`Adopted::fix`]): CH's arm64 DSDT refers to the CPU
//! hotplug controller `\_SB.PRES` from its processor container's methods
//! (`CSTA`, `CEJ0`, `CSCN`, reached from the GED's CPU bit) but defines it
//! only on x86, so those methods abort with AE_NOT_FOUND. An SSDT defines
//! `\_SB.PRES` with the objects the methods use, consistent with the MADT:
//! a device that is not present (arm64 CH has no CPU hotplug: KVM refuses
//! new vCPUs once the GIC is up), its `CPEN` 1 for the vCPUs with an
//! enabled GICC (selected by `CSEL`, the vCPU index CH's `_UID`s use), no
//! insert or remove pending. An SSDT rather than a DSDT patch: CH's AML
//! stays byte for byte as CH wrote it, and the definition is added only
//! when the DSDT refers to `\_SB.PRES` without defining it, so a CH that
//! defines it gets no duplicate.

use super::super::{byte_sum, emit, finish, table, TableArea, DSDT_REVISION};
use crate::platform::dt::Board;
use crate::psci::Conduit;
use alloc::vec::Vec;
use core::fmt;

/// CH's `ACPI_START`/`RSDP_POINTER` and `ACPI_MAX_SIZE` (see above).
pub const CH_RSDP: u64 = 0x4020_0000;
pub const CH_ACPI_MAX: u64 = 2 << 20;

/// Why CH's tables are refused: the table (or "RSDP"), where it is, what
/// is wrong. One line on the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    pub what: [u8; 4],
    pub at: u64,
    pub why: &'static str,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let name = core::str::from_utf8(&self.what).unwrap_or("????");
        write!(
            f,
            "cloud-hypervisor's ACPI tables: {name} at {:#x}: {}",
            self.at, self.why
        )
    }
}

fn bad(what: [u8; 4], at: u64, why: &'static str) -> Error {
    Error { what, at, why }
}

/// One table as the walk found it, checksum and length checked.
#[derive(Clone, Copy, Debug)]
pub struct Table<'a> {
    pub addr: u64,
    pub bytes: &'a [u8],
}

impl Table<'_> {
    pub fn signature(&self) -> [u8; 4] {
        [self.bytes[0], self.bytes[1], self.bytes[2], self.bytes[3]]
    }
    pub fn revision(&self) -> u8 {
        self.bytes[8]
    }
}

/// The walk's result: the tables the XSDT lists (in its order) and the
/// DSDT, and the span of the window they occupy (to reserve it).
pub struct Walked<'a> {
    pub rsdp: u64,
    pub tables: Vec<Table<'a>>,
    pub dsdt: Table<'a>,
    /// `[start, end)`: from the RSDP to the end of the last table.
    pub span: (u64, u64),
}

impl<'a> Walked<'a> {
    /// The one table with `sig`; more than one is ambiguous.
    fn one(&self, sig: &[u8; 4]) -> Result<Option<Table<'a>>, Error> {
        let mut it = self.tables.iter().filter(|t| &t.signature() == sig);
        let first = it.next().copied();
        match (first, it.next()) {
            (Some(_), Some(t)) => Err(bad(*sig, t.addr, "listed twice in the XSDT")),
            _ => Ok(first),
        }
    }
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes([
        b[o],
        b[o + 1],
        b[o + 2],
        b[o + 3],
        b[o + 4],
        b[o + 5],
        b[o + 6],
        b[o + 7],
    ])
}

/// The walk over `mem`, the window at physical `base`: RSDP at `rsdp`,
/// then the XSDT and what it lists, then the FADT's DSDT. Generic (no arm
/// facts): the arm checks are [`adopt`]'s.
pub fn walk(mem: &[u8], base: u64, rsdp: u64) -> Result<Walked<'_>, Error> {
    const R: [u8; 4] = *b"RSDP";
    // The bytes at `addr`, `len` long, inside the window.
    let at = |what, addr: u64, len: u64| -> Result<&[u8], Error> {
        let off = addr
            .checked_sub(base)
            .filter(|o| o.checked_add(len).is_some_and(|e| e <= mem.len() as u64))
            .ok_or(bad(what, addr, "outside cloud-hypervisor's ACPI area"))?;
        Ok(&mem[off as usize..(off + len) as usize])
    };
    // ACPI 6.5 5.2.5.3: "RSD PTR ", checksum of the first 20 bytes,
    // revision 2 for the XSDT at 24, length 36, extended checksum.
    let r = at(R, rsdp, 36)?;
    if &r[..8] != b"RSD PTR " {
        return Err(bad(R, rsdp, "no RSDP signature"));
    }
    if byte_sum(&r[..20]) != 0 || byte_sum(r) != 0 {
        return Err(bad(R, rsdp, "bad checksum"));
    }
    if r[15] < 2 || u32_at(r, 20) != 36 {
        return Err(bad(
            R,
            rsdp,
            "not an ACPI 2.0+ RSDP (revision 2, length 36)",
        ));
    }
    let mut span = (rsdp, rsdp + 36);
    // A whole table at `addr` with signature `sig`: ACPI 6.5 5.2.6.
    let mut table = |sig: [u8; 4], addr: u64| -> Result<Table, Error> {
        let head = at(sig, addr, 36)?;
        if head[..4] != sig {
            return Err(bad(sig, addr, "signature does not match"));
        }
        let len = u32_at(head, 4) as u64;
        if len < 36 {
            return Err(bad(sig, addr, "length shorter than its header"));
        }
        let bytes = at(sig, addr, len)
            .map_err(|_| bad(sig, addr, "truncated: its length runs out of the ACPI area"))?;
        if byte_sum(bytes) != 0 {
            return Err(bad(sig, addr, "bad checksum"));
        }
        span = (span.0.min(addr), span.1.max(addr + len));
        Ok(Table { addr, bytes })
    };
    let xsdt_at = u64_at(r, 24);
    let xsdt = table(*b"XSDT", xsdt_at)?;
    // ACPI 6.5 5.2.8: revision 1, then 8-byte table addresses.
    if xsdt.revision() != 1 || !(xsdt.bytes.len() - 36).is_multiple_of(8) {
        return Err(bad(
            *b"XSDT",
            xsdt_at,
            "not a revision 1 XSDT of whole entries",
        ));
    }
    let mut tables = Vec::new();
    for e in xsdt.bytes[36..].chunks_exact(8) {
        let addr = u64_at(e, 0);
        let sig = at(*b"????", addr, 4)?;
        tables.push(table([sig[0], sig[1], sig[2], sig[3]], addr)?);
    }
    // The FADT's 64-bit X_DSDT (offset 140), else its 32-bit DSDT (40):
    // ACPI 6.5 5.2.9.
    let fadt = tables
        .iter()
        .find(|t| &t.signature() == b"FACP")
        .ok_or(bad(*b"FACP", xsdt_at, "not listed in the XSDT"))?;
    let f = fadt.bytes;
    let dsdt_at = match (f.len() >= 148).then(|| u64_at(f, 140)) {
        Some(x) if x != 0 => x,
        _ if f.len() >= 44 => u32_at(f, 40) as u64,
        _ => 0,
    };
    let dsdt = table(*b"DSDT", dsdt_at)?;
    Ok(Walked {
        rsdp,
        tables,
        dsdt,
        span,
    })
}

/// FADT fields (ACPI 6.5 5.2.9): flags at 112 (bit 20 HW_REDUCED_ACPI),
/// ARM boot architecture flags at 129 (bit 0 PSCI compliant, bit 1 PSCI
/// through HVC), minor revision at 131.
const FADT_FLAGS: usize = 112;
const HW_REDUCED: u32 = 1 << 20;
const FADT_ARM_FLAGS: usize = 129;
const PSCI_COMPLIANT: u16 = 1 << 0;
const PSCI_USE_HVC: u16 = 1 << 1;
const FADT_MINOR: usize = 131;
/// The ACPI 5.1 FADT (the first with the ARM boot flags) is 268 bytes.
const FADT_51_LEN: usize = 268;

/// MADT subtables (ACPI 6.5 5.2.12): GICC 0x0b (UID at 8, flags at 12:
/// bit 0 enabled; MPIDR at 68; 76 bytes from ACPI 5.1), GICD 0x0c (base at
/// 8, version at 20), GICR 0x0e (base at 4, length at 12), ITS 0x0f (base
/// at 8).
const GICC: u8 = 0x0b;
const GICD: u8 = 0x0c;
const GICR: u8 = 0x0e;
const ITS: u8 = 0x0f;
const GICC_MIN_LEN: usize = 76;
const MADT_HEADER: usize = 44;
/// MADT revision 3 is ACPI 5.1's, the first with GICC MPIDRs.
const MADT_MIN_REVISION: u8 = 3;
/// GTDT revision 2 is ACPI 5.1's.
const GTDT_MIN_REVISION: u8 = 2;
/// MCFG allocations (PCI Firmware 3.3 4.1.2): 16 bytes from offset 44,
/// base at 0, segment at 8, first and last bus at 10 and 11.
const MCFG_HEADER: usize = 44;

/// CH's tables, walked and checked against the DT.
pub struct Adopted<'a> {
    pub walked: Walked<'a>,
    /// Per GICC UID, whether that vCPU's GICC is enabled (index = UID).
    pub enabled_uids: Vec<bool>,
    /// The DSDT refers to `\_SB.PRES` without defining it.
    pub needs_pres: bool,
}

/// Walks CH's window `mem` (at `base`, RSDP at `rsdp`) and checks it
/// against the DT's `board` (see the module text).
pub fn adopt<'a>(mem: &'a [u8], base: u64, rsdp: u64, board: &Board) -> Result<Adopted<'a>, Error> {
    let walked = walk(mem, base, rsdp)?;
    let fadt = walked.one(b"FACP")?.ok_or(bad(*b"FACP", rsdp, "missing"))?;
    check_fadt(fadt, board)?;
    let madt = walked.one(b"APIC")?.ok_or(bad(*b"APIC", rsdp, "missing"))?;
    let enabled_uids = check_madt(madt, board)?;
    match walked.one(b"GTDT")? {
        None => {
            return Err(bad(
                *b"GTDT",
                rsdp,
                "missing (Linux needs it for the arch timer)",
            ))
        }
        Some(t) if t.revision() < GTDT_MIN_REVISION => {
            return Err(bad(*b"GTDT", t.addr, "revision older than ACPI 5.1's (2)"))
        }
        Some(_) => {}
    }
    if let (Some(mcfg), Some(p)) = (walked.one(b"MCFG")?, board.pcie.as_ref()) {
        let b = mcfg.bytes;
        let matches = b
            .get(MCFG_HEADER..)
            .unwrap_or(&[])
            .chunks_exact(16)
            .any(|a| u64_at(a, 0) == p.ecam_base && u16_at(a, 8) == 0 && a[10] <= p.bus_start);
        if !matches {
            return Err(bad(
                *b"MCFG",
                mcfg.addr,
                "no ECAM allocation at the DT's host bridge",
            ));
        }
    }
    let needs_pres = refers_to_pres(walked.dsdt.bytes) && !defines_pres(walked.dsdt.bytes);
    Ok(Adopted {
        walked,
        enabled_uids,
        needs_pres,
    })
}

fn check_fadt(t: Table, board: &Board) -> Result<(), Error> {
    let (b, at) = (t.bytes, t.addr);
    let f = |why| Err(bad(*b"FACP", at, why));
    if b.len() < FADT_51_LEN {
        return f("shorter than an ACPI 5.1 FADT");
    }
    // Linux arm64 wants 5.1 or later (arch/arm64/kernel/acpi.c).
    if t.revision() < 5 || (t.revision() == 5 && b[FADT_MINOR] < 1) {
        return f("revision older than ACPI 5.1");
    }
    if u32_at(b, FADT_FLAGS) & HW_REDUCED == 0 {
        return f("not hardware-reduced ACPI");
    }
    let arm = u16_at(b, FADT_ARM_FLAGS);
    if arm & PSCI_COMPLIANT == 0 {
        return f("does not say PSCI");
    }
    let hvc = arm & PSCI_USE_HVC != 0;
    match board.psci {
        Some(Conduit::Hvc) if hvc => Ok(()),
        Some(Conduit::Smc) if !hvc => Ok(()),
        _ => f("PSCI conduit differs from the DT's"),
    }
}

/// The MADT's subtables against the DT; returns the enabled flag per UID.
fn check_madt(t: Table, board: &Board) -> Result<Vec<bool>, Error> {
    let at = t.addr;
    let f = |why| Err(bad(*b"APIC", at, why));
    if t.revision() < MADT_MIN_REVISION {
        return f("revision older than ACPI 5.1's (3)");
    }
    let b = t.bytes;
    let (mut gicd, mut gicr, mut its) = (None, Vec::new(), Vec::new());
    // (UID, MPIDR) of each enabled GICC; every GICC's UID and whether
    // it is enabled.
    let mut enabled: Vec<(u32, u64)> = Vec::new();
    let mut uids: Vec<(u32, bool)> = Vec::new();
    let mut o = MADT_HEADER;
    while o < b.len() {
        let len = b.get(o + 1).map_or(0, |&l| l as usize);
        let Some(s) = b.get(o..o + len).filter(|_| len >= 2) else {
            return f("a subtable runs past the table");
        };
        match s[0] {
            GICC if len < GICC_MIN_LEN => return f("a GICC entry is too short"),
            GICC => {
                let (uid, on) = (u32_at(s, 8), u32_at(s, 12) & 1 != 0);
                if uids.iter().any(|u| u.0 == uid) {
                    return f("two GICC entries have the same UID");
                }
                uids.push((uid, on));
                if on {
                    enabled.push((uid, u64_at(s, 68)));
                }
            }
            GICD if len >= 24 && gicd.replace((u64_at(s, 8), s[20])).is_some() => {
                return f("more than one GIC distributor");
            }
            GICD if len >= 24 => {}
            GICR if len >= 16 => gicr.push((u64_at(s, 4), u32_at(s, 12) as u64)),
            ITS if len >= 16 => its.push(u64_at(s, 8)),
            GICD | GICR | ITS => return f("a GIC subtable is too short"),
            _ => {}
        }
        o += len;
    }
    // Every DT CPU has exactly one enabled GICC and no GICC is enabled
    // that the DT lacks: the MPIDRs agree one for one.
    if enabled.len() != board.cpus.len() {
        return f("enabled GICCs and the DT's CPUs differ in number");
    }
    for &mpidr in &board.cpus {
        if enabled.iter().filter(|e| e.1 == mpidr).count() != 1 {
            return f("a DT CPU's MPIDR has no single enabled GICC");
        }
    }
    let g = &board.gic;
    // Version 0 means "no GIC version" (ACPI 6.5 table 5.51): not checked.
    match gicd {
        Some((base, v)) if base == g.gicd && (v == 0 || v == g.version) => {}
        Some(_) => return f("GIC distributor differs from the DT's"),
        None => return f("no GIC distributor"),
    }
    if g.version == 3 && (gicr.is_empty() || gicr.iter().any(|r| !g.gicr.contains(r))) {
        return f("GIC redistributors differ from the DT's");
    }
    if its.iter().any(|&b| g.its != Some(b)) {
        return f("GIC ITS differs from the DT's");
    }
    let top = uids.iter().map(|u| u.0).max().unwrap_or(0) as usize;
    // UIDs index the SSDT's buffer: CH numbers them 0..max_vcpus.
    if top >= 4096 {
        return f("GICC UIDs beyond 4095");
    }
    let mut by_uid = alloc::vec![false; top + 1];
    for (uid, on) in uids {
        by_uid[uid as usize] = on;
    }
    Ok(by_uid)
}

/// `_SB_PRES` as a name path's two segments, as AML writes
/// `\_SB.PRES.xxxx` (ACPI 6.5 20.2.2).
const SB_PRES: &[u8; 8] = b"_SB_PRES";

fn refers_to_pres(aml: &[u8]) -> bool {
    aml.windows(SB_PRES.len()).any(|w| w == SB_PRES)
}

/// Whether a DeviceOp (0x5b 0x82, ACPI 6.5 20.2.5.2) names a device whose
/// last segment is PRES: `Device (\_SB.PRES)`, `Device (_SB.PRES)` or
/// `Device (PRES)` inside a scope.
fn defines_pres(aml: &[u8]) -> bool {
    aml.windows(2).enumerate().any(|(i, w)| {
        if w != [0x5b, 0x82] {
            return false;
        }
        // PkgLength: bits 7:6 of its lead byte count the bytes that follow.
        let Some(&lead) = aml.get(i + 2) else {
            return false;
        };
        let name = i + 3 + (lead >> 6) as usize;
        let rest = aml.get(name..).unwrap_or(&[]);
        let rest = rest.strip_prefix(b"\\").unwrap_or(rest);
        rest.starts_with(b"PRES")
            || rest
                .strip_prefix(&[emit::DUAL_NAME_PREFIX])
                .is_some_and(|r| r.get(4..8) == Some(b"PRES"))
    })
}

/// AML opcodes the SSDT uses beyond `emit`'s (ACPI 6.5 20.2.5): MutexOp,
/// LLessOp, SizeOfOp, DerefOfOp, IndexOp.
const MUTEX_OP: [u8; 2] = [0x5b, 0x01];
const LLESS_OP: u8 = 0x95;
const SIZEOF_OP: u8 = 0x87;
const DEREFOF_OP: u8 = 0x83;
const INDEX_OP: u8 = 0x88;

/// The SSDT that defines `\_SB.PRES` (module text): `enabled[uid]` says
/// whether vCPU `uid` has an enabled GICC.
pub fn pres_ssdt(enabled: &[bool]) -> Vec<u8> {
    let mut a = Vec::new();
    let sb = emit::scope(&mut a, b"\\_SB_");
    let dev = emit::device(&mut a, b"PRES");
    emit::name_int(&mut a, b"_HID", const { emit::eisa(b"PNP0A06") });
    emit::name_str(&mut a, b"_UID", b"CPU Hotplug Controller");
    // Not present: arm64 CH has no CPU hotplug, so Linux binds nothing.
    emit::name_int(&mut a, b"_STA", 0);
    a.extend_from_slice(&MUTEX_OP);
    a.extend_from_slice(b"CPLK");
    a.push(0);
    for n in [b"CSEL", b"CINS", b"CRMV", b"CEJ0"] {
        emit::name_int(&mut a, n, 0);
    }
    emit::name(&mut a, b"ENAB");
    let bytes: Vec<u8> = enabled.iter().map(|&e| e as u8).collect();
    emit::buffer_of(&mut a, &bytes);
    // Method (CPEN) { If (CSEL < SizeOf (ENAB)) { Return (ENAB[CSEL]) }
    // Return (Zero) }: DSDT methods read it as a field, `CPEN == One`.
    let m = emit::method(&mut a, b"CPEN", 0);
    let i = emit::open(&mut a, &[emit::IF_OP]);
    a.push(LLESS_OP);
    a.extend_from_slice(b"CSEL");
    a.push(SIZEOF_OP);
    a.extend_from_slice(b"ENAB");
    a.extend_from_slice(&[emit::RETURN_OP, DEREFOF_OP, INDEX_OP]);
    a.extend_from_slice(b"ENABCSEL");
    a.push(0); // no target
    emit::close(&mut a, i);
    a.extend_from_slice(&[emit::RETURN_OP, emit::ZERO]);
    emit::close(&mut a, m);
    emit::close(&mut a, dev);
    emit::close(&mut a, sb);
    table(*b"SSDT", DSDT_REVISION, &a)
}

impl Adopted<'_> {
    /// What Linux gets: CH's own RSDP when nothing needs fixing; else the
    /// SSDT and an XSDT listing CH's tables and it, in `area`, and that
    /// XSDT's RSDP (placed last). Returns the RSDP's address and one line
    /// per fix for the console.
    pub fn fix(
        &self,
        area: &mut TableArea,
    ) -> Result<(u64, Vec<&'static str>), super::super::Error> {
        if !self.needs_pres {
            return Ok((self.walked.rsdp, Vec::new()));
        }
        let placed: Vec<u64> = self.walked.tables.iter().map(|t| t.addr).collect();
        let ssdt = pres_ssdt(&self.enabled_uids);
        let built = finish(area, &placed, [ssdt].iter())?;
        let rsdp = area.place(&built.rsdp, 16)?;
        let why = "cloud-hypervisor's DSDT refers to \\_SB.PRES (its CPU hotplug controller, defined only on x86): an SSDT defines it, not present, CPEN per the MADT's enabled GICCs";
        Ok((rsdp, alloc::vec![why]))
    }
}

#[cfg(test)]
mod tests;
