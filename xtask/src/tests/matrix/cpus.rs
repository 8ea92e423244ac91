//! vCPUs: hotplug on x86, the arm64 vCPU policy at each EL (with the
//! PSCI payload's attacks), and the runtime vCPU hotplug at EL3.

use super::make::{bad, case, enabled_cpus_fw_cfg, with};
use crate::build::Arch;
use crate::tests::case::{Case, CpuExpect, Expect, InitrdSel, KernelSel};
use crate::tests::scenarios::{
    scenario_arm_cpu1_cycles, scenario_arm_disabled_cpus, scenario_channel_resync,
    scenario_cpu_hotplug, scenario_cpu_hotplug_cycles, scenario_high_redist_hotplug,
    scenario_policy_across_resets, scenario_reset_mid_change, scenario_x86_hotplug,
    scenario_x86_hotplug_cycles, scenario_x86_hotplug_high,
};
use std::time::Duration;

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
    "PSCI-TEST: firmware memory from EL0 in AArch32 (data abort to EL1) 0x",
    // At EL2 the firmware keeps its data, its arena (handler stacks,
    // stage-2 tables, heap) and a fallback stack apart: each is attacked.
    "PSCI-TEST: CPU_ON entry point in another firmware region 0x",
    "PSCI-TEST: firmware memory, another region, first word 0x",
    "PSCI-TEST: firmware memory, another region, last word 0x",
    "PSCI-TEST: after hostile: write to another resident firmware region: PASS"
);
const PSCI_HOSTILE_EL3_LINES: &[&str] = hostile_lines!(
    "PSCI-TEST: secure GIC: GICD_CTLR.DS (disable security) from the normal world: PASS",
    "PSCI-TEST: secure GIC: SGI 15 GICR_IGROUPR0",
    "PSCI-TEST: secure GIC: SGI 15 GICR_ICENABLER0",
    "PSCI-TEST: secure GIC: SGI 15 GICR_IPRIORITYR",
    "PSCI-TEST: secure GIC: SGI 15 GICR_WAKER",
    "PSCI-TEST: secure GIC: Group 0 SGI 15 from the normal world leaves every other core OFF: PASS"
);

