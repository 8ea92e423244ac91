//! Plain boots on x86 q35 and pc and arm64 virt, and the inputs the
//! firmware must refuse.

use super::make::{bad, bad_machine, case, with};
use crate::build::Arch;
use crate::tests::case::{mib, Case, CpuExpect, Expect, InitrdSel, KernelSel};
use crate::tests::scenarios::{scenario_guest_checks, scenario_powerdown};

pub(super) fn cases() -> Vec<Case> {
    use Arch::*;
    let mut v = Vec::new();
    // ---- x86 boot: q35 ---------------------------------------------------
    // 1/2/4 vCPUs x 512 MiB/4 GiB, every point covered in four runs.
    // The 1-vCPU run reads its disk with MSI off, so the virtio interrupt
    // takes the INTx path through _PRT and the I/O APIC.
    for (smp, mem) in [(1, 512), (2, 4096), (4, 512), (4, 4096)] {
        v.push(with(
            case(
                X86_64,
                &format!("q35-smp{smp}-{}", mib(mem)),
                "q35",
                smp,
                mem,
            ),
            |c| {
                if smp == 1 {
                    c.name.push_str("-intx");
                    c.append = "pci=nomsi".into();
                }
            },
        ));
    }
    // Many possible vCPUs: APIC IDs past 254 get x2APIC MADT entries, the
    // tables must still fit the BIOS area, and the firmware hands over in
    // x2APIC mode (as SeaBIOS does past 255 vCPUs): Linux then lists all
    // 288. Without an IOMMU for interrupt remapping it turns x2APIC off
    // again ("x2apic: IRQ remapping doesn't support X2APIC mode") and can
    // start only the first 255; with intel-iommu's interrupt remapping (the
    // VMM's DMAR) it stays in x2APIC mode. The per-CPU areas of 288
    // possible CPUs take about 80 MiB more than the usual reservations.
    for (name, extra) in [
        ("q35-maxcpus288", None),
        (
            "q35-maxcpus288-intremap",
            Some("intel-iommu,intremap=on,eim=on"),
        ),
    ] {
        v.push(with(case(X86_64, name, "q35", 2, 1024), |c| {
            c.smp = "2,maxcpus=288".into();
            c.disk = false;
            c.mem_slack_mib = 96;
            c.cpus = CpuExpect {
                possible: Some("0-287".into()),
                present: Some("0-1".into()),
                present_when_added: None,
                online: Some("0-1".into()),
                enabled: Some("0-1".into()),
            };
            if let Some(dev) = extra {
                c.extra = vec!["-device".into(), dev.into()];
                c.action = "cmd";
                c.guest_checks = vec![
                    (
                        "dmesg | grep -c 'Enabled IRQ remapping in x2apic mode'",
                        "1",
                    ),
                    ("ls /sys/class/iommu", "dmar0"),
                ];
                c.expect = Expect::Scenario(scenario_guest_checks);
            }
        }));
    }
    // ---- x86 boot: pc (i440FX + PIIX) -----------------------------------
    // QEMU's default machine, named as users name it (`pc`) and by an
    // older versioned type (`pc-i440fx-8.2`); the 1-vCPU run reads its
    // disk with MSI off, so the virtio interrupt takes the INTx path
    // through `_PRT`, a link device and the PIRQ route the firmware set.
    for (name, machine, smp, mem) in [
        ("pc-smp1-512M-intx", "pc", 1, 512),
        ("pc-smp2-4G", "pc", 2, 4096),
        ("pc-i440fx-8.2-smp2-1G", "pc-i440fx-8.2", 2, 1024),
    ] {
        v.push(with(case(X86_64, name, machine, smp, mem), |c| {
            if smp == 1 {
                c.append = "pci=nomsi".into();
            }
        }));
    }
    // q35's older versioned type: its ACPI PCI hotplug and the modern CPU
    // hotplug are the same as the current type's on 8.2.
    v.push(case(X86_64, "q35-8.2-smp2-1G", "pc-q35-8.2", 2, 1024));
    // A fatal error on pc powers off through PIIX4's PM1 control (no
    // -no-reboot: a reset instead would boot again and time out).
    v.push(with(
        bad(
            X86_64,
            "pc-bad-huge-initrd",
            KernelSel::Guest,
            InitrdSel::Huge(500),
        ),
        |c| c.machine = "pc".into(),
    ));
    v.push(with(case(X86_64, "q35-reboot", "q35", 2, 512), |c| {
        c.action = "reboot";
        c.expect = Expect::Reboot;
        c.disk = false;
    }));
    // No -kernel and no disk: the error names both ways to give one.
    v.push(with(
        bad(X86_64, "bad-no-kernel", KernelSel::None, InitrdSel::None),
        |c| c.expect = Expect::FirmwareError("or give it a bootable virtio disk"),
    ));
    // QEMU itself refuses an initrd with a kernel it cannot parse, so the
    // random kernel comes alone.
    v.push(bad(
        X86_64,
        "bad-random-kernel",
        KernelSel::Random,
        InitrdSel::None,
    ));
    // QEMU's x86 loader already refuses an initrd above the RAM below
    // 4 GiB; 500 MiB passes that check but cannot fit next to the kernel
    // in 512 MiB, so only the firmware can notice.
    v.push(bad(
        X86_64,
        "bad-huge-initrd",
        KernelSel::Guest,
        InitrdSel::Huge(500),
    ));
    // Machines the firmware refuses, each ending in its error line and a
    // stop QEMU sees (issue 19): microvm without ACPI booted from a disk
    // (Linux would not find the disk: QEMU names the virtio-mmio
    // transports only on a -kernel command line) resets, since nothing
    // decodes its GED's sleep register then; isapc has no power-off and
    // resets. isapc runs 32-bit CPUs only (its default is the 486, QEMU
    // hw/i386/pc_piix.c; newer QEMUs refuse `-cpu max` there), so boot.S
    // finds no long mode and says so before anything else runs.
    for (name, machine, cpu, error) in [
        (
            "bad-machine-microvm-acpi-off-disk",
            "microvm,acpi=off",
            None,
            "microvm without ACPI boots -kernel only",
        ),
        (
            "bad-machine-isapc",
            "isapc",
            Some("486"),
            "no 64-bit long mode",
        ),
    ] {
        v.push(with(bad_machine(X86_64, name, machine, error), |c| {
            if machine.contains("acpi=off") {
                c.kernel = KernelSel::None;
                c.initrd = InitrdSel::None;
            }
            if let Some(cpu) = cpu {
                // After the runner's `-cpu max`: QEMU takes the last one.
                c.extra.extend(["-cpu".into(), cpu.into()]);
            }
        }));
    }

    // ---- arm64 boot: virt ------------------------------------------------
    for (name, machine, smp, mem) in [
        ("gicv3-smp1-512M", "virt,gic-version=3", 1, 512),
        ("gicv3-smp2-2G", "virt,gic-version=3", 2, 2048),
        ("gicv3-smp4-5G", "virt,gic-version=3", 4, 5120),
        ("gicv3-smp8-2G", "virt,gic-version=3", 8, 2048),
        ("gicv2-smp2-512M", "virt,gic-version=2", 2, 512),
        (
            "el2-smp4-2G",
            "virt,gic-version=3,virtualization=on",
            4,
            2048,
        ),
    ] {
        v.push(with(case(Aarch64, name, machine, smp, mem), |c| {
            // No vCPU policy at EL2: the firmware leaves EL2 to Linux
            // (arm64 EL2 hand-off), whose KVM must come up.
            c.kvm = machine.contains("virtualization=on");
        }));
    }
    v.push(with(
        case(Aarch64, "reboot", "virt,gic-version=3", 2, 512),
        |c| {
            c.action = "reboot";
            c.expect = Expect::Reboot;
            c.disk = false;
        },
    ));
    v.push(with(
        case(Aarch64, "powerdown-acpid", "virt,gic-version=3", 2, 512),
        |c| {
            c.action = "acpid";
            c.disk = false;
            c.expect = Expect::Scenario(scenario_powerdown);
        },
    ));
    // No -kernel and no disk: the error names both ways to give one.
    v.push(with(
        bad(Aarch64, "bad-no-kernel", KernelSel::None, InitrdSel::None),
        |c| c.expect = Expect::FirmwareError("or give it a bootable virtio disk"),
    ));
    v.push(bad(
        Aarch64,
        "bad-random-kernel",
        KernelSel::Random,
        InitrdSel::Guest,
    ));
    v.push(bad(
        Aarch64,
        "bad-x86-kernel",
        KernelSel::ForeignArch,
        InitrdSel::Guest,
    ));
    v.push(bad(
        Aarch64,
        "bad-huge-initrd",
        KernelSel::Guest,
        InitrdSel::Huge(600),
    ));
    // No `bad-no-dt`: QEMU virt always hands a firmware a DT (hw/arm/boot.c
    // copies it to the start of RAM when a firmware is loaded; a
    // `-device loader` write there is overwritten by that copy), so a case
    // would have to forge the absence. No GICv2 refusal either: GICv2
    // boots (`gicv2-smp2-512M`).
    v
}
