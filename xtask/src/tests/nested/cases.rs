//! The nested cloud-hypervisor cases. `ch-direct-*` boot L2 with CH's
//! direct kernel boot: they test the nested pipeline and CH itself, and are
//! the reference for `ch-hotstub-*`, which boot L2 with Hotstub as CH's
//! `--firmware` from a test disk.

use super::steps::Step::{self, ChRemote, L2Line, L2Until};
use super::{L2Boot, NestedCase};
use crate::assets::DiskImage;
use crate::build::Arch;

/// The tables CH's x86 guests get (captures in
/// ../shared/cloud-hypervisor/x86_64-boot1): hardware-reduced, no FACS,
/// no HPET.
const X86_TABLES: &[&str] = &["APIC", "DSDT", "FACP", "MCFG"];
/// CH's arm64 tables (captures in aarch64-acpi-fw-boot2max4), which Linux
/// sees only through a firmware's EFI system table.
const ARM_TABLES: &[&str] = &["APIC", "DSDT", "FACP", "GTDT", "MCFG", "SPCR"];

/// x86 hotplug through ch-remote (issue 21's acceptance): vCPUs up by 2
/// and back down, ACPI memory hotplug of 512 MiB, a virtio-blk disk added,
/// read back and removed. L2 has 2 of 4 vCPUs and 1 GiB with 1 GiB to
/// hot-add (`--cpus boot=2,max=4 --memory size=1G,hotplug_size=1G`).
const X86_HOTPLUG: &[Step] = &[
    ChRemote("resize --cpus 4"),
    L2Line("HOTSTUB: cpus", "online=0-3"),
    ChRemote("resize --cpus 2"),
    L2Line("HOTSTUB: cpus", "present=0-1 online=0-1"),
    ChRemote("resize --memory 1536M"),
    // 1 GiB gives about 950 MiB of MemTotal; 1.5 GiB well over 1.3 GB.
    L2Until(
        "awk '/^MemTotal:/ { print ($2 > 1300000) ? \"grown\" : $2 }' /proc/meminfo",
        "grown",
    ),
    ChRemote("add-disk path=/l2/spare.raw,readonly=on,id=hp0"),
    L2Until("md5sum /dev/vda", "{md5}"),
    ChRemote("remove-device hp0"),
    L2Until("test -e /dev/vda || echo gone", "gone"),
];

/// x86 virtio-mem (`--memory size=1G,hotplug_method=virtio-mem,
/// hotplug_size=1G`): `resize --memory` grows L2 by 512 MiB and shrinks it
/// back (hot-added memory is onlined movable, so it can go again).
const X86_VIRTIO_MEM: &[Step] = &[
    ChRemote("resize --memory 1536M"),
    L2Until(
        "awk '/^MemTotal:/ { print ($2 > 1300000) ? \"grown\" : $2 }' /proc/meminfo",
        "grown",
    ),
    ChRemote("resize --memory 1G"),
    L2Until(
        "awk '/^MemTotal:/ { print ($2 < 1100000) ? \"shrunk\" : $2 }' /proc/meminfo",
        "shrunk",
    ),
];

/// The L2 command line of the hotplug cases: the init's CPU watcher
/// onlines new vCPUs, hot-added memory comes online by itself, and
/// virtio_blk is loaded before a disk arrives.
const HOTPLUG_CMDLINE: &str =
    "hotstub.autoonline=1 hotstub.modules=virtio_blk memhp_default_state=online";

fn boot(arch: Arch, name: &str, boot: L2Boot) -> NestedCase {
    NestedCase {
        name: format!("{}/{name}", arch.name()),
        arch,
        boot,
        cpus: "boot=2",
        memory: "size=512M",
        mem_mib: 512,
        online: "0-1",
        acpi_tables: match (arch, boot) {
            (Arch::X86_64, _) => Some(X86_TABLES),
            // Direct boot on arm64: Linux runs on CH's device tree.
            (Arch::Aarch64, L2Boot::Direct(_)) => None,
            (Arch::Aarch64, L2Boot::HotstubDisk(_)) => Some(ARM_TABLES),
        },
        steps: &[],
        pending: None,
        refused: None,
    }
}

