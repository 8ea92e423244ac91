//! Resident at EL2 (`virt,virtualization=on`): the kernel runs at EL1 under
//! the firmware, which answers its PSCI calls (HVC, and SMC trapped by
//! HCR_EL2.TSC) and hides its own memory with stage-2 translation.
//!
//! This file sets EL2 up, enters the kernel and handles its traps; PSCI
//! calls that need the machine are relayed to QEMU (`el2/relay.rs`).
//!
//! Register fields: Arm ARM (DDI 0487) D23/D24 (the EL2 system registers),
//! exception syndromes D24.2.52 ESR_ELx. The set of EL2 controls Linux
//! expects a hypervisor below it to have opened is the one its own
//! `init_el2_state` sets when Linux boots at EL2 (arch/arm64/include/asm/
//! el2_setup.h); each is gated on its ID register field here.

mod relay;

use alloc::{string::ToString, vec::Vec};
use core::arch::{asm, global_asm};
use core::cell::UnsafeCell;

use hotstub::boot::plan::Resident;
use hotstub::platform::cpus::CpuModel;
use hotstub::platform::dt::Board;
use hotstub::println;
use hotstub::psci::Platform as _;
use hotstub::resident::regs::{external_abort, SPSR_EL1H_MASKED};
use hotstub::resident::regs::{EC_DABT_LOWER, EC_HVC64, EC_IABT_LOWER, EC_SMC64};
use hotstub::resident::stage2::{self, Table};
use hotstub::resident::{FLASH, PAGE};

use super::cpu::{self, FirmwareEl};
use super::hw;
use super::psci_glue;
use super::vectors::{self, Frame, STACK_SIZE};
use relay::El2;

/// Tables for stage 2: two concatenated level-1 tables plus the splits for
/// the holes: one level-2 table for the GiB with the flash (whose 2 MiB
/// blocks it covers whole), one for the GiB with the firmware's RAM and one
/// level-3 table for the 2 MiB block that RAM lies in (linker/aarch64.ld
/// keeps it to one; `resident::regs::el3_map` relies on that too).
const S2_TABLES: usize = stage2::L1_TABLES + 3;
/// The resident heap: the PSCI state (a slot per vCPU) and a few small
/// lists built while entering the kernel; nothing is allocated at run time.
const fn arena_heap(cpus: usize) -> usize {
    (2048 + cpus * 128).next_multiple_of(PAGE as usize)
}

/// What a secondary needs before its MMU is on, read with caches off (so
/// cleaned to PoC after writing): the boot CPU's EL2 stage-1 settings and
/// where the handler stacks are. Layout shared with `res_el2_secondary`.
#[repr(C, align(64))]
struct SecondaryBoot {
    mair: u64,
    tcr: u64,
    ttbr: u64,
    sctlr: u64,
    stacks: u64,
    count: u64,
}
struct BootCell(UnsafeCell<SecondaryBoot>);
// SAFETY: written once by the boot CPU before any secondary is started.
unsafe impl Sync for BootCell {}
static BOOT: BootCell = BootCell(UnsafeCell::new(SecondaryBoot {
    mair: 0,
    tcr: 0,
    ttbr: 0,
    sctlr: 0,
    stacks: 0,
    count: 0,
}));

/// Stage-2 settings every CPU loads.
static VTTBR: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

