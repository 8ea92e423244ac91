//! Cases that boot the x86 firmware as a PVH ELF under QEMU (`Case::pvh`):
//! SeaBIOS runs QEMU's PVH option ROM, which enters `hotstub-x86_64.elf`
//! given as `-kernel`. The Linux kernel comes from the boot disk, so the
//! harness's command line keys, which the runner put in the fw_cfg file
//! `opt/org.hotstub/cmdline` for a disk boot, go through `-append`
//! instead: the start info's command line, which the firmware appends to
//! the disk entry's the same way.

use crate::qemu::{Firmware, VmConfig};
use crate::util::Result;

const CMDLINE_FILE: &str = "name=opt/org.hotstub/cmdline,string=";

/// Turns the `-bios` disk boot `cfg` into the PVH one.
pub(super) fn qemu_config(cfg: &mut VmConfig) -> Result<()> {
    cfg.firmware = Firmware::QemuDefault;
    cfg.kernel = Some(crate::pvh_elf::built()?);
    if let Some(at) = cfg.extra.iter().position(|a| a.starts_with(CMDLINE_FILE)) {
        let line = cfg.extra[at][CMDLINE_FILE.len()..].replace(",,", ",");
        // The "-fw_cfg" before it goes too.
        cfg.extra.drain(at - 1..=at);
        cfg.append = Some(line);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::Arch;

    #[test]
    fn the_fw_cfg_line_becomes_append() {
        let mut cfg = VmConfig::new(Arch::X86_64, Firmware::Hotstub);
        cfg.extra = vec![
            "-fw_cfg".into(),
            format!("{CMDLINE_FILE}a=1,,2 b"),
            "-drive".into(),
            "x".into(),
        ];
        // Without the ELF built the conversion says so.
        if qemu_config(&mut cfg).is_err() {
            return;
        }
        assert_eq!(cfg.append.as_deref(), Some("a=1,2 b"));
        assert_eq!(cfg.extra, ["-drive", "x"]);
        assert_eq!(cfg.firmware, Firmware::QemuDefault);
    }
}
