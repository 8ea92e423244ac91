//! The minimal EFI hand-off Linux arm64 needs to boot with ACPI but without
//! UEFI boot services: a system table whose configuration tables point at
//! the RSDP and declare that no runtime services exist, plus an EFI memory
//! map. Linux finds both through `/chosen` (`linux,uefi-system-table`,
//! `linux,uefi-mmap-*`; Linux `drivers/firmware/efi/fdtparams.c`).
//!
//! Linux also needs its own LINUX_EFI_MEMRESERVE table (normally installed
//! by its EFI stub): the GICv3 ITS driver records its LPI tables there so a
//! kexec'd kernel keeps them, and warns when the table is missing.
//!
//! Layouts are from the UEFI specification 2.10: 4.2 (EFI_TABLE_HEADER),
//! 4.3 (EFI_SYSTEM_TABLE), 4.6 (EFI_CONFIGURATION_TABLE and
//! EFI_RT_PROPERTIES_TABLE), 7.2 (EFI_MEMORY_DESCRIPTOR, GetMemoryMap).

use alloc::vec::Vec;
use core::fmt;

/// EFI_MEMORY_TYPE values (UEFI 2.10 table 7.5).
pub mod mem_type {
    pub const RESERVED: u32 = 0;
    pub const LOADER_CODE: u32 = 1;
    pub const LOADER_DATA: u32 = 2;
    pub const BOOT_SERVICES_CODE: u32 = 3;
    pub const BOOT_SERVICES_DATA: u32 = 4;
    pub const RUNTIME_SERVICES_CODE: u32 = 5;
    pub const RUNTIME_SERVICES_DATA: u32 = 6;
    pub const CONVENTIONAL: u32 = 7;
    pub const ACPI_RECLAIM: u32 = 9;
    pub const ACPI_NVS: u32 = 10;
}

/// EFI_MEMORY_WB: RAM that may be mapped write-back cacheable (UEFI 2.10 7.2).
pub const MEMORY_WB: u64 = 0x8;
pub const PAGE_SIZE: u64 = 4096;
/// sizeof(EFI_MEMORY_DESCRIPTOR) including the padding after Type.
pub const DESC_SIZE: usize = 40;
/// EFI_MEMORY_DESCRIPTOR_VERSION.
pub const DESC_VERSION: u32 = 1;

/// "IBI SYST" (EFI_SYSTEM_TABLE_SIGNATURE).
const SYSTEM_TABLE_SIGNATURE: u64 = 0x5453_5953_2049_4249;
/// EFI_2_70_SYSTEM_TABLE_REVISION: the first revision that defines
/// EFI_RT_PROPERTIES_TABLE.
const SYSTEM_TABLE_REVISION: u32 = (2 << 16) | 70;
const SYSTEM_TABLE_SIZE: usize = 120;
const CONFIG_ENTRY_SIZE: usize = 24;
const RT_PROPERTIES_SIZE: usize = 8;
/// EFI_RT_PROPERTIES_TABLE_VERSION.
const RT_PROPERTIES_VERSION: u16 = 1;

/// An EFI_GUID in its in-memory byte order (first three fields
/// little-endian), from its text as one number
/// (`0x8868e871_e4f1_11d3_bc22_0080c73c8881`).
pub const fn guid(g: u128) -> [u8; 16] {
    let b = g.to_be_bytes();
    [
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13],
        b[14], b[15],
    ]
}

/// EFI_ACPI_20_TABLE_GUID 8868e871-e4f1-11d3-bc22-0080c73c8881 (UEFI 2.10 4.6.1).
pub const ACPI_20_TABLE_GUID: [u8; 16] = guid(0x8868e871_e4f1_11d3_bc22_0080c73c8881);
/// EFI_RT_PROPERTIES_TABLE_GUID eb66918a-7eef-402a-842e-931d21c38ae9 (UEFI 2.10 4.6.2).
pub const RT_PROPERTIES_TABLE_GUID: [u8; 16] = guid(0xeb66918a_7eef_402a_842e_931d21c38ae9);

