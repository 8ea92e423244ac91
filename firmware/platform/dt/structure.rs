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

/// The NUL-terminated UTF-8 string at the start of `b`, and its length.
fn c_str(b: &[u8]) -> Option<&str> {
    let end = b.iter().position(|&c| c == 0)?;
    core::str::from_utf8(&b[..end]).ok()
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

    let bad = Error::Malformed("structure block");
    let token = |at: usize| be32(structure, at).ok_or(Error::Malformed("structure block"));
    let mut at = 0;
    let mut depth = 0usize;
    loop {
        match token(at)? {
            FDT_BEGIN_NODE => {
                let name = c_str(structure.get(at + 4..).ok_or(bad.clone())?).ok_or(bad.clone())?;
                // The root, and only the root, has the empty name.
                if (depth == 0) != name.is_empty() {
                    return Err(bad);
                }
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(Error::Malformed("device tree nesting"));
                }
                at += 4 + (name.len() + 1).next_multiple_of(4);
                // Properties come before the node's children.
                while token(at)? == FDT_PROP {
                    let len = token(at + 4)? as usize;
                    let name_off = token(at + 8)? as usize;
                    let value = at
                        .checked_add(12)
                        .and_then(|v| Some(v..v.checked_add(len)?))
                        .and_then(|r| structure.get(r))
                        .ok_or(bad.clone())?;
                    let name = c_str(strings.get(name_off..).ok_or(bad.clone())?)
                        .ok_or(Error::Malformed("property name"))?;
                    if matches!(name, "#address-cells" | "#size-cells") && value.len() != 4 {
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
