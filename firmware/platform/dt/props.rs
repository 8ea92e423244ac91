//! Reading DT properties: big-endian cells, `reg` in the parent's cell
//! sizes, `status`, and GIC interrupt specifiers as INTIDs. Every read is
//! bounds-checked and a bad shape is an [`Error`], never a panic: the blob
//! comes from the VMM.

use super::walk::Node;
use super::{Error, SPI_BASE};
use alloc::vec::Vec;

/// GIC interrupt specifier cell 0: SPI or PPI (arm,gic binding).
const GIC_SPI: u32 = 0;
const GIC_PPI: u32 = 1;
/// INTID of PPI 0 (GIC architecture: SGIs 0-15, PPIs 16-31, SPIs 32+).
const PPI_BASE: u32 = 16;

/// Reads the big-endian u32 cells of a property value.
pub(super) fn cells(v: &[u8]) -> impl Iterator<Item = u32> + '_ {
    v.chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
}

/// Combines `n` (1 or 2) big-endian cells into a number.
pub(super) fn read_cells(c: &[u32], what: &'static str) -> Result<u64, Error> {
    match *c {
        [a] => Ok(a as u64),
        [a, b] => Ok(((a as u64) << 32) | b as u64),
        _ => Err(Error::Malformed(what)),
    }
}

pub(super) fn prop_u32(node: Node, name: &str) -> Option<u32> {
    node.u32(name)
}

pub(super) fn prop_str<'a>(node: Node<'_, 'a>, name: &str) -> Option<&'a str> {
    let v = node.property(name)?.value;
    let v = v.strip_suffix(&[0]).unwrap_or(v);
    core::str::from_utf8(v).ok()
}

pub(super) fn is_compatible(node: Node, with: &str) -> bool {
    node.is_compatible(with)
}

/// The properties the discovery loop looks at on every node, gathered in
/// one pass over the node (each `Node::property` lookup re-walks the
/// node's property list, which is slow under TCG).
pub(super) struct Summary<'a> {
    /// The first `compatible` strings, split once: every node is matched
    /// against a dozen of them.
    compatible: [&'a [u8]; 4],
    status: Option<&'a str>,
    pub(super) device_type: Option<&'a str>,
    pub(super) secure_status: Option<&'a str>,
}

impl<'a> Summary<'a> {
    pub(super) fn of(node: Node<'_, 'a>) -> Self {
        let mut s = Summary {
            compatible: [&[]; 4],
            status: None,
            device_type: None,
            secure_status: None,
        };
        let text = |v: &'a [u8]| core::str::from_utf8(v.strip_suffix(&[0]).unwrap_or(v)).ok();
        for p in node.properties() {
            if p.is("compatible") {
                s.compatible = [&[]; 4];
                for (slot, c) in s.compatible.iter_mut().zip(p.value.split(|&b| b == 0)) {
                    *slot = c;
                }
            } else if p.is("status") {
                s.status = text(p.value);
            } else if p.is("device_type") {
                s.device_type = text(p.value);
            } else if p.is("secure-status") {
                s.secure_status = text(p.value);
            }
        }
        s
    }

    pub(super) fn is(&self, with: &str) -> bool {
        let w = with.as_bytes();
        self.compatible
            .iter()
            .any(|c| c.len() == w.len() && *c == w)
    }

    pub(super) fn enabled(&self) -> bool {
        status_okay(self.status)
    }
}

/// Nodes with `status` other than "okay"/"ok" are absent for the normal
/// world (DT spec 0.4, 2.3.4); no `status` means okay.
pub(super) fn status_okay(status: Option<&str>) -> bool {
    matches!(status, None | Some("okay") | Some("ok"))
}

pub(super) fn enabled(node: Node) -> bool {
    status_okay(prop_str(node, "status"))
}

/// `reg` entries as (address, size) with the parent's cell sizes (at most 2
/// each, as on every 64-bit platform bus).
pub(super) fn regs(node: Node, what: &'static str) -> Result<Vec<(u64, u64)>, Error> {
    let raw = node.raw_reg().ok_or(Error::Malformed(what))?;
    let mut out = Vec::new();
    for (address, size) in raw {
        let a: Vec<u32> = cells(address).collect();
        let s: Vec<u32> = cells(size).collect();
        let size = if s.is_empty() {
            0
        } else {
            read_cells(&s, what)?
        };
        out.push((read_cells(&a, what)?, size));
    }
    if out.is_empty() {
        return Err(Error::Malformed(what));
    }
    Ok(out)
}

/// Converts one 3-cell GIC interrupt specifier to an INTID.
pub(super) fn gic_intid(spec: &[u32], what: &'static str) -> Result<u32, Error> {
    match *spec {
        [GIC_SPI, n, _] if n < 988 => Ok(SPI_BASE + n),
        [GIC_PPI, n, _] if n < 16 => Ok(PPI_BASE + n),
        _ => Err(Error::Malformed(what)),
    }
}

/// The INTIDs of a node's `interrupts`, assuming the 3-cell GIC specifier
/// (checked once against the GIC's `#interrupt-cells`).
pub(super) fn interrupts(node: Node, what: &'static str) -> Result<Vec<u32>, Error> {
    let v = node
        .property("interrupts")
        .ok_or(Error::Malformed(what))?
        .value;
    if v.is_empty() || v.len() % 12 != 0 {
        return Err(Error::Malformed(what));
    }
    let c: Vec<u32> = cells(v).collect();
    c.chunks_exact(3).map(|s| gic_intid(s, what)).collect()
}

pub(super) fn first_irq(node: Node, what: &'static str) -> Result<u32, Error> {
    Ok(interrupts(node, what)?[0])
}
