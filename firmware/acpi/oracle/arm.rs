//! The DSDT as the `acpi_tables` builders wrote it before the firmware
//! had its own AML writer (`acpi::emit`), kept as the reference the tests
//! compare the firmware's DSDT with, byte for byte.

use super::*;
use crate::acpi::oracle::{cpu_name, pci_osc, prt_package, raw_device, scan_call, RawAml};
use acpi_tables::aml;
use acpi_tables::Aml;
use alloc::vec;
use alloc::vec::Vec;

/// GED event bits (QEMU include/hw/acpi/generic_event_device.h):
/// ACPI_GED_MEM_HOTPLUG_EVT and ACPI_GED_PWR_DOWN_EVT. Other bits QEMU may
/// set are ignored.
const GED_MEM_HOTPLUG: u32 = 0x1;
const GED_PWR_DOWN: u32 = 0x2;

pub(super) fn dsdt(m: &Virt) -> Result<Vec<u8>, Error> {
    let mut sb = Vec::new();
    for c in &m.cpus {
        sb.extend_from_slice(&processor(c)?);
    }
    sb.extend_from_slice(&uart(m));
    if let Some((base, irq)) = m.rtc {
        sb.extend_from_slice(&rtc(base, irq));
    }
    if let Some(base) = m.fw_cfg {
        sb.extend_from_slice(&fw_cfg(base));
    }
    for (i, &(base, size, irq)) in m.virtio_mmio.iter().enumerate() {
        sb.extend_from_slice(&virtio(i, base, size, irq));
    }
    if let Some(p) = &m.pcie {
        sb.extend_from_slice(&pci0(p, m.pci_hotplug.as_ref())?);
    }
    if let Some((base, size)) = m.tpm {
        // MSFT0101: a TPM 2.0 (TCG ACPI specification), which Linux's
        // tpm_tis binds over its MMIO registers.
        let mem = aml::Memory32Fixed::new(true, base as u32, size as u32);
        sb.extend_from_slice(&to_bytes(&aml::Device::new(
            "TPM0".into(),
            vec![
                &aml::Name::new("_HID".into(), &"MSFT0101"),
                &aml::Name::new("_CRS".into(), &aml::ResourceTemplate::new(vec![&mem])),
            ],
        )));
    }
    if let Some(mh) = &m.mem_hotplug {
        if m.ged.is_none() {
            return Err(Error::Invalid("memory hotplug without a GED to signal it"));
        }
        sb.extend_from_slice(&crate::acpi::memhp::container(mh)?);
    }
    if let Some((base, irq)) = m.ged {
        let pci = m.pci_hotplug.is_some();
        sb.extend_from_slice(&ged(base, irq, m.mem_hotplug.is_some(), pci));
        sb.extend_from_slice(&to_bytes(&aml::Device::new(
            "PWRB".into(),
            vec![
                &aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0C0C")),
                &aml::Name::new("_UID".into(), &aml::ZERO),
            ],
        )));
    }
    let body = aml::Scope::raw("\\_SB_".into(), sb);
    Ok(table(*b"DSDT", DSDT_REVISION, &body))
}

fn processor(c: &Vcpu) -> Result<Vec<u8>, Error> {
    let name = cpu_name(c.uid)?;
    let hid = aml::Name::new("_HID".into(), &"ACPI0007");
    let uid = aml::Name::new("_UID".into(), &c.uid);
    // _STA (ACPI 6.5 6.3.7): present and functioning always; enabled only
    // for enabled vCPUs (Linux Documentation/arch/arm64/cpu-hotplug.rst).
    let sta: u8 = if c.enabled { 0x0f } else { 0x0d };
    let sta = aml::Name::new("_STA".into(), &sta);
    Ok(to_bytes(&aml::Device::new(
        name.as_str().into(),
        vec![&hid, &uid, &sta],
    )))
}

/// Level-triggered, active-high, exclusive interrupt consumer.
fn level_irq(intid: u32) -> aml::Interrupt {
    aml::Interrupt::new(true, false, false, false, intid)
}

fn uart(m: &Virt) -> Vec<u8> {
    let (base, irq) = m.uart;
    let mem = aml::Memory32Fixed::new(true, base as u32, PRIMECELL_LEN);
    let int = level_irq(irq);
    to_bytes(&aml::Device::new(
        "COM0".into(),
        vec![
            // ARMH0011: Arm PL011 UART (Linux drivers/tty/serial/amba-pl011.c).
            &aml::Name::new("_HID".into(), &"ARMH0011"),
            &aml::Name::new("_UID".into(), &aml::ZERO),
            &aml::Name::new("_CRS".into(), &aml::ResourceTemplate::new(vec![&mem, &int])),
        ],
    ))
}

