use super::ids::*;
use super::*;
use core::cell::{Cell, RefCell};

/// Four vCPUs with QEMU virt's MPIDRs (Aff0 = index, up to 8 per cluster;
/// the cluster at Aff1), two of them enabled, like `-smp 4` with
/// `enabled-cpus` = `0-1`. vCPU 3 sits in another cluster to exercise Aff1.
fn model() -> CpuModel {
    let mpidr = [0x0, 0x1, 0x2, 0x100];
    CpuModel::new(
        (0..4)
            .map(|i| Vcpu {
                uid: i as u32,
                hw_id: mpidr[i],
                enabled: i < 2,
            })
            .collect(),
    )
}

const RAM: (u64, u64) = (0x4000_0000, 0x2000_0000);
const ENTRY: u64 = 0x4020_0000;
const BOOT: u64 = 0x8000_0000; // MPIDR_EL1 of cpu0 with the RES1 bit 31

#[derive(Default)]
struct FakePlatform {
    started: RefCell<Vec<(usize, u64)>>,
    fail_with: Cell<Option<i32>>,
    /// CPU_SUSPEND states; by default core standby, as at EL2 and EL3.
    standby: Option<&'static [u32]>,
}

impl Platform for FakePlatform {
    fn standby_states(&self) -> &[u32] {
        self.standby.unwrap_or(&[power_state::CORE_STANDBY])
    }
    fn cpu_on(&self, index: usize, mpidr: u64) -> Result<(), i32> {
        match self.fail_with.get() {
            Some(e) => Err(e),
            None => {
                self.started.borrow_mut().push((index, mpidr));
                Ok(())
            }
        }
    }
    // The low-level handler's part: `handle` never calls these.
    fn cpu_standby(&self, _: u32) {}
    fn cpu_off(&self, _: usize) -> ! {
        unreachable!()
    }
    fn system_off(&self) -> ! {
        unreachable!()
    }
    fn system_reset(&self) -> ! {
        unreachable!()
    }
}

struct Fixture {
    states: CpuStates,
    policy: Policy,
    platform: FakePlatform,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            states: CpuStates::new(&model(), BOOT).unwrap(),
            policy: Policy::new(&[RAM]),
            platform: FakePlatform::default(),
        }
    }

    fn call_from(&mut self, caller: u64, regs: [u64; 4]) -> Outcome {
        handle(&mut self.states, &self.policy, caller, regs, &self.platform)
    }

    /// A call from the boot CPU that must return: checks that x1..x3 come
    /// back untouched and gives W0 as the PSCI status.
    fn status(&mut self, regs: [u64; 4]) -> i32 {
        self.status_from(BOOT, regs)
    }

    fn status_from(&mut self, caller: u64, regs: [u64; 4]) -> i32 {
        match self.call_from(caller, regs) {
            Outcome::Return(out) => {
                assert_eq!(out[1..], regs[1..], "only x0 may change for {regs:x?}");
                // Sign-extended, so X0 and W0 agree.
                assert_eq!(out[0], out[0] as i32 as i64 as u64);
                out[0] as i32
            }
            other => panic!("{regs:x?} did not return: {other:?}"),
        }
    }
}

/// Unused argument registers get noise, to show they are ignored and kept.
const NOISE: u64 = 0xdead_beef_cafe_f00d;

/// A call of `fid` without arguments, the argument registers zero or noise.
fn call(fid: u32) -> [u64; 4] {
    [fid as u64, 0, 0, 0]
}
fn noisy(fid: u32) -> [u64; 4] {
    [fid as u64, NOISE, NOISE, NOISE]
}

#[test]
fn versions() {
    let mut f = Fixture::new();
    assert_eq!(f.status(noisy(PSCI_VERSION)), 0x10001);
    assert_eq!(f.status(noisy(SMCCC_VERSION)), 0x10001);
    // W0 is the function ID: upper bits of X0 are ignored.
    let x0 = 0xffff_ffff_0000_0000 | PSCI_VERSION as u64;
    assert_eq!(f.status([x0, 0, 0, 0]), 0x10001);
}

