//! The hostile phase: what a guest that means harm can do to the resident
//! firmware through PSCI and through memory, one check line per attack.
//! Afterwards `run.rs` runs the normal checks a second time (`after
//! hostile: ` lines), which only pass if the firmware came through
//! consistent: the disabled vCPUs still DENIED, the enabled one still
//! starting and stopping, its CPU_ON still waking parked cores at EL3.
//!
//! Runs only against Hotstub's resident handler (`super::resident`) and
//! only when the command line holds `psci-test.hostile`.
//!
//! 1. Storms: every enabled core at once calls CPU_ON, AFFINITY_INFO (good
//!    and garbage arguments) on every CPU and CPU_OFF on itself, for a
//!    bounded time; each answer must be one PSCI allows for that target.
//! 2. Garbage: CPU_ON with entry points outside RAM, in the firmware, in
//!    MMIO, unaligned; bogus MPIDRs; AFFINITY_INFO levels and CPU_SUSPEND
//!    states that do not exist; SMC/HVC with a non-zero immediate.
//! 3. Function IDs: every ID of the Arm architecture and PSCI ranges and a
//!    strided sweep of the whole 32-bit space, through every conduit that
//!    reaches the firmware.
//! 4. Probes: reads and writes of the firmware's memory and code, of the
//!    secure GIC registers and of the secure UART; each must fault or have
//!    no effect (anything that lands is put back and fails the check).

use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};

use super::{conduit, fid, name, resident, ret, status, wait_for, Checks, Name, Status};
use crate::hw;
use crate::machine::{Conduit, Machine};

pub fn wanted(m: &Machine) -> bool {
    resident(m) && m.has_arg("psci-test.hostile")
}

pub fn run(c: &mut Checks, m: &Machine) {
    let (p0, f0, s0) = (c.passed, c.failed, c.skipped);
    storm(c, m);
    garbage(c, m);
    sweep(c, m);
    firmware_probes(c, m);
    secure_gic(c, m);
    secure_uart(c, m);
    out!(
        "PSCI-TEST: hostile: summary: {} passed, {} failed, {} skipped",
        c.passed - p0,
        c.failed - f0,
        c.skipped - s0
    );
}

/// Cores in a storm: start.S `storm_entry` and link.ld give each its own
/// stack.
const STORM_CPUS: usize = 8;
/// Targets: the machine's CPUs (in MADT order, so a storm core's slot is
/// its index) plus MPIDRs no CPU has.
const MAX_TARGETS: usize = 20;
/// How long the primary keeps the storm going, in counter time (ms), and
/// at most how many calls it makes itself.
const STORM_MS: u64 = 3000;
const STORM_PRIMARY_CALLS: u64 = 20_000;

/// What a target is, for the answers it may get.
const KIND_ENABLED: u64 = 0;
const KIND_DISABLED: u64 = 1;
const KIND_UNKNOWN: u64 = 2;

/// One storm core's record. Only that core writes it (plain loads and
/// stores: with the MMU off there are no exclusives to rely on).
struct Slot {
    /// Times the core entered `storm_main` (the primary: 0).
    lives: AtomicU64,
    calls: AtomicU64,
    bad: AtomicU64,
    /// The first unexpected answer: function ID, target MPIDR, answer.
    first: [AtomicU64; 3],
    /// Set around every call while the storm may still start cores (see
    /// `stop_storm`).
    busy: AtomicU64,
}

impl Slot {
    const fn new() -> Self {
        Slot {
            lives: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            bad: AtomicU64::new(0),
            first: [const { AtomicU64::new(0) }; 3],
            busy: AtomicU64::new(0),
        }
    }

    fn bad(&self, f: u64, target: u64, got: u64) {
        if self.bad.load(Ordering::Acquire) == 0 {
            self.first[0].store(f, Ordering::Relaxed);
            self.first[1].store(target, Ordering::Relaxed);
            self.first[2].store(got, Ordering::Relaxed);
        }
        hw::bump(&self.bad);
    }
}

static SLOTS: [Slot; STORM_CPUS] = [const { Slot::new() }; STORM_CPUS];
static TARGET: [AtomicU64; MAX_TARGETS] = [const { AtomicU64::new(0) }; MAX_TARGETS];
static KIND: [AtomicU64; MAX_TARGETS] = [const { AtomicU64::new(0) }; MAX_TARGETS];
static NTARGETS: AtomicU64 = AtomicU64::new(0);
/// Entry points CPU_ON must refuse with INVALID_ADDRESS (set before the
/// storm: the firmware's memory is only known from the EFI memory map).
static BAD_ENTRY: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
static STOP: AtomicU64 = AtomicU64::new(0);

/// xorshift64 (Marsaglia, "Xorshift RNGs", 2003): cheap, and every core
/// gets its own sequence from its seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

