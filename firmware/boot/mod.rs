//! Handing the machine to Linux: the kernel image formats (x86 bzImage,
//! arm64 Image), the hand-off structures (zero page, EFI system table and
//! memory map, the stub DT) and the VMM's SMBIOS tables.

pub mod arm64_image;
pub mod bzimage;
pub mod efi;
pub mod payload;
pub mod pipeline;
pub mod smbios;
pub mod stub_dt;