/// LINUX_EFI_MEMRESERVE_TABLE_GUID 888eb0c6-8ede-4ff5-a8f0-9aee5cb977c2
/// (Linux include/linux/efi.h).
pub const LINUX_MEMRESERVE_TABLE_GUID: [u8; 16] = guid(0x888eb0c6_8ede_4ff5_a8f0_9aee5cb977c2);
/// SMBIOS3_TABLE_GUID f2fd1544-9794-4a2c-992e-e5bbcf20e394 (UEFI 2.10
/// 4.6.1; DSP0134 5.2.2: the 64-bit entry point).
pub const SMBIOS3_TABLE_GUID: [u8; 16] = guid(0xf2fd1544_9794_4a2c_992e_e5bbcf20e394);
/// struct linux_efi_memreserve { int size; int count; u64 next; entries[] }:
/// an empty root, which Linux later links further entries behind.
const MEMRESERVE_SIZE: usize = 16;
/// ACPI, RT properties, memreserve, and SMBIOS when there is one.
const CONFIG_ENTRIES: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// A carve-out lies outside RAM, overlaps another one, or is empty.
    BadRegion { base: u64, size: u64 },
    /// The table area is too small.
    NoSpace,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::BadRegion { base, size } => write!(
                f,
                "memory region {base:#x}+{size:#x} is outside RAM or overlaps another"
            ),
            Error::NoSpace => f.write_str("EFI table area too small"),
        }
    }
}

/// One EFI_MEMORY_DESCRIPTOR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    pub ty: u32,
    pub phys: u64,
    pub pages: u64,
    pub attr: u64,
}

impl Descriptor {
    pub fn end(&self) -> u64 {
        self.phys + self.pages * PAGE_SIZE
    }
}

/// A range of RAM the firmware uses for something other than free memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Carve {
    pub base: u64,
    pub size: u64,
    pub ty: u32,
}

/// Builds a sorted memory map covering exactly `ram` (base, size): the
/// carve-outs with their types, rounded out to whole pages, and everything
/// else conventional memory. Adjacent ranges of one type are merged.
pub fn memory_map(ram: &[(u64, u64)], carves: &[Carve]) -> Result<Vec<Descriptor>, Error> {
    let mut ram: Vec<(u64, u64)> = ram.iter().map(|&(b, s)| (b, b + s)).collect();
    crate::platform::sort_small(&mut ram);
    let mut cs: Vec<(u64, u64, u32)> = Vec::with_capacity(carves.len());
    for c in carves {
        let bad = Error::BadRegion {
            base: c.base,
            size: c.size,
        };
        let start = c.base & !(PAGE_SIZE - 1);
        let end = c
            .base
            .checked_add(c.size)
            .and_then(|e| e.checked_add(PAGE_SIZE - 1))
            .ok_or(bad)?
            & !(PAGE_SIZE - 1);
        if c.size == 0 || !ram.iter().any(|&(rs, re)| rs <= start && end <= re) {
            return Err(bad);
        }
        cs.push((start, end, c.ty));
    }
    crate::platform::sort_small(&mut cs);
    if let Some(w) = cs.windows(2).find(|w| w[0].1 > w[1].0) {
        return Err(Error::BadRegion {
            base: w[1].0,
            size: w[1].1 - w[1].0,
        });
    }

    let mut out: Vec<Descriptor> = Vec::new();
    let mut push = |start: u64, end: u64, ty: u32| {
        if end <= start {
            return;
        }
        let pages = (end - start) / PAGE_SIZE;
        match out.last_mut() {
            Some(last) if last.ty == ty && last.end() == start => last.pages += pages,
            _ => out.push(Descriptor {
                ty,
                phys: start,
                pages,
                attr: MEMORY_WB,
            }),
        }
    };
    for &(rs, re) in &ram {
        // RAM from the VMM is page-aligned; a ragged edge is not usable.
        let rs = (rs + PAGE_SIZE - 1) & !(PAGE_SIZE - 1);
        let re = re & !(PAGE_SIZE - 1);
        let mut cur = rs;
        for &(cs_, ce, ty) in cs.iter().filter(|c| c.0 >= rs && c.1 <= re) {
            push(cur, cs_, mem_type::CONVENTIONAL);
            push(cs_, ce, ty);
            cur = ce;
        }
        push(cur, re, mem_type::CONVENTIONAL);
    }
    Ok(out)
}

/// What `/chosen` must tell Linux about the hand-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handoff {
    pub system_table: u64,
    pub mmap_start: u64,
    pub mmap_size: u32,
    pub desc_size: u32,
    pub desc_ver: u32,
}

