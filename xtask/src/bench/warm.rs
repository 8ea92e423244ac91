//! The firmware's time on a cold boot and on a warm one (the guest's
//! `reboot`, which resets the machine into the firmware again), under
//! icount: x86 on q35 and pc, arm64 at EL1, EL2 and EL3, and at 64 vCPUs
//! cold.
//!
//! Counted two ways: the TCG plugin's guest instructions from the reset
//! vector to the kernel's first instruction (every vCPU's: under icount
//! they all advance the one virtual clock), which includes what the
//! firmware does after its own line (the EL3 move into secure RAM, the
//! EL2 hand-off); and the firmware's own `ms in firmware` line, from its
//! first Rust instruction to that line.

use super::entry::{count_with, x86_entries};
use super::{ICOUNT_ARGS, ICOUNT_KERNEL_ARGS};
use crate::assets;
use crate::build::Arch;
use crate::qemu::{Firmware, VmConfig};
use crate::util::{step, target_dir, Result};
use std::path::Path;
use std::time::Duration;

/// Where the arm64 kernel's first instruction is: virt's RAM base plus
/// the firmware's MiB after QEMU's DTB (linker/aarch64.ld), the 2 MiB
/// boundary the Image goes to; text_offset is 0 on every kernel since 5.x
/// (arm64 booting.rst). On x86 it is the bzImage's 64-bit entry
/// (`entry::x86_entries`).
const ARM_KERNEL_ENTRY: u64 = 0x4020_0000;
/// QEMU virt starts every vCPU at the flash base (the reset vector).
const ARM_RESET: u64 = 0;
/// The x86 reset vector, CS base 0xffff0000 + IP 0xfff0 (Intel SDM vol. 3,
/// 9.1.4 "First Instruction Executed").
const X86_RESET: u64 = 0xffff_fff0;

/// The x86 machines measured, as for [`LEVELS`].
const X86_MACHINES: &[(&str, &str, u32, bool)] = &[("q35", "q35", 2, true), ("pc", "pc", 2, true)];

/// The arm64 machines measured: name, `-M`, vCPUs, and whether a warm boot
/// is timed too (64 vCPUs through a whole Linux boot with the plugin's
/// per-instruction callback take minutes of host time).
const LEVELS: &[(&str, &str, u32, bool)] = &[
    ("EL1", "virt,gic-version=3", 2, true),
    ("EL2", "virt,gic-version=3,virtualization=on", 2, true),
    (
        "EL3",
        "virt,gic-version=3,secure=on,virtualization=on",
        2,
        true,
    ),
    ("EL1", "virt,gic-version=3", 64, false),
    (
        "EL3",
        "virt,gic-version=3,secure=on,virtualization=on",
        64,
        false,
    ),
];

/// Every `Hotstub: N ms in firmware` of a log, in ms.
fn own_lines(lines: &[String]) -> Vec<f64> {
    lines
        .iter()
        .filter_map(|l| {
            l.strip_prefix("Hotstub: ")?
                .split_once(" ms in firmware")?
                .0
                .parse()
                .ok()
        })
        .collect()
}

struct Measured {
    insns: u64,
    own_ms: Option<f64>,
}

/// One boot with the plugin: `warm` lets the first kernel entry (`entry`)
/// pass and counts from the reset (`reset`) after it.
fn measure(
    cfg: &VmConfig,
    plugin: &Path,
    (entry, reset): (u64, u64),
    warm: bool,
    log: &Path,
) -> Result<Measured> {
    let args = if warm {
        format!("addr={entry:#x},skip=1,from={reset:#x}")
    } else {
        format!("addr={entry:#x}")
    };
    let (insns, lines) = count_with(cfg, plugin, &args, log, Duration::from_secs(900))?;
    let own = own_lines(&lines);
    Ok(Measured {
        insns,
        own_ms: own.get(usize::from(warm)).copied(),
    })
}

