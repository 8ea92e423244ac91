//! `cargo xtask bench --disk`: guest time from reset to init under icount
//! when the kernel comes from a disk, on the suite's Debian-style disk
//! (GPT, ESP, ext4 root with /boot and update-grub's grub.cfg): Hotstub
//! reading the disk itself, against EDK2 as Debian ships it running GRUB
//! from the ESP (`EFI/BOOT/BOOTX64.EFI` / `BOOTAA64.EFI`, the path a UEFI
//! firmware boots without boot entries), and against Hotstub with
//! `-kernel` (the same kernel, initrd and command line through fw_cfg).
//!
//! GRUB is a standalone EFI program (`assets::grub`). Every contender
//! boots with the disk entry's command line, to which the bench adds its
//! keys, so the three differ only in the firmware and bootloader.

use super::boot::{boot_within, median, Mode, Sample};
use super::{ICOUNT_ARGS, ICOUNT_KERNEL_ARGS};
use crate::assets::{self, grub};
use crate::build::{self, Arch};
use crate::qemu::{Firmware, VmConfig};
use crate::util::{step, target_dir, Result};
use std::path::Path;
use std::time::Duration;

/// Debian's ovmf package: code and variables in one image for `-bios`
/// (README.Debian of the package).
const OVMF: &str = "/usr/share/ovmf/OVMF.fd";

/// What boots the kernel.
#[derive(Clone, Copy, PartialEq, Eq)]
enum How {
    HotstubDisk,
    Edk2Grub,
    HotstubKernel,
}

impl How {
    const ALL: [How; 3] = [How::HotstubDisk, How::Edk2Grub, How::HotstubKernel];

    fn label(self) -> &'static str {
        match self {
            How::HotstubDisk => "Hotstub disk",
            How::Edk2Grub => "EDK2+GRUB disk",
            How::HotstubKernel => "Hotstub -kernel",
        }
    }
}

/// Per arch: the EDK2 image, the GRUB target and the name UEFI's
/// removable-media path gives a boot program (`assets::grub`).
fn efi(arch: Arch) -> (&'static str, &'static str, &'static str) {
    let (target, name) = grub::efi_target(arch);
    match arch {
        Arch::X86_64 => (OVMF, target, name),
        Arch::Aarch64 => (crate::qemu::EDK2_AARCH64, target, name),
    }
}

/// The packages the bench needs, installed through apt as the suite's
/// tools are: EDK2 for both machines and GRUB's (`assets::grub`).
fn ensure_packages() -> Result<()> {
    step("bench --disk needs ovmf, qemu-efi-aarch64, grub-common and grub-efi-amd64-bin (apt), grub-efi-arm64-bin (arm64 package, unpacked)");
    let mut pkgs = vec!["ovmf", "qemu-efi-aarch64"];
    pkgs.extend(grub::GRUB_PACKAGES);
    crate::host::ensure(&[], &pkgs)
}

/// The QEMU configuration of one contender.
fn config(arch: Arch, how: How, disk: &Path, guest: &assets::Guest, cmdline: &str) -> VmConfig {
    let fw = match (how, arch) {
        (How::Edk2Grub, Arch::Aarch64) => Firmware::Edk2,
        (How::Edk2Grub, Arch::X86_64) => Firmware::QemuDefault,
        _ => Firmware::Hotstub,
    };
    let mut cfg = VmConfig::new(arch, fw);
    if how == How::Edk2Grub && arch == Arch::X86_64 {
        cfg.extra.extend(["-bios".into(), OVMF.into()]);
    }
    cfg.extra.extend(ICOUNT_ARGS.iter().map(|a| a.to_string()));
    if how == How::HotstubKernel {
        cfg.kernel = Some(guest.kernel.image.clone());
        cfg.initrd = Some(guest.initrd.clone());
        cfg.append = Some(cmdline.into());
    } else {
        cfg.extra.extend([
            "-drive".into(),
            format!(
                "file={},if=none,id=boot,format=raw,readonly=on",
                disk.display()
            ),
            "-device".into(),
            "virtio-blk-pci,drive=boot".into(),
        ]);
    }
    cfg
}