#[test]
fn psci_features_of_every_function() {
    let mut f = Fixture::new();
    let mut features = |fid: u32| f.status([PSCI_FEATURES as u64, fid as u64, NOISE, NOISE]);
    for fid in [
        PSCI_VERSION,
        CPU_OFF,
        CPU_ON_32,
        CPU_ON_64,
        AFFINITY_INFO_32,
        AFFINITY_INFO_64,
        MIGRATE_INFO_TYPE,
        SYSTEM_OFF,
        SYSTEM_RESET,
        PSCI_FEATURES,
        SMCCC_VERSION,
    ] {
        assert_eq!(features(fid), ret::SUCCESS, "{fid:#x}");
    }
    assert_eq!(features(CPU_SUSPEND_32), CPU_SUSPEND_FEATURES);
    assert_eq!(features(CPU_SUSPEND_64), CPU_SUSPEND_FEATURES);
    assert_eq!(CPU_SUSPEND_FEATURES & 0b10, 0, "original format");
    for fid in [
        MIGRATE_32,
        MIGRATE_64,
        MIGRATE_INFO_UP_CPU_32,
        MIGRATE_INFO_UP_CPU_64,
        CPU_FREEZE,
        CPU_DEFAULT_SUSPEND_64,
        NODE_HW_STATE_64,
        SYSTEM_SUSPEND_32,
        SYSTEM_SUSPEND_64,
        PSCI_SET_SUSPEND_MODE,
        PSCI_STAT_RESIDENCY_64,
        PSCI_STAT_COUNT_64,
        SYSTEM_RESET2_64,
        MEM_PROTECT,
        MEM_PROTECT_CHECK_RANGE_64,
        SMCCC_ARCH_FEATURES,
        0x8400_00ff,
        0xC400_0002, // CPU_OFF has no SMC64 form
        0,
        0xffff_ffff,
    ] {
        assert_eq!(features(fid), ret::NOT_SUPPORTED, "{fid:#x}");
    }
    // The queried ID is W1: upper bits of X1 are ignored.
    let query = 0x1234_5678_0000_0000 | CPU_OFF as u64;
    assert_eq!(f.status([PSCI_FEATURES as u64, query, 0, 0]), ret::SUCCESS);
}

#[test]
fn smccc_arch_features() {
    let mut f = Fixture::new();
    let mut q = |fid: u32| f.status([SMCCC_ARCH_FEATURES as u64, fid as u64, NOISE, NOISE]);
    assert_eq!(q(SMCCC_VERSION), ret::SUCCESS);
    assert_eq!(q(SMCCC_ARCH_FEATURES), ret::SUCCESS);
    // SMCCC_ARCH_SOC_ID, WORKAROUND_1, _2, _3 (DEN0028 Arm Architecture Calls).
    for fid in [
        0x8000_0002,
        0x8000_8000,
        0x8000_7fff,
        0x8000_3fff,
        PSCI_VERSION,
    ] {
        assert_eq!(q(fid), ret::NOT_SUPPORTED, "{fid:#x}");
    }
}

#[test]
fn unknown_functions() {
    let mut f = Fixture::new();
    for fid in [
        0x8400_0100, // PSCI range, unassigned
        MIGRATE_32,
        MIGRATE_INFO_UP_CPU_64,
        SYSTEM_SUSPEND_64,
        0x0400_0000, // yielding call
        0xC200_0000, // SiP service
        0x8600_0000, // vendor hypervisor service (KVM's UID query)
        0x8400_0050, // TRNG_VERSION
        0xC400_0000, // PSCI_VERSION has no SMC64 form
        0x8001_0000, // Arm architecture range, bits 23:16 set
    ] {
        assert_eq!(f.status(noisy(fid)), ret::NOT_SUPPORTED, "{fid:#x}");
    }
}

#[test]
fn migrate_info_type() {
    let mut f = Fixture::new();
    assert_eq!(f.status(noisy(MIGRATE_INFO_TYPE)), 2);
}

#[test]
fn system_off_and_reset() {
    let mut f = Fixture::new();
    assert_eq!(f.call_from(BOOT, call(SYSTEM_OFF)), Outcome::SystemOff);
    assert_eq!(f.call_from(BOOT, call(SYSTEM_RESET)), Outcome::SystemReset);
    // From a secondary as well: the caller does not matter.
    assert_eq!(f.call_from(0x2, call(SYSTEM_OFF)), Outcome::SystemOff);
}

fn affinity(f: &mut Fixture, fid: u32, mpidr: u64) -> i32 {
    f.status([fid as u64, mpidr, 0, NOISE])
}

