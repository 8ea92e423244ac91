//! The firmware that stays below the kernel as its PSCI implementation.
//!
//! At EL2 (`virt,virtualization=on`) the firmware keeps EL2, runs the kernel
//! at EL1 and traps its HVC and SMC calls (`el2.rs`); at EL3
//! (`virt,secure=on`) it is the secure monitor and the only PSCI
//! (`el3.rs`) and enters the kernel at EL2. At EL1 nothing stays: PSCI is
//! the VMM's.
//!
//! At EL2 the firmware stays only to enforce a vCPU policy
//! (`Handoff::decide`): to refuse CPU_ON for disabled vCPUs, which QEMU's
//! PSCI would start. The kernel then runs at EL1 and cannot use KVM.
//!
//! This file holds what both share: the PSCI state (the host-tested
//! dispatcher in `hotstub::psci` does the logic, `el2.rs` and `el3.rs`
//! implement its `psci::Platform`), the per-CPU handler stacks, and the
//! register frame the trap vectors save.
//!
//! Memory: everything the resident code uses at run time (`.data`, `.bss`,
//! the heap with the PSCI state, the stacks, the translation tables) lies in
//! the firmware's RAM behind the hand-off area, `[handoff_end, fw_end)`. At
//! EL2 it keeps the data, the heap as far as it ever grew (`heap_limit`) and
//! the boot stack; at EL3 all of it moves to the secure RAM. What is kept is
//! reported to Linux as EfiRuntimeServicesCode, which Linux
//! keeps out of its linear map (and which the PSCI test payload looks for),
//! and at EL2 stage 2 leaves it unmapped. The hand-off area itself (ACPI,
//! EFI table, DT) stays readable: the kernel needs it. Code and read-only
//! data run from flash, which stage 2 hides as well.

use alloc::vec::Vec;

use hotstub::platform::cpus::{CpuModel, MPIDR_AFFINITY_MASK};
use hotstub::psci::{self, CpuStates, Outcome, Platform, Policy, SharedStates};

use core::arch::asm;
use core::fmt::Display;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// MPIDR_EL1 affinity of the calling CPU (at EL2 and EL3 the physical
/// value, which the firmware also gives EL1 through VMPIDR_EL2).
pub fn mpidr() -> u64 {
    let v: u64;
    // SAFETY: reading MPIDR_EL1 has no side effects.
    unsafe { asm!("mrs {}, mpidr_el1", out(reg) v, options(nomem, nostack)) };
    v & MPIDR_AFFINITY_MASK
}

/// Waits for an interrupt (WFI wakes on a pending interrupt even while it
/// is masked, Arm ARM D1.6.2 "Wait for Interrupt"): core standby.
pub fn wait_for_interrupt() {
    // SAFETY: only idles the CPU.
    unsafe { asm!("dsb sy", "wfi", options(nostack)) };
}

/// Bytes of handler stack per CPU: the dispatcher's deepest path (CPU_ON
/// through the platform hook, with formatting on the error path) uses a
/// few hundred bytes; 8 KiB leaves ample margin.
pub const STACK_SIZE: usize = 8 << 10;

/// One vCPU's handler stack, aligned to its size: the fatal path of the
/// vectors finds the top of the stack it is on from SP alone.
#[repr(C, align(8192))]
struct Stack([u8; STACK_SIZE]);
const _: () = assert!(core::mem::align_of::<Stack>() == STACK_SIZE);

/// `[base, end)` of the handler stacks, for the vectors' fatal path.
static STACK_BOUNDS: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

/// The registers a trap vector saves, in this order (`el2.rs`/`el3.rs`
/// vector code stores them at these offsets): x0..x30, the return address
/// and the saved PSTATE of the trapping context, one pad word for 16-byte
/// stack alignment.
#[repr(C)]
pub struct Frame {
    pub x: [u64; 31],
    pub elr: u64,
    pub spsr: u64,
    _pad: u64,
}

