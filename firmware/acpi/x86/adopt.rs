//! x86 rules for a VMM's own tables (`acpi::adopt` walked them): what
//! the firmware needs from them and what Linux would choke on.
//! cloud-hypervisor's tables are hardware-reduced ACPI (no PM1 blocks, no
//! SCI, no FACS): the FADT's sleep control register powers off and its
//! reset register resets; the MADT lists every possible vCPU as x2APIC
//! entries; the MCFG gives the ECAM of its PCI segment.

use crate::acpi::adopt::{le16, le32, le64, min_revision, Adopted, Error, Table};
use crate::platform::cpus::{self, CpuError, Vcpu};
use alloc::vec::Vec;

/// A Generic Address Structure (ACPI 6.5 5.2.3.2): space, bit width,
/// bit offset, access size, address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gas {
    pub space: u8,
    pub bit_width: u8,
    pub bit_offset: u8,
    pub access: u8,
    pub address: u64,
}

/// GAS address spaces the firmware can write (ACPI 6.5 table 5.1).
pub const SPACE_MEMORY: u8 = 0;
pub const SPACE_IO: u8 = 1;

impl Gas {
    fn at(b: &[u8], at: usize) -> Option<Gas> {
        Some(Gas {
            space: *b.get(at)?,
            bit_width: *b.get(at + 1)?,
            bit_offset: *b.get(at + 2)?,
            access: *b.get(at + 3)?,
            address: le64(b, at + 4)?,
        })
    }

    /// A byte register the firmware can write: memory or I/O space, 8 bits
    /// wide at bit 0, a non-zero address (a port below 64 KiB).
    fn byte_register(self, what: &'static str) -> Result<Gas, Error> {
        let bad = |what| Error::Invalid {
            sig: *b"FACP",
            what,
        };
        match self.space {
            SPACE_IO if self.address > 0xffff => return Err(bad(what)),
            SPACE_IO | SPACE_MEMORY => {}
            _ => return Err(bad(what)),
        }
        if self.address == 0 || self.bit_width != 8 || self.bit_offset != 0 {
            return Err(bad(what));
        }
        Ok(self)
    }
}

/// The ECAM of PCI segment 0 (PCI Firmware Specification 3.3 4.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ecam {
    /// Where bus 0's configuration space would be.
    pub base: u64,
    pub first_bus: u8,
    pub last_bus: u8,
}

/// What the firmware takes from a VMM's x86 tables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    /// Every possible vCPU (MADT order): UID, APIC ID, enabled now.
    pub cpus: Vec<Vcpu>,
    /// The reset register and the value that resets.
    pub reset: Option<(Gas, u8)>,
    /// The sleep control register and what to write there for S5.
    pub sleep_control: Gas,
    pub s5_value: u8,
    /// Segment 0's ECAM, from the MCFG.
    pub ecam: Option<Ecam>,
    /// The PM timer's I/O port (X_PM_TMR_BLK), if the VMM has one.
    pub pm_timer: Option<u16>,
}

fn invalid(sig: &[u8; 4], what: &'static str) -> Error {
    Error::Invalid { sig: *sig, what }
}

/// Checks the FADT, MADT, DSDT's `_S5` and MCFG of `a`; `boot_apic_id`
/// is the APIC ID the firmware runs on, which must be an enabled vCPU.
pub fn check(a: &Adopted, boot_apic_id: u32) -> Result<Checked, Error> {
    let fadt = a.need(*b"FACP")?;
    let (reset, sleep_control) = fadt_registers(fadt)?;
    let pm_timer = Gas::at(&fadt.bytes, FADT_X_PM_TMR)
        .filter(|g| g.space == SPACE_IO && g.address != 0 && g.address <= 0xffff)
        .map(|g| g.address as u16);
    let slp_typ = s5_slp_typ(a.need(*b"DSDT")?)?;
    let cpus = madt_cpus(a.need(*b"APIC")?)?;
    if !cpus
        .iter()
        .any(|c| c.enabled && c.hw_id == u64::from(boot_apic_id))
    {
        return Err(invalid(
            b"APIC",
            "the boot vCPU's APIC ID is not an enabled processor",
        ));
    }
    let ecam = match a.find(*b"MCFG") {
        Some(t) => mcfg_segment0(t)?,
        None => None,
    };
    Ok(Checked {
        cpus,
        reset,
        sleep_control,
        // SLP_TYPx in bits 4:2 and SLP_EN, bit 5 (ACPI 6.5 4.8.3.7).
        s5_value: (slp_typ & 7) << 2 | 1 << 5,
        ecam,
        pm_timer,
    })
}