/// The PL031 has no ACPI ID of its own (Linux binds AMBA devices from ACPI
/// only for the IDs in drivers/acpi/arm64/amba.c, which has none for it),
/// so it is described the standard way for DT-only devices: PRP0001 with a
/// _DSD "compatible" (ACPI 6.5 6.1.2, _DSD device properties UUID).
fn rtc(base: u64, irq: u32) -> Vec<u8> {
    let mem = aml::Memory32Fixed::new(true, base as u32, PRIMECELL_LEN);
    let int = level_irq(irq);
    const DEVICE_PROPERTIES: [u8; 16] =
        crate::acpi::oracle::guid(b"DAFFD814-6EBA-4D8C-8A91-BC9BBF4AA301");
    let uuid = aml::BufferData::new(DEVICE_PROPERTIES.to_vec());
    let compatible = aml::Package::new(vec![&"compatible", &"arm,pl031"]);
    let props = aml::Package::new(vec![&compatible]);
    let dsd = aml::Package::new(vec![&uuid, &props]);
    to_bytes(&aml::Device::new(
        "RTC0".into(),
        vec![
            &aml::Name::new("_HID".into(), &"PRP0001"),
            &aml::Name::new("_UID".into(), &aml::ZERO),
            &aml::Name::new("_CRS".into(), &aml::ResourceTemplate::new(vec![&mem, &int])),
            &aml::Name::new("_DSD".into(), &dsd),
        ],
    ))
}

fn fw_cfg(base: u64) -> Vec<u8> {
    let mem = aml::Memory32Fixed::new(true, base as u32, FW_CFG_LEN);
    // _STA 0x0b: present, enabled, functioning, hidden from UI.
    let sta: u8 = 0x0b;
    to_bytes(&aml::Device::new(
        "FWCF".into(),
        vec![
            // QEMU0002: QEMU fw_cfg (Linux drivers/firmware/qemu_fw_cfg.c).
            &aml::Name::new("_HID".into(), &"QEMU0002"),
            &aml::Name::new("_STA".into(), &sta),
            &aml::Name::new("_CCA".into(), &aml::ONE),
            &aml::Name::new("_CRS".into(), &aml::ResourceTemplate::new(vec![&mem])),
        ],
    ))
}

fn virtio(i: usize, base: u64, size: u64, irq: u32) -> Vec<u8> {
    let name = alloc::format!("VR{i:02}");
    let mem = aml::Memory32Fixed::new(true, base as u32, size as u32);
    let int = level_irq(irq);
    let uid = i as u32;
    to_bytes(&aml::Device::new(
        name.as_str().into(),
        vec![
            // LNRO0005: virtio-mmio (Linux drivers/virtio/virtio_mmio.c).
            &aml::Name::new("_HID".into(), &"LNRO0005"),
            &aml::Name::new("_UID".into(), &uid),
            &aml::Name::new("_CCA".into(), &aml::ONE),
            &aml::Name::new("_CRS".into(), &aml::ResourceTemplate::new(vec![&mem, &int])),
        ],
    ))
}

