//! The firmwares `bench` compares and their image files.

use crate::build::Arch;
use crate::qemu::Firmware;
use std::path::PathBuf;

/// SeaBIOS image QEMU loads for q35 when no -bios is given (Debian's
/// seabios package; QEMU's pc-bios name bios-256k.bin).
const SEABIOS: &str = "/usr/share/seabios/bios-256k.bin";

/// The firmwares compared on `arch`, Hotstub first: the table gives the
/// others as ratios to it.
pub(super) fn contenders(arch: Arch) -> Vec<Firmware> {
    match arch {
        Arch::X86_64 => vec![Firmware::Hotstub, Firmware::QemuDefault, Firmware::Qboot],
        Arch::Aarch64 => vec![Firmware::Hotstub, Firmware::QemuDefault, Firmware::Edk2],
    }
}

/// The image file a contender loads, for the size column (QEMU's
/// direct kernel boot has none).
pub(super) fn image_file(arch: Arch, fw: Firmware) -> Option<PathBuf> {
    match (fw, arch) {
        (Firmware::QemuDefault, Arch::X86_64) => Some(PathBuf::from(SEABIOS)),
        (Firmware::QemuDefault, Arch::Aarch64) => None,
        _ => fw.bios(arch),
    }
}
