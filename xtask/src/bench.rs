//! `cargo xtask bench`: wall time from QEMU spawn to the guest init, for
//! Hotstub and the firmware QEMU users would otherwise use, on the same
//! kernel, initramfs and machine. Runs alternate between firmwares so that
//! host load drifts hit all of them alike. Not a test: it prints a table.

use crate::assets;
use crate::build::{self, Arch};
use crate::qemu::{Firmware, Vm, VmConfig};
use crate::util::{step, target_dir, Result};
use std::path::PathBuf;
use std::time::Duration;

/// SeaBIOS image QEMU loads for q35 when no -bios is given (Debian's
/// seabios package; QEMU's pc-bios name bios-256k.bin).
const SEABIOS: &str = "/usr/share/seabios/bios-256k.bin";

fn contenders(arch: Arch) -> Vec<Firmware> {
    match arch {
        Arch::X86_64 => vec![Firmware::Hotstub, Firmware::QemuDefault, Firmware::Qboot],
        Arch::Aarch64 => vec![Firmware::Hotstub, Firmware::QemuDefault, Firmware::Edk2],
    }
}

fn image_file(arch: Arch, fw: Firmware) -> Option<PathBuf> {
    match (fw, arch) {
        (Firmware::QemuDefault, Arch::X86_64) => Some(PathBuf::from(SEABIOS)),
        (Firmware::QemuDefault, Arch::Aarch64) => None,
        _ => fw.bios(arch),
    }
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

pub fn run(arches: &[Arch], runs: usize) -> Result<i32> {
    type Row = (Arch, Firmware, Vec<f64>, Vec<f64>, Option<String>);
    let mut rows: Vec<Row> = Vec::new();
    for &arch in arches {
        crate::qemu::ensure_qemu(arch)?;
        let guest = assets::guest(arch, assets::Flavor::Lts)?;
        let mut fws = Vec::new();
        for fw in contenders(arch) {
            let why = match fw {
                Firmware::Hotstub => build::build(arch, false).err(),
                _ => image_file(arch, fw)
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
            fws.push((fw, why));
        }
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); fws.len()];
        let mut pre: Vec<Vec<f64>> = vec![Vec::new(); fws.len()];
        let mut errors: Vec<Option<String>> = fws.iter().map(|(_, w)| w.clone()).collect();
        for r in 0..runs {
            for (i, (fw, why)) in fws.iter().enumerate() {
                if why.is_some() {
                    continue;
                }
                let mut cfg = VmConfig::new(arch, *fw);
                cfg.kernel = Some(guest.kernel.image.clone());
                cfg.initrd = Some(guest.initrd.clone());
                cfg.append = Some(
                    match arch {
                        Arch::X86_64 => "console=ttyS0 quiet hotstub.action=poweroff",
                        Arch::Aarch64 => "quiet hotstub.action=poweroff",
                    }
                    .into(),
                );
                let log = target_dir().join("bench-logs").join(format!(
                    "{}-{}-{r}.log",
                    arch.name(),
                    fw.label(arch).replace(' ', "-")
                ));
                let t = (|| -> Result<(f64, Option<f64>)> {
                    let mut vm = Vm::spawn(&cfg, &log, false)?;
                    let line = vm.wait_prefix("HOTSTUB: init reached", Duration::from_secs(180))?;
                    let secs = vm.started.elapsed().as_secs_f64();
                    vm.kill();
                    // The kernel's own clock at init: wall time minus this is
                    // what QEMU start-up and the firmware took.
                    let up = line
                        .split_whitespace()
                        .find_map(|w| w.strip_prefix("uptime="))
                        .and_then(|u| u.parse::<f64>().ok());
                    Ok((secs, up.map(|u| (secs - u).max(0.0))))
                })();
                match t {
                    Ok((s, p)) => {
                        step(format!(
                            "run {}/{runs} {} {}: {s:.3} s to init, {} s before the kernel",
                            r + 1,
                            arch.name(),
                            fw.label(arch),
                            p.map(|p| format!("{p:.3}")).unwrap_or_else(|| "?".into())
                        ));
                        times[i].push(s);
                        pre[i].extend(p);
                    }
                    Err(e) => {
                        step(format!(
                            "run {}/{runs} {} {}: failed: {e}",
                            r + 1,
                            arch.name(),
                            fw.label(arch)
                        ));
                        errors[i].get_or_insert(e);
                    }
                }
            }
        }
        for (i, (fw, _)) in fws.iter().enumerate() {
            rows.push((
                arch,
                *fw,
                std::mem::take(&mut times[i]),
                std::mem::take(&mut pre[i]),
                errors[i].take(),
            ));
        }
    }

    println!();
    println!(
        "{:<8} {:<12} {:>5} {:>10} {:>9} {:>9} {:>11} {:>14} {:>12}",
        "arch",
        "firmware",
        "runs",
        "median s",
        "min s",
        "max s",
        "/ Hotstub",
        "pre-kernel s",
        "image size"
    );
    let mut hot: Option<(Arch, f64)> = None;
    for (arch, fw, t, p, err) in rows.iter_mut() {
        let m = median(t);
        let pm = median(p);
        if *fw == Firmware::Hotstub {
            hot = m.map(|m| (*arch, m));
        }
        let ratio = match (m, hot) {
            (Some(m), Some((a, h))) if a == *arch => format!("{:.3}", m / h),
            _ => "-".into(),
        };
        let size = image_file(*arch, *fw)
            .and_then(|p| build::image_size(&p))
            .map(|s| format!("{} KiB", s / 1024))
            .unwrap_or_else(|| "-".into());
        let f = |x: Option<f64>| x.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into());
        println!(
            "{:<8} {:<12} {:>5} {:>10} {:>9} {:>9} {:>11} {:>14} {:>12}",
            arch.name(),
            fw.label(*arch),
            t.len(),
            f(m),
            f(t.first().copied()),
            f(t.last().copied()),
            ratio,
            f(pm),
            size
        );
        if let Some(e) = err {
            println!(
                "         ({}: {})",
                fw.label(*arch),
                e.lines().next().unwrap_or("")
            );
        }
    }
    println!("\nwall time from QEMU start to the `HOTSTUB: init reached` marker (TCG);");
    println!("pre-kernel: that wall time minus the guest's uptime at init (QEMU start-up");
    println!("plus firmware), median; less sensitive to host load than the total.");
    println!("same kernel, initramfs, -smp 2 -m 512M for every firmware; runs alternate.");
    Ok(0)
}
