//! The firmware that stays below the kernel as its PSCI implementation.
//!
//! At EL2 (`virt,virtualization=on`) the firmware keeps EL2, runs the kernel
//! at EL1 and traps its HVC and SMC calls (`el2.rs`); at EL3
//! (`virt,secure=on`) it is the secure monitor and the only PSCI
//! (`el3.rs`) and enters the kernel at EL2. At EL1 nothing stays: PSCI is
//! the VMM's.
//!
//! Started at EL2, the firmware always stays resident: that is how it can
//! refuse CPU_ON for disabled vCPUs, which QEMU's own PSCI would start
//! (issue 4 supersedes issue 3's "enter Linux at EL2"). The price is that
//! the kernel runs at EL1 and so cannot use KVM; a VMM that wants nested
//! KVM and no CPU policy can start the firmware at EL1 or use EL3.
//!
//! This file holds what both share: the PSCI state (the host-tested
//! dispatcher in `hotstub::psci` does the logic), the per-CPU handler
//! stacks, and the register frame the trap vectors save.
//!
//! Memory: everything the resident code uses at run time (`.data`, `.bss`,
//! the heap with the PSCI state, the stacks, the translation tables) lies in
//! the firmware's RAM behind the hand-off area, `[handoff_end, fw_end)`.
//! That range is reported to Linux as EfiRuntimeServicesCode, which Linux
//! keeps out of its linear map (and which the PSCI test payload looks for),
//! and at EL2 stage 2 leaves it unmapped. The hand-off area itself (ACPI,
//! EFI table, DT) stays readable: the kernel needs it. Code and read-only
//! data run from flash, which stage 2 hides as well.

use alloc::vec::Vec;
use hotstub::resident::regs::Handoff;

use hotstub::platform::cpus::{CpuModel, Vcpu, MPIDR_AFFINITY_MASK};
use hotstub::println;
use hotstub::psci::Conduit;
use hotstub::psci::{self, CpuStates, Outcome, Platform, Policy, SharedStates};

use core::arch::asm;

/// MPIDR_EL1 affinity of the calling CPU (at EL2 and EL3 the physical
/// value, which the firmware also gives EL1 through VMPIDR_EL2).
pub fn mpidr() -> u64 {
    let v: u64;
    // SAFETY: reading MPIDR_EL1 has no side effects.
    unsafe { asm!("mrs {}, mpidr_el1", out(reg) v, options(nomem, nostack)) };
    v & MPIDR_AFFINITY_MASK
}

/// Waits for an interrupt (WFI wakes on a pending interrupt even while it
/// is masked, Arm ARM D1.6.2 "Wait for Interrupt").
fn wait_for_interrupt() {
    // SAFETY: only idles the CPU.
    unsafe { asm!("dsb sy", "wfi", options(nostack)) };
}

/// Bytes of handler stack per CPU: the dispatcher's deepest path (CPU_ON
/// through the platform hook, with formatting on the error path) uses a
/// few hundred bytes; 8 KiB leaves ample margin.
pub const STACK_SIZE: usize = 8 << 10;

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

/// What the resident code needs from the exception level it runs at.
pub trait Machine: Sync {
    /// Starts vCPU `index` (MPIDR affinity `mpidr`) in the firmware's
    /// secondary entry, with `index` as its context.
    fn cpu_on(&self, index: usize, mpidr: u64) -> Result<(), i32>;
    /// Takes the calling CPU (vCPU `index`) out of service; the PSCI state
    /// already says it is off.
    fn cpu_off(&self, index: usize) -> !;
    fn system_off(&self) -> !;
    fn system_reset(&self) -> !;
}

struct Resident {
    states: SharedStates,
    policy: Policy,
    /// Base of the handler stacks, one STACK_SIZE block per vCPU index.
    stacks: u64,
    machine: &'static dyn Machine,
}

static RESIDENT: spin::Once<Resident> = spin::Once::new();

/// Every possible vCPU in DT order (UID = index), all enabled; the VMM's
/// policy is applied on top (`cpulist::apply_policy`).
pub fn cpu_model(mpidrs: &[u64]) -> CpuModel {
    CpuModel::new(
        mpidrs
            .iter()
            .enumerate()
            .map(|(i, &m)| Vcpu {
                uid: i as u32,
                hw_id: m & MPIDR_AFFINITY_MASK,
                enabled: true,
            })
            .collect(),
    )
}

