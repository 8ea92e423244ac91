//! `cargo xtask bench`: boot time to the guest's init for Hotstub and the
//! firmware QEMU users would otherwise use, on the same kernel, initramfs
//! and machine. Runs alternate between firmwares so that host load drifts
//! hit all of them alike. Not a test: it prints a table.
//!
//! Two modes:
//! - wall time (default): QEMU spawn to the `init reached` marker, on the
//!   host's clock; noisy on a loaded host.
//! - `--icount`: QEMU counts guest instructions and the VM's virtual clock
//!   follows that count, so guest time is independent of host load and runs
//!   repeat. The guest reads its own clock (tests/guest/vclock): the counter
//!   QEMU drives from the virtual clock since the machine started, at init,
//!   and the kernel's printk clock at the same point. Their difference is
//!   the virtual time at which the kernel's clock started, i.e. the time
//!   stamp base of its first printk: firmware plus the kernel's own path to
//!   it (x86: setup code and decompressor, the same bytes for every
//!   firmware; arm64: early setup_arch before time_init).
//!
//! `bench --scale` (`scale`) is the third: Linux's time on the tables as
//! the vCPU count grows, Hotstub's tables against QEMU's.
//!
//! `contenders` names the firmwares compared, `boot` times one boot,
//! `entry` counts the x86 instructions to the kernel, `table` prints the
//! comparison; `resident` and `hotplug` are the arm64-only measurements of
//! the resident firmware, `warm` the arm64 firmware's cold and warm boots.

mod boot;
mod ch;
mod contenders;
mod disk;
mod entry;
mod hotplug;
mod resident;
mod scale;
mod table;
mod warm;

use crate::assets;
use crate::build::{self, Arch};
use crate::qemu::{Firmware, VmConfig};
use crate::util::{step, target_dir, Result};
use boot::boot;
pub use boot::Mode;
pub use ch::run_ch;
use contenders::{contenders, group, image_file};
pub use disk::run_disk;
use entry::{count_entry, entry_plugin, x86_entries};
use hotplug::hotplug_latency;
use resident::resident_ram;
pub use scale::run as scale;
use table::{print_table, Row};

/// QEMU options of the `--icount` mode (QEMU docs, `-icount`, `-rtc`,
/// `-seed`), each for repeatable guest time:
/// - `shift=0`: every guest instruction advances the virtual clock by 2^0 ns,
///   a 1 GHz CPU at one instruction per cycle, near real hardware, so the
///   fixed timeouts of firmware and kernel weigh about as they would there.
///   A fixed shift, not `auto`, which adapts to the host's speed.
/// - `sleep=off`: when every vCPU is idle the virtual clock jumps to the
///   next timer deadline instead of waiting for the host's clock.
/// - `align=off`: QEMU does not slow the host down to keep the virtual clock
///   near real time (it would not change guest time, only the run's length).
/// - `-rtc clock=vm` from a fixed date: Linux waits for the CMOS RTC's
///   update cycle at boot, which otherwise follows the host's clock.
/// - `-seed`: TCG's random numbers (RDRAND, RNDR, the DT's rng-seed) and so
///   KASLR's choices are the same every run.
pub(super) const ICOUNT_ARGS: &[&str] = &[
    "-icount",
    "shift=0,sleep=off,align=off",
    "-rtc",
    "base=2025-01-01T00:00:00,clock=vm",
    "-seed",
    "1",
];

/// Kernel arguments for every contender under icount. `cryptomgr.notests`:
/// the crypto self-tests run in racing threads during the late initcalls
/// and their length under icount swings with unrelated inputs (on arm64
/// 6.12, appending `x=12` to the command line moved Hotstub's time to init
/// by 0.12 s, more than the firmware's whole share); without them the
/// comparison measures what the firmware changes. `nokaslr` likewise: the
/// x86 decompressor seeds KASLR from the boot_params and the command line
/// the firmware hands over, so each firmware gets a different placement,
/// and the relocation work differs with it (about 1 ms to the kernel's
/// clock on x86, more than the firmware's own 0.2 ms).
pub(super) const ICOUNT_KERNEL_ARGS: &str = "cryptomgr.notests nokaslr";

/// The configuration of one contender's boot on `machine`.
fn machine_config(
    arch: Arch,
    fw: Firmware,
    machine: &str,
    guest: &assets::Guest,
    mode: Mode,
) -> VmConfig {
    let mut cfg = bench_config(arch, fw, guest, mode);
    cfg.machine = machine.into();
    cfg
}

