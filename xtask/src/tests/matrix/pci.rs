//! PCI hotplug into pcie-root-ports (q35, virt) and into slots of the
//! root bus and of a pci-bridge (pc).

use super::make::{case, with};
use crate::build::Arch;
use crate::tests::case::{Case, Expect};
use crate::tests::scenarios::{scenario_pci_hotplug, scenario_pci_hotplug_bus0, HOTPLUG_PORT};
use std::time::Duration;

pub(super) fn cases() -> Vec<Case> {
    use Arch::*;
    let mut v = Vec::new();
    // ---- PCI hotplug: a virtio-blk disk into a pcie-root-port -----------
    // q35 delivers it through QEMU's ACPI PCI hotplug (the default,
    // ICH9-LPC.acpi-pci-hotplug-with-bridge-support=on), or with that off
    // through the root port's native PCIe hotplug; virt has only native.
    // Three ports: the disk goes into the first, whose ACPI bus selector is
    // then not 0 (QEMU numbers the ports in reverse), next to a second
    // hotpluggable one and one with hotplug off.
    for (arch, name, machine, global) in [
        (X86_64, "pci-hotplug-acpi", "q35", None),
        (
            X86_64,
            "pci-hotplug-native",
            "q35",
            Some("ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off"),
        ),
        (Aarch64, "pci-hotplug-native", "virt,gic-version=3", None),
    ] {
        let acpi = name.ends_with("acpi");
        v.push(pci_hotplug(arch, name, machine, global, acpi));
    }
    // ---- pc: PIIX4's ACPI PCI hotplug (the default) -----------------------
    // A virtio-blk disk into a free slot of the root bus, and into a
    // pci-bridge (QEMU gives the bridge's bus its own bsel, 1); each case
    // has the bridge, so the root bus's described slots skip its slot.
    for (name, bus0) in [
        ("pc-pci-hotplug-bus0", true),
        ("pc-pci-hotplug-bridge", false),
    ] {
        v.push(with(pci_hotplug(X86_64, name, "pc", None, true), |c| {
            c.extra = vec![
                "-device".into(),
                format!("pci-bridge,id={HOTPLUG_PORT},chassis_nr=1"),
            ];
            if bus0 {
                c.expect = Expect::Scenario(scenario_pci_hotplug_bus0);
            }
        }));
    }
    v
}

/// QEMU 11 adds ACPI PCI hotplug to arm virt, off by default
/// (hw/acpi/generic_event_device.c, the acpi-ged property
/// `acpi-pci-hotplug-with-bridge-support`): the GED signals it, the
/// registers are the q35 layout in MMIO. QEMU 10.0 has no such property,
/// so this runs only on the newest QEMU.
pub(super) fn newest_qemu_cases() -> Vec<Case> {
    let c = pci_hotplug(
        Arch::Aarch64,
        "pci-hotplug-acpi",
        "virt,gic-version=3",
        Some("acpi-ged.acpi-pci-hotplug-with-bridge-support=on"),
        true,
    );
    vec![super::on_newest_qemu(c)]
}

/// A virtio-blk disk hot-added into the first of three root ports, read
/// back and removed; Linux's hotplug driver for the ports must be the one
/// `acpi` names (acpiphp through the firmware's AML, or pciehp when `_OSC`
/// leaves native hotplug to Linux).
pub(super) fn pci_hotplug(
    arch: Arch,
    name: &str,
    machine: &str,
    global: Option<&str>,
    acpi: bool,
) -> Case {
    with(case(arch, name, machine, 2, 512), |c| {
        c.guest_checks = vec![(
            "dmesg | grep -oE '(acpiphp|pciehp): Slot' | sort -u",
            if acpi {
                "acpiphp: Slot"
            } else {
                "pciehp: Slot"
            },
        )];
        c.action = "cmd";
        c.disk = false;
        c.spare_disk = true;
        // The disk comes later: its driver is loaded at boot.
        c.append = "hotstub.modules=virtio_blk".into();
        c.extra = vec![
            "-device".into(),
            format!("pcie-root-port,id={HOTPLUG_PORT},chassis=1,slot=1"),
            "-device".into(),
            "pcie-root-port,id=rp2,chassis=2,slot=2".into(),
            "-device".into(),
            "pcie-root-port,id=rp3,chassis=3,slot=3,hotplug=off".into(),
        ];
        if let Some(g) = global {
            c.extra.extend(["-global".into(), g.into()]);
        }
        c.expect = Expect::Scenario(scenario_pci_hotplug);
        c.timeout = Duration::from_secs(240);
    })
}
