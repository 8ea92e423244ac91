//! The checks. Each prints one line:
//! `PSCI-TEST: <name>: PASS (got X)`, `... FAIL (got X, want Y)` or
//! `... SKIP (<why>)`; then `PSCI-TEST: summary: N passed, M failed, K skipped`.

use core::fmt::Write;
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use crate::hw::{self, Guest};
use crate::machine::{self, Conduit, Machine, MemMap, Source};

/// Function IDs (Arm DEN0022D "PSCI" chapter 5; DEN0028 "SMCCC" Arm
/// Architecture Calls).
mod fid {
    pub const SMCCC_VERSION: u32 = 0x8000_0000;
    pub const PSCI_VERSION: u32 = 0x8400_0000;
    pub const CPU_SUSPEND_32: u32 = 0x8400_0001;
    pub const CPU_SUSPEND_64: u32 = 0xC400_0001;
    pub const CPU_OFF: u32 = 0x8400_0002;
    pub const CPU_ON_32: u32 = 0x8400_0003;
    pub const CPU_ON_64: u32 = 0xC400_0003;
    pub const AFFINITY_INFO_32: u32 = 0x8400_0004;
    pub const AFFINITY_INFO_64: u32 = 0xC400_0004;
    pub const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
    pub const SYSTEM_OFF: u32 = 0x8400_0008;
    pub const SYSTEM_RESET: u32 = 0x8400_0009;
    pub const PSCI_FEATURES: u32 = 0x8400_000A;
    pub const CPU_FREEZE: u32 = 0x8400_000B;
    pub const CPU_DEFAULT_SUSPEND_32: u32 = 0x8400_000C;
    pub const CPU_DEFAULT_SUSPEND_64: u32 = 0xC400_000C;
    pub const SYSTEM_SUSPEND_32: u32 = 0x8400_000E;
    pub const SYSTEM_SUSPEND_64: u32 = 0xC400_000E;
    pub const SYSTEM_RESET2_32: u32 = 0x8400_0012;
    pub const SYSTEM_RESET2_64: u32 = 0xC400_0012;
    /// In the PSCI range but assigned to no function.
    pub const UNKNOWN: u32 = 0x8400_00FF;
}

/// PSCI return codes (DEN0022D error code table) and AFFINITY_INFO states.
mod ret {
    pub const SUCCESS: i64 = 0;
    pub const NOT_SUPPORTED: i64 = -1;
    pub const INVALID_PARAMETERS: i64 = -2;
    pub const DENIED: i64 = -3;
    pub const ALREADY_ON: i64 = -4;
    pub const ON_PENDING: i64 = -5;
    pub const INVALID_ADDRESS: i64 = -9;
    pub const AFF_ON: i64 = 0;
    pub const AFF_OFF: i64 = 1;
    pub const AFF_ON_PENDING: i64 = 2;
}

pub(crate) static UART: AtomicU64 = AtomicU64::new(machine::QEMU_VIRT_PL011);
/// 0 unknown, 1 HVC, 2 SMC.
static CONDUIT: AtomicU8 = AtomicU8::new(0);

macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = writeln!($crate::hw::Pl011($crate::run::UART.load(Ordering::Relaxed)), $($arg)*);
    }};
}

// After `out!`, which it uses.
mod hostile;

fn conduit() -> Option<Conduit> {
    match CONDUIT.load(Ordering::Relaxed) {
        1 => Some(Conduit::Hvc),
        2 => Some(Conduit::Smc),
        _ => None,
    }
}

/// Powers off through PSCI if the conduit is known; else parks.
fn power_off() -> ! {
    if let Some(c) = conduit() {
        hw::smccc(c, [fid::SYSTEM_OFF as u64, 0, 0, 0]);
        out!("PSCI-TEST: error: SYSTEM_OFF returned");
    }
    hw::halt()
}

fn fatal(msg: &str) -> ! {
    out!("PSCI-TEST: error: {msg}");
    power_off()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    out!("PSCI-TEST: error: panic: {}", info.message());
    power_off()
}