pub(super) fn warm_cold(plugin: &Path, arches: &[Arch]) -> Result<()> {
    for &arch in arches {
        let guest = assets::guest(arch, assets::Flavor::Lts)?;
        let a = arch.name();
        let (machines, at, append) = match arch {
            Arch::X86_64 => (
                X86_MACHINES,
                (x86_entries(&guest.kernel.image)?[1], X86_RESET),
                "console=ttyS0 quiet",
            ),
            Arch::Aarch64 => (LEVELS, (ARM_KERNEL_ENTRY, ARM_RESET), "quiet"),
        };
        let mut rows = Vec::new();
        for &(name, machine, smp, with_warm) in machines {
            let mut cells = Vec::new();
            for warm in [false, true] {
                if warm && !with_warm {
                    cells.push(None);
                    continue;
                }
                let mut cfg = VmConfig::new(arch, Firmware::Hotstub);
                cfg.machine = machine.into();
                cfg.smp = smp.to_string();
                cfg.kernel = Some(guest.kernel.image.clone());
                cfg.initrd = Some(guest.initrd.clone());
                let action = if warm { "reboot" } else { "poweroff" };
                cfg.append = Some(format!(
                    "{append} hotstub.action={action} {ICOUNT_KERNEL_ARGS}"
                ));
                cfg.extra = ICOUNT_ARGS.iter().map(|a| a.to_string()).collect();
                let what = format!("{name} -smp {smp} {}", if warm { "warm" } else { "cold" });
                let log = target_dir()
                    .join("bench-logs")
                    .join(format!("{a}-{}.log", what.replace(' ', "-")));
                match measure(&cfg, plugin, at, warm, &log) {
                    Ok(m) => {
                        step(format!(
                            "{a} {what}: {} guest instructions to the kernel",
                            m.insns
                        ));
                        cells.push(Some(m));
                    }
                    Err(e) => {
                        step(format!("{a} {what}: failed: {e}"));
                        cells.push(None);
                    }
                }
            }
            rows.push((name, smp, cells));
        }
        print_rows(arch, &rows);
    }
    Ok(())
}

type Row<'a> = (&'a str, u32, Vec<Option<Measured>>);

fn print_rows(arch: Arch, rows: &[Row]) {
    println!();
    println!(
        "{} Hotstub, cold boot and warm boot (guest `reboot`) under icount: guest",
        arch.name()
    );
    println!("instructions from the reset vector to the kernel's first one (TCG plugin; 1 ns");
    println!("each) and the firmware's own `ms in firmware` (from its Rust entry to that line):");
    println!(
        "{:<7} {:>5} {:>12} {:>12} {:>10} {:>12} {:>12}",
        "machine", "vCPUs", "cold insns", "warm insns", "warm/cold", "cold own ms", "warm own ms"
    );
    for (name, smp, cells) in rows {
        let insns = |i: usize| cells.get(i).and_then(|c| c.as_ref()).map(|m| m.insns);
        let own = |i: usize| {
            cells
                .get(i)
                .and_then(|c| c.as_ref())
                .and_then(|m| m.own_ms)
                .map(|v| format!("{v:.3}"))
                .unwrap_or_else(|| "-".into())
        };
        let n = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
        let ratio = match (insns(0), insns(1)) {
            (Some(c), Some(w)) if c > 0 => format!("{:.3}", w as f64 / c as f64),
            _ => "-".into(),
        };
        println!(
            "{name:<7} {smp:>5} {:>12} {:>12} {ratio:>10} {:>12} {:>12}",
            n(insns(0)),
            n(insns(1)),
            own(0),
            own(1)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_lines_in_order() {
        let l: Vec<String> = [
            "Hotstub: 0.941 ms in firmware, starting Linux",
            "HOTSTUB: reboot",
            "Hotstub: 0.950 ms in firmware, starting Linux",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(own_lines(&l), vec![0.941, 0.950]);
    }
}
