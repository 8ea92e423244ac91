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
//! Names under \_SB: region PRST, lock CPLK, CEJX(uid) ejects and returns
//! the new _STA value, COST(uid, event, status) forwards _OST, CNTF(uid,
//! code, sta) sets the processor device's _STA and notifies it, CSCN()
//! handles GPE0 bit 2. Each processor's _STA is a Name (`cpu_methods`
//! says why): 0 for a vCPU QEMU has not plugged, 0x0f for one it has.

use super::*;
use crate::acpi::cpu_name;
use crate::acpi::emit::{ARG0, IF_OP, LEQUAL_OP, NOTIFY_OP};

/// StoreOp and ParentPrefixChar (ACPI 6.5 20.2.5.4, 20.2.2).
const STORE_OP: u8 = 0x70;
const PARENT: u8 = b'^';
/// _STA of a plugged vCPU: present, enabled, shown, functioning (ACPI 6.5
/// 6.3.7); 0 for one QEMU has not plugged, as QEMU's own (hw/acpi/cpu.c).
const STA_ENABLED: u64 = 0x0f;

/// Processor devices (ACPI 6.5 8.4: `Device` with _HID ACPI0007); with the
/// hotplug interface also the shared methods that drive it.
pub(super) fn processors(m: &Pc, out: &mut Vec<u8>) -> Result<(), Error> {
    if let Some(io) = m.cpu_hotplug_io {
        methods(m, io, out)?;
    }
    for c in &m.cpus {
        cpu_device(out, c, m.cpu_hotplug_io.is_some())?;
    }
    Ok(())
}

/// One processor device; `hotplug`: its status and `_MAT` come from the
/// register block, and it can be ejected.
fn cpu_device(out: &mut Vec<u8>, c: &Vcpu, hotplug: bool) -> Result<(), Error> {
    let d = crate::acpi::processor(out, c)?;
    if hotplug {
        cpu_methods(c, out);
    } else {
        crate::acpi::fixed_sta(out, c.enabled);
        emit::name(out, b"_MAT");
        emit::buffer_of(out, &lapic_entry(c, c.enabled));
    }
    emit::close(out, d);
    Ok(())
}

/// The region over the block, then the constant fields, lock,
/// CEJX, COST (`build/dsdt_aml.rs`), then CNTF and CSCN, which depend on the
/// vCPUs.
fn methods(m: &Pc, io: u16, out: &mut Vec<u8>) -> Result<(), Error> {
    let len = u64::from(CPU_HOTPLUG_LEN);
    emit::op_region(out, b"PRST", emit::SYSTEM_IO, io.into(), len);
    out.extend_from_slice(aml_piece!("cpuhp_methods"));
    cntf(m, out)?;
    // CSCN(): deliver every pending insert/remove event, in at most two
    // rounds per vCPU plus one (`build/dsdt_aml.rs`).
    let rounds = (m.cpus.len() as u64) * 2 + 1;
    let s = emit::method(out, b"CSCN", emit::SERIALIZED);
    out.extend_from_slice(aml_piece!("cscn_head"));
    emit::int(out, rounds);
    out.extend_from_slice(aml_piece!("cscn_tail"));
    emit::close(out, s);
    Ok(())
}

/// CNTF(uid, code, sta): set the _STA of the processor device with that
/// UID and Notify it: per vCPU `If (Arg0 == uid) { ^Cxxx._STA = Arg2;
/// Notify (Cxxx, Arg1) }` (`^`: from CNTF's scope to `\_SB`, ACPI 6.5
/// 5.3; a two-segment path gets no upward search).
fn cntf(m: &Pc, out: &mut Vec<u8>) -> Result<(), Error> {
    let f = emit::method(out, b"CNTF", 3 | emit::SERIALIZED);
    for c in &m.cpus {
        let name = cpu_name(c.uid)?;
        let i = emit::open(out, &[IF_OP]);
        out.extend_from_slice(&[LEQUAL_OP, ARG0]);
        emit::int(out, c.uid.into());
        out.extend_from_slice(&[STORE_OP, ARG0 + 2, PARENT, emit::DUAL_NAME_PREFIX]);
        out.extend_from_slice(&name);
        out.extend_from_slice(b"_STA");
        out.push(NOTIFY_OP);
        out.extend_from_slice(&name);
        out.push(ARG0 + 1);
        emit::close(out, i);
    }
    emit::close(out, f);
    Ok(())
}

/// A call of `seg` with the UID as first argument. A bare NameSeg: the
/// namespace search (ACPI 6.5 5.3) finds the shared method in `\_SB`, the
/// processor device's parent, and each call is 6 bytes shorter than
/// `\_SB_.seg` (RootChar, DualNamePrefix), which counts at 1,024 vCPUs.
/// (A single NameSeg also finds the device's own `_STA` from its methods.)
fn call(out: &mut Vec<u8>, seg: &emit::Seg, uid: u32) {
    out.extend_from_slice(seg);
    emit::int(out, uid.into());
}

/// The processor's objects: its status, `_MAT`, and `_EJ0` and `_OST`
/// delegating to the shared methods.
fn cpu_methods(c: &Vcpu, out: &mut Vec<u8>) {
    let uid = c.uid;
    // _STA: a Name the AML keeps current rather than a method reading the
    // register block: Linux evaluates every processor's _STA several times
    // at boot (namespace scan, processor _OSC/_PDC set-up), and at 288
    // possible vCPUs a method taking the lock and selecting the vCPU cost
    // it 84 ms under icount. Its value changes only with what QEMU reports
    // through the block: CSCN writes it (CNTF) before the Notify of a plug
    // or an unplug request, _EJ0 after the eject, and the firmware writes
    // the boot-time one here.
    emit::name_int(out, b"_STA", if c.enabled { STA_ENABLED } else { 0 });

    // _MAT: a constant, enabled Local APIC entry (as QEMU's own, hw/acpi/
    // cpu.c). Linux reads it only for a vCPU whose _STA says present, i.e.
    // plugged, and maps a hot-added CPU from it, rejecting entries without
    // the enabled flag.
    emit::name(out, b"_MAT");
    emit::buffer_of(out, &lapic_entry(c, true));

    // _EJ0: `_STA = CEJX (uid)`, the status after the eject.
    let ej = emit::method(out, b"_EJ0", 1);
    out.push(STORE_OP);
    call(out, b"CEJX", uid);
    out.extend_from_slice(b"_STA");
    emit::close(out, ej);

    let ost = emit::method(out, b"_OST", 3);
    call(out, b"COST", uid);
    out.extend_from_slice(&[ARG0, ARG0 + 1]);
    emit::close(out, ost);
}
