//! PCI hotplug through QEMU's ACPI PCI hotplug registers (QEMU
//! docs/specs/acpi_pci_hotplug.rst, hw/acpi/pcihp.c; the register layout
//! is in `build/pcihp_aml.rs`), for the `pcie-root-port`s on the root bus:
//! on q35 (I/O ports, GPE0 bit 1; on by default) and on arm virt (MMIO, a
//! GED event; QEMU 11's opt-in `acpi-ged.acpi-pci-hotplug-with-bridge-support`).
//! On pc (PIIX4) the slots of the root bus and of its PCI bridges hotplug
//! instead (`slots`).
//!
//! QEMU selects a bus in the block by its "bsel", a number QEMU assigns
//! itself (hw/acpi/pcihp.c acpi_set_bsel) and shows nowhere but in its own
//! DSDT, which it offers over fw_cfg (`etc/acpi/tables`): each hotpluggable
//! root port there is `Device (Sxx) { Name (_ADR, ..) ... Name (BSEL, n)
//! ... }`. [`from_qemu_tables`] reads those pairs; [`pci0_objects`] writes
//! our own description of the same ports.
//!
//! AML under `\_SB.PCI0`: region PCST, lock BLCK, PCEJ(bsel) (constant,
//! `build/pcihp_aml.rs`), one `Device (Sxx)` per port (`_ADR`, `BSEL`, slot S00
//! with `_SUN`/`_EJ0`, PCNT) and PCNT, which calls every port's PCNT;
//! `\_GPE._E01` (q35) or the GED's `_EVT` (virt) calls `\_SB.PCI0.PCNT`
//! under the lock.

use super::emit::{self, int, package_of};
pub use super::memhp::Block;
use super::memhp::{data_integer_len, find};
use super::Error;
use alloc::vec::Vec;

/// The register block on q35 (QEMU ACPI_PCIHP_ADDR_ICH9, ACPI_PCIHP_SIZE).
pub const BASE: u16 = 0x0cc0;
pub const LEN: u8 = 0x18;
/// B0EJ's offset: it reads as 0 (hw/acpi/pcihp.c pci_read, "no feature
/// defined yet"), where unassigned I/O reads as all ones.
pub const PROBE: u16 = 0x08;
/// Most buses QEMU numbers (ACPI_PCIHP_MAX_HOTPLUG_BUS).
const MAX_BSEL: u64 = 255;

/// One hotpluggable root port on the root bus: its `_ADR` (device << 16 |
/// function, ACPI 6.5 6.1.1) and the bsel of its secondary bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RootPort {
    pub adr: u32,
    pub bsel: u32,
}

/// QEMU's ACPI PCI hotplug, when it is on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciHotplug {
    /// Where the register block is.
    pub block: Block,
    pub ports: Vec<RootPort>,
    /// On `pc`: the buses whose slots hotplug (`slots`); empty elsewhere.
    pub buses: Vec<SlotBus>,
}

impl PciHotplug {
    /// q35's block, at its fixed port.
    pub fn q35(ports: Vec<RootPort>) -> PciHotplug {
        PciHotplug {
            block: Block::Io(BASE),
            ports,
            buses: Vec::new(),
        }
    }

    /// pc's block (at `base`) and buses.
    pub fn pc(base: u16, buses: Vec<SlotBus>) -> PciHotplug {
        PciHotplug {
            block: Block::Io(base),
            ports: Vec::new(),
            buses,
        }
    }
}

/// The GED event bit of a PCI hotplug event (QEMU ACPI_GED_PCI_HOTPLUG_EVT,
/// include/hw/acpi/generic_event_device.h), which `build/pcihp_aml.rs`
/// dispatches.
pub const GED_EVENT: u8 = 0x10;

