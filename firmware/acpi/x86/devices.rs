//! The q35 DSDT's fixed devices: the LPC bridge with COM1, the RTC, the
//! i8042 and pvpanic, the TPM, and the motherboard resources.

use super::*;

/// The ICH9 LPC bridge (device 31 function 0) with the ISA devices Linux
/// needs described: COM1, the RTC and, when present, the i8042's keyboard
/// and mouse ports (so Linux need not probe for them blindly).
pub(super) fn lpc(i8042: bool, pvpanic: Option<u16>) -> Vec<u8> {
    let com_hid = aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0501"));
    let com_uid = aml::Name::new("_UID".into(), &aml::ONE);
    let com_io = aml::IO::new(0x3f8, 0x3f8, 0, 8);
    let com_irq = IrqNoFlags(4);
    let com_crs = aml::Name::new(
        "_CRS".into(),
        &aml::ResourceTemplate::new(vec![&com_io, &com_irq]),
    );
    let com1 = aml::Device::new("COM1".into(), vec![&com_hid, &com_uid, &com_crs]);

    let rtc_hid = aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0B00"));
    let rtc_io = aml::IO::new(0x70, 0x70, 1, 8);
    let rtc_irq = IrqNoFlags(8);
    let rtc_crs = aml::Name::new(
        "_CRS".into(),
        &aml::ResourceTemplate::new(vec![&rtc_io, &rtc_irq]),
    );
    let rtc = aml::Device::new("RTC_".into(), vec![&rtc_hid, &rtc_crs]);

    // i8042: data 0x60, command/status 0x64, keyboard IRQ 1, mouse IRQ 12
    // (the PC/AT assignments QEMU's i8042 model uses).
    let kbd_hid = aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0303"));
    let kbd_data = aml::IO::new(0x60, 0x60, 1, 1);
    let kbd_cmd = aml::IO::new(0x64, 0x64, 1, 1);
    let kbd_irq = IrqNoFlags(1);
    let kbd_crs = aml::Name::new(
        "_CRS".into(),
        &aml::ResourceTemplate::new(vec![&kbd_data, &kbd_cmd, &kbd_irq]),
    );
    let kbd = aml::Device::new("KBD_".into(), vec![&kbd_hid, &kbd_crs]);
    let mou_hid = aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0F13"));
    let mou_irq = IrqNoFlags(12);
    let mou_crs = aml::Name::new("_CRS".into(), &aml::ResourceTemplate::new(vec![&mou_irq]));
    let mou = aml::Device::new("MOU_".into(), vec![&mou_hid, &mou_crs]);

    // _ADR: device 0x1f, function 0 (ACPI 6.5 6.1.1).
    let adr_val: u32 = 0x001f_0000;
    let adr = aml::Name::new("_ADR".into(), &adr_val);
    // pvpanic (QEMU docs/specs/pvpanic.rst): QEMU0001 with its one I/O
    // port; Linux's pvpanic driver writes the panic event there.
    let port = pvpanic.unwrap_or(0);
    let pv_hid = aml::Name::new("_HID".into(), &"QEMU0001");
    let pv_io = aml::IO::new(port, port, 1, 1);
    let pv_crs = aml::Name::new("_CRS".into(), &aml::ResourceTemplate::new(vec![&pv_io]));
    let pvpanic_dev = aml::Device::new("PEVT".into(), vec![&pv_hid, &pv_crs]);
    let mut children: Vec<&dyn Aml> = vec![&adr, &com1, &rtc];
    if i8042 {
        children.push(&kbd);
        children.push(&mou);
    }
    if pvpanic.is_some() {
        children.push(&pvpanic_dev);
    }
    to_bytes(&aml::Device::new("LPC_".into(), children))
}

/// The TPM's TIS interface (TCG PC Client Platform TPM Profile: MMIO at
/// 0xFED40000, five 4 KiB localities; QEMU hw/tpm/tpm_tis_isa.c), under its
/// ACPI ID MSFT0101 (TCG ACPI specification), which Linux's tpm_tis binds.
pub(super) fn tpm() -> Vec<u8> {
    const TIS_BASE: u32 = 0xfed4_0000;
    const TIS_LEN: u32 = 0x5000;
    let mem = aml::Memory32Fixed::new(true, TIS_BASE, TIS_LEN);
    to_bytes(&aml::Device::new(
        "TPM_".into(),
        vec![
            &aml::Name::new("_HID".into(), &"MSFT0101"),
            &aml::Name::new("_CRS".into(), &aml::ResourceTemplate::new(vec![&mem])),
        ],
    ))
}

/// Motherboard resources (PNP0C02): ranges no PCI BAR may take. Linux
/// requires the MMCONFIG area here (else "[Firmware Bug]: ECAM ... not
/// reserved"); the PM, CPU and PCI hotplug I/O blocks keep the OS from
/// handing those ports to devices.
pub(super) fn motherboard(m: &Q35) -> Vec<u8> {
    let hid = aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0C02"));
    let uid = aml::Name::new("_UID".into(), &aml::ONE);
    let ecam = aml::Memory32Fixed::new(true, m.mmcfg_base as u32, mmcfg_size(m) as u32);
    let pm = aml::IO::new(m.pm_base, m.pm_base, 1, PMIO_SIZE);
    let hp = m
        .cpu_hotplug_io
        .map(|io| aml::IO::new(io, io, 1, CPU_HOTPLUG_LEN));
    let pcihp = aml::IO::new(
        crate::acpi::pcihp::BASE,
        crate::acpi::pcihp::BASE,
        1,
        crate::acpi::pcihp::LEN,
    );
    let mut res: Vec<&dyn Aml> = vec![&ecam, &pm];
    if let Some(hp) = &hp {
        res.push(hp);
    }
    if m.pci_hotplug.is_some() {
        res.push(&pcihp);
    }
    let crs = aml::Name::new("_CRS".into(), &aml::ResourceTemplate::new(res));
    to_bytes(&aml::Device::new("MRES".into(), vec![&hid, &uid, &crs]))
}
