//! x86_64 (QEMU q35) entry and platform code.