/// Sets up the PSCI state once, on the boot CPU, before any other CPU can
/// run or trap. `ram` is the caller's RAM as (base, size), `reserved` the
/// resident firmware's memory (CPU_ON refuses entry points there).
pub fn init(
    model: &CpuModel,
    ram: &[(u64, u64)],
    reserved: &[(u64, u64)],
    machine: &'static dyn Machine,
) -> Result<(), &'static str> {
    let states = CpuStates::new(model, mpidr()).ok_or("the boot CPU is not in the DT")?;
    let n = states.len();
    let stacks: Vec<u128> = alloc::vec![0; n * STACK_SIZE / 16];
    let stacks = stacks.leak().as_ptr() as u64;
    RESIDENT.call_once(|| Resident {
        states: spin::Mutex::new(states),
        policy: Policy::excluding(ram, reserved),
        stacks,
        machine,
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

/// Index of the calling CPU in the PSCI state.
pub fn my_index() -> Option<usize> {
    resident().states.lock().index_of(mpidr())
}

/// Index of the boot CPU (the one running `init`).
pub fn boot_index() -> usize {
    my_index().unwrap_or(0)
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

struct Forward(&'static dyn Machine);

impl Platform for Forward {
    fn cpu_on(&mut self, index: usize, mpidr: u64) -> Result<(), i32> {
        self.0.cpu_on(index, mpidr)
    }
}

/// Handles one SMCCC call in `f` (function ID in x0, arguments in x1..x3)
/// and writes the results to x0..x3 of the frame. Calls that power the CPU
/// or the machine off do not return.
pub fn smccc(f: &mut Frame) {
    let r = resident();
    let regs = [f.x[0], f.x[1], f.x[2], f.x[3]];
    let mpidr = mpidr();
    let outcome = {
        let mut s = r.states.lock();
        psci::handle(&mut s, &r.policy, mpidr, regs, &mut Forward(r.machine))
    };
    match outcome {
        Outcome::Return(v) => f.x[..4].copy_from_slice(&v),
        Outcome::Standby(v) => {
            wait_for_interrupt();
            f.x[..4].copy_from_slice(&v);
        }
        Outcome::CpuOff => {
            let index = {
                let mut s = r.states.lock();
                let i = s.index_of(mpidr);
                if let Some(i) = i {
                    s.stopped(i);
                }
                i
            };
            match index {
                Some(i) => r.machine.cpu_off(i),
                None => super::fatal("CPU_OFF from a CPU not in the DT"),
            }
        }
        Outcome::SystemOff => r.machine.system_off(),
        Outcome::SystemReset => r.machine.system_reset(),
    }
}

/// SMCCC "Unknown Function Identifier" in x0 (DEN0028), for calls the
/// firmware does not take (a non-zero HVC/SMC immediate).
pub fn not_supported(f: &mut Frame) {
    f.x[0] = psci::ids::ret::NOT_SUPPORTED as i64 as u64;
}

/// Prints a trap the firmware cannot handle and powers off.
pub fn unexpected(what: &str, esr: u64, elr: u64, far: u64, hpfar: u64) -> ! {
    println!(
        "hotstub: error: resident firmware: unexpected {what}: ESR={esr:#x} ELR={elr:#x} FAR={far:#x} HPFAR={hpfar:#x}"
    );
    resident().machine.system_off()
}

/// Trap vectors of a resident exception level (`el2` or `el3`): 16 entries
/// of 0x80 bytes in a 2 KiB aligned table (Arm ARM D1.3.1). The one
/// expected entry, synchronous from a lower EL in AArch64 (+0x400), saves
/// the caller's x0..x30, ELR and SPSR as a [`Frame`] on this CPU's handler
/// stack (SP_ELx, left at the stack top whenever the firmware returns to
/// the caller), calls `hotstub_<el>_sync(&mut Frame)` and restores
/// everything from the frame before returning. Every other entry calls
/// `hotstub_<el>_unexpected(index)` on a fresh stack (the boot stack, idle
/// once the kernel runs), which reports and powers off.
macro_rules! resident_vectors {
    ($el:literal) => {
        core::arch::global_asm!(
            concat!(".section .text.res_", $el, ", \"ax\""),
            ".balign 0x800",
            concat!(".global res_", $el, "_vectors"),
            concat!("res_", $el, "_vectors:"),
            ".set i, 0",
            ".rept 16",
            ".balign 0x80",
            ".if i == 8",
            concat!("b res_", $el, "_sync_lower"),
            ".else",
            "mov x0, #i",
            concat!("b res_", $el, "_unexpected"),
            ".endif",
            ".set i, i + 1",
            ".endr",
            concat!("res_", $el, "_unexpected:"),
            "ldr x1, =__stack_top",
            "mov sp, x1",
            concat!("bl hotstub_", $el, "_unexpected"),
            "1: wfe",
            "b 1b",
            concat!("res_", $el, "_sync_lower:"),
            "sub sp, sp, #272",
            "stp x0, x1, [sp, #0]",
            "stp x2, x3, [sp, #16]",
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
            concat!("mrs x0, elr_", $el),
            concat!("mrs x1, spsr_", $el),
            "stp x30, x0, [sp, #240]",
            "str x1, [sp, #256]",
            "mov x0, sp",
            concat!("bl hotstub_", $el, "_sync"),
            "ldp x30, x0, [sp, #240]",
            "ldr x1, [sp, #256]",
            concat!("msr elr_", $el, ", x0"),
            concat!("msr spsr_", $el, ", x1"),
            "ldp x0, x1, [sp, #0]",
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
        );
    };
}

resident_vectors!("el2");
resident_vectors!("el3");

const _: () = assert!(core::mem::size_of::<Frame>() == 272);

/// The PSCI conduit Linux is told to use: HVC into the resident EL2, SMC
/// into the resident EL3, or, when the firmware leaves, the VMM's, as the
/// DT names it.
pub fn linux_conduit(handoff: Handoff, dt: Option<Conduit>) -> Result<Conduit, &'static str> {
    match handoff {
        Handoff::ResidentEl2 => Ok(Conduit::Hvc),
        Handoff::ResidentEl3 => Ok(Conduit::Smc),
        Handoff::Direct { .. } => dt.ok_or(
            "the DT names no PSCI, and without staying resident the firmware cannot provide one",
        ),
    }
}
