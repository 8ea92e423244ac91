//! Hotstub: platform-independent firmware logic.
//!
//! Everything here builds for the host as well as for the firmware targets,
//! so `cargo test` exercises table builders, parsers, boot-protocol
//! structures and PSCI policy without a VM. Hardware access lives in the
//! binary's `arch` modules and reaches this code through small traits.
#![cfg_attr(not(test), no_std)]
// Hardware access is the binary's; the library's one exception is marked
// where it is (fw_cfg's DMA completion read).
#![deny(unsafe_code)]

extern crate alloc;

pub mod acpi;
pub mod boot;
pub mod console;
pub mod disk;
pub mod platform;
pub mod psci;
pub mod resident;
pub mod tpm;

/// Name, version and build, for the banner.
pub const NAME: &str = "Hotstub";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// "Hotstub 0.1.0": the banner's start, and the CRTM version measured
/// boot logs.
pub const VERSION_LINE: &str = concat!("Hotstub ", env!("CARGO_PKG_VERSION"));
