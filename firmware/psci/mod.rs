//! The resident PSCI 1.1 / SMCCC 1.1 implementation: pure dispatch logic.
//!
//! The architecture code traps an HVC or SMC from the kernel (EL2: HVC and
//! trapped SMC from EL1; EL3: SMC from EL2), takes the lock on the shared
//! [`CpuStates`], calls [`handle`] with the caller's MPIDR and x0..x3, drops
//! the lock, and then carries out the [`Outcome`] through the same
//! [`Platform`]. Everything that needs the machine goes through that trait,
//! so this module builds and is tested on the host.
//!
//! Register contract (DEN0028, SMCCC 1.1): only x0..x3 may change; the
//! caller's x4..x30, SP_EL1/SP_EL2 and all FP/SIMD state must be preserved
//! by the low-level handler. [`handle`] returns x0..x3 explicitly; for every
//! PSCI call only x0 differs from what the caller passed.
//!
//! Decisions where the specifications leave a choice:
//! - CPU_SUSPEND uses the original `power_state` format (PSCI_FEATURES
//!   reports flags 0: original format, platform-coordinated mode only). The
//!   states offered are [`Platform::standby_states`] (at EL2 and EL3 core
//!   standby only, `power_state == 0`); [`Platform::cpu_standby`] waits for
//!   an interrupt and the caller gets SUCCESS. Any other value (powerdown, a
//!   level above the core, another StateID, reserved bits) is
//!   INVALID_PARAMETERS: DEN0022 leaves the set of valid `power_state`
//!   values to the implementation, and this one publishes no powerdown
//!   state (no `_LPI` in ACPI), so a powerdown request is not a state it
//!   offers. (Quietly treating it as standby would return SUCCESS where the
//!   caller expects to wake at its entry point with a fresh context.)
//! - CPU_ON checks, in this order: the target exists (INVALID_PARAMETERS),
//!   the policy allows it (DENIED, the vCPU hotplug answer Linux 6.11+
//!   expects for a present but not enabled vCPU), the entry point is in
//!   memory the caller owns and 4-byte aligned (INVALID_ADDRESS, see
//!   [`Policy`]), then its power state (ALREADY_ON / ON_PENDING).
//! - SMC32 forms of calls take 32-bit arguments: the upper halves of x1..x3
//!   are ignored (DEN0028: the callee uses W registers for SMC32 calls).
//! - Results are sign-extended to 64 bits in x0, so both W0 and X0 read as
//!   the PSCI status.
//!
//! Concurrency: the handler runs on every core at once. All mutable state
//! is in [`CpuStates`]; keep exactly one of it in a
//! `spin::Mutex<CpuStates>` ([`SharedStates`]) and call [`handle`],
//! [`CpuStates::started`] and [`CpuStates::stopped`] with that lock held.
//! [`Platform::cpu_on`] runs under the lock, so it must not take the lock
//! itself nor wait for another core. The [`Outcome`] actions (standby,
//! parking, SYSTEM_OFF) run after the lock is released.
//!
//! Integration notes for the low-level handler:
//! - Set-up: `CpuStates::new(&model, boot_mpidr)` from the same
//!   [`CpuModel`] the MADT is built from (after `crate::platform::cpulist` applied the
//!   policy), and `Policy::excluding(&ram, &[resident firmware])`.
//! - An HVC exception returns to the instruction after the HVC, but a
//!   trapped SMC (HCR_EL2.TSC) reports the SMC itself in ELR_EL2: advance
//!   ELR by 4 for trapped SMCs. SMCCC calls use immediate 0; a non-zero
//!   HVC/SMC immediate (ESR ISS) should get NOT_SUPPORTED without calling
//!   [`handle`].
//! - A secondary started by [`Platform::cpu_on`] arrives in the firmware,
//!   calls [`CpuStates::started`] under the lock and enters the caller's
//!   world at `Entry::entry` with x0 = `Entry::context_id`, MMU and caches
//!   off, at the caller's EL (DEN0022, CPU_ON).

pub mod ids;

use alloc::vec::Vec;

use crate::platform::cpus::{CpuModel, Vcpu, MPIDR_AFFINITY_MASK};
use ids::ret;

/// How PSCI (SMCCC) calls travel: the instruction a caller uses (the DT's
/// arm,psci `method`, the FADT's ARM boot flags, the firmware's own calls).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conduit {
    Hvc,
    Smc,
}

/// The state table behind its lock, as the resident handler keeps it.
pub type SharedStates = spin::Mutex<CpuStates>;

/// Power state of one vCPU as PSCI sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Power {
    /// Powered off (or never started). Disabled vCPUs stay here.
    Off,
    /// CPU_ON accepted; the core has not yet reached its entry point.
    OnPending,
    /// Running in the caller's world.
    On,
    /// Accepted CPU_OFF; the core is on its way to park or power down.
    /// Reported as ON until the low-level code calls
    /// [`CpuStates::stopped`], so that AFFINITY_INFO only says OFF once
    /// the core has stopped using its context (DEN0022, AFFINITY_INFO).
    Stopping,
}

