//! ACPI tables built by the firmware from what it discovered.
