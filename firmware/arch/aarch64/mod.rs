//! aarch64 (QEMU virt) entry and platform code.
