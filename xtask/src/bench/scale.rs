//! `cargo xtask bench --scale`: what Linux spends on the tables it gets as
//! the vCPU count grows, Hotstub's against QEMU's (SeaBIOS) on the same
//! machine, under icount. Not a test: it prints a table.
//!
//! Every row is `-smp 1,maxcpus=N` on q35 with 1 GiB, under the icount
//! options of `bench --icount`. "init" is the kernel's own printk time of
//! `Run /init as init process`, so the firmware's time is not in it.
//!
//! The same number of possible CPUs on both sides: under TCG no hypervisor
//! is detected, and Linux then takes none of the hot-pluggable vCPUs of
//! QEMU's revision-3 MADT (SeaBIOS's boots list 1 possible CPU), while it
//! takes Hotstub's online-capable ones (revision 6: all N). So both sides
//! also boot with `nr_cpus=1` (1 possible CPU on both: the difference is
//! the tables alone), and Hotstub once more without it (N possible CPUs,
//! what a guest on Hotstub pays for them).
//!
//! The arm64 rows are `-smp N` on virt (GICv3, `-cpu max`, 1 GiB), every
//! vCPU present: QEMU's virt has no CPU hotplug, so both sides describe N
//! possible CPUs and one boot each compares them, Hotstub against EDK2 on
//! QEMU's tables.

use super::{bench_config, Mode};
use crate::assets;
use crate::build::{self, Arch};
use crate::qemu::{Firmware, Vm, VmConfig};
use crate::util::{step, target_dir, Result};
use std::time::Duration;

/// The x86 rows: QEMU's q35 allows 4,096 (QEMU 10.0 and 11.1); 1,024 is
/// what the suite tests.
const X86_CPUS: &[u32] = &[8, 64, 288, 512, 1024];

/// The arm64 rows: virt's GICv3 limit is 512 (hw/arm/virt.c,
/// `virt_max_cpus` with two redistributor regions). 512 is left out: under
/// TCG on 2 host cores Linux 6.12 stays more than 10 min in early boot
/// after its "SLUB: ... CPUs=512" line, with QEMU's direct boot as well.
const ARM_CPUS: &[u32] = &[2, 64, 123, 256];

/// One boot's figures.
#[derive(Clone, Copy, Default)]
struct Boot {
    /// The printk time of `Run /init as init process`, s.
    init: f64,
    /// Sum of the ACPI tables' sizes Linux found.
    table_bytes: u64,
    /// Hotstub's `ms in firmware`, s.
    own: Option<f64>,
    /// What Linux reports: "Allowing P present CPUs plus H hotplug CPUs".
    possible: Option<u32>,
}

fn printk_time(line: &str) -> Option<f64> {
    let (stamp, _) = line.strip_prefix('[')?.split_once(']')?;
    stamp.trim().parse().ok()
}

