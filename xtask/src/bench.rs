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

use crate::assets;
use crate::build::{self, Arch};
use crate::qemu::{Firmware, Vm, VmConfig};
use crate::util::{root, step, target_dir, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// SeaBIOS image QEMU loads for q35 when no -bios is given (Debian's
/// seabios package; QEMU's pc-bios name bios-256k.bin).
const SEABIOS: &str = "/usr/share/seabios/bios-256k.bin";

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
const ICOUNT_ARGS: &[&str] = &[
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
const ICOUNT_KERNEL_ARGS: &str = "cryptomgr.notests nokaslr";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Wall,
    Icount,
}

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

fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// One boot's numbers, in seconds.
#[derive(Default)]
struct Sample {
    /// Wall mode: host time to init; icount: virtual time to init.
    init: f64,
    /// Wall mode: host time minus the guest's uptime at init; icount:
    /// virtual time at which the kernel's clock read 0.
    pre: Option<f64>,
    /// What Hotstub itself reports (`Hotstub: N ms in firmware`).
    own: Option<f64>,
}

/// The guest's `HOTSTUB: vclock [ <printk s>] hotstub-vclock count=<n>
/// hz=<n>` line as (virtual s since the machine started, the kernel's
/// clock in s at the same point). hz=0 is x86's TSC, which QEMU's TCG
/// counts in virtual ns (target/i386 `cpu_get_tsc`).
fn parse_vclock(line: &str) -> Option<(f64, f64)> {
    let (stamp, rest) = line.split_once('[')?.1.split_once(']')?;
    let kclock: f64 = stamp.trim().parse().ok()?;
    let field = |k: &str| -> Option<u64> {
        rest.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .and_then(|v| v.parse().ok())
    };
    let (count, hz) = (field("count=")?, field("hz=")?);
    let secs = if hz == 0 {
        count as f64 / 1e9
    } else {
        count as f64 / hz as f64
    };
    Some((secs, kclock))
}

/// `Hotstub: 2.297 ms in firmware, starting Linux` as seconds.
fn parse_own(lines: &[String]) -> Option<f64> {
    lines.iter().find_map(|l| {
        let ms = l
            .strip_prefix("Hotstub: ")?
            .split_once(" ms in firmware")?
            .0;
        ms.parse::<f64>().ok().map(|m| m / 1000.0)
    })
}

fn boot(cfg: &VmConfig, log: &std::path::Path, mode: Mode) -> Result<Sample> {
    let mut vm = Vm::spawn(cfg, log, false)?;
    let timeout = Duration::from_secs(300);
    let line = vm.wait_prefix("HOTSTUB: init reached", timeout)?;
    let wall = vm.started.elapsed().as_secs_f64();
    let mut s = Sample::default();
    match mode {
        Mode::Wall => {
            vm.kill();
            // The kernel's own clock at init: wall time minus this is what
            // QEMU start-up and the firmware took.
            let up = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("uptime="))
                .and_then(|u| u.parse::<f64>().ok());
            s.init = wall;
            s.pre = up.map(|u| (wall - u).max(0.0));
        }
        Mode::Icount => {
            let v = vm.wait_prefix("HOTSTUB: vclock", timeout)?;
            vm.kill();
            let (init, kclock) =
                parse_vclock(&v).ok_or(format!("cannot read the guest's clock line `{v}`"))?;
            s.init = init;
            s.pre = Some(init - kclock);
        }
    }
    s.own = parse_own(&vm.lines());
    Ok(s)
}

struct Row {
    arch: Arch,
    fw: Firmware,
    samples: Vec<Sample>,
    error: Option<String>,
    /// x86 under icount: guest instructions from reset to the kernel's
    /// first one (`entry_insns`).
    entry: Option<u64>,
}

/// Builds the TCG plugin that counts guest instructions to the kernel's
/// first one (xtask/plugins/entry_insns.c says how).
fn entry_plugin() -> Result<PathBuf> {
    crate::host::ensure(&[], &["gcc"])?;
    let out = target_dir().join("bench-plugins").join("entry_insns.so");
    std::fs::create_dir_all(out.parent().unwrap()).ctx("mkdir target/bench-plugins")?;
    step("building the instruction-count plugin (xtask/plugins/entry_insns.c)");
    crate::util::run(
        Command::new("gcc")
            .args([
                "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-o",
            ])
            .arg(&out)
            .arg(root().join("xtask/plugins/entry_insns.c")),
    )?;
    Ok(out)
}

