//! The constant parts of both DSDTs, built on the host by
//! `firmware/build/main.rs` with the `acpi_tables` builders and embedded in the
//! firmware as bytes (`acpi::emit` says why the firmware does not build
//! them at run time). The firmware writes what depends on the machine
//! around them with `acpi::emit`; the tests compare the result with the
//! whole DSDT built by `acpi_tables` (`acpi/oracle/`).
//!
//! The numbers from QEMU repeat the firmware's own constants (arm/mod.rs,
//! x86/mod.rs), which a build script cannot import; the byte-for-byte
//! tests catch any difference.

use super::{crs, path, to_bytes, DEVICE_CHECK, EJECT_REQUEST, STA_ENABLED};
use acpi_tables::aml;
use acpi_tables::Aml;

pub(super) fn concat(objs: &[&dyn Aml]) -> Vec<u8> {
    let mut v = Vec::new();
    for o in objs {
        o.to_aml_bytes(&mut v);
    }
    v
}

/// The PCI host bridge `_OSC` (PCI Firmware Specification 3.3 4.5): for the
/// PCI UUID it grants the OS native control of what QEMU's PCIe hardware
/// implements (native hotplug, PME, AER, PCIe capability structure; control
/// DWORD bits 0, 2, 3, 4), masking the rest and saying so in the status
/// DWORD; other UUIDs are answered "unrecognized UUID". Without
/// `native_hotplug` bit 0 is kept: the VMM hotplugs through ACPI (as QEMU's
/// own q35 `_OSC` does while its ACPI PCI hotplug is on,
/// hw/i386/acpi-build.c build_q35_osc_method).
pub fn osc(native_hotplug: bool) -> Vec<u8> {
    // Bits of the first (status) DWORD, ACPI 6.5 6.2.12.
    const UNRECOGNIZED_UUID: u8 = 1 << 2;
    const UNRECOGNIZED_REVISION: u8 = 1 << 3;
    const CAPABILITIES_MASKED: u8 = 1 << 4;
    // Control DWORD bit 0: PCI Express Native Hot Plug control.
    const NATIVE_HOTPLUG: u8 = 1 << 0;
    const GRANTABLE_ALL: u8 = 0x1d;
    let grantable = if native_hotplug {
        GRANTABLE_ALL
    } else {
        GRANTABLE_ALL & !NATIVE_HOTPLUG
    };
    let [cdw1, cdw2, cdw3] = ["CDW1", "CDW2", "CDW3"].map(path);
    // ToUUID (ACPI 6.5 19.6.142).
    let uuid = aml::Uuid::new("33DB4D5B-1FF7-401C-9657-7441C03DD766");
    let mk_cdw1 = aml::CreateDWordField::new(&cdw1, &aml::Arg(3), &aml::ZERO);
    let mk_cdw2 = aml::CreateDWordField::new(&cdw2, &aml::Arg(3), &4u8);
    let mk_cdw3 = aml::CreateDWordField::new(&cdw3, &aml::Arg(3), &8u8);
    let is_pci = aml::Equal::new(&aml::Arg(0), &uuid);
    let granted = aml::And::new(&aml::Local(0), &cdw3, &grantable);
    let bad_rev = aml::NotEqual::new(&aml::Arg(1), &aml::ONE);
    let set_bad_rev = aml::Or::new(&cdw1, &cdw1, &UNRECOGNIZED_REVISION);
    let if_bad_rev = aml::If::new(&bad_rev, vec![&set_bad_rev]);
    let masked = aml::NotEqual::new(&cdw3, &aml::Local(0));
    let set_masked = aml::Or::new(&cdw1, &cdw1, &CAPABILITIES_MASKED);
    let if_masked = aml::If::new(&masked, vec![&set_masked]);
    let store_granted = aml::Store::new(&cdw3, &aml::Local(0));
    let if_pci = aml::If::new(
        &is_pci,
        vec![
            &mk_cdw2,
            &mk_cdw3,
            &granted,
            &if_bad_rev,
            &if_masked,
            &store_granted,
        ],
    );
    let set_bad_uuid = aml::Or::new(&cdw1, &cdw1, &UNRECOGNIZED_UUID);
    let else_other = aml::Else::new(vec![&set_bad_uuid]);
    let ret = aml::Return::new(&aml::Arg(3));
    to_bytes(&aml::Method::new(
        "_OSC".into(),
        4,
        false,
        vec![&mk_cdw1, &if_pci, &else_other, &ret],
    ))
}

/// The memory hotplug scan the GPE and GED handlers call.
fn mem_scan() -> aml::MethodCall<'static> {
    aml::MethodCall::new("\\_SB_.MHPC.MSCN".into(), vec![])
}