struct Resident {
    states: SharedStates,
    policy: Policy,
    /// Base of the handler stacks, one STACK_SIZE block per vCPU index.
    stacks: u64,
    platform: &'static (dyn Platform + Sync),
}

static RESIDENT: spin::Once<Resident> = spin::Once::new();

/// Sets up the PSCI state once, on the boot CPU, before any other CPU can
/// run or trap. `ram` is the caller's RAM as (base, size), `reserved` the
/// resident firmware's memory (CPU_ON refuses entry points there).
pub fn init(
    model: &CpuModel,
    ram: &[(u64, u64)],
    reserved: &[(u64, u64)],
    platform: &'static (dyn Platform + Sync),
) -> Result<(), &'static str> {
    let states = CpuStates::new(model, mpidr()).ok_or("the boot CPU is not in the DT")?;
    let n = states.len();
    // Only the memory is needed (never freed, never read before written).
    let stacks = Vec::<Stack>::with_capacity(n).leak().as_ptr() as u64;
    STACK_BOUNDS[0].store(stacks, Ordering::Relaxed);
    STACK_BOUNDS[1].store(stacks + (n * STACK_SIZE) as u64, Ordering::Relaxed);
    RESIDENT.call_once(|| Resident {
        states: spin::Mutex::new(states),
        policy: Policy::excluding(ram, reserved),
        stacks,
        platform,
    });
    Ok(())
}

fn resident() -> &'static Resident {
    match RESIDENT.get() {
        Some(r) => r,
        // Only reachable through a firmware bug: vectors installed before
        // `init`.
        None => super::fatal("resident handler used before set-up"),
    }
}

/// Top of vCPU `index`'s handler stack.
pub fn stack_top(index: usize) -> u64 {
    resident().stacks + ((index + 1) * STACK_SIZE) as u64
}

/// Runs `f` on the PSCI state, under its lock.
pub fn with_states<R>(f: impl FnOnce(&mut CpuStates) -> R) -> R {
    f(&mut resident().states.lock())
}

/// Index of the boot CPU (the one running `init`) in the PSCI state.
pub fn boot_index() -> usize {
    resident().states.lock().index_of(mpidr()).unwrap_or(0)
}

/// A CPU arrived in the firmware's secondary entry with `index` as its
/// context: where it must enter the caller's world, if a CPU_ON is pending
/// for it and `index` really is this CPU.
pub fn secondary_started(index: usize) -> Option<psci::Entry> {
    let r = resident();
    let mut s = r.states.lock();
    if s.index_of(mpidr()) != Some(index) {
        return None;
    }
    s.started(index)
}

/// Handles one HVC or SMC (syndrome `esr`) in `f`: function ID in x0,
/// arguments in x1..x3, results to x0..x3 of the frame. SMCCC calls use
/// immediate 0; any other gets "Unknown Function Identifier" (DEN0028).
/// Calls that power the CPU or the machine off do not return.
pub fn smccc(f: &mut Frame, esr: u64) {
    if esr & 0xffff != 0 {
        f.x[0] = psci::ids::ret::NOT_SUPPORTED as i64 as u64;
        return;
    }
    let r = resident();
    let regs = [f.x[0], f.x[1], f.x[2], f.x[3]];
    let mpidr = mpidr();
    let outcome = {
        let mut s = r.states.lock();
        psci::handle(&mut s, &r.policy, mpidr, regs, r.platform)
    };
    match outcome {
        Outcome::Return(v) => f.x[..4].copy_from_slice(&v),
        Outcome::Standby(v) => {
            r.platform.cpu_standby(v[1] as u32);
            f.x[..4].copy_from_slice(&v);
        }
        Outcome::CpuOff => {
            let mut s = r.states.lock();
            let Some(i) = s.index_of(mpidr) else {
                drop(s);
                super::fatal("CPU_OFF from a CPU not in the DT")
            };
            s.stopped(i);
            drop(s);
            r.platform.cpu_off(i)
        }
        Outcome::SystemOff => r.platform.system_off(),
        Outcome::SystemReset => r.platform.system_reset(),
    }
}

