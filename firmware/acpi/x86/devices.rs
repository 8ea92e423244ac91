//! The PC DSDTs' fixed devices: the LPC (q35) or ISA (pc) bridge with
//! COM1, the RTC, the i8042 and pvpanic, and the motherboard resources
//! (the TPM is constant, `build/dsdt_aml.rs`).

use super::*;

/// The ICH9 LPC bridge (device 31 function 0) with the ISA devices Linux
/// needs described: COM1, the RTC and, when present, the i8042's keyboard
/// and mouse ports (so Linux need not probe for them blindly); the fixed
/// ones are built on the host (`build/dsdt_aml.rs`).
pub(super) fn lpc(out: &mut Vec<u8>, i8042: bool, pvpanic: Option<u16>) {
    let d = emit::device(out, b"LPC_");
    out.extend_from_slice(aml_piece!("lpc_fixed"));
    isa_devices(out, i8042, pvpanic);
    emit::close(out, d);
}

/// The PIIX3 ISA bridge (device 1 function 0) with its PIRQ route
/// registers (`build/piix_aml.rs`) and the same ISA devices.
pub(super) fn isa(out: &mut Vec<u8>, i8042: bool, pvpanic: Option<u16>) {
    let d = emit::device(out, b"ISA_");
    out.extend_from_slice(aml_piece!("pc_isa_head"));
    out.extend_from_slice(aml_piece!("isa_fixed"));
    isa_devices(out, i8042, pvpanic);
    emit::close(out, d);
}

/// The ISA devices that may be absent: the i8042 and pvpanic.
fn isa_devices(out: &mut Vec<u8>, i8042: bool, pvpanic: Option<u16>) {
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
}

/// Motherboard resources (PNP0C02): ranges no PCI BAR may take. Linux
/// requires the MMCONFIG area here (else "[Firmware Bug]: ECAM ... not
/// reserved"); the PM, CPU and PCI hotplug I/O blocks keep the OS from
/// handing those ports to devices.
pub(super) fn motherboard(m: &Pc, out: &mut Vec<u8>) {
    let d = emit::device(out, b"MRES");
    emit::name_int(out, b"_HID", const { emit::eisa(b"PNP0C02") });
    emit::name_int(out, b"_UID", 1);
    let r = emit::crs(out);
    if m.chipset == Chipset::Ich9 {
        emit::memory32_fixed(out, m.mmcfg_base as u32, mmcfg_size(m) as u32);
    }
    emit::io(out, m.pm_base, m.pm_base, 1, m.chipset.pm_len());
    // PIIX4's GPE0 lies outside its PM block.
    if m.chipset == Chipset::Piix4 {
        let (gpe0, len) = m.chipset.gpe0(m.pm_base);
        emit::io(out, gpe0, gpe0, 1, len);
    }
    if let Some(io) = m.cpu_hotplug_io {
        emit::io(out, io, io, 1, CPU_HOTPLUG_LEN);
    }
    if let Some(h) = &m.pci_hotplug {
        use crate::acpi::pcihp::{Block, LEN};
        if let Block::Io(base) = h.block {
            emit::io(out, base, base, 1, LEN);
        }
    }
    emit::end_crs(out, r);
    emit::close(out, d);
}
