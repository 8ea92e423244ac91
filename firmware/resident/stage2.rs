//! Stage-2 translation tables for the resident EL2 firmware: an identity
//! map of the guest-physical (IPA) space in which the firmware's own memory
//! (and the flash it runs from) is left unmapped, so the kernel at EL1 can
//! neither read nor write it.
//!
//! Format from the Arm ARM (DDI 0487) D8 "The AArch64 Virtual Memory System
//! Architecture": 4 KiB granule, 40-bit IPA, lookup starting at level 1 with
//! two concatenated level-1 tables (D8.2.5, VTCR_EL2.SL0 = 1).

use super::{GIB, MIB2, PAGE};
use core::fmt;

/// IPA size: 1 TiB covers QEMU virt's RAM and its high PCIe windows at
/// 256 GiB and 512 GiB (hw/arm/virt.c "extended memory map").
pub const IPA_BITS: u32 = 40;
const L1_ENTRIES: usize = 1 << (IPA_BITS - 30);

/// Entries of one translation table.
pub type Table = [u64; 512];
/// Level-1 tables needed for the concatenated first level.
pub const L1_TABLES: usize = L1_ENTRIES / 512;

// Stage-2 descriptor bits (DDI 0487 D8.3): valid, table/page, AF, SH, S2AP,
// MemAttr.
const VALID: u64 = 1 << 0;
const TABLE: u64 = 1 << 1;
const PAGE_DESC: u64 = 1 << 1;
const AF: u64 = 1 << 10;
const SH_INNER: u64 = 3 << 8;
const S2AP_RW: u64 = 3 << 6;
/// MemAttr[3:0] with FWB off: 0b1111 Normal write-back, 0b0000 Device-nGnRnE.
const ATTR_NORMAL: u64 = 0xf << 2;
const ATTR_DEVICE: u64 = 0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Not enough tables were supplied for the holes' splits.
    OutOfTables,
    /// A hole is not 4 KiB aligned or lies outside the IPA space.
    BadHole(u64, u64),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::OutOfTables => f.write_str("stage-2: out of translation tables"),
            Error::BadHole(a, e) => write!(f, "stage-2: cannot protect {a:#x}..{e:#x}"),
        }
    }
}

/// What the firmware writes to VTTBR_EL2 and VTCR_EL2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub vttbr: u64,
    pub vtcr: u64,
}

/// VTCR_EL2 (DDI 0487 D13.2 "VTCR_EL2"): T0SZ = 64 - IPA_BITS, SL0 = 1
/// (start at level 1), inner/outer write-back, inner shareable, 4 KiB
/// granule, PS = 40 bits (0b010), RES1 bit 31.
pub const VTCR: u64 =
    (64 - IPA_BITS as u64) | 1 << 6 | 1 << 8 | 1 << 10 | 3 << 12 | 0b010 << 16 | 1 << 31;