/// virt's ACPI PCI hotplug as QEMU's own DSDT (within `etc/acpi/tables`)
/// describes it (hw/arm/virt-acpi-build.c build_dsdt, hw/acpi/pcihp.c
/// build_acpi_pci_hotplug): the block is `OperationRegion (PCST,
/// SystemMemory, base, ..)` in `\_SB.PCI0` (its address moved between
/// QEMU releases, so it is read, not assumed), the GED's `_EVT` takes the
/// PCI event with `If ((Local0 & bit) == bit) { Acquire
/// (\_SB.PCI0.BLCK, ..)` (generic_event_device.c build_ged_aml), and the
/// ports carry their BSEL as on q35. None when QEMU has no such block (the
/// option is off, or QEMU predates it): native PCIe hotplug then.
pub fn virt_from_qemu_tables(blob: &[u8]) -> Result<Option<PciHotplug>, &'static str> {
    // ExtOpPrefix OpRegionOp NameSeg RegionSpace (0 = SystemMemory).
    let Some(i) = find(blob, b"\x5b\x80PCST\x00") else {
        return Ok(None);
    };
    let (base, _) = data_integer_len(&blob[i + 7..]).ok_or("QEMU's DSDT: bad PCST base")?;
    let base = u32::try_from(base)
        .ok()
        .filter(|b| b % 4 == 0)
        .ok_or("QEMU's DSDT: PCST is not a dword-aligned address below 4 GiB")?;
    // AcquireOp, then the NameString \_SB.PCI0.BLCK (RootChar,
    // MultiNamePrefix, three segments), after the seven bytes of
    // `(Local0 & bit) == bit`: AndOp Local0Op (BytePrefix bit) ZeroOp
    // (BytePrefix bit), the LEqualOp before them.
    let a = find(blob, b"\x5b\x23\\\x2f\x03_SB_PCI0BLCK")
        .filter(|&a| a >= 7)
        .ok_or("QEMU's DSDT: PCI hotplug registers but no GED event for them")?;
    let bit = blob[a - 4];
    if blob[a - 7..a] != [0x7b, 0x60, 0x0a, bit, 0x00, 0x0a, bit] || bit != GED_EVENT {
        return Err("QEMU's DSDT: the GED signals PCI hotplug with an unknown event bit");
    }
    Ok(Some(PciHotplug {
        block: Block::Mmio(base),
        ports: from_qemu_tables(blob)?,
        buses: Vec::new(),
    }))
}

/// Whether the block answers, from a dword read of [`PROBE`]. The block
/// exists while `ICH9-LPC.acpi-pci-hotplug-with-bridge-support` is on
/// (QEMU's default).
pub fn probe(b0ej: u32) -> Result<bool, &'static str> {
    match b0ej {
        0 => Ok(true),
        u32::MAX => Ok(false),
        _ => Err("ACPI PCI hotplug registers at 0xcc0 answer neither 0 nor all ones"),
    }
}

/// The hotpluggable root ports QEMU's DSDT (within its `etc/acpi/tables`)
/// describes directly under the root bus, sorted by `_ADR`. Ports inside
/// another device (bridges behind a root port, ports of extra host
/// bridges) are not root-bus ports and are left out.
pub fn from_qemu_tables(blob: &[u8]) -> Result<Vec<RootPort>, &'static str> {
    Ok(with_root_bsel(blob)?.1)
}

