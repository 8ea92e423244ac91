//! A standalone GRUB EFI program on the ESP of the suite's Debian-style
//! disk, for the contenders that boot the disk through UEFI and GRUB
//! (`bench --disk`'s EDK2, and EDK2 CloudHv under cloud-hypervisor):
//! `grub-mkstandalone` from Debian's GRUB modules, its embedded
//! configuration chaining to the ESP's `EFI/debian/grub.cfg` as Debian's
//! own EFI GRUB does.

use super::{bench_disk, fetch_unpacked, BenchDisk, Guest};
use crate::build::Arch;
use crate::util::{run, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// GRUB's target and the name UEFI's removable-media path gives a boot
/// program (UEFI 2.10, 3.5.1.1).
pub fn efi_target(arch: Arch) -> (&'static str, &'static str) {
    match arch {
        Arch::X86_64 => ("x86_64-efi", "BOOTX64.EFI"),
        Arch::Aarch64 => ("arm64-efi", "BOOTAA64.EFI"),
    }
}

/// GRUB's host packages (the x86 modules are one of them); Debian builds
/// the arm64 EFI modules for arm64 only, so those are fetched as that
/// architecture's package and unpacked under target/ (`modules`).
pub const GRUB_PACKAGES: &[&str] = &["grub-common", "grub-efi-amd64-bin"];

/// GRUB's module directory for `arch`.
fn modules(arch: Arch, dir: &Path) -> Result<PathBuf> {
    match arch {
        Arch::X86_64 => Ok(PathBuf::from("/usr/lib/grub/x86_64-efi")),
        Arch::Aarch64 => {
            let lib = dir.join("grub-arm64/usr/lib/grub/arm64-efi");
            if !lib.join("moddep.lst").is_file() {
                fetch_unpacked("grub-efi-arm64-bin", arch, &dir.join("grub-arm64"))?;
            }
            Ok(lib)
        }
    }
}

/// The modules GRUB needs for the Debian disk and its grub.cfg, all
/// built in (a boot program of about Debian's size, rather than every
/// module in its memdisk).
const GRUB_MODULES: &str = "part_gpt part_msdos fat ext2 search search_fs_uuid search_fs_file \
     configfile normal linux boot echo test gzio serial terminal loadenv all_video";

/// The standalone GRUB for `arch`, made in `dir`.
pub fn standalone_efi(arch: Arch, dir: &Path) -> Result<PathBuf> {
    let (target, name) = efi_target(arch);
    let modules = modules(arch, dir)?;
    let cfg = dir.join("grub-embedded.cfg");
    // As Debian's EFI GRUB: find the ESP's grub.cfg and read it; that one
    // finds the root file system by UUID and reads /boot/grub/grub.cfg.
    std::fs::write(
        &cfg,
        "search --no-floppy --file --set=root /EFI/debian/grub.cfg\nconfigfile ($root)/EFI/debian/grub.cfg\n",
    )
    .ctx("write GRUB's embedded config")?;
    let out = dir.join(name);
    run(Command::new("grub-mkstandalone")
        .args(["-O", target, "-d"])
        .arg(&modules)
        .arg("-o")
        .arg(&out)
        .arg(format!("--modules={GRUB_MODULES}"))
        .arg(format!("--install-modules={GRUB_MODULES}"))
        .args(["--locales=", "--fonts=", "--themes="])
        .arg(format!("boot/grub/grub.cfg={}", cfg.display())))?;
    Ok(out)
}

/// The Debian-style disk `dir/debian.img` whose entry has `cmdline`, with
/// the standalone GRUB on the ESP's removable-media path; returns the disk
/// and GRUB's program.
pub fn grub_disk(arch: Arch, g: &Guest, cmdline: &str, dir: &Path) -> Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir).ctx(format!("mkdir {}", dir.display()))?;
    let grub = standalone_efi(arch, dir)?;
    let disk = dir.join("debian.img");
    crate::util::step(format!("making {} with GRUB on its ESP", disk.display()));
    let esp = vec![(format!("EFI/BOOT/{}", efi_target(arch).1), grub.clone())];
    bench_disk(
        arch,
        g,
        &BenchDisk {
            cmdline: cmdline.into(),
            esp,
        },
        &disk,
    )?;
    Ok((disk, grub))
}
