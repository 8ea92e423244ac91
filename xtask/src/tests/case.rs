//! What one VM run of the boot matrix is: the `Case` and its selectors and
//! expectations.

use crate::assets::{DiskImage, Flavor};
use crate::build::Arch;
use crate::qemu::{Firmware, Vm};
use crate::util::Result;
use std::time::Duration;

/// One VM run of the matrix.
#[derive(Clone)]
pub struct Case {
    pub name: String,
    pub arch: Arch,
    /// `-M` value.
    pub machine: String,
    /// `-accel` value.
    pub accel: &'static str,
    /// `-smp` value.
    pub smp: String,
    pub mem_mib: u64,
    /// Appended to `-m` (e.g. ",slots=2,maxmem=4G" for DIMM hotplug).
    pub mem_opts: String,
    pub kernel: KernelSel,
    /// Which guest kernel `KernelSel::Guest` boots.
    pub flavor: Flavor,
    /// Which QEMU runs the case.
    pub qemu: QemuSel,
    pub initrd: InitrdSel,
    /// Extra kernel command line (the harness adds the hotstub.* keys).
    pub append: String,
    pub action: &'static str,
    pub disk: bool,
    /// A disk to boot from (`assets::disks`), on this device
    /// (`virtio-blk-pci`, or `virtio-blk-device` for virtio-mmio on virt).
    /// Without a kernel the harness's command line keys go through the
    /// fw_cfg file `opt/org.hotstub/cmdline`, with `hotstub.fwcfg_cmdline=1`
    /// to show they arrived; the init must then report the disk's layout.
    pub boot_disk: Option<(DiskImage, &'static str)>,
    /// The test disk as a second, unattached drive (`-drive ...,if=none,
    /// id=hp0`), for a scenario to hot-add a device on it.
    pub spare_disk: bool,
    /// x86: QEMU loads the firmware as a PVH ELF (`-kernel
    /// hotstub-x86_64.elf`, SeaBIOS running its PVH option ROM) instead of
    /// `-bios`; the Linux kernel comes from `boot_disk`, the harness's
    /// command line keys through `-append` (the start info's line).
    pub pvh: bool,
    /// Extra MiB the kernel may reserve beyond `min_memtotal_kib` (per-CPU
    /// areas of many possible vCPUs).
    pub mem_slack_mib: u64,
    pub extra: Vec<String>,
    pub expect: Expect,
    /// What Linux must report in /sys/devices/system/cpu at init.
    pub cpus: CpuExpect,
    pub timeout: Duration,
    /// Linux enters at EL2 and must initialise KVM (arm64).
    pub kvm: bool,
    /// arm64 at EL1 with a vCPU policy: the kernel's known complaint about
    /// vCPUs QEMU's PSCI starts although they are not enabled is expected
    /// from kernels that bring up online-capable vCPUs at boot (see
    /// `strip_unregistered_cpu_splats`).
    pub unenforced_policy: bool,
    /// Guest commands and the output each must print (whitespace-joined
    /// lines), for `scenario_guest_checks`.
    pub guest_checks: Vec<(&'static str, &'static str)>,
    /// Give the VM a TPM 2.0: an swtpm process on a socket, QEMU's
    /// `tpm-tis` device on it.
    pub tpm: bool,
    /// A second serial port on a Unix socket: the EL3 firmware's control
    /// channel (`secure=on`), for the runtime vCPU hotplug scenarios.
    pub control: bool,
    /// QEMU starts paused (`-S`) and runs once a client is on the control
    /// channel (`Vm::control_client`): QEMU drops what the firmware writes
    /// while no client is connected, the first boot's event line included.
    pub control_at_start: bool,
    /// Too slow for the default run: only when `--filter` names the case
    /// in full (with or without the `<arch>/` prefix).
    pub opt_in: bool,
    /// This case's firmware instead of the run's (`--firmware`): the soak
    /// shows a QEMU crash under SeaBIOS on QEMU's own tables too.
    pub firmware: Option<Firmware>,
    /// How many more runs a case gets when QEMU itself crashes
    /// (`runner::QEMU_CRASHES`).
    pub crash_retries: u32,
    /// How many hotplug cycles a soak scenario runs (`scenarios::soak`).
    pub cycles: u32,
}

impl Case {
    /// The firmware this case boots when the run uses `run`.
    pub fn firmware_of(&self, run: Firmware) -> Firmware {
        self.firmware.unwrap_or(run)
    }

