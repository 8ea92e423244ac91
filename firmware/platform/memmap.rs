//! The guest-physical memory map: what is RAM, what the firmware reserves,
//! and where loaded images may go.
//!
//! Region kinds use the e820 type numbers (ACPI 6.5 table 15.1 "Address
//! Range Types"), which x86 hands to Linux as they are; the arm code maps
//! them onto EFI memory types.

use alloc::vec::Vec;
use core::fmt;

/// Address range types (ACPI 6.5 section 15.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u32)]
pub enum Kind {
    Ram = 1,
    Reserved = 2,
    Acpi = 3,
    Nvs = 4,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub addr: u64,
    pub size: u64,
    pub kind: Kind,
}

impl Region {
    pub fn end(&self) -> u64 {
        self.addr + self.size
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The VMM's map is not a whole number of entries.
    BadLength(usize),
    /// An entry wraps around the address space.
    Overflow { addr: u64, size: u64 },
    /// The VMM reported no RAM at all.
    NoRam,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::BadLength(n) => write!(
                f,
                "memory map of {n} bytes is not a whole number of 20-byte entries"
            ),
            Error::Overflow { addr, size } => {
                write!(
                    f,
                    "memory map entry {addr:#x}+{size:#x} overflows the address space"
                )
            }
            Error::NoRam => f.write_str("memory map holds no RAM"),
        }
    }
}

/// Size of one QEMU `etc/e820` entry: le64 address, le64 length, le32 type
/// (QEMU hw/i386/e820_memory_layout.h).
const E820_ENTRY_LEN: usize = 20;

/// A sorted, non-overlapping memory map.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryMap {
    regions: Vec<Region>,
}

impl MemoryMap {
    pub fn new() -> Self {
        MemoryMap {
            regions: Vec::new(),
        }
    }

    /// Parses QEMU's `etc/e820` fw_cfg file. RAM comes first; the VMM's
    /// other ranges are then laid over it (types 3 and 4 as themselves, any
    /// other type as reserved), so nothing the VMM holds back becomes RAM.
    pub fn from_qemu_e820(bytes: &[u8]) -> Result<Self, Error> {
        if !bytes.len().is_multiple_of(E820_ENTRY_LEN) {
            return Err(Error::BadLength(bytes.len()));
        }
        let mut entries = Vec::with_capacity(bytes.len() / E820_ENTRY_LEN);
        for e in bytes.chunks_exact(E820_ENTRY_LEN) {
            let addr = u64::from_le_bytes(e[0..8].try_into().unwrap());
            let size = u64::from_le_bytes(e[8..16].try_into().unwrap());
            let kind = u32::from_le_bytes(e[16..20].try_into().unwrap());
            if addr.checked_add(size).is_none() {
                return Err(Error::Overflow { addr, size });
            }
            entries.push((addr, size, kind));
        }
        let mut map = MemoryMap::new();
        for &(addr, size, _) in entries.iter().filter(|e| e.2 == Kind::Ram as u32) {
            map.set(addr, size, Kind::Ram);
        }
        for &(addr, size, kind) in entries.iter().filter(|e| e.2 != Kind::Ram as u32) {
            let kind = match kind {
                3 => Kind::Acpi,
                4 => Kind::Nvs,
                _ => Kind::Reserved,
            };
            map.set(addr, size, kind);
        }
        // Counted once the VMM's other ranges are laid over: RAM they cover
        // entirely is no RAM for the firmware or Linux.
        if map.ram_total() == 0 {
            return Err(Error::NoRam);
        }
        Ok(map)
    }

    /// Marks `[addr, addr + size)` as `kind`, replacing whatever was there.
    pub fn set(&mut self, addr: u64, size: u64, kind: Kind) {
        if size == 0 {
            return;
        }
        let end = addr.saturating_add(size);
        let mut out = Vec::with_capacity(self.regions.len() + 2);
        for r in &self.regions {
            // What is left of `r` below and above the new range, in order.
            for (a, e) in [(r.addr, r.end().min(addr)), (r.addr.max(end), r.end())] {
                if a < e {
                    out.push(Region {
                        addr: a,
                        size: e - a,
                        kind: r.kind,
                    });
                }
            }
        }
        // The pieces stay sorted, so the new range goes in at its place (no
        // sort: core's costs the image kilobytes).
        let at = out.partition_point(|r| r.addr < addr);
        let new = Region {
            addr,
            size: end - addr,
            kind,
        };
        out.insert(at, new);
        // Merge neighbours of the same kind.
        out.dedup_by(|r, last| {
            let merge = last.kind == r.kind && last.end() == r.addr;
            if merge {
                last.size += r.size;
            }
            merge
        });
        self.regions = out;
    }

