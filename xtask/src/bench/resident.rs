//! What the arm64 firmware keeps of Linux's RAM at each exception level.

use crate::assets;
use crate::build::Arch;
use crate::qemu::{Firmware, Vm, VmConfig};
use crate::util::{step, target_dir, Result};
use std::time::Duration;

/// The EFI memory types Linux keeps out of its RAM, by the names its
/// `efi=debug` listing prints (drivers/firmware/efi/efi.c
/// efi_md_typeattr_format), in the table's column order.
const KEPT_TYPES: &[&str] = &[
    "Runtime Code",
    "Runtime Data",
    "ACPI Mem NVS",
    "ACPI Reclaim",
    "Reserved",
];

/// Sums the `efi:   0x<start>-0x<end> [<type>|...]` lines of a kernel log
/// by type, in bytes, for the ranges inside `ram` (start, end).
fn efi_map_kept(lines: &[String], ram: (u64, u64)) -> Vec<u64> {
    let mut kept = vec![0u64; KEPT_TYPES.len()];
    for l in lines {
        let Some(rest) = l.split_once("efi:").map(|(_, r)| r.trim_start()) else {
            continue;
        };
        let Some((range, ty)) = rest.split_once(" [") else {
            continue;
        };
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let hex = |x: &str| u64::from_str_radix(x.trim_start_matches("0x"), 16).ok();
        let (Some(a), Some(b)) = (hex(a), hex(b)) else {
            continue;
        };
        let ty = ty.split('|').next().unwrap_or("").trim();
        if let Some(i) = KEPT_TYPES.iter().position(|t| *t == ty) {
            if a >= ram.0 && b < ram.1 {
                kept[i] += b + 1 - a;
            }
        }
    }
    kept
}

/// Boots the arm64 guest once per exception level the firmware can run at
/// and prints what the EFI memory map Linux received keeps from its RAM,
/// by type, and Linux's MemTotal: EL1 (nothing stays) is the baseline, the
/// difference at EL2 and EL3 is the resident firmware's. The map comes
/// from Linux's own listing (`efi=debug`) in the kernel log the init dumps.
pub(super) fn resident_ram() -> Result<()> {
    let arch = Arch::Aarch64;
    let guest = assets::guest(arch, assets::Flavor::Lts)?;
    // virt's normal RAM starts at 1 GiB (hw/arm/virt.c, VIRT_MEM); the EL3
    // firmware's secure RAM below it is not Linux's to lose.
    let ram = (1u64 << 30, u64::MAX);
    let policy = ["-fw_cfg", "name=opt/org.hotstub/enabled-cpus,string=0"];
    let levels: [(&str, &str, &[&str]); 3] = [
        ("EL1", "virt,gic-version=3", &[]),
        (
            "EL2+policy",
            "virt,gic-version=3,virtualization=on",
            &policy,
        ),
        ("EL3", "virt,gic-version=3,secure=on,virtualization=on", &[]),
    ];
    let mut out = Vec::new();
    for (name, machine, extra) in levels {
        let mut cfg = VmConfig::new(arch, Firmware::Hotstub);
        cfg.machine = machine.into();
        cfg.kernel = Some(guest.kernel.image.clone());
        cfg.initrd = Some(guest.initrd.clone());
        cfg.append = Some("quiet efi=debug hotstub.action=poweroff hotstub.dump=1".into());
        cfg.extra = extra.iter().map(|a| a.to_string()).collect();
        let log = target_dir()
            .join("bench-logs")
            .join(format!("aarch64-resident-{name}.log"));
        let r = (|| -> Result<(Vec<u64>, Option<u64>)> {
            let mut vm = Vm::spawn(&cfg, &log, false)?;
            vm.wait_prefix("HOTSTUB-DMESG-END", Duration::from_secs(300))?;
            vm.kill();
            let lines = vm.lines();
            let mem = lines.iter().find_map(|l| {
                l.strip_prefix("HOTSTUB: memtotal_kb=")
                    .and_then(|v| v.trim().parse().ok())
            });
            Ok((efi_map_kept(&lines, ram), mem))
        })();
        match &r {
            Ok(_) => step(format!("resident RAM at {name}: read")),
            Err(e) => step(format!("resident RAM at {name}: failed: {e}")),
        }
        out.push((name, r));
    }
    println!(
        "
RAM the aarch64 firmware keeps from Linux (EFI memory map Linux printed, RAM"
    );
    println!("from 1 GiB up; KiB); MemTotal: Linux's, its change against EL1:");
    print!("{:<11}", "level");
    for t in KEPT_TYPES {
        print!(" {t:>13}");
    }
    println!(" {:>11} {:>9}", "MemTotal", "vs EL1");
    let base = out
        .first()
        .and_then(|(_, r)| r.as_ref().ok())
        .and_then(|(_, m)| *m);
    for (name, r) in &out {
        match r {
            Ok((kept, mem)) => {
                print!("{name:<11}");
                for k in kept {
                    print!(" {:>13}", k / 1024);
                }
                let f = |x: Option<i64>| x.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
                println!(
                    " {:>11} {:>9}",
                    f(mem.map(|m| m as i64)),
                    f(mem.zip(base).map(|(m, b)| m as i64 - b as i64))
                );
            }
            Err(e) => println!("{name:<11} ({})", e.lines().next().unwrap_or("")),
        }
    }
    println!("Runtime Code at EL2: the resident PSCI handler's data, heap, stacks and tables;");
    println!("at EL3 it lives in the secure RAM (not Linux's), ACPI NVS is the vCPU hotplug");
    println!("block; Runtime Data (EFI tables) and ACPI Reclaim (the tables) exist at every EL.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn efi_map_sums() {
        let l: Vec<String> = [
            "[    0.000000] efi:   0x000040000000-0x0000400fffff [Conventional|   |  |WB]",
            "[    0.000000] efi:   0x000040100000-0x00004012ffff [ACPI Reclaim|   |  |WB]",
            "[    0.000000] efi:   0x000040130000-0x000040137fff [Runtime Data|RUN|  |WB]",
            "[    0.000000] efi:   0x000040150000-0x0000401fffff [Runtime Code|RUN|  |WB]",
            "[    0.000000] efi:   0x00000e000000-0x00000effffff [Reserved    |   |  |WB]",
            "[    0.000000] efi: EFI v2.7 by Hotstub",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let k = efi_map_kept(&l, (1 << 30, u64::MAX));
        assert_eq!(k, vec![0xb0000, 0x8000, 0, 0x30000, 0]);
    }
}