/// Where a core that was switched on starts in the caller's world.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// `entry_point_address` of CPU_ON.
    pub entry: u64,
    /// `context_id` of CPU_ON, to be passed in x0 at the entry point.
    pub context_id: u64,
}

#[derive(Clone, Debug)]
struct Slot {
    vcpu: Vcpu,
    power: Power,
    pending: Option<Entry>,
}

/// Per-vCPU power state, one slot per possible vCPU in [`CpuModel`] order
/// (so a slot index is the logical CPU number of `crate::platform::cpulist`).
#[derive(Clone, Debug)]
pub struct CpuStates {
    slots: Vec<Slot>,
}

impl CpuStates {
    /// All vCPUs of `model` off except the boot CPU (`boot_mpidr`, MPIDR
    /// affinity bits; other MPIDR bits are ignored), which is on. Returns
    /// `None` when the boot CPU is not in the model.
    pub fn new(model: &CpuModel, boot_mpidr: u64) -> Option<Self> {
        let boot = model.index_of_hw_id(boot_mpidr & MPIDR_AFFINITY_MASK)?;
        let slots = model
            .iter()
            .enumerate()
            .map(|(i, &vcpu)| Slot {
                vcpu,
                power: if i == boot { Power::On } else { Power::Off },
                pending: None,
            })
            .collect();
        Some(CpuStates { slots })
    }

    /// Number of possible vCPUs.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Index of the vCPU with this MPIDR (affinity bits only; a value with
    /// any other bit set matches nothing).
    pub fn index_of(&self, mpidr: u64) -> Option<usize> {
        if mpidr & !MPIDR_AFFINITY_MASK != 0 {
            return None;
        }
        self.slots.iter().position(|s| s.vcpu.hw_id == mpidr)
    }

    pub fn vcpu(&self, index: usize) -> Option<&Vcpu> {
        self.slots.get(index).map(|s| &s.vcpu)
    }

    /// Whether vCPU `index` may be started (CPU_ON gets DENIED otherwise).
    pub fn enabled(&self, index: usize) -> bool {
        self.slots.get(index).is_some_and(|s| s.vcpu.enabled)
    }

    /// Changes the policy for vCPU `index` (runtime hotplug,
    /// `crate::resident::hotplug`); a running vCPU keeps running.
    pub fn set_enabled(&mut self, index: usize, enabled: bool) {
        if let Some(s) = self.slots.get_mut(index) {
            s.vcpu.enabled = enabled;
        }
    }

    pub fn power(&self, index: usize) -> Option<Power> {
        self.slots.get(index).map(|s| s.power)
    }

    /// The core of vCPU `index` has arrived in the firmware after
    /// [`Platform::cpu_on`]: marks it on and returns where it must enter
    /// the caller's world. `None` if no CPU_ON is pending for it (a
    /// spurious start: the core should park again).
    pub fn started(&mut self, index: usize) -> Option<Entry> {
        let slot = self.slots.get_mut(index)?;
        if slot.power != Power::OnPending {
            return None;
        }
        slot.power = Power::On;
        slot.pending.take()
    }

    /// The core of vCPU `index`, after [`Outcome::CpuOff`], no longer uses
    /// the caller's context: marks it off (AFFINITY_INFO then says OFF and
    /// CPU_ON may start it again). Call at the last point before parking
    /// (EL3) or before handing the core to the VMM's CPU_OFF (EL2). False if
    /// it was not stopping.
    pub fn stopped(&mut self, index: usize) -> bool {
        match self.slots.get_mut(index) {
            Some(slot) if slot.power == Power::Stopping => {
                slot.power = Power::Off;
                true
            }
            _ => false,
        }
    }
}

/// What memory the caller owns, for checking CPU_ON entry points.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// `[start, end)` ranges a core may start executing in: the caller's
    /// RAM, without the resident firmware.
    entry_ranges: Vec<(u64, u64)>,
}

impl Policy {
    /// `ranges` as `(base, size)` pairs; empty ones are dropped.
    pub fn new(ranges: &[(u64, u64)]) -> Self {
        Policy::excluding(ranges, &[])
    }

    /// The caller's memory: `ram` without the `reserved` ranges (the
    /// resident firmware), all as `(base, size)` pairs.
    pub fn excluding(ram: &[(u64, u64)], reserved: &[(u64, u64)]) -> Self {
        let mut entry_ranges: Vec<(u64, u64)> = ram
            .iter()
            .filter(|&&(_, size)| size > 0)
            .map(|&(base, size)| (base, base.saturating_add(size)))
            .collect();
        for &(rb, rs) in reserved {
            let (cut_start, cut_end) = (rb, rb.saturating_add(rs));
            // What is left of each range below and above the cut.
            entry_ranges = entry_ranges
                .into_iter()
                .flat_map(|(s, e)| [(s, e.min(cut_start)), (s.max(cut_end), e)])
                .filter(|&(s, e)| s < e)
                .collect();
        }
        Policy { entry_ranges }
    }

