//! The q35 DSDT's fixed devices: the LPC bridge with COM1, the RTC, the
//! i8042 and pvpanic, and the motherboard resources (the TPM is constant,
//! `build/dsdt_aml.rs`).

use super::*;

/// The ICH9 LPC bridge (device 31 function 0) with the ISA devices Linux
/// needs described: COM1, the RTC and, when present, the i8042's keyboard
/// and mouse ports (so Linux need not probe for them blindly); the fixed
/// ones are built on the host (`build/dsdt_aml.rs`).
pub(super) fn lpc(out: &mut Vec<u8>, i8042: bool, pvpanic: Option<u16>) {
    let d = emit::device(out, b"LPC_");
    out.extend_from_slice(aml_piece!("lpc_fixed"));
    if i8042 {
        out.extend_from_slice(aml_piece!("lpc_i8042"));
    }
    // pvpanic (QEMU docs/specs/pvpanic.rst): QEMU0001 with its one I/O
    // port; Linux's pvpanic driver writes the panic event there.
    if let Some(port) = pvpanic {
        let p = emit::device(out, b"PEVT");
        emit::name_str(out, b"_HID", b"QEMU0001");
        let r = emit::crs(out);
        emit::io(out, port, port, 1, 1);
        emit::end_crs(out, r);
        emit::close(out, p);
    }
    emit::close(out, d);
}

/// Motherboard resources (PNP0C02): ranges no PCI BAR may take. Linux
/// requires the MMCONFIG area here (else "[Firmware Bug]: ECAM ... not
/// reserved"); the PM, CPU and PCI hotplug I/O blocks keep the OS from
/// handing those ports to devices.
pub(super) fn motherboard(m: &Q35, out: &mut Vec<u8>) {
    let d = emit::device(out, b"MRES");
    emit::name_int(out, b"_HID", const { emit::eisa(b"PNP0C02") });
    emit::name_int(out, b"_UID", 1);
    let r = emit::crs(out);
    emit::memory32_fixed(out, m.mmcfg_base as u32, mmcfg_size(m) as u32);
    emit::io(out, m.pm_base, m.pm_base, 1, PMIO_SIZE);
    if let Some(io) = m.cpu_hotplug_io {
        emit::io(out, io, io, 1, CPU_HOTPLUG_LEN);
    }
    if m.pci_hotplug.is_some() {
        use crate::acpi::pcihp::{BASE, LEN};
        emit::io(out, BASE, BASE, 1, LEN);
    }
    emit::end_crs(out, r);
    emit::close(out, d);
}
