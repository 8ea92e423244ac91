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

/// A string property's bytes without the terminating NUL.
fn text(v: &[u8]) -> &[u8] {
    v.strip_suffix(&[0]).unwrap_or(v)
}

/// The `compatible` strings the discovery loop looks for, one bit each: a
/// node's strings are matched against them once, not once per question.
pub(super) mod compat {
    pub(crate) const GIC_V3: u32 = 1 << 0;
    pub(crate) const GIC_A15: u32 = 1 << 1;
    pub(crate) const GIC_400: u32 = 1 << 2;
    pub(crate) const GPIO_POWEROFF: u32 = 1 << 3;
    pub(crate) const GPIO_RESTART: u32 = 1 << 4;
    pub(crate) const PL061: u32 = 1 << 5;
    pub(crate) const PL011: u32 = 1 << 6;
    pub(crate) const TIMER_V8: u32 = 1 << 7;
    pub(crate) const TIMER_V7: u32 = 1 << 8;
    pub(crate) const PMU: u32 = 1 << 9;
    pub(crate) const PL031: u32 = 1 << 10;
    pub(crate) const PLATFORM_BUS: u32 = 1 << 11;
    pub(crate) const TPM: u32 = 1 << 12;
    pub(crate) const FW_CFG: u32 = 1 << 13;
    pub(crate) const VIRTIO_MMIO: u32 = 1 << 14;
    pub(crate) const PCIE: u32 = 1 << 15;
    pub(crate) const PSCI_02: u32 = 1 << 16;
    pub(crate) const PSCI: u32 = 1 << 17;
    pub(crate) const GPIO_KEYS: u32 = 1 << 18;
}

/// The strings of [`compat`], bit `i` for entry `i`: a table and a loop
/// are smaller than a `match` on byte strings (the image is at its
/// budget).
const COMPAT: [&[u8]; 19] = [
    b"arm,gic-v3",
    b"arm,cortex-a15-gic",
    b"arm,gic-400",
    b"gpio-poweroff",
    b"gpio-restart",
    b"arm,pl061",
    b"arm,pl011",
    b"arm,armv8-timer",
    b"arm,armv7-timer",
    b"arm,armv8-pmuv3",
    b"arm,pl031",
    b"qemu,platform",
    b"tcg,tpm-tis-mmio",
    b"qemu,fw-cfg-mmio",
    b"virtio,mmio",
    b"pci-host-ecam-generic",
    b"arm,psci-0.2",
    b"arm,psci",
    b"gpio-keys",
];

/// Bit n set: some string of [`COMPAT`] is n bytes long.
const COMPAT_LENGTHS: u32 = {
    let mut m = 0;
    let mut i = 0;
    while i < COMPAT.len() {
        m |= 1 << COMPAT[i].len();
        i += 1;
    }
    m
};

fn compat_bit(c: &[u8]) -> u32 {
    // Most strings (a CPU's, every node of a large machine) have no
    // candidate of their length.
    if c.len() >= 32 || COMPAT_LENGTHS & (1 << c.len()) == 0 {
        return 0;
    }
    // Length and first byte before the bytes: most strings differ there.
    for (i, s) in COMPAT.iter().enumerate() {
        if s.len() == c.len() && s.first() == c.first() && *s == c {
            return 1 << i;
        }
    }
    0
}

/// The properties the discovery loop matches every node against, from
/// the node's [`super::walk::Info`].
pub(super) struct Summary<'a> {
    /// The [`compat`] bits of the node's `compatible` strings.
    compatible: u32,
    status: Option<&'a [u8]>,
    pub(super) device_type: Option<&'a [u8]>,
    pub(super) secure_status: Option<&'a [u8]>,
}

impl<'a> Summary<'a> {
    pub(super) fn of(node: Node<'_, 'a>) -> Self {
        let i = &node.info;
        let compatible = i.compatible.map_or(0, |c| {
            c.split(|&b| b == 0).fold(0, |m, c| m | compat_bit(c))
        });
        Summary {
            compatible,
            status: i.status.map(text),
            device_type: i.device_type.map(text),
            secure_status: i.secure_status.map(text),
        }
    }

    /// Whether one of the node's `compatible` strings is one of `bits`.
    pub(super) fn is(&self, bits: u32) -> bool {
        self.compatible & bits != 0
    }

    pub(super) fn enabled(&self) -> bool {
        status_okay(self.status)
    }
}

/// Nodes with `status` other than "okay"/"ok" are absent for the normal
/// world (DT spec 0.4, 2.3.4); no `status` means okay.
pub(super) fn status_okay(status: Option<&[u8]>) -> bool {
    matches!(status, None | Some(b"okay") | Some(b"ok"))
}

