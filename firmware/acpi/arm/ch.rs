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
//! platform reads too. The firmware lets `acpi::adopt` read only that
//! window: a table elsewhere is refused, never read.
//!
//! `acpi::adopt` walks them (RSDP, XSDT, every table and the DSDT:
//! signatures, lengths, checksums, revisions, overlaps); [`check`] adds the
//! arm64 rules: the FADT (ACPI
//! 5.1 or later, hardware-reduced, PSCI with the DT's conduit), the MADT
//! (its subtables whole; the enabled GICCs the DT's CPUs one for one, by
//! MPIDR, UIDs unique; the distributor, redistributors and ITS where the DT
//! has them), a GTDT (Linux's arch timer needs it in ACPI mode) and the
//! MCFG's ECAM where the DT has a host bridge.
//!
//! What is fixed ([`Checked::fix`]): CH's arm64 DSDT refers to the CPU
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
//!
//! Also fixed: CH's GICCs name no PMU interrupt (Performance Interrupt
//! GSIV 0) although its DT's PMU node has one (the PPI CH gave KVM's
//! vPMU), so Linux in ACPI mode says "No ACPI PMU IRQ" and counts without
//! overflow interrupts. A copy of the MADT names the DT's INTID in those
//! GICCs (level-triggered, as the DT says) and the new XSDT lists the copy
//! instead of CH's.

use super::super::adopt::{le16, le32, le64, min_revision, Adopted, Error, Sig, Table};
use super::super::{emit, finish, table, TableArea, DSDT_REVISION};
use crate::platform::dt::Board;
use crate::psci::Conduit;
use alloc::vec::Vec;

/// CH's `ACPI_START`/`RSDP_POINTER` and `ACPI_MAX_SIZE` (see above): the
/// window the firmware lets `acpi::adopt` read.
pub const CH_RSDP: u64 = 0x4020_0000;
pub const CH_ACPI_MAX: u64 = 2 << 20;

fn invalid(sig: &Sig, what: &'static str) -> Error {
    Error::Invalid { sig: *sig, what }
}

/// The one table with `sig`; `acpi::adopt` already refused duplicates.
fn need<'a>(a: &'a Adopted, sig: &Sig) -> Result<&'a Table, Error> {
    a.need(*sig)
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
/// GICC Performance Interrupt GSIV (offset 20) and its flags (12: bit 1
/// edge-triggered; 0 is level, as the DT's PMU is).
const GICC_PERF_GSIV: usize = 20;
const MADT_HEADER: usize = 44;
/// MADT revision 3 is ACPI 5.1's, the first with GICC MPIDRs.
const MADT_MIN_REVISION: u8 = 3;
/// GTDT revision 2 is ACPI 5.1's.
const GTDT_MIN_REVISION: u8 = 2;
/// MCFG allocations (PCI Firmware 3.3 4.1.2): 16 bytes from offset 44,
/// base at 0, segment at 8, first and last bus at 10 and 11.
const MCFG_HEADER: usize = 44;

/// What the firmware takes from CH's tables, checked against the DT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    /// The XSDT's tables in its order (not the DSDT).
    pub listed: Vec<u64>,
    /// Per GICC UID, whether that vCPU's GICC is enabled (index = UID).
    pub enabled_uids: Vec<bool>,
    /// The DSDT refers to `\_SB.PRES` without defining it.
    pub needs_pres: bool,
    /// `[start, end)` of the window the RSDP, XSDT and tables occupy, for
    /// the memory map.
    pub span: (u64, u64),
    /// The MADT (address, bytes) when an enabled GICC names no PMU
    /// interrupt while the DT's PMU has one (INTID): CH leaves the GICCs'
    /// Performance Interrupt GSIV 0, and Linux then says "No ACPI PMU IRQ"
    /// and runs its PMU without overflow interrupts.
    pub pmu_unnamed: Option<(u64, Vec<u8>, u32)>,
}

