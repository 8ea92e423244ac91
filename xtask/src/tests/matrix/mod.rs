//! The boot matrix: the table of `Case`s that `cargo xtask test` runs,
//! one module per feature (`make` has the constructors they share). The
//! order below is the order the cases run and print in.

mod boot;
mod cpus;
mod disk;
mod machine;
pub(super) mod make;
mod memory;
pub(super) mod microvm;
mod pci;
pub(super) mod soak;

use super::case::{Case, QemuSel};
use crate::assets::Flavor;
pub(super) use make::two_numa_nodes;

/// The boot matrix. Add cases to the module of their feature.
pub(super) fn matrix() -> Vec<Case> {
    let mut v = boot::cases();
    v.extend(cpus::hotplug_and_policy());
    v.extend(memory::cases());
    v.extend(machine::cases());
    v.extend(pci::cases());
    v.extend(cpus::runtime_hotplug());
    v.extend(disk::cases());
    v.extend(microvm::cases());
    // Hotplug with a kernel from a disk: the firmware's disk reads leave
    // the machine as -kernel would. A vCPU, a memory and a PCI hotplug case
    // per arch (arm64's vCPU hotplug is the EL3 firmware's).
    for name in [
        "x86_64/hotplug-smp1-max4",
        "x86_64/dimm-hotplug",
        "x86_64/pci-hotplug-acpi",
        "aarch64/cpu-hotplug-el3",
        "aarch64/dimm-hotplug",
        "aarch64/pci-hotplug-native",
    ] {
        let base = named(&v, name);
        v.push(disk::booted_from_disk(base));
    }
    // ---- pc (i440FX + PIIX4): the q35 cases of what a pc user has with
    // SeaBIOS, on QEMU's default machine: vCPU add/remove (the modern CPU
    // hotplug interface at 0xaf00), pc-dimm add/remove (the memory hotplug
    // block at 0x0a00, as on q35) and NUMA (QEMU's SRAT and SLIT taken
    // over, a DIMM landing in its node) and booting a distribution's disk
    // (the disk code through the configuration ports); PCI hotplug is
    // `pci`'s.
    for name in [
        "x86_64/disk-debian",
        "x86_64/hotplug-smp1-max4",
        "x86_64/dimm-hotplug",
        "x86_64/numa-2-nodes",
        "x86_64/numa-dimm",
    ] {
        let base = named(&v, name);
        v.push(on_machine(base, "pc-", "q35", "pc"));
    }
    // ---- versioned machine types of QEMU 8.2 -------------------------------
    // QEMU's compatibility lists from 8.2 to 10.0 (hw/i386/pc.c
    // pc_compat_8_2 .. pc_compat_10_0) change no hotplug default (SMI
    // timers, intel-iommu, CPU properties only), so an 8.2 machine must
    // hotplug as the current one: vCPU add/remove and ACPI PCI hotplug on
    // each. (The defaults that do differ are older: q35 up to 6.0 hotplugs
    // PCIe natively, as x86_64/pci-hotplug-native forces; pc up to 5.1
    // has no root-bus ACPI hotplug, a DSDT without the root's BSEL, which
    // the firmware then leaves undescribed.)
    for (name, prefix, from, to) in [
        ("x86_64/hotplug-smp1-max4", "q35-8.2-", "q35", "pc-q35-8.2"),
        ("x86_64/pci-hotplug-acpi", "q35-8.2-", "q35", "pc-q35-8.2"),
        (
            "x86_64/pc-hotplug-smp1-max4",
            "pc-i440fx-8.2-",
            "pc",
            "pc-i440fx-8.2",
        ),
        (
            "x86_64/pc-pci-hotplug-bridge",
            "pc-i440fx-8.2-",
            "pc",
            "pc-i440fx-8.2",
        ),
    ] {
        let base = named(&v, name);
        v.push(on_machine(base, prefix, from, to));
    }
    // ---- newest-kernel coverage: Debian unstable's kernel ----------------
    // A representative part of the matrix again on Debian unstable's
    // current kernel: x86 boot with the tables check, vCPU add/remove and
    // ACPI PCI hotplug (on q35 and pc);
    // arm GICv3 power button through the GED, a vCPU policy at EL1, EL2 and
    // EL3, EL2 handed to Linux (KVM), and runtime vCPU hotplug at EL3 (with
    // its policy across resets: Linux 7's present-when-added rule);
    // every one ends in poweroff.
    for name in [
        "x86_64/q35-smp2-4G",
        "x86_64/hotplug-smp1-max4",
        "x86_64/pci-hotplug-acpi",
        "x86_64/pc-smp2-4G",
        "x86_64/pc-hotplug-smp1-max4",
        "x86_64/pc-pci-hotplug-bridge",
        "aarch64/powerdown-acpid",
        "aarch64/cpus-enabled-0-1-el1",
        "aarch64/cpus-enabled-0-1-el2",
        "aarch64/cpus-enabled-0-1-el3",
        "aarch64/cpus-no-policy-el2",
        "aarch64/cpu-hotplug-el3",
        "aarch64/cpu-hotplug-cycles-el3",
        "aarch64/cpu-persist-resets-el3",
    ] {
        let base = named(&v, name);
        v.push(on_newest_kernel(base));
    }
    // ---- newest-QEMU coverage: Debian unstable's QEMU --------------------
    // The same idea for the VMM (`qemu::newest`): x86 boot with the tables
    // check, vCPU, DIMM and ACPI PCI hotplug, on q35 and (boot, vCPU, PCI
    // behind a bridge) on pc; arm boot at EL1, EL2 (KVM
    // hand-off) and EL3, runtime vCPU hotplug over the EL3 channel, and
    // native PCI hotplug (the ACPI one, which only QEMU 11 has, is in
    // `pci`).
    for name in [
        "x86_64/q35-smp2-4G",
        "x86_64/hotplug-smp1-max4",
        "x86_64/dimm-hotplug",
        "x86_64/pci-hotplug-acpi",
        "x86_64/pc-smp2-4G",
        "x86_64/pc-hotplug-smp1-max4",
        "x86_64/pc-pci-hotplug-bridge",
        "aarch64/gicv3-smp2-2G",
        "aarch64/el2-smp4-2G",
        "aarch64/cpus-enabled-0-1-el3",
        "aarch64/cpu-hotplug-el3",
        "aarch64/pci-hotplug-native",
    ] {
        let base = named(&v, name);
        v.push(on_newest_qemu(base));
    }
    v.extend(pci::newest_qemu_cases());
    // The soak's short version (`--soak` runs the full one).
    v.extend(
        soak::cases(soak::SHORT, "soak-short", false)
            .into_iter()
            .map(with_opt_in),
    );
    v
}

