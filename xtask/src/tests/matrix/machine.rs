//! The whole machine: NUMA (with HMAT), arm topology, IOMMUs, TPM,
//! pvpanic.

use super::make::{case, two_numa_nodes, with};
use crate::assets::DiskImage;
use crate::build::Arch;
use crate::tests::case::{Case, Expect, InitrdSel, KernelSel};
use crate::tests::runner::Env;
use crate::tests::scenarios::{scenario_dimm_numa, scenario_guest_checks, scenario_pvpanic};
use crate::tests::tpm;
use std::time::Duration;

pub(super) fn cases() -> Vec<Case> {
    use Arch::*;
    let mut v = Vec::new();
    // ---- the whole machine: NUMA, arm topology, IOMMUs ---------------------
    // Two NUMA nodes of 512 MiB with one vCPU each and a distance of 21.
    for (arch, machine) in [(X86_64, "q35"), (Aarch64, "virt,gic-version=3")] {
        v.push(with(case(arch, "numa-2-nodes", machine, 2, 1024), |c| {
            // One socket per node: CPUs of one socket share a cache, which
            // Linux rightly refuses to split across nodes.
            c.smp = "2,sockets=2".into();
            c.action = "cmd";
            c.extra = two_numa_nodes(["0", "1"], "");
            c.extra
                .extend(["-numa".into(), "dist,src=0,dst=1,val=21".into()]);
            c.guest_checks = vec![
                ("cat /sys/devices/system/node/online", "0-1"),
                ("cat /sys/devices/system/node/node0/cpulist", "0"),
                ("cat /sys/devices/system/node/node1/cpulist", "1"),
                ("cat /sys/devices/system/node/node0/distance", "10 21"),
                ("cat /sys/devices/system/node/node1/distance", "21 10"),
                // Each node has memory: its MemTotal is over 256 MiB.
                (
                    "awk '/MemTotal/ {print ($4 > 262144)}' /sys/devices/system/node/node1/meminfo",
                    "1",
                ),
            ];
            c.expect = Expect::Scenario(scenario_guest_checks);
        }));
    }
    // Memory latencies (-numa hmat-lb, QEMU's HMAT): Linux reports each
    // node's best initiator at the latency configured for it.
    for (arch, machine) in [
        (X86_64, "q35,hmat=on"),
        (Aarch64, "virt,gic-version=3,hmat=on"),
    ] {
        v.push(with(case(arch, "numa-hmat", machine, 2, 1024), |c| {
        c.smp = "2,sockets=2".into();
        c.action = "cmd";
        c.disk = false;
        let mut extra = two_numa_nodes(["0", "1"], ",initiator={}");
        for (i, t, lat, bw) in [(0, 0, 10, "1G"), (0, 1, 20, "512M"), (1, 0, 20, "512M"), (1, 1, 10, "1G")] {
            extra.push("-numa".into());
            extra.push(format!(
                "hmat-lb,initiator={i},target={t},hierarchy=memory,data-type=access-latency,latency={lat}"
            ));
            extra.push("-numa".into());
            extra.push(format!(
                "hmat-lb,initiator={i},target={t},hierarchy=memory,data-type=access-bandwidth,bandwidth={bw}"
            ));
        }
        c.extra = extra;
        c.guest_checks = vec![
            (
                "cat /sys/devices/system/node/node0/access0/initiators/read_latency",
                "10",
            ),
            (
                "cat /sys/devices/system/node/node1/access0/initiators/read_latency",
                "10",
            ),
            ("ls /sys/devices/system/node/node1/access0/initiators | grep -c node1", "1"),
        ];
        c.expect = Expect::Scenario(scenario_guest_checks);
    }));
    }
    // A DIMM plugged into NUMA node 0 lands there (its slot's _PXM).
    for (arch, machine) in [(X86_64, "q35"), (Aarch64, "virt,gic-version=3")] {
        v.push(with(case(arch, "numa-dimm", machine, 2, 1024), |c| {
            c.smp = "2,sockets=2".into();
            c.mem_opts = ",slots=2,maxmem=4G".into();
            // The hotplug range above 4 GiB: Linux's swiotlb (see above).
            c.mem_slack_mib = 64;
            c.action = "cmd";
            c.append = "memhp_default_state=online_movable".into();
            c.disk = false;
            c.extra = two_numa_nodes(["0", "1"], "");
            c.expect = Expect::Scenario(scenario_dimm_numa);
        }));
    }
    // arm -smp sockets,cores,threads: the PPTT gives Linux the topology.
    v.push(with(
        case(Aarch64, "topology-2s2c2t", "virt,gic-version=3", 8, 1024),
        |c| {
            c.smp = "8,sockets=2,cores=2,threads=2".into();
            c.action = "cmd";
            c.disk = false;
            c.guest_checks = vec![
                (
                    "cat /sys/devices/system/cpu/cpu0/topology/thread_siblings_list",
                    "0-1",
                ),
                (
                    "cat /sys/devices/system/cpu/cpu5/topology/core_cpus_list",
                    "4-5",
                ),
                // Two packages (Linux numbers them by PPTT node offset).
                (
                    "cat /sys/devices/system/cpu/cpu*/topology/physical_package_id | sort -u | wc -l",
                    "2",
                ),
                (
                    "cat /sys/devices/system/cpu/cpu7/topology/package_cpus_list",
                    "4-7",
                ),
            ];
            c.expect = Expect::Scenario(scenario_guest_checks);
            c.timeout = Duration::from_secs(240);
        },
    ));
    // IOMMUs: the disk behind each still reads back (md5), and Linux
    // registered the IOMMU.
    v.push(with(case(X86_64, "intel-iommu", "q35", 2, 1024), |c| {
        c.action = "cmd";
        c.extra = ["-device", "intel-iommu"].map(String::from).to_vec();
        c.guest_checks = vec![("ls /sys/class/iommu", "dmar0")];
        c.expect = Expect::Scenario(scenario_guest_checks);
    }));
    // TPM 2.0 (swtpm behind QEMU's tpm-tis): Linux binds its TPM driver
    // and /dev/tpm0 answers TPM2_GetRandom(8) (TPM 2.0 Part 3, 16.1: tag
    // 0x8001, size 12, command 0x17b) with a 20-byte success response.
    for (arch, machine) in [(X86_64, "q35"), (Aarch64, "virt,gic-version=3")] {
        v.push(with(case(arch, "tpm", machine, 2, 512), |c| {
        c.action = "cmd";
        c.disk = false;
        c.tpm = true;
        // arm64's Debian kernel has tpm_tis as a module.
        c.append = "hotstub.modules=tpm_tis".into();
        c.guest_checks = vec![
            ("ls /sys/class/tpm", "tpm0"),
            (
                "exec 3<>/dev/tpm0; printf '\\200\\001\\000\\000\\000\\014\\000\\000\\001\\173\\000\\010' >&3; \
                 dd bs=10 count=1 <&3 2>/dev/null | od -An -tx1 | xargs",
                "80 01 00 00 00 14 00 00 00 00",
            ),
        ];
        c.expect = Expect::Scenario(scenario_guest_checks);
    }));
    }
    // Measured boot (issue 24, tests/tpm.rs): the log replays to the PCRs
    // and tpm2_eventlog reads it; a command-line byte moves PCR 8 alone,
    // another initrd PCR 9 alone (three boots); a disk boot measures its
    // boot configuration; a dead swtpm costs one warning, no TPM nothing.
    for (arch, machine) in [(X86_64, "q35"), (Aarch64, "virt,gic-version=3")] {
        let tpm_case = |name: &str, run: fn(&Case, &Env) -> crate::util::Result<String>| {
            with(case(arch, name, machine, 2, 512), |c| {
                c.action = "cmd";
                c.disk = false;
                c.tpm = true;
                c.append = format!("hotstub.modules=tpm_tis {}", tpm::MARK);
                c.expect = Expect::Own(run);
                // Three boots, each hashing the kernel in four banks.
                c.timeout = Duration::from_secs(300);
            })
        };
        v.push(tpm_case("measured-boot", tpm::measured_boot));
        v.push(tpm_case("measured-reboot", tpm::measured_reboot));
        v.push(tpm_case("tpm-dead-socket", tpm::tpm_dead));
        v.push(tpm_case("tpm-absent", tpm::tpm_absent));
        v.push(with(
            tpm_case("measured-boot-disk", tpm::measured_once),
            |c| {
                c.kernel = KernelSel::None;
                c.initrd = InitrdSel::None;
                c.boot_disk = Some((DiskImage::Debian, "virtio-blk-pci"));
                c.mem_mib = 1024;
            },
        ));
    }
    // At EL3 the log sits below the runtime hotplug's shared block at the
    // end of the ACPI area; both must keep their places in the EFI map.
    v.push(with(
        case(
            Aarch64,
            "measured-boot-el3",
            "virt,gic-version=3,secure=on,virtualization=on",
            2,
            512,
        ),
        |c| {
            c.action = "cmd";
            c.disk = false;
            c.tpm = true;
            c.append = "hotstub.modules=tpm_tis".into();
            c.expect = Expect::Own(tpm::measured_once);
            c.timeout = Duration::from_secs(300);
        },
    ));
    // pvpanic (the ISA device): a guest panic reaches QEMU as GUEST_PANICKED.
    // `-action panic=pause` keeps QEMU up so the event can be read.
    v.push(with(case(X86_64, "pvpanic", "q35", 2, 512), |c| {
        c.action = "cmd";
        c.disk = false;
        c.append = "hotstub.modules=pvpanic_mmio".into();
        c.extra = ["-device", "pvpanic", "-action", "panic=pause"]
            .map(String::from)
            .to_vec();
        c.expect = Expect::Scenario(scenario_pvpanic);
    }));
    v.push(with(
        case(
            Aarch64,
            "smmuv3",
            "virt,gic-version=3,iommu=smmuv3",
            2,
            1024,
        ),
        |c| {
            c.action = "cmd";
            c.guest_checks = vec![("ls /sys/class/iommu", "smmu3.0x0000000009050000")];
            c.expect = Expect::Scenario(scenario_guest_checks);
        },
    ));
    for (arch, machine) in [(X86_64, "q35"), (Aarch64, "virt,gic-version=3")] {
        v.push(with(case(arch, "virtio-iommu", machine, 2, 1024), |c| {
            c.action = "cmd";
            c.extra = ["-device", "virtio-iommu-pci"].map(String::from).to_vec();
            // The disk's DMA waits for the IOMMU's driver, a module.
            c.append = "hotstub.modules=virtio_iommu".into();
            c.guest_checks = vec![("ls /sys/class/iommu | grep -c .", "1")];
            c.expect = Expect::Scenario(scenario_guest_checks);
        }));
    }
    v
}