    /// An entry point is valid when it is 4-byte aligned (A64 instructions
    /// are) and lies in the caller's memory. DEN0022 asks for
    /// INVALID_ADDRESS when the address is known to be invalid; an address
    /// in the firmware or outside RAM could only fault or jump into the
    /// firmware with the caller's privileges.
    pub fn allows_entry(&self, addr: u64) -> bool {
        addr.is_multiple_of(4)
            && self
                .entry_ranges
                .iter()
                .any(|&(start, end)| start <= addr && addr < end)
    }
}

/// The machine below the dispatcher (TF-A's `plat_psci_ops`), one per
/// resident EL: [`handle`] asks it which power states exist and to start
/// cores; the low-level handler carries out the [`Outcome`] with the rest.
pub trait Platform {
    /// CPU_SUSPEND's valid `power_state` values, all standby states (the
    /// core keeps its context); empty: CPU_SUSPEND is NOT_SUPPORTED.
    fn standby_states(&self) -> &[u32];
    /// Starts the core of vCPU `index` (MPIDR affinity `mpidr`) in the
    /// firmware (EL2: the VMM's CPU_ON; EL3: release and wake the parked
    /// core). On failure the PSCI status for the caller (for example
    /// INTERNAL_FAILURE); the state table is then left unchanged.
    fn cpu_on(&self, index: usize, mpidr: u64) -> Result<(), i32>;
    /// Core standby in `power_state` until an interrupt wakes the core.
    fn cpu_standby(&self, power_state: u32);
    /// Parks (EL3) or powers off (EL2) the calling core, vCPU `index`.
    fn cpu_off(&self, index: usize) -> !;
    fn system_off(&self) -> !;
    fn system_reset(&self) -> !;
}

/// What the low-level handler does after [`handle`], with the lock dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Write these to x0..x3 and return to the caller.
    Return([u64; 4]),
    /// CPU_SUSPEND to a standby state (x1): [`Platform::cpu_standby`], then
    /// write these to x0..x3 and return to the caller.
    Standby([u64; 4]),
    /// CPU_OFF accepted: the caller's core is [`Power::Stopping`]. Call
    /// [`CpuStates::stopped`], then [`Platform::cpu_off`].
    CpuOff,
    /// SYSTEM_OFF: power the machine off; never returns.
    SystemOff,
    /// SYSTEM_RESET: reset the machine; never returns.
    SystemReset,
}

/// Handles one SMCCC call: `regs` are the caller's x0..x3 (function ID in
/// W0), `caller_mpidr` its MPIDR (the value of MPIDR_EL1 the caller sees,
/// at EL2 VMPIDR_EL2; bits outside the affinity fields are ignored).
pub fn handle(
    states: &mut CpuStates,
    policy: &Policy,
    caller_mpidr: u64,
    regs: [u64; 4],
    platform: &dyn Platform,
) -> Outcome {
    let fid = regs[0] as u32;
    // SMC32 calls pass 32-bit arguments in W1..W3 (DEN0028).
    let arg = |i: usize| {
        if fid & ids::SMC64_BIT == 0 {
            regs[i] & 0xffff_ffff
        } else {
            regs[i]
        }
    };
    let status = match fid {
        ids::SMCCC_VERSION => ids::SMCCC_VERSION_1_1 as i32,
        ids::SMCCC_ARCH_FEATURES => arch_features(regs[1] as u32),
        ids::PSCI_VERSION => ids::PSCI_VERSION_1_1 as i32,
        ids::PSCI_FEATURES => psci_features(regs[1] as u32, !platform.standby_states().is_empty()),
        ids::CPU_ON_32 | ids::CPU_ON_64 => cpu_on(states, policy, arg(1), arg(2), arg(3), platform),
        ids::CPU_OFF => {
            let me = states.index_of(caller_mpidr & MPIDR_AFFINITY_MASK);
            match me.map(|i| &mut states.slots[i]) {
                Some(slot) if slot.power == Power::On => {
                    slot.power = Power::Stopping;
                    return Outcome::CpuOff;
                }
                // CPU_OFF returns only on failure, and DENIED is its one
                // failure code (DEN0022, CPU_OFF).
                _ => ret::DENIED,
            }
        }
        ids::CPU_SUSPEND_32 | ids::CPU_SUSPEND_64 => match platform.standby_states() {
            [] => ret::NOT_SUPPORTED,
            s if s.contains(&(arg(1) as u32)) => {
                return Outcome::Standby(result(regs, ret::SUCCESS))
            }
            _ => ret::INVALID_PARAMETERS,
        },
        ids::AFFINITY_INFO_32 | ids::AFFINITY_INFO_64 => affinity_info(states, arg(1), arg(2)),
        ids::MIGRATE_INFO_TYPE => ids::MIGRATE_INFO_TYPE_NOT_PRESENT,
        ids::SYSTEM_OFF => return Outcome::SystemOff,
        ids::SYSTEM_RESET => return Outcome::SystemReset,
        // Everything else, including MIGRATE and MIGRATE_INFO_UP_CPU (not
        // needed when MIGRATE_INFO_TYPE says 2), yielding calls and other
        // service ranges: "Unknown Function Identifier" (DEN0028).
        _ => ret::NOT_SUPPORTED,
    };
    Outcome::Return(result(regs, status))
}

