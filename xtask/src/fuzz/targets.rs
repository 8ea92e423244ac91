//! The fuzz targets and where their corpora and builds live.

use crate::util::root;
use std::path::PathBuf;

/// The targets, as named in fuzz/Cargo.toml.
pub const TARGETS: &[&str] = &[
    "dt",
    "fw_cfg_dir",
    "e820",
    "bzimage",
    "arm64_image",
    "cpulist",
    "memhp_slots",
    "memhp_tables",
    "pcihp_tables",
    "vmm_tables",
    "smbios",
    "hotplug_channel",
    "disk_part",
    "disk_fat",
    "disk_ext4",
    "boot_entries",
    "tpm_response",
    "acpi_adopt",
    "acpi_adopt_arm",
    "acpi_loader",
    "pvh_start_info",
    "gzip",
];

/// How long `cargo xtask test` runs each target.
pub const TEST_SECONDS: u64 = 20;

pub(super) fn fuzz_dir() -> PathBuf {
    root().join("fuzz")
}

pub(super) fn corpus_dir(target: &str) -> PathBuf {
    fuzz_dir().join("corpus").join(target)
}