#[test]
fn affinity_info() {
    let mut f = Fixture::new();
    for fid in [AFFINITY_INFO_32, AFFINITY_INFO_64] {
        assert_eq!(affinity(&mut f, fid, 0), affinity::ON);
        assert_eq!(affinity(&mut f, fid, 1), affinity::OFF);
        // Disabled vCPUs are present and off.
        assert_eq!(affinity(&mut f, fid, 2), affinity::OFF);
        assert_eq!(affinity(&mut f, fid, 0x100), affinity::OFF);
        assert_eq!(affinity(&mut f, fid, 3), ret::INVALID_PARAMETERS);
        assert_eq!(affinity(&mut f, fid, 0x8000_0000), ret::INVALID_PARAMETERS);
        // Levels above 0 are not supported.
        assert_eq!(f.status([fid as u64, 0, 1, 0]), ret::INVALID_PARAMETERS);
        assert_eq!(f.status([fid as u64, 0, 3, 0]), ret::INVALID_PARAMETERS);
    }
    // SMC32 ignores the upper halves, SMC64 does not.
    assert_eq!(
        affinity(&mut f, AFFINITY_INFO_32, 0xffff_ffff_0000_0001),
        affinity::OFF
    );
    assert_eq!(
        affinity(&mut f, AFFINITY_INFO_64, 0xff_0000_0001),
        ret::INVALID_PARAMETERS
    );
    assert_eq!(
        f.status([AFFINITY_INFO_32 as u64, 0, 0x1_0000_0000, 0]),
        affinity::ON
    );
}

fn cpu_on(f: &mut Fixture, fid: u32, mpidr: u64, entry: u64, ctx: u64) -> i32 {
    f.status([fid as u64, mpidr, entry, ctx])
}

/// Where a core CPU_ON started at ENTRY with `context_id` must enter.
fn at_entry(context_id: u64) -> Option<Entry> {
    let entry = ENTRY;
    Some(Entry { entry, context_id })
}

#[test]
fn cpu_on_errors() {
    let mut f = Fixture::new();
    for fid in [CPU_ON_32, CPU_ON_64] {
        // Unknown MPIDR.
        assert_eq!(cpu_on(&mut f, fid, 3, ENTRY, 0), ret::INVALID_PARAMETERS);
        assert_eq!(
            cpu_on(&mut f, fid, 0x200, ENTRY, 0),
            ret::INVALID_PARAMETERS
        );
        // Non-affinity MPIDR bits (here bit 31) make it unknown.
        assert_eq!(
            cpu_on(&mut f, fid, 0x8000_0001, ENTRY, 0),
            ret::INVALID_PARAMETERS
        );
        // Present but disabled by policy.
        assert_eq!(cpu_on(&mut f, fid, 2, ENTRY, 0), ret::DENIED);
        assert_eq!(cpu_on(&mut f, fid, 0x100, ENTRY, 0), ret::DENIED);
        // Running: the caller itself.
        assert_eq!(cpu_on(&mut f, fid, 0, ENTRY, 0), ret::ALREADY_ON);
        // Entry points outside RAM, in nothing, misaligned.
        assert_eq!(cpu_on(&mut f, fid, 1, 0x1000, 0), ret::INVALID_ADDRESS);
        assert_eq!(
            cpu_on(&mut f, fid, 1, RAM.0 + RAM.1, 0),
            ret::INVALID_ADDRESS
        );
        assert_eq!(cpu_on(&mut f, fid, 1, ENTRY + 2, 0), ret::INVALID_ADDRESS);
    }
    // The 64-bit form sees the whole entry address.
    assert_eq!(
        cpu_on(&mut f, CPU_ON_64, 1, 0x1_0000_0000 | ENTRY, 0),
        ret::INVALID_ADDRESS
    );
    assert!(f.platform.started.borrow().is_empty());
    assert_eq!(f.states.power(1), Some(Power::Off));
}

