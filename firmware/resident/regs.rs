//! Register arithmetic of the resident aarch64 firmware (the EL2 and EL3
//! PSCI handlers in `arch/aarch64/el2.rs`, `el3.rs` and `cpu.rs`), kept
//! here so it is tested on the host: which EL2/EL3 controls to open for
//! the features a CPU has, how a stage-2 abort becomes an exception for
//! EL1, the wake-up SGI, and the EL3 map that moves the firmware to secure
//! RAM.
//!
//! Field positions: Arm ARM (DDI 0487) D19.2 (ID registers), D24.2 (HCR_EL2,
//! HCRX_EL2, HFGRTR_EL2, CPTR_EL2, SCR_EL3, CPTR_EL3, ESR_ELx, SPSR),
//! D8.3 (translation table descriptors); GICv3 (IHI 0069) 12.2 for
//! ICC_SGI0R_EL1.

use super::{FLASH, GIB, MIB2, PAGE};

/// The ID registers the decisions depend on, as read on the CPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdRegs {
    pub pfr0: u64,
    pub pfr1: u64,
    pub pfr2: u64,
    pub mmfr0: u64,
    pub mmfr1: u64,
    pub mmfr3: u64,
    pub isar1: u64,
    pub isar2: u64,
    pub smfr0: u64,
    pub dfr0: u64,
}

fn field(reg: u64, shift: u32) -> u64 {
    (reg >> shift) & 0xf
}

/// `bits` when the CPU has the feature, else 0.
fn on(has: bool, bits: u64) -> u64 {
    if has {
        bits
    } else {
        0
    }
}

/// The CPU features that decide which controls the firmware opens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    pub sve: bool,
    pub sme: bool,
    pub sme_fa64: bool,
    pub sme2: bool,
    pub pauth: bool,
    pub mte2: bool,
    pub csv2_2: bool,
    pub gicv3_sysregs: bool,
    pub pmu: bool,
    pub hcx: bool,
    pub fgt: bool,
    pub ecv: bool,
    pub gcs: bool,
    pub tcr2: bool,
    pub sctlr2: bool,
    pub s1pie: bool,
    pub s1poe: bool,
    pub aie: bool,
    pub mops: bool,
    pub fpm: bool,
    pub amu: bool,
    pub vhe: bool,
}

impl Features {
    pub fn from_id(id: &IdRegs) -> Self {
        let pmuver = field(id.dfr0, 8);
        let sme = field(id.pfr1, 24) != 0;
        Features {
            // ID_AA64PFR0_EL1: SVE 35:32, GIC 27:24, AMU 47:44, CSV2 59:56.
            sve: field(id.pfr0, 32) != 0,
            gicv3_sysregs: field(id.pfr0, 24) != 0,
            amu: field(id.pfr0, 44) != 0,
            csv2_2: field(id.pfr0, 56) >= 2,
            // ID_AA64PFR1_EL1: MTE 11:8 (2 = MTE2), SME 27:24, GCS 47:44;
            // ID_AA64SMFR0_EL1: FA64 63, SMEver 59:56.
            mte2: field(id.pfr1, 8) >= 2,
            sme,
            sme_fa64: sme && id.smfr0 >> 63 != 0,
            sme2: sme && field(id.smfr0, 56) != 0,
            gcs: field(id.pfr1, 44) != 0,
            // ID_AA64PFR2_EL1: FPMR 35:32.
            fpm: field(id.pfr2, 32) != 0,
            // ID_AA64ISAR1_EL1: APA 7:4, API 11:8; ID_AA64ISAR2_EL1: APA3
            // 15:12, MOPS 19:16.
            pauth: field(id.isar1, 4) != 0 || field(id.isar1, 8) != 0 || field(id.isar2, 12) != 0,
            mops: field(id.isar2, 16) != 0,
            // ID_AA64DFR0_EL1: PMUVer 11:8 (0xf: IMPLEMENTATION DEFINED).
            pmu: pmuver != 0 && pmuver != 0xf,
            // ID_AA64MMFR0_EL1: FGT 59:56, ECV 63:60; ID_AA64MMFR1_EL1: HCX
            // 43:40; ID_AA64MMFR3_EL1: TCRX 3:0, SCTLRX 7:4, S1PIE 11:8,
            // S1POE 19:16, AIE 27:24.
            fgt: field(id.mmfr0, 56) != 0,
            ecv: field(id.mmfr0, 60) != 0,
            hcx: field(id.mmfr1, 40) != 0,
            // ID_AA64MMFR1_EL1: VH 11:8.
            vhe: field(id.mmfr1, 8) != 0,
            tcr2: field(id.mmfr3, 0) != 0,
            sctlr2: field(id.mmfr3, 4) != 0,
            s1pie: field(id.mmfr3, 8) != 0,
            s1poe: field(id.mmfr3, 16) != 0,
            aie: field(id.mmfr3, 24) != 0,
        }
    }