/// Reports made so far: a report that faults itself comes back here, so
/// after a few only the power-off is tried.
static REPORTS: AtomicU32 = AtomicU32::new(0);

/// Reports an exception the firmware cannot handle, naming the CPU, and
/// powers off. Any CPU may get here at any time, several at once: each on
/// its own stack (the vectors' fatal path), each report one console write
/// (whole lines, never interleaved), and a console held by a CPU that
/// faulted is given up on rather than waited for.
pub fn unexpected(what: &dyn Display, esr: u64, elr: u64, far: u64, hpfar: u64) -> ! {
    if REPORTS.fetch_add(1, Ordering::Relaxed) < 8 {
        hotstub::console::print_bounded(
            format_args!(
                "hotstub: error: resident firmware: CPU {:#x}: unexpected {what}: ESR={esr:#x} ELR={elr:#x} FAR={far:#x} HPFAR={hpfar:#x}\n",
                mpidr()
            ),
            1 << 24,
        );
    }
    match RESIDENT.get() {
        Some(r) => r.platform.system_off(),
        None => super::power_off(),
    }
}

// The firmware's one vector table, at whichever EL it runs (16 entries
// of 0x80 bytes, 2 KiB aligned, Arm ARM D1.3.1), from the reset entry on:
// the firmware keeps its EL for its whole life, so one table with the EL
// read at run time costs 2 KiB where a table per EL cost three.
//
// The expected entries, synchronous (+0x400) and FIQ (+0x500: the EL3
// firmware's Group 0 interrupts, taken while the normal world runs) from
// a lower EL in AArch64, save the caller's x0..x30, ELR and SPSR as a
// [`Frame`] on this CPU's handler stack (SP_ELx, left at the stack top
// whenever the firmware returns to the caller), call
// `hotstub_sync(&mut Frame, kind)` (kind 0: synchronous, 1: FIQ) and
// restore everything from the frame before returning. Every other entry
// calls `hotstub_unexpected(index)`, which reports and powers off, on the
// top of this CPU's handler stack: SP_ELx lies in it (at its top when the
// exception came from a lower EL), the stacks are aligned to their size,
// so rounding SP up to STACK_SIZE finds the top without knowing the CPU.
// When that is not in the handler stacks (the boot CPU before the kernel
// runs, or an SP gone astray) the boot stack is used.
core::arch::global_asm!(
    ".section .text.vectors, \"ax\"",
    ".balign 0x800",
    ".global hotstub_vectors",
    "hotstub_vectors:",
    ".set i, 0",
    ".rept 16",
    ".balign 0x80",
    ".if i == 8",
    "b res_sync_lower",
    ".elseif i == 10",
    "b res_fiq_lower",
    ".else",
    "mov x0, #i",
    "b res_unexpected",
    ".endif",
    ".set i, i + 1",
    ".endr",
    ".section .text.res, \"ax\"",
    "res_unexpected:",
    "sub x1, sp, #1",
    "orr x1, x1, #{mask}",
    "add x1, x1, #1",
    "ldr x2, ={bounds}",
    "ldp x3, x4, [x2]",
    "cmp x1, x3",
    "ccmp x1, x4, #2, hi",
    "b.ls 2f",
    "ldr x1, =__stack_top",
    "2: mov sp, x1",
    "bl hotstub_unexpected",
    "res_fiq_lower:",
    "sub sp, sp, #272",
    "stp x0, x1, [sp, #0]",
    "mov x1, #1",
    "b 3f",
    "res_sync_lower:",
    "sub sp, sp, #272",
    "stp x0, x1, [sp, #0]",
    "mov x1, #0",
    "3: stp x2, x3, [sp, #16]",
    "stp x4, x5, [sp, #32]",
    "stp x6, x7, [sp, #48]",
    "stp x8, x9, [sp, #64]",
    "stp x10, x11, [sp, #80]",
    "stp x12, x13, [sp, #96]",
    "stp x14, x15, [sp, #112]",
    "stp x16, x17, [sp, #128]",
    "stp x18, x19, [sp, #144]",
    "stp x20, x21, [sp, #160]",
    "stp x22, x23, [sp, #176]",
    "stp x24, x25, [sp, #192]",
    "stp x26, x27, [sp, #208]",
    "stp x28, x29, [sp, #224]",
    // Only the resident EL2 and EL3 firmware has a lower EL that traps.
    "mrs x0, CurrentEL",
    "cmp x0, #(3 << 2)",
    "b.ne 4f",
    "mrs x0, elr_el3",
    "mrs x2, spsr_el3",
    "b 5f",
    "4: mrs x0, elr_el2",
    "mrs x2, spsr_el2",
    "5: stp x30, x0, [sp, #240]",
    "str x2, [sp, #256]",
    "mov x0, sp",
    "bl hotstub_sync",
    "ldp x30, x0, [sp, #240]",
    "ldr x1, [sp, #256]",
    "mrs x2, CurrentEL",
    "cmp x2, #(3 << 2)",
    "b.ne 6f",
    "msr elr_el3, x0",
    "msr spsr_el3, x1",
    "b 7f",
    "6: msr elr_el2, x0",
    "msr spsr_el2, x1",
    "7: ldp x0, x1, [sp, #0]",
    "ldp x2, x3, [sp, #16]",
    "ldp x4, x5, [sp, #32]",
    "ldp x6, x7, [sp, #48]",
    "ldp x8, x9, [sp, #64]",
    "ldp x10, x11, [sp, #80]",
    "ldp x12, x13, [sp, #96]",
    "ldp x14, x15, [sp, #112]",
    "ldp x16, x17, [sp, #128]",
    "ldp x18, x19, [sp, #144]",
    "ldp x20, x21, [sp, #160]",
    "ldp x22, x23, [sp, #176]",
    "ldp x24, x25, [sp, #192]",
    "ldp x26, x27, [sp, #208]",
    "ldp x28, x29, [sp, #224]",
    "add sp, sp, #272",
    "eret",
    mask = const STACK_SIZE - 1,
    bounds = sym STACK_BOUNDS,
);