/// Parses a boot's console: the dmesg dump and the table dump
/// (`hotstub.dump=1`, tests/guest/README.md).
fn parse(lines: &[String]) -> Option<Boot> {
    let init = lines
        .iter()
        .find(|l| l.contains("Run /init as init process"))
        .and_then(|l| printk_time(l))?;
    let table_bytes = lines
        .iter()
        .filter_map(|l| l.strip_prefix("HOTSTUB-TABLE-BEGIN "))
        .filter_map(|r| r.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum();
    let possible = lines.iter().find_map(|l| {
        let r = l.split_once("Allowing ")?.1;
        let w: Vec<&str> = r.split_whitespace().collect();
        Some(w.first()?.parse::<u32>().ok()? + w.get(4)?.parse::<u32>().ok()?)
    });
    Some(Boot {
        init,
        table_bytes,
        own: super::boot::parse_own(lines),
        possible,
    })
}

fn boot_one(cfg: &VmConfig, name: &str) -> Result<Boot> {
    let log = target_dir()
        .join("bench-logs")
        .join(format!("scale-{name}.log"));
    let mut vm = Vm::spawn(cfg, &log, false)?;
    let timeout = Duration::from_secs(1200);
    vm.wait_prefix("HOTSTUB: init reached", timeout)?;
    vm.wait_prefix("HOTSTUB-DMESG-END", timeout)?;
    vm.kill();
    parse(&vm.lines()).ok_or(format!("no `Run /init` time in {}", log.display()))
}

struct Row {
    cpus: u32,
    /// Hotstub with N possible CPUs, Hotstub and SeaBIOS with 1.
    hot: Result<Boot>,
    hot1: Result<Boot>,
    sea1: Result<Boot>,
}

fn config(arch: Arch, fw: Firmware, guest: &assets::Guest, cpus: u32, one: bool) -> VmConfig {
    let mut cfg = bench_config(arch, fw, guest, Mode::Icount);
    cfg.smp = match arch {
        Arch::X86_64 => format!("1,maxcpus={cpus}"),
        Arch::Aarch64 => cpus.to_string(),
    };
    cfg.memory = "1G".into();
    let append = cfg.append.get_or_insert_with(String::new);
    append.push_str(" hotstub.dump=1");
    if one {
        append.push_str(" nr_cpus=1");
    }
    cfg
}

/// Boots `fw` with `cpus` vCPUs and says what it saw.
fn measure(
    arch: Arch,
    guest: &assets::Guest,
    cpus: u32,
    fw: Firmware,
    single: bool,
) -> Result<Boot> {
    let tag = match (fw, single) {
        (Firmware::Hotstub, false) => "hotstub",
        (Firmware::Hotstub, true) => "hotstub-nr_cpus1",
        (Firmware::Edk2, _) => "edk2",
        (_, true) => "seabios-nr_cpus1",
        (_, false) => "seabios",
    };
    let cfg = config(arch, fw, guest, cpus, single);
    let r = boot_one(&cfg, &format!("{}-{cpus}-{tag}", arch.name()));
    match &r {
        Ok(b) => step(format!(
            "{} {cpus} vCPUs {tag}: init at {:.6} s, {} tables bytes, possible {}",
            arch.name(),
            b.init,
            b.table_bytes,
            b.possible.map(|p| p.to_string()).unwrap_or("?".into())
        )),
        Err(e) => step(format!("{} {cpus} vCPUs {tag}: failed: {e}", arch.name())),
    }
    r
}

/// `only`: the vCPU counts to run (all rows when empty).
pub fn run(arches: &[Arch], only: &[u32]) -> Result<i32> {
    let pick = |all: &[u32]| -> Vec<u32> {
        all.iter()
            .copied()
            .filter(|n| only.is_empty() || only.contains(n))
            .collect()
    };
    if arches.contains(&Arch::X86_64) {
        run_x86(&pick(X86_CPUS))?;
    }
    if arches.contains(&Arch::Aarch64) {
        run_arm(&pick(ARM_CPUS))?;
    }
    Ok(0)
}

fn run_x86(counts: &[u32]) -> Result<()> {
    crate::qemu::ensure_qemu(Arch::X86_64)?;
    build::build(Arch::X86_64, false)?;
    let guest = assets::guest(Arch::X86_64, assets::Flavor::Lts)?;
    let mut rows = Vec::new();
    for &n in counts {
        let one = |fw, single, _tag: &str| measure(Arch::X86_64, &guest, n, fw, single);
        let hot = one(Firmware::Hotstub, false, "hotstub");
        let hot1 = one(Firmware::Hotstub, true, "hotstub-nr_cpus1");
        let sea1 = one(Firmware::QemuDefault, true, "seabios-nr_cpus1");
        rows.push(Row {
            cpus: n,
            hot,
            hot1,
            sea1,
        });
    }
    print(&rows);
    Ok(())
}

fn run_arm(counts: &[u32]) -> Result<()> {
    crate::qemu::ensure_qemu(Arch::Aarch64)?;
    build::build(Arch::Aarch64, false)?;
    let guest = assets::guest(Arch::Aarch64, assets::Flavor::Lts)?;
    let edk2 = Firmware::Edk2.bios(Arch::Aarch64).filter(|p| p.exists());
    let mut rows = Vec::new();
    for &n in counts {
        let hot = measure(Arch::Aarch64, &guest, n, Firmware::Hotstub, false);
        let edk2 = match &edk2 {
            Some(_) => measure(Arch::Aarch64, &guest, n, Firmware::Edk2, false),
            None => Err("EDK2 (qemu-efi-aarch64) is not installed".into()),
        };
        rows.push((n, hot, edk2));
    }
    print_arm(&rows);
    Ok(())
}

fn print_arm(rows: &[(u32, Result<Boot>, Result<Boot>)]) {
    let init = |b: &Result<Boot>| {
        b.as_ref()
            .map(|b| format!("{:.4}", b.init))
            .unwrap_or_else(|_| "failed".into())
    };
    let bytes = |b: &Result<Boot>| {
        b.as_ref()
            .map(|b| b.table_bytes.to_string())
            .unwrap_or_else(|_| "-".into())
    };
    println!();
    println!("arm64 virt, GICv3, -smp N (all present), 1 GiB, icount; kernel's printk time of `Run /init`:");
    println!("| vCPUs | Hotstub | EDK2 on QEMU's tables | ratio | tables (bytes) Hotstub / QEMU | Hotstub own time |");
    println!("|---|---|---|---|---|---|");
    for (n, hot, edk2) in rows {
        let ratio = match (hot, edk2) {
            (Ok(h), Ok(q)) if q.init > 0.0 => format!("{:.3}", h.init / q.init),
            _ => "-".into(),
        };
        let own = hot
            .as_ref()
            .ok()
            .and_then(|b| b.own)
            .map(|o| format!("{:.2} ms", o * 1e3))
            .unwrap_or_else(|| "-".into());
        println!(
            "| {n} | {} | {} | {ratio} | {} / {} | {own} |",
            init(hot),
            init(edk2),
            bytes(hot),
            bytes(edk2)
        );
    }
    println!();
    println!("512 vCPUs (virt's GICv3 limit) is not run: under TCG on 2 host cores Linux");
    println!("stays more than 10 min in early boot there, with QEMU's direct boot as well.");
}

fn print(rows: &[Row]) {
    let s = |b: &Result<Boot>| {
        b.as_ref()
            .map(|b| format!("{:.4}", b.init))
            .unwrap_or_else(|_| "failed".into())
    };
    println!();
    println!("x86_64 q35, -smp 1,maxcpus=N, 1 GiB, icount; kernel's printk time of `Run /init`:");
    println!(
        "| vCPUs | Hotstub, N possible | Hotstub, 1 possible | SeaBIOS, 1 possible | ratio | tables (bytes) Hotstub / QEMU | Hotstub own time |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        let ratio = match (&r.hot1, &r.sea1) {
            (Ok(h), Ok(q)) if q.init > 0.0 => format!("{:.3}", h.init / q.init),
            _ => "-".into(),
        };
        let bytes = |b: &Result<Boot>| {
            b.as_ref()
                .map(|b| b.table_bytes.to_string())
                .unwrap_or_else(|_| "-".into())
        };
        let own = r
            .hot
            .as_ref()
            .ok()
            .and_then(|b| b.own)
            .map(|o| format!("{:.2} ms", o * 1e3))
            .unwrap_or_else(|| "-".into());
        let possible = r
            .hot
            .as_ref()
            .ok()
            .and_then(|b| b.possible)
            .map(|p| format!(" ({p})"))
            .unwrap_or_default();
        println!(
            "| {} | {}{} | {} | {} | {} | {} / {} | {} |",
            r.cpus,
            s(&r.hot),
            possible,
            s(&r.hot1),
            s(&r.sea1),
            ratio,
            bytes(&r.hot),
            bytes(&r.sea1),
            own
        );
    }
    println!();
    println!("ratio: Hotstub / SeaBIOS with 1 possible CPU on both (nr_cpus=1): under TCG Linux");
    println!("takes none of the hot-pluggable vCPUs of QEMU's revision-3 MADT, so SeaBIOS's boots");
    println!("have 1 possible CPU whatever N is; Hotstub's N possible CPUs are in brackets.");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_boot() {
        let l: Vec<String> = [
            "Hotstub: 2.468 ms in firmware, starting Linux",
            "HOTSTUB-TABLE-BEGIN APIC 2662",
            "HOTSTUB-TABLE-BEGIN DSDT 34817",
            "[    0.006646] CPU topo: Allowing 1 present CPUs plus 287 hotplug CPUs",
            "[    1.402630] Run /init as init process",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let b = parse(&l).unwrap();
        assert_eq!(b.init, 1.402630);
        assert_eq!(b.table_bytes, 2662 + 34817);
        assert_eq!(b.possible, Some(288));
        assert_eq!(b.own, Some(0.002468));
        assert!(parse(&l[..4]).is_none());
    }
}