/// x0 = `status` sign-extended, x1..x3 as the caller left them.
fn result(regs: [u64; 4], status: i32) -> [u64; 4] {
    [i64::from(status) as u64, regs[1], regs[2], regs[3]]
}

/// SMCCC_ARCH_FEATURES: the two Arm Architecture Calls implemented here are
/// reported as present (0); the CPU erratum workarounds
/// (SMCCC_ARCH_WORKAROUND_1/2/3), SMCCC_ARCH_SOC_ID and anything else are
/// not implemented: NOT_SUPPORTED (DEN0028). There is no erratum to work
/// around on a virtual CPU that this firmware could fix from EL2/EL3.
fn arch_features(query: u32) -> i32 {
    match query {
        ids::SMCCC_VERSION | ids::SMCCC_ARCH_FEATURES => ret::SUCCESS,
        _ => ret::NOT_SUPPORTED,
    }
}

/// PSCI_FEATURES: 0 for every implemented function, the CPU_SUSPEND feature
/// flags for CPU_SUSPEND when there is a state to `suspend` to,
/// NOT_SUPPORTED otherwise. SMCCC_VERSION is reported too: that is how a
/// caller learns SMCCC 1.1 is there (DEN0022, PSCI_FEATURES; DEN0028).
fn psci_features(query: u32, suspend: bool) -> i32 {
    match query {
        ids::CPU_SUSPEND_32 | ids::CPU_SUSPEND_64 if suspend => CPU_SUSPEND_FEATURES,
        ids::PSCI_VERSION
        | ids::CPU_OFF
        | ids::CPU_ON_32
        | ids::CPU_ON_64
        | ids::AFFINITY_INFO_32
        | ids::AFFINITY_INFO_64
        | ids::MIGRATE_INFO_TYPE
        | ids::SYSTEM_OFF
        | ids::SYSTEM_RESET
        | ids::PSCI_FEATURES
        | ids::SMCCC_VERSION => ret::SUCCESS,
        _ => ret::NOT_SUPPORTED,
    }
}

/// PSCI_FEATURES(CPU_SUSPEND) flags: bit 1 clear (original power_state
/// format), bit 0 clear (no OS-initiated mode).
pub const CPU_SUSPEND_FEATURES: i32 = 0;

fn cpu_on(
    states: &mut CpuStates,
    policy: &Policy,
    target: u64,
    entry: u64,
    context_id: u64,
    platform: &dyn Platform,
) -> i32 {
    let Some(index) = states.index_of(target) else {
        return ret::INVALID_PARAMETERS;
    };
    let slot = &states.slots[index];
    if !slot.vcpu.enabled {
        return ret::DENIED;
    }
    if !policy.allows_entry(entry) {
        return ret::INVALID_ADDRESS;
    }
    match slot.power {
        Power::On | Power::Stopping => return ret::ALREADY_ON,
        Power::OnPending => return ret::ON_PENDING,
        Power::Off => {}
    }
    if let Err(status) = platform.cpu_on(index, slot.vcpu.hw_id) {
        return status;
    }
    let slot = &mut states.slots[index];
    slot.power = Power::OnPending;
    slot.pending = Some(Entry { entry, context_id });
    ret::SUCCESS
}

fn affinity_info(states: &CpuStates, target: u64, lowest_level: u64) -> i32 {
    // Only level 0 (a single core) is supported; higher levels are optional
    // and deprecated since PSCI 1.0 (DEN0022, AFFINITY_INFO).
    if lowest_level != 0 {
        return ret::INVALID_PARAMETERS;
    }
    match states.index_of(target).map(|i| states.slots[i].power) {
        None => ret::INVALID_PARAMETERS,
        Some(Power::On | Power::Stopping) => ids::affinity::ON,
        Some(Power::Off) => ids::affinity::OFF,
        Some(Power::OnPending) => ids::affinity::ON_PENDING,
    }
}

#[cfg(test)]
mod tests;
