//! The virt DSDT: processors, the PL011, PL031, fw_cfg, virtio-mmio and
//! PCIe host bridge devices, and the GED with the power button and the
//! memory hotplug container. Written with `acpi::emit` around constant
//! pieces built on the host (`build/dsdt_aml.rs`); the test oracle
//! `acpi/oracle/arm.rs` holds the same DSDT built with `acpi_tables`,
//! which the tests compare it with.

use super::*;
use crate::acpi::emit::{self, Space, IRQ_CONSUMER, IRQ_EDGE};
use crate::acpi::{aml_piece, fixed_sta, pci_osc, processor, prt};

pub(super) fn dsdt(m: &Virt) -> Result<Vec<u8>, Error> {
    // About what QEMU virt's DSDT takes (a processor device is at most
    // 64 bytes without runtime hotplug), so that it is not copied at
    // each doubling.
    let mut sb = Vec::with_capacity((8 << 10) + 64 * m.cpus.len());
    sb.resize(crate::acpi::HEADER_LEN, 0);
    let scope = emit::scope(&mut sb, b"\\_SB_");
    // The DSDT is over 4 KiB from 1 vCPU on (the `_PRT` alone is 1.7 KiB):
    // a three-byte PkgLength.
    emit::widen(&mut sb, scope, 3);
    for (i, c) in m.cpus.iter().enumerate() {
        cpu_device(&mut sb, c, m.cpu_hotplug.as_ref().map(|h| (h, i)))?;
    }
    if let Some(h) = &m.cpu_hotplug {
        sb.extend_from_slice(&crate::acpi::cpuhp::ged(h, &m.cpus)?);
    }
    uart(&mut sb, m);
    if let Some((base, irq)) = m.rtc {
        rtc(&mut sb, base, irq);
    }
    if let Some(base) = m.fw_cfg {
        fw_cfg(&mut sb, base);
    }
    for (i, &(base, size, irq)) in m.virtio_mmio.iter().enumerate() {
        virtio(&mut sb, i, base, size, irq);
    }
    if let Some(p) = &m.pcie {
        pci0(&mut sb, p, m.pci_hotplug.as_ref())?;
    }
    if let Some((base, size)) = m.tpm {
        // MSFT0101: a TPM 2.0 (TCG ACPI specification), which Linux's
        // tpm_tis binds over its MMIO registers.
        let d = emit::device(&mut sb, b"TPM0");
        emit::name_str(&mut sb, b"_HID", b"MSFT0101");
        mmio_crs(&mut sb, base, size as u32, None);
        emit::close(&mut sb, d);
    }
    if let Some(mh) = &m.mem_hotplug {
        if m.ged.is_none() {
            return Err(Error::Invalid("memory hotplug without a GED to signal it"));
        }
        sb.extend_from_slice(&crate::acpi::memhp::container(mh)?);
    }
    if let Some(h) = &m.pci_hotplug {
        if m.ged.is_none() || m.pcie.is_none() {
            return Err(Error::Invalid(
                "ACPI PCI hotplug without a GED to signal it or a host bridge",
            ));
        }
        if !matches!(h.block, crate::acpi::pcihp::Block::Mmio(_)) {
            return Err(Error::Invalid("ACPI PCI hotplug registers not in MMIO"));
        }
    }
    if let Some((base, irq)) = m.ged {
        let pci = m.pci_hotplug.is_some();
        ged(&mut sb, base, irq, m.mem_hotplug.is_some(), pci);
        sb.extend_from_slice(aml_piece!("pwrb"));
    }
    emit::close(&mut sb, scope);
    Ok(crate::acpi::headed(*b"DSDT", DSDT_REVISION, sb))
}

/// One processor device; with the runtime hotplug (`hp`: its set-up and
/// the vCPU's index) its status comes from the shared block.
fn cpu_device(
    out: &mut Vec<u8>,
    c: &Vcpu,
    hp: Option<(&crate::acpi::cpuhp::CpuHotplug, usize)>,
) -> Result<(), Error> {
    let d = processor(out, c)?;
    match hp {
        Some((h, i)) => out.extend(crate::acpi::cpuhp::processor_tail(h, i)),
        None => fixed_sta(out, c.enabled),
    }
    emit::close(out, d);
    Ok(())
}

/// `Name (_CRS, ..)` with a 32-bit fixed memory range and, when `irq` is
/// given, one level-triggered, active-high, exclusive interrupt.
fn mmio_crs(out: &mut Vec<u8>, base: u64, len: u32, irq: Option<u32>) {
    emit::mmio_crs(out, base as u32, len, irq);
}

fn uart(out: &mut Vec<u8>, m: &Virt) {
    let (base, irq) = m.uart;
    let d = emit::device(out, b"COM0");
    // ARMH0011: Arm PL011 UART (Linux drivers/tty/serial/amba-pl011.c).
    emit::name_str(out, b"_HID", b"ARMH0011");
    emit::name_int(out, b"_UID", 0);
    mmio_crs(out, base, PRIMECELL_LEN, Some(irq));
    emit::close(out, d);
}

/// The PL031 has no ACPI ID of its own (Linux binds AMBA devices from ACPI
/// only for the IDs in drivers/acpi/arm64/amba.c, which has none for it),
/// so it is described the standard way for DT-only devices: PRP0001 with a
/// _DSD "compatible" (ACPI 6.5 6.1.2, _DSD device properties UUID).
fn rtc(out: &mut Vec<u8>, base: u64, irq: u32) {
    let d = emit::device(out, b"RTC0");
    emit::name_str(out, b"_HID", b"PRP0001");
    emit::name_int(out, b"_UID", 0);
    mmio_crs(out, base, PRIMECELL_LEN, Some(irq));
    out.extend_from_slice(aml_piece!("rtc_dsd"));
    emit::close(out, d);
}