    /// Marks a range reserved only where it is RAM now (e.g. a device window
    /// that must not be handed out, without inventing memory elsewhere).
    pub fn reserve_ram(&mut self, addr: u64, size: u64, kind: Kind) {
        let end = addr.saturating_add(size);
        let overlaps: Vec<(u64, u64)> = self
            .regions
            .iter()
            .filter(|r| r.kind == Kind::Ram && r.addr < end && r.end() > addr)
            .map(|r| (r.addr.max(addr), r.end().min(end)))
            .collect();
        for (a, e) in overlaps {
            self.set(a, e - a, kind);
        }
    }

    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// Total bytes of RAM.
    pub fn ram_total(&self) -> u64 {
        self.regions
            .iter()
            .filter(|r| r.kind == Kind::Ram)
            .map(|r| r.size)
            .sum()
    }

    /// Whether `[addr, addr + size)` is entirely RAM.
    pub fn is_ram(&self, addr: u64, size: u64) -> bool {
        let Some(end) = addr.checked_add(size) else {
            return false;
        };
        self.regions
            .iter()
            .any(|r| r.kind == Kind::Ram && r.addr <= addr && end <= r.end())
    }

    /// The end of the RAM block that starts at or below `addr`'s block and
    /// lies under 4 GiB: the top of "low memory".
    pub fn ram_end_below_4g(&self) -> u64 {
        self.regions
            .iter()
            .filter(|r| r.kind == Kind::Ram && r.addr < 1 << 32)
            .map(|r| r.end().min(1 << 32))
            .max()
            .unwrap_or(0)
    }