    /// HCR_EL2 for a kernel at EL1: VM (0) stage 2 on, TSC (19) SMC traps
    /// to EL2, RW (31) EL1 is AArch64, APK (40) / API (41) pointer
    /// authentication untrapped, EnSCXT (53) SCXTNUM_EL1 untrapped, ATA
    /// (56) allocation tags untrapped. IMO/FMO/AMO stay 0: interrupts and
    /// SErrors go to EL1, the GIC stays the kernel's.
    pub fn hcr_el2(&self) -> u64 {
        (1 << 0)
            | (1 << 19)
            | (1 << 31)
            | on(self.pauth, (1 << 40) | (1 << 41))
            | on(self.csv2_2, 1 << 53)
            | on(self.mte2, 1 << 56)
    }

    /// HCRX_EL2: MSCEn 11 (FEAT_MOPS at EL1/EL0), TCR2En 14, SCTLR2En 15,
    /// EnFPM 23; the controls Linux's own EL2 set-up opens.
    pub fn hcrx_el2(&self) -> u64 {
        on(self.mops, 1 << 11)
            | on(self.tcr2, 1 << 14)
            | on(self.sctlr2, 1 << 15)
            | on(self.fpm, 1 << 23)
    }

    /// The negative-polarity bits (0 traps) of HFGRTR_EL2/HFGWTR_EL2 for
    /// the EL1 registers of the features present: nPOR_EL1 60, nPOR_EL0
    /// 59, nPIR_EL1 58, nPIRE0_EL1 57, nTPIDR2_EL0 55, nSMPRI_EL1 54. All
    /// positive trap bits stay 0.
    pub fn hfgxtr_el2(&self) -> u64 {
        on(self.s1poe, (1 << 60) | (1 << 59))
            | on(self.s1pie, (1 << 58) | (1 << 57))
            | on(self.sme, (1 << 55) | (1 << 54))
    }

    /// CPTR_EL2 with HCR_EL2.E2H = 0: RES1 bits 13, 9 and 7:0; TZ (8) and
    /// TSM (12) are RES1 without SVE/SME and cleared with them; TFP (10),
    /// TTA (20), TAM (30), TCPAC (31) clear. Nothing traps.
    pub fn cptr_el2(&self) -> u64 {
        (1 << 13) | (1 << 9) | 0xff | on(!self.sve, 1 << 8) | on(!self.sme, 1 << 12)
    }

    /// SCR_EL3 for a non-secure world with EL2: NS (0), RES1 5:4, HCE (8),
    /// RW (10); SMD (7) 0 so SMC works; IRQ/FIQ/EA (1-3) 0 so interrupts
    /// and SErrors stay in the normal world. Then the enables for features
    /// whose registers Linux's EL2 set-up touches: APK (16) / API (17),
    /// EnSCXT (25), ATA (26), FGTEn (27), ECVEn (28), HXEn (38), GCSEn
    /// (39), EnTP2 (41), TCR2En (43), SCTLR2En (44), PIEn (45), AIEn (46),
    /// EnFPM (50).
    pub fn scr_el3(&self) -> u64 {
        1 | (3 << 4)
            | (1 << 8)
            | (1 << 10)
            | on(self.pauth, (1 << 16) | (1 << 17))
            | on(self.csv2_2, 1 << 25)
            | on(self.mte2, 1 << 26)
            | on(self.fgt, 1 << 27)
            | on(self.ecv, 1 << 28)
            | on(self.hcx, 1 << 38)
            | on(self.gcs, 1 << 39)
            | on(self.sme, 1 << 41)
            | on(self.tcr2, 1 << 43)
            | on(self.sctlr2, 1 << 44)
            | on(self.s1pie, 1 << 45)
            | on(self.aie, 1 << 46)
            | on(self.fpm, 1 << 50)
    }