fn seed(slot: usize) -> Rng {
    Rng(hw::counter().0 ^ (slot as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
}

/// Upper halves an SMC32 call must ignore (DEN0028: W registers).
const HIGH_GARBAGE: u64 = 0xdead_beef_0000_0000;

/// One storm call by the core in `slot`; false once the storm is over.
fn storm_step(slot: usize, rng: &mut Rng, c: Conduit) -> bool {
    let s = &SLOTS[slot];
    s.busy.store(1, Ordering::Release);
    hw::barrier();
    if STOP.load(Ordering::Acquire) != 0 {
        s.busy.store(0, Ordering::Release);
        return false;
    }
    let r = rng.next();
    let n = NTARGETS.load(Ordering::Acquire).max(1);
    let t = (r % n) as usize;
    let target = TARGET[t].load(Ordering::Acquire);
    let kind = KIND[t].load(Ordering::Acquire);
    let me = t == slot;
    let narrow = target >> 32 == 0;
    let entry = hw::storm_entry_address();
    // The context id is the target's slot: the started core finds its stack
    // and record by it.
    let ctx = t as u64;
    let on_ok: &[i64] = match kind {
        KIND_UNKNOWN => &[ret::INVALID_PARAMETERS],
        KIND_DISABLED => &[ret::DENIED],
        _ if me => &[ret::ALREADY_ON],
        _ => &[ret::SUCCESS, ret::ALREADY_ON, ret::ON_PENDING],
    };
    let aff_ok: &[i64] = match kind {
        KIND_UNKNOWN => &[ret::INVALID_PARAMETERS],
        KIND_DISABLED => &[ret::AFF_OFF],
        _ if me => &[ret::AFF_ON],
        _ => &[ret::AFF_ON, ret::AFF_OFF, ret::AFF_ON_PENDING],
    };
    let bad_entry_ok: &[i64] = match kind {
        KIND_UNKNOWN => &[ret::INVALID_PARAMETERS],
        KIND_DISABLED => &[ret::DENIED],
        _ => &[ret::INVALID_ADDRESS],
    };
    let (regs, ok): ([u64; 4], &[i64]) = match (r >> 32) % 8 {
        0 | 1 => ([fid::CPU_ON_64 as u64, target, entry, ctx], on_ok),
        // SMC32 with garbage in the upper halves, which must be ignored.
        2 if narrow => (
            [
                fid::CPU_ON_32 as u64,
                target | HIGH_GARBAGE,
                entry | HIGH_GARBAGE,
                ctx | HIGH_GARBAGE,
            ],
            on_ok,
        ),
        2 | 3 => {
            let e = BAD_ENTRY[((r >> 40) % 4) as usize].load(Ordering::Acquire);
            ([fid::CPU_ON_64 as u64, target, e, ctx], bad_entry_ok)
        }
        4 | 5 => ([fid::AFFINITY_INFO_64 as u64, target, 0, 0], aff_ok),
        6 if narrow => (
            [
                fid::AFFINITY_INFO_32 as u64,
                target | HIGH_GARBAGE,
                HIGH_GARBAGE,
                0,
            ],
            aff_ok,
        ),
        // Affinity levels above 0 are not supported (DEN0022D,
        // AFFINITY_INFO: optional, deprecated since PSCI 1.0).
        _ => (
            [fid::AFFINITY_INFO_64 as u64, target, 1 + (r >> 48) % 3, 0],
            &[ret::INVALID_PARAMETERS],
        ),
    };
    let res = hw::smccc(c, regs);
    s.busy.store(0, Ordering::Release);
    hw::bump(&s.calls);
    let got = status(res.x[0]);
    if !ok.contains(&got) || res.clobbered != 0 {
        s.bad(regs[0], target, res.x[0]);
    }
    true
}

/// Where a storm core starts (start.S `storm_entry`, on its own stack):
/// storm until told to stop or its life is over, then CPU_OFF.
#[no_mangle]
extern "C" fn storm_main(slot: u64) -> ! {
    let i = slot as usize;
    let s = &SLOTS[i];
    hw::bump(&s.lives);
    let Some(c) = conduit() else { hw::halt() };
    if TARGET[i].load(Ordering::Acquire) != hw::mpidr() {
        // The firmware passed another core's context id.
        s.bad(fid::CPU_ON_64 as u64, hw::mpidr(), slot);
    }
    let mut rng = seed(i);
    let life = 4 + rng.next() % 28;
    for _ in 0..life {
        if !storm_step(i, &mut rng, c) {
            break;
        }
    }
    hw::smccc(c, [fid::CPU_OFF as u64, 0, 0, 0]);
    s.bad(fid::CPU_OFF as u64, hw::mpidr(), 0);
    hw::halt()
}

fn storm(c: &mut Checks, m: &Machine) {
    const CHECK: &str = "storm: CPU_ON/AFFINITY_INFO/CPU_OFF from every enabled core at once";
    let cpus = m.cpus();
    let me = hw::mpidr();
    let Some(my_slot) = cpus.iter().position(|x| x.mpidr == me) else {
        c.skip(&name(CHECK), "this core is not in the MADT");
        return;
    };
    let enabled = cpus.iter().filter(|x| x.enabled).count();
    if enabled < 2 {
        c.skip(&name(CHECK), "only one enabled CPU");
        return;
    }
    if cpus
        .iter()
        .enumerate()
        .any(|(i, x)| x.enabled && i >= STORM_CPUS)
        || cpus.len() + 2 > MAX_TARGETS
    {
        c.skip(&name(CHECK), "more CPUs than the storm has slots for");
        return;
    }
    let mut n = 0;
    for x in cpus {
        TARGET[n].store(x.mpidr, Ordering::Relaxed);
        let k = if x.enabled {
            KIND_ENABLED
        } else {
            KIND_DISABLED
        };
        KIND[n].store(k, Ordering::Relaxed);
        n += 1;
    }
    // Two MPIDRs no CPU has: one with Aff0 above every CPU's, one with Aff3
    // (which the 32-bit forms cannot carry).
    let unknown = (0..=0xffu64)
        .rev()
        .find(|&a| !cpus.iter().any(|x| x.mpidr == a))
        .unwrap_or(0xff);
    for u in [unknown, 0x7f_0000_0000] {
        TARGET[n].store(u, Ordering::Relaxed);
        KIND[n].store(KIND_UNKNOWN, Ordering::Relaxed);
        n += 1;
    }
    let fw = m.firmware.map_or(0, |(b, _)| b);
    for (slot, e) in
        BAD_ENTRY
            .iter()
            .zip([fw, hw::storm_entry_address() + 2, 0x0000_ffff_ffff_f000, 0])
    {
        slot.store(e, Ordering::Relaxed);
    }
    NTARGETS.store(n as u64, Ordering::Release);
    STOP.store(0, Ordering::Release);
    hw::barrier();

    let (t0, freq) = hw::counter();
    let mut rng = seed(my_slot);
    let mut calls = 0;
    while calls < STORM_PRIMARY_CALLS && hw::counter().0 - t0 < STORM_MS * freq / 1000 {
        storm_step(my_slot, &mut rng, c.conduit);
        calls += 1;
    }
    let (drained, all_off) = stop_storm(c, m, my_slot);

    let (mut total, mut bad, mut lives, mut first) = (0, 0, 0, None);
    let mut never_started = None;
    for (i, x) in cpus.iter().enumerate().filter(|(_, x)| x.enabled) {
        let s = &SLOTS[i];
        total += s.calls.load(Ordering::Acquire);
        let b = s.bad.load(Ordering::Acquire);
        if b > 0 && first.is_none() {
            first = Some([0, 1, 2].map(|k| s.first[k].load(Ordering::Acquire)));
        }
        bad += b;
        let l = s.lives.load(Ordering::Acquire);
        lives += l;
        if i != my_slot && l == 0 {
            never_started.get_or_insert(x.mpidr);
        }
    }
    c.calls += total as u32;
    c.ok(
        &name(CHECK),
        bad == 0 && total > 0,
        &StormResult {
            cores: enabled,
            total,
            lives,
            bad,
            first,
        },
    );
    c.ok(
        &name("storm: every enabled core was started by the storm"),
        never_started.is_none(),
        &Name(
            match never_started {
                None => "core starts",
                Some(_) => "never started: MPIDR",
            },
            Some(never_started.unwrap_or(lives)),
        ),
    );
    c.ok(
        &name("storm: no call in flight after the stop"),
        drained,
        &name(if drained {
            "every core saw the stop"
        } else {
            "a core is stuck in a call"
        }),
    );
    c.ok(
        &name("storm: every core OFF again (AFFINITY_INFO)"),
        all_off.is_none(),
        &Name(
            match all_off {
                None => "within 10 s",
                Some(_) => "still not OFF after 10 s: MPIDR",
            },
            all_off,
        ),
    );
}

/// Ends the storm: no core may start another after the primary has seen
/// every `busy` flag clear (each core sets its flag before it reads STOP
/// and clears it after its call returned, so a call that saw no STOP is
/// still flagged), and the cores that are on or pending then turn off by
/// themselves. Returns whether the calls drained and, if some core never
/// reached OFF, its MPIDR.
fn stop_storm(c: &mut Checks, m: &Machine, my_slot: usize) -> (bool, Option<u64>) {
    STOP.store(1, Ordering::Release);
    hw::barrier();
    let cpus = m.cpus();
    let drained = wait_for(5, || {
        (0..cpus.len().min(STORM_CPUS))
            .all(|i| i == my_slot || SLOTS[i].busy.load(Ordering::Acquire) == 0)
    });
    let mut last = None;
    wait_for(10, || {
        last = cpus
            .iter()
            .enumerate()
            .filter(|&(i, x)| x.enabled && i != my_slot)
            .find(|&(_, x)| c.call(fid::AFFINITY_INFO_64, x.mpidr, 0, 0) != ret::AFF_OFF)
            .map(|(_, x)| x.mpidr);
        last.is_none()
    });
    (drained, last)
}

struct StormResult {
    cores: usize,
    total: u64,
    lives: u64,
    bad: u64,
    first: Option<[u64; 3]>,
}
impl core::fmt::Display for StormResult {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} calls from {} cores, {} core starts, {} unexpected answers",
            self.total, self.cores, self.lives, self.bad
        )?;
        if let Some([fid, target, got]) = self.first {
            write!(
                f,
                "; first: function {fid:#x} target {target:#x} got {} (or registers clobbered)",
                Status(status(got))
            )?;
        }
        Ok(())
    }
}