pub(super) fn enabled(node: Node) -> bool {
    status_okay(node.info.status.map(text))
}

/// One or two big-endian cells (4 or 8 bytes) as a number.
fn number(b: &[u8], what: &'static str) -> Result<u64, Error> {
    match *b {
        [a, b, c, d] => Ok(u64::from(u32::from_be_bytes([a, b, c, d]))),
        [a, b, c, d, e, f, g, h] => Ok(u64::from_be_bytes([a, b, c, d, e, f, g, h])),
        _ => Err(Error::Malformed(what)),
    }
}

/// A whole-cell property (trailing bytes short of a cell ignored) of one
/// or two cells as a number.
pub(super) fn cells_number(v: &[u8], what: &'static str) -> Result<u64, Error> {
    number(&v[..v.len() & !3], what)
}

/// One `reg` entry's (address, size) cell slices as numbers (at most 2
/// cells each, as on every 64-bit platform bus; no size cells is size 0).
fn reg_entry((address, size): (&[u8], &[u8]), what: &'static str) -> Result<(u64, u64), Error> {
    let size = if size.is_empty() {
        0
    } else {
        number(size, what)?
    };
    Ok((number(address, what)?, size))
}

/// `reg` entries as (address, size) with the parent's cell sizes.
pub(super) fn regs(node: Node, what: &'static str) -> Result<Vec<(u64, u64)>, Error> {
    let raw = node.raw_reg().ok_or(Error::Malformed(what))?;
    let out = raw
        .map(|e| reg_entry(e, what))
        .collect::<Result<Vec<_>, _>>()?;
    if out.is_empty() {
        return Err(Error::Malformed(what));
    }
    Ok(out)
}

/// The first `reg` entry: what [`regs`] would return first, without the
/// list (every entry has the same cell sizes, so the first decodes when
/// all do).
pub(super) fn first_reg(node: Node, what: &'static str) -> Result<(u64, u64), Error> {
    let mut raw = node.raw_reg().ok_or(Error::Malformed(what))?;
    reg_entry(raw.next().ok_or(Error::Malformed(what))?, what)
}

/// Converts one 3-cell GIC interrupt specifier to an INTID.
pub(super) fn gic_intid(spec: &[u32], what: &'static str) -> Result<u32, Error> {
    match *spec {
        [GIC_SPI, n, _] if n < 988 => Ok(SPI_BASE + n),
        [GIC_PPI, n, _] if n < 16 => Ok(PPI_BASE + n),
        _ => Err(Error::Malformed(what)),
    }
}

/// A node's `interrupts` as 3-cell GIC specifiers (the cell count is
/// checked once against the GIC's `#interrupt-cells`), each decoded.
fn specifiers<'a>(
    node: Node<'_, 'a>,
    what: &'static str,
) -> Result<impl Iterator<Item = Result<u32, Error>> + 'a, Error> {
    let v = node.info.interrupts.ok_or(Error::Malformed(what))?;
    if v.is_empty() || v.len() % 12 != 0 {
        return Err(Error::Malformed(what));
    }
    Ok(v.chunks_exact(12).map(move |s| {
        let c = |i: usize| u32::from_be_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]);
        gic_intid(&[c(0), c(4), c(8)], what)
    }))
}

/// The INTIDs of a node's `interrupts`.
pub(super) fn interrupts(node: Node, what: &'static str) -> Result<Vec<u32>, Error> {
    specifiers(node, what)?.collect()
}

/// The first INTID of a node's `interrupts`, every specifier checked.
pub(super) fn first_irq(node: Node, what: &'static str) -> Result<u32, Error> {
    let mut first = None;
    for i in specifiers(node, what)? {
        first.get_or_insert(i?);
    }
    first.ok_or(Error::Malformed(what))
}

#[cfg(test)]
mod tests {
    use super::{compat, compat_bit};

    #[test]
    fn compat_bits_follow_the_table() {
        assert_eq!(compat_bit(b"arm,gic-v3"), compat::GIC_V3);
        assert_eq!(compat_bit(b"arm,pl011"), compat::PL011);
        assert_eq!(compat_bit(b"pci-host-ecam-generic"), compat::PCIE);
        assert_eq!(compat_bit(b"gpio-keys"), compat::GPIO_KEYS);
        assert_eq!(compat_bit(b"arm,psci"), compat::PSCI);
        assert_eq!(compat_bit(b"arm,psci-0"), 0);
    }
}