extern "C" {
    static hotstub_vectors: u8;
}

/// The address of the vector table, for VBAR_ELx.
pub fn vectors() -> u64 {
    (&raw const hotstub_vectors) as u64
}

/// An expected trap from the lower EL: at EL3 an SMC or (kind 1) a Group 0
/// FIQ; at EL2 an HVC, SMC or stage-2 abort. Anything else is unexpected.
#[no_mangle]
extern "C" fn hotstub_sync(f: &mut Frame, kind: u64) {
    match (super::hw::current_el(), kind) {
        (3, _) => super::el3::sync(f, kind),
        (2, 0) => super::el2::sync(f),
        _ => hotstub_unexpected(8 + 2 * kind),
    }
}

/// Any other exception (`index`: the vector, Arm ARM D1.3.1 order): the
/// resident firmware's per-CPU report once it runs below the kernel, the
/// boot report before.
#[no_mangle]
extern "C" fn hotstub_unexpected(index: u64) -> ! {
    let el = super::hw::current_el();
    if el == 1 || RESIDENT.get().is_none() {
        super::boot_exception(index)
    }
    let (esr, elr, far) = super::hw::fault_registers();
    // Below EL3 sit EL2 and EL1; below EL2 only EL1.
    let (here, lower) = if el == 2 {
        ("EL2", "EL1")
    } else {
        ("EL3", "a lower EL")
    };
    let (from, mode) = [
        (here, " (SP_EL0)"),
        (here, ""),
        (lower, " (AArch64)"),
        (lower, " (AArch32)"),
    ][(index >> 2) as usize & 3];
    let kind = super::hw::EXCEPTION_KIND[(index & 3) as usize];
    let hpfar = if el == 2 { super::el2::hpfar() } else { 0 };
    unexpected(
        &format_args!("{kind} exception from {from}{mode}"),
        esr,
        elr,
        far,
        hpfar,
    )
}

const _: () = assert!(core::mem::size_of::<Frame>() == 272);
