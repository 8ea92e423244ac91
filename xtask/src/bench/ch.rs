//! `cargo xtask bench --vmm cloud-hypervisor`: time to init under
//! cloud-hypervisor (CH), nested as the CH test cases run (an L1 Linux
//! under QEMU TCG with KVM runs CH): Hotstub from the Debian-style disk,
//! EDK2 CloudHv running GRUB from the same disk (x86) and CH's direct
//! kernel boot (`tests::ch_survey`). Host time from CH's start to L2's
//! init, and L2's own clock at init (the kernel's share); nested TCG makes
//! every figure many times real hardware's, so the ratios are what
//! compare. Without CH binaries an arch's rows say why they are missing.

use super::boot::median;
use crate::build::Arch;
use crate::tests::ch_survey::{boot, setup, ChFirmware};
use crate::util::{step, Result};

struct Row {
    arch: Arch,
    fw: ChFirmware,
    /// (to init, L2 uptime at init), seconds.
    samples: Vec<(f64, f64)>,
    error: Option<String>,
}

pub fn run_ch(arches: &[Arch], runs: usize) -> Result<i32> {
    let mut rows: Vec<Row> = Vec::new();
    let mut notes = Vec::new();
    for &arch in arches {
        let s = match setup(arch)? {
            Ok(s) => s,
            Err(why) => {
                notes.push(format!("{}: SKIPPED: {why}", arch.name()));
                continue;
            }
        };
        notes.push(format!("{}: L1 on {}", arch.name(), s.qemu_label()));
        let first = rows.len();
        rows.extend(ChFirmware::on(arch).iter().map(|&fw| Row {
            arch,
            fw,
            samples: Vec::new(),
            error: None,
        }));
        for r in 0..runs {
            for row in rows[first..].iter_mut().filter(|r| r.error.is_none()) {
                let what = format!("run {}/{runs} {} {}", r + 1, arch.name(), row.fw.label());
                match boot(&s, row.fw, &[], r) {
                    Ok(b) => {
                        step(format!(
                            "{what}: {:.2} s to init (L2 uptime {:.2} s); {}{}",
                            b.to_init,
                            b.uptime,
                            b.version,
                            match b.qemu_crashes {
                                0 => String::new(),
                                n => format!(" (after {n} QEMU abort(s))"),
                            }
                        ));
                        if !notes.iter().any(|n| n == &b.version) {
                            notes.push(b.version);
                        }
                        row.samples.push((b.to_init, b.uptime));
                    }
                    Err(e) => {
                        step(format!("{what}: failed: {e}"));
                        row.error = Some(e);
                    }
                }
            }
        }
    }
    print(&rows);
    for n in notes {
        println!("{n}");
    }
    Ok(0)
}

fn print(rows: &[Row]) {
    let f = |x: Option<f64>| x.map_or("-".into(), |v| format!("{v:.2}"));
    println!();
    println!(
        "{:<8} {:<18} {:>4} {:>11} {:>10} {:>11} {:>12}",
        "arch", "boot (under CH)", "runs", "to init s", "/ Hotstub", "kernel s", "before it s"
    );
    for row in rows {
        let init: Vec<f64> = row.samples.iter().map(|s| s.0).collect();
        let up: Vec<f64> = row.samples.iter().map(|s| s.1).collect();
        let pre: Vec<f64> = row.samples.iter().map(|s| s.0 - s.1).collect();
        let base = rows
            .iter()
            .find(|r| r.arch == row.arch && r.fw == ChFirmware::Hotstub)
            .and_then(|r| median(&r.samples.iter().map(|s| s.0).collect::<Vec<_>>()));
        let mi = median(&init);
        let ratio = match (mi, base) {
            (Some(x), Some(b)) if b > 0.0 => format!("{:.2}", x / b),
            _ => "-".into(),
        };
        println!(
            "{:<8} {:<18} {:>4} {:>11} {:>10} {:>11} {:>12}",
            row.arch.name(),
            row.fw.label(),
            row.samples.len(),
            f(mi),
            ratio,
            f(median(&up)),
            f(median(&pre)),
        );
        if let Some(e) = &row.error {
            println!(
                "         {}: {}",
                row.fw.label(),
                e.lines().next().unwrap_or("")
            );
        }
    }
    println!("(host seconds from CH's start, nested under QEMU TCG; kernel = L2's clock at init)");
}