/// Exception vector entry (src/start.S): `index` is the vector slot.
#[no_mangle]
extern "C" fn payload_exception(index: u64, frame: *mut u64) {
    let (esr, elr, far) = hw::fault_registers();
    // Index 12: synchronous from a lower EL in AArch32 (`hw::a32_load`).
    if index == 12 && hw::A32_PROBE.load(Ordering::Acquire) != 0 {
        hw::a32_return(frame, esr);
        return;
    }
    // Index 4..7 are the current-EL-with-SP_ELx vectors, 4 synchronous
    // (Arm ARM "Exception vectors"). A probe expects a data abort (EC 0x25)
    // or, for a system register, an Undefined Instruction (EC 0x0); each
    // probe is one instruction, so any synchronous exception is taken as
    // the probe's.
    if index == 4 && hw::EXPECT_ABORT.load(Ordering::Acquire) != 0 {
        hw::bump(&hw::ABORTS);
        hw::LAST_ABORT_ESR.store(esr, Ordering::Release);
        hw::set_elr(elr + 4);
        return;
    }
    out!(
        "PSCI-TEST: error: unexpected exception (vector {index}) at EL{}: ESR={esr:#x} ELR={elr:#x} FAR={far:#x}",
        hw::current_el()
    );
    power_off()
}

/// Where CPU_ON sends the secondary: report in, wait to be let go, CPU_OFF.
#[no_mangle]
extern "C" fn secondary_main(context_id: u64) -> ! {
    hw::SECONDARY_CTX.store(context_id, Ordering::Release);
    hw::SECONDARY_EL.store(hw::current_el(), Ordering::Release);
    hw::SECONDARY_MMU.store(hw::mmu_on() as u64, Ordering::Release);
    out!(
        "PSCI-TEST: secondary up (MPIDR {:#x}, context {context_id:#x})",
        hw::mpidr()
    );
    hw::bump(&hw::SECONDARY_RUNS);
    let t0 = hw::counter();
    while hw::SECONDARY_GO.load(Ordering::Acquire) == 0 {
        let now = hw::counter();
        if now.0 - t0.0 > 5 * now.1 {
            break; // the primary is gone; turn off anyway
        }
    }
    hw::SECONDARY_GO.store(0, Ordering::Release);
    if let Some(c) = conduit() {
        hw::smccc(c, [fid::CPU_OFF as u64, 0, 0, 0]);
    }
    // CPU_OFF returned: that is a failure the primary sees as a timeout.
    out!("PSCI-TEST: error: CPU_OFF returned on the secondary");
    hw::halt()
}

struct Checks {
    conduit: Conduit,
    passed: u32,
    failed: u32,
    skipped: u32,
    calls: u32,
    /// Calls after which some of x4..x30 or SP had changed.
    clobbers: u32,
    first_clobber: Option<(u32, u64)>,
    /// Put before every check name: "" on the first pass, "after hostile: "
    /// on the pass that follows the hostile phase.
    phase: &'static str,
}

/// PSCI results are 32-bit signed (DEN0022D); SMCCC_VERSION too.
fn status(x0: u64) -> i64 {
    x0 as u32 as i32 as i64
}

impl Checks {
    fn call(&mut self, f: u32, a1: u64, a2: u64, a3: u64) -> i64 {
        self.call_via(self.conduit, false, [f as u64, a1, a2, a3])
    }

    /// One call through `conduit`, with immediate 1 instead of 0 if `imm1`.
    fn call_via(&mut self, conduit: Conduit, imm1: bool, regs: [u64; 4]) -> i64 {
        let r = if imm1 {
            hw::smccc_imm1(conduit, regs)
        } else {
            hw::smccc(conduit, regs)
        };
        self.calls += 1;
        if r.clobbered != 0 {
            self.clobbers += 1;
            self.first_clobber
                .get_or_insert((regs[0] as u32, r.clobbered));
        }
        status(r.x[0])
    }

    fn expect(&mut self, name: &dyn core::fmt::Display, got: i64, want: i64) {
        let (g, w) = (Status(got), Status(want));
        if got == want {
            self.passed += 1;
            out!("PSCI-TEST: {}{name}: PASS (got {g})", self.phase);
        } else {
            self.failed += 1;
            out!("PSCI-TEST: {}{name}: FAIL (got {g}, want {w})", self.phase);
        }
    }

