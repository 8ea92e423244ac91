//! Runtime vCPU hotplug in the arm64 DSDT (the firmware's side is
//! `crate::resident::hotplug`): each processor device gets its slot of the
//! shared block with `_STA`, `_EJ0` and `_OST` over it, and the firmware's
//! own GED gets an `_EVT` that delivers the Notify codes the firmware left
//! in the slots. The AML is built on the host (`build/cpuhp_aml.rs`); this only
//! patches names and addresses in.

use alloc::vec::Vec;

use super::emit::{package_of, patch};
use super::{cpu_name, Error};
use crate::platform::cpus::Vcpu;
use crate::resident::hotplug::SLOT;

/// Where the firmware runs the hotplug: the shared block (normal-world
/// memory, one `SLOT` per possible vCPU in model order) and the INTID of
/// the GED interrupt it raises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuHotplug {
    pub block: u64,
    pub intid: u32,
}

const CPU_TAIL: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/cpuhp_cpu.aml"));
const EVT_CPU: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/cpuhp_evt.aml"));
const GED_HEAD: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/cpuhp_ged.aml"));
/// The templates' placeholders (`cpuhp_aml::{NAME, ADDR, INTID}`).
const NAME: &[u8; 4] = b"CAAA";
const ADDR: [u8; 8] = 0x1122_3344_5566_7788u64.to_le_bytes();
const INTID: [u8; 4] = 0xa1b2_c3d4u32.to_le_bytes();

/// The part of processor `index`'s device after `_HID` and `_UID`.
pub fn processor_tail(h: &CpuHotplug, index: usize) -> Vec<u8> {
    let slot = h.block + (index * SLOT) as u64;
    patch(CPU_TAIL, &ADDR, &slot.to_le_bytes())
}

/// `\_SB.HPGE`, the firmware's GED for the processors `cpus`.
pub fn ged(h: &CpuHotplug, cpus: &[Vcpu]) -> Result<Vec<u8>, Error> {
    // Method name, then MethodFlags: one argument, serialized (ACPI 6.5
    // 19.6.85).
    let mut evt = Vec::from(*b"_EVT\x09");
    for c in cpus {
        evt.extend(patch(EVT_CPU, NAME, &cpu_name(c.uid)?));
    }
    let mut body = Vec::from(*b"HPGE");
    body.extend(patch(GED_HEAD, &INTID, &h.intid.to_le_bytes()));
    package_of(&mut body, &[0x14], &evt);
    let mut out = Vec::new();
    // DeviceOp (ACPI 6.5 20.2.5.2).
    package_of(&mut out, &[0x5b, 0x82], &body);
    Ok(out)
}
