//! The boot matrix: the table of `Case`s that `cargo xtask test` runs, and
//! the small constructors it is written with.
//!
//! Long but one thing: the table reads top to bottom as the list of what
//! is tested, grouped by feature.

use super::case::{mib, Case, CpuExpect, Expect, InitrdSel, KernelSel};
use super::scenarios::{
    scenario_arm_cpu1_cycles, scenario_arm_disabled_cpus, scenario_cpu_hotplug,
    scenario_cpu_hotplug_cycles, scenario_dimm_hotplug, scenario_dimm_numa, scenario_guest_checks,
    scenario_pci_hotplug, scenario_powerdown, scenario_pvpanic, scenario_virtio_mem,
    scenario_x86_hotplug, scenario_x86_hotplug_cycles, HOTPLUG_PORT,
};
use crate::assets::Flavor;
use crate::build::Arch;
use std::time::Duration;

fn case(arch: Arch, name: &str, machine: &str, smp: u32, mem_mib: u64) -> Case {
    let all = format!("0-{}", smp - 1);
    let all = if smp == 1 { "0".to_string() } else { all };
    Case {
        name: format!("{}/{name}", arch.name()),
        arch,
        machine: machine.into(),
        accel: "tcg",
        smp: smp.to_string(),
        mem_mib,
        mem_opts: String::new(),
        kernel: KernelSel::Guest,
        flavor: Flavor::Lts,
        initrd: InitrdSel::Guest,
        append: String::new(),
        action: "poweroff",
        disk: true,
        spare_disk: false,
        mem_slack_mib: 0,
        extra: Vec::new(),
        expect: Expect::Boot,
        cpus: CpuExpect {
            possible: Some(all.clone()),
            present: Some(all.clone()),
            present_when_added: None,
            online: Some(all.clone()),
            enabled: Some(all),
        },
        timeout: Duration::from_secs(120),
        kvm: false,
        unenforced_policy: false,
        guest_checks: Vec::new(),
        tpm: false,
        control: false,
    }
}

/// Lines the PSCI payload cases must print (`Expect::PsciPayload`): with
/// `enabled-cpus` 0-1 of 4 the refusal of both disabled vCPUs.
const PSCI_POLICY_LINES: &[&str] = &[
    "PSCI-TEST: CPU_ON disabled vCPU 0x2: PASS",
    "PSCI-TEST: CPU_ON disabled vCPU 0x3: PASS",
];

/// The hostile phase's attacks at both ELs (0-3 of 6 enabled), and the
/// second pass of the normal checks after them.
macro_rules! hostile_lines {
    ($($extra:literal),*) => {
        &[
            "PSCI-TEST: storm: CPU_ON/AFFINITY_INFO/CPU_OFF from every enabled core at once: PASS",
            "PSCI-TEST: storm: every enabled core was started by the storm: PASS",
            "PSCI-TEST: storm: every core OFF again (AFFINITY_INFO): PASS",
            "PSCI-TEST: CPU_ON entry point in firmware memory 0x",
            "PSCI-TEST: CPU_ON bogus MPIDR 0xffffffffffffffff: PASS",
            "PSCI-TEST: PSCI_VERSION through SMC #1 (not an SMCCC call): PASS",
            "PSCI-TEST: function IDs 0x80000000..0x800000ff via SMC: PASS",
            "PSCI-TEST: function IDs 0x84000000..0x840000ff via SMC: PASS",
            "PSCI-TEST: function IDs 0xc4000000..0xc40000ff via SMC: PASS",
            "PSCI-TEST: function IDs, every 0x10001th of 32 bits, via SMC: PASS",
            "PSCI-TEST: firmware memory, first word 0x",
            "PSCI-TEST: firmware memory, middle 0x",
            "PSCI-TEST: firmware memory, last word 0x",
            "PSCI-TEST: firmware code in flash 0x0",
            "PSCI-TEST: secure UART: UARTPeriphID0 from the normal world",
            "PSCI-TEST: secure UART: UARTDR write from the normal world",
            "PSCI-TEST: hostile: summary: ",
            "PSCI-TEST: after hostile: CPU_ON disabled vCPU 0x4: PASS",
            "PSCI-TEST: after hostile: CPU_ON disabled vCPU 0x5: PASS",
            "PSCI-TEST: after hostile: AFFINITY_INFO after CPU_OFF (OFF), round 0x4: PASS",
            "PSCI-TEST: after hostile: CPU_SUSPEND standby 0x84000001: PASS",
            "PSCI-TEST: after hostile: write to resident firmware memory: PASS",
            $($extra),*
        ]
    };
}
const PSCI_HOSTILE_EL2_LINES: &[&str] = hostile_lines!(
    "PSCI-TEST: function IDs 0x84000000..0x840000ff via HVC: PASS",
    "PSCI-TEST: function IDs, every 0x10001th of 32 bits, via HVC: PASS",
    "PSCI-TEST: PSCI_VERSION through HVC #1 (not an SMCCC call): PASS",
    "PSCI-TEST: EL0 AArch32 probe of the payload's own memory (no abort): PASS",
    "PSCI-TEST: firmware memory from EL0 in AArch32 (data abort to EL1) 0x"
);
const PSCI_HOSTILE_EL3_LINES: &[&str] = hostile_lines!(
    "PSCI-TEST: secure GIC: GICD_CTLR.DS (disable security) from the normal world: PASS",
    "PSCI-TEST: secure GIC: SGI 15 GICR_IGROUPR0",
    "PSCI-TEST: secure GIC: SGI 15 GICR_ICENABLER0",
    "PSCI-TEST: secure GIC: SGI 15 GICR_IPRIORITYR",
    "PSCI-TEST: secure GIC: SGI 15 GICR_WAKER",
    "PSCI-TEST: secure GIC: Group 0 SGI 15 from the normal world leaves every other core OFF: PASS"
);

