//! The firmware's PSCI service, shared by the resident firmware at EL2 and
//! at EL3: the PSCI state (the host-tested dispatcher in `hotstub::psci`
//! does the logic, `el2/relay.rs` and `el3.rs` implement its
//! `psci::Platform`), where each vCPU's handler stack lies, the SMCCC call
//! taken from a trap frame, and the report of an exception the firmware
//! cannot handle. The vectors, the frame and the stacks themselves are in
//! `vectors.rs`.
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
//! Memory: everything the resident code uses at run time (`.data`, `.bss`,
//! the heap with the PSCI state, the stacks, the translation tables) lies in
//! the firmware's RAM behind the hand-off area, `[handoff_end, fw_end)`. At
//! EL2 it keeps the data (`.bss`), an arena set aside at the top of the
//! heap's region for the handler stacks, stage-2 tables and the heap it
//! allocates from once resident (`el2::set_aside`), and the boot stack's
//! top for the fatal path; the boot heap is Linux's. At EL3 all of it moves to the secure RAM, where the
//! handler stacks are placed directly (too many for the heap with QEMU's
//! up to 512 vCPUs). What is kept is reported to Linux as
//! EfiRuntimeServicesCode, which Linux keeps out of its linear map (and
//! which the PSCI test payload looks for), and at EL2 stage 2 leaves it
//! unmapped. The hand-off area itself (ACPI,
//! EFI table, DT) stays readable: the kernel needs it. Code and read-only
//! data run from flash, which stage 2 hides as well.

use hotstub::platform::cpus::CpuModel;
use hotstub::psci::{self, CpuStates, Outcome, Platform, Policy, SharedStates};

use core::fmt::Display;
use core::sync::atomic::{AtomicU32, Ordering};

use super::cpu::mpidr;
use super::vectors::{self, Frame, STACK_SIZE};

struct Service {
    states: SharedStates,
    policy: Policy,
    /// Base of the handler stacks, one STACK_SIZE block per vCPU index.
    stacks: u64,
    platform: &'static (dyn Platform + Sync),
}

static SERVICE: spin::Once<Service> = spin::Once::new();

/// Sets up the PSCI state once, on the boot CPU, before any other CPU can
/// run or trap. `ram` is the caller's RAM as (base, size), `reserved` the
/// resident firmware's memory (CPU_ON refuses entry points there),
/// `stacks_at` where the handler stacks go (`vectors::alloc_stacks`).
pub fn init(
    model: &CpuModel,
    ram: &[(u64, u64)],
    reserved: &[(u64, u64)],
    stacks_at: Option<u64>,
    platform: &'static (dyn Platform + Sync),
) -> Result<(), &'static str> {
    let states = CpuStates::new(model, mpidr()).ok_or("the boot CPU is not in the DT")?;
    let stacks = vectors::alloc_stacks(states.len(), stacks_at)?;
    SERVICE.call_once(|| Service {
        states: spin::Mutex::new(states),
        policy: Policy::excluding(ram, reserved),
        stacks,
        platform,
    });
    Ok(())
}

/// `init` has run: traps now come from a kernel below the firmware.
pub fn is_set_up() -> bool {
    SERVICE.get().is_some()
}

fn service() -> &'static Service {
    match SERVICE.get() {
        Some(r) => r,
        // Only reachable through a firmware bug: vectors installed before
        // `init`.
        None => super::stop::fatal("resident handler used before set-up"),
    }
}

/// Top of vCPU `index`'s handler stack.
pub fn stack_top(index: usize) -> u64 {
    service().stacks + ((index + 1) * STACK_SIZE) as u64
}

/// Runs `f` on the PSCI state, under its lock.
pub fn with_states<R>(f: impl FnOnce(&mut CpuStates) -> R) -> R {
    f(&mut service().states.lock())
}

/// Index of the boot CPU (the one running `init`) in the PSCI state.
pub fn boot_index() -> usize {
    service().states.lock().index_of(mpidr()).unwrap_or(0)
}

/// A CPU arrived in the firmware's secondary entry with `index` as its
/// context: where it must enter the caller's world, if a CPU_ON is pending
/// for it and `index` really is this CPU.
pub fn secondary_started(index: usize) -> Option<psci::Entry> {
    let r = service();
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
    let r = service();
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
                super::stop::fatal("CPU_OFF from a CPU not in the DT")
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
    match SERVICE.get() {
        Some(r) => r.platform.system_off(),
        None => super::stop::power_off(),
    }
}