global_asm!(
    r#"
    .section .text.res_el2, "ax"
    .balign 4
    // QEMU's CPU_ON brings a secondary here at EL2, MMU off, x0 = its
    // vCPU index (the context id the firmware passed).
    .global res_el2_secondary
res_el2_secondary:
    mov     x19, x0
    ldr     x1, ={boot}
    ldp     x2, x3, [x1]
    ldp     x4, x5, [x1, #16]
    msr     mair_el2, x2
    msr     tcr_el2, x3
    msr     ttbr0_el2, x4
    isb
    tlbi    alle2
    dsb     nsh
    isb
    msr     sctlr_el2, x5
    isb
    ldp     x6, x7, [x1, #32]
    cmp     x19, x7
    b.hs    1f
    add     x8, x19, #1
    mov     x9, #{stack}
    madd    x6, x8, x9, x6
    mov     sp, x6
    mov     x0, x19
    bl      hotstub_el2_secondary
1:  wfe
    b       1b
    "#,
    boot = sym BOOT,
    stack = const STACK_SIZE,
);

extern "C" {
    fn res_el2_secondary();
}

/// The PSCI platform: QEMU starts the secondaries in `res_el2_secondary`.
static EL2: El2 = El2 {
    secondary_entry: res_el2_secondary,
};

/// Per-CPU EL2 state for running the kernel at EL1.
fn init_cpu(vttbr: u64) {
    let f = cpu::features();
    let vbar = vectors::vbar();
    cpu::open_lower_els(&f, FirmwareEl::El2);
    // SAFETY: EL2 control registers; none of them affects the firmware's
    // own EL2 translation regime or stack, and the values open EL1 up
    // rather than take anything from the firmware.
    unsafe {
        asm!("msr hcr_el2, {}", in(reg) f.hcr_el2(), options(nostack));
        if f.hcx {
            asm!("msr S3_4_C1_C2_2, {}", in(reg) f.hcrx_el2(), options(nostack));
        }
        if f.fgt {
            // HFGRTR_EL2, HFGWTR_EL2, HFGITR_EL2, HDFGRTR_EL2, HDFGWTR_EL2.
            let open = f.hfgxtr_el2();
            asm!("msr S3_4_C1_C1_4, {0}", "msr S3_4_C1_C1_5, {0}",
                 "msr S3_4_C1_C1_6, xzr", "msr S3_4_C3_C1_4, xzr", "msr S3_4_C3_C1_5, xzr",
                 in(reg) open, options(nostack));
            if f.amu {
                // HAFGRTR_EL2.
                asm!("msr S3_4_C3_C1_6, xzr", options(nostack));
            }
        }
        // EL1 sees the real MIDR and MPIDR.
        asm!("mrs {t}, midr_el1", "msr vpidr_el2, {t}",
             "mrs {t}, mpidr_el1", "msr vmpidr_el2, {t}", t = out(reg) _, options(nostack));
        // CNTHCTL_EL2 (E2H = 0): EL1PCTEN (0), EL1PCEN (1): EL1 owns the
        // physical counter and timer. No virtual offset.
        asm!("msr cnthctl_el2, {}", "msr cntvoff_el2, xzr", in(reg) 3u64, options(nostack));
        // MDCR_EL2: HPMN = PMCR_EL0.N (bits 15:11) so EL1 sees all counters;
        // no debug or PMU traps.
        let mdcr = if f.pmu {
            let pmcr: u64;
            asm!("mrs {}, pmcr_el0", out(reg) pmcr, options(nomem, nostack));
            (pmcr >> 11) & 0x1f
        } else {
            0
        };
        asm!("msr mdcr_el2, {}", "msr hstr_el2, xzr", in(reg) mdcr, options(nostack));
        asm!("msr vtcr_el2, {}", "msr vttbr_el2, {}", "isb",
             "tlbi alle1", "dsb ish", "msr vbar_el2, {}", "isb",
             in(reg) stage2::VTCR, in(reg) vttbr, in(reg) vbar, options(nostack));
    }
}

/// Enters the kernel at EL1h with x0 = `x0`, leaving this CPU's EL2 stack
/// at `stack_top` for the traps to come.
fn eret_el1(entry: u64, x0: u64, stack_top: u64) -> ! {
    // SAFETY: EL2 state is set up (`init_cpu`); the firmware needs nothing
    // on this CPU until the next trap, which starts on the empty stack.
    // The I-cache and EL1 TLBs are invalidated for the freshly loaded
    // kernel (booting.rst).
    unsafe {
        asm!(
            "mov sp, x6",
            "msr elr_el2, x4",
            "msr spsr_el2, x5",
            "ic iallu",
            "tlbi alle1",
            "dsb sy",
            "isb",
            "mov x1, xzr",
            "mov x2, xzr",
            "mov x3, xzr",
            "eret",
            in("x0") x0,
            in("x4") entry,
            in("x5") SPSR_EL1H_MASKED,
            in("x6") stack_top,
            options(noreturn),
        )
    }
}

/// Sets the RAM the resident firmware keeps aside at the top of the heap's
/// region, for `cpus` vCPUs: their handler stacks (STACK_SIZE aligned),
/// the stage-2 tables (the level-1 pair aligned to its 8 KiB, which the
/// stacks' size keeps) and its heap. Called before the memory map that
/// lists it is written.
pub fn set_aside(cpus: usize) -> Result<Resident, &'static str> {
    let size = cpus * STACK_SIZE + S2_TABLES * PAGE as usize + arena_heap(cpus);
    let base = super::super::reserve_top(size, STACK_SIZE)
        .ok_or("too many vCPUs for the resident firmware's handler stacks")?;
    Ok(Resident {
        data_end: hw::layout::data_end(),
        arena: (base, size as u64),
    })
}

/// The stage-2 tables in the arena.
///
/// # Safety
/// `at` is the tables' part of the arena [`set_aside`] reserved, `S2_TABLES`
/// pages, used for nothing else; called once.
unsafe fn s2_tables(at: u64) -> &'static mut [Table] {
    // SAFETY: the caller's contract; RAM, identity mapped, page aligned.
    unsafe { core::slice::from_raw_parts_mut(at as *mut Table, S2_TABLES) }
}