/// Bytes `build` needs for a memory map of `entries` descriptors.
pub fn area_size(entries: usize) -> usize {
    MMAP_OFFSET + entries * DESC_SIZE
}

const VENDOR: &str = "Hotstub";

const VENDOR_OFFSET: usize = SYSTEM_TABLE_SIZE;
const CONFIG_OFFSET: usize = (VENDOR_OFFSET + (VENDOR.len() + 1) * 2).next_multiple_of(8);
const RT_PROP_OFFSET: usize = CONFIG_OFFSET + CONFIG_ENTRIES * CONFIG_ENTRY_SIZE;
const MEMRESERVE_OFFSET: usize = (RT_PROP_OFFSET + RT_PROPERTIES_SIZE).next_multiple_of(8);
const MMAP_OFFSET: usize = MEMRESERVE_OFFSET + MEMRESERVE_SIZE;

fn put(area: &mut [u8], at: usize, bytes: &[u8]) {
    area[at..at + bytes.len()].copy_from_slice(bytes);
}

/// Lays out the system table, its configuration tables and the memory map
/// in `area`, which lives at physical address `area_phys`. `smbios3` is the
/// SMBIOS 3.0 entry point, when there is one.
pub fn build(
    area: &mut [u8],
    area_phys: u64,
    rsdp_phys: u64,
    smbios3: Option<u64>,
    map: &[Descriptor],
) -> Result<Handoff, Error> {
    if area.len() < area_size(map.len()) {
        return Err(Error::NoSpace);
    }
    area[..area_size(map.len())].fill(0);
    let phys = |off: usize| area_phys + off as u64;

    // Firmware vendor, a NUL-terminated UCS-2 string.
    for (i, ch) in VENDOR.encode_utf16().enumerate() {
        put(area, VENDOR_OFFSET + 2 * i, &ch.to_le_bytes());
    }

    // Configuration tables: the RSDP, and the statement that no runtime
    // service may be called (RuntimeServicesSupported = 0).
    let config = [
        (&ACPI_20_TABLE_GUID, Some(rsdp_phys)),
        (&RT_PROPERTIES_TABLE_GUID, Some(phys(RT_PROP_OFFSET))),
        (&LINUX_MEMRESERVE_TABLE_GUID, Some(phys(MEMRESERVE_OFFSET))),
        (&SMBIOS3_TABLE_GUID, smbios3),
    ];
    let mut at = CONFIG_OFFSET;
    for (guid, table) in config.iter().filter_map(|&(g, t)| Some((g, t?))) {
        put(area, at, guid);
        put(area, at + 16, &table.to_le_bytes());
        at += CONFIG_ENTRY_SIZE;
    }
    // The memreserve root stays all zero: no entries, nothing linked.
    let r = RT_PROP_OFFSET;
    put(area, r, &RT_PROPERTIES_VERSION.to_le_bytes());
    put(area, r + 2, &(RT_PROPERTIES_SIZE as u16).to_le_bytes());
    put(area, r + 4, &0u32.to_le_bytes());

    // The system table. Console handles and protocols, runtime and boot
    // services stay NULL: none exist.
    put(area, 0, &SYSTEM_TABLE_SIGNATURE.to_le_bytes());
    put(area, 8, &SYSTEM_TABLE_REVISION.to_le_bytes());
    put(area, 12, &(SYSTEM_TABLE_SIZE as u32).to_le_bytes());
    put(area, 24, &phys(VENDOR_OFFSET).to_le_bytes());
    put(area, 32, &firmware_revision().to_le_bytes());
    let entries = (at - CONFIG_OFFSET) / CONFIG_ENTRY_SIZE;
    put(area, 104, &(entries as u64).to_le_bytes());
    put(area, 112, &phys(CONFIG_OFFSET).to_le_bytes());
    let crc = crc32(&area[..SYSTEM_TABLE_SIZE]);
    put(area, 16, &crc.to_le_bytes());

    let m = MMAP_OFFSET;
    for (i, d) in map.iter().enumerate() {
        let at = m + i * DESC_SIZE;
        put(area, at, &d.ty.to_le_bytes());
        put(area, at + 8, &d.phys.to_le_bytes());
        // VirtualStart stays 0: nothing is mapped for runtime use.
        put(area, at + 24, &d.pages.to_le_bytes());
        put(area, at + 32, &d.attr.to_le_bytes());
    }

    Ok(Handoff {
        system_table: area_phys,
        mmap_start: phys(m),
        mmap_size: (map.len() * DESC_SIZE) as u32,
        desc_size: DESC_SIZE as u32,
        desc_ver: DESC_VERSION,
    })
}