#[test]
fn cpu_on_off_cycles() {
    let mut f = Fixture::new();
    for round in 0..10u64 {
        let ctx = 0x1234_0000_0000 + round;
        assert_eq!(cpu_on(&mut f, CPU_ON_64, 1, ENTRY, ctx), ret::SUCCESS);
        assert_eq!(f.platform.started.borrow().last(), Some(&(1, 1)));
        assert_eq!(f.states.power(1), Some(Power::OnPending));
        assert_eq!(affinity(&mut f, AFFINITY_INFO_64, 1), affinity::ON_PENDING);
        assert_eq!(cpu_on(&mut f, CPU_ON_64, 1, ENTRY, ctx), ret::ON_PENDING);

        // The core arrives in the firmware and learns where to go.
        assert_eq!(f.states.started(1), at_entry(ctx));
        assert_eq!(f.states.started(1), None, "only once");
        assert_eq!(affinity(&mut f, AFFINITY_INFO_64, 1), affinity::ON);
        assert_eq!(cpu_on(&mut f, CPU_ON_64, 1, ENTRY, ctx), ret::ALREADY_ON);

        // It turns itself off: ON until the low-level code reports it stopped.
        assert_eq!(f.call_from(0x8000_0001, call(CPU_OFF)), Outcome::CpuOff);
        assert_eq!(f.states.power(1), Some(Power::Stopping));
        assert_eq!(affinity(&mut f, AFFINITY_INFO_64, 1), affinity::ON);
        assert_eq!(cpu_on(&mut f, CPU_ON_64, 1, ENTRY, ctx), ret::ALREADY_ON);
        assert!(f.states.stopped(1));
        assert!(!f.states.stopped(1));
        assert_eq!(affinity(&mut f, AFFINITY_INFO_64, 1), affinity::OFF);
    }
    assert_eq!(f.platform.started.borrow().len(), 10);
}

#[test]
fn cpu_on_32_truncates_arguments() {
    let mut f = Fixture::new();
    assert_eq!(
        cpu_on(
            &mut f,
            CPU_ON_32,
            0xffff_ffff_0000_0001,
            0xaaaa_aaaa_0000_0000 | ENTRY,
            0x5555_5555_8765_4321
        ),
        ret::SUCCESS
    );
    assert_eq!(f.states.started(1), at_entry(0x8765_4321));
}

#[test]
fn cpu_on_platform_failure_leaves_state() {
    let mut f = Fixture::new();
    f.platform.fail_with.set(Some(ret::INTERNAL_FAILURE));
    assert_eq!(
        cpu_on(&mut f, CPU_ON_64, 1, ENTRY, 0),
        ret::INTERNAL_FAILURE
    );
    assert_eq!(f.states.power(1), Some(Power::Off));
    assert_eq!(f.states.started(1), None);
    f.platform.fail_with.set(None);
    assert_eq!(cpu_on(&mut f, CPU_ON_64, 1, ENTRY, 0), ret::SUCCESS);
}

#[test]
fn cpu_off_denied() {
    let mut f = Fixture::new();
    // A caller the model does not know, or one that is not on.
    assert_eq!(f.status_from(0x3, call(CPU_OFF)), ret::DENIED);
    assert_eq!(f.status_from(0x1, call(CPU_OFF)), ret::DENIED);
    assert_eq!(f.states.power(1), Some(Power::Off));
    // The boot CPU may turn itself off once another one runs.
    assert_eq!(f.call_from(BOOT, call(CPU_OFF)), Outcome::CpuOff);
    assert_eq!(f.status(call(CPU_OFF)), ret::DENIED, "already stopping");
}

#[test]
fn cpu_suspend() {
    let mut f = Fixture::new();
    for fid in [CPU_SUSPEND_32 as u64, CPU_SUSPEND_64 as u64] {
        // Standby returns SUCCESS after WFI; only x0 changes.
        assert_eq!(
            f.call_from(BOOT, [fid, 0, ENTRY, NOISE]),
            Outcome::Standby([0, 0, ENTRY, NOISE])
        );
        // The entry point is ignored for standby.
        assert_eq!(
            f.call_from(BOOT, [fid, 0, 0x3, 0]),
            Outcome::Standby([0, 0, 0x3, 0])
        );
        for bad in [
            power_state::STATE_TYPE_POWERDOWN,     // powerdown
            power_state::STATE_TYPE_POWERDOWN | 1, // powerdown with a StateID
            1 << 24,                               // cluster level
            1,                                     // unknown StateID
            1 << 30,                               // reserved (extended StateType)
            1 << 17,                               // reserved
        ] {
            assert_eq!(
                f.status([fid, bad as u64, ENTRY, 0]),
                ret::INVALID_PARAMETERS,
                "{bad:#x}"
            );
        }
    }
    // SMC32 ignores the upper half of the power_state register.
    assert_eq!(
        f.call_from(BOOT, [CPU_SUSPEND_32 as u64, 0xffff_ffff_0000_0000, 0, 0]),
        Outcome::Standby([0, 0xffff_ffff_0000_0000, 0, 0])
    );
    assert_eq!(f.states.power(0), Some(Power::On));
}

