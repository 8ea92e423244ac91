//! This CPU's own registers that the resident firmware at EL2 and at EL3
//! both read or set: its ID registers (`features`), its affinity, the EL2
//! fault register the fatal path reports, WFI, and the FP/SVE/SME and GIC
//! CPU interface controls both open for the ELs below them.
//!
//! Nothing here imports another file of `arch/aarch64`: the EL2 and EL3
//! code, the PSCI glue and the trap dispatch all build on it.

use core::arch::asm;

use hotstub::platform::cpus::MPIDR_AFFINITY_MASK;
use hotstub::resident::regs::{Features, IdRegs};

/// The ID registers `resident::regs::Features` is derived from. Registers
/// the assembler may not know by name are given by encoding:
/// ID_AA64PFR2_EL1 S3_0_C0_C4_2, ID_AA64SMFR0_EL1 S3_0_C0_C4_5,
/// ID_AA64ISAR2_EL1 S3_0_C0_C6_2, ID_AA64MMFR3_EL1 S3_0_C0_C7_3 (all
/// read as zero where not implemented, Arm ARM D19.2).
pub fn features() -> Features {
    let mut id = IdRegs::default();
    // SAFETY: ID register reads have no side effects.
    unsafe {
        asm!("mrs {}, id_aa64pfr0_el1", "mrs {}, id_aa64pfr1_el1", "mrs {}, S3_0_C0_C4_2",
             "mrs {}, id_aa64mmfr0_el1", "mrs {}, id_aa64mmfr1_el1",
             out(reg) id.pfr0, out(reg) id.pfr1, out(reg) id.pfr2, out(reg) id.mmfr0,
             out(reg) id.mmfr1, options(nomem, nostack));
        asm!("mrs {}, S3_0_C0_C7_3", "mrs {}, id_aa64isar1_el1", "mrs {}, S3_0_C0_C6_2",
             "mrs {}, S3_0_C0_C4_5", "mrs {}, id_aa64dfr0_el1",
             out(reg) id.mmfr3, out(reg) id.isar1, out(reg) id.isar2, out(reg) id.smfr0,
             out(reg) id.dfr0, options(nomem, nostack));
    }
    Features::from_id(&id)
}

/// MPIDR_EL1 affinity of the calling CPU (at EL2 and EL3 the physical
/// value, which the firmware also gives EL1 through VMPIDR_EL2).
pub fn mpidr() -> u64 {
    let v: u64;
    // SAFETY: reading MPIDR_EL1 has no side effects.
    unsafe { asm!("mrs {}, mpidr_el1", out(reg) v, options(nomem, nostack)) };
    v & MPIDR_AFFINITY_MASK
}

/// HPFAR_EL2: the faulting IPA page of a stage-2 abort. Only meaningful
/// at EL2 (EL3 has no stage 2 of its own).
pub fn hpfar() -> u64 {
    let v: u64;
    // SAFETY: reading EL2's own fault register has no side effects.
    unsafe { asm!("mrs {}, hpfar_el2", out(reg) v, options(nomem, nostack)) };
    v
}

/// Waits for an interrupt (WFI wakes on a pending interrupt even while it
/// is masked, Arm ARM D1.6.2 "Wait for Interrupt"): core standby.
pub fn wait_for_interrupt() {
    // SAFETY: only idles the CPU.
    unsafe { asm!("dsb sy", "wfi", options(nostack)) };
}

/// The EL the resident firmware runs at, whose copies of the controls
/// [`open_lower_els`] writes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum FirmwareEl {
    El2,
    El3,
}

/// Opens FP/SIMD, SVE and SME and the GIC system register interface to
/// the ELs below the firmware, on this CPU (Arm ARM D24: CPTR_ELx,
/// ZCR_ELx, SMCR_ELx; GICv3 spec 12.2: ICC_SRE_ELx). What differs by EL:
///
/// - CPTR: `Features` gives each EL's value, because the two registers
///   have opposite senses (CPTR_EL2 with E2H = 0 traps when TZ/TSM are
///   set, CPTR_EL3 enables when EZ/ESM are set).
/// - ZCR.LEN = 15 and SMCR (`Features::smcr`): the largest lengths, so
///   the lower ELs choose; the same values at EL2 and EL3, only the
///   registers' encodings differ (op1 4 at EL2, 6 at EL3).
/// - At EL2 ICH_HCR_EL2 = 0: the firmware is no hypervisor that injects
///   virtual interrupts. At EL3 ICC_PMR_EL1 is opened instead: with
///   SCR_EL3.FIQ set the normal world cannot change a mask left in the
///   secure range (as the reset value 0 is), so Linux would never get an
///   interrupt (GICv3 spec 4.8.6). EL2 has no such secure range to leave.
// Inlined: each caller passes a constant EL, so only that EL's writes are
// left in its `init_cpu` (the image has a size budget, xtask build.rs).
#[inline(always)]
pub fn open_lower_els(f: &Features, at: FirmwareEl) {
    // SAFETY: trap, vector length and GIC CPU interface controls of the
    // firmware's own EL (and ICC_PMR_EL1, which only gates interrupts the
    // firmware keeps masked in DAIF); they open the lower ELs and do not
    // affect the firmware's translation regime or stack. CPTR is written
    // first so that ZCR and SMCR are not trapped.
    unsafe {
        match at {
            FirmwareEl::El2 => {
                asm!("msr cptr_el2, {}", "isb", in(reg) f.cptr_el2(), options(nostack))
            }
            FirmwareEl::El3 => {
                asm!("msr cptr_el3, {}", "isb", in(reg) f.cptr_el3(), options(nostack))
            }
        }
        if f.sve {
            match at {
                FirmwareEl::El2 => asm!("msr S3_4_C1_C2_0, {}", in(reg) 0xfu64, options(nostack)),
                FirmwareEl::El3 => asm!("msr S3_6_C1_C2_0, {}", in(reg) 0xfu64, options(nostack)),
            }
        }
        if f.sme {
            match at {
                FirmwareEl::El2 => asm!("msr S3_4_C1_C2_6, {}", in(reg) f.smcr(), options(nostack)),
                FirmwareEl::El3 => asm!("msr S3_6_C1_C2_6, {}", in(reg) f.smcr(), options(nostack)),
            }
        }
        if f.gicv3_sysregs {
            // ICC_SRE_ELx: SRE (0), DFB (1), DIB (2), Enable (3): the lower
            // ELs may use the system register interface.
            match at {
                FirmwareEl::El2 => asm!("msr S3_4_C12_C9_5, {}", "isb", "msr S3_4_C12_C11_0, xzr",
                                      in(reg) 0xfu64, options(nostack)),
                FirmwareEl::El3 => asm!("msr S3_6_C12_C12_5, {}", "isb",
                                      "msr S3_0_C4_C6_0, {}", "isb",
                                      in(reg) 0xfu64, in(reg) 0xffu64, options(nostack)),
            }
        }
    }
}
