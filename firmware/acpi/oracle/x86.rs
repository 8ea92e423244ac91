//! The DSDT as the `acpi_tables` builders wrote it before the firmware
//! had its own AML writer (`acpi::emit`), kept as the reference the tests
//! compare the firmware's DSDT with, byte for byte.

use super::*;
use crate::acpi::oracle::{
    cpu_name, op, pci_osc, prt_package, raw_device, scan_call, IrqNoFlags, Op, RawAml,
};
use acpi_tables::aml;
use acpi_tables::Aml;
use alloc::vec;
use alloc::vec::Vec;

pub(super) fn dsdt(m: &Pc) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    let sb_children = sb_scope(m)?;
    body.extend_from_slice(&aml::Scope::raw("\\_SB_".into(), sb_children));
    // \_S5: SLP_TYP 0 for PM1a/PM1b (see module comment); S1-S4 are not
    // offered, the firmware has no resume path.
    aml::Name::new(
        "\\_S5_".into(),
        &aml::Package::new(vec![&aml::ZERO, &aml::ZERO, &aml::ZERO, &aml::ZERO]),
    )
    .to_aml_bytes(&mut body);
    // QEMU's GPE0 bits (hw/acpi/ich9.c, acpi_dev_interface.h): 1 = PCI
    // hotplug, 2 = CPU hotplug, 3 = memory hotplug.
    let cpu_scan = aml::MethodCall::new("\\_SB_.CSCN".into(), vec![]);
    let e02 = aml::Method::new("_E02".into(), 0, false, vec![&cpu_scan]);
    let mem_scan = scan_call();
    let e03 = aml::Method::new("_E03".into(), 0, false, vec![&mem_scan]);
    let e01 = RawAml(crate::acpi::pcihp::GPE.to_vec());
    let mut gpe: Vec<&dyn Aml> = Vec::new();
    if m.pci_hotplug.is_some() {
        gpe.push(&e01);
    }
    if m.cpu_hotplug_io.is_some() {
        gpe.push(&e02);
    }
    if m.mem_hotplug.is_some() {
        gpe.push(&e03);
    }
    if !gpe.is_empty() {
        aml::Scope::new("\\_GPE".into(), gpe).to_aml_bytes(&mut body);
    }
    Ok(table(*b"DSDT", DSDT_REVISION, &body))
}

/// Everything under \_SB: host bridge with LPC devices, motherboard
/// resources, processors (and the hotplug methods).
fn sb_scope(m: &Pc) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    out.extend_from_slice(&pci0(m)?);
    out.extend_from_slice(&motherboard(m));
    processors(m, &mut out)?;
    if let Some(mh) = &m.mem_hotplug {
        out.extend_from_slice(&crate::acpi::memhp::container(mh)?);
    }
    if m.tpm_tis {
        out.extend_from_slice(&tpm());
    }
    Ok(out)
}

