//! The firmwares `bench` compares, the machines they boot and their image
//! files.

use super::Mode;
use crate::build::Arch;
use crate::qemu::{default_machine, Firmware};
use std::path::PathBuf;

/// SeaBIOS image QEMU loads for q35 when no -bios is given (Debian's
/// seabios package; QEMU's pc-bios name bios-256k.bin).
const SEABIOS: &str = "/usr/share/seabios/bios-256k.bin";
/// The SeaBIOS build QEMU loads for microvm with ACPI, its default
/// (hw/i386/microvm.c MICROVM_BIOS_FILENAME; Debian's seabios package).
const SEABIOS_MICROVM: &str = "/usr/share/seabios/bios-microvm.bin";

/// x86 `microvm`: Hotstub and SeaBIOS with ACPI, its default; Hotstub
/// and qboot without ACPI, QEMU's choice there (hw/i386/microvm.c
/// MICROVM_QBOOT_FILENAME), which qboot needs (it builds no ACPI tables).
pub(super) const MICROVM: &str = "microvm";
const MICROVM_NO_ACPI: &str = "microvm,acpi=off";

/// The firmwares compared on `arch`, each with its `-M`, Hotstub first
/// in each machine's group: the table gives the others as ratios to it.
/// microvm only under icount: under plain TCG on a loaded host Linux's
/// PIT calibration of the TSC fails there (no HPET, no PM timer) and the
/// boot hangs, whatever the firmware (`tests::matrix::microvm`).
pub(super) fn contenders(arch: Arch, mode: Mode) -> Vec<(Firmware, &'static str)> {
    let m = default_machine(arch);
    match arch {
        Arch::X86_64 => {
            let mut v = vec![
                (Firmware::Hotstub, m),
                (Firmware::QemuDefault, m),
                (Firmware::Qboot, m),
            ];
            if mode == Mode::Icount {
                v.extend([
                    (Firmware::Hotstub, MICROVM),
                    (Firmware::QemuDefault, MICROVM),
                    (Firmware::Hotstub, MICROVM_NO_ACPI),
                    (Firmware::Qboot, MICROVM_NO_ACPI),
                ]);
            }
            v
        }
        Arch::Aarch64 => vec![
            (Firmware::Hotstub, m),
            (Firmware::QemuDefault, m),
            (Firmware::Edk2, m),
        ],
    }
}

/// The machine group a `-M` value belongs to: rows compare with the
/// group's Hotstub. "microvm,acpi=off" is a group of its own (Linux's
/// path without ACPI differs), its name fit for a log file.
pub(super) fn group(machine: &str) -> &str {
    if machine == MICROVM_NO_ACPI {
        return "microvm-noacpi";
    }
    machine.split(',').next().unwrap_or(machine)
}

/// The image file a contender loads, for the size column (QEMU's
/// direct kernel boot has none).
pub(super) fn image_file(arch: Arch, fw: Firmware, machine: &str) -> Option<PathBuf> {
    match (fw, arch) {
        (Firmware::QemuDefault, Arch::X86_64) if group(machine) == MICROVM => {
            Some(PathBuf::from(SEABIOS_MICROVM))
        }
        (Firmware::QemuDefault, Arch::X86_64) => Some(PathBuf::from(SEABIOS)),
        (Firmware::QemuDefault, Arch::Aarch64) => None,
        _ => fw.bios(arch),
    }
}
