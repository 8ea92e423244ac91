//! The domain XML of the libvirt cases; README "libvirt" shows the same
//! domains with placeholder paths.

use crate::build::Arch;
use std::path::Path;

/// What one domain boots and where its console goes.
pub(super) struct Domain<'a> {
    pub name: &'a str,
    pub arch: Arch,
    /// x86: `hotstub-x86_64.bin`; arm64: the pflash copy
    /// (`build::pflash_path`).
    pub firmware: &'a Path,
    pub kernel: &'a Path,
    pub initrd: &'a Path,
    pub cmdline: &'a str,
    /// vCPUs at start and at most.
    pub vcpus: (u32, u32),
    pub mem_mib: u64,
    /// The serial console: a Unix socket QEMU listens on.
    pub console: &'a Path,
    /// The QEMU binary (the one the suite checked).
    pub emulator: &'a Path,
}

/// Escapes text for XML attribute values and elements.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
}

fn p(path: &Path) -> String {
    esc(&path.display().to_string())
}

impl Domain<'_> {
    pub(super) fn xml(&self) -> String {
        // x86: libvirt's `rom` loader is QEMU's -bios. arm64: libvirt
        // refuses <acpi/> on aarch64 without a pflash loader
        // (src/qemu/qemu_validate.c, "ACPI requires UEFI on this
        // architecture"); without <acpi/> it would start virt with
        // acpi=off. Stateless: no NVRAM file, the image is read only.
        let (machine, loader, features) = match self.arch {
            Arch::X86_64 => ("q35", "type='rom'", "<acpi/>"),
            Arch::Aarch64 => (
                "virt",
                "type='pflash' readonly='yes' stateless='yes'",
                "<acpi/><gic version='3'/>",
            ),
        };
        // q35: a free root port for the disk the x86 case hot-adds (libvirt
        // adds ports for the devices a domain starts with, none spare);
        // no USB controller, which would take it.
        let ports = match self.arch {
            Arch::X86_64 => {
                "    <controller type='pci' index='0' model='pcie-root'/>\n    \
                 <controller type='pci' index='1' model='pcie-root-port'/>\n"
            }
            Arch::Aarch64 => "",
        };
        format!(
            "<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>{mem}</memory>
  <vcpu placement='static' current='{cur}'>{max}</vcpu>
  <os>
    <type arch='{arch}' machine='{machine}'>hvm</type>
    <loader {loader}>{fw}</loader>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>{cmdline}</cmdline>
  </os>
  <features>{features}</features>
  <cpu mode='maximum'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>{emulator}</emulator>
{ports}    <controller type='usb' model='none'/>
    <serial type='unix'>
      <source mode='bind' path='{console}'/>
    </serial>
    <memballoon model='none'/>
  </devices>
</domain>
",
            name = esc(self.name),
            mem = self.mem_mib,
            cur = self.vcpus.0,
            max = self.vcpus.1,
            arch = self.arch.name(),
            fw = p(self.firmware),
            kernel = p(self.kernel),
            initrd = p(self.initrd),
            cmdline = esc(self.cmdline),
            emulator = p(self.emulator),
            console = p(self.console),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arm_has_a_stateless_pflash_loader_and_escapes_paths() {
        let d = Domain {
            name: "t",
            arch: Arch::Aarch64,
            firmware: Path::new("/a&b/fw.bin"),
            kernel: Path::new("/k"),
            initrd: Path::new("/i"),
            cmdline: "x=1",
            vcpus: (2, 2),
            mem_mib: 512,
            console: Path::new("/c"),
            emulator: Path::new("/usr/bin/qemu-system-aarch64"),
        };
        let x = d.xml();
        assert!(x.contains(
            "<loader type='pflash' readonly='yes' stateless='yes'>/a&amp;b/fw.bin</loader>"
        ));
        assert!(x.contains("<acpi/>"));
        assert!(!x.contains("pcie-root-port"));
    }
}
