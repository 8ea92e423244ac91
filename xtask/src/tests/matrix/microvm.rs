//! QEMU's x86 `microvm` with ACPI (its default), on QEMU's own tables:
//! a `-kernel` boot, booting the Debian disk over a virtio-mmio transport
//! and, with `pcie=on`, over the PCIe host, each reading the test disk
//! back (md5); the disk boots end in QMP `system_powerdown` through the
//! GED's power button. Without ACPI (`acpi=off`, qboot's configuration)
//! a `-kernel` boot on the firmware's MP table: with the suite's cloud
//! kernel (which ignores the table) and with Debian's generic one (both
//! vCPUs online, the I/O APIC found; `tests/noacpi.rs` says what each
//! kernel lets the case check); Linux cannot switch that machine off, so
//! its halt line ends the case. A disk boot without ACPI is refused (`boot`'s bad
//! machines).

use super::make::{case, with};
use crate::assets::DiskImage;
use crate::build::Arch;
use crate::tests::case::{Case, CpuExpect, Expect, InitrdSel, KernelSel};
use crate::tests::scenarios::scenario_powerdown;
use std::time::Duration;

/// Under plain TCG Linux on microvm calibrates its TSC against the PIT
/// alone (microvm has no HPET and no ACPI PM timer), which fails when
/// the host is loaded; Linux then marks the TSC unstable and hangs
/// before its console (seen under SeaBIOS's bios-microvm.bin as under
/// Hotstub). With QEMU counting instructions the TSC and the PIT
/// advance together and the calibration holds (`bench --icount` runs
/// the same way).
pub(in crate::tests) const ICOUNT: &[&str] = &["-icount", "shift=0,sleep=off,align=off"];

/// Debian's x86 cloud kernel has the virtio-mmio driver as a module.
const MODULES: &str = "hotstub.modules=virtio_mmio";

fn microvm(name: &str, machine: &str) -> Case {
    with(case(Arch::X86_64, name, machine, 2, 512), |c| {
        c.append = MODULES.into();
        c.extra = ICOUNT.iter().map(|s| s.to_string()).collect();
        c.timeout = Duration::from_secs(180);
    })
}

pub(super) fn cases() -> Vec<Case> {
    let mut v = vec![
        microvm("microvm-kernel", "microvm"),
        with(microvm("microvm-noacpi-kernel", "microvm,acpi=off"), |c| {
            c.expect = Expect::BootHalts;
            // How many vCPUs come up depends on the kernel (`noacpi`).
            c.cpus = CpuExpect::default();
        }),
        // The same with Debian's generic kernel, which reads the MP table:
        // both vCPUs online, the I/O APIC found (`noacpi`). No disk: the
        // initramfs's modules are the cloud kernel's, and no Debian kernel
        // takes QEMU's virtio_mmio.device= keys.
        with(microvm("microvm-noacpi-generic", "microvm,acpi=off"), |c| {
            c.kernel = KernelSel::Generic;
            c.disk = false;
            c.append = String::new();
            c.expect = Expect::BootHalts;
            c.cpus = CpuExpect::default();
        }),
    ];
    for (name, machine, device) in [
        ("microvm-disk-debian", "microvm", "virtio-blk-device"),
        (
            "microvm-pcie-disk-debian",
            "microvm,pcie=on",
            "virtio-blk-pci",
        ),
    ] {
        v.push(with(microvm(name, machine), |c| {
            c.kernel = KernelSel::None;
            c.initrd = InitrdSel::None;
            c.boot_disk = Some((DiskImage::Debian, device));
            c.mem_mib = 1024;
            c.action = "acpid";
            c.expect = Expect::Scenario(scenario_powerdown);
        }));
    }
    v
}
