//! Booting from a virtio disk without -kernel (issue 20): the three
//! layouts distributions install, on q35 and virt, `-kernel` winning over
//! a disk, hotplug cases booted from a disk (`booted_from_disk`), and the
//! broken disks the firmware must refuse with one error line and a
//! power-off.

use super::make::{bad, case, with};
use crate::assets::DiskImage;
use crate::build::Arch;
use crate::tests::case::{Case, Expect, InitrdSel, KernelSel};
use std::time::Duration;

const PCI: &str = "virtio-blk-pci";
const MMIO: &str = "virtio-blk-device";

/// A boot from `image` on `device` with no kernel, initrd or -append.
fn from_disk(arch: Arch, name: &str, image: DiskImage, device: &'static str) -> Case {
    let machine = crate::qemu::default_machine(arch);
    with(case(arch, name, machine, 1, 1024), |c| {
        c.kernel = KernelSel::None;
        c.initrd = InitrdSel::None;
        c.disk = false;
        c.boot_disk = Some((image, device));
        // The arm64 Image is 34 MB to read through virtio under TCG.
        c.timeout = Duration::from_secs(180);
    })
}

pub(super) fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    for arch in Arch::ALL {
        for image in [DiskImage::Debian, DiskImage::Fedora, DiskImage::Extlinux] {
            v.push(from_disk(
                arch,
                &format!("disk-{}", image.name()),
                image,
                PCI,
            ));
        }
        // -kernel wins over a bootable disk: the -append line, not the
        // disk's, reaches Linux (checks.rs).
        v.push(with(
            from_disk(arch, "disk-kernel-wins", DiskImage::Debian, PCI),
            |c| {
                c.kernel = KernelSel::Guest;
                c.initrd = InitrdSel::Guest;
            },
        ));
        // Broken disks: the library's error for each, after the disk's
        // name, and QEMU gone (bad() gives 60 s).
        for (image, error) in [
            (DiskImage::BadNoTable, "no partition table"),
            (DiskImage::BadCorruptGpt, "corrupt GPT"),
            (DiskImage::BadTruncatedExt4, "ext4:"),
            (DiskImage::BadGrubMissingKernel, "not found"),
            (DiskImage::BadBlsNoLinux, "no linux line"),
            (DiskImage::BadEmptyKernel, "is empty"),
        ] {
            v.push(with(
                bad(
                    arch,
                    &format!("bad-disk-{}", &image.name()["bad-".len()..]),
                    KernelSel::None,
                    InitrdSel::None,
                ),
                |c| {
                    c.boot_disk = Some((image, PCI));
                    c.expect = Expect::FirmwareError(error);
                },
            ));
        }
    }
    // x86 entered through PVH: QEMU's -kernel with the ELF image, the
    // kernel from the disk, -append after the entry's line.
    for image in [DiskImage::Debian, DiskImage::Fedora] {
        v.push(with(
            from_disk(
                Arch::X86_64,
                &format!("pvh-disk-{}", image.name()),
                image,
                PCI,
            ),
            |c| c.pvh = true,
        ));
    }
    v.push(with(
        bad(
            Arch::X86_64,
            "pvh-no-disk",
            KernelSel::None,
            InitrdSel::None,
        ),
        |c| {
            c.pvh = true;
            c.expect = Expect::FirmwareError("no kernel: give the VM a bootable virtio disk");
        },
    ));
    // Debian's arm64 vmlinuz as it ships: a gzip'd Image.
    v.push(from_disk(
        Arch::Aarch64,
        "disk-debian-gzip",
        DiskImage::DebianGzip,
        PCI,
    ));
    // Behind a PCIe root port (bus 1 once the firmware numbers it), and on
    // virt behind a PCI bridge on a root port (bus 3), after a root port
    // that has nothing behind it (bus 1).
    for arch in Arch::ALL {
        v.push(with(
            from_disk(
                arch,
                "disk-root-port",
                DiskImage::Debian,
                "virtio-blk-pci,bus=rpd",
            ),
            |c| {
                c.extra = ["-device", "pcie-root-port,id=rpd,chassis=9,slot=9"]
                    .map(String::from)
                    .to_vec();
            },
        ));
    }
    v.push(with(
        from_disk(
            Arch::Aarch64,
            "disk-pci-bridge",
            DiskImage::Debian,
            "virtio-blk-pci,bus=brd,addr=1",
        ),
        |c| {
            c.extra = [
                "-device",
                "pcie-root-port,id=rpe,chassis=8,slot=8",
                "-device",
                "pcie-root-port,id=rpd,chassis=9,slot=9",
                "-device",
                "pcie-pci-bridge,id=brd,bus=rpd",
            ]
            .map(String::from)
            .to_vec();
        },
    ));
    // virt's virtio-mmio transports.
    v.push(from_disk(
        Arch::Aarch64,
        "disk-fedora-mmio",
        DiskImage::Fedora,
        MMIO,
    ));
    v
}

/// `base`, booted from the Debian disk instead of -kernel.
pub(super) fn booted_from_disk(mut base: Case) -> Case {
    let (arch, rest) = base.name.split_once('/').unwrap_or(("", &base.name));
    base.name = format!("{arch}/disk-{rest}");
    base.kernel = KernelSel::None;
    base.initrd = InitrdSel::None;
    base.boot_disk = Some((DiskImage::Debian, PCI));
    base.timeout += Duration::from_secs(60);
    base
}
