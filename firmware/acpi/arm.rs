//! ACPI tables for QEMU `virt` (arm64). Not yet written.