/// Where x86 Linux gets control: a BIOS-style firmware (SeaBIOS, qboot)
/// jumps to the real-mode setup code at offset 0x200 (boot.rst "Running
/// the Kernel"), which QEMU's -kernel puts at 0x10000 for boot protocol
/// 2.02 and later (hw/i386/x86-common.c x86_load_linux, `real_addr`);
/// Hotstub jumps to the 64-bit entry, 0x200 into the protected-mode
/// kernel, which it places at the header's pref_address (boot.rst, field
/// at 0x258).
fn x86_entries(bzimage: &Path) -> Result<[u64; 2]> {
    let head = crate::util::read_head(bzimage, 0x260)?;
    let pref = head
        .get(0x258..0x260)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
        .ok_or(format!("{} is too short for a bzImage", bzimage.display()))?;
    Ok([0x10200, pref + 0x200])
}

/// One boot with the plugin: the instructions to the kernel's first one.
fn count_entry(cfg: &VmConfig, plugin: &Path, entries: [u64; 2], log: &Path) -> Result<u64> {
    let mut cfg = cfg.clone();
    cfg.extra.extend([
        "-plugin".to_string(),
        format!(
            "{},addr={:#x},addr={:#x}",
            plugin.display(),
            entries[0],
            entries[1]
        ),
    ]);
    let mut vm = Vm::spawn(&cfg, log, false)?;
    let line = vm.wait_prefix("hotstub-entry-insns ", Duration::from_secs(120))?;
    vm.kill();
    line.trim()
        .strip_prefix("hotstub-entry-insns ")
        .and_then(|n| n.parse().ok())
        .ok_or(format!("cannot read the plugin's line `{line}`"))
}