    fn ok(&mut self, name: &dyn core::fmt::Display, pass: bool, detail: &dyn core::fmt::Display) {
        if pass {
            self.passed += 1;
            out!("PSCI-TEST: {}{name}: PASS ({detail})", self.phase);
        } else {
            self.failed += 1;
            out!("PSCI-TEST: {}{name}: FAIL ({detail})", self.phase);
        }
    }

    fn skip(&mut self, name: &dyn core::fmt::Display, why: &str) {
        self.skipped += 1;
        out!("PSCI-TEST: {}{name}: SKIP ({why})", self.phase);
    }
}

/// A PSCI status: negative codes in decimal with their name, the rest in hex.
struct Status(i64);
impl core::fmt::Display for Status {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        const NAMES: [&str; 9] = [
            "NOT_SUPPORTED",
            "INVALID_PARAMETERS",
            "DENIED",
            "ALREADY_ON",
            "ON_PENDING",
            "INTERNAL_FAILURE",
            "NOT_PRESENT",
            "DISABLED",
            "INVALID_ADDRESS",
        ];
        match self.0 {
            v @ -9..=-1 => write!(f, "{v} {}", NAMES[(-v - 1) as usize]),
            v if v < 0 => write!(f, "{v}"),
            v => write!(f, "{v:#x}"),
        }
    }
}

/// Names built from parts without allocation.
struct Name<'a>(&'a str, Option<u64>);
impl core::fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.1 {
            Some(v) => write!(f, "{} {v:#x}", self.0),
            None => f.write_str(self.0),
        }
    }
}

fn name(s: &str) -> Name<'_> {
    Name(s, None)
}

/// Waits up to `secs` seconds of virtual counter time for `done`.
fn wait_for(secs: u64, mut done: impl FnMut() -> bool) -> bool {
    let (t0, freq) = hw::counter();
    loop {
        if done() {
            return true;
        }
        if hw::counter().0 - t0 > secs * freq {
            return done();
        }
    }
}

#[no_mangle]
extern "C" fn payload_main(dt: u64, bad_relocs: u64) -> ! {
    if bad_relocs != 0 {
        fatal("the image holds relocations other than R_AARCH64_RELATIVE");
    }
    if dt == 0 || !dt.is_multiple_of(8) {
        fatal("x0 does not point at a device tree");
    }
    // SAFETY: the boot protocol passes the DT's address in x0.
    let fdt = match unsafe { hw::fdt_at(dt) } {
        Ok(f) => f,
        Err(_) => fatal("x0 does not point at a valid device tree"),
    };
    let chosen = fdt.find_node("/chosen");
    let prop = |n: &str| {
        chosen
            .and_then(|c| c.property(n))
            .and_then(|p| p.as_usize())
    };
    let bootargs = machine::bootargs(&fdt);

    let mut ram = [(0u64, 0u64); 8];
    if let Some(regs) = fdt.find_node("/memory").and_then(|n| n.reg()) {
        for (slot, r) in ram.iter_mut().zip(regs) {
            *slot = (r.starting_address as u64, r.size.unwrap_or(0) as u64);
        }
    }
    let machine = if let Some(st) = prop("linux,uefi-system-table") {
        let mmap = match (
            prop("linux,uefi-mmap-start"),
            prop("linux,uefi-mmap-size"),
            prop("linux,uefi-mmap-desc-size"),
        ) {
            (Some(a), Some(s), Some(d)) if a != 0 && a.is_multiple_of(8) && s <= 0x1_0000 => {
                // SAFETY: /chosen names this as the EFI memory map, which
                // the firmware placed in memory it keeps for the OS.
                let bytes = unsafe { hw::phys_slice(a as u64, s) };
                MemMap::new(bytes, d).unwrap_or_else(|e| fatal(e))
            }
            _ => fatal("/chosen has a system table but no usable EFI memory map"),
        };
        let guest = Guest {
            map: Some(mmap),
            ram,
        };
        machine::from_acpi(&guest, st as u64, &mmap, bootargs).unwrap_or_else(|e| fatal(e))
    } else {
        machine::from_dt(&fdt).unwrap_or_else(|e| fatal(e))
    };
    UART.store(machine.uart, Ordering::Relaxed);
    CONDUIT.store(
        match machine.conduit {
            Conduit::Hvc => 1,
            Conduit::Smc => 2,
        },
        Ordering::Relaxed,
    );
    out!(
        "PSCI-TEST: start: EL{}, {}, conduit {}, {} CPUs",
        hw::current_el(),
        match machine.source {
            Source::Acpi => "ACPI via the EFI system table",
            Source::DeviceTree => "full device tree (no EFI system table)",
        },
        match machine.conduit {
            Conduit::Hvc => "HVC",
            Conduit::Smc => "SMC",
        },
        machine.ncpus
    );

    let mut c = Checks {
        conduit: machine.conduit,
        passed: 0,
        failed: 0,
        skipped: 0,
        calls: 0,
        clobbers: 0,
        first_clobber: None,
        phase: "",
    };
    run_checks(&mut c, &machine);
    if hostile::wanted(&machine) {
        hostile::run(&mut c, &machine);
        // The firmware must have come through unchanged: the same checks
        // again, each line marked.
        c.phase = "after hostile: ";
        run_checks(&mut c, &machine);
        c.phase = "";
    }

    match c.first_clobber {
        None => c.ok(
            &name("registers x4..x30 and SP preserved"),
            c.calls > 0,
            &Name("calls", Some(c.calls as u64)),
        ),
        Some((f, mask)) => {
            c.failed += 1;
            out!(
                "PSCI-TEST: registers x4..x30 and SP preserved: FAIL ({} of {} calls; first {f:#x}: changed mask {mask:#x})",
                c.clobbers,
                c.calls
            );
        }
    }
    out!(
        "PSCI-TEST: summary: {} passed, {} failed, {} skipped",
        c.passed,
        c.failed,
        c.skipped
    );
    power_off()
}

