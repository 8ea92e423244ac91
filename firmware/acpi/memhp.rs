//! Memory hotplug (pc-dimm) through QEMU's memory hotplug register block,
//! for both q35 (I/O ports, GPE0 bit 3) and virt (MMIO, GED event bit 0).
//!
//! The block (QEMU docs/specs/acpi_mem_hotplug.rst, hw/acpi/memory_hotplug.c),
//! 24 bytes, little-endian:
//! - reads: +0/+4 the selected DIMM's base (low/high dword), +8/+12 its
//!   length, +16 its proximity domain, +20 (byte) status: bit 0 enabled,
//!   bit 1 insert event, bit 2 remove event;
//! - writes: +0 the slot selector, +4/+8 the `_OST` event and status, +20
//!   (byte) control: bit 1 clears the insert event, bit 2 the remove event,
//!   bit 3 ejects the DIMM (QEMU then emits DEVICE_DELETED).
//! - every other byte reads as all ones while the selector names a slot and
//!   as zero past the last slot, which is how the slots are counted.
//!
//! AML under `\_SB.MHPC` (a generic container that claims the block):
//! region MHPR, mutex MLCK, helpers MRST(slot) -> _STA, MCRS(slot) -> _CRS, MOST(slot, event, status), MEJ0(slot), MTFY(slot,
//! code) and MSCN(), the event handler; one PNP0C80 device MPxx per slot.

use super::{raw_device, to_bytes, Error};
use acpi_tables::aml;
use acpi_tables::Aml;
use alloc::vec;
use alloc::vec::Vec;

/// Register block length (QEMU MEMORY_HOTPLUG_IO_LEN).
pub const BLOCK_LEN: u8 = 0x18;
/// Most slots QEMU allows (ACPI_MAX_RAM_SLOTS).
pub const MAX_SLOTS: u32 = 256;
/// The status byte's offset, and the offset of a byte with no register
/// behind it, used to count slots.
pub const STATUS: u8 = 0x14;
pub const PROBE: u8 = 0x15;

/// Where the block is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block {
    Io(u16),
    Mmio(u32),
}

/// The VMM's memory hotplug interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemHotplug {
    pub block: Block,
    pub slots: u32,
}

/// Counts QEMU's DIMM slots with `probe(slot)`, which selects `slot` and
/// reads the byte at [`PROBE`]: all ones for a slot, zero past the last.
/// `status` is the status byte before any selection; bits 3-7 set mean no
/// block answers there (unassigned I/O reads as all ones). Any other answer
/// is a malformed interface and an error.
pub fn count_slots(status: u8, mut probe: impl FnMut(u32) -> u8) -> Result<u32, &'static str> {
    if status & 0xf8 != 0 {
        return Ok(0);
    }
    for slot in 0..MAX_SLOTS {
        match probe(slot) {
            0xff => {}
            0 => return Ok(slot),
            _ => return Err("memory hotplug registers answer neither a slot nor its end"),
        }
    }
    Err("memory hotplug registers claim more than 256 slots")
}

/// Status bits and notification codes (ACPI 6.5 6.3.7 _STA, 5.6.6 Notify).
const STA_ON: u8 = 0x0f;
const DEVICE_CHECK: u8 = 1;
const EJECT_REQUEST: u8 = 3;

fn path(s: &str) -> aml::Path {
    aml::Path::new(s)
}

/// `\_SB.MHPC` with its slot devices, to place in `\_SB`.
pub fn container(m: &MemHotplug) -> Result<Vec<u8>, Error> {
    if m.slots == 0 || m.slots > MAX_SLOTS {
        return Err(Error::Invalid("memory hotplug slot count out of range"));
    }
    let mut body = Vec::new();
    // Generic container (ACPI 6.5 9.10) owning the register block.
    aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0A06")).to_aml_bytes(&mut body);
    aml::Name::new("_UID".into(), &"Memory hotplug").to_aml_bytes(&mut body);
    let len = BLOCK_LEN;
    match m.block {
        Block::Io(port) => {
            let io = aml::IO::new(port, port, 1, len);
            let crs = aml::ResourceTemplate::new(vec![&io]);
            aml::Name::new("_CRS".into(), &crs).to_aml_bytes(&mut body);
            aml::OpRegion::new(path("MHPR"), aml::OpRegionSpace::SystemIO, &port, &len)
                .to_aml_bytes(&mut body);
        }
        Block::Mmio(base) => {
            let mem = aml::Memory32Fixed::new(true, base, u32::from(len));
            let crs = aml::ResourceTemplate::new(vec![&mem]);
            aml::Name::new("_CRS".into(), &crs).to_aml_bytes(&mut body);
            aml::OpRegion::new(path("MHPR"), aml::OpRegionSpace::SystemMemory, &base, &len)
                .to_aml_bytes(&mut body);
        }
    }
    fields(&mut body);
    aml::Mutex::new(path("MLCK"), 0).to_aml_bytes(&mut body);
    for method in [mrst(), mcrs(), most(), mej0(), mtfy(m.slots), mscn(m.slots)] {
        body.extend_from_slice(&method);
    }
    for slot in 0..m.slots {
        body.extend_from_slice(&raw_device(&slot_name(slot), slot_device(slot)));
    }
    Ok(raw_device("MHPC", body))
}

