//! The generic ECAM PCIe host bridge (pci/host-generic-pci.yaml): its
//! windows from `ranges` and its legacy interrupt routing from
//! `interrupt-map`, both in the IEEE 1275 PCI bus binding's cell layout.

use super::props::{cells, first_reg, gic_intid, prop_u32, read_cells};
use super::walk::{Node, Tree};
use super::{Error, PcieInfo};
use alloc::vec::Vec;

/// PCI `phys.hi` space code (IEEE 1275 PCI binding, bits 24-25).
const PCI_SPACE_IO: u32 = 1;
const PCI_SPACE_MEM32: u32 = 2;
const PCI_SPACE_MEM64: u32 = 3;

/// `gic`: the interrupt controller, which `interrupt-map` names in
/// practice (spared a lookup of its phandle).
pub(super) fn parse(fdt: &Tree, node: Node, gic: Node) -> Result<PcieInfo, Error> {
    let mut pci = PcieInfo::default();
    let (base, size) = first_reg(node, "PCIe reg")?;
    pci.ecam_base = base;
    pci.ecam_size = size;
    match node
        .property("bus-range")
        .map(|p| cells(p.value).collect::<Vec<_>>())
        .as_deref()
    {
        Some(&[a, b]) if a <= b && b <= 255 => {
            pci.bus_start = a as u8;
            pci.bus_end = b as u8;
        }
        // Without bus-range the ECAM size says how many buses decode (1 MiB each).
        None => pci.bus_end = ((size >> 20).clamp(1, 256) - 1) as u8,
        _ => return Err(Error::Malformed("PCIe bus-range")),
    }

    // ranges: child address (3 cells), parent address (root's
    // #address-cells), size (the bridge's #size-cells).
    let parent_ac = fdt.root().map(|r| r.cell_sizes().0).unwrap_or(2);
    let (child_ac, child_sc) = node.cell_sizes();
    if child_ac != 3 || child_sc == 0 || child_sc > 2 {
        return Err(Error::Malformed("PCIe #address-cells/#size-cells"));
    }
    let ranges: Vec<u32> = node
        .property("ranges")
        .map(|p| cells(p.value).collect())
        .ok_or(Error::Missing("PCIe ranges"))?;
    let stride = 3 + parent_ac + child_sc;
    if !ranges.len().is_multiple_of(stride) {
        return Err(Error::Malformed("PCIe ranges"));
    }
    for r in ranges.chunks_exact(stride) {
        let pci_addr = ((r[1] as u64) << 32) | r[2] as u64;
        let cpu = read_cells(&r[3..3 + parent_ac], "PCIe ranges")?;
        let len = read_cells(&r[3 + parent_ac..], "PCIe ranges")?;
        let w = Some((cpu, pci_addr, len));
        match (r[0] >> 24) & 3 {
            PCI_SPACE_IO => pci.io = w,
            PCI_SPACE_MEM32 => pci.mmio32 = w,
            PCI_SPACE_MEM64 => pci.mmio64 = w,
            _ => return Err(Error::Malformed("PCIe ranges space code")),
        }
    }

    pci.prt = parse_interrupt_map(fdt, node, gic)?;
    Ok(pci)
}

/// Expands `interrupt-map`/`interrupt-map-mask` into one routing entry per
/// device number and pin on the root bus, as an ACPI `_PRT` needs them.
fn parse_interrupt_map(fdt: &Tree, node: Node, gic: Node) -> Result<Vec<(u8, u8, u32)>, Error> {
    let map: Vec<u32> = node
        .property("interrupt-map")
        .map(|p| cells(p.value).collect())
        .unwrap_or_default();
    let mask: Option<Vec<u32>> = node
        .property("interrupt-map-mask")
        .map(|p| cells(p.value).collect());
    // A host bridge with MSIs only has no legacy routing: cloud-hypervisor
    // writes both properties empty (its DT, captured in
    // tests/fixtures/cloud-hypervisor/). A mask only means something for a
    // map's entries, so it is checked only with entries to match.
    let mask = match mask {
        None => alloc::vec![!0u32; 4],
        Some(m) if m.is_empty() && map.is_empty() => return Ok(Vec::new()),
        Some(m) => m,
    };
    if mask.len() != 4 {
        return Err(Error::Malformed("PCIe interrupt-map-mask"));
    }
    // Entries: child unit address (3) + child specifier (1), parent
    // phandle, parent unit address (#address-cells of the parent, which may
    // be absent = 0) + parent specifier (#interrupt-cells of the parent).
    let mut entries = Vec::new();
    let mut parents: Vec<(u32, usize, usize)> = Vec::new();
    let mut i = 0;
    while i < map.len() {
        let head = map
            .get(i..i + 5)
            .ok_or(Error::Malformed("PCIe interrupt-map"))?;
        // Every entry names the same GIC in practice: look each phandle up
        // once (a lookup walks the whole tree), the GIC's not at all
        // (phandles are unique: Devicetree Specification v0.4, 2.3.3).
        let (pac, pic) = match parents.iter().find(|p| p.0 == head[4]) {
            Some(&(_, pac, pic)) => (pac, pic),
            None => {
                let parent = if gic.info.phandle == Some(head[4]) {
                    Some(gic)
                } else {
                    fdt.find_phandle(head[4])
                };
                let parent = parent.ok_or(Error::Malformed("PCIe interrupt-map parent"))?;
                let pac = prop_u32(parent, "#address-cells").unwrap_or(0) as usize;
                let pic = parent
                    .interrupt_cells()
                    .ok_or(Error::Malformed("PCIe interrupt-map parent"))?;
                parents.push((head[4], pac, pic));
                (pac, pic)
            }
        };
        if pic != 3 {
            return Err(Error::Malformed("PCIe interrupt-map parent"));
        }
        let spec = map
            .get(i + 5 + pac..i + 5 + pac + pic)
            .ok_or(Error::Malformed("PCIe interrupt-map"))?;
        entries.push((head[0], head[3], gic_intid(spec, "PCIe interrupt-map")?));
        i += 5 + pac + pic;
    }

    // Sized once: QEMU's map makes 32 devices times 4 pins.
    let mut prt: Vec<(u8, u8, u32)> = Vec::with_capacity(128);
    // Where each device's entries start in `prt`.
    let mut starts = [0usize; 32];
    for dev in 0u32..32 {
        let hi = (dev << 11) & mask[0];
        starts[dev as usize] = prt.len();
        // Devices the mask cannot tell apart route alike (QEMU's mask
        // keeps two device bits: 4 searches of the map instead of 32).
        if let Some(d) = (0..dev).find(|&d| (d << 11) & mask[0] == hi) {
            let (from, to) = (starts[d as usize], starts[d as usize + 1]);
            for i in from..to {
                let (_, pin, intid) = prt[i];
                prt.push((dev as u8, pin, intid));
            }
            continue;
        }
        for pin in 1u32..=4 {
            let p = pin & mask[3];
            if let Some(e) = entries.iter().find(|e| e.0 == hi && e.1 == p) {
                prt.push((dev as u8, (pin - 1) as u8, e.2));
            }
        }
    }
    Ok(prt)
}