fn run_checks(c: &mut Checks, m: &Machine) {
    let me = hw::mpidr();
    let v = c.call(fid::PSCI_VERSION, 0, 0, 0);
    c.expect(&name("PSCI_VERSION"), v, 0x1_0001);
    let v = c.call(fid::SMCCC_VERSION, 0, 0, 0);
    c.expect(&name("SMCCC_VERSION"), v, 0x1_0001);

    for (f, want) in [
        (fid::PSCI_VERSION, ret::SUCCESS),
        // Flags 0: original power_state format, platform-coordinated.
        (fid::CPU_SUSPEND_32, 0),
        (fid::CPU_SUSPEND_64, 0),
        (fid::CPU_OFF, ret::SUCCESS),
        (fid::CPU_ON_32, ret::SUCCESS),
        (fid::CPU_ON_64, ret::SUCCESS),
        (fid::AFFINITY_INFO_32, ret::SUCCESS),
        (fid::AFFINITY_INFO_64, ret::SUCCESS),
        (fid::MIGRATE_INFO_TYPE, ret::SUCCESS),
        (fid::SYSTEM_OFF, ret::SUCCESS),
        (fid::SYSTEM_RESET, ret::SUCCESS),
        (fid::PSCI_FEATURES, ret::SUCCESS),
        (fid::SMCCC_VERSION, ret::SUCCESS),
        (fid::UNKNOWN, ret::NOT_SUPPORTED),
    ] {
        let got = c.call(fid::PSCI_FEATURES, f as u64, 0, 0);
        c.expect(&Name("PSCI_FEATURES", Some(f as u64)), got, want);
    }

    // MIGRATE_INFO_TYPE 2: no Trusted OS that needs migration.
    let v = c.call(fid::MIGRATE_INFO_TYPE, 0, 0, 0);
    c.expect(&name("MIGRATE_INFO_TYPE"), v, 2);

    let v = c.call(fid::AFFINITY_INFO_64, me, 0, 0);
    c.expect(&name("AFFINITY_INFO self (ON)"), v, ret::AFF_ON);

    // An enabled CPU other than this one, still off at boot.
    let cpus = m.cpus();
    let secondary = cpus
        .iter()
        .find(|x| x.enabled && x.mpidr != me)
        .map(|x| x.mpidr);
    match secondary {
        Some(s) => {
            let v = c.call(fid::AFFINITY_INFO_64, s, 0, 0);
            c.expect(&Name("AFFINITY_INFO of off CPU", Some(s)), v, ret::AFF_OFF);
        }
        None => c.skip(&name("AFFINITY_INFO of off CPU"), "only one enabled CPU"),
    }

    // An MPIDR no CPU has: Aff0 values above every CPU's.
    let unknown = (0..=0xffu64)
        .rev()
        .find(|&a| !cpus.iter().any(|x| x.mpidr == a))
        .unwrap_or(0xff_0000_0000);
    let entry = hw::secondary_entry_address();
    let v = c.call(fid::CPU_ON_64, unknown, entry, 0);
    c.expect(
        &Name("CPU_ON unknown MPIDR", Some(unknown)),
        v,
        ret::INVALID_PARAMETERS,
    );
    let v = c.call(fid::AFFINITY_INFO_64, unknown, 0, 0);
    c.expect(
        &Name("AFFINITY_INFO unknown MPIDR", Some(unknown)),
        v,
        ret::INVALID_PARAMETERS,
    );

    // Present but disabled vCPUs (MADT GICC online-capable, not enabled).
    let mut disabled = 0;
    for x in cpus.iter().filter(|x| !x.enabled) {
        disabled += 1;
        let v = c.call(fid::CPU_ON_64, x.mpidr, entry, 0);
        c.expect(&Name("CPU_ON disabled vCPU", Some(x.mpidr)), v, ret::DENIED);
        let v = c.call(fid::AFFINITY_INFO_64, x.mpidr, 0, 0);
        c.expect(
            &Name("AFFINITY_INFO disabled vCPU", Some(x.mpidr)),
            v,
            ret::AFF_OFF,
        );
        // Linux 6.11+ only treats a disabled GICC as hot-pluggable when it is
        // online-capable (Documentation/arch/arm64/cpu-hotplug.rst).
        if m.source == Source::Acpi {
            c.ok(
                &Name("disabled vCPU is online-capable in the MADT", Some(x.mpidr)),
                x.online_capable,
                &name(if x.online_capable {
                    "GICC flag bit 3 set"
                } else {
                    "GICC flag bit 3 clear"
                }),
            );
        }
    }
    if disabled == 0 {
        c.skip(&name("CPU_ON disabled vCPU"), "every vCPU is enabled");
    }

    let v = c.call(fid::CPU_ON_64, me, entry, 0);
    c.expect(&name("CPU_ON self (ALREADY_ON)"), v, ret::ALREADY_ON);

    if let Some(s) = secondary {
        const CYCLES: u64 = 5;
        for round in 0..CYCLES {
            // Every other round uses the SMC32 form (32-bit context id).
            let (f, ctx) = if round.is_multiple_of(2) {
                (fid::CPU_ON_64, 0x5053_4349_0000_0000 | round)
            } else {
                (fid::CPU_ON_32, 0x7e57_0000 | round)
            };
            cpu_on_cycle(c, s, f, entry, ctx, round);
        }
    } else {
        c.skip(&name("CPU_ON/CPU_OFF cycles"), "only one enabled CPU");
    }

    let v = c.call(fid::UNKNOWN, 0, 0, 0);
    c.expect(
        &Name("unknown function", Some(fid::UNKNOWN as u64)),
        v,
        ret::NOT_SUPPORTED,
    );
    let v = c.call(0xC400_0000, 0, 0, 0); // PSCI_VERSION has no SMC64 form
    c.expect(
        &Name("unknown function", Some(0xC400_0000)),
        v,
        ret::NOT_SUPPORTED,
    );

    cpu_suspend(c, m);
    invalid_entry(c, m, secondary);
    firmware_write(c, m);
}