fn pci0(m: &Pc) -> Result<Vec<u8>, Error> {
    let hid = aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0A08"));
    let cid = aml::Name::new("_CID".into(), &aml::EISAName::new("PNP0A03"));
    let adr = aml::Name::new("_ADR".into(), &aml::ZERO);
    let seg = aml::Name::new("_SEG".into(), &aml::ZERO);
    let bbn = aml::Name::new("_BBN".into(), &aml::ZERO);
    let uid = aml::Name::new("_UID".into(), &aml::ZERO);

    // Host bridge decode (QEMU q35): all buses, config ports 0xcf8-0xcff
    // consumed by the bridge, every other I/O port forwarded (below 0xcf8
    // the LPC/ISA devices, above 0xcff the PCI window), the legacy VGA hole
    // and the 32/64-bit MMIO windows.
    let bus = aml::AddressSpace::<u16>::new_bus_number(0, u16::from(m.mmcfg_end_bus));
    let cfg_ports = aml::IO::new(0xcf8, 0xcf8, 1, 8);
    let io_lo = aml::AddressSpace::<u16>::new_io(0x0000, 0x0cf7, None);
    let io_hi = aml::AddressSpace::<u16>::new_io(0x0d00, 0xffff, None);
    let vga = aml::AddressSpace::<u32>::new_memory(
        aml::AddressSpaceCacheable::Cacheable,
        true,
        0x000a_0000,
        0x000b_ffff,
        None,
    );
    let mem32 = aml::AddressSpace::<u32>::new_memory(
        aml::AddressSpaceCacheable::NotCacheable,
        true,
        m.pci_mem32.0 as u32,
        m.pci_mem32.1 as u32,
        None,
    );
    let mem64 = aml::AddressSpace::<u64>::new_memory(
        aml::AddressSpaceCacheable::NotCacheable,
        true,
        m.pci_mem64.0,
        m.pci_mem64.1,
        None,
    );
    let mut res: Vec<&dyn Aml> = vec![&bus, &cfg_ports, &io_lo, &io_hi, &vga, &mem32];
    if m.pci_mem64.0 <= m.pci_mem64.1 {
        res.push(&mem64);
    }
    let crs = aml::Name::new("_CRS".into(), &aml::ResourceTemplate::new(res));
    let routing: alloc::vec::Vec<crate::acpi::PrtEntry> = super::routing::q35()
        .map(|(device, pin, gsi)| crate::acpi::PrtEntry { device, pin, gsi })
        .collect();
    let prt = aml::Name::new("_PRT".into(), &prt_package(&routing)?);
    let osc_bytes = pci_osc(m.pci_hotplug.is_none());
    let lpc = lpc(m.i8042, m.pvpanic_io);

    let mut dev = Vec::new();
    for o in [&hid as &dyn Aml, &cid, &adr, &seg, &bbn, &uid, &crs, &prt] {
        o.to_aml_bytes(&mut dev);
    }
    dev.extend_from_slice(&osc_bytes);
    dev.extend_from_slice(&lpc);
    if let Some(h) = &m.pci_hotplug {
        dev.extend_from_slice(&crate::acpi::pcihp::pci0_objects(h)?);
    }
    Ok(raw_device("PCI0", dev))
}

