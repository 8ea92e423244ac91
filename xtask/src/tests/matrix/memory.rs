//! Memory hotplug: a pc-dimm and virtio-mem.

use super::make::{case, with};
use crate::build::Arch;
use crate::tests::case::{Case, Expect};
use crate::tests::scenarios::{scenario_dimm_hotplug, scenario_virtio_mem};
use std::time::Duration;

pub(super) fn cases() -> Vec<Case> {
    use Arch::*;
    let mut v = Vec::new();
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
    v
}
