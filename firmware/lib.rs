//! Hotstub: platform-independent firmware logic.
//!
//! Everything here builds for the host as well as for the firmware targets,
//! so `cargo test` exercises table builders, parsers, boot-protocol
//! structures and PSCI policy without a VM. Hardware access lives in the
//! binary's `arch` modules and reaches this code through small traits.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod acpi;
pub mod arm64_image;
pub mod arm_resident;
pub mod console;
pub mod cpulist;
pub mod cpus;
pub mod dt;
pub mod efi;
pub mod fw_cfg;
pub mod linux_x86;
pub mod memmap;
pub mod psci;
pub mod smbios;
pub mod stage2;

/// Name, version and build, for the banner.
pub const NAME: &str = "Hotstub";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