/// Stays resident at EL2 and enters the kernel at EL1 on the boot CPU.
/// `kept` is the firmware's RAM, as (base, size), that must stay hidden
/// from the kernel, `arena` the part of it [`set_aside`] reserved; `model`
/// carries the vCPU policy.
pub fn enter(
    platform: &Board,
    model: &CpuModel,
    kept: &[(u64, u64)],
    arena: (u64, u64),
    entry: u64,
    dt: u64,
) -> Result<hotstub::boot::pipeline::Never, alloc::string::String> {
    let (stacks, end) = (arena.0, arena.0 + arena.1);
    let s2 = stacks + (model.len() * STACK_SIZE) as u64;
    let heap = s2 + (S2_TABLES as u64) * PAGE;
    // From here on the firmware allocates only from the arena: the boot
    // heap becomes Linux's.
    super::super::switch_heap(heap, end - heap);
    psci_glue::init(model, &platform.memory, kept, Some(stacks), &EL2)?;

    let ram: Vec<(u64, u64)> = platform.memory.iter().map(|&(b, s)| (b, b + s)).collect();
    // SAFETY: `s2` is the arena's table part, taken once, here, on the boot
    // CPU, before any CPU uses stage 2.
    let tables = unsafe { s2_tables(s2) };
    let holes: Vec<(u64, u64)> = kept
        .iter()
        .map(|&(b, s)| (b, b + s))
        .chain([FLASH])
        .collect();
    let cfg = stage2::build(tables, s2, &ram, &holes).map_err(|e| e.to_string())?;
    VTTBR.store(cfg.vttbr, core::sync::atomic::Ordering::Relaxed);

    let boot_index = psci_glue::boot_index();
    // SAFETY: no secondary runs yet; written once, then cleaned to PoC for
    // the secondaries' cache-off reads.
    unsafe {
        let b = &mut *BOOT.0.get();
        asm!("mrs {}, mair_el2", "mrs {}, tcr_el2", "mrs {}, ttbr0_el2", "mrs {}, sctlr_el2",
             out(reg) b.mair, out(reg) b.tcr, out(reg) b.ttbr, out(reg) b.sctlr,
             options(nomem, nostack));
        b.stacks = psci_glue::stack_top(0) - STACK_SIZE as u64;
        b.count = model.len() as u64;
    }
    super::mmu::clean_to_poc(BOOT.0.get() as u64, size_of::<SecondaryBoot>() as u64);

    init_cpu(cfg.vttbr);
    println!("hotstub: resident at EL2, kernel at EL1");
    eret_el1(entry, dt, psci_glue::stack_top(boot_index))
}

/// A secondary started by the forwarded CPU_ON, on its handler stack with
/// the EL2 MMU on.
#[no_mangle]
extern "C" fn hotstub_el2_secondary(index: u64) -> ! {
    let index = index as usize;
    let Some(e) = psci_glue::secondary_started(index) else {
        println!("hotstub: vCPU {index} started without a pending CPU_ON; powering it off");
        EL2.cpu_off(index)
    };
    init_cpu(VTTBR.load(core::sync::atomic::Ordering::Relaxed));
    eret_el1(e.entry, e.context_id, psci_glue::stack_top(index))
}

/// Synchronous exception from EL1/EL0.
pub(super) fn sync(f: &mut Frame) {
    let ((esr, elr, far), hpfar) = (hw::fault_registers(), cpu::hpfar());
    let ec = esr >> 26;
    match ec {
        EC_HVC64 | EC_SMC64 => {
            if ec == EC_SMC64 {
                // A trapped SMC reports the SMC itself (Arm ARM D1.4.5).
                f.elr += 4;
            }
            psci_glue::smccc(f, esr);
        }
        EC_IABT_LOWER | EC_DABT_LOWER => inject_external_abort(f, esr, far, hpfar),
        _ => psci_glue::unexpected(&"trap from EL1", esr, elr, far, hpfar),
    }
}

/// A stage-2 fault: the kernel touched the firmware's memory (or an IPA
/// beyond the map). The access must not happen and the firmware must go
/// on: the kernel gets a synchronous external abort at EL1
/// (`resident::regs::external_abort`), as if nobody answered the access.
fn inject_external_abort(f: &mut Frame, esr: u64, far: u64, hpfar: u64) {
    let (vbar, sctlr): (u64, u64);
    // SAFETY: reads of the interrupted kernel's EL1 registers.
    unsafe {
        asm!("mrs {}, vbar_el1", "mrs {}, sctlr_el1", out(reg) vbar, out(reg) sctlr,
             options(nomem, nostack));
    }
    let Some(inj) = external_abort(esr, f.spsr, sctlr) else {
        psci_glue::unexpected(&"stage-2 abort", esr, f.elr, far, hpfar);
    };
    // SAFETY: EL1 exception registers of the interrupted kernel, written
    // exactly as an exception taken to EL1 would.
    unsafe {
        asm!("msr esr_el1, {}", "msr far_el1, {}", "msr elr_el1, {}", "msr spsr_el1, {}",
             in(reg) inj.esr, in(reg) far, in(reg) f.elr, in(reg) f.spsr, options(nostack));
    }
    f.elr = vbar + inj.vector;
    f.spsr = inj.spsr;
}
