//! The soak (issue 19 item 4, `scenarios::soak`): many hotplug cycles in
//! one boot. `cargo xtask test --soak` runs the full counts; the default
//! suite runs a short version (`SHORT`).

use super::make::{case, enabled_cpus_fw_cfg, with};
use crate::build::Arch;
use crate::qemu::Firmware;
use crate::tests::case::{Case, CpuExpect, Expect};
use crate::tests::scenarios::{scenario_dimm_soak, scenario_pci_soak, scenario_vcpu_soak};
use std::time::Duration;

/// Cycles of each soak: vCPU disable/enable (arm64 EL3), pc-dimm and PCI
/// add/remove (x86 q35).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counts {
    pub vcpu: u32,
    pub dimm: u32,
    pub pci: u32,
}

/// `--soak`: the figures.
pub const FULL: Counts = Counts {
    vcpu: 1000,
    dimm: 50,
    pci: 20,
};

/// The default suite's short soak.
pub const SHORT: Counts = Counts {
    vcpu: 50,
    dimm: 5,
    pci: 3,
};

impl Counts {
    /// `VCPU[,DIMM[,PCI]]` (`--soak-cycles`); counts left out stay `FULL`'s.
    pub fn parse(s: &str) -> Result<Counts, String> {
        let mut c = FULL;
        let n: Vec<&str> = s.split(',').collect();
        if n.len() > 3 {
            return Err(format!("--soak-cycles `{s}`: at most VCPU,DIMM,PCI"));
        }
        for (i, v) in n.iter().enumerate() {
            let v: u32 = v
                .trim()
                .parse()
                .map_err(|_| format!("--soak-cycles `{s}`: `{v}` is not a count"))?;
            *[&mut c.vcpu, &mut c.dimm, &mut c.pci][i] = v;
        }
        Ok(c)
    }
}

/// A case's timeout runs from QEMU's start to its power-off at the end:
/// the boot and this long per cycle (the slowest cycles seen on the loaded
/// host: 13 s for a vCPU cycle, 11 s for a PCI one).
fn timeout(boot_s: u64, cycles: u32) -> Duration {
    Duration::from_secs(boot_s + 30 * u64::from(cycles))
}

/// The soak cases with these counts, named `<arch>/<prefix>-...`. With
/// `seabios`, the PCI soak once more under SeaBIOS on QEMU's own tables:
/// QEMU's known TCG crash after a PCI hot-unplug must show there too.
pub(in crate::tests) fn cases(n: Counts, prefix: &str, seabios: bool) -> Vec<Case> {
    use Arch::*;
    let mut v = Vec::new();
    // -smp 8 at EL3 with 0-1 enabled at boot, the other six toggled.
    v.push(with(
        case(
            Aarch64,
            &format!("{prefix}-vcpu-el3"),
            "virt,gic-version=3,secure=on,virtualization=on",
            8,
            1024,
        ),
        |c| {
            c.action = "cmd";
            c.disk = false;
            c.control = true;
            c.extra = enabled_cpus_fw_cfg("0-1");
            c.cpus = CpuExpect {
                possible: Some("0-7".into()),
                present: Some("0-7".into()),
                present_when_added: Some("0-1".into()),
                online: Some("0-1".into()),
                enabled: Some("0-1".into()),
            };
            c.cycles = n.vcpu;
            c.expect = Expect::Scenario(scenario_vcpu_soak);
            c.timeout = timeout(600, n.vcpu);
        },
    ));
    v.push(with(
        case(X86_64, &format!("{prefix}-dimm"), "q35", 2, 1024),
        |c| {
            c.mem_opts = ",slots=2,maxmem=4G".into();
            // As in the DIMM hotplug case: the swiotlb buffer.
            c.mem_slack_mib = 64;
            c.action = "cmd";
            c.append = "memhp_default_state=online_movable".into();
            c.disk = false;
            c.cycles = n.dimm;
            c.expect = Expect::Scenario(scenario_dimm_soak);
            c.timeout = timeout(300, n.dimm);
        },
    ));
    // The ports and checks of the PCI hotplug case, where the crash below
    // was seen, with more cycles.
    let pci = with(
        super::pci::pci_hotplug(X86_64, &format!("{prefix}-pci"), "q35", None, true),
        |c| {
            c.cycles = n.pci;
            // QEMU 10.0's TCG crash after a hot-unplug (runner::QEMU_CRASHES)
            // comes about once in 15 unplugs: more cycles, more runs.
            c.crash_retries = 3;
            c.expect = Expect::Scenario(scenario_pci_soak);
            c.timeout = timeout(300, n.pci);
        },
    );
    if seabios {
        v.push(with(pci.clone(), |c| {
            c.name.push_str("-seabios");
            c.firmware = Some(Firmware::QemuDefault);
            // Linux's IO-APIC timer check panicked this boot under the
            // loaded host ("IO-APIC + timer doesn't work!"); the check is
            // about the boot, not hotplug, and Linux offers to skip it
            // (Documentation/admin-guide/kernel-parameters.txt).
            c.append.push_str(" no_timer_check");
        }));
    }
    v.push(pci);
    v
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn soak_cycles_parse() {
        assert_eq!(Counts::parse("1000,50,20"), Ok(FULL));
        assert_eq!(
            Counts::parse("200"),
            Ok(Counts {
                vcpu: 200,
                dimm: 50,
                pci: 20
            })
        );
        assert!(Counts::parse("1,2,3,4").is_err());
        assert!(Counts::parse("x").is_err());
    }
}