pub(in super::super) fn cases() -> Vec<NestedCase> {
    let mut v = Vec::new();
    for arch in Arch::ALL {
        v.push(boot(arch, "ch-direct-boot", L2Boot::Direct("")));
    }
    v.push(NestedCase {
        cpus: "boot=2,max=4",
        memory: "size=1G,hotplug_size=1G",
        mem_mib: 1024,
        steps: X86_HOTPLUG,
        ..boot(
            Arch::X86_64,
            "ch-direct-hotplug",
            L2Boot::Direct(HOTPLUG_CMDLINE),
        )
    });
    v.push(NestedCase {
        memory: "size=1G,hotplug_method=virtio-mem,hotplug_size=1G",
        mem_mib: 1024,
        steps: X86_VIRTIO_MEM,
        ..boot(
            Arch::X86_64,
            "ch-direct-virtio-mem",
            L2Boot::Direct("hotstub.modules=virtio_mem memhp_default_state=online_movable"),
        )
    });
    for arch in Arch::ALL {
        v.push(boot(
            arch,
            "ch-hotstub-disk-debian",
            L2Boot::HotstubDisk(DiskImage::Debian),
        ));
    }
    // A disk Hotstub cannot boot: the error line, then PSCI SYSTEM_OFF by
    // HVC, which KVM hands CH as a shutdown.
    v.push(NestedCase {
        refused: Some("no bootable virtio disk: disk0 (pci 00:01.0)"),
        ..boot(
            Arch::Aarch64,
            "ch-hotstub-bad-disk",
            L2Boot::HotstubDisk(DiskImage::BadNoTable),
        )
    });
    v
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn names_unique_and_hotstub_cases_without_steps() {
        let v = cases();
        let mut names: Vec<&str> = v.iter().map(|c| c.name.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), v.len());
        for c in &v {
            assert!(c.name.starts_with(&format!("{}/ch-", c.arch.name())));
            // CH drops --cmdline under --firmware: no way to ask the init
            // for its command channel.
            if matches!(c.boot, L2Boot::HotstubDisk(_)) {
                assert!(c.steps.is_empty(), "{}", c.name);
            }
        }
    }

    #[test]
    fn pending_cases_are_listed_and_run_only_when_named() {
        let v = cases();
        assert!(
            v.iter().all(|c| c.held_back("").is_none()),
            "none waits now"
        );
        let mut p = v
            .iter()
            .find(|c| c.name == "aarch64/ch-hotstub-disk-debian")
            .unwrap()
            .clone();
        p.pending = Some("waiting");
        assert!(p.selected_by("") && p.selected_by("ch-"));
        assert!(p.held_back("").is_some() && p.held_back("ch-").is_some());
        assert!(p.held_back("aarch64/ch-hotstub-disk-debian").is_none());
        assert!(p.held_back("ch-hotstub-disk-debian").is_none());
        let d = v
            .iter()
            .find(|c| c.name == "x86_64/ch-direct-boot")
            .unwrap();
        assert!(d.selected_by("") && d.selected_by("ch-direct"));
    }

    #[test]
    fn ch_binaries_are_looked_up_per_arch() {
        let dir = std::env::temp_dir().join(format!("ch-harness-bins-{}", std::process::id()));
        let x = dir.join("x86_64");
        std::fs::create_dir_all(&x).unwrap();
        std::fs::write(x.join("cloud-hypervisor"), b"").unwrap();
        let e = super::super::ch_bins_in(&dir, Arch::X86_64).err().unwrap();
        assert!(e.contains("ch-remote"), "{e}");
        std::fs::write(x.join("ch-remote"), b"").unwrap();
        assert!(super::super::ch_bins_in(&dir, Arch::X86_64).is_ok());
        assert!(super::super::ch_bins_in(&dir, Arch::Aarch64).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