    /// The highest `align`-aligned address at which `size` bytes of RAM fit
    /// entirely below `limit`, avoiding every range in `avoid`.
    pub fn find_top(&self, size: u64, align: u64, limit: u64, avoid: &[(u64, u64)]) -> Option<u64> {
        debug_assert!(align.is_power_of_two());
        let mut best: Option<u64> = None;
        for r in self.regions.iter().filter(|r| r.kind == Kind::Ram) {
            // Walk down from the top of this region, stepping below any
            // avoided range we collide with.
            let mut top = r.end().min(limit);
            while let Some(start) = top.checked_sub(size) {
                let start = start & !(align - 1);
                if start < r.addr {
                    break;
                }
                let end = start + size;
                match avoid
                    .iter()
                    .filter(|&&(a, e)| a < end && e > start)
                    .map(|&(a, _)| a)
                    .min()
                {
                    Some(a) => top = a,
                    None => {
                        if best.is_none_or(|b| start > b) {
                            best = Some(start);
                        }
                        break;
                    }
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e820(entries: &[(u64, u64, u32)]) -> Vec<u8> {
        let mut v = Vec::new();
        for (a, s, t) in entries {
            v.extend_from_slice(&a.to_le_bytes());
            v.extend_from_slice(&s.to_le_bytes());
            v.extend_from_slice(&t.to_le_bytes());
        }
        v
    }

    #[test]
    fn ram_covered_by_reserved_ranges_is_no_ram() {
        // Found by the e820 fuzz target (minimised): the map used to be
        // accepted with no RAM left once the reserved range was laid over.
        let fuzz = [
            0x0a, 0x5f, 0x5f, 0x5f, 0x5f, 0x5f, 0x5f, 0x5f, 0x5f, 0x5f, 0x5f, 0x5f, 0x5f, 0x5f,
            0x5f, 0x5f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, 0x00, 0x00, 0x00, 0x00,
            0x5f, 0x5f, 0x5f, 0x5f,
        ];
        assert_eq!(MemoryMap::from_qemu_e820(&fuzz), Err(Error::NoRam));
        let covered = e820(&[(0x1000, 0x1000, 1), (0, 0x10_0000, 2)]);
        assert_eq!(MemoryMap::from_qemu_e820(&covered), Err(Error::NoRam));
        // Partly covered RAM stays.
        let partly = e820(&[(0, 0x2000, 1), (0, 0x1000, 2)]);
        assert_eq!(
            MemoryMap::from_qemu_e820(&partly).unwrap().ram_total(),
            0x1000
        );
    }

    #[test]
    fn parses_qemu_map_with_high_ram() {
        let m = MemoryMap::from_qemu_e820(&e820(&[
            (0, 0x8000_0000, 1),
            (0x1_0000_0000, 0x8000_0000, 1),
            (0xfeff_c000, 0x4000, 2),
        ]))
        .unwrap();
        assert_eq!(m.ram_total(), 4 << 30);
        assert_eq!(m.ram_end_below_4g(), 0x8000_0000);
        assert_eq!(m.regions().len(), 3);
        assert_eq!(
            m.regions()[1],
            Region {
                addr: 0xfeff_c000,
                size: 0x4000,
                kind: Kind::Reserved
            }
        );
    }

    #[test]
    fn rejects_bad_maps() {
        assert_eq!(
            MemoryMap::from_qemu_e820(&[0; 19]),
            Err(Error::BadLength(19))
        );
        assert_eq!(
            MemoryMap::from_qemu_e820(&e820(&[(0, 0x1000, 2)])),
            Err(Error::NoRam)
        );
        assert!(matches!(
            MemoryMap::from_qemu_e820(&e820(&[(u64::MAX, 2, 1)])),
            Err(Error::Overflow { .. })
        ));
    }

    #[test]
    fn set_splits_and_merges() {
        let mut m = MemoryMap::new();
        m.set(0, 0x10_0000, Kind::Ram);
        m.set(0xa_0000, 0x6_0000, Kind::Reserved);
        m.set(0x10_0000, 0x10_0000, Kind::Ram);
        assert_eq!(
            m.regions(),
            &[
                Region {
                    addr: 0,
                    size: 0xa_0000,
                    kind: Kind::Ram
                },
                Region {
                    addr: 0xa_0000,
                    size: 0x6_0000,
                    kind: Kind::Reserved
                },
                Region {
                    addr: 0x10_0000,
                    size: 0x10_0000,
                    kind: Kind::Ram
                },
            ]
        );
        m.set(0xa_0000, 0x6_0000, Kind::Ram);
        assert_eq!(m.regions().len(), 1);
        assert!(m.is_ram(0x1000, 0x1f_f000));
        assert!(!m.is_ram(0x1000, 0x20_0000));
    }

    #[test]
    fn reserve_ram_only_touches_ram() {
        let mut m = MemoryMap::new();
        m.set(0, 0x1000_0000, Kind::Ram);
        m.reserve_ram(0x0f00_0000, 0x2000_0000, Kind::Reserved);
        assert_eq!(m.ram_total(), 0x0f00_0000);
        assert_eq!(m.regions().last().unwrap().end(), 0x1000_0000);
    }

    #[test]
    fn find_top_avoids_ranges_and_respects_limits() {
        let mut m = MemoryMap::new();
        m.set(0, 0x2000_0000, Kind::Ram);
        assert_eq!(
            m.find_top(0x1000_0000, 0x1000, 0x2000_0000, &[]),
            Some(0x1000_0000)
        );
        assert_eq!(
            m.find_top(
                0x1000_0000,
                0x1000,
                0x2000_0000,
                &[(0x1800_0000, 0x1900_0000)]
            ),
            Some(0x0800_0000)
        );
        assert_eq!(m.find_top(0x1000, 0x1000, 0x1800, &[]), Some(0));
        assert_eq!(m.find_top(0x3000_0000, 0x1000, u64::MAX, &[]), None);
        assert_eq!(
            m.find_top(0x1000_0000, 0x1000, u64::MAX, &[(0x100_0000, 0x1f00_0000)]),
            None
        );
    }
}