/// [`from_qemu_tables`] and the root bus's own bsel, when QEMU's DSDT
/// numbers it (a `BSEL` in no device: `pc`, whose root bus hotplugs, and
/// virt with ACPI PCI hotplug).
pub fn with_root_bsel(blob: &[u8]) -> Result<(Option<u32>, Vec<RootPort>), &'static str> {
    let dsdt = find_dsdt(blob).ok_or("QEMU's ACPI tables have no DSDT")?;
    let mut root = None;
    let devices = devices(dsdt);
    let mut ports: Vec<RootPort> = Vec::new();
    let mut at = 0;
    while let Some(i) = find(&dsdt[at..], b"\x08BSEL").map(|i| at + i) {
        at = i + 5;
        let bsel = data_integer_len(&dsdt[at..])
            .map(|(v, _)| v)
            .ok_or("QEMU's DSDT: BSEL is not an integer")?;
        // The innermost device holding the name is the port; it must sit
        // in no other device.
        let mut holders = devices.iter().filter(|d| d.start < i && i < d.end);
        // One in no device is the root bus's own, in `Scope (\_SB.PCI0)`:
        // virt numbers it when its ACPI PCI hotplug is on (QEMU's
        // hw/arm/virt-acpi-build.c, build_append_pcihp_slots), pc always
        // (root-bus hotplug is on by default there). Only pc's root slots
        // are described (`slots`).
        let Some(port) = holders.clone().max_by_key(|d| d.start) else {
            if bsel > MAX_BSEL {
                return Err("QEMU's DSDT: BSEL above 255");
            }
            root = Some(bsel as u32);
            continue;
        };
        if holders.any(|d| d.start < port.start) {
            continue;
        }
        let adr = port
            .adr
            .ok_or("QEMU's DSDT: a device with BSEL has no _ADR")?;
        if bsel > MAX_BSEL {
            return Err("QEMU's DSDT: BSEL above 255");
        }
        if adr >> 16 > 31 || adr & 0xffff > 7 {
            return Err("QEMU's DSDT: root port _ADR is not a PCI device and function");
        }
        let p = RootPort {
            adr: adr as u32,
            bsel: bsel as u32,
        };
        if ports.iter().any(|q| q.adr == p.adr || q.bsel == p.bsel) {
            return Err("QEMU's DSDT: two root ports with the same _ADR or BSEL");
        }
        // In _ADR order (an insertion: a sort costs the image kilobytes).
        let at = ports.iter().take_while(|q| q.adr < p.adr).count();
        ports.insert(at, p);
    }
    Ok((root, ports))
}

/// The first table with the DSDT signature and a length that fits (the
/// blob holds QEMU's tables back to back, ACPI 6.5 5.2.6 headers).
fn find_dsdt(blob: &[u8]) -> Option<&[u8]> {
    let mut at = 0;
    while let Some(i) = find(&blob[at..], b"DSDT").map(|i| at + i) {
        at = i + 1;
        let len = blob
            .get(i + 4..i + 8)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)?;
        if len >= 36 && len <= blob.len() - i {
            return Some(&blob[i..i + len]);
        }
    }
    None
}

/// A well-formed `Device` in the table: where its package starts and ends,
/// and its `_ADR` when that is its first object (as QEMU writes PCI
/// devices).
struct Device {
    start: usize,
    end: usize,
    adr: Option<u64>,
}

/// Every byte sequence in `t` that parses as DefDevice (ACPI 6.5 20.2.5.2:
/// ExtOpPrefix 0x5B, DeviceOp 0x82, PkgLength, NameSeg) whose package lies
/// inside `t` and begins with a Name object (NameOp 0x08, NameSeg), as
/// every device in QEMU's tables does. Other bytes that happen to look
/// like it are unlikely to pass that and, if one does, only loses a port.
fn devices(t: &[u8]) -> Vec<Device> {
    let mut out = Vec::new();
    for i in 0..t.len().saturating_sub(1) {
        if t[i] != 0x5b || t[i + 1] != 0x82 {
            continue;
        }
        let Some((len, n)) = pkg_length(&t[i + 2..]) else {
            continue;
        };
        let end = i + 2 + len;
        let body = i + 2 + n + 4;
        let (Some(name), Some(first)) = (t.get(i + 2 + n..body), t.get(body..body + 5)) else {
            continue;
        };
        if end > t.len() || end < body + 5 || !name_seg(name) || first[0] != 0x08 {
            continue;
        }
        if !name_seg(&first[1..]) {
            continue;
        }
        let adr = (&first[1..] == b"_ADR")
            .then(|| data_integer_len(&t[body + 5..end]).map(|(v, _)| v))
            .flatten();
        out.push(Device { start: i, end, adr });
    }
    out
}