/// Builds the tables. `tables[..L1_TABLES]` become the concatenated first
/// level (their physical base `phys` must be aligned to their combined
/// size); the rest are used for splits. RAM ranges get Normal memory, every
/// other GiB Device; `holes` are left unmapped.
pub fn build(
    tables: &mut [Table],
    phys: u64,
    ram: &[(u64, u64)],
    holes: &[(u64, u64)],
) -> Result<Config, Error> {
    if tables.len() < L1_TABLES {
        return Err(Error::OutOfTables);
    }
    for &(a, e) in holes {
        if a % PAGE != 0 || e % PAGE != 0 || e <= a || e > 1 << IPA_BITS {
            return Err(Error::BadHole(a, e));
        }
    }
    let normal = |addr: u64, size: u64| ram.iter().any(|&(a, e)| a < addr + size && e > addr);
    let hole_in = |addr: u64, size: u64| holes.iter().any(|&(a, e)| a < addr + size && e > addr);
    let leaf = |addr: u64, size: u64| {
        AF | S2AP_RW
            | if normal(addr, size) {
                ATTR_NORMAL | SH_INNER
            } else {
                ATTR_DEVICE
            }
    };
    let mut next = L1_TABLES;
    let mut alloc = |tables: &mut [Table]| -> Result<(usize, u64), Error> {
        let i = next;
        if i >= tables.len() {
            return Err(Error::OutOfTables);
        }
        next += 1;
        tables[i] = [0; 512];
        Ok((i, phys + (i as u64) * PAGE))
    };
    for l1 in 0..L1_ENTRIES {
        let gib = l1 as u64 * GIB;
        let desc = if !hole_in(gib, GIB) {
            gib | leaf(gib, GIB) | VALID
        } else {
            let (t2, t2_phys) = alloc(tables)?;
            for l2 in 0..512 {
                let mib2 = gib + l2 as u64 * MIB2;
                tables[t2][l2] = if !hole_in(mib2, MIB2) {
                    mib2 | leaf(mib2, MIB2) | VALID
                } else if holes.iter().any(|&(a, e)| a <= mib2 && mib2 + MIB2 <= e) {
                    0
                } else {
                    let (t3, t3_phys) = alloc(tables)?;
                    for (l3, e) in tables[t3].iter_mut().enumerate() {
                        let page = mib2 + l3 as u64 * PAGE;
                        *e = if hole_in(page, PAGE) {
                            0
                        } else {
                            page | leaf(page, PAGE) | PAGE_DESC | VALID
                        };
                    }
                    t3_phys | TABLE | VALID
                };
            }
            t2_phys | TABLE | VALID
        };
        tables[l1 / 512][l1 % 512] = desc;
    }
    Ok(Config {
        vttbr: phys,
        vtcr: VTCR,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// Walks the tables like the MMU would: Some((output, normal)) or None.
    fn walk(tables: &[Table], phys: u64, ipa: u64) -> Option<(u64, bool)> {
        let idx = |p: u64| ((p - phys) / PAGE) as usize;
        let l1 = (ipa >> 30) as usize;
        let d = tables[l1 / 512][l1 % 512];
        if d & VALID == 0 {
            return None;
        }
        let out = |d: u64, mask: u64| {
            Some((
                (d & 0xffff_ffff_f000 & !mask) | (ipa & mask),
                d & ATTR_NORMAL == ATTR_NORMAL,
            ))
        };
        if d & TABLE == 0 {
            return out(d, GIB - 1);
        }
        let d = tables[idx(d & 0xffff_ffff_f000)][((ipa >> 21) & 511) as usize];
        if d & VALID == 0 {
            return None;
        }
        if d & TABLE == 0 {
            return out(d, MIB2 - 1);
        }
        let d = tables[idx(d & 0xffff_ffff_f000)][((ipa >> 12) & 511) as usize];
        if d & VALID == 0 {
            return None;
        }
        out(d, PAGE - 1)
    }

    #[test]
    fn identity_map_with_holes() {
        let mut t = vec![[0u64; 512]; 8];
        let phys = 0x4000_0000;
        let ram = [(0x4000_0000, 0x6000_0000)];
        let holes = [
            (0, 0x0800_0000),
            (0x5fe0_0000, 0x5ff0_0000),
            (0x5ff0_3000, 0x5ff0_4000),
        ];
        let cfg = build(&mut t, phys, &ram, &holes).unwrap();
        assert_eq!(cfg.vttbr, phys);
        assert_eq!(walk(&t, phys, 0x0), None);
        assert_eq!(walk(&t, phys, 0x07ff_f000), None);
        assert_eq!(walk(&t, phys, 0x0900_0000), Some((0x0900_0000, false)));
        assert_eq!(walk(&t, phys, 0x4123_4567), Some((0x4123_4567, true)));
        assert_eq!(walk(&t, phys, 0x5fe0_0000), None);
        assert_eq!(walk(&t, phys, 0x5fef_f000), None);
        assert_eq!(walk(&t, phys, 0x5ff0_0000), Some((0x5ff0_0000, true)));
        assert_eq!(walk(&t, phys, 0x5ff0_3800), None);
        assert_eq!(walk(&t, phys, 0x5ff0_4000), Some((0x5ff0_4000, true)));
        assert_eq!(
            walk(&t, phys, 0x80_0000_1000),
            Some((0x80_0000_1000, false))
        );
        // QEMU virt's second GIC redistributor region (-smp > 123): Device,
        // at 256 GiB and wherever a large maxmem pushes it below 1 TiB.
        for gicr2 in [0x40_0000_0000, 0x40_03ff_fffc, 0xfa_c000_0000] {
            assert_eq!(walk(&t, phys, gicr2), Some((gicr2, false)));
        }
        assert_eq!(
            walk(&t, phys, (1 << IPA_BITS) - 1),
            Some(((1 << IPA_BITS) - 1, false))
        );
    }

    #[test]
    fn rejects_bad_input() {
        let mut t = vec![[0u64; 512]; 2];
        assert_eq!(
            build(&mut t, 0, &[], &[(0x1000, 0x2000)]),
            Err(Error::OutOfTables)
        );
        assert_eq!(
            build(&mut t, 0, &[], &[(0x1001, 0x2000)]),
            Err(Error::BadHole(0x1001, 0x2000))
        );
        assert_eq!(build(&mut t[..1], 0, &[], &[]), Err(Error::OutOfTables));
    }

    #[test]
    fn vtcr_fields() {
        assert_eq!(VTCR & 0x3f, 24);
        assert_eq!((VTCR >> 6) & 3, 1);
        assert_eq!((VTCR >> 16) & 7, 0b010);
    }
}