/// The configuration of one contender's boot on the arch's default machine.
fn bench_config(arch: Arch, fw: Firmware, guest: &assets::Guest, mode: Mode) -> VmConfig {
    let mut cfg = VmConfig::new(arch, fw);
    cfg.kernel = Some(guest.kernel.image.clone());
    cfg.initrd = Some(guest.initrd.clone());
    let mut append = match arch {
        Arch::X86_64 => "console=ttyS0 quiet hotstub.action=poweroff",
        Arch::Aarch64 => "quiet hotstub.action=poweroff",
    }
    .to_string();
    if mode == Mode::Icount {
        append.push_str(" hotstub.vclock=1 ");
        append.push_str(ICOUNT_KERNEL_ARGS);
        cfg.extra.extend(ICOUNT_ARGS.iter().map(|a| a.to_string()));
    }
    cfg.append = Some(append);
    cfg
}

pub fn run(arches: &[Arch], runs: usize, mode: Mode) -> Result<i32> {
    let mut rows: Vec<Row> = Vec::new();
    for &arch in arches {
        crate::qemu::ensure_qemu(arch)?;
        let guest = assets::guest(arch, assets::Flavor::Lts)?;
        let first = rows.len();
        for (fw, machine) in contenders(arch, mode) {
            let why = match fw {
                Firmware::Hotstub => build::build(arch, false).err(),
                _ => image_file(arch, fw, machine)
                    .filter(|p| !p.exists())
                    .map(|p| format!("{} not installed", p.display())),
            };
            if let Some(w) = &why {
                step(format!(
                    "skipping {}: {}",
                    fw.label(arch),
                    w.lines().next().unwrap_or("")
                ));
            }
            rows.push(Row {
                arch,
                fw,
                machine,
                samples: Vec::new(),
                error: why,
                entry: None,
            });
        }
        for r in 0..runs {
            for row in rows[first..].iter_mut() {
                // Not there, or failed its first run: later runs would too.
                if row.error.is_some() && row.samples.is_empty() {
                    continue;
                }
                let fw = row.fw;
                let cfg = machine_config(arch, fw, row.machine, &guest, mode);
                let log = target_dir().join("bench-logs").join(format!(
                    "{}-{}-{}{}-{r}.log",
                    arch.name(),
                    group(row.machine),
                    fw.label(arch).replace(' ', "-"),
                    if mode == Mode::Icount { "-icount" } else { "" }
                ));
                let what = format!(
                    "run {}/{runs} {} {} {}",
                    r + 1,
                    arch.name(),
                    row.machine,
                    fw.label(arch)
                );
                match boot(&cfg, &log, mode) {
                    Ok(s) => {
                        step(format!(
                            "{what}: {:.6} s to init, {} s before the kernel's clock",
                            s.init,
                            s.pre
                                .map(|p| format!("{p:.6}"))
                                .unwrap_or_else(|| "?".into())
                        ));
                        row.samples.push(s);
                    }
                    Err(e) => {
                        step(format!("{what}: failed: {e}"));
                        row.error.get_or_insert(e);
                    }
                }
            }
        }
    }
    if mode == Mode::Icount && arches.contains(&Arch::X86_64) {
        let plugin = entry_plugin()?;
        let guest = assets::guest(Arch::X86_64, assets::Flavor::Lts)?;
        let entries = x86_entries(&guest.kernel.image)?;
        for row in rows
            .iter_mut()
            .filter(|r| r.arch == Arch::X86_64 && r.error.is_none())
        {
            let cfg = machine_config(row.arch, row.fw, row.machine, &guest, mode);
            let label = format!("{} {}", group(row.machine), row.fw.label(row.arch));
            let log = target_dir()
                .join("bench-logs")
                .join(format!("x86_64-{}-entry.log", label.replace(' ', "-")));
            match count_entry(&cfg, &plugin, entries, &log) {
                Ok(n) => {
                    step(format!(
                        "x86_64 {label}: {n} guest instructions to the kernel"
                    ));
                    row.entry = Some(n);
                }
                Err(e) => step(format!("x86_64 {label}: instruction count failed: {e}")),
            }
        }
    }
    print_table(&rows, mode);
    if mode == Mode::Icount {
        warm::warm_cold(&entry_plugin()?, arches)?;
    }
    if arches.contains(&Arch::Aarch64) {
        resident_ram()?;
        hotplug_latency(runs.clamp(1, 10))?;
    }
    Ok(0)
}

/// `bench --hotplug`: only the runtime vCPU hotplug latency.
pub fn hotplug_only(cycles: usize) -> Result<()> {
    crate::qemu::ensure_qemu(Arch::Aarch64)?;
    build::build(Arch::Aarch64, false)?;
    hotplug_latency(cycles.clamp(1, 100))
}