struct Row {
    arch: Arch,
    how: How,
    samples: Vec<Sample>,
    error: Option<String>,
}

pub fn run_disk(arches: &[Arch], runs: usize) -> Result<i32> {
    ensure_packages()?;
    let mut rows = Vec::new();
    let mut sizes = Vec::new();
    for &arch in arches {
        crate::qemu::ensure_qemu(arch)?;
        build::build(arch, false)?;
        let guest = assets::guest(arch, assets::Flavor::Lts)?;
        let dir = target_dir().join("bench-disk").join(arch.name());
        let cmdline = format!(
            "{} quiet hotstub.action=poweroff hotstub.vclock=1 {ICOUNT_KERNEL_ARGS}",
            assets::debian_cmdline(arch)
        );
        let (disk, grub) = grub::grub_disk(arch, &guest, &cmdline, &dir)?;
        let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len()) / 1024;
        sizes.push(format!(
            "{}: Hotstub {} KiB; EDK2 {} KiB ({}) + GRUB {} KiB",
            arch.name(),
            size(&arch.image_path()),
            size(Path::new(efi(arch).0)),
            efi(arch).0,
            size(&grub)
        ));
        let first = rows.len();
        rows.extend(How::ALL.map(|how| Row {
            arch,
            how,
            samples: Vec::new(),
            error: None,
        }));
        for r in 0..runs {
            for row in rows[first..].iter_mut().filter(|r| r.error.is_none()) {
                let cfg = config(arch, row.how, &disk, &guest, &cmdline);
                let label = row.how.label().replace([' ', '+'], "-");
                let log = target_dir()
                    .join("bench-logs")
                    .join(format!("disk-{}-{label}-{r}.log", arch.name()));
                let what = format!("run {}/{runs} {} {}", r + 1, arch.name(), row.how.label());
                match boot_within(&cfg, &log, Mode::Icount, Duration::from_secs(900)) {
                    Ok(s) => {
                        step(format!("{what}: {:.6} s to init", s.init));
                        row.samples.push(s);
                    }
                    Err(e) => {
                        step(format!("{what}: failed: {e} (log {})", log.display()));
                        row.error = Some(e);
                    }
                }
            }
        }
    }
    print(&rows);
    for s in sizes {
        println!("{s}");
    }
    Ok(0)
}

fn print(rows: &[Row]) {
    let f = |x: Option<f64>, scale: f64| x.map_or("-".into(), |v| format!("{:.3}", v * scale));
    println!();
    println!(
        "{:<8} {:<16} {:>4} {:>10} {:>9} {:>10} {:>11} {:>10}",
        "arch", "boot", "runs", "init ms", "/ disk", "spread ms", "to kernel ms", "own fw ms"
    );
    for row in rows {
        let init: Vec<f64> = row.samples.iter().map(|s| s.init).collect();
        let pre: Vec<f64> = row.samples.iter().filter_map(|s| s.pre).collect();
        let own: Vec<f64> = row.samples.iter().filter_map(|s| s.own).collect();
        let base = rows
            .iter()
            .find(|r| r.arch == row.arch && r.how == How::HotstubDisk)
            .and_then(|r| median(&r.samples.iter().map(|s| s.init).collect::<Vec<_>>()));
        let mi = median(&init);
        let ratio = match (mi, base) {
            (Some(x), Some(b)) if b > 0.0 => format!("{:.3}", x / b),
            _ => "-".into(),
        };
        let spread = init
            .iter()
            .cloned()
            .reduce(f64::max)
            .zip(init.iter().cloned().reduce(f64::min))
            .map(|(hi, lo)| hi - lo);
        println!(
            "{:<8} {:<16} {:>4} {:>10} {:>9} {:>10} {:>11} {:>10}",
            row.arch.name(),
            row.how.label(),
            row.samples.len(),
            f(mi, 1e3),
            ratio,
            f(spread, 1e3),
            f(median(&pre), 1e3),
            f(median(&own), 1e3),
        );
        if let Some(e) = &row.error {
            println!(
                "         {}: {}",
                row.how.label(),
                e.lines().next().unwrap_or("")
            );
        }
    }
}