/// Single calls with arguments no caller should pass, one line each.
fn garbage(c: &mut Checks, m: &Machine) {
    let cpus = m.cpus();
    let me = hw::mpidr();
    let Some(s) = cpus
        .iter()
        .find(|x| x.enabled && x.mpidr != me)
        .map(|x| x.mpidr)
    else {
        c.skip(&name("CPU_ON with garbage"), "only one enabled CPU");
        return;
    };
    let entry = hw::secondary_entry_address();
    let mut bad_entries: [(&str, u64); 8] = [
        ("CPU_ON entry point 0", 0),
        ("CPU_ON entry point in flash (firmware code)", 0x1000),
        ("CPU_ON entry point unaligned", entry + 2),
        ("CPU_ON entry point at the top of the address space", !3),
        ("CPU_ON entry point in firmware memory", 0),
        ("CPU_ON entry point at the end of firmware memory", 0),
        ("CPU_ON entry point in the GIC distributor", 0),
        ("CPU_ON entry point in the UART", m.uart),
    ];
    if let Some((b, size)) = m.firmware {
        bad_entries[4].1 = b;
        bad_entries[5].1 = b + size - 4;
    }
    if let Some((d, _)) = m.gicv3 {
        bad_entries[6].1 = d;
    }
    for (what, e) in bad_entries {
        if e == 0 && !what.ends_with(" 0") {
            c.skip(&name(what), "not known on this machine");
            continue;
        }
        let v = c.call(fid::CPU_ON_64, s, e, 0);
        c.expect(&Name(what, Some(e)), v, ret::INVALID_ADDRESS);
    }
    for (b, _) in m.firmware_more.into_iter().flatten() {
        let v = c.call(fid::CPU_ON_64, s, b, 0);
        c.expect(
            &Name("CPU_ON entry point in another firmware region", Some(b)),
            v,
            ret::INVALID_ADDRESS,
        );
    }
    // MPIDRs with bits outside the affinity fields (Arm ARM MPIDR_EL1: MT
    // 24, U 30, RES1 31, above Aff3) name no CPU, even with a real core's
    // affinity in them.
    for bogus in [
        s | 1 << 24,
        s | 1 << 30,
        s | 1 << 31,
        s | 1 << 40,
        s | 0xff << 56,
        !0,
    ] {
        let v = c.call(fid::CPU_ON_64, bogus, entry, 0);
        c.expect(
            &Name("CPU_ON bogus MPIDR", Some(bogus)),
            v,
            ret::INVALID_PARAMETERS,
        );
        let v = c.call(fid::AFFINITY_INFO_64, bogus, 0, 0);
        c.expect(
            &Name("AFFINITY_INFO bogus MPIDR", Some(bogus)),
            v,
            ret::INVALID_PARAMETERS,
        );
    }
    for level in [1, 3, 0xffff_ffff] {
        let v = c.call(fid::AFFINITY_INFO_64, me, level, 0);
        c.expect(
            &Name("AFFINITY_INFO self at lowest level", Some(level)),
            v,
            ret::INVALID_PARAMETERS,
        );
    }
    // power_state values Hotstub does not offer (only core standby, 0;
    // see firmware/psci/mod.rs): powerdown (bit 16), power level 1 (bits
    // 25:24), StateID 1, a reserved bit (30). None may suspend.
    for ps in [1 << 16, 1 << 24, 1, 1 << 30] {
        let v = c.call(fid::CPU_SUSPEND_64, ps, entry, 0);
        c.expect(
            &Name("CPU_SUSPEND power_state not offered", Some(ps)),
            v,
            ret::INVALID_PARAMETERS,
        );
    }
    for &cd in conduits(m) {
        let v = c.call_via(cd, true, [fid::PSCI_VERSION as u64, 0, 0, 0]);
        let what = match cd {
            Conduit::Hvc => "PSCI_VERSION through HVC #1 (not an SMCCC call)",
            Conduit::Smc => "PSCI_VERSION through SMC #1 (not an SMCCC call)",
        };
        c.expect(&name(what), v, ret::NOT_SUPPORTED);
    }
}