/// The configuration of one contender's boot.
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
            rows.push(Row {
                arch,
                fw,
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
                let cfg = bench_config(arch, fw, &guest, mode);
                let log = target_dir().join("bench-logs").join(format!(
                    "{}-{}{}-{r}.log",
                    arch.name(),
                    fw.label(arch).replace(' ', "-"),
                    if mode == Mode::Icount { "-icount" } else { "" }
                ));
                let what = format!("run {}/{runs} {} {}", r + 1, arch.name(), fw.label(arch));
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
            let cfg = bench_config(row.arch, row.fw, &guest, mode);
            let label = row.fw.label(row.arch);
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

/// Runtime vCPU hotplug at EL3 (README "Runtime vCPU hotplug on arm64"):
/// wall time from `enable 2` on the control channel to Linux's answer
/// (`event: enable 2 done`, the vCPU registered) and to the vCPU online
/// (the init's `echo 1 > cpu2/online` returned), and from `disable 2` to
/// ejected (`event: disable 2 done`). `cycles` rounds in one boot, medians.
fn hotplug_latency(cycles: usize) -> Result<()> {
    let arch = Arch::Aarch64;
    let guest = assets::guest(arch, assets::Flavor::Lts)?;
    let mut cfg = VmConfig::new(arch, Firmware::Hotstub);
    cfg.machine = "virt,gic-version=3,secure=on,virtualization=on".into();
    cfg.smp = "4".into();
    cfg.kernel = Some(guest.kernel.image.clone());
    cfg.initrd = Some(guest.initrd.clone());
    cfg.append = Some("quiet hotstub.action=cmd".into());
    let dir = target_dir().join("bench-logs");
    let log = dir.join("aarch64-cpu-hotplug.log");
    let sock = dir.join("aarch64-cpu-hotplug.ctl");
    let _ = std::fs::remove_file(&sock);
    cfg.extra = [
        "-fw_cfg",
        "name=opt/org.hotstub/enabled-cpus,string=0-1",
        "-chardev",
        &format!("socket,id=ctl,path={},server=on,wait=off", sock.display()),
        "-serial",
        "chardev:ctl",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let step_t = Duration::from_secs(60);
    let r = (|| -> Result<[Vec<f64>; 3]> {
        let mut vm = Vm::spawn(&cfg, &log, false)?;
        vm.wait_prefix("HOTSTUB: ready", Duration::from_secs(300))?;
        let mut ctl = crate::control::Control::connect(&sock, Duration::from_secs(10))?;
        let mut t: [Vec<f64>; 3] = Default::default();
        for _ in 0..cycles {
            let t0 = std::time::Instant::now();
            ctl.change("enable 2", step_t, step_t)?;
            t[0].push(t0.elapsed().as_secs_f64());
            let (rc, out) = vm.guest_cmd("echo 1 > /sys/devices/system/cpu/cpu2/online", step_t)?;
            if rc != 0 {
                return Err(format!("cpu2 did not come online: {}", out.join(" ")));
            }
            t[1].push(t0.elapsed().as_secs_f64());
            let t0 = std::time::Instant::now();
            ctl.change("disable 2", step_t, step_t)?;
            t[2].push(t0.elapsed().as_secs_f64());
        }
        vm.kill();
        Ok(t)
    })();
    println!("\nRuntime vCPU hotplug at EL3 (6.12, wall time under TCG, median of {cycles}):");
    match r {
        Ok(t) => {
            let ms = |v: &[f64]| {
                median(v)
                    .map(|m| format!("{:.1} ms", m * 1e3))
                    .unwrap_or_default()
            };
            println!(
                "  enable 2 -> Linux registered it (event: done)  {}",
                ms(&t[0])
            );
            println!(
                "  enable 2 -> cpu2 online in Linux                {}",
                ms(&t[1])
            );
            println!(
                "  disable 2 -> Linux offlined and ejected it      {}",
                ms(&t[2])
            );
        }
        Err(e) => println!("  failed: {e} (log {})", log.display()),
    }
    Ok(())
}

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
fn resident_ram() -> Result<()> {
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

fn print_table(rows: &[Row], mode: Mode) {
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
        "{:<8} {:<12} {:>4} {:>10} {:>9} {:>10} {:>10} {:>9} {:>10} {:>10} {:>9}",
        "arch",
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
    let mut hot: Option<(Arch, Option<f64>, Option<f64>)> = None;
    for row in rows {
        let init: Vec<f64> = row.samples.iter().map(|s| s.init).collect();
        let pre: Vec<f64> = row.samples.iter().filter_map(|s| s.pre).collect();
        let own: Vec<f64> = row.samples.iter().filter_map(|s| s.own).collect();
        let (mi, mp) = (median(&init), median(&pre));
        if row.fw == Firmware::Hotstub {
            hot = Some((row.arch, mi, mp));
        }
        let (hi, hp) = match hot {
            Some((a, hi, hp)) if a == row.arch => (hi, hp),
            _ => (None, None),
        };
        let spread = match (
            init.iter().cloned().reduce(f64::min),
            init.iter().cloned().reduce(f64::max),
        ) {
            (Some(lo), Some(hi)) => Some(hi - lo),
            _ => None,
        };
        let size = image_file(row.arch, row.fw)
            .and_then(|p| build::image_size(&p))
            .map(|s| format!("{} KiB", s / 1024))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<8} {:<12} {:>4} {:>10} {:>9} {:>10} {:>10} {:>9} {:>10} {:>10} {:>9}",
            row.arch.name(),
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
    let hot_entry = rows
        .iter()
        .find(|r| r.fw == Firmware::Hotstub && r.arch == Arch::X86_64)
        .and_then(|r| r.entry);
    let counted: Vec<&Row> = rows.iter().filter(|r| r.entry.is_some()).collect();
    if !counted.is_empty() {
        println!();
        println!("x86_64 guest instructions from reset to the kernel's first instruction (one");
        println!("boot each with the TCG plugin xtask/plugins/entry_insns.c, same options):");
        for row in counted {
            let n = row.entry.unwrap_or(0);
            println!(
                "  {:<12} {:>10} {:>9}",
                row.fw.label(row.arch),
                n,
                ratio(Some(n as f64), hot_entry.map(|h| h as f64))
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
    println!("own fw ms: Hotstub's own `ms in firmware` line (ACPI PM timer / generic timer).");
    println!("same kernel, initramfs, -smp 2 -m 512M for every firmware; runs alternate.");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vclock_line() {
        let l = "HOTSTUB: vclock [    1.812282] hotstub-vclock count=2408683594 hz=0";
        let (t, k) = parse_vclock(l).unwrap();
        assert!((t - 2.408683594).abs() < 1e-12 && (k - 1.812282).abs() < 1e-12);
        let l = "HOTSTUB: vclock [    2.5] hotstub-vclock count=6250000000 hz=1000000000";
        assert_eq!(parse_vclock(l), Some((6.25, 2.5)));
        assert_eq!(parse_vclock("HOTSTUB: vclock "), None);
    }

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

    #[test]
    fn own_time() {
        let l = vec!["Hotstub: 2.297 ms in firmware, starting Linux".to_string()];
        assert_eq!(parse_own(&l), Some(0.002297));
    }
}
