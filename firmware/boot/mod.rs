//! The boot flow (`pipeline`) and what it hands Linux: the machine
//! description each entry path fills (`machine`), the hand-off plan
//! (`plan`, `handoff`), where the payload comes from (`payload`; `from_disk` picks
//! `-kernel` or a disk), the
//! kernel image formats (x86 bzImage, arm64 Image), the hand-off
//! structures (zero page, EFI system table and memory map, the stub DT)
//! the VMM's SMBIOS tables and, for x86 without ACPI, an MP table.

pub mod arm64_image;
pub mod bzimage;
pub mod efi;
pub mod from_disk;
pub mod gzip;
pub mod handoff;
pub mod machine;
pub mod mptable;
pub mod payload;
pub mod pipeline;
pub mod plan;
pub mod pvh;
pub mod smbios;
pub mod stub_dt;