/// The conduits that reach the resident firmware: under EL2 the kernel's
/// HVC and its trapped SMC; under EL3 only SMC (an HVC at EL2 stays there).
fn conduits(m: &Machine) -> &'static [Conduit] {
    match (hw::current_el(), m.conduit) {
        (1, _) => &[Conduit::Hvc, Conduit::Smc],
        (_, Conduit::Hvc) => &[Conduit::Hvc],
        _ => &[Conduit::Smc],
    }
}

/// Function IDs the sweep leaves out because a correct firmware stops or
/// suspends the caller or the machine for them (DEN0022D chapter 5).
fn sweep_excluded(f: u32) -> bool {
    matches!(
        f,
        fid::CPU_SUSPEND_32
            | fid::CPU_SUSPEND_64
            | fid::CPU_OFF
            | fid::SYSTEM_OFF
            | fid::SYSTEM_RESET
            | fid::CPU_FREEZE
            | fid::CPU_DEFAULT_SUSPEND_32
            | fid::CPU_DEFAULT_SUSPEND_64
            | fid::SYSTEM_SUSPEND_32
            | fid::SYSTEM_SUSPEND_64
            | fid::SYSTEM_RESET2_32
            | fid::SYSTEM_RESET2_64
    )
}

/// Arguments of every sweep call: no CPU, no function, no level.
const SWEEP_ARGS: [u64; 3] = [0xdead_beef_cafe_f00d, 0x5eed_0bad_f00d_0001, !0];

