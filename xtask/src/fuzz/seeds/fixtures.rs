//! Seeds from the captures committed as test fixtures: what
//! cloud-hypervisor handed a guest firmware (tests/fixtures/cloud-hypervisor/).

use super::corpus::Seeds;
use crate::util::root;

pub(super) fn cloud_hypervisor(s: &mut Seeds) {
    let dir = root().join("tests/fixtures/cloud-hypervisor/aarch64");
    for (target, file) in [
        ("dt", "fdt-boot1.dtb"),
        ("dt", "fdt-boot2max4.dtb"),
        ("acpi_adopt_arm", "acpi-40200000.bin"),
    ] {
        match std::fs::read(dir.join(file)) {
            Ok(data) => s.add(target, &format!("ch-aarch64-{file}"), data, "captured"),
            Err(e) => s.notes.push(format!("no seed {file}: {e}")),
        }
    }
}