/// Whether PSCI is Hotstub's resident handler (EL2 or EL3), so that its own
/// checks apply: INVALID_ADDRESS, and a resident firmware region in the EFI
/// memory map that the OS cannot write. Booted through Hotstub's ACPI
/// hand-off that is the case the payload exists for, unless the command
/// line says `psci-test.vmm-psci` (Hotstub at EL1, PSCI is QEMU's); with a
/// full DT (QEMU direct boot) only when it says `psci-test.resident`.
fn resident(m: &Machine) -> bool {
    m.has_arg("psci-test.resident")
        || (m.source == Source::Acpi && !m.has_arg("psci-test.vmm-psci"))
}

/// CPU_ON with an entry point in no memory the OS owns must fail with
/// INVALID_ADDRESS. Only asked of the resident handler (QEMU's PSCI does
/// not check), and last among the CPU_ON checks: an implementation that
/// wrongly accepts it leaves that core running astray.
fn invalid_entry(c: &mut Checks, m: &Machine, secondary: Option<u64>) {
    const CHECK: &str = "CPU_ON entry outside RAM (INVALID_ADDRESS)";
    if !resident(m) {
        c.skip(&name(CHECK), "PSCI is not a resident handler's here");
        return;
    }
    let Some(s) = secondary else {
        c.skip(&name(CHECK), "only one enabled CPU");
        return;
    };
    // Far above any RAM of QEMU virt and in no EFI memory map entry.
    const NOWHERE: u64 = 0x0000_ffff_ffff_f000;
    let v = c.call(fid::CPU_ON_64, s, NOWHERE, 0);
    c.expect(&name(CHECK), v, ret::INVALID_ADDRESS);
}

