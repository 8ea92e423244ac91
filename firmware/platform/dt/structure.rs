//! The walk over the whole blob that comes before `walk` reads it (the
//! module comment of `dt` says why), after the Devicetree
//! Specification v0.4, chapter 5.

use super::{Error, FDT_MAGIC};

/// Structure block tokens (Devicetree Specification v0.4, 5.4.1).
pub(crate) const FDT_BEGIN_NODE: u32 = 1;
pub(crate) const FDT_END_NODE: u32 = 2;
pub(crate) const FDT_PROP: u32 = 3;
pub(crate) const FDT_END: u32 = 9;

/// Deepest node nesting accepted (the root is depth 1). The `fdt` crate
/// keeps 63 levels; QEMU's trees are 4 deep.
pub(super) const MAX_DEPTH: usize = 32;

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let c = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
}

/// The length of the NUL-terminated UTF-8 string at the start of `b`:
/// ASCII up to the NUL needs no decoding (node names are ASCII; decoding
/// each cost 24,000 guest instructions at 64 vCPUs).
fn c_str(b: &[u8]) -> Option<usize> {
    let end = b.iter().position(|&c| c == 0 || c >= 0x80)?;
    if b[end] == 0 {
        return Some(end);
    }
    let end = end + b[end..].iter().position(|&c| c == 0)?;
    core::str::from_utf8(&b[..end]).ok().map(str::len)
}

/// Which offsets of the strings block start a NUL-terminated UTF-8
/// string, answered without decoding the string each time a property
/// names it (QEMU's properties share a few dozen names).
struct Names<'a> {
    strings: &'a [u8],
    /// Whether the whole block is UTF-8; then a string starting at a
    /// character boundary and ending at a NUL is too.
    utf8: bool,
    /// One past the last NUL: a string starting before it is terminated.
    terminated: usize,
}

impl<'a> Names<'a> {
    fn of(strings: &'a [u8]) -> Self {
        Names {
            strings,
            utf8: core::str::from_utf8(strings).is_ok(),
            terminated: strings.iter().rposition(|&b| b == 0).map_or(0, |i| i + 1),
        }
    }

    fn valid(&self, off: usize) -> bool {
        match self.strings.get(off..) {
            // A UTF-8 continuation byte is 0b10xx_xxxx (Unicode 15, 3.9).
            Some(rest) if self.utf8 => {
                off < self.terminated && rest.first().is_some_and(|&b| b & 0xc0 != 0x80)
            }
            Some(rest) => c_str(rest).is_some(),
            None => false,
        }
    }
}

/// Checks that `blob` is a flattened device tree whose every part the
/// `fdt` crate reads lies inside it and is well formed (DT spec v0.4,
/// chapter 5): the header's blocks within `totalsize`, one unnamed root
/// node, every node and property name a NUL-terminated UTF-8 string,
/// every property inside the structure block with its name inside the
/// strings block, `#address-cells`/`#size-cells` exactly one cell, the
/// nesting at most [`MAX_DEPTH`], and FDT_END after the root. NOP tokens,
/// which QEMU never writes and the crate skips only in some places, are
/// refused too.
pub fn check_structure(blob: &[u8]) -> Result<(), Error> {
    let hdr = |i: usize| be32(blob, 4 * i).ok_or(Error::NotFdt);
    if hdr(0)? != FDT_MAGIC {
        return Err(Error::NotFdt);
    }
    let total = hdr(1)? as usize;
    if total > blob.len() || total < 40 {
        return Err(Error::NotFdt);
    }
    let block = |off: u32, size: u32| {
        let (off, size) = (off as usize, size as usize);
        off.checked_add(size)
            .filter(|&end| off >= 40 && end <= total)
            .map(|end| &blob[off..end])
            .ok_or(Error::NotFdt)
    };
    let structure = block(hdr(2)?, hdr(9)?)?;
    let strings = block(hdr(3)?, hdr(8)?)?;

    let names = Names::of(strings);
    let bad = Error::Malformed("structure block");
    let token = |at: usize| be32(structure, at).ok_or(Error::Malformed("structure block"));
    let mut at = 0;
    let mut depth = 0usize;
    loop {
        match token(at)? {
            FDT_BEGIN_NODE => {
                let name = c_str(structure.get(at + 4..).ok_or(bad.clone())?).ok_or(bad.clone())?;
                // The root, and only the root, has the empty name.
                if (depth == 0) != (name == 0) {
                    return Err(bad);
                }
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(Error::Malformed("device tree nesting"));
                }
                at += 4 + (name + 1).next_multiple_of(4);
                // Properties come before the node's children.
                while token(at)? == FDT_PROP {
                    let len = token(at + 4)? as usize;
                    let name_off = token(at + 8)? as usize;
                    let value = at
                        .checked_add(12)
                        .and_then(|v| Some(v..v.checked_add(len)?))
                        .and_then(|r| structure.get(r))
                        .ok_or(bad.clone())?;
                    let name = strings.get(name_off..).ok_or(bad.clone())?;
                    if !names.valid(name_off) {
                        return Err(Error::Malformed("property name"));
                    }
                    if value.len() != 4
                        && name.first() == Some(&b'#')
                        && (name.starts_with(b"#address-cells\0")
                            || name.starts_with(b"#size-cells\0"))
                    {
                        return Err(Error::Malformed("#address-cells/#size-cells"));
                    }
                    at += 12 + len.next_multiple_of(4);
                }
            }
            FDT_END_NODE => {
                depth = depth.checked_sub(1).ok_or(bad.clone())?;
                at += 4;
            }
            FDT_END if depth == 0 && at > 0 => return Ok(()),
            _ => return Err(bad),
        }
        if depth == 0 && token(at)? != FDT_END {
            return Err(bad);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Names;

    #[test]
    fn names_are_checked_with_and_without_a_utf8_block() {
        // "reg\0", "é\0" (2 bytes), an unterminated tail.
        let good = b"reg\0\xc3\xa9\0ab";
        let n = Names::of(good);
        assert!(n.utf8);
        assert!(n.valid(0) && n.valid(2) && n.valid(3) && n.valid(4));
        // Inside "é", and past the last NUL.
        assert!(!n.valid(5) && !n.valid(7) && !n.valid(9));
        // A block that is not UTF-8 as a whole: each name on its own.
        let bad = b"reg\0\xff\0";
        let n = Names::of(bad);
        assert!(!n.utf8);
        assert!(n.valid(0) && !n.valid(4) && n.valid(5) && !n.valid(6));
    }
}
