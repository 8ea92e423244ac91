//! The constant part of the arm64 runtime vCPU hotplug AML
//! (`acpi::cpuhp`), built on the host by `firmware/build/main.rs` with the
//! `acpi_tables` builders and embedded as bytes (as `memhp_aml.rs` does,
//! and for the same reason: the image has no room for builder code whose
//! output never changes). The firmware patches what depends on the
//! machine: the vCPU's name, its slot's address, the GED's interrupt.
//!
//! The slot layout is `hotstub::resident::hotplug`'s.

use super::{crs, to_bytes, STA_DISABLED, STA_ENABLED};
use acpi_tables::aml;
use acpi_tables::Aml;

/// The placeholders the firmware patches: the processor device name
/// (`acpi::cpu_name` of UID 0xAAA), the slot address (QWordConst) and the
/// GED's interrupt number (the descriptor's 32-bit field).
pub const NAME: &[u8; 4] = b"CAAA";
pub const ADDR: u64 = 0x1122_3344_5566_7788;
pub const INTID: u32 = 0xa1b2_c3d4;

const OST_VALID: u32 = 1 << 31;

/// What a processor device carries after `_HID` and `_UID` when the
/// firmware runs the hotplug: its slot of the shared block and the methods
/// Linux calls.
pub fn processor_tail() -> Vec<u8> {
    use aml::FieldEntry::{Named, Reserved};
    let mut out = Vec::new();
    let len: u8 = 8;
    aml::OpRegion::new("HPSL".into(), aml::OpRegionSpace::SystemMemory, &ADDR, &len)
        .to_aml_bytes(&mut out);
    aml::Field::new(
        "HPSL".into(),
        aml::FieldAccessType::Byte,
        aml::FieldLockRule::NoLock,
        aml::FieldUpdateRule::Preserve,
        vec![
            Named(*b"CSTA", 8),
            Named(*b"CNTF", 8),
            Named(*b"CEJ0", 8),
            Reserved(8),
            Named(*b"COST", 32),
        ],
    )
    .to_aml_bytes(&mut out);
    let sta = aml::Path::new("CSTA");
    let bit = aml::And::new(&aml::Local(0), &sta, &aml::ONE);
    let ret_on = aml::Return::new(&STA_ENABLED);
    let is_on = aml::Equal::new(&aml::Local(0), &aml::ONE);
    let if_on = aml::If::new(&is_on, vec![&ret_on]);
    let ret_off = aml::Return::new(&STA_DISABLED);
    aml::Method::new("_STA".into(), 0, false, vec![&bit, &if_on, &ret_off]).to_aml_bytes(&mut out);
    // _EJ0 (ACPI 6.5 6.3.3): Linux has offlined the vCPU; the firmware
    // checks that against PSCI before it disables it. _STA must read "not
    // enabled" right away (Linux checks it after _EJ0).
    let clear = aml::Store::new(&sta, &aml::ZERO);
    let cej0 = aml::Path::new("CEJ0");
    let ej = aml::Store::new(&cej0, &aml::ONE);
    aml::Method::new("_EJ0".into(), 1, false, vec![&clear, &ej]).to_aml_bytes(&mut out);
    // _OST (ACPI 6.5 6.3.5): Arg0 source event, Arg1 status code.
    let ev_mask: u32 = 0xffff;
    let st_mask: u32 = 0xff;
    let shift: u8 = 16;
    let ev = aml::And::new(&aml::Local(0), &aml::Arg(0), &ev_mask);
    let st = aml::And::new(&aml::Local(1), &aml::Arg(1), &st_mask);
    let sh = aml::ShiftLeft::new(&aml::Local(1), &aml::Local(1), &shift);
    let or1 = aml::Or::new(&aml::Local(0), &aml::Local(0), &aml::Local(1));
    let or2 = aml::Or::new(&aml::Local(0), &aml::Local(0), &OST_VALID);
    let cost = aml::Path::new("COST");
    let w = aml::Store::new(&cost, &aml::Local(0));
    aml::Method::new("_OST".into(), 3, false, vec![&ev, &st, &sh, &or1, &or2, &w])
        .to_aml_bytes(&mut out);
    out
}

/// One vCPU's part of the GED's `_EVT`: deliver the Notify code the
/// firmware left in its slot, once.
pub fn evt_cpu() -> Vec<u8> {
    let name = std::str::from_utf8(NAME).unwrap();
    let dev = aml::Path::new(&std::format!("\\_SB_.{name}"));
    let ntf = aml::Path::new(&std::format!("\\_SB_.{name}.CNTF"));
    let take = aml::Store::new(&aml::Local(0), &ntf);
    let clear = aml::Store::new(&ntf, &aml::ZERO);
    let notify = aml::Notify::new(&dev, &aml::Local(0));
    let pending = aml::NotEqual::new(&aml::Local(0), &aml::ZERO);
    let not = aml::If::new(&pending, vec![&clear, &notify]);
    let mut out = to_bytes(&take);
    not.to_aml_bytes(&mut out);
    out
}

/// The hotplug GED's identity: ACPI0013 (ACPI 6.5 5.6.9) with an
/// edge-triggered interrupt the firmware raises from EL3. `_UID` 1: QEMU's
/// GED, where there is one, is 0.
pub fn ged_head() -> Vec<u8> {
    let int = aml::Interrupt::new(true, true, false, false, INTID);
    let mut out = Vec::new();
    aml::Name::new("_HID".into(), &"ACPI0013").to_aml_bytes(&mut out);
    aml::Name::new("_UID".into(), &aml::ONE).to_aml_bytes(&mut out);
    crs(vec![&int]).to_aml_bytes(&mut out);
    out
}