/// The ICH9 LPC bridge (device 31 function 0) with the ISA devices Linux
/// needs described: COM1, the RTC and, when present, the i8042's keyboard
/// and mouse ports (so Linux need not probe for them blindly).
fn lpc(i8042: bool, pvpanic: Option<u16>) -> Vec<u8> {
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
fn tpm() -> Vec<u8> {
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
fn motherboard(m: &Pc) -> Vec<u8> {
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
/// Processor devices (ACPI 6.5 8.4: `Device` with _HID ACPI0007); with the
/// hotplug interface also the shared methods that drive it.
fn processors(m: &Pc, out: &mut Vec<u8>) -> Result<(), Error> {
    if let Some(io) = m.cpu_hotplug_io {
        methods(m, io, out)?;
    }
    for c in &m.cpus {
        let name = cpu_name(c.uid)?;
        let hid = aml::Name::new("_HID".into(), &"ACPI0007");
        let uid = aml::Name::new("_UID".into(), &c.uid);
        let mut dev = Vec::new();
        hid.to_aml_bytes(&mut dev);
        uid.to_aml_bytes(&mut dev);
        if m.cpu_hotplug_io.is_some() {
            cpu_methods(c, &mut dev);
        } else {
            // _STA (ACPI 6.5 6.3.7): present | enabled | shown | functioning
            // for enabled vCPUs; present and functioning, not enabled, for
            // the others (so the OS can enable them later).
            let sta: u8 = if c.enabled { 0x0f } else { 0x0d };
            aml::Name::new("_STA".into(), &sta).to_aml_bytes(&mut dev);
            aml::Name::new(
                "_MAT".into(),
                &aml::BufferData::new(lapic_entry(c, c.enabled)),
            )
            .to_aml_bytes(&mut dev);
        }
        out.extend_from_slice(&raw_device(&name, dev));
    }
    Ok(())
}

fn reg() -> aml::Path {
    "PRST".into()
}
fn lock() -> aml::Path {
    "CPLK".into()
}

/// Status byte field names (ACPI field units, bit offsets from +4).
const CPEN: &str = "CPEN";
const CINS: &str = "CINS";
const CRMV: &str = "CRMV";
const CEJ0: &str = "CEJ0";

/// _STA values (ACPI 6.5 6.3.7): nothing for a vCPU QEMU has not
/// plugged; present, enabled, shown and functioning once it is.
const STA_ABSENT: u8 = 0;
const STA_ENABLED: u8 = 0x0f;
/// Device Check / Eject Request notification codes (ACPI 6.5 5.6.6).
const DEVICE_CHECK: u8 = 1;
const EJECT_REQUEST: u8 = 3;

fn methods(m: &Pc, io: u16, out: &mut Vec<u8>) -> Result<(), Error> {
    let len = CPU_HOTPLUG_LEN;
    let region = aml::OpRegion::new(reg(), aml::OpRegionSpace::SystemIO, &io, &len);
    // Byte-wide view of the status/control and command registers.
    // WriteAsZeros: writing one flag must not write the others.
    let bytes = aml::Field::new(
        reg(),
        aml::FieldAccessType::Byte,
        aml::FieldLockRule::NoLock,
        aml::FieldUpdateRule::WriteAsZeroes,
        vec![
            aml::FieldEntry::Reserved(32),
            aml::FieldEntry::Named(*b"CPEN", 1),
            aml::FieldEntry::Named(*b"CINS", 1),
            aml::FieldEntry::Named(*b"CRMV", 1),
            aml::FieldEntry::Named(*b"CEJ0", 1),
            aml::FieldEntry::Reserved(4),
            aml::FieldEntry::Named(*b"CCMD", 8),
        ],
    );
    // Dword-wide view of the selector and command data registers.
    let dwords = aml::Field::new(
        reg(),
        aml::FieldAccessType::DWord,
        aml::FieldLockRule::NoLock,
        aml::FieldUpdateRule::Preserve,
        vec![
            aml::FieldEntry::Named(*b"CSEL", 32),
            aml::FieldEntry::Reserved(32),
            aml::FieldEntry::Named(*b"CDAT", 32),
        ],
    );
    let mutex = aml::Mutex::new(lock(), 0);
    for o in [&region as &dyn Aml, &bytes, &dwords, &mutex] {
        o.to_aml_bytes(out);
    }
    out.extend_from_slice(&cejx());
    out.extend_from_slice(&cost());
    out.extend_from_slice(&cntf(m)?);
    out.extend_from_slice(&cscn(m));
    Ok(())
}

fn acquire() -> aml::Acquire {
    aml::Acquire::new(lock(), 0xffff)
}
fn release() -> aml::Release {
    aml::Release::new(lock())
}

/// CEJX(uid): eject the vCPU (QEMU unplugs it synchronously) and return
/// its _STA value afterwards.
fn cejx() -> Vec<u8> {
    let sel = aml::Path::new("CSEL");
    let ej = aml::Path::new(CEJ0);
    let a = acquire();
    let select = aml::Store::new(&sel, &aml::Arg(0));
    let eject = aml::Store::new(&ej, &aml::ONE);
    let cpen = aml::Path::new(CPEN);
    let now = aml::Multiply::new(&aml::Local(0), &cpen, &STA_ENABLED);
    let r = release();
    let ret = aml::Return::new(&aml::Local(0));
    to_bytes(&aml::Method::new(
        "CEJX".into(),
        1,
        true,
        vec![&a, &select, &eject, &now, &r, &ret],
    ))
}

/// COST(uid, event, status): hand the OS's _OST result to QEMU.
fn cost() -> Vec<u8> {
    let sel = aml::Path::new("CSEL");
    let cmd = aml::Path::new("CCMD");
    let dat = aml::Path::new("CDAT");
    let a = acquire();
    let select = aml::Store::new(&sel, &aml::Arg(0));
    let ev_cmd: u8 = 1;
    let st_cmd: u8 = 2;
    let c1 = aml::Store::new(&cmd, &ev_cmd);
    let d1 = aml::Store::new(&dat, &aml::Arg(1));
    let c2 = aml::Store::new(&cmd, &st_cmd);
    let d2 = aml::Store::new(&dat, &aml::Arg(2));
    let r = release();
    to_bytes(&aml::Method::new(
        "COST".into(),
        3,
        true,
        vec![&a, &select, &c1, &d1, &c2, &d2, &r],
    ))
}

/// CNTF(uid, code, sta): set the processor device's _STA, then Notify it.
fn cntf(m: &Pc) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    for c in &m.cpus {
        let name = cpu_name(c.uid)?;
        let dev = aml::Path::new(&name);
        // `^Cxxx._STA`: ParentPrefixChar, then a dual name (ACPI 6.5
        // 20.2.2), which the crate's Path does not write.
        let mut target = Vec::from(*b"^\x2e");
        target.extend_from_slice(name.as_bytes());
        target.extend_from_slice(b"_STA");
        let target = RawAml(target);
        let set = aml::Store::new(&target, &aml::Arg(2));
        let notify = aml::Notify::new(&dev, &aml::Arg(1));
        let is = aml::Equal::new(&aml::Arg(0), &c.uid);
        aml::If::new(&is, vec![&set, &notify]).to_aml_bytes(&mut body);
    }
    let raw = RawAml(body);
    Ok(to_bytes(&aml::Method::new(
        "CNTF".into(),
        3,
        true,
        vec![&raw],
    )))
}

/// CSCN(): deliver every pending insert/remove event. Each round asks
/// QEMU for the first vCPU with an event (command 0 from selector 0),
/// notifies its device and clears that event, until none is left. The
/// round count is bounded (two events per vCPU plus one) so a
/// misbehaving VMM cannot make the OS loop forever.
fn cscn(m: &Pc) -> Vec<u8> {
    let sel = aml::Path::new("CSEL");
    let cmd = aml::Path::new("CCMD");
    let dat = aml::Path::new("CDAT");
    let ins = aml::Path::new(CINS);
    let rmv = aml::Path::new(CRMV);
    let (budget, more, found, sta) = (aml::Local(0), aml::Local(1), aml::Local(2), aml::Local(3));
    let rounds = (m.cpus.len() as u32) * 2 + 1;

    let a = acquire();
    let init_budget = aml::Store::new(&budget, &rounds);
    let init_more = aml::Store::new(&more, &aml::ONE);

    let stop = aml::Store::new(&more, &aml::ZERO);
    let spend = aml::Subtract::new(&budget, &budget, &aml::ONE);
    let select0 = aml::Store::new(&sel, &aml::ZERO);
    let next_event = aml::Store::new(&cmd, &aml::ZERO);
    let who = aml::Store::new(&found, &dat);
    let reselect = aml::Store::new(&sel, &found);
    let again = aml::Store::new(&more, &aml::ONE);

    let cpen = aml::Path::new(CPEN);
    let now = aml::Multiply::new(&sta, &cpen, &STA_ENABLED);
    let check = aml::MethodCall::new("CNTF".into(), vec![&found, &DEVICE_CHECK, &sta]);
    let clear_ins = aml::Store::new(&ins, &aml::ONE);
    let eject_req = aml::MethodCall::new("CNTF".into(), vec![&found, &EJECT_REQUEST, &sta]);
    let clear_rmv = aml::Store::new(&rmv, &aml::ONE);

    let has_ins = aml::Equal::new(&ins, &aml::ONE);
    let has_rmv = aml::Equal::new(&rmv, &aml::ONE);
    let on_ins = aml::If::new(
        &has_ins,
        vec![&who, &reselect, &now, &check, &clear_ins, &again],
    );
    let on_rmv = aml::If::new(
        &has_rmv,
        vec![&who, &reselect, &now, &eject_req, &clear_rmv, &again],
    );
    let else_rmv = aml::Else::new(vec![&on_rmv]);

    let going = aml::Equal::new(&more, &aml::ONE);
    let left = aml::GreaterThan::new(&budget, &aml::ZERO);
    let cond = Op::new(op::LAND, vec![&going, &left]);
    let round = aml::While::new(
        &cond,
        vec![&stop, &spend, &select0, &next_event, &on_ins, &else_rmv],
    );
    let r = release();
    to_bytes(&aml::Method::new(
        "CSCN".into(),
        0,
        true,
        vec![&a, &init_budget, &init_more, &round, &r],
    ))
}

/// The processor's _STA (a Name the AML keeps current), the constant
/// enabled `_MAT`, and `_EJ0` and `_OST` delegating to the shared methods.
fn cpu_methods(c: &Vcpu, out: &mut Vec<u8>) {
    let uid = c.uid;
    let sta = if c.enabled { STA_ENABLED } else { STA_ABSENT };
    aml::Name::new("_STA".into(), &sta).to_aml_bytes(out);

    let on = aml::BufferData::new(lapic_entry(c, true));
    aml::Name::new("_MAT".into(), &on).to_aml_bytes(out);

    let ej = aml::MethodCall::new("CEJX".into(), vec![&uid]);
    let own = aml::Path::new("_STA");
    let set = aml::Store::new(&own, &ej);
    aml::Method::new("_EJ0".into(), 1, false, vec![&set]).to_aml_bytes(out);

    let ost = aml::MethodCall::new("COST".into(), vec![&uid, &aml::Arg(0), &aml::Arg(1)]);
    aml::Method::new("_OST".into(), 3, false, vec![&ost]).to_aml_bytes(out);
}