fn cpu_on_cycle(c: &mut Checks, target: u64, f: u32, entry: u64, ctx: u64, round: u64) {
    let runs = hw::SECONDARY_RUNS.load(Ordering::Acquire);
    hw::SECONDARY_GO.store(0, Ordering::Release);
    let v = c.call(f, target, entry, ctx);
    // Reported once the secondary has printed its line, so lines never mix.
    let up =
        v == ret::SUCCESS && wait_for(5, || hw::SECONDARY_RUNS.load(Ordering::Acquire) != runs);
    c.expect(
        &Name("CPU_ON enabled vCPU, round", Some(round)),
        v,
        ret::SUCCESS,
    );
    if v != ret::SUCCESS {
        return;
    }
    let got_ctx = hw::SECONDARY_CTX.load(Ordering::Acquire);
    let el = hw::SECONDARY_EL.load(Ordering::Acquire);
    let mmu = hw::SECONDARY_MMU.load(Ordering::Acquire);
    let sane = up && got_ctx == ctx && el == hw::current_el() && mmu == 0;
    c.ok(
        &Name(
            "secondary entered with context id, same EL, MMU off, round",
            Some(round),
        ),
        sane,
        &Entered {
            up,
            got_ctx,
            ctx,
            el,
            mmu,
        },
    );
    if up {
        // Running and waiting for us: a second CPU_ON finds it on.
        let v = c.call(fid::CPU_ON_64, target, entry, ctx);
        c.expect(
            &Name("CPU_ON running vCPU (ALREADY_ON), round", Some(round)),
            v,
            ret::ALREADY_ON,
        );
        let v = c.call(fid::AFFINITY_INFO_64, target, 0, 0);
        c.expect(
            &Name("AFFINITY_INFO running vCPU (ON), round", Some(round)),
            v,
            ret::AFF_ON,
        );
    }
    hw::SECONDARY_GO.store(1, Ordering::Release);
    let mut last = 0;
    let aff = if round.is_multiple_of(2) {
        fid::AFFINITY_INFO_64
    } else {
        fid::AFFINITY_INFO_32
    };
    let off = wait_for(5, || {
        last = c.call(aff, target, 0, 0);
        last == ret::AFF_OFF
    });
    let _ = off;
    c.expect(
        &Name("AFFINITY_INFO after CPU_OFF (OFF), round", Some(round)),
        last,
        ret::AFF_OFF,
    );
}