pub(super) fn hotplug_and_policy() -> Vec<Case> {
    use Arch::*;
    let mut v = Vec::new();
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
    // Past 512 vCPUs (QEMU 10.0 and 11.1 allow 4,096 on q35): the tables
    // no longer fit the BIOS area and go to RAM below 4 GiB
    // (arch/x86_64/tables.rs acpi_area), Linux lists all 1,024, and the
    // vCPU with APIC ID 1023 is plugged and onlined. APIC IDs past 255 need
    // x2APIC, which Linux keeps only with interrupt remapping (as in
    // q35-maxcpus288-intremap). Linux's per-CPU areas of 1,024 possible
    // CPUs take about 300 MiB more than the usual reservations.
    v.push(with(
        case(X86_64, "hotplug-smp1-max1024", "q35", 1, 1024),
        |c| {
            c.smp = "1,maxcpus=1024".into();
            c.action = "cmd";
            c.append = "hotstub.autoonline=1".into();
            c.disk = false;
            c.extra = vec!["-device".into(), "intel-iommu,intremap=on,eim=on".into()];
            c.mem_slack_mib = 352;
            c.cpus = CpuExpect {
                possible: Some("0-1023".into()),
                present: Some("0".into()),
                present_when_added: None,
                online: Some("0".into()),
                enabled: Some("0".into()),
            };
            c.expect = Expect::Scenario(scenario_x86_hotplug_high);
            c.timeout = Duration::from_secs(300);
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
    // QEMU virt's GICv3 maximum at EL1: 512 vCPUs, the first 123 with
    // their redistributors in the low region, the rest in the high one
    // (hw/arm/virt.c VIRT_GIC_REDIST, VIRT_HIGH_GIC_REDIST2); with 0-3
    // enabled (described only: PSCI is QEMU's) and with all online. Both
    // only on request: TCG sends every broadcast TLB invalidation to each
    // vCPU thread, so Linux's early text patching alone (ftrace) takes
    // over ten minutes with 512 vCPUs on two host cores, and with all
    // online its stop_machine calls spin on every vCPU.
    for (name, policy) in [
        ("redist-smp512-el1-policy", true),
        ("redist-smp512-el1", false),
    ] {
        v.push(with(
            case(Aarch64, name, "virt,gic-version=3", 512, 1024),
            |c| {
                c.disk = false;
                // Linux's per-CPU areas, about 0.25 MiB per possible vCPU.
                c.mem_slack_mib = 192;
                c.opt_in = true;
                c.timeout = Duration::from_secs(7200);
                if policy {
                    c.extra = enabled_cpus_fw_cfg("0-3");
                    c.unenforced_policy = true;
                    c.cpus.present_when_added = Some("0-3".into());
                    c.cpus.online = None;
                    c.cpus.enabled = Some("0-3".into());
                }
            },
        ));
    }
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
    v
}

pub(super) fn runtime_hotplug() -> Vec<Case> {
    use Arch::*;
    let mut v = Vec::new();
    // ---- runtime vCPU hotplug at EL3 over the control channel -----------
    // The first relies on the init's watcher to online what appears; the
    // cycles case onlines by itself (the watcher would miss a vCPU that
    // comes and goes between two of its looks).
    // The policy across resets (guest reboot, QMP system_reset, a reset in
    // the middle of a change): the client is on the channel before the
    // vCPUs start, so it sees every boot's event line, the first included.
    for (name, scenario, watcher, timeout, at_start) in [
        (
            "cpu-hotplug-el3",
            scenario_cpu_hotplug as crate::tests::case::Scenario,
            true,
            240,
            false,
        ),
        (
            "cpu-hotplug-cycles-el3",
            scenario_cpu_hotplug_cycles,
            false,
            600,
            false,
        ),
        (
            "cpu-channel-resync-el3",
            scenario_channel_resync,
            false,
            240,
            false,
        ),
        (
            "cpu-persist-resets-el3",
            scenario_policy_across_resets,
            true,
            360,
            true,
        ),
        (
            "cpu-persist-mid-change-el3",
            scenario_reset_mid_change,
            true,
            360,
            true,
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
                c.control_at_start = at_start;
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
    // QEMU virt's second redistributor region (vCPUs 123 and up, above
    // RAM at 256 GiB): 256 vCPUs at EL3, 4 enabled, so Linux brings up only
    // those at boot; vCPU 200, in the high region, enabled at run time.
    v.push(with(
        case(
            Aarch64,
            "redist-smp256-el3-hotplug",
            "virt,gic-version=3,secure=on,virtualization=on",
            256,
            1024,
        ),
        |c| {
            c.action = "cmd";
            c.disk = false;
            // 256 vCPU threads on two host cores: under a loaded host TCG
            // starves a vCPU for tens of seconds (seen once: free_initmem's
            // memset, RCU's 21 s stall warning with its call trace). RCU
            // warns after 300 s instead, longer than the case may take.
            c.append = "hotstub.autoonline=1 rcupdate.rcu_cpu_stall_timeout=300".into();
            c.control = true;
            c.extra = enabled_cpus_fw_cfg("0-3");
            c.cpus = CpuExpect {
                possible: Some("0-255".into()),
                present: Some("0-255".into()),
                present_when_added: Some("0-3".into()),
                online: Some("0-3".into()),
                enabled: Some("0-3".into()),
            };
            c.expect = Expect::Scenario(scenario_high_redist_hotplug);
            // Linux's per-CPU areas for 256 possible vCPUs.
            c.mem_slack_mib = 96;
            c.timeout = Duration::from_secs(600);
        },
    ));
    v
}
