//! The q35 processor devices and the AML that drives QEMU's CPU hotplug
//! register block, so vCPUs can be plugged and unplugged at run time.
//!
//! The register block (QEMU
//! docs/specs/acpi_cpu_hotplug.rst, "modern" interface):
//!
//! - +0 (write, dword) selector: the vCPU index (= our UID) later accesses
//!   refer to;
//! - +4 (read, byte) status: bit 0 enabled, bit 1 insert event, bit 2
//!   remove event; (write, byte) control: bit 1 clears the insert event,
//!   bit 2 clears the remove event, bit 3 ejects the selected vCPU;
//! - +5 (write, byte) command: 0 = select the next vCPU with a pending
//!   event at or after the selector, 1/2 = the next data write is the
//!   _OST event/status;
//! - +8 (dword) command data: after command 0 the selector of the vCPU
//!   found; the _OST values for commands 1 and 2.
//!
//! Names under \_SB: region PRST, lock CPLK, CSTA(uid) -> _STA value,
//! CEJX(uid) ejects, COST(uid, event, status) forwards _OST, CNTF(uid,
//! code) notifies the processor device, CSCN() handles GPE0 bit 2.

use super::*;
use crate::acpi::{op, Op};

/// Processor devices (ACPI 6.5 8.4: `Device` with _HID ACPI0007); with the
/// hotplug interface also the shared methods that drive it.
pub(super) fn processors(m: &Q35, out: &mut Vec<u8>) -> Result<(), Error> {
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
            let ret = aml::Return::new(&sta);
            aml::Method::new("_STA".into(), 0, false, vec![&ret]).to_aml_bytes(&mut dev);
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

/// _STA values (ACPI 6.5 6.3.7): present, shown, functioning, plus
/// enabled when QEMU says the vCPU is plugged.
const STA_DISABLED: u8 = 0x0d;
const STA_ENABLED: u8 = 0x0f;
/// Device Check / Eject Request notification codes (ACPI 6.5 5.6.6).
const DEVICE_CHECK: u8 = 1;
const EJECT_REQUEST: u8 = 3;

pub(super) fn methods(m: &Q35, io: u16, out: &mut Vec<u8>) -> Result<(), Error> {
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
    out.extend_from_slice(&csta());
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

/// CSTA(uid): the processor's _STA.
fn csta() -> Vec<u8> {
    let sel = aml::Path::new("CSEL");
    let cpen = aml::Path::new(CPEN);
    let a = acquire();
    let select = aml::Store::new(&sel, &aml::Arg(0));
    let dis = aml::Store::new(&aml::Local(0), &STA_DISABLED);
    let en = aml::Store::new(&aml::Local(0), &STA_ENABLED);
    let is_en = aml::Equal::new(&cpen, &aml::ONE);
    let if_en = aml::If::new(&is_en, vec![&en]);
    let r = release();
    let ret = aml::Return::new(&aml::Local(0));
    to_bytes(&aml::Method::new(
        "CSTA".into(),
        1,
        true,
        vec![&a, &select, &dis, &if_en, &r, &ret],
    ))
}

/// CEJX(uid): eject the vCPU (QEMU unplugs it synchronously).
fn cejx() -> Vec<u8> {
    let sel = aml::Path::new("CSEL");
    let ej = aml::Path::new(CEJ0);
    let a = acquire();
    let select = aml::Store::new(&sel, &aml::Arg(0));
    let eject = aml::Store::new(&ej, &aml::ONE);
    let r = release();
    to_bytes(&aml::Method::new(
        "CEJX".into(),
        1,
        true,
        vec![&a, &select, &eject, &r],
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

/// CNTF(uid, code): Notify the processor device with that UID.
fn cntf(m: &Q35) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    for c in &m.cpus {
        let dev = aml::Path::new(&cpu_name(c.uid)?);
        let notify = aml::Notify::new(&dev, &aml::Arg(1));
        let is = aml::Equal::new(&aml::Arg(0), &c.uid);
        aml::If::new(&is, vec![&notify]).to_aml_bytes(&mut body);
    }
    let raw = RawAml(body);
    Ok(to_bytes(&aml::Method::new(
        "CNTF".into(),
        2,
        true,
        vec![&raw],
    )))
}

/// CSCN(): deliver every pending insert/remove event. Each round asks
/// QEMU for the first vCPU with an event (command 0 from selector 0),
/// notifies its device and clears that event, until none is left. The
/// round count is bounded (two events per vCPU plus one) so a
/// misbehaving VMM cannot make the OS loop forever.
fn cscn(m: &Q35) -> Vec<u8> {
    let sel = aml::Path::new("CSEL");
    let cmd = aml::Path::new("CCMD");
    let dat = aml::Path::new("CDAT");
    let ins = aml::Path::new(CINS);
    let rmv = aml::Path::new(CRMV);
    let (budget, more, found) = (aml::Local(0), aml::Local(1), aml::Local(2));
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

    let check = aml::MethodCall::new("CNTF".into(), vec![&found, &DEVICE_CHECK]);
    let clear_ins = aml::Store::new(&ins, &aml::ONE);
    let eject_req = aml::MethodCall::new("CNTF".into(), vec![&found, &EJECT_REQUEST]);
    let clear_rmv = aml::Store::new(&rmv, &aml::ONE);

    let has_ins = aml::Equal::new(&ins, &aml::ONE);
    let has_rmv = aml::Equal::new(&rmv, &aml::ONE);
    let on_ins = aml::If::new(&has_ins, vec![&who, &check, &reselect, &clear_ins, &again]);
    let on_rmv = aml::If::new(
        &has_rmv,
        vec![&who, &eject_req, &reselect, &clear_rmv, &again],
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

/// Per-processor methods delegating to the shared ones.
pub(super) fn cpu_methods(c: &Vcpu, out: &mut Vec<u8>) {
    let uid = c.uid;
    let sta_call = aml::MethodCall::new("\\_SB_.CSTA".into(), vec![&uid]);
    let ret = aml::Return::new(&sta_call);
    aml::Method::new("_STA".into(), 0, false, vec![&ret]).to_aml_bytes(out);

    // _MAT reflects the current state: an enabled Local APIC entry once
    // QEMU reports the vCPU plugged (Linux maps a hot-added CPU from
    // it and rejects entries without the enabled flag).
    let on = aml::BufferData::new(lapic_entry(c, true));
    let off = aml::BufferData::new(lapic_entry(c, false));
    let sta_call = aml::MethodCall::new("\\_SB_.CSTA".into(), vec![&uid]);
    let enabled = aml::And::new(&aml::Local(0), &sta_call, &2u8);
    let is_en = aml::Equal::new(&aml::Local(0), &2u8);
    let ret_on = aml::Return::new(&on);
    let if_en = aml::If::new(&is_en, vec![&ret_on]);
    let ret_off = aml::Return::new(&off);
    aml::Method::new("_MAT".into(), 0, false, vec![&enabled, &if_en, &ret_off]).to_aml_bytes(out);

    let ej = aml::MethodCall::new("\\_SB_.CEJX".into(), vec![&uid]);
    aml::Method::new("_EJ0".into(), 1, false, vec![&ej]).to_aml_bytes(out);

    let ost = aml::MethodCall::new("\\_SB_.COST".into(), vec![&uid, &aml::Arg(0), &aml::Arg(1)]);
    aml::Method::new("_OST".into(), 3, false, vec![&ost]).to_aml_bytes(out);
}

/// Already-serialized AML as a child object.
pub(super) struct RawAml(pub(super) Vec<u8>);
impl Aml for RawAml {
    fn to_aml_bytes(&self, sink: &mut dyn acpi_tables::AmlSink) {
        sink.vec(&self.0);
    }
}
