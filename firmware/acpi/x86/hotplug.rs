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
use crate::acpi::cpu_name;
use crate::acpi::emit::{AND_OP, ARG0, IF_OP, LEQUAL_OP, LOCAL0, NOTIFY_OP, RETURN_OP};

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

/// The region over the block, then the constant fields, lock and CSTA,
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

/// CNTF(uid, code): Notify the processor device with that UID: per vCPU
/// `If (Arg0 == uid) { Notify (Cxxx, Arg1) }`.
fn cntf(m: &Pc, out: &mut Vec<u8>) -> Result<(), Error> {
    let f = emit::method(out, b"CNTF", 2 | emit::SERIALIZED);
    for c in &m.cpus {
        let i = emit::open(out, &[IF_OP]);
        out.extend_from_slice(&[LEQUAL_OP, ARG0]);
        emit::int(out, c.uid.into());
        out.push(NOTIFY_OP);
        out.extend_from_slice(&cpu_name(c.uid)?);
        out.push(ARG0 + 1);
        emit::close(out, i);
    }
    emit::close(out, f);
    Ok(())
}

/// A call of `\_SB_.seg` with the UID as first argument (ACPI 6.5 20.2.2:
/// RootChar, DualNamePrefix, two NameSegs).
fn sb_call(out: &mut Vec<u8>, seg: &emit::Seg, uid: u32) {
    out.extend_from_slice(&[emit::ROOT, emit::DUAL_NAME_PREFIX]);
    out.extend_from_slice(b"_SB_");
    out.extend_from_slice(seg);
    emit::int(out, uid.into());
}

/// Per-processor methods delegating to the shared ones.
fn cpu_methods(c: &Vcpu, out: &mut Vec<u8>) {
    let uid = c.uid;
    let s = emit::method(out, b"_STA", 0);
    out.push(RETURN_OP);
    sb_call(out, b"CSTA", uid);
    emit::close(out, s);

    // _MAT reflects the current state: an enabled Local APIC entry once
    // QEMU reports the vCPU plugged (Linux maps a hot-added CPU from
    // it and rejects entries without the enabled flag):
    // `Local0 = CSTA (uid) & 2; If (Local0 == 2) { Return (on) } Return
    // (off)` (2 = the _STA enabled bit).
    let mat = emit::method(out, b"_MAT", 0);
    out.push(AND_OP);
    sb_call(out, b"CSTA", uid);
    emit::int(out, 2);
    out.push(LOCAL0);
    let i = emit::open(out, &[IF_OP]);
    out.extend_from_slice(&[LEQUAL_OP, LOCAL0]);
    emit::int(out, 2);
    out.push(RETURN_OP);
    emit::buffer_of(out, &lapic_entry(c, true));
    emit::close(out, i);
    out.push(RETURN_OP);
    emit::buffer_of(out, &lapic_entry(c, false));
    emit::close(out, mat);

    let ej = emit::method(out, b"_EJ0", 1);
    sb_call(out, b"CEJX", uid);
    emit::close(out, ej);

    let ost = emit::method(out, b"_OST", 3);
    sb_call(out, b"COST", uid);
    out.extend_from_slice(&[ARG0, ARG0 + 1]);
    emit::close(out, ost);
}