/// FADT (ACPI 6.5 table 5.9): flags at 112, RESET_REG at 116 and its
/// value at 128, SLEEP_CONTROL_REG at 244, SLEEP_STATUS_REG at 256; the
/// last two exist from revision 5 (ACPI 5.0), which hardware-reduced
/// ACPI needs.
const FADT_FLAGS: usize = 112;
const FADT_RESET_REG: usize = 116;
const FADT_RESET_VALUE: usize = 128;
const FADT_SLEEP_CONTROL: usize = 244;
const FADT_SLEEP_STATUS: usize = 256;
/// X_PM_TMR_BLK (ACPI 6.5 table 5.9): cloud-hypervisor has a PM timer
/// at port 0x608 even with hardware-reduced ACPI.
const FADT_X_PM_TMR: usize = 208;
const FADT_V5_LEN: usize = 268;
/// FADT flags: RESET_REG_SUP (bit 10), HW_REDUCED_ACPI (bit 20).
const RESET_REG_SUP: u32 = 1 << 10;
const HW_REDUCED_ACPI: u32 = 1 << 20;

fn fadt_registers(t: &Table) -> Result<(Option<(Gas, u8)>, Gas), Error> {
    min_revision(t, 5)?;
    let b = &t.bytes;
    if b.len() < FADT_V5_LEN {
        return Err(Error::Length {
            sig: *b"FACP",
            addr: t.addr,
            len: b.len() as u64,
            min: FADT_V5_LEN as u64,
        });
    }
    let flags = le32(b, FADT_FLAGS).unwrap_or(0);
    // The PM1 blocks, SCI and GPEs of full ACPI are not what this path
    // drives (nor does cloud-hypervisor have them).
    if flags & HW_REDUCED_ACPI == 0 {
        return Err(invalid(b"FACP", "not hardware-reduced ACPI"));
    }
    let gas = |at| Gas::at(b, at).ok_or(invalid(b"FACP", "truncated register"));
    let reset = if flags & RESET_REG_SUP != 0 {
        let r = gas(FADT_RESET_REG)?.byte_register("unusable reset register")?;
        Some((r, b[FADT_RESET_VALUE]))
    } else {
        None
    };
    let sleep = gas(FADT_SLEEP_CONTROL)?.byte_register("unusable sleep control register")?;
    gas(FADT_SLEEP_STATUS)?.byte_register("unusable sleep status register")?;
    Ok((reset, sleep))
}

/// MADT (ACPI 6.5 5.2.12): local APIC address at 36, flags at 40, then
/// entries of type and length. Entry layouts (table 5.21 ff.): processor
/// local APIC (0, 8 bytes: UID u8 at 2, APIC ID u8 at 3, flags at 4),
/// I/O APIC (1, 12), interrupt source override (2, 10), local APIC NMI
/// (4, 6), local x2APIC (9, 16: APIC ID at 4, flags at 8, UID at 12),
/// local x2APIC NMI (10, 12). Flags: bit 0 enabled, bit 1 online capable
/// (revision 5 and up).
const MADT_ENTRIES: usize = 44;
const KNOWN: [(u8, u8); 6] = [(0, 8), (1, 12), (2, 10), (4, 6), (9, 16), (10, 12)];
const ENABLED: u32 = 1;
const ONLINE_CAPABLE: u32 = 2;