/// The arm64 rules for CH's tables, which `acpi::adopt` walked (see the
/// module text).
pub fn check(a: &Adopted, board: &Board) -> Result<Checked, Error> {
    check_fadt(need(a, b"FACP")?, board)?;
    let enabled_uids = check_madt(need(a, b"APIC")?, board)?;
    // Linux's arch timer needs the GTDT in ACPI mode.
    min_revision(need(a, b"GTDT")?, GTDT_MIN_REVISION)?;
    if let (Some(mcfg), Some(p)) = (a.find(*b"MCFG"), board.pcie.as_ref()) {
        let matches = mcfg
            .bytes
            .get(MCFG_HEADER..)
            .unwrap_or(&[])
            .chunks_exact(16)
            .any(|e| {
                le64(e, 0) == Some(p.ecam_base) && le16(e, 8) == Some(0) && e[10] <= p.bus_start
            });
        if !matches {
            return Err(invalid(
                b"MCFG",
                "no ECAM allocation at the DT's host bridge",
            ));
        }
    }
    let dsdt = need(a, b"DSDT")?;
    let listed: Vec<u64> = a
        .tables
        .iter()
        .filter(|t| t.signature() != *b"DSDT")
        .map(|t| t.addr)
        .collect();
    // The XSDT is 36 bytes of header and one entry per listed table
    // (`acpi::adopt` checked that it is whole entries).
    let xsdt_end = a.xsdt + 36 + 8 * listed.len() as u64;
    let ends = a.tables.iter().map(|t| t.addr + t.bytes.len() as u64);
    let starts = a.tables.iter().map(|t| t.addr);
    let span = (
        starts.chain([a.rsdp, a.xsdt]).min().unwrap_or(a.rsdp),
        ends.chain([a.rsdp + 36, xsdt_end]).max().unwrap_or(a.rsdp),
    );
    let madt = need(a, b"APIC")?;
    let pmu_unnamed = board
        .pmu_irq
        .filter(|_| {
            gicc_offsets(&madt.bytes)
                .any(|(o, on)| on && le32(&madt.bytes, o + GICC_PERF_GSIV) == Some(0))
        })
        .map(|intid| (madt.addr, madt.bytes.clone(), intid));
    Ok(Checked {
        listed,
        enabled_uids,
        needs_pres: refers_to_pres(&dsdt.bytes) && !defines_pres(&dsdt.bytes),
        span,
        pmu_unnamed,
    })
}