#[test]
fn suspend_states_are_the_platforms() {
    let mut f = Fixture::new();
    for fid in [CPU_SUSPEND_32 as u64, CPU_SUSPEND_64 as u64] {
        // Two standby StateIDs: both accepted, a third one is not.
        f.platform.standby = Some(&[0, 2]);
        assert_eq!(
            f.call_from(BOOT, [fid, 2, 0, 0]),
            Outcome::Standby([0, 2, 0, 0])
        );
        assert_eq!(f.status([fid, 1, 0, 0]), ret::INVALID_PARAMETERS);
        let features = [PSCI_FEATURES as u64, fid, 0, 0];
        assert_eq!(f.status(features), CPU_SUSPEND_FEATURES);
        // None at all: CPU_SUSPEND is not there, and PSCI_FEATURES says so.
        f.platform.standby = Some(&[]);
        assert_eq!(f.status([fid, 0, 0, 0]), ret::NOT_SUPPORTED);
        assert_eq!(f.status(features), ret::NOT_SUPPORTED);
    }
}

#[test]
fn states_construction() {
    assert!(CpuStates::new(&model(), 0x3).is_none());
    let s = CpuStates::new(&model(), 0x100).unwrap();
    assert_eq!(s.len(), 4);
    assert_eq!(s.power(3), Some(Power::On));
    assert_eq!(s.power(0), Some(Power::Off));
    assert_eq!(s.index_of(0x100), Some(3));
    assert_eq!(s.index_of(0x8000_0100), None);
    assert_eq!(s.vcpu(2).map(|v| v.enabled), Some(false));
    assert_eq!(s.power(4), None);
    // A pending start is only reported for a CPU_ON'd core.
    let mut s = s;
    assert_eq!(s.started(0), None);
    assert_eq!(s.started(9), None);
    assert!(!s.stopped(9));
}

#[test]
fn policy_excluding_the_firmware() {
    let p = Policy::excluding(
        &[(0x4000_0000, 0x1000_0000), (0x1_0000_0000, 0x1000)],
        &[
            (0x4000_0000, 0x10_0000),
            (0x4800_0000, 0x1000),
            (0x9000_0000, 0x1000),
        ],
    );
    assert!(!p.allows_entry(0x4000_0000));
    assert!(!p.allows_entry(0x400f_fffc));
    assert!(p.allows_entry(0x4010_0000));
    assert!(p.allows_entry(0x47ff_fffc));
    assert!(!p.allows_entry(0x4800_0000));
    assert!(!p.allows_entry(0x4800_0ffc));
    assert!(p.allows_entry(0x4800_1000));
    assert!(p.allows_entry(0x4fff_fffc));
    assert!(!p.allows_entry(0x5000_0000));
    assert!(p.allows_entry(0x1_0000_0000));
    // A reservation covering a whole range removes it.
    let p = Policy::excluding(&[(0x4000_0000, 0x1000)], &[(0x3000_0000, 0x2000_0000)]);
    assert_eq!(p, Policy::default());
}

#[test]
fn policy_ranges() {
    let p = Policy::new(&[(0x4000_0000, 0x1000), (0x5000_0000, 0), (u64::MAX - 7, 8)]);
    assert!(p.allows_entry(0x4000_0000));
    assert!(p.allows_entry(0x4000_0ffc));
    assert!(!p.allows_entry(0x4000_1000));
    assert!(!p.allows_entry(0x3fff_fffc));
    assert!(!p.allows_entry(0x5000_0000));
    assert!(!p.allows_entry(0x4000_0001));
    assert!(p.allows_entry(u64::MAX - 7));
    assert!(!Policy::default().allows_entry(0x4000_0000));
}

#[test]
fn shared_behind_a_spin_mutex() {
    let shared: SharedStates = spin::Mutex::new(CpuStates::new(&model(), 0).unwrap());
    let policy = Policy::new(&[RAM]);
    let outcome = handle(
        &mut shared.lock(),
        &policy,
        0,
        [CPU_ON_64 as u64, 1, ENTRY, 7],
        &FakePlatform::default(),
    );
    assert_eq!(outcome, Outcome::Return([0, 1, ENTRY, 7]));
    assert_eq!(shared.lock().started(1).map(|e| e.context_id), Some(7));
}