/// FirmwareRevision: major.minor of this crate as 16.16.
fn firmware_revision() -> u32 {
    let part = |s: &str| s.parse::<u16>().unwrap_or(0) as u32;
    (part(env!("CARGO_PKG_VERSION_MAJOR")) << 16) | part(env!("CARGO_PKG_VERSION_MINOR"))
}

/// CRC-32 as EFI_TABLE_HEADER.CRC32 uses it (IEEE 802.3 polynomial,
/// reflected, UEFI 2.10 4.2). Four bits a step from a 64-byte table: a
/// bit a step cost 5,700 guest instructions for the 120-byte system
/// table, a byte-wide table would cost 1 KiB of image.
pub fn crc32(data: &[u8]) -> u32 {
    !crc32_update(!0, data)
}

/// The CRC of each nibble: four of the bitwise steps on it.
const CRC_NIBBLE: [u32; 16] = {
    let mut t = [0u32; 16];
    let mut i = 0;
    while i < 16 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 4 {
            c = (c >> 1) ^ (0xedb8_8320 & (c & 1).wrapping_neg());
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// [`crc32`] in pieces: `crc` is `!0` at the start, the result inverted
/// at the end.
pub fn crc32_update(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc ^= b as u32;
        crc = (crc >> 4) ^ CRC_NIBBLE[(crc & 15) as usize];
        crc = (crc >> 4) ^ CRC_NIBBLE[(crc & 15) as usize];
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use mem_type::*;

    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;

    #[test]
    fn crc32_matches_reference() {
        // The standard check value for CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn guids_have_efi_byte_order() {
        assert_eq!(
            ACPI_20_TABLE_GUID,
            [
                0x71, 0xe8, 0x68, 0x88, 0xf1, 0xe4, 0xd3, 0x11, 0xbc, 0x22, 0x00, 0x80, 0xc7, 0x3c,
                0x88, 0x81
            ]
        );
    }

    #[test]
    fn map_covers_ram_without_gaps() {
        let ram = [(0x4000_0000, GIB), (0x1_0000_0000, 4 * GIB)];
        let carves = [
            Carve {
                base: 0x4010_0000,
                size: 0x2_0000,
                ty: ACPI_RECLAIM,
            },
            Carve {
                base: 0x4012_0000,
                size: 0x100,
                ty: RUNTIME_SERVICES_DATA,
            },
            Carve {
                base: 0x4020_0000,
                size: 30 * MIB,
                ty: LOADER_DATA,
            },
            Carve {
                base: 0x4020_0000 + 30 * MIB,
                size: 10 * MIB + 5,
                ty: LOADER_DATA,
            },
        ];
        let m = memory_map(&ram, &carves).unwrap();
        let total: u64 = m.iter().map(|d| d.pages * PAGE_SIZE).sum();
        assert_eq!(total, 5 * GIB);
        for w in m.windows(2) {
            assert!(w[0].end() <= w[1].phys);
        }
        assert_eq!(
            m[0],
            Descriptor {
                ty: CONVENTIONAL,
                phys: 0x4000_0000,
                pages: 256,
                attr: MEMORY_WB
            }
        );
        assert_eq!(
            (m[1].ty, m[1].phys, m[1].pages),
            (ACPI_RECLAIM, 0x4010_0000, 32)
        );
        assert_eq!((m[2].ty, m[2].pages), (RUNTIME_SERVICES_DATA, 1));
        assert_eq!((m[3].ty, m[3].phys), (CONVENTIONAL, 0x4012_1000));
        // The two loader ranges merge; the ragged end rounds up to a page.
        assert_eq!(
            (m[4].ty, m[4].phys, m[4].pages),
            (LOADER_DATA, 0x4020_0000, (40 * MIB) / PAGE_SIZE + 1)
        );
        assert_eq!(m[5].ty, CONVENTIONAL);
        assert_eq!(m[5].end(), 0x8000_0000);
        assert_eq!(
            (m[6].ty, m[6].phys, m[6].pages),
            (CONVENTIONAL, 0x1_0000_0000, 4 * GIB / PAGE_SIZE)
        );
        assert_eq!(m.len(), 7);
    }

    #[test]
    fn map_rejects_bad_carves() {
        let ram = [(0x4000_0000, GIB)];
        let c = |base, size| Carve {
            base,
            size,
            ty: LOADER_DATA,
        };
        assert!(memory_map(&ram, &[c(0x3000_0000, 0x1000)]).is_err());
        assert!(memory_map(&ram, &[c(0x7fff_f000, 0x2000)]).is_err());
        assert!(memory_map(&ram, &[c(0x4000_0000, 0)]).is_err());
        assert!(memory_map(&ram, &[c(0x4000_0000, 0x2000), c(0x4000_1000, 0x1000)]).is_err());
        assert!(memory_map(&ram, &[c(u64::MAX - 10, 20)]).is_err());
    }

    #[test]
    fn system_table_layout() {
        let map = memory_map(
            &[(0x4000_0000, GIB)],
            &[Carve {
                base: 0x4010_0000,
                size: 0x1000,
                ty: RUNTIME_SERVICES_DATA,
            }],
        )
        .unwrap();
        let mut area = alloc::vec![0xffu8; 4096];
        assert_eq!(
            build(&mut area[..100], 0x4010_0000, 0, None, &map),
            Err(Error::NoSpace)
        );
        let h = build(&mut area, 0x4010_0000, 0x4011_0000, None, &map).unwrap();
        let le64 = |at: usize| u64::from_le_bytes(area[at..at + 8].try_into().unwrap());
        let le32 = |at: usize| u32::from_le_bytes(area[at..at + 4].try_into().unwrap());
        assert_eq!(h.system_table, 0x4010_0000);
        assert_eq!(&area[0..8], b"IBI SYST");
        assert_eq!(le32(8), 0x0002_0046);
        assert_eq!(le32(12), 120);
        // The CRC covers the header with the CRC field zeroed.
        let mut hdr = area[..120].to_vec();
        hdr[16..20].fill(0);
        assert_eq!(le32(16), crc32(&hdr));
        // Vendor string "Hotstub" in UCS-2.
        let v = (le64(24) - 0x4010_0000) as usize;
        assert_eq!(&area[v..v + 4], &[b'H', 0, b'o', 0]);
        assert_eq!(&area[v + 14..v + 16], &[0, 0]);
        // No services of any kind.
        for off in (40..104).step_by(8) {
            assert_eq!(le64(off), 0, "offset {off}");
        }
        assert_eq!(le64(104), 3);
        let ct = (le64(112) - 0x4010_0000) as usize;
        assert_eq!(&area[ct..ct + 16], &ACPI_20_TABLE_GUID);
        assert_eq!(le64(ct + 16), 0x4011_0000);
        assert_eq!(&area[ct + 24..ct + 40], &RT_PROPERTIES_TABLE_GUID);
        let rt = (le64(ct + 40) - 0x4010_0000) as usize;
        assert_eq!(&area[rt..rt + 8], &[1, 0, 8, 0, 0, 0, 0, 0]);
        assert_eq!(&area[ct + 48..ct + 64], &LINUX_MEMRESERVE_TABLE_GUID);
        let mr = (le64(ct + 64) - 0x4010_0000) as usize;
        assert_eq!(mr % 8, 0);
        assert_eq!(&area[mr..mr + 16], &[0; 16]);
        // With SMBIOS, a fourth entry.
        let mut with = alloc::vec![0u8; 4096];
        build(&mut with, 0x4010_0000, 0x4011_0000, Some(0x4012_0000), &map).unwrap();
        assert_eq!(with[104], 4);
        assert_eq!(&with[ct + 72..ct + 88], &SMBIOS3_TABLE_GUID);
        assert_eq!(with[ct + 88..ct + 96], 0x4012_0000u64.to_le_bytes());
        // The memory map.
        assert_eq!((h.desc_size, h.desc_ver), (40, 1));
        assert_eq!(h.mmap_size as usize, map.len() * 40);
        let m = (h.mmap_start - 0x4010_0000) as usize;
        assert_eq!(h.mmap_start % 8, 0);
        assert_eq!(le32(m), CONVENTIONAL);
        assert_eq!(le64(m + 8), 0x4000_0000);
        assert_eq!(le64(m + 24), 256);
        assert_eq!(le64(m + 32), MEMORY_WB);
        assert_eq!(le32(m + 40), RUNTIME_SERVICES_DATA);
    }
}