/// What Hotstub answers for `f` with `SWEEP_ARGS`: its versions, its
/// MIGRATE_INFO_TYPE, INVALID_PARAMETERS from CPU_ON and AFFINITY_INFO
/// for the garbage MPIDR, NOT_SUPPORTED for everything else (DEN0028
/// "Unknown Function Identifier"), including PSCI_FEATURES and
/// SMCCC_ARCH_FEATURES of the garbage ID.
fn sweep_expected(f: u32) -> i64 {
    match f {
        fid::PSCI_VERSION | fid::SMCCC_VERSION => 0x1_0001,
        fid::MIGRATE_INFO_TYPE => 2,
        fid::CPU_ON_32 | fid::CPU_ON_64 | fid::AFFINITY_INFO_32 | fid::AFFINITY_INFO_64 => {
            ret::INVALID_PARAMETERS
        }
        _ => ret::NOT_SUPPORTED,
    }
}

fn sweep(c: &mut Checks, m: &Machine) {
    // Dense: the Arm architecture calls (SMCCC_VERSION, ARCH_FEATURES, the
    // workarounds) and both PSCI ranges; strided: every 0x10001th ID of the
    // 32-bit space, which visits every owner and call type.
    const DENSE: [(u32, u32); 3] = [
        (0x8000_0000, 0x100),
        (0x8400_0000, 0x100),
        (0xC400_0000, 0x100),
    ];
    for &cd in conduits(m) {
        let via = match cd {
            Conduit::Hvc => "HVC",
            Conduit::Smc => "SMC",
        };
        for (base, n) in DENSE {
            sweep_range(c, cd, via, base, (0..n).map(|i| base + i));
        }
        sweep_range(
            c,
            cd,
            via,
            0,
            (0..=0xffffu32).map(|k| k.wrapping_mul(0x1_0001)),
        );
    }
}

fn sweep_range(c: &mut Checks, cd: Conduit, via: &str, base: u32, ids: impl Iterator<Item = u32>) {
    let (mut calls, mut skipped, mut first_bad) = (0u32, 0u32, None);
    let mut bad = 0u32;
    for f in ids {
        if sweep_excluded(f) {
            skipped += 1;
            continue;
        }
        let [a1, a2, a3] = SWEEP_ARGS;
        let got = c.call_via(cd, false, [f as u64, a1, a2, a3]);
        calls += 1;
        if got != sweep_expected(f) {
            bad += 1;
            first_bad.get_or_insert((f, got));
        }
    }
    let what = Sweep {
        via,
        base,
        calls,
        skipped,
        bad,
        first_bad,
    };
    c.ok(&what, bad == 0, &what.detail());
}

struct Sweep<'a> {
    via: &'a str,
    base: u32,
    calls: u32,
    skipped: u32,
    bad: u32,
    first_bad: Option<(u32, i64)>,
}
impl core::fmt::Display for Sweep<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.base == 0 {
            write!(
                f,
                "function IDs, every 0x10001th of 32 bits, via {}",
                self.via
            )
        } else {
            write!(
                f,
                "function IDs {:#x}..{:#x} via {}",
                self.base,
                self.base + 0xff,
                self.via
            )
        }
    }
}
impl Sweep<'_> {
    fn detail(&self) -> SweepDetail {
        SweepDetail(self.calls, self.skipped, self.bad, self.first_bad)
    }
}
struct SweepDetail(u32, u32, u32, Option<(u32, i64)>);
impl core::fmt::Display for SweepDetail {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} calls, {} left out (they stop or suspend), {} unexpected",
            self.0, self.1, self.2
        )?;
        if let Some((id, got)) = self.3 {
            write!(
                f,
                "; first {id:#x}: got {}, want {}",
                Status(got),
                Status(sweep_expected(id))
            )?;
        }
        Ok(())
    }
}

