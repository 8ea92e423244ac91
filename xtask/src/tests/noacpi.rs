//! What Linux shows on a machine without ACPI (`-M microvm,acpi=off`),
//! where the firmware hands it an MP table and QEMU names the virtio-mmio
//! transports on the command line. What Linux makes of them depends on
//! its configuration, read from the guest kernel's `config`: without
//! CONFIG_X86_MPPARSE (Debian's cloud kernels) it ignores the MP table
//! and runs on the boot vCPU alone ("APIC: ACPI MADT or MP tables are
//! not detected"); without CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES (every
//! Debian kernel) it ignores the `virtio_mmio.device=` keys and finds no
//! disk. The checks those options govern are then reported as not made,
//! in the PASS note, never passed.

use super::case::Case;
use super::protocol::{fields, marker};
use std::path::PathBuf;

/// What the caller still checks, and the note for the PASS line.
pub(super) struct Found {
    /// Whether the guest can have read the test disk.
    pub disk: bool,
    pub note: String,
}

/// The kernel's complaint that it found no RSDP, expected without ACPI
/// (drivers/acpi/acpica/tbxfroot.c).
const NO_RSDP: &str = "A valid RSDP was not found";

pub(super) fn strip_no_rsdp(d: Vec<String>) -> Vec<String> {
    d.into_iter().filter(|l| !l.contains(NO_RSDP)).collect()
}

/// `config` is the booted kernel's configuration file.
pub(super) fn check(
    c: &Case,
    config: Option<PathBuf>,
    lines: &[String],
    dmesg: &[String],
    errs: &mut Vec<String>,
) -> Found {
    let config = config
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    let has = |opt: &str| config.lines().any(|l| l == format!("{opt}=y"));
    let mut notes = Vec::new();
    let all = match c.smp.parse::<u32>() {
        Ok(1) | Err(_) => "0".to_string(),
        Ok(n) => format!("0-{}", n - 1),
    };
    let online = marker(lines, "cpus ")
        .map(fields)
        .and_then(|f| f.get("online").cloned())
        .unwrap_or_default();
    let log_has = |s: &str| dmesg.iter().any(|l| l.contains(s));
    if has("CONFIG_X86_MPPARSE") {
        // arch/x86/kernel/mpparse.c and apic/io_apic.c.
        for want in ["found SMP MP-table at", "IOAPIC[0]: apic_id"] {
            if !log_has(want) {
                errs.push(format!("kernel log lacks `{want}`"));
            }
        }
        if online != all {
            errs.push(format!("cpus online={online}, expected {all}"));
        }
        notes.push(format!("MP table read, cpus {all}"));
    } else {
        if online != "0" {
            errs.push(format!("cpus online={online}, expected 0 (no MP parsing)"));
        }
        notes.push("MP table NOT checked: kernel without CONFIG_X86_MPPARSE".into());
    }
    // QEMU names the transport the one -device takes (the last of 8 at
    // 0xfeb00000 + 512 n, ISA IRQ 5 + n: hw/i386/microvm.c), the firmware
    // passes the line on.
    let key = "virtio_mmio.device=512@0xfeb00e00:12";
    let cmdline = marker(lines, "cmdline=").unwrap_or("");
    if c.disk && !cmdline.split_whitespace().any(|w| w == key) {
        errs.push(format!("command line lacks QEMU's `{key}`: {cmdline}"));
    }
    let disk = c.disk && has("CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES");
    if c.disk && !disk {
        notes.push("disk NOT read: kernel without CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES".into());
    }
    Found {
        disk,
        note: notes.join(", "),
    }
}