    /// CPTR_EL3: EZ (8) with SVE, ESM (12) with SME; TFP (10), TTA (20),
    /// TAM (30), TCPAC (31) clear.
    pub fn cptr_el3(&self) -> u64 {
        on(self.sve, 1 << 8) | on(self.sme, 1 << 12)
    }

    /// ZCR_ELx / SMCR_ELx: LEN = 15 (the lower ELs choose their vector
    /// length); SMCR also EZT0 (30) with SME2 and FA64 (31).
    pub fn smcr(&self) -> u64 {
        0xf | on(self.sme2, 1 << 30) | on(self.sme_fa64, 1 << 31)
    }
}

/// PSTATE for entering EL1h (M = 0b0101) or EL2h (0b1001) with D, A, I,
/// F masked (bits 9:6).
pub const SPSR_EL1H_MASKED: u64 = 0x3c5;
pub const SPSR_EL2H_MASKED: u64 = 0x3c9;

/// A synchronous external abort to deliver to EL1 in place of a stage-2
/// fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Injection {
    /// ESR_EL1.
    pub esr: u64,
    /// Offset from VBAR_EL1 of the vector to enter.
    pub vector: u64,
    /// PSTATE to enter it with.
    pub spsr: u64,
}

/// Exception classes (ESR_ELx.EC).
pub const EC_IABT_LOWER: u64 = 0x20;
pub const EC_IABT_SAME: u64 = 0x21;
pub const EC_HVC64: u64 = 0x16;
pub const EC_SMC64: u64 = 0x17;
pub const EC_DABT_LOWER: u64 = 0x24;
pub const EC_DABT_SAME: u64 = 0x25;

/// Turns a stage-2 abort taken to EL2 (`esr_el2`, with the interrupted
/// PSTATE `spsr_el2`) into the exception real hardware gives for an access
/// nobody answers: a synchronous external abort (DFSC/IFSC 0b010000, "not
/// on a translation table walk"), taken to EL1 as if there (Arm ARM D1.3
/// exception entry). `sctlr_el1` decides PAN (SPAN, 23) and SSBS (DSSBS,
/// 44). `None` for what the firmware's tables cannot produce (access flag
/// and permission faults) or a caller in an AArch32 mode other than User
/// (EL1 is AArch64: HCR_EL2.RW).
pub fn external_abort(esr_el2: u64, spsr_el2: u64, sctlr_el1: u64) -> Option<Injection> {
    let ec = esr_el2 >> 26;
    let data = match ec {
        EC_DABT_LOWER => true,
        EC_IABT_LOWER => false,
        _ => return None,
    };
    // Address size (0b0000xx) and translation (0b0001xx) faults only.
    if esr_el2 & 0x3f > 0x07 {
        return None;
    }
    // Vector by origin (Arm ARM D1.3.1): EL1 with SP_EL0 +0x000, EL1 with
    // SP_EL1 +0x200, EL0 in AArch64 +0x400, EL0 in AArch32 (User mode,
    // M[4:0] = 0b10000) +0x600: a guest's AArch32 process must not be able
    // to stop the firmware.
    let (vector, same_el) = match spsr_el2 & 0x1f {
        0b00100 => (0x000, true),
        0b00101 => (0x200, true),
        0b00000 => (0x400, false),
        0b10000 => (0x600, false),
        _ => return None,
    };
    // The same-EL class is the lower-EL one with bit 0 set.
    const _: () = assert!(EC_DABT_SAME == EC_DABT_LOWER | 1 && EC_IABT_SAME == EC_IABT_LOWER | 1);
    let ec1 = ec | u64::from(same_el);
    // IL (25) as trapped (0 only for a 16-bit T32 instruction); WnR (6)
    // and CM (8) carried over from a data abort.
    let iss = 0x10 | on(data, esr_el2 & ((1 << 6) | (1 << 8)));
    let esr = (ec1 << 26) | (esr_el2 & (1 << 25)) | iss;
    // PSTATE: EL1h, DAIF masked, DIT kept (SPSR bit 24, from AArch32 bit
    // 21), PAN (22) set when SCTLR_EL1.SPAN is 0 else kept, SSBS (12) =
    // SCTLR_EL1.DSSBS.
    let dit = if vector == 0x600 { 21 } else { 24 };
    let mut spsr = SPSR_EL1H_MASKED | ((spsr_el2 >> dit) & 1) << 24;
    if sctlr_el1 & (1 << 23) == 0 || spsr_el2 & (1 << 22) != 0 {
        spsr |= 1 << 22;
    }
    if sctlr_el1 & (1 << 44) != 0 {
        spsr |= 1 << 12;
    }
    Some(Injection { esr, vector, spsr })
}