// ---- virt (arm) ----

/// GED event bits (QEMU include/hw/acpi/generic_event_device.h):
/// ACPI_GED_MEM_HOTPLUG_EVT and ACPI_GED_PWR_DOWN_EVT.
const GED_MEM_HOTPLUG: u32 = 0x1;
const GED_PWR_DOWN: u32 = 0x2;

/// The GED's event selector field over the region EREG the firmware
/// declares (QEMU hw/acpi/generic_event_device.c: one dword, cleared when
/// read).
pub fn ged_field() -> Vec<u8> {
    to_bytes(&aml::Field::new(
        "EREG".into(),
        aml::FieldAccessType::DWord,
        aml::FieldLockRule::NoLock,
        aml::FieldUpdateRule::WriteAsZeroes,
        vec![aml::FieldEntry::Named(*b"ESEL", 32)],
    ))
}

/// The start of the GED's `_EVT`: read the selector once into Local0 (the
/// read clears it), then a power-down request becomes a power button
/// notification (0x80 = "button pressed", ACPI 6.5 4.8.3.1.1).
pub fn ged_evt_power() -> Vec<u8> {
    let esel = path("ESEL");
    let read = aml::Store::new(&aml::Local(0), &esel);
    let pwr = aml::And::new(&aml::Local(1), &aml::Local(0), &GED_PWR_DOWN);
    let pressed: u8 = 0x80;
    let pwrb = path("PWRB");
    let notify = aml::Notify::new(&pwrb, &pressed);
    let is_pwr = aml::Equal::new(&aml::Local(1), &GED_PWR_DOWN);
    let if_pwr = aml::If::new(&is_pwr, vec![&notify]);
    concat(&[&read, &pwr, &if_pwr])
}

/// The `_EVT` part for a memory hotplug event: the DIMM scan.
pub fn ged_evt_memory() -> Vec<u8> {
    let mem = aml::And::new(&aml::Local(1), &aml::Local(0), &GED_MEM_HOTPLUG);
    let scan = mem_scan();
    let is_mem = aml::Equal::new(&aml::Local(1), &GED_MEM_HOTPLUG);
    let if_mem = aml::If::new(&is_mem, vec![&scan]);
    concat(&[&mem, &if_mem])
}

/// The power button the GED notifies (PNP0C0C, ACPI 6.5 4.8.3.1.1).
pub fn pwrb() -> Vec<u8> {
    to_bytes(&aml::Device::new(
        "PWRB".into(),
        vec![
            &aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0C0C")),
            &aml::Name::new("_UID".into(), &aml::ZERO),
        ],
    ))
}

/// The PL031's `_DSD`: device properties (ACPI 6.5 6.2.5, the _DSD
/// device properties UUID) with the DT "compatible", for PRP0001.
pub fn rtc_dsd() -> Vec<u8> {
    let uuid = aml::Uuid::new("DAFFD814-6EBA-4D8C-8A91-BC9BBF4AA301");
    let compatible = aml::Package::new(vec![&"compatible", &"arm,pl031"]);
    let props = aml::Package::new(vec![&compatible]);
    let dsd = aml::Package::new(vec![&uuid, &props]);
    to_bytes(&aml::Name::new("_DSD".into(), &dsd))
}

// ---- q35 (x86) ----

/// `\_S5`: SLP_TYP 0 for PM1a/PM1b (x86/mod.rs says why).
pub fn s5() -> Vec<u8> {
    to_bytes(&aml::Name::new(
        "\\_S5_".into(),
        &aml::Package::new(vec![&aml::ZERO, &aml::ZERO, &aml::ZERO, &aml::ZERO]),
    ))
}

/// `\_GPE._E02` (QEMU's GPE0 bit 2, CPU hotplug): the vCPU scan.
pub fn gpe_cpu() -> Vec<u8> {
    let scan = aml::MethodCall::new("\\_SB_.CSCN".into(), vec![]);
    to_bytes(&aml::Method::new("_E02".into(), 0, false, vec![&scan]))
}

/// `\_GPE._E03` (QEMU's GPE0 bit 3, memory hotplug): the DIMM scan.
pub fn gpe_memory() -> Vec<u8> {
    let scan = mem_scan();
    to_bytes(&aml::Method::new("_E03".into(), 0, false, vec![&scan]))
}

/// Short IRQ descriptor without flags (edge, active-high, exclusive: the
/// ISA default), ACPI 6.5 6.4.2.1: tag 0x22, 16-bit IRQ mask.
struct IrqNoFlags(u8);

