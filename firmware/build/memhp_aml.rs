//! The constant part of the memory hotplug AML (`acpi::memhp`), built on
//! the host by `firmware/build/main.rs` with the `acpi_tables` builders and
//! embedded in the firmware as bytes: building it at run time would cost
//! the image several KiB of builder code for output that never changes.
//! The firmware only adds what depends on the machine (the register block's
//! address, the slot count and one device per slot, patched from
//! [`slot_template`]).

use super::{path, to_bytes, DEVICE_CHECK, EJECT_REQUEST, STA_ENABLED};
use acpi_tables::aml;
use acpi_tables::Aml;

/// The status byte's offset in the register block.
const STATUS: u8 = 0x14;
/// The slot number the template is built for; its encoding (BytePrefix
/// 0xAA) and its name (MPAA) are what the firmware patches.
pub const TEMPLATE_SLOT: u32 = 0xaa;

struct Raw(Vec<u8>);
impl Aml for Raw {
    fn to_aml_bytes(&self, sink: &mut dyn acpi_tables::AmlSink) {
        sink.vec(&self.0);
    }
}

/// `\_SB.MHPC`'s identity: a generic container (ACPI 6.5 9.10) that owns
/// the register block.
pub fn ident() -> Vec<u8> {
    let mut body = Vec::new();
    aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0A06")).to_aml_bytes(&mut body);
    aml::Name::new("_UID".into(), &"Memory hotplug").to_aml_bytes(&mut body);
    body
}

/// What follows the region the firmware declares: the register fields,
/// the lock and the methods. MSCN walks `MDNR` slots, a name the firmware
/// declares.
pub fn methods() -> Vec<u8> {
    let mut body = Vec::new();
    fields(&mut body);
    aml::Mutex::new(path("MLCK"), 0).to_aml_bytes(&mut body);
    for m in [mrst(), mcrs(), mpxm(), most(), mej0(), mscn()] {
        body.extend_from_slice(&m);
    }
    body
}

/// One slot's device, built for slot [`TEMPLATE_SLOT`].
pub fn slot_template() -> Vec<u8> {
    let dev = Raw(slot_device(TEMPLATE_SLOT));
    to_bytes(&aml::Device::new("MPAA".into(), vec![&dev]))
}

fn fields(out: &mut Vec<u8>) {
    use aml::FieldEntry::{Named, Reserved};
    let dword = |entries| {
        aml::Field::new(
            path("MHPR"),
            aml::FieldAccessType::DWord,
            aml::FieldLockRule::NoLock,
            aml::FieldUpdateRule::Preserve,
            entries,
        )
    };
    // Read side, then the write side over the same offsets.
    dword(vec![
        Named(*b"MRBL", 32),
        Named(*b"MRBH", 32),
        Named(*b"MRLL", 32),
        Named(*b"MRLH", 32),
        Named(*b"MPX_", 32),
    ])
    .to_aml_bytes(out);
    dword(vec![
        Named(*b"MSEL", 32),
        Named(*b"MOEV", 32),
        Named(*b"MOSC", 32),
    ])
    .to_aml_bytes(out);
    // WriteAsZeros: setting one control bit must not set the others.
    aml::Field::new(
        path("MHPR"),
        aml::FieldAccessType::Byte,
        aml::FieldLockRule::NoLock,
        aml::FieldUpdateRule::WriteAsZeroes,
        vec![
            Reserved(usize::from(STATUS) * 8),
            Named(*b"MES_", 1),
            Named(*b"MINS", 1),
            Named(*b"MRMV", 1),
            Named(*b"MEJ_", 1),
        ],
    )
    .to_aml_bytes(out);
}

/// A serialized method whose `body` runs under MLCK; `ret` is returned
/// after the lock is released.
fn locked(name: &str, args: u8, body: Vec<&dyn Aml>, ret: Option<&dyn Aml>) -> Vec<u8> {
    let a = aml::Acquire::new(path("MLCK"), 0xffff);
    let r = aml::Release::new(path("MLCK"));
    let mut all: Vec<&dyn Aml> = vec![&a];
    all.extend(body);
    all.push(&r);
    let ret = ret.map(aml::Return::new);
    if let Some(ret) = &ret {
        all.push(ret);
    }
    to_bytes(&aml::Method::new(name.into(), args, true, all))
}

/// MRST(slot): the DIMM device's _STA.
fn mrst() -> Vec<u8> {
    let [msel_, mes_] = ["MSEL", "MES_"].map(path);
    let sel = aml::Store::new(&msel_, &aml::Arg(0));
    let off = aml::Store::new(&aml::Local(0), &aml::ZERO);
    let on = aml::Store::new(&aml::Local(0), &STA_ENABLED);
    let is_on = aml::Equal::new(&mes_, &aml::ONE);
    let if_on = aml::If::new(&is_on, vec![&on]);
    locked("MRST", 1, vec![&sel, &off, &if_on], Some(&aml::Local(0)))
}