/// ICC_SGI0R_EL1 value sending Group 0 SGI `intid` to the CPU with MPIDR
/// affinity `mpidr`, or with `None` to every CPU but the sender (IRM):
/// TargetList 15:0, Aff1 23:16, INTID 27:24, Aff2 39:32, IRM 40, RS 47:44,
/// Aff3 55:48.
pub fn sgi0r(intid: u32, target: Option<u64>) -> u64 {
    let base = ((intid & 0xf) as u64) << 24;
    match target {
        None => base | 1 << 40,
        Some(m) => {
            let aff0 = m & 0xff;
            base | (1 << (aff0 & 15))
                | ((m >> 8) & 0xff) << 16
                | ((m >> 16) & 0xff) << 32
                | (aff0 >> 4) << 44
                | ((m >> 32) & 0xff) << 48
        }
    }
}

/// Stage-1 descriptor bits (Arm ARM D8.3): table/page (0b11), block
/// (0b01), AttrIndx (4:2) 0 = Normal write-back, 1 = Device (the MAIR the
/// firmware's boot map set up, mmu.rs), SH inner (9:8), AF (10), AP[1] (6,
/// RES1 in the EL3 regime), XN (54).
pub const S1_TABLE: u64 = 0b11;
pub const S1_BLOCK: u64 = 0b01;
pub const S1_NORMAL: u64 = (3 << 8) | (1 << 10) | (1 << 6);
pub const S1_DEVICE: u64 = (1 << 2) | (1 << 10) | (1 << 6) | (1 << 54);

/// Builds the resident EL3 map in `t` (L1, L2 of GiB 0, L2 of GiB 1, L3 of
/// the firmware's 2 MiB block; `t` itself at virtual address `t_va`, which
/// lies in the moved range): the first GiB with flash and `secure` RAM as
/// Normal memory and the rest as Device, the second GiB Normal and
/// identity except `fw` = [start, end), which maps to `secure`'s base, and
/// the GiBs holding `mmio` regions above them as Device (QEMU virt's second
/// GIC redistributor region, which the firmware walks). Table pointers are
/// the tables' addresses after the move. Returns the TTBR0_EL3 value (the
/// L1's new physical address).
pub fn el3_map(
    t: &mut [[u64; 512]; 4],
    t_va: u64,
    secure: (u64, u64),
    fw: (u64, u64),
    mmio: &[(u64, u64)],
) -> Result<u64, &'static str> {
    let (fs, fe) = fw;
    if fs >= fe || !fs.is_multiple_of(PAGE) || !fe.is_multiple_of(PAGE) {
        return Err("the firmware's RAM is not a page-aligned range");
    }
    if fs / MIB2 != (fe - 1) / MIB2 || fs < GIB || fe > 2 * GIB {
        return Err("the firmware's RAM must lie in one 2 MiB block of the second GiB");
    }
    if !secure.0.is_multiple_of(PAGE)
        || secure.1 < fe - fs
        || secure.0.saturating_add(secure.1) > GIB
    {
        return Err("the secure RAM must be page-aligned, below 1 GiB and hold the firmware");
    }
    let t_end = t_va + 4 * PAGE;
    if t_va < fs || t_end > fe {
        return Err("the EL3 tables must lie in the firmware's RAM");
    }
    let to_secure = |va: u64| secure.0 + (va - fs);
    let pa = |i: u64| to_secure(t_va + i * PAGE);
    let in_secure = |a: u64| secure.0 < a + MIB2 && a < secure.0 + secure.1;
    for i in 0..512u64 {
        let a = i * MIB2;
        let attr = if a < FLASH.1 || in_secure(a) {
            S1_NORMAL
        } else {
            S1_DEVICE
        };
        t[1][i as usize] = a | S1_BLOCK | attr;
        let a = GIB + i * MIB2;
        t[2][i as usize] = a | S1_BLOCK | S1_NORMAL;
    }
    let block = fs / MIB2 * MIB2;
    t[2][((block - GIB) / MIB2) as usize] = pa(3) | S1_TABLE;
    for j in 0..512u64 {
        let va = block + j * PAGE;
        let out = if fs <= va && va < fe {
            to_secure(va)
        } else {
            va
        };
        t[3][j as usize] = out | S1_TABLE | S1_NORMAL;
    }
    t[0] = [0; 512];
    for &r in mmio {
        let (first, end) = mmio_gibs(r).ok_or("a GIC redistributor region outside the EL3 map")?;
        for g in first..end {
            t[0][g as usize] = (g * GIB) | S1_BLOCK | S1_DEVICE;
        }
    }
    t[0][0] = pa(1) | S1_TABLE;
    t[0][1] = pa(2) | S1_TABLE;
    Ok(pa(0))
}