/// A copy of the case `name` of `v`, the base of a variant.
fn named(v: &[Case], name: &str) -> Case {
    v.iter()
        .find(|c| c.name == name)
        .cloned()
        .unwrap_or_else(|| panic!("matrix has no {name}"))
}

fn with_opt_in(mut c: Case) -> Case {
    c.opt_in = true;
    c
}

/// The same case on Debian unstable's QEMU, named `<arch>/qemu-newest/...`.
pub(super) fn on_newest_qemu(mut c: Case) -> Case {
    let (arch, rest) = c.name.split_once('/').unwrap_or(("", &c.name));
    c.name = format!("{arch}/qemu-newest/{rest}");
    c.qemu = QemuSel::Newest;
    c
}

/// The same case on another machine type (`from` in its machine replaced
/// by `to`), named `<arch>/<prefix><name>` (a leading `pc-` of the name
/// dropped, the prefix names the machine).
fn on_machine(mut c: Case, prefix: &str, from: &str, to: &str) -> Case {
    let (arch, rest) = c.name.split_once('/').unwrap_or(("", &c.name));
    let rest = rest.strip_prefix("pc-").unwrap_or(rest);
    c.name = format!("{arch}/{prefix}{rest}");
    c.machine = c.machine.replacen(from, to, 1);
    c
}

/// The same case on Debian unstable's kernel, named `<arch>/newest/...`.
fn on_newest_kernel(mut c: Case) -> Case {
    let (arch, rest) = c.name.split_once('/').unwrap_or(("", &c.name));
    c.name = format!("{arch}/newest/{rest}");
    c.flavor = Flavor::Newest;
    c
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn two_numa_nodes_arguments() {
        assert_eq!(
            two_numa_nodes(["0", "1"], ",initiator={}"),
            [
                "-object",
                "memory-backend-ram,id=m0,size=512M",
                "-object",
                "memory-backend-ram,id=m1,size=512M",
                "-numa",
                "node,nodeid=0,cpus=0,memdev=m0,initiator=0",
                "-numa",
                "node,nodeid=1,cpus=1,memdev=m1,initiator=1",
            ]
        );
    }

    #[test]
    fn opt_in_cases_run_only_when_named() {
        let m = matrix();
        let big = m.iter().find(|c| c.opt_in).expect("an opt-in case");
        let short = big.name.split_once('/').unwrap().1;
        assert!(!big.selected_by(""));
        assert!(!big.selected_by("redist"));
        assert!(big.selected_by(short) && big.selected_by(&big.name));
        let small = m.iter().find(|c| !c.opt_in).unwrap();
        assert!(small.selected_by("") && small.selected_by(&small.name[..3]));
    }

    #[test]
    fn matrix_names_unique() {
        let m = matrix();
        let mut names: Vec<&str> = m.iter().map(|c| c.name.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), m.len());
    }
}