/// MCRS(slot): the DIMM device's _CRS, a QWordMemory descriptor filled
/// from the base and length registers (ACPI 6.5 6.4.3.5.1: minimum at byte
/// 14, maximum at 22, length at 38).
fn mcrs() -> Vec<u8> {
    let [msel_, mina_, maxa_, lena_, mr64_, mrbh_, mrbl_, mrlh_, mrll_] = [
        "MSEL", "MINA", "MAXA", "LENA", "MR64", "MRBH", "MRBL", "MRLH", "MRLL",
    ]
    .map(path);
    let tmpl = aml::AddressSpace::<u64>::new_memory(
        aml::AddressSpaceCacheable::Cacheable,
        true,
        0,
        0,
        None,
    );
    let rt = aml::ResourceTemplate::new(vec![&tmpl]);
    let name = aml::Name::new("MR64".into(), &rt);
    let min = aml::CreateQWordField::new(&mina_, &mr64_, &14u8);
    let max = aml::CreateQWordField::new(&maxa_, &mr64_, &22u8);
    let len = aml::CreateQWordField::new(&lena_, &mr64_, &38u8);
    let sel = aml::Store::new(&msel_, &aml::Arg(0));
    let hi = aml::ShiftLeft::new(&aml::Local(0), &mrbh_, &32u8);
    let base = aml::Or::new(&mina_, &aml::Local(0), &mrbl_);
    let lhi = aml::ShiftLeft::new(&aml::Local(1), &mrlh_, &32u8);
    let length = aml::Or::new(&lena_, &aml::Local(1), &mrll_);
    let end = aml::Add::new(&aml::Local(2), &mina_, &lena_);
    let last = aml::Subtract::new(&maxa_, &aml::Local(2), &aml::ONE);
    locked(
        "MCRS",
        1,
        vec![
            &name, &min, &max, &len, &sel, &hi, &base, &lhi, &length, &end, &last,
        ],
        Some(&mr64_),
    )
}

/// MPXM(slot): the DIMM's proximity domain.
fn mpxm() -> Vec<u8> {
    let [msel_, mpx_] = ["MSEL", "MPX_"].map(path);
    let sel = aml::Store::new(&msel_, &aml::Arg(0));
    let read = aml::Store::new(&aml::Local(0), &mpx_);
    locked("MPXM", 1, vec![&sel, &read], Some(&aml::Local(0)))
}

/// MOST(slot, event, status): hand the OS's _OST result to QEMU.
fn most() -> Vec<u8> {
    let [msel_, moev_, mosc_] = ["MSEL", "MOEV", "MOSC"].map(path);
    let sel = aml::Store::new(&msel_, &aml::Arg(0));
    let ev = aml::Store::new(&moev_, &aml::Arg(1));
    let st = aml::Store::new(&mosc_, &aml::Arg(2));
    locked("MOST", 3, vec![&sel, &ev, &st], None)
}

/// MEJ0(slot): eject the DIMM (QEMU unplugs it).
fn mej0() -> Vec<u8> {
    let [msel_, mej_] = ["MSEL", "MEJ_"].map(path);
    let sel = aml::Store::new(&msel_, &aml::Arg(0));
    let ej = aml::Store::new(&mej_, &aml::ONE);
    locked("MEJ0", 1, vec![&sel, &ej], None)
}

/// MSCN(): for every slot with a pending event, notify its device (Device
/// Check on insert, Eject Request on remove) and clear the event.
fn mscn() -> Vec<u8> {
    let [msel_, mins_, mrmv_] = ["MSEL", "MINS", "MRMV"].map(path);
    let i = aml::Local(0);
    let init = aml::Store::new(&i, &aml::ZERO);
    let sel = aml::Store::new(&msel_, &i);
    let ins = aml::Equal::new(&mins_, &aml::ONE);
    let check = aml::MethodCall::new("MTFY".into(), vec![&i, &DEVICE_CHECK]);
    let clear_ins = aml::Store::new(&mins_, &aml::ONE);
    let on_ins = aml::If::new(&ins, vec![&check, &clear_ins]);
    let rmv = aml::Equal::new(&mrmv_, &aml::ONE);
    let eject = aml::MethodCall::new("MTFY".into(), vec![&i, &EJECT_REQUEST]);
    let clear_rmv = aml::Store::new(&mrmv_, &aml::ONE);
    let on_rmv = aml::If::new(&rmv, vec![&eject, &clear_rmv]);
    let else_rmv = aml::Else::new(vec![&on_rmv]);
    let next = aml::Add::new(&i, &i, &aml::ONE);
    let mdnr = path("MDNR");
    let more = aml::LessThan::new(&i, &mdnr);
    let each = aml::While::new(&more, vec![&sel, &on_ins, &else_rmv, &next]);
    locked("MSCN", 0, vec![&init, &each], None)
}

/// One DIMM slot: a memory device (ACPI 6.5 9.12, PNP0C80) whose methods
/// ask the register block about its slot.
fn slot_device(slot: u32) -> Vec<u8> {
    let mut d = Vec::new();
    aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0C80")).to_aml_bytes(&mut d);
    aml::Name::new("_UID".into(), &slot).to_aml_bytes(&mut d);
    let call = |name: &str| {
        let c = aml::MethodCall::new(name.into(), vec![&slot]);
        Raw(to_bytes(&aml::Return::new(&c)))
    };
    let sta = call("MRST");
    aml::Method::new("_STA".into(), 0, false, vec![&sta]).to_aml_bytes(&mut d);
    let crs = call("MCRS");
    aml::Method::new("_CRS".into(), 0, true, vec![&crs]).to_aml_bytes(&mut d);
    // The DIMM's proximity domain (its `-device pc-dimm,node=`), for the
    // OS to put hot-added memory in the right NUMA node (ACPI 6.5 6.2.14).
    let pxm = call("MPXM");
    aml::Method::new("_PXM".into(), 0, false, vec![&pxm]).to_aml_bytes(&mut d);
    let ost = aml::MethodCall::new("MOST".into(), vec![&slot, &aml::Arg(0), &aml::Arg(1)]);
    aml::Method::new("_OST".into(), 3, false, vec![&ost]).to_aml_bytes(&mut d);
    let ej = aml::MethodCall::new("MEJ0".into(), vec![&slot]);
    aml::Method::new("_EJ0".into(), 1, false, vec![&ej]).to_aml_bytes(&mut d);
    d
}