/// PkgLength (ACPI 6.5 20.2.4): the length it encodes (counting itself)
/// and how many bytes it takes.
fn pkg_length(b: &[u8]) -> Option<(usize, usize)> {
    let lead = *b.first()?;
    let extra = usize::from(lead >> 6);
    if extra == 0 {
        return Some((usize::from(lead & 0x3f), 1));
    }
    // With following bytes, bits 4-5 of the lead byte are reserved (zero).
    if lead & 0x30 != 0 {
        return None;
    }
    let mut len = usize::from(lead & 0x0f);
    for k in 0..extra {
        len |= usize::from(*b.get(1 + k)?) << (4 + 8 * k);
    }
    Some((len, 1 + extra))
}

/// NameSeg (ACPI 6.5 20.2.2): a lead character A-Z or `_`, then three of
/// A-Z, 0-9, `_`.
fn name_seg(b: &[u8]) -> bool {
    let ok =
        |c: u8, lead: bool| c == b'_' || c.is_ascii_uppercase() || (!lead && c.is_ascii_digit());
    b.len() >= 4 && ok(b[0], true) && b[1..4].iter().all(|&c| ok(c, false))
}

/// The constant AML, built on the host (see `build/pcihp_aml.rs`).
const PCI0: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pcihp_pci0.aml"));
const PORT_TAIL: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pcihp_port.aml"));
/// `\_GPE._E01`.
pub const GPE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pcihp_gpe.aml"));

/// A port's device name: S, its devfn (device << 3 | function) in two hex
/// digits, `_` (the names QEMU uses).
fn port_name(adr: u32) -> [u8; 4] {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let devfn = ((adr >> 16) << 3 | (adr & 7)) as usize;
    [b'S', HEX[devfn >> 4 & 15], HEX[devfn & 15], b'_']
}

/// `If` the GED's selector (in Local0) has [`GED_EVENT`]: every port's
/// events (`build/pcihp_aml.rs`).
pub const GED_EVT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pcihp_ged.aml"));

/// The objects to place in `\_SB.PCI0`.
pub fn pci0_objects(h: &PciHotplug) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    let (space, base) = match h.block {
        Block::Io(b) => (emit::SYSTEM_IO, u64::from(b)),
        Block::Mmio(b) => (emit::SYSTEM_MEMORY, u64::from(b)),
    };
    emit::op_region(&mut out, b"PCST", space, base, u64::from(LEN));
    if !h.buses.is_empty() {
        return slots::pci0_objects(h, out);
    }
    out.extend_from_slice(PCI0);
    // PCNT: `^Sxx_.PCNT` per port (ACPI 6.5 20.2.2: ParentPrefixChar 0x5E,
    // DualNamePrefix 0x2E; MethodOp 0x14, flags 0 = no arguments).
    let mut pcnt = b"PCNT\x00".to_vec();
    for p in &h.ports {
        if p.adr >> 16 > 31 || p.adr & 0xffff > 7 {
            return Err(Error::Invalid(
                "root port _ADR is not a PCI device and function",
            ));
        }
        let mut dev = port_name(p.adr).to_vec();
        dev.extend_from_slice(b"\x08_ADR");
        int(&mut dev, u64::from(p.adr));
        dev.extend_from_slice(b"\x08BSEL");
        int(&mut dev, u64::from(p.bsel));
        dev.extend_from_slice(PORT_TAIL);
        package_of(&mut out, &[0x5b, 0x82], &dev);
        pcnt.extend_from_slice(&[0x5e, 0x2e]);
        pcnt.extend_from_slice(&port_name(p.adr));
        pcnt.extend_from_slice(b"PCNT");
    }
    package_of(&mut out, &[0x14], &pcnt);
    Ok(out)
}

mod slots;
pub use slots::SlotBus;

#[cfg(test)]
mod tests;