fn madt_cpus(t: &Table) -> Result<Vec<Vcpu>, Error> {
    let b = &t.bytes;
    let sig = b"APIC";
    if b.len() < MADT_ENTRIES {
        return Err(Error::Length {
            sig: *sig,
            addr: t.addr,
            len: b.len() as u64,
            min: MADT_ENTRIES as u64,
        });
    }
    if le32(b, 36) == Some(0) {
        return Err(invalid(sig, "local APIC address is 0"));
    }
    let mut cpus = Vec::new();
    let mut ioapics = 0;
    let mut at = MADT_ENTRIES;
    while at < b.len() {
        let (Some(&kind), Some(&len)) = (b.get(at), b.get(at + 1)) else {
            return Err(invalid(sig, "an entry runs past the table's end"));
        };
        let e = b
            .get(at..at + usize::from(len))
            .filter(|_| len >= 2)
            .ok_or(invalid(sig, "an entry runs past the table's end"))?;
        if KNOWN.iter().any(|&(k, l)| k == kind && l != len) {
            return Err(invalid(sig, "an entry has the wrong length for its type"));
        }
        let cpu = match kind {
            0 => Some((u32::from(e[2]), u32::from(e[3]), le32(e, 4))),
            9 => Some((
                le32(e, 12).unwrap_or(0),
                le32(e, 4).unwrap_or(0),
                le32(e, 8),
            )),
            1 => {
                ioapics += 1;
                None
            }
            _ => None,
        };
        if let Some((uid, apic_id, flags)) = cpu {
            let flags = flags.unwrap_or(0);
            if kind == 0 && apic_id == 0xff {
                return Err(invalid(sig, "a local APIC entry has the broadcast ID 0xff"));
            }
            if flags & ENABLED == 0 && flags & ONLINE_CAPABLE != 0 && t.revision() < 5 {
                return Err(invalid(
                    sig,
                    "online-capable processor in a MADT before revision 5",
                ));
            }
            // Neither enabled nor online capable: never usable, so not a
            // possible vCPU (ACPI 6.5 table 5.23).
            if flags & (ENABLED | ONLINE_CAPABLE) != 0 {
                cpus.push(Vcpu {
                    uid,
                    hw_id: u64::from(apic_id),
                    enabled: flags & ENABLED != 0,
                });
            }
        }
        at += usize::from(len);
    }
    if ioapics == 0 {
        return Err(invalid(sig, "no I/O APIC"));
    }
    cpus::validate(&cpus).map_err(|e| {
        invalid(
            sig,
            match e {
                CpuError::Empty => "no processor",
                CpuError::DuplicateUid(_) => "two processors share a UID",
                CpuError::DuplicateHwId(_) => "two processors share an APIC ID",
                CpuError::NoneEnabled => "no processor is enabled",
            },
        )
    })?;
    Ok(cpus)
}

/// The S5 sleep type: the first element of the DSDT's `Name (_S5_,
/// Package () {...})` (ACPI 6.5 7.4.2). AML: NameOp 0x08, the name,
/// PackageOp 0x12, a PkgLength (its first byte's bits 7:6 count the bytes
/// that follow, 20.2.4), NumElements, then the element: ZeroOp 0x00,
/// OneOp 0x01 or BytePrefix 0x0a and the byte.
fn s5_slp_typ(dsdt: &Table) -> Result<u8, Error> {
    const NAME: &[u8] = b"\x08_S5_\x12";
    let b = dsdt.body();
    let none = invalid(b"DSDT", "no _S5 package (no way to power off)");
    // From the end, where QEMU's and cloud-hypervisor's DSDTs have it
    // (one `_S5_` at the root either way); the first byte decides most
    // windows without a slice compare, a call each.
    let at = b
        .windows(NAME.len())
        .rposition(|w| w[0] == NAME[0] && w == NAME)
        .ok_or(none.clone())?
        + NAME.len();
    let pkg_len_bytes = usize::from(*b.get(at).ok_or(none.clone())? >> 6) + 1;
    let first = at + pkg_len_bytes + 1;
    match (b.get(first), b.get(first + 1)) {
        (Some(0x00), _) => Ok(0),
        (Some(0x01), _) => Ok(1),
        (Some(0x0a), Some(&v)) => Ok(v),
        _ => Err(invalid(b"DSDT", "_S5's sleep type is not a constant")),
    }
}

/// MCFG: 8 reserved bytes after the header, then 16-byte allocations
/// (base, segment, first bus, last bus, 4 reserved); segment 0's, if any.
fn mcfg_segment0(t: &Table) -> Result<Option<Ecam>, Error> {
    let sig = b"MCFG";
    let list = t
        .bytes
        .get(44..)
        .ok_or(invalid(sig, "shorter than 44 bytes"))?;
    if list.len() % 16 != 0 {
        return Err(invalid(sig, "length is not a whole number of allocations"));
    }
    for e in list.chunks_exact(16) {
        let base = le64(e, 0).unwrap_or(0);
        let (segment, first_bus, last_bus) = (le16(e, 8).unwrap_or(0), e[10], e[11]);
        if last_bus < first_bus {
            return Err(invalid(sig, "an allocation ends before its first bus"));
        }
        // Each bus is 1 MiB of configuration space (PCIe 6.0 7.2.2).
        if !base.is_multiple_of(1 << 20)
            || base.checked_add((u64::from(last_bus) + 1) << 20).is_none()
        {
            return Err(invalid(sig, "an allocation's base is not a usable ECAM"));
        }
        if segment == 0 {
            return Ok(Some(Ecam {
                base,
                first_bus,
                last_bus,
            }));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests;