/// What one probe saw.
#[derive(Clone, Copy, Default)]
struct Probe {
    /// Synchronous exceptions taken (each skipped the access).
    faults: u64,
    esr: u64,
    /// The value read before the write (`None`: the read faulted).
    before: Option<u32>,
    /// The value read after it.
    after: Option<u32>,
    /// The write landed (`mask` bits changed) and was put back, or left
    /// in place if `kept`.
    landed: bool,
    kept: bool,
}

impl Probe {
    fn faulted(&self) -> bool {
        self.faults > 0
    }
}

impl core::fmt::Display for Probe {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.landed {
            let what = if self.kept { "left set" } else { "put back" };
            write!(f, "write landed ({what}): ")?;
        } else if self.faulted() {
            write!(
                f,
                "faulted: {} exception(s), ESR {:#x}; ",
                self.faults, self.esr
            )?;
        } else {
            write!(f, "no effect: ")?;
        }
        match (self.before, self.after) {
            (Some(b), Some(a)) => write!(f, "read {b:#x}, then {a:#x}"),
            (Some(b), None) => write!(f, "read {b:#x}"),
            _ => write!(f, "nothing read"),
        }
    }
}

/// Reads the u32 at `addr`; `None` if the read faulted.
fn peek(addr: u64) -> Option<u32> {
    let a0 = hw::ABORTS.load(Ordering::Acquire);
    hw::EXPECT_ABORT.store(1, Ordering::Release);
    let v = hw::probe_read32(addr, 0);
    hw::EXPECT_ABORT.store(0, Ordering::Release);
    (hw::ABORTS.load(Ordering::Acquire) == a0).then_some(v)
}

/// A probe: read the u32 at `addr`, write `value` (a byte if `byte`),
/// read again; a change in `mask` bits counts as landed and is undone
/// unless `keep`. Every access may fault (the payload's vector skips it).
/// A byte probe reads the aligned word around it (with the MMU off an
/// unaligned word access faults) and `mask` is within that word.
fn probe(addr: u64, value: u32, byte: bool, mask: u32) -> Probe {
    probe_keep(addr, value, byte, mask, false)
}

fn probe_keep(addr: u64, value: u32, byte: bool, mask: u32, keep: bool) -> Probe {
    const SENTINEL: u32 = 0x5a5a_a5a5;
    let a0 = hw::ABORTS.load(Ordering::Acquire);
    hw::EXPECT_ABORT.store(1, Ordering::Release);
    let read = |a: u64| {
        let n = hw::ABORTS.load(Ordering::Acquire);
        let v = hw::probe_read32(a, SENTINEL);
        (hw::ABORTS.load(Ordering::Acquire) == n).then_some(v)
    };
    let word = addr & !3;
    let before = read(word);
    // SAFETY: the address is the firmware's or its secure world's, which
    // the payload itself does not use; what lands is put back below.
    unsafe { hw::probe_write32(addr, value, byte) };
    let after = read(word);
    let landed = matches!((before, after), (Some(b), Some(a)) if (a ^ b) & mask != 0);
    if let (true, false, Some(b)) = (landed, keep, before) {
        // SAFETY: restores the value read before.
        unsafe { hw::probe_write32(word, b, false) };
    }
    hw::EXPECT_ABORT.store(0, Ordering::Release);
    Probe {
        faults: hw::ABORTS.load(Ordering::Acquire) - a0,
        esr: hw::LAST_ABORT_ESR.load(Ordering::Acquire),
        before,
        after,
        landed,
        kept: keep,
    }
}