struct Entered {
    up: bool,
    got_ctx: u64,
    ctx: u64,
    el: u64,
    mmu: u64,
}
impl core::fmt::Display for Entered {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if !self.up {
            return f.write_str("the secondary did not run within 5 s");
        }
        write!(
            f,
            "context {:#x} (want {:#x}), EL{} (want EL{}), MMU {}",
            self.got_ctx,
            self.ctx,
            self.el,
            hw::current_el(),
            if self.mmu != 0 { "on" } else { "off" }
        )
    }
}

/// CPU_SUSPEND to standby: the call waits for an interrupt, so the virtual
/// timer is armed first and routed through the GICv3 to this core (with
/// PSTATE.I still masked: WFI wakes on a pending interrupt without taking
/// it). Without a GICv3 description there is no wake-up source: SKIP.
fn cpu_suspend(c: &mut Checks, m: &Machine) {
    let Some((gicd, gicr)) = m.gicv3 else {
        c.skip(
            &name("CPU_SUSPEND standby"),
            "no GICv3 to route a wake-up interrupt",
        );
        return;
    };
    if let Err(e) = hw::gicv3_route_vtimer(gicd, gicr) {
        c.skip(&name("CPU_SUSPEND standby"), e);
        return;
    }
    for f in [fid::CPU_SUSPEND_64, fid::CPU_SUSPEND_32] {
        let (_, freq) = hw::counter();
        hw::vtimer(Some(freq / 100));
        // power_state 0: standby, power level 0, StateID 0 (original format).
        let v = c.call(f, 0, hw::secondary_entry_address(), 0);
        hw::vtimer(None);
        c.expect(
            &Name("CPU_SUSPEND standby", Some(f as u64)),
            v,
            ret::SUCCESS,
        );
    }
}

/// A write to the resident firmware's memory must not land: either it
/// faults (the abort reaches this payload's vector) or it is dropped. Its
/// first region, then every further one.
fn firmware_write(c: &mut Checks, m: &Machine) {
    const CHECK: &str = "write to resident firmware memory";
    let Some(first) = m.firmware else {
        if resident(m) {
            c.ok(
                &name(CHECK),
                false,
                &name("no EfiRuntimeServicesCode or reserved region in the EFI memory map"),
            );
        } else {
            c.skip(
                &name(CHECK),
                "no resident firmware region in an EFI memory map",
            );
        }
        return;
    };
    write_region(c, CHECK, first);
    for r in m.firmware_more.into_iter().flatten() {
        write_region(c, "write to another resident firmware region", r);
    }
}

fn write_region(c: &mut Checks, check: &'static str, (base, size): (u64, u64)) {
    let addr = (base + 7) & !7;
    if addr + 8 > base + size {
        c.skip(&name(check), "region too small");
        return;
    }
    const PATTERN: u64 = 0x5053_4349_5445_5354; // "PSCITEST"
    const SENTINEL: u64 = 0x0bad_0bad_0bad_0bad;
    let aborts0 = hw::ABORTS.load(Ordering::Acquire);
    hw::EXPECT_ABORT.store(1, Ordering::Release);
    let before = hw::probe_read(addr, SENTINEL);
    // SAFETY: the resident firmware's memory, not the payload's; restored
    // below if the write lands.
    unsafe { hw::probe_write(addr, PATTERN) };
    let after = hw::probe_read(addr, SENTINEL);
    let aborts = hw::ABORTS.load(Ordering::Acquire) - aborts0;
    if after == PATTERN {
        // SAFETY: puts back what was there, so the firmware can still power off.
        unsafe { hw::probe_write(addr, before) };
    }
    hw::EXPECT_ABORT.store(0, Ordering::Release);
    let detail = WriteResult {
        addr,
        aborts,
        esr: hw::LAST_ABORT_ESR.load(Ordering::Acquire),
        after,
    };
    c.ok(&name(check), after != PATTERN, &detail);
}

struct WriteResult {
    addr: u64,
    aborts: u64,
    esr: u64,
    after: u64,
}
impl core::fmt::Display for WriteResult {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.aborts > 0 {
            write!(
                f,
                "write blocked at {:#x}: {} data abort(s), ESR {:#x}",
                self.addr, self.aborts, self.esr
            )
        } else {
            write!(f, "at {:#x}: read back {:#x}", self.addr, self.after)
        }
    }
}