    /// Whether `--filter` (empty: none) selects this case.
    pub fn selected_by(&self, filter: &str) -> bool {
        if self.opt_in {
            let short = self.name.split_once('/').map_or("", |(_, s)| s);
            !filter.is_empty() && (filter == self.name || filter == short)
        } else {
            self.name.contains(filter)
        }
    }
}

/// The host's QEMU (bookworm-backports on bookworm), or Debian unstable's
/// run from its own root (`qemu::newest`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum QemuSel {
    Host,
    Newest,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum KernelSel {
    Guest,
    None,
    /// 2 MiB of pseudo-random bytes.
    Random,
    /// The x86 bzImage given to the arm firmware.
    ForeignArch,
    /// The arm64 PSCI test payload (tests/psci-payload).
    PsciPayload,
    /// Debian's generic x86 kernel (`assets::generic_kernel`), which reads
    /// MP tables; the guest's initramfs.
    Generic,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum InitrdSel {
    Guest,
    None,
    /// A sparse file of this many MiB.
    Huge(u64),
    /// The guest's initramfs with zero padding behind it (Linux skips
    /// it): the same boot from a different initrd file.
    Padded,
}

#[derive(Clone, Default)]
pub struct CpuExpect {
    pub possible: Option<String>,
    /// `present` where online-capable vCPUs count as present (Linux 6.x).
    pub present: Option<String>,
    /// `present` for kernels where an online-capable vCPU becomes present
    /// only once it is hot-added (Linux 7.x: commit f9a82544c717 and
    /// Documentation/arch/arm64/cpu-hotplug.rst); None: same as `present`.
    pub present_when_added: Option<String>,
    pub online: Option<String>,
    pub enabled: Option<String>,
}

pub type Scenario = fn(&mut Vm, &Case) -> Result<()>;

#[derive(Clone)]
pub enum Expect {
    /// Boots to init, passes the standard checks, `poweroff -f` ends QEMU.
    Boot,
    /// As `Boot` on a machine Linux cannot switch off (microvm without
    /// ACPI: no power-off register it knows): `poweroff -f` ends in
    /// Linux's halt line, then the harness kills QEMU.
    BootHalts,
    /// `reboot -f` resets the machine: the init is reached a second time.
    Reboot,
    /// The firmware rejects the input: a `hotstub: error:` line that
    /// contains this text ("" for any), and QEMU exits by itself within
    /// the case's timeout (a power-off, or a reset under `-no-reboot`),
    /// never a hang.
    FirmwareError(&'static str),
    /// Boots, passes the standard checks, then a driver runs against the
    /// guest's command channel (action `cmd`/`acpid`) and QMP.
    Scenario(Scenario),
    /// Runs the PSCI test payload instead of Linux: its summary with 0
    /// failed, no FAIL or error line, and for each of these prefixes a line
    /// that starts with it and is neither FAIL nor SKIP (so that a check
    /// the case exists for cannot pass by not running).
    PsciPayload(&'static [&'static str]),
    /// The case runs its VMs itself (several boots, a TPM that dies):
    /// Ok carries the PASS line's note.
    Own(fn(&Case, &super::runner::Env) -> Result<String>),
}

/// A RAM size in MiB as QEMU's `-m` and the case names write it.
pub fn mib(m: u64) -> String {
    if m.is_multiple_of(1024) {
        format!("{}G", m / 1024)
    } else {
        format!("{m}M")
    }
}
