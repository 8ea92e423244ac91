//! The comparison table of `bench`.

use super::boot::{median, Mode, Sample};
use super::contenders::{group, image_file};
use crate::build::{self, Arch};
use crate::qemu::Firmware;

pub(super) struct Row {
    pub(super) arch: Arch,
    pub(super) fw: Firmware,
    /// `-M`; rows compare with their machine group's Hotstub.
    pub(super) machine: &'static str,
    pub(super) samples: Vec<Sample>,
    pub(super) error: Option<String>,
    /// x86 under icount: guest instructions from reset to the kernel's
    /// first one (`entry_insns`).
    pub(super) entry: Option<u64>,
}

pub(super) fn print_table(rows: &[Row], mode: Mode) {
    let f = |x: Option<f64>, scale: f64, prec: usize| {
        x.map(|v| format!("{:.*}", prec, v * scale))
            .unwrap_or_else(|| "-".into())
    };
    let ratio = |x: Option<f64>, h: Option<f64>| match (x, h) {
        (Some(x), Some(h)) if h > 0.0 => format!("{:.4}", x / h),
        _ => "-".into(),
    };
    println!();
    println!(
        "{:<8} {:<17} {:<12} {:>4} {:>10} {:>9} {:>10} {:>10} {:>9} {:>10} {:>10} {:>9}",
        "arch",
        "machine",
        "firmware",
        "runs",
        "init s",
        "/ Hotstub",
        "spread ms",
        "to kernel",
        "/ Hotstub",
        "- Hot. ms",
        "own fw ms",
        "image"
    );
    let mut hot: Option<(Arch, &str, Option<f64>, Option<f64>)> = None;
    for row in rows {
        let init: Vec<f64> = row.samples.iter().map(|s| s.init).collect();
        let pre: Vec<f64> = row.samples.iter().filter_map(|s| s.pre).collect();
        let own: Vec<f64> = row.samples.iter().filter_map(|s| s.own).collect();
        let (mi, mp) = (median(&init), median(&pre));
        if row.fw == Firmware::Hotstub {
            hot = Some((row.arch, group(row.machine), mi, mp));
        }
        let (hi, hp) = match hot {
            Some((a, g, hi, hp)) if a == row.arch && g == group(row.machine) => (hi, hp),
            _ => (None, None),
        };
        let spread = match (
            init.iter().cloned().reduce(f64::min),
            init.iter().cloned().reduce(f64::max),
        ) {
            (Some(lo), Some(hi)) => Some(hi - lo),
            _ => None,
        };
        let size = image_file(row.arch, row.fw, row.machine)
            .and_then(|p| build::image_size(&p))
            .map(|s| format!("{} KiB", s / 1024))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<8} {:<17} {:<12} {:>4} {:>10} {:>9} {:>10} {:>10} {:>9} {:>10} {:>10} {:>9}",
            row.arch.name(),
            row.machine,
            row.fw.label(row.arch),
            row.samples.len(),
            f(mi, 1.0, 6),
            ratio(mi, hi),
            f(spread, 1e3, 3),
            f(mp, 1.0, 6),
            ratio(mp, hp),
            f(mp.zip(hp).map(|(p, h)| p - h), 1e3, 3),
            f(median(&own), 1e3, 3),
            size
        );
        if let Some(e) = &row.error {
            println!(
                "         ({}: {})",
                row.fw.label(row.arch),
                e.lines().next().unwrap_or("")
            );
        }
    }
    let hot_entry = |machine: &str| {
        rows.iter()
            .find(|r| {
                r.fw == Firmware::Hotstub
                    && r.arch == Arch::X86_64
                    && group(r.machine) == group(machine)
            })
            .and_then(|r| r.entry)
    };
    let counted: Vec<&Row> = rows.iter().filter(|r| r.entry.is_some()).collect();
    if !counted.is_empty() {
        println!();
        println!("x86_64 guest instructions from reset to the kernel's first instruction (one");
        println!("boot each with the TCG plugin xtask/plugins/entry_insns.c, same options):");
        for row in counted {
            let n = row.entry.unwrap_or(0);
            println!(
                "  {:<17} {:<12} {:>10} {:>9}",
                row.machine,
                row.fw.label(row.arch),
                n,
                ratio(Some(n as f64), hot_entry(row.machine).map(|h| h as f64))
            );
        }
        println!("(SeaBIOS and qboot enter the setup code at 0x10200, Hotstub the 64-bit entry:");
        println!("what the setup code does for them, Hotstub does itself.)");
    }
    println!();
    match mode {
        Mode::Wall => {
            println!(
                "init s: median wall time from QEMU start to the `HOTSTUB: init reached` marker"
            );
            println!(
                "(TCG); to kernel: that wall time minus the guest's uptime at init (QEMU start-up"
            );
            println!("plus firmware), less sensitive to host load than the total.");
        }
        Mode::Icount => {
            println!(
                "guest (virtual) time under -icount shift=0 (1 ns per instruction), sleep=off:"
            );
            println!(
                "init s: from machine start to the init (the guest's counter, tests/guest/vclock);"
            );
            println!(
                "to kernel: to the start of the kernel's printk clock (init s minus that clock at"
            );
            println!(
                "init): firmware plus the kernel's path to its first printk; spread: max - min."
            );
            // Measured: a loop of 1, 100, 1000, 5000 and 20000 iterations in
            // Hotstub before the jump to Linux moved x86 `to kernel` by -1.0,
            // -2.1, -1.6, +1.0 and -1.6 ms: most likely the kernel's early
            // timer calibration (x86: against the PIT), whose length depends
            // on the phase at which it starts.
            println!("to kernel moves by up to ~3 ms with the sub-microsecond phase at which the");
            println!(
                "kernel starts (most likely its early timer calibration): smaller differences are noise."
            );
        }
    }
    println!(
        "own fw ms: Hotstub's own `ms in firmware` line (ACPI PM timer / generic timer; microvm: local APIC timer)."
    );
    println!("microvm rows (icount only): qboot needs acpi=off (it builds no ACPI tables); Hotstub boots both.");
    println!("same kernel, initramfs, -smp 2 -m 512M for every firmware; runs alternate.");
}