fn pci0(p: &ArmPcie, hotplug: Option<&crate::acpi::pcihp::PciHotplug>) -> Result<Vec<u8>, Error> {
    let bus = aml::AddressSpace::<u16>::new_bus_number(u16::from(p.bus.0), u16::from(p.bus.1));
    let mem32 = aml::AddressSpace::<u32>::new_memory(
        aml::AddressSpaceCacheable::NotCacheable,
        true,
        p.mmio32.0 as u32,
        (p.mmio32.0 + p.mmio32.1 - 1) as u32,
        None,
    );
    let mem64 = p.mmio64.map(|(b, s)| {
        aml::AddressSpace::<u64>::new_memory(
            aml::AddressSpaceCacheable::NotCacheable,
            true,
            b,
            b + s - 1,
            None,
        )
    });
    // PCI I/O space 0..size appears at CPU address `base`: a translation
    // offset of `base` (ACPI 6.5 6.4.3.5.1 _TRA).
    let io =
        p.io.map(|(b, s)| aml::AddressSpace::<u64>::new_io(0, s - 1, Some(b)));
    let mut res: Vec<&dyn Aml> = vec![&bus, &mem32];
    if let Some(r) = &mem64 {
        res.push(r);
    }
    if let Some(r) = &io {
        res.push(r);
    }
    let bbn = u16::from(p.bus.0);
    let prt = prt_package(&p.prt)?;
    let mut dev = Vec::new();
    for o in [
        &aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0A08")) as &dyn Aml,
        &aml::Name::new("_CID".into(), &aml::EISAName::new("PNP0A03")),
        &aml::Name::new("_SEG".into(), &aml::ZERO),
        &aml::Name::new("_BBN".into(), &bbn),
        &aml::Name::new("_UID".into(), &aml::ZERO),
        &aml::Name::new("_CCA".into(), &aml::ONE),
        &aml::Name::new("_CRS".into(), &aml::ResourceTemplate::new(res)),
        &aml::Name::new("_PRT".into(), &prt),
    ] {
        o.to_aml_bytes(&mut dev);
    }
    // QEMU's ACPI PCI hotplug (the same AML as on q35), or native.
    if let Some(h) = hotplug {
        dev.extend(crate::acpi::pcihp::pci0_objects(h)?);
    }
    dev.extend_from_slice(&pci_osc(hotplug.is_none()));
    // ECAM as a motherboard resource, so nothing else claims it.
    let (eb, es) = p.ecam;
    let ecam = aml::AddressSpace::<u64>::new_memory(
        aml::AddressSpaceCacheable::NotCacheable,
        true,
        eb,
        eb + es - 1,
        None,
    );
    aml::Device::new(
        "RES0".into(),
        vec![
            &aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0C02")),
            &aml::Name::new("_CRS".into(), &aml::ResourceTemplate::new(vec![&ecam])),
        ],
    )
    .to_aml_bytes(&mut dev);
    Ok(raw_device("PCI0", dev))
}

/// Generic Event Device (ACPI 6.5 5.6.9): its interrupt makes the OS call
/// _EVT, which reads QEMU's event selector once (the read clears it) and
/// dispatches each bit it knows: a power-down request becomes a power
/// button notification (0x80 = "button pressed", ACPI 6.5 4.8.3.1.1), a
/// memory hotplug event the DIMM scan, a PCI hotplug event the root
/// ports' scan.
fn ged(base: u64, irq: u32, mem_hotplug: bool, pci_hotplug: bool) -> Vec<u8> {
    let int = aml::Interrupt::new(true, true, false, false, irq);
    let region = aml::OpRegion::new(
        "EREG".into(),
        aml::OpRegionSpace::SystemMemory,
        &base,
        &GED_SEL_LEN,
    );
    let field = aml::Field::new(
        "EREG".into(),
        aml::FieldAccessType::DWord,
        aml::FieldLockRule::NoLock,
        aml::FieldUpdateRule::WriteAsZeroes,
        vec![aml::FieldEntry::Named(*b"ESEL", 32)],
    );
    let esel = aml::Path::new("ESEL");
    let read = aml::Store::new(&aml::Local(0), &esel);
    let pwr = aml::And::new(&aml::Local(1), &aml::Local(0), &GED_PWR_DOWN);
    let pressed: u8 = 0x80;
    let pwrb = aml::Path::new("PWRB");
    let notify = aml::Notify::new(&pwrb, &pressed);
    let is_pwr = aml::Equal::new(&aml::Local(1), &GED_PWR_DOWN);
    let if_pwr = aml::If::new(&is_pwr, vec![&notify]);
    let mem = aml::And::new(&aml::Local(1), &aml::Local(0), &GED_MEM_HOTPLUG);
    let scan = scan_call();
    let is_mem = aml::Equal::new(&aml::Local(1), &GED_MEM_HOTPLUG);
    let if_mem = aml::If::new(&is_mem, vec![&scan]);
    let mut body: Vec<&dyn Aml> = vec![&read, &pwr, &if_pwr];
    if mem_hotplug {
        body.extend([&mem as &dyn Aml, &if_mem]);
    }
    let pci = RawAml(crate::acpi::pcihp::GED_EVT.to_vec());
    if pci_hotplug {
        body.push(&pci);
    }
    let evt = aml::Method::new("_EVT".into(), 1, true, body);
    to_bytes(&aml::Device::new(
        "GED0".into(),
        vec![
            &aml::Name::new("_HID".into(), &"ACPI0013"),
            &aml::Name::new("_UID".into(), &aml::ZERO),
            &aml::Name::new("_CRS".into(), &aml::ResourceTemplate::new(vec![&int])),
            &region,
            &field,
            &evt,
        ],
    ))
}
