//! The constant part of the ACPI PCI hotplug AML (`acpi::pcihp`) for q35
//! and arm virt, built on the host by `firmware/build/main.rs` with the
//! `acpi_tables` builders and embedded in the firmware as bytes
//! (memhp_aml.rs says why). The firmware adds what depends on the machine:
//! the region PCST over the register block (I/O on q35, MMIO on virt), one
//! device per root port (its name, `_ADR` and `BSEL`, then [`port_tail`])
//! and the `PCNT` method that visits them.
//!
//! The register block (QEMU docs/specs/acpi_pci_hotplug.rst,
//! hw/acpi/pcihp.c; on q35 at ACPI_PCIHP_ADDR_ICH9 = 0x0cc0, on virt at
//! VIRT_ACPI_PCIHP; 0x18 bytes, dword access): +0x00 PCIU, the slots of the selected bus with a device
//! added (cleared when read); +0x04 PCID, the slots with a removal
//! requested; +0x08 B0EJ, writing 1 << slot ejects that slot; +0x0c the
//! hotplug-enabled slots (read-only, unused here); +0x10 BNUM, the bus
//! selector ("bsel", QEMU's own numbering, not the PCI bus number).

use super::dsdt_aml::concat;
use super::{path, to_bytes, DEVICE_CHECK, EJECT_REQUEST};
use acpi_tables::aml;
use acpi_tables::Aml;

/// What `\_SB.PCI0` gets once after the region PCST over the block: its
/// fields, the lock BLCK and PCEJ(bsel), which ejects slot 0 of that bus.
pub fn pci0() -> Vec<u8> {
    let mut out = fields_and_lock();
    // A root port's secondary bus has one slot, 0 (PCI Express Base
    // Specification 7.3.1, Device Number: behind a Downstream Port only
    // Device 0; QEMU's own DSDT has only S00 there), so B0EJ = 1 << 0.
    let [bnum, b0ej] = ["BNUM", "B0EJ"].map(path);
    let a = aml::Acquire::new(path("BLCK"), 0xffff);
    let sel = aml::Store::new(&bnum, &aml::Arg(0));
    let ej = aml::Store::new(&b0ej, &aml::ONE);
    let r = aml::Release::new(path("BLCK"));
    aml::Method::new("PCEJ".into(), 1, false, vec![&a, &sel, &ej, &r]).to_aml_bytes(&mut out);
    out
}

/// The same for `pc`, whose buses (the root bus and PCI bridges) have 32
/// slots each: PCEJ(bsel, slot) ejects the slot given (B0EJ = 1 << slot),
/// as QEMU's own `pc` DSDT does.
pub fn pci0_slots() -> Vec<u8> {
    let mut out = fields_and_lock();
    let [bnum, b0ej] = ["BNUM", "B0EJ"].map(path);
    let a = aml::Acquire::new(path("BLCK"), 0xffff);
    let sel = aml::Store::new(&bnum, &aml::Arg(0));
    let ej = aml::ShiftLeft::new(&b0ej, &aml::ONE, &aml::Arg(1));
    let r = aml::Release::new(path("BLCK"));
    aml::Method::new("PCEJ".into(), 2, false, vec![&a, &sel, &ej, &r]).to_aml_bytes(&mut out);
    out
}

/// The fields over the region PCST and the lock BLCK.
fn fields_and_lock() -> Vec<u8> {
    use aml::FieldEntry::{Named, Reserved};
    let mut out = Vec::new();
    // Whole dwords, WriteAsZeros: no field is ever read to write another
    // (reading PCIU clears it).
    aml::Field::new(
        path("PCST"),
        aml::FieldAccessType::DWord,
        aml::FieldLockRule::NoLock,
        aml::FieldUpdateRule::WriteAsZeroes,
        vec![
            Named(*b"PCIU", 32),
            Named(*b"PCID", 32),
            Named(*b"B0EJ", 32),
            Reserved(32),
            Named(*b"BNUM", 32),
        ],
    )
    .to_aml_bytes(&mut out);
    aml::Mutex::new(path("BLCK"), 0).to_aml_bytes(&mut out);
    out
}