/// The GPE/GED handler's call: deliver pending DIMM events.
pub fn scan_call() -> aml::MethodCall<'static> {
    aml::MethodCall::new("\\_SB_.MHPC.MSCN".into(), vec![])
}

fn slot_name(slot: u32) -> alloc::string::String {
    alloc::format!("MP{slot:02X}")
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
            Reserved(u32::from(STATUS) as usize * 8),
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
    let on = aml::Store::new(&aml::Local(0), &STA_ON);
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

/// MTFY(slot, code): Notify the slot's device.
fn mtfy(slots: u32) -> Vec<u8> {
    let mut body = Vec::new();
    for s in 0..slots {
        let dev = path(&slot_name(s));
        let notify = aml::Notify::new(&dev, &aml::Arg(1));
        let is = aml::Equal::new(&aml::Arg(0), &s);
        aml::If::new(&is, vec![&notify]).to_aml_bytes(&mut body);
    }
    let raw = Raw(body);
    to_bytes(&aml::Method::new("MTFY".into(), 2, true, vec![&raw]))
}

/// MSCN(): for every slot with a pending event, notify its device (Device
/// Check on insert, Eject Request on remove) and clear the event.
fn mscn(slots: u32) -> Vec<u8> {
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
    let more = aml::LessThan::new(&i, &slots);
    let each = aml::While::new(&more, vec![&sel, &on_ins, &else_rmv, &next]);
    locked("MSCN", 0, vec![&init, &each], None)
}

/// One DIMM slot: a memory device (ACPI 6.5 9.12, PNP0C80) whose methods
/// ask the register block about its slot.
fn slot_device(slot: u32) -> Vec<u8> {
    let mut d = Vec::new();
    aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0C80")).to_aml_bytes(&mut d);
    aml::Name::new("_UID".into(), &slot).to_aml_bytes(&mut d);
    let call = |name: &str, args: Vec<&dyn Aml>| -> Vec<u8> {
        let mut v = Vec::new();
        let c = aml::MethodCall::new(name.into(), args);
        aml::Return::new(&c).to_aml_bytes(&mut v);
        v
    };
    let sta = Raw(call("MRST", vec![&slot]));
    aml::Method::new("_STA".into(), 0, false, vec![&sta]).to_aml_bytes(&mut d);
    let crs = Raw(call("MCRS", vec![&slot]));
    aml::Method::new("_CRS".into(), 0, true, vec![&crs]).to_aml_bytes(&mut d);
    let ost = aml::MethodCall::new("MOST".into(), vec![&slot, &aml::Arg(0), &aml::Arg(1)]);
    aml::Method::new("_OST".into(), 3, false, vec![&ost]).to_aml_bytes(&mut d);
    let ej = aml::MethodCall::new("MEJ0".into(), vec![&slot]);
    aml::Method::new("_EJ0".into(), 1, false, vec![&ej]).to_aml_bytes(&mut d);
    d
}

struct Raw(Vec<u8>);
impl Aml for Raw {
    fn to_aml_bytes(&self, sink: &mut dyn acpi_tables::AmlSink) {
        sink.vec(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_from_the_registers() {
        // Two slots: all ones for 0 and 1, zero from 2.
        assert_eq!(count_slots(0, |s| if s < 2 { 0xff } else { 0 }), Ok(2));
        // No block: unassigned I/O reads all ones.
        assert_eq!(count_slots(0xff, |_| unreachable!()), Ok(0));
        // A block with no slots answers zero at once.
        assert_eq!(count_slots(0, |_| 0), Ok(0));
        // Malformed: neither answer, or slots without end.
        assert!(count_slots(0, |s| if s == 0 { 0xff } else { 0x5a }).is_err());
        assert!(count_slots(0, |_| 0xff).is_err());
    }
}