/// Reads and writes of the resident firmware's RAM (start, middle, last
/// word of its EFI memory map region) and of its code in flash: each must
/// fault, or read as zero and drop the write. Data read from there is a
/// leak; a landed write is corruption.
fn firmware_probes(c: &mut Checks, m: &Machine) {
    let mut at: [(&str, u64); 5] = [
        ("firmware memory, first word", 0),
        ("firmware memory, middle", 0),
        ("firmware memory, last word", 0),
        // QEMU virt's flash bank 0 (hw/arm/virt.c VIRT_FLASH), which holds
        // the firmware's code; a landed write there would be a flash
        // command, so the value written is 0xff, "read array" (the CFI
        // no-op). At EL2 stage 2 hides it, at EL3 it is secure-only.
        ("firmware code in flash", 0x0),
        ("firmware code in flash", 0x1_0000),
    ];
    match m.firmware {
        Some((b, size)) if size >= 8 => {
            at[0].1 = b;
            at[1].1 = (b + size / 2) & !7;
            at[2].1 = b + size - 4;
        }
        _ => {
            c.skip(
                &name("firmware memory probes"),
                "no firmware region in the EFI memory map",
            );
        }
    }
    if let (1, true, Some((b, _))) = (hw::current_el(), hw::el0_aarch32(), m.firmware) {
        // Stage 2 stops an EL0 AArch32 access the same way; the firmware
        // must hand the abort to EL1's AArch32 vector, not give up. First
        // the probe itself: a load of the payload's own memory runs on to
        // the UDF (EC 0).
        let own = &STOP as *const AtomicU64 as u64;
        let esr = hw::a32_load(own);
        c.ok(
            &name("EL0 AArch32 probe of the payload's own memory (no abort)"),
            esr >> 26 == 0,
            &Name("ESR", Some(esr)),
        );
        let esr = hw::a32_load(b);
        c.ok(
            &Name(
                "firmware memory from EL0 in AArch32 (data abort to EL1)",
                Some(b),
            ),
            esr >> 26 == 0x24,
            &Name("ESR", Some(esr)),
        );
    }
    // Every further region of the firmware's: its first and last word.
    let more = m.firmware_more.into_iter().flatten().flat_map(|(b, size)| {
        [
            ("firmware memory, another region, first word", b),
            ("firmware memory, another region, last word", b + size - 4),
        ]
    });
    for (i, (what, a)) in at.into_iter().chain(more).enumerate() {
        if i < 3 && a == 0 {
            continue;
        }
        let value = if (3..5).contains(&i) {
            0xff
        } else {
            0x5053_4349
        };
        let p = probe(a, value, false, !0);
        let pass = !p.landed && p.before.is_none_or(|v| v == 0) && p.after.is_none_or(|v| v == 0);
        c.ok(&Name(what, Some(a)), pass, &p);
    }
}

/// GICD_CTLR.DS (bit 6): 1 when the GIC has one security state (GICv3
/// architecture specification 12.9.4); a Non-secure read of a GIC with two
/// states sees 0.
const GICD_CTLR_DS: u32 = 1 << 6;
/// The SGI Hotstub's EL3 firmware wakes parked cores with, secure Group 0
/// (firmware/arch/aarch64/el3/gic.rs WAKE_SGI).
const WAKE_SGI: u32 = 15;

/// Non-secure writes to the GIC's secure state: the security-disable bit,
/// and for every redistributor the group, group modifier, enable, priority
/// and power bits of the firmware's own SGI. All must be ignored; the
/// CPU_ON cycles of the second pass show the wake-up SGI still works. Only
/// with two security states (EL3): a GIC with one has no secure registers.
fn secure_gic(c: &mut Checks, m: &Machine) {
    let Some((gicd, gicr)) = m.gicv3 else {
        c.skip(&name("secure GIC registers"), "no GICv3 described");
        return;
    };
    let ctlr = peek(gicd);
    match ctlr {
        Some(v) if v & GICD_CTLR_DS == 0 => {}
        _ => {
            c.skip(
                &name("secure GIC registers"),
                "the GIC has one security state (GICD_CTLR.DS = 1): nothing secure to reach",
            );
            return;
        }
    }
    let v = ctlr.unwrap_or(0);
    let p = probe(gicd, v | GICD_CTLR_DS, false, GICD_CTLR_DS);
    c.ok(
        &name("secure GIC: GICD_CTLR.DS (disable security) from the normal world"),
        !p.landed,
        &p,
    );

    // GICv3 architecture specification 12.11: RD frame GICR_WAKER 0x14
    // (ProcessorSleep bit 1), GICR_TYPER 0x8 (Last bit 4, VLPIS bit 1);
    // SGI frame at +64 KiB: IGROUPR0 0x80, ICENABLER0 0x180, ICPENDR0
    // 0x280, IPRIORITYR 0x400 (a byte per INTID), IGRPMODR0 0xd00.
    //
    // GICR_WAKER.ProcessorSleep is RAZ/WI to Non-secure accesses with two
    // security states (GICv3 architecture specification, GICR_WAKER), but
    // QEMU (10.0, hw/intc/arm_gicv3_redist.c) lets the normal world write
    // it: so that probe passes either way, leaves a landed write in place
    // (`keep`), and the second pass shows whether the firmware still wakes
    // its parked cores with every redistributor asleep.
    let bit = 1u32 << WAKE_SGI;
    let prio_lane = 0xffu32 << (8 * (WAKE_SGI % 4));
    // (what, offset, value, byte write, bits that must not change, keep)
    let regs: [(&str, u64, u32, bool, u32, bool); 5] = [
        ("GICR_IGROUPR0 (make it Non-secure)", 0x1_0080, !0, false, bit, false),
        ("GICR_IGRPMODR0 (make it Secure Group 1)", 0x1_0d00, bit, false, bit, false),
        ("GICR_ICENABLER0 (disable it)", 0x1_0180, bit, false, 0, false),
        (
            "GICR_IPRIORITYR (lowest priority, masked)",
            0x1_0400 + WAKE_SGI as u64,
            0xff,
            true,
            prio_lane,
            false,
        ),
        (
            "GICR_WAKER.ProcessorSleep (redistributor asleep; lands on QEMU, kept for the second pass)",
            0x14,
            2,
            false,
            2,
            true,
        ),
    ];
    let mut worst = [Probe::default(); 5];
    let mut frames = 0;
    let mut rd = gicr;
    for _ in 0..64 {
        // A frame that does not answer ends the walk (as if Last).
        let typer = peek(rd + 0x8).unwrap_or(1 << 4);
        for (k, &(_, off, value, byte, mask, keep)) in regs.iter().enumerate() {
            let a = rd + off;
            // GICR_WAKER: write the register as read plus the bit.
            let value = if off == 0x14 {
                peek(a).unwrap_or(0) | value
            } else {
                value
            };
            let p = probe_keep(a, value, byte, mask, keep);
            if p.landed || (frames == 0 && !worst[k].landed) {
                worst[k] = p;
            }
        }
        frames += 1;
        if typer & (1 << 4) != 0 {
            break;
        }
        rd += if typer & 2 != 0 { 0x4_0000 } else { 0x2_0000 };
    }
    for (k, &(what, .., keep)) in regs.iter().enumerate() {
        c.ok(
            &SecureSgi(what, frames),
            !worst[k].landed || keep,
            &worst[k],
        );
    }

    // ICC_SGI0R_EL1: the wake-up SGI to every other core (IRM, bit 40).
    // It must not reach them; if it did, the parked cores would still only
    // start on a CPU_ON (their mailbox), so they stay OFF either way.
    let a0 = hw::ABORTS.load(Ordering::Acquire);
    hw::EXPECT_ABORT.store(1, Ordering::Release);
    hw::probe_sgi0r((WAKE_SGI as u64) << 24 | 1 << 40);
    hw::EXPECT_ABORT.store(0, Ordering::Release);
    let faulted = hw::ABORTS.load(Ordering::Acquire) != a0;
    wait_for(1, || false);
    let me = hw::mpidr();
    let mut on = None;
    for x in m.cpus().iter().filter(|x| x.mpidr != me) {
        if c.call(fid::AFFINITY_INFO_64, x.mpidr, 0, 0) != ret::AFF_OFF {
            on.get_or_insert(x.mpidr);
        }
    }
    c.ok(
        &name("secure GIC: Group 0 SGI 15 from the normal world leaves every other core OFF"),
        on.is_none(),
        &Name(
            match (on, faulted) {
                (Some(_), _) => "a core is not OFF: MPIDR",
                (None, true) => "ICC_SGI0R_EL1 faulted",
                (None, false) => "all OFF",
            },
            on,
        ),
    );
}