/// The 1 GiB blocks `[first, end)` of a 39-bit map (T0SZ = 25, as mmu.rs
/// and the EL3 map use) that hold the MMIO region `(base, len)`, less the
/// first GiB, which both maps cover with 2 MiB blocks. None for a region in
/// the second GiB (RAM on virt), beyond the map's 512 GiB, or wrapping.
pub fn mmio_gibs((base, len): (u64, u64)) -> Option<(u64, u64)> {
    let first = base / GIB;
    let end = base.checked_add(len.max(1) - 1)? / GIB + 1;
    (end <= 512 && (end == 1 || first >= 2)).then_some((first.max(1), end))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QEMU 10.0 `-cpu max` ID register values that matter here (as the
    /// fields read on it: SVE, SME2 with FA64, pauth, CSV2 2, GICv3
    /// sysregs, PMUv3, HCX, FGT, ECV, TCR2, SCTLR2, S1PIE, S1POE, MOPS).
    fn max_like() -> IdRegs {
        IdRegs {
            pfr0: 1 << 32 | 1 << 24 | 2 << 56,
            pfr1: 1 << 24,
            pfr2: 0,
            mmfr0: 1 << 56 | 2 << 60,
            mmfr1: 1 << 40,
            mmfr3: 1 | 1 << 4 | 1 << 8 | 1 << 16,
            isar1: 1 << 8,
            isar2: 1 << 16,
            smfr0: 1 << 63 | 1 << 56,
            dfr0: 8 << 8,
        }
    }

    #[test]
    fn nothing_opened_without_features() {
        let f = Features::from_id(&IdRegs::default());
        assert_eq!(f, Features::default());
        assert_eq!(f.hcr_el2(), 1 | 1 << 19 | 1 << 31);
        assert_eq!(f.hcrx_el2(), 0);
        assert_eq!(f.hfgxtr_el2(), 0);
        // RES1 bits plus TZ and TSM, which are RES1 without SVE/SME.
        assert_eq!(f.cptr_el2(), 0x33ff);
        assert_eq!(f.scr_el3(), 0x531);
        assert_eq!(f.cptr_el3(), 0);
    }

    #[test]
    fn controls_follow_the_id_fields() {
        let f = Features::from_id(&max_like());
        assert!(f.sve && f.sme && f.sme_fa64 && f.sme2 && f.pauth && f.csv2_2);
        assert!(f.gicv3_sysregs && f.pmu && f.hcx && f.fgt && f.ecv);
        assert!(f.tcr2 && f.sctlr2 && f.s1pie && f.s1poe && f.mops);
        assert!(!f.mte2 && !f.gcs && !f.fpm && !f.aie && !f.amu);
        let hcr = f.hcr_el2();
        assert_eq!(hcr & (3 << 40), 3 << 40, "pointer auth untrapped");
        assert_ne!(hcr & 1 << 53, 0, "EnSCXT");
        assert_eq!(hcr & 1 << 56, 0, "no ATA without MTE2");
        assert_eq!(hcr & (7 << 3), 0, "IMO/FMO/AMO clear");
        assert_eq!(f.hcrx_el2(), 1 << 11 | 1 << 14 | 1 << 15);
        assert_eq!(f.hfgxtr_el2(), 0xf << 57 | 3 << 54);
        let cptr = f.cptr_el2();
        assert_eq!(cptr & (1 << 8 | 1 << 10 | 1 << 12), 0, "no FP/SVE/SME trap");
        let scr = f.scr_el3();
        for bit in [0, 8, 10, 16, 17, 25, 27, 28, 38, 41, 43, 44, 45] {
            assert_ne!(scr & 1 << bit, 0, "SCR_EL3 bit {bit}");
        }
        for bit in [1, 2, 3, 7, 26, 39, 46, 50] {
            assert_eq!(scr & 1 << bit, 0, "SCR_EL3 bit {bit}");
        }
        assert_eq!(f.cptr_el3(), 1 << 8 | 1 << 12);
        assert_eq!(f.smcr(), 0xf | 1 << 30 | 1 << 31);
    }

    const DABT_S2_TRANSLATION_L3_WRITE: u64 = EC_DABT_LOWER << 26 | 1 << 25 | 1 << 6 | 0x07;

    #[test]
    fn stage2_write_from_el1h_becomes_el1_external_abort() {
        let spsr = 0x3c5 | 1 << 24;
        let i = external_abort(DABT_S2_TRANSLATION_L3_WRITE, spsr, 0).unwrap();
        assert_eq!(i.esr, EC_DABT_SAME << 26 | 1 << 25 | 1 << 6 | 0x10);
        assert_eq!(i.vector, 0x200);
        // EL1h masked, DIT kept, PAN set (SPAN = 0).
        assert_eq!(i.spsr, 0x3c5 | 1 << 24 | 1 << 22);
        // SPAN = 1 keeps PAN as it was (clear); DSSBS sets SSBS.
        let i = external_abort(DABT_S2_TRANSLATION_L3_WRITE, 0x5, 1 << 23 | 1 << 44).unwrap();
        assert_eq!(i.spsr, 0x3c5 | 1 << 12);
    }

    #[test]
    fn vector_and_class_follow_the_origin() {
        let from_el0 = external_abort(DABT_S2_TRANSLATION_L3_WRITE, 0, 0).unwrap();
        assert_eq!(
            (from_el0.esr >> 26, from_el0.vector),
            (EC_DABT_LOWER, 0x400)
        );
        let from_el1t = external_abort(DABT_S2_TRANSLATION_L3_WRITE, 0x4, 0).unwrap();
        assert_eq!(from_el1t.vector, 0);
        let iabt = EC_IABT_LOWER << 26 | 1 << 25 | 0x06;
        let i = external_abort(iabt, 0x5, 0).unwrap();
        assert_eq!(i.esr, EC_IABT_SAME << 26 | 1 << 25 | 0x10);
    }

    #[test]
    fn aarch32_user_gets_the_aarch32_vector() {
        // User mode, DIT (AArch32 bit 21) set; a 16-bit T32 load (IL 0).
        let dabt16 = DABT_S2_TRANSLATION_L3_WRITE & !(1 << 25);
        let i = external_abort(dabt16, 0x10 | 1 << 21, 0).unwrap();
        assert_eq!(i.vector, 0x600);
        assert_eq!(i.esr, EC_DABT_LOWER << 26 | 1 << 6 | 0x10);
        assert_eq!(i.spsr, 0x3c5 | 1 << 24 | 1 << 22);
    }

    #[test]
    fn other_faults_are_not_injected() {
        // Permission fault, access flag fault, AArch32 Supervisor caller,
        // not an abort.
        assert_eq!(external_abort(EC_DABT_LOWER << 26 | 0x0f, 0x5, 0), None);
        assert_eq!(external_abort(EC_DABT_LOWER << 26 | 0x0b, 0x5, 0), None);
        assert_eq!(external_abort(DABT_S2_TRANSLATION_L3_WRITE, 0x13, 0), None);
        assert_eq!(external_abort(EC_HVC64 << 26, 0x5, 0), None);
    }

    #[test]
    fn sgi_targets() {
        assert_eq!(sgi0r(15, None), 15 << 24 | 1 << 40);
        assert_eq!(sgi0r(15, Some(3)), 15 << 24 | 1 << 3);
        // Aff0 0x12 -> range 1, bit 2; Aff1 0x34, Aff2 0x56, Aff3 0x78.
        let m = 0x78_0056_3412;
        assert_eq!(
            sgi0r(15, Some(m)),
            15 << 24 | 1 << 2 | 0x34 << 16 | 0x56 << 32 | 1 << 44 | 0x78 << 48
        );
    }

    /// Walks `t` like the MMU (tables found by their post-move address).
    fn walk(t: &[[u64; 512]; 4], ttbr: u64, va: u64) -> Option<(u64, bool)> {
        let idx = |d: u64| {
            let a = d & 0xffff_ffff_f000;
            (0..4).find(|&i| ttbr + i as u64 * PAGE == a).unwrap()
        };
        let mut table = idx(ttbr);
        for (level, shift) in [(1, 30), (2, 21), (3, 12)] {
            let d = t[table][((va >> shift) & 511) as usize];
            if d & 1 == 0 {
                return None;
            }
            let leaf = level == 3 || d & 2 == 0;
            if leaf {
                let mask = (1u64 << shift) - 1;
                let normal = d & (7 << 2) == 0;
                return Some(((d & 0xffff_ffff_f000 & !mask) | (va & mask), normal));
            }
            table = idx(d);
        }
        None
    }

    #[test]
    fn el3_map_moves_only_the_firmware() {
        let mut t = [[0u64; 512]; 4];
        let secure = (0x0e00_0000, 16 << 20);
        let fw = (0x4014_0000, 0x4020_0000);
        let t_va = 0x4015_0000;
        // QEMU virt `-smp 512`: the second redistributor region at 256 GiB.
        let gicr = [(0x080a_0000, 0xf6_0000), (0x40_0000_0000, 0x400_0000)];
        let ttbr = el3_map(&mut t, t_va, secure, fw, &gicr).unwrap();
        assert_eq!(ttbr, 0x0e01_0000);
        assert_eq!(walk(&t, ttbr, 0x1234), Some((0x1234, true)));
        assert_eq!(walk(&t, ttbr, 0x0800_0000), Some((0x0800_0000, false)));
        assert_eq!(walk(&t, ttbr, 0x0e00_1000), Some((0x0e00_1000, true)));
        assert_eq!(walk(&t, ttbr, 0x4000_0000), Some((0x4000_0000, true)));
        assert_eq!(walk(&t, ttbr, 0x4013_fff8), Some((0x4013_fff8, true)));
        assert_eq!(walk(&t, ttbr, 0x4014_0000), Some((0x0e00_0000, true)));
        assert_eq!(walk(&t, ttbr, 0x401f_fff0), Some((0x0e0b_fff0, true)));
        assert_eq!(walk(&t, ttbr, 0x4020_0000), Some((0x4020_0000, true)));
        assert_eq!(walk(&t, ttbr, 0x8000_0000), None);
        assert_eq!(walk(&t, ttbr, 0x080a_0000), Some((0x080a_0000, false)));
        let last = 0x40_0000_0000 + 0x400_0000 - 4;
        assert_eq!(walk(&t, ttbr, last), Some((last, false)));
        assert_eq!(walk(&t, ttbr, 0x3f_ffff_fff0), None);
        assert_eq!(walk(&t, ttbr, 0x40_4000_0000), None);
    }

    #[test]
    fn mmio_gibs_of_qemu_regions() {
        assert_eq!(mmio_gibs((0x080a_0000, 0xf6_0000)), Some((1, 1)));
        assert_eq!(mmio_gibs((0x40_0000_0000, 0x400_0000)), Some((256, 257)));
        // -m 1G,maxmem=300G,slots=2 moves the region to 303 GiB; one that
        // straddles a GiB boundary takes both.
        assert_eq!(mmio_gibs((0x4b_c000_0000, 0x400_0000)), Some((303, 304)));
        assert_eq!(mmio_gibs((0x4_3f00_0000, 0x200_0000)), Some((16, 18)));
        // In RAM's GiB, beyond 512 GiB (maxmem=1000G puts it at 1003 GiB),
        // or wrapping: refused.
        assert_eq!(mmio_gibs((0x4800_0000, 0x1000)), None);
        assert_eq!(mmio_gibs((0x3ff0_0000, 0x20_0000)), None);
        assert_eq!(mmio_gibs((0x7f_c000_0000, 0x4000_0001)), None);
        assert_eq!(mmio_gibs((0xfa_c000_0000, 0x400_0000)), None);
        assert_eq!(mmio_gibs((u64::MAX - 0xfff, 0x2000)), None);
    }

    #[test]
    fn el3_map_rejects_what_it_cannot_map() {
        let mut t = [[0u64; 512]; 4];
        let s = (0x0e00_0000, 16 << 20);
        let fw = (0x4014_0000, 0x4020_0000);
        assert!(el3_map(&mut t, 0x401f_0000, s, (0x401f_0000, 0x4021_0000), &[]).is_err());
        assert!(el3_map(&mut t, 0x4015_0000, (0x0e00_0000, 0x1000), fw, &[]).is_err());
        assert!(el3_map(&mut t, 0x4010_0000, s, fw, &[]).is_err());
        let far = [(0xfa_c000_0000, 0x400_0000)];
        assert!(el3_map(&mut t, 0x4015_0000, s, fw, &far).is_err());
    }
}
