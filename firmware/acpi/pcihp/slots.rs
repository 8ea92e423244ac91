//! ACPI PCI hotplug on QEMU's `pc`: QEMU's PIIX4 hotplugs into any slot
//! of the root bus and of the PCI bridges on it (32 slots per bus, PCI
//! Local Bus 3.0 3.2.2.3.5), where q35's root ports have one. The
//! register block is the same (`build/pcihp_aml.rs`), at 0xae00
//! (hw/acpi/piix4.c ACPI_PCIHP_ADDR_PIIX4); the slots a bus can hotplug
//! are the bits of its removability register (+0x0c, hw/acpi/pcihp.c
//! PCI_RMV_BASE: a slot holding a device QEMU cannot unplug, such as the
//! host bridge, the PIIX functions or a bridge present at start, reads 0),
//! which the firmware reads at boot for each bus.
//!
//! AML under `\_SB.PCI0`, as QEMU's own `pc` DSDT lays it out: BSEL of
//! the root bus, one `Device (Sxx)` per hotpluggable slot (`_ADR`, `_SUN`,
//! `_EJ0` calling PCEJ(BSEL, _SUN)), DVNT(bits, code), which notifies the
//! slots whose bits are set; one device per bridge with the same objects
//! and PCNT (select the bus, DVNT(PCIU, Device Check), DVNT(PCID, Eject
//! Request)); and the root bus's PCNT, which also calls each bridge's.

use super::super::emit::{self, int, AND_OP, ARG0, DUAL_NAME_PREFIX, IF_OP, NOTIFY_OP, ZERO};
use super::{port_name, Error, PciHotplug};
use alloc::vec::Vec;

/// A bus QEMU's ACPI PCI hotplug serves on `pc`: the root bus (`adr`
/// None) or a PCI bridge on it (its `_ADR`, device << 16 | function).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotBus {
    pub adr: Option<u32>,
    /// QEMU's bus selector.
    pub bsel: u32,
    /// The hotpluggable slots, bit n for slot n.
    pub slots: u32,
}

/// The constant part: fields, lock, PCEJ(bsel, slot).
const PCI0: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pcihp_pci0_slots.aml"));

/// ParentPrefixChar (ACPI 6.5 20.2.2).
const PARENT_PREFIX: u8 = 0x5e;
/// StoreOp (ACPI 6.5 20.2.5.4).
const STORE_OP: u8 = 0x70;
/// Notification codes (ACPI 6.5 5.6.6).
const DEVICE_CHECK: u8 = 1;
const EJECT_REQUEST: u8 = 3;

/// The objects to place in `\_SB.PCI0` for `h.buses` (the region PCST
/// first, as for q35).
pub(super) fn pci0_objects(h: &PciHotplug, region: Vec<u8>) -> Result<Vec<u8>, Error> {
    let mut out = region;
    out.extend_from_slice(PCI0);
    let root = h.buses.iter().find(|b| b.adr.is_none());
    // Slots that hold a bridge described below are not root slots.
    let bridge_slots = h
        .buses
        .iter()
        .filter_map(|b| b.adr)
        .fold(0u32, |m, adr| m | 1 << (adr >> 16 & 31));
    if let Some(r) = root {
        emit::name_int(&mut out, b"BSEL", r.bsel.into());
        bus_objects(&mut out, r.slots & !bridge_slots);
    }
    let mut pcnt = Vec::new();
    if root.is_some() {
        bus_events(&mut pcnt);
    }
    for b in h.buses.iter() {
        let Some(adr) = b.adr else { continue };
        if adr >> 16 > 31 || adr & 0xffff > 7 {
            return Err(Error::Invalid(
                "bridge _ADR is not a PCI device and function",
            ));
        }
        let name = port_name(adr);
        let d = emit::device(&mut out, &name);
        emit::name_int(&mut out, b"_ADR", adr.into());
        emit::name_int(&mut out, b"BSEL", b.bsel.into());
        bus_objects(&mut out, b.slots);
        let m = emit::method(&mut out, b"PCNT", 0);
        bus_events(&mut out);
        emit::close(&mut out, m);
        emit::close(&mut out, d);
        // `^Sxx_.PCNT`: a path of two segments is not searched upwards
        // (ACPI 6.5 5.3), and PCNT's own scope is the method.
        pcnt.extend_from_slice(&[PARENT_PREFIX, DUAL_NAME_PREFIX]);
        pcnt.extend_from_slice(&name);
        pcnt.extend_from_slice(b"PCNT");
    }
    let m = emit::method(&mut out, b"PCNT", 0);
    out.extend(pcnt);
    emit::close(&mut out, m);
    Ok(out)
}

/// A slot's device name: S, its devfn (slot << 3) in two hex digits, `_`.
fn slot_name(slot: u32) -> [u8; 4] {
    port_name(slot << 16)
}

/// One device per slot in `slots`, then DVNT.
fn bus_objects(out: &mut Vec<u8>, slots: u32) {
    let each = || (0..32u32).filter(move |s| slots & 1 << s != 0);
    for s in each() {
        let d = emit::device(out, &slot_name(s));
        emit::name_int(out, b"_ADR", u64::from(s) << 16);
        emit::name_int(out, b"_SUN", s.into());
        let m = emit::method(out, b"_EJ0", 1);
        out.extend_from_slice(b"PCEJBSEL_SUN");
        emit::close(out, m);
        emit::close(out, d);
    }
    // DVNT(bits, code): `If (Arg0 & bit) { Notify (Sxx, Arg1) }` per slot.
    let m = emit::method(out, b"DVNT", 2);
    for s in each() {
        let i = emit::open(out, &[IF_OP]);
        out.extend_from_slice(&[AND_OP, ARG0]);
        int(out, 1u64 << s);
        out.extend_from_slice(&[ZERO, NOTIFY_OP]);
        out.extend_from_slice(&slot_name(s));
        out.push(ARG0 + 1);
        emit::close(out, i);
    }
    emit::close(out, m);
}

/// `BNUM = BSEL; DVNT (PCIU, 1); DVNT (PCID, 3)`: this bus's events.
fn bus_events(out: &mut Vec<u8>) {
    out.push(STORE_OP);
    out.extend_from_slice(b"BSELBNUM");
    out.extend_from_slice(b"DVNTPCIU");
    int(out, DEVICE_CHECK.into());
    out.extend_from_slice(b"DVNTPCID");
    int(out, EJECT_REQUEST.into());
}