fn fw_cfg(out: &mut Vec<u8>, base: u64) {
    let d = emit::device(out, b"FWCF");
    // QEMU0002: QEMU fw_cfg (Linux drivers/firmware/qemu_fw_cfg.c).
    emit::name_str(out, b"_HID", b"QEMU0002");
    // _STA 0x0b: present, enabled, functioning, hidden from UI.
    emit::name_int(out, b"_STA", 0x0b);
    emit::name_int(out, b"_CCA", 1);
    mmio_crs(out, base, FW_CFG_LEN, None);
    emit::close(out, d);
}

fn virtio(out: &mut Vec<u8>, i: usize, base: u64, size: u64, irq: u32) {
    // VR00..VR99 (check() bounds the count).
    let name = [
        b'V',
        b'R',
        b'0' + (i / 10 % 10) as u8,
        b'0' + (i % 10) as u8,
    ];
    let d = emit::device(out, &name);
    // LNRO0005: virtio-mmio (Linux drivers/virtio/virtio_mmio.c).
    emit::name_str(out, b"_HID", b"LNRO0005");
    emit::name_int(out, b"_UID", i as u64);
    emit::name_int(out, b"_CCA", 1);
    mmio_crs(out, base, size as u32, Some(irq));
    emit::close(out, d);
}

fn pci0(
    out: &mut Vec<u8>,
    p: &ArmPcie,
    hotplug: Option<&crate::acpi::pcihp::PciHotplug>,
) -> Result<(), Error> {
    const MEM: Space = Space::Memory { cacheable: false };
    let d = emit::device(out, b"PCI0");
    emit::widen(out, d, 2);
    emit::name_int(out, b"_HID", const { emit::eisa(b"PNP0A08") });
    emit::name_int(out, b"_CID", const { emit::eisa(b"PNP0A03") });
    emit::name_int(out, b"_SEG", 0);
    emit::name_int(out, b"_BBN", u64::from(p.bus.0));
    emit::name_int(out, b"_UID", 0);
    emit::name_int(out, b"_CCA", 1);
    let r = emit::crs(out);
    emit::address(out, 2, Space::Bus, p.bus.0.into(), p.bus.1.into(), 0);
    let (b, s) = p.mmio32;
    emit::address(out, 4, MEM, b, b + s - 1, 0);
    if let Some((b, s)) = p.mmio64 {
        emit::address(out, 8, MEM, b, b + s - 1, 0);
    }
    // PCI I/O space 0..size appears at CPU address `base`: a translation
    // offset of `base` (ACPI 6.5 6.4.3.5.1 _TRA).
    if let Some((b, s)) = p.io {
        emit::address(out, 8, Space::Io, 0, s - 1, b);
    }
    emit::end_crs(out, r);
    prt(out, &p.prt)?;
    // Native PCIe hotplug is the OS's unless QEMU hotplugs the root ports
    // through its ACPI block (QEMU 11 with the option; 10.0 has none).
    if let Some(h) = hotplug {
        out.extend(crate::acpi::pcihp::pci0_objects(h)?);
    }
    out.extend_from_slice(pci_osc(hotplug.is_none()));
    // ECAM as a motherboard resource, so nothing else claims it.
    let (eb, es) = p.ecam;
    let res = emit::device(out, b"RES0");
    emit::name_int(out, b"_HID", const { emit::eisa(b"PNP0C02") });
    let r = emit::crs(out);
    emit::address(out, 8, MEM, eb, eb + es - 1, 0);
    emit::end_crs(out, r);
    emit::close(out, res);
    emit::close(out, d);
    Ok(())
}

/// Generic Event Device (ACPI 6.5 5.6.9): its interrupt makes the OS call
/// _EVT, which reads QEMU's event selector once (the read clears it) and
/// dispatches each bit it knows: a power-down request becomes a power
/// button notification, a memory hotplug event the DIMM scan
/// (`build/dsdt_aml.rs` has both), a PCI hotplug event the root ports'
/// scan (`build/pcihp_aml.rs`).
fn ged(out: &mut Vec<u8>, base: u64, irq: u32, mem_hotplug: bool, pci_hotplug: bool) {
    let d = emit::device(out, b"GED0");
    emit::name_str(out, b"_HID", b"ACPI0013");
    emit::name_int(out, b"_UID", 0);
    let r = emit::crs(out);
    emit::ext_irq(out, IRQ_CONSUMER | IRQ_EDGE, irq);
    emit::end_crs(out, r);
    emit::op_region(
        out,
        b"EREG",
        emit::SYSTEM_MEMORY,
        base,
        u64::from(GED_SEL_LEN),
    );
    out.extend_from_slice(aml_piece!("ged_field"));
    // _EVT (Arg0: the interrupt), serialized.
    let evt = emit::method(out, b"_EVT", 1 | emit::SERIALIZED);
    out.extend_from_slice(aml_piece!("ged_evt_power"));
    if mem_hotplug {
        out.extend_from_slice(aml_piece!("ged_evt_memory"));
    }
    if pci_hotplug {
        out.extend_from_slice(crate::acpi::pcihp::GED_EVT);
    }
    emit::close(out, evt);
    emit::close(out, d);
}