impl Aml for IrqNoFlags {
    fn to_aml_bytes(&self, sink: &mut dyn acpi_tables::AmlSink) {
        sink.byte(0x22);
        sink.word(1u16 << (self.0 & 15));
    }
}

/// The LPC bridge's `_ADR` (device 0x1f, function 0, ACPI 6.5 6.1.1) and
/// the ISA devices every q35 has: COM1 and the RTC.
pub fn lpc_fixed() -> Vec<u8> {
    let adr = aml::Name::new("_ADR".into(), &0x001f_0000u32);
    let mut out = to_bytes(&adr);
    out.extend(isa_fixed());
    out
}

/// COM1 and the RTC, the ISA devices every QEMU PC board has (q35's LPC
/// bridge, pc's PIIX3).
pub fn isa_fixed() -> Vec<u8> {
    let com_hid = aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0501"));
    let com_uid = aml::Name::new("_UID".into(), &aml::ONE);
    let com_io = aml::IO::new(0x3f8, 0x3f8, 0, 8);
    let com_irq = IrqNoFlags(4);
    let com_crs = crs(vec![&com_io, &com_irq]);
    let com1 = aml::Device::new("COM1".into(), vec![&com_hid, &com_uid, &com_crs]);

    let rtc_hid = aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0B00"));
    let rtc_io = aml::IO::new(0x70, 0x70, 1, 8);
    let rtc_irq = IrqNoFlags(8);
    let rtc_crs = crs(vec![&rtc_io, &rtc_irq]);
    let rtc = aml::Device::new("RTC_".into(), vec![&rtc_hid, &rtc_crs]);
    concat(&[&com1, &rtc])
}

/// The i8042: data 0x60, command/status 0x64, keyboard IRQ 1, mouse IRQ
/// 12 (the PC/AT assignments QEMU's i8042 model uses).
pub fn lpc_i8042() -> Vec<u8> {
    let kbd_hid = aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0303"));
    let kbd_data = aml::IO::new(0x60, 0x60, 1, 1);
    let kbd_cmd = aml::IO::new(0x64, 0x64, 1, 1);
    let kbd_irq = IrqNoFlags(1);
    let kbd_crs = crs(vec![&kbd_data, &kbd_cmd, &kbd_irq]);
    let kbd = aml::Device::new("KBD_".into(), vec![&kbd_hid, &kbd_crs]);
    let mou_hid = aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0F13"));
    let mou_irq = IrqNoFlags(12);
    let mou_crs = crs(vec![&mou_irq]);
    let mou = aml::Device::new("MOU_".into(), vec![&mou_hid, &mou_crs]);
    concat(&[&kbd, &mou])
}

/// The TPM's TIS interface (TCG PC Client Platform TPM Profile: MMIO at
/// 0xFED40000, five 4 KiB localities; QEMU hw/tpm/tpm_tis_isa.c), under its
/// ACPI ID MSFT0101 (TCG ACPI specification), which Linux's tpm_tis binds.
pub fn tpm_tis() -> Vec<u8> {
    const TIS_BASE: u32 = 0xfed4_0000;
    const TIS_LEN: u32 = 0x5000;
    let mem = aml::Memory32Fixed::new(true, TIS_BASE, TIS_LEN);
    to_bytes(&aml::Device::new(
        "TPM_".into(),
        vec![
            &aml::Name::new("_HID".into(), &"MSFT0101"),
            &crs(vec![&mem]),
        ],
    ))
}

// The q35 CPU hotplug AML (x86/hotplug.rs describes the register block).

fn acquire() -> aml::Acquire {
    aml::Acquire::new(path("CPLK"), 0xffff)
}
fn release() -> aml::Release {
    aml::Release::new(path("CPLK"))
}

/// The selected vCPU's _STA value into `target`: `CPEN * 0x0f`, 0 for a
/// vCPU QEMU has not plugged (as QEMU's own CSTA, hw/acpi/cpu.c), 0x0f
/// (present, enabled, shown, functioning; ACPI 6.5 6.3.7) for one it has.
fn status(target: &dyn Aml) -> Vec<u8> {
    to_bytes(&aml::Multiply::new(target, &path("CPEN"), &STA_ENABLED))
}

/// Bytes already encoded, as one AML term.
struct Raw(Vec<u8>);

impl Aml for Raw {
    fn to_aml_bytes(&self, sink: &mut dyn acpi_tables::AmlSink) {
        sink.vec(&self.0);
    }
}