struct SecureSgi<'a>(&'a str, u32);
impl core::fmt::Display for SecureSgi<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "secure GIC: SGI {WAKE_SGI} {} on {} redistributor(s) from the normal world",
            self.0, self.1
        )
    }
}

/// QEMU virt's secure PL011 (hw/arm/virt.c VIRT_SECURE_UART), only on
/// the secure bus with `secure=on` and absent without; Hotstub hands over
/// a DT with only `/chosen`, so the address cannot come from its
/// `secure-status` there.
const QEMU_VIRT_SECURE_UART: u64 = 0x0904_0000;
/// UARTPeriphID0 (PL011 TRM 3.3.14) reads 0x11 on a PL011.
const PL011_PERIPH_ID0: (u64, u32) = (0xfe0, 0x11);

/// The secure UART must not answer the normal world: its ID register must
/// fault or not read as a PL011's, and a write to its data register must
/// fault or be dropped.
fn secure_uart(c: &mut Checks, m: &Machine) {
    let base = QEMU_VIRT_SECURE_UART;
    if m.uart == base {
        c.skip(
            &name("secure UART"),
            "the console is at the secure UART's address",
        );
        return;
    }
    let a0 = hw::ABORTS.load(Ordering::Acquire);
    let read = peek(base + PL011_PERIPH_ID0.0);
    let id = Probe {
        faults: hw::ABORTS.load(Ordering::Acquire) - a0,
        esr: hw::LAST_ABORT_ESR.load(Ordering::Acquire),
        before: read,
        ..Probe::default()
    };
    let visible = read == Some(PL011_PERIPH_ID0.1);
    c.ok(
        &Name(
            "secure UART: UARTPeriphID0 from the normal world",
            Some(base),
        ),
        !visible,
        &id,
    );
    // UARTDR (0x0): a byte that, if it landed, goes out on the secure
    // console; the read back is of the receive side, so only a fault or
    // the ID check above tell. Fails only together with a visible ID.
    let dr = probe(base, b'!' as u32, false, 0);
    c.ok(
        &Name(
            "secure UART: UARTDR write from the normal world",
            Some(base),
        ),
        dr.faulted() || !visible,
        &dr,
    );
}