fn bad(arch: Arch, name: &str, kernel: KernelSel, initrd: InitrdSel) -> Case {
    let machine = crate::qemu::default_machine(arch);
    let mut c = case(arch, name, machine, 1, 512);
    c.kernel = kernel;
    c.initrd = initrd;
    c.disk = false;
    c.expect = Expect::FirmwareError;
    c.timeout = Duration::from_secs(60);
    c
}

fn with<F: FnOnce(&mut Case)>(mut c: Case, f: F) -> Case {
    f(&mut c);
    c
}

/// The arm64 vCPU policy channel: the fw_cfg file
/// `opt/org.hotstub/enabled-cpus` with a CPU list.
fn enabled_cpus_fw_cfg(list: &str) -> Vec<String> {
    vec![
        "-fw_cfg".into(),
        format!("name=opt/org.hotstub/enabled-cpus,string={list}"),
    ]
}

/// The boot matrix. Add cases here.
pub(super) fn matrix() -> Vec<Case> {
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
    v.push(with(case(X86_64, "q35-reboot", "q35", 2, 512), |c| {
        c.action = "reboot";
        c.expect = Expect::Reboot;
        c.disk = false;
    }));
    v.push(bad(
        X86_64,
        "bad-no-kernel",
        KernelSel::None,
        InitrdSel::None,
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
    v.push(bad(
        Aarch64,
        "bad-no-kernel",
        KernelSel::None,
        InitrdSel::None,
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

    // ---- vCPU hotplug and the arm64 vCPU policy --------------------------
    v.push(with(
        case(X86_64, "hotplug-smp1-max4", "q35", 1, 512),
        |c| {
            c.smp = "1,maxcpus=4".into();
            c.action = "cmd";
            c.append = "hotstub.autoonline=1".into();
            c.disk = false;
            c.cpus = CpuExpect {
                possible: Some("0-3".into()),
                present: Some("0".into()),
                present_when_added: None,
                online: Some("0".into()),
                enabled: Some("0".into()),
            };
            c.expect = Expect::Scenario(scenario_x86_hotplug);
            c.timeout = Duration::from_secs(180);
        },
    ));
    // Ten add/remove cycles of one vCPU. QEMU's multi-threaded TCG gives
    // every vCPU thread it ever creates a translation context and never
    // frees one; there are only `maxcpus` of them, so plugging a vCPU again
    // after an unplug aborts QEMU 10 (tcg_register_thread: n <
    // tcg_max_ctxs) unless maxcpus leaves room: 1 boot + 10 plugs.
    // (Single-threaded TCG cannot unplug at all: the vCPU thread would join
    // itself.)
    v.push(with(
        case(X86_64, "hotplug-cycles-smp1-max12", "q35", 1, 512),
        |c| {
            c.smp = "1,maxcpus=12".into();
            c.action = "cmd";
            c.append = "hotstub.autoonline=1".into();
            c.disk = false;
            c.cpus = CpuExpect {
                possible: Some("0-11".into()),
                present: Some("0".into()),
                present_when_added: None,
                online: Some("0".into()),
                enabled: Some("0".into()),
            };
            c.expect = Expect::Scenario(scenario_x86_hotplug_cycles);
            c.timeout = Duration::from_secs(400);
        },
    ));
    for (el, machine) in [
        ("el2", "virt,gic-version=3,virtualization=on"),
        ("el3", "virt,gic-version=3,secure=on,virtualization=on"),
    ] {
        v.push(with(
            case(Aarch64, &format!("cpus-enabled-0-1-{el}"), machine, 4, 512),
            |c| {
                c.action = "cmd";
                c.disk = false;
                c.extra = enabled_cpus_fw_cfg("0-1");
                c.cpus = CpuExpect {
                    possible: Some("0-3".into()),
                    present: Some("0-3".into()),
                    present_when_added: Some("0-1".into()),
                    online: Some("0-1".into()),
                    enabled: Some("0-1".into()),
                };
                c.expect = Expect::Scenario(scenario_arm_disabled_cpus);
                c.timeout = Duration::from_secs(240);
            },
        ));
    }
    // At EL1 PSCI is QEMU's: the firmware can only describe the policy
    // (MADT online-capable, _STA without "enabled"), which Linux shows as
    // present 0-3 / enabled 0-1. Whether cpu2 and cpu3 come online is the
    // VMM's PSCI answer, and upstream QEMU's always says yes, so `online`
    // is not asserted here.
    v.push(with(
        case(
            Aarch64,
            "cpus-enabled-0-1-el1",
            "virt,gic-version=3",
            4,
            512,
        ),
        |c| {
            c.disk = false;
            c.extra = enabled_cpus_fw_cfg("0-1");
            c.unenforced_policy = true;
            c.cpus = CpuExpect {
                possible: Some("0-3".into()),
                present: Some("0-3".into()),
                present_when_added: Some("0-1".into()),
                online: None,
                enabled: Some("0-1".into()),
            };
        },
    ));
    for (el, machine) in [
        ("el1", "virt,gic-version=3"),
        ("el2", "virt,gic-version=3,virtualization=on"),
        ("el3", "virt,gic-version=3,secure=on,virtualization=on"),
    ] {
        v.push(with(
            case(Aarch64, &format!("cpus-no-policy-{el}"), machine, 4, 512),
            |c| {
                c.kvm = el == "el2";
                c.action = "cmd";
                c.disk = false;
                c.expect = Expect::Scenario(scenario_arm_cpu1_cycles);
                c.timeout = Duration::from_secs(240);
            },
        ));
    }
    v.push(with(
        bad(
            Aarch64,
            "bad-enabled-cpus-list",
            KernelSel::Guest,
            InitrdSel::Guest,
        ),
        |c| {
            c.smp = "4".into();
            c.extra = enabled_cpus_fw_cfg("0-x");
        },
    ));
    for (el, machine) in [
        ("el2", "virt,gic-version=3,virtualization=on"),
        ("el3", "virt,gic-version=3,secure=on,virtualization=on"),
    ] {
        v.push(with(
            case(Aarch64, &format!("psci-payload-{el}"), machine, 4, 512),
            |c| {
                c.kernel = KernelSel::PsciPayload;
                c.initrd = InitrdSel::None;
                c.disk = false;
                c.extra = enabled_cpus_fw_cfg("0-1");
                c.expect = Expect::PsciPayload(PSCI_POLICY_LINES);
                c.timeout = Duration::from_secs(120);
            },
        ));
        // The hostile guest (tests/psci-payload/src/run/hostile.rs): four
        // enabled cores storm, two disabled ones must stay DENIED.
        v.push(with(
            case(Aarch64, &format!("psci-hostile-{el}"), machine, 6, 512),
            |c| {
                c.kernel = KernelSel::PsciPayload;
                c.initrd = InitrdSel::None;
                c.disk = false;
                c.append = "psci-test.hostile".into();
                c.extra = enabled_cpus_fw_cfg("0-3");
                c.expect = Expect::PsciPayload(if el == "el3" {
                    PSCI_HOSTILE_EL3_LINES
                } else {
                    PSCI_HOSTILE_EL2_LINES
                });
                c.timeout = Duration::from_secs(180);
            },
        ));
    }
    // ---- memory hotplug: a pc-dimm added and removed ---------------------
    // The kernel onlines hot-added memory as movable, so it can be taken
    // out again (Documentation/admin-guide/mm/memory-hotplug.rst).
    for (arch, machine) in [(X86_64, "q35"), (Aarch64, "virt,gic-version=3")] {
        v.push(with(case(arch, "dimm-hotplug", machine, 2, 1024), |c| {
            c.mem_opts = ",slots=2,maxmem=4G".into();
            // The SRAT's hotpluggable range reaches above 4 GiB, so Linux
            // sets up its 64 MiB swiotlb bounce buffer (as with QEMU's own
            // tables under SeaBIOS).
            c.mem_slack_mib = 64;
            c.action = "cmd";
            c.append = "memhp_default_state=online_movable".into();
            c.disk = false;
            c.expect = Expect::Scenario(scenario_dimm_hotplug);
            c.timeout = Duration::from_secs(240);
        }));
    }
    // ---- virtio-mem: grown and shrunk through requested-size --------------
    for (arch, machine) in [(X86_64, "q35"), (Aarch64, "virt,gic-version=3")] {
        v.push(with(case(arch, "virtio-mem", machine, 2, 1024), |c| {
            c.mem_opts = ",maxmem=4G".into();
            // The SRAT's hotpluggable range reaches above 4 GiB, so Linux
            // sets up its 64 MiB swiotlb bounce buffer (as with QEMU's own
            // tables under SeaBIOS).
            c.mem_slack_mib = 64;
            c.action = "cmd";
            c.append = "memhp_default_state=online_movable hotstub.modules=virtio_mem".into();
            c.disk = false;
            c.extra = [
                "-object",
                "memory-backend-ram,id=vmem-ram,size=1G",
                "-device",
                "virtio-mem-pci,id=vmem0,memdev=vmem-ram,requested-size=0",
            ]
            .map(String::from)
            .to_vec();
            c.expect = Expect::Scenario(scenario_virtio_mem);
            c.timeout = Duration::from_secs(240);
        }));
    }
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
        v.push(with(case(arch, name, machine, 2, 512), |c| {
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
        }));
    }
    // ---- runtime vCPU hotplug at EL3 over the control channel -----------
    // The first relies on the init's watcher to online what appears; the
    // cycles case onlines by itself (the watcher would miss a vCPU that
    // comes and goes between two of its looks).
    for (name, scenario, watcher, timeout) in [
        (
            "cpu-hotplug-el3",
            scenario_cpu_hotplug as super::case::Scenario,
            true,
            240,
        ),
        (
            "cpu-hotplug-cycles-el3",
            scenario_cpu_hotplug_cycles,
            false,
            600,
        ),
    ] {
        v.push(with(
            case(
                Aarch64,
                name,
                "virt,gic-version=3,secure=on,virtualization=on",
                4,
                512,
            ),
            |c| {
                c.action = "cmd";
                c.disk = false;
                if watcher {
                    c.append = "hotstub.autoonline=1".into();
                }
                c.control = true;
                c.extra = enabled_cpus_fw_cfg("0-1");
                c.cpus = CpuExpect {
                    possible: Some("0-3".into()),
                    present: Some("0-3".into()),
                    present_when_added: Some("0-1".into()),
                    online: Some("0-1".into()),
                    enabled: Some("0-1".into()),
                };
                c.expect = Expect::Scenario(scenario);
                c.timeout = Duration::from_secs(timeout);
            },
        ));
    }
    // ---- newest-kernel coverage: Debian unstable's kernel ----------------
    // A representative part of the matrix again on Debian unstable's
    // current kernel: x86 boot with the tables check, vCPU add/remove and
    // ACPI PCI hotplug;
    // arm GICv3 power button through the GED, a vCPU policy at EL1, EL2 and
    // EL3, EL2 handed to Linux (KVM), and runtime vCPU hotplug at EL3;
    // every one ends in poweroff.
    for name in [
        "x86_64/q35-smp2-4G",
        "x86_64/hotplug-smp1-max4",
        "x86_64/pci-hotplug-acpi",
        "aarch64/powerdown-acpid",
        "aarch64/cpus-enabled-0-1-el1",
        "aarch64/cpus-enabled-0-1-el2",
        "aarch64/cpus-enabled-0-1-el3",
        "aarch64/cpus-no-policy-el2",
        "aarch64/cpu-hotplug-el3",
        "aarch64/cpu-hotplug-cycles-el3",
    ] {
        let base = v
            .iter()
            .find(|c| c.name == name)
            .cloned()
            .unwrap_or_else(|| panic!("matrix has no {name}"));
        v.push(on_newest_kernel(base));
    }
    v
}

/// QEMU arguments for two NUMA nodes of 512 MiB; `cpus` gives each node's
/// CPU list and `node_opt` is appended to each `-numa node` (e.g.
/// `,initiator=N` for HMAT, with `{}` standing for the node).
pub(super) fn two_numa_nodes(cpus: [&str; 2], node_opt: &str) -> Vec<String> {
    let mut v = Vec::new();
    for n in 0..2 {
        v.push("-object".into());
        v.push(format!("memory-backend-ram,id=m{n},size=512M"));
    }
    for (n, c) in cpus.iter().enumerate() {
        v.push("-numa".into());
        v.push(format!(
            "node,nodeid={n},cpus={c},memdev=m{n}{}",
            node_opt.replace("{}", &n.to_string())
        ));
    }
    v
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
    fn matrix_names_unique() {
        let m = matrix();
        let mut names: Vec<&str> = m.iter().map(|c| c.name.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), m.len());
    }
}