fn check_fadt(t: &Table, board: &Board) -> Result<(), Error> {
    let b = &t.bytes;
    let f = |what| Err(invalid(b"FACP", what));
    if b.len() < FADT_51_LEN {
        return f("shorter than an ACPI 5.1 FADT");
    }
    // Linux arm64 wants 5.1 or later (arch/arm64/kernel/acpi.c).
    if t.revision() < 5 || (t.revision() == 5 && b[FADT_MINOR] < 1) {
        return f("revision older than ACPI 5.1");
    }
    if le32(b, FADT_FLAGS).unwrap_or(0) & HW_REDUCED == 0 {
        return f("not hardware-reduced ACPI");
    }
    let arm = le16(b, FADT_ARM_FLAGS).unwrap_or(0);
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
fn check_madt(t: &Table, board: &Board) -> Result<Vec<bool>, Error> {
    min_revision(t, MADT_MIN_REVISION)?;
    let f = |what| Err(invalid(b"APIC", what));
    let b = &t.bytes;
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
        let (u32_at, u64_at) = (|at| le32(s, at).unwrap_or(0), |at| le64(s, at).unwrap_or(0));
        match s[0] {
            GICC if len < GICC_MIN_LEN => return f("a GICC entry is too short"),
            GICC => {
                let (uid, on) = (u32_at(8), u32_at(12) & 1 != 0);
                if uids.iter().any(|u| u.0 == uid) {
                    return f("two GICC entries have the same UID");
                }
                uids.push((uid, on));
                if on {
                    enabled.push((uid, u64_at(68)));
                }
            }
            GICD if len >= 24 && gicd.replace((u64_at(8), s[20])).is_some() => {
                return f("more than one GIC distributor");
            }
            GICD if len >= 24 => {}
            GICR if len >= 16 => gicr.push((u64_at(4), u64::from(u32_at(12)))),
            ITS if len >= 16 => its.push(u64_at(8)),
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
    // UIDs index the SSDT's buffer: CH numbers them 0..max_vcpus.
    let top = uids.iter().map(|u| u.0).max().unwrap_or(0) as usize;
    if top >= MAX_UID {
        return f("GICC UIDs beyond 4095");
    }
    let mut by_uid = alloc::vec![false; top + 1];
    for (uid, on) in uids {
        by_uid[uid as usize] = on;
    }
    Ok(by_uid)
}

/// Offsets of the MADT's GICC entries, whole ones only (`check_madt`
/// refused the rest), with their enabled flag.
fn gicc_offsets(b: &[u8]) -> impl Iterator<Item = (usize, bool)> + '_ {
    let mut o = MADT_HEADER;
    core::iter::from_fn(move || loop {
        let (at, ty, len) = (o, *b.get(o)?, *b.get(o + 1)? as usize);
        if len < 2 || at + len > b.len() {
            return None;
        }
        o += len;
        if ty == GICC && len >= GICC_MIN_LEN {
            return Some((at, le32(b, at + 12).unwrap_or(0) & 1 != 0));
        }
    })
}

/// KVM's arm64 limit is 512 vCPUs; CH numbers UIDs from 0, so this leaves
/// room and bounds the SSDT's buffer.
const MAX_UID: usize = 4096;

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

impl Checked {
    /// What Linux gets: CH's own RSDP (`rsdp`) when nothing needs fixing;
    /// else, in `area`, the fixed tables (the SSDT defining `\_SB.PRES`, a
    /// copy of the MADT naming the DT's PMU interrupt) and an XSDT listing
    /// them with CH's others, and that XSDT's RSDP (placed last). Returns
    /// the RSDP's address and one line per fix for the console.
    pub fn fix(
        &self,
        rsdp: u64,
        area: &mut TableArea,
    ) -> Result<(u64, Vec<&'static str>), super::super::Error> {
        let mut why = Vec::new();
        let mut listed = self.listed.clone();
        if let Some((at, madt, intid)) = &self.pmu_unnamed {
            let mut t = madt.clone();
            for (o, _) in
                gicc_offsets(madt).filter(|&(o, _)| le32(madt, o + GICC_PERF_GSIV) == Some(0))
            {
                t[o + GICC_PERF_GSIV..o + GICC_PERF_GSIV + 4].copy_from_slice(&intid.to_le_bytes());
            }
            t[9] = 0;
            t[9] = 0u8.wrapping_sub(super::super::byte_sum(&t));
            let copy = area.place(&t, 16)?;
            for e in listed.iter_mut().filter(|e| **e == *at) {
                *e = copy;
            }
            why.push("cloud-hypervisor's MADT names no PMU interrupt (GICC Performance Interrupt 0): a copy names the DT's PMU PPI");
        }
        let mut extra = Vec::new();
        if self.needs_pres {
            extra.push(pres_ssdt(&self.enabled_uids));
            why.push("cloud-hypervisor's DSDT refers to \\_SB.PRES (its CPU hotplug controller, defined only on x86): added an SSDT that defines it (not present; CPEN per the MADT's enabled GICCs)");
        }
        if why.is_empty() {
            return Ok((rsdp, why));
        }
        let built = finish(area, &listed, extra.iter())?;
        let rsdp = area.place(&built.rsdp, 16)?;
        Ok((rsdp, why))
    }
}

#[cfg(test)]
mod tests;