/// What follows `Name (_ADR, ..)` and `Name (BSEL, ..)` in every root
/// port's device: the slot S00 (ACPI 6.5 6.1.1 _ADR 0 = device 0 function
/// 0, 6.1.12 _SUN, 6.3.3 _EJ0) and PCNT, which reports the bus's pending
/// events. Single names resolve upwards (ACPI 6.5 5.3): BSEL is the
/// port's, the registers and PCEJ are `\_SB.PCI0`'s.
pub fn port_tail() -> Vec<u8> {
    let mut out = Vec::new();
    let adr = aml::Name::new("_ADR".into(), &aml::ZERO);
    let sun = aml::Name::new("_SUN".into(), &aml::ZERO);
    let [bsel, bnum, pciu, pcid, s00] = ["BSEL", "BNUM", "PCIU", "PCID", "S00_"].map(path);
    let call = aml::MethodCall::new("PCEJ".into(), vec![&bsel]);
    let ej0 = aml::Method::new("_EJ0".into(), 1, false, vec![&call]);
    aml::Device::new("S00_".into(), vec![&adr, &sun, &ej0]).to_aml_bytes(&mut out);

    let sel = aml::Store::new(&bnum, &bsel);
    let up = aml::And::new(&aml::Local(0), &pciu, &aml::ONE);
    let check = aml::Notify::new(&s00, &DEVICE_CHECK);
    let if_up = aml::If::new(&aml::Local(0), vec![&check]);
    let down = aml::And::new(&aml::Local(0), &pcid, &aml::ONE);
    let eject = aml::Notify::new(&s00, &EJECT_REQUEST);
    let if_down = aml::If::new(&aml::Local(0), vec![&eject]);
    aml::Method::new(
        "PCNT".into(),
        0,
        false,
        vec![&sel, &up, &if_up, &down, &if_down],
    )
    .to_aml_bytes(&mut out);
    out
}

/// Every port's events under the lock: what both the q35 GPE and the virt
/// GED run for a PCI hotplug event.
fn scan() -> (aml::Acquire, aml::MethodCall<'static>, aml::Release) {
    (
        aml::Acquire::new(path("\\_SB_.PCI0.BLCK"), 0xffff),
        aml::MethodCall::new("\\_SB_.PCI0.PCNT".into(), vec![]),
        aml::Release::new(path("\\_SB_.PCI0.BLCK")),
    )
}

/// `\_GPE._E01` (GPE0 bit 1, QEMU ACPI_PCI_HOTPLUG_STATUS).
pub fn gpe() -> Vec<u8> {
    let (a, scan, r) = scan();
    to_bytes(&aml::Method::new(
        "_E01".into(),
        0,
        false,
        vec![&a, &scan, &r],
    ))
}

/// The GED `_EVT` part for a PCI hotplug event (QEMU
/// ACPI_GED_PCI_HOTPLUG_EVT, include/hw/acpi/generic_event_device.h; the
/// selector is in Local0, see `dsdt_aml::ged_evt_power`).
pub fn ged_evt() -> Vec<u8> {
    let (a, scan, r) = scan();
    let pci = aml::And::new(&aml::Local(1), &aml::Local(0), &GED_PCI_HOTPLUG);
    let is_pci = aml::Equal::new(&aml::Local(1), &GED_PCI_HOTPLUG);
    let if_pci = aml::If::new(&is_pci, vec![&a, &scan, &r]);
    concat(&[&pci, &if_pci])
}

/// QEMU's ACPI_GED_PCI_HOTPLUG_EVT; the firmware checks that QEMU's own
/// `_EVT` uses it (`acpi::pcihp::GED_EVENT`).
pub const GED_PCI_HOTPLUG: u32 = 0x10;