/// What follows the region PRST the firmware declares: its fields, the
/// lock CPLK, CEJX and COST. Each processor's _STA is a Name the AML keeps
/// current (`x86/hotplug.rs` says why): the firmware writes the value at
/// boot, CSCN before it notifies a change, CEJX's result after an eject.
pub fn cpuhp_methods() -> Vec<u8> {
    // Byte-wide view of the status/control and command registers.
    // WriteAsZeros: writing one flag must not write the others.
    let bytes = aml::Field::new(
        path("PRST"),
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
        path("PRST"),
        aml::FieldAccessType::DWord,
        aml::FieldLockRule::NoLock,
        aml::FieldUpdateRule::Preserve,
        vec![
            aml::FieldEntry::Named(*b"CSEL", 32),
            aml::FieldEntry::Reserved(32),
            aml::FieldEntry::Named(*b"CDAT", 32),
        ],
    );
    let mutex = aml::Mutex::new(path("CPLK"), 0);
    let [sel, ej, cmd, dat] = ["CSEL", "CEJ0", "CCMD", "CDAT"].map(path);

    // CEJX(uid): eject the vCPU (QEMU unplugs it synchronously) and
    // return its _STA value afterwards (`status`).
    let a = acquire();
    let r = release();
    let select = aml::Store::new(&sel, &aml::Arg(0));
    let eject = aml::Store::new(&ej, &aml::ONE);
    let now = Raw(status(&aml::Local(0)));
    let ret = aml::Return::new(&aml::Local(0));
    let cejx = aml::Method::new(
        "CEJX".into(),
        1,
        true,
        vec![&a, &select, &eject, &now, &r, &ret],
    );

    // COST(uid, event, status): hand the OS's _OST result to QEMU
    // (commands 1 and 2 take the event and the status).
    let ev_cmd: u8 = 1;
    let st_cmd: u8 = 2;
    let c1 = aml::Store::new(&cmd, &ev_cmd);
    let d1 = aml::Store::new(&dat, &aml::Arg(1));
    let c2 = aml::Store::new(&cmd, &st_cmd);
    let d2 = aml::Store::new(&dat, &aml::Arg(2));
    let cost = aml::Method::new(
        "COST".into(),
        3,
        true,
        vec![&a, &select, &c1, &d1, &c2, &d2, &r],
    );
    concat(&[&bytes, &dwords, &mutex, &cejx, &cost])
}

/// CSCN's body up to its round budget: take the lock, then StoreOp (ACPI
/// 6.5 20.2.5.4 DefStore: operand, then target). The firmware writes the
/// budget (two events per vCPU plus one) between this and
/// [`cscn_tail`].
pub fn cscn_head() -> Vec<u8> {
    let mut v = to_bytes(&acquire());
    v.push(0x70);
    v
}

/// The rest of CSCN(): each round asks QEMU for the first vCPU with an
/// event (command 0 from selector 0), selects it, hands its _STA value
/// with the Notify code to CNTF and clears that event, until none is left
/// or the budget is spent, so a misbehaving VMM cannot make the OS loop
/// forever.
pub fn cscn_tail() -> Vec<u8> {
    let [sel, cmd, dat, ins, rmv] = ["CSEL", "CCMD", "CDAT", "CINS", "CRMV"].map(path);
    let (budget, more, found, sta) = (aml::Local(0), aml::Local(1), aml::Local(2), aml::Local(3));
    let init_more = aml::Store::new(&more, &aml::ONE);
    let stop = aml::Store::new(&more, &aml::ZERO);
    let spend = aml::Subtract::new(&budget, &budget, &aml::ONE);
    let select0 = aml::Store::new(&sel, &aml::ZERO);
    let next_event = aml::Store::new(&cmd, &aml::ZERO);
    let who = aml::Store::new(&found, &dat);
    let reselect = aml::Store::new(&sel, &found);
    let again = aml::Store::new(&more, &aml::ONE);
    let now = Raw(status(&sta));
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
    let cond = LAnd(&going, &left);
    let round = aml::While::new(
        &cond,
        vec![&stop, &spend, &select0, &next_event, &on_ins, &else_rmv],
    );
    let mut v = vec![0x60]; // Local0, the budget's target
    v.extend(concat(&[&init_more, &round, &release()]));
    v
}

/// LAnd (ACPI 6.5 20.2.5.4 DefLAnd, LandOp 0x90), which the crate has no
/// type for.
struct LAnd<'a>(&'a dyn Aml, &'a dyn Aml);

impl Aml for LAnd<'_> {
    fn to_aml_bytes(&self, sink: &mut dyn acpi_tables::AmlSink) {
        sink.byte(0x90);
        self.0.to_aml_bytes(sink);
        self.1.to_aml_bytes(sink);
    }
}
