//! The Linux x86 boot protocol: setup header validation and the zero page
//! (`struct boot_params`).
//!
//! Offsets are from Linux `Documentation/arch/x86/boot.rst` and
//! `zero-page.rst` (and `arch/x86/include/uapi/asm/bootparam.h`).

use crate::platform::memmap::MemoryMap;
use core::fmt;

/// Size of the zero page.
pub const ZERO_PAGE_LEN: usize = 4096;

// Setup header fields (boot.rst "The Real-Mode Kernel Header").
const SETUP_SECTS: usize = 0x1f1;
const BOOT_FLAG: usize = 0x1fe;
const JUMP: usize = 0x200;
const HEADER: usize = 0x202;
const VERSION: usize = 0x206;
const TYPE_OF_LOADER: usize = 0x210;
const LOADFLAGS: usize = 0x211;
const CODE32_START: usize = 0x214;
const RAMDISK_IMAGE: usize = 0x218;
const RAMDISK_SIZE: usize = 0x21c;
const CMD_LINE_PTR: usize = 0x228;
const INITRD_ADDR_MAX: usize = 0x22c;
const KERNEL_ALIGNMENT: usize = 0x230;
const RELOCATABLE_KERNEL: usize = 0x234;
const XLOADFLAGS: usize = 0x236;
const CMDLINE_SIZE: usize = 0x238;
const PREF_ADDRESS: usize = 0x258;
const INIT_SIZE: usize = 0x260;

// Zero page fields outside the setup header (zero-page.rst).
const ACPI_RSDP_ADDR: usize = 0x070;
const EXT_RAMDISK_IMAGE: usize = 0x0c0;
const EXT_RAMDISK_SIZE: usize = 0x0c4;
const EXT_CMD_LINE_PTR: usize = 0x0c8;
const E820_ENTRIES: usize = 0x1e8;
const E820_TABLE: usize = 0x2d0;
/// E820_MAX_ENTRIES_ZEROPAGE in bootparam.h.
pub const E820_MAX: usize = 128;

/// "HdrS", the setup header signature.
const HDRS: u32 = 0x5372_6448;
/// Protocol 2.12 added xloadflags, which the 64-bit entry depends on.
const MIN_PROTOCOL: u16 = 0x020c;
const XLF_KERNEL_64: u16 = 1 << 0;
const LOADED_HIGH: u8 = 1 << 0;
/// "Undefined" boot loader id (boot.rst, type_of_loader).
const LOADER_UNDEFINED: u8 = 0xff;
/// The 64-bit entry point is 0x200 past the protected-mode kernel's start.
pub const ENTRY64_OFFSET: u64 = 0x200;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    TooShort(usize),
    NotBzImage,
    OldProtocol(u16),
    Not64Bit,
    NotRelocatable,
    BadAlignment(u32),
    /// The setup header (0x202 plus the jump's displacement byte) ends at
    /// this offset, before the protocol 2.12 fields the firmware reads and
    /// copies to the zero page.
    ShortHeader(usize),
    /// The kernel cannot be placed at or above the floor and below 4 GiB.
    NoRoom {
        floor: u64,
        footprint: u64,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::TooShort(n) => write!(
                f,
                "kernel setup part of {n} bytes is too short to be a bzImage"
            ),
            Error::NotBzImage => {
                f.write_str("kernel is not a Linux bzImage (no \"HdrS\" setup header)")
            }
            Error::OldProtocol(v) => write!(
                f,
                "kernel boot protocol {}.{:02} is too old (need 2.12 or later)",
                v >> 8,
                v & 0xff
            ),
            Error::Not64Bit => {
                f.write_str("kernel has no 64-bit entry point (XLF_KERNEL_64 not set)")
            }
            Error::NotRelocatable => f.write_str("kernel is not relocatable"),
            Error::BadAlignment(a) => write!(f, "kernel asks for an invalid alignment {a:#x}"),
            Error::ShortHeader(end) => write!(
                f,
                "kernel setup header ends at {end:#x}, before the fields of its boot protocol"
            ),
            Error::NoRoom { floor, footprint } => write!(
                f,
                "kernel needs {footprint:#x} bytes at or above {floor:#x} and below 4 GiB"
            ),
        }
    }
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// A validated bzImage setup header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kernel {
    pub protocol: u16,
    /// Where to load the protected-mode kernel: its preferred address until
    /// `place_above` moves it.
    pub load_addr: u64,
    /// The alignment the relocatable kernel needs.
    pub align: u64,
    /// Bytes the kernel needs from `load_addr` while it decompresses.
    pub init_size: u64,
    pub initrd_addr_max: u64,
    pub cmdline_size: u32,
    /// Bytes of the setup header, from 0x1f1, to copy into the zero page.
    header_end: usize,
}

impl Kernel {
    /// Validates the setup part (boot sector + real-mode setup, as fw_cfg's
    /// SETUP_DATA or the first `(setup_sects + 1) * 512` bytes of a file).
    pub fn parse(setup: &[u8]) -> Result<Kernel, Error> {
        if setup.len() < INIT_SIZE + 4 {
            return Err(Error::TooShort(setup.len()));
        }
        if u32_at(setup, HEADER) != HDRS || u16_at(setup, BOOT_FLAG) != 0xaa55 {
            return Err(Error::NotBzImage);
        }
        let protocol = u16_at(setup, VERSION);
        if protocol < MIN_PROTOCOL {
            return Err(Error::OldProtocol(protocol));
        }
        if u16_at(setup, XLOADFLAGS) & XLF_KERNEL_64 == 0 || setup[LOADFLAGS] & LOADED_HIGH == 0 {
            return Err(Error::Not64Bit);
        }
        if setup[RELOCATABLE_KERNEL] == 0 {
            // A non-relocatable kernel must sit at code32_start (1 MiB),
            // which the firmware occupies while it loads.
            return Err(Error::NotRelocatable);
        }
        let align = u32_at(setup, KERNEL_ALIGNMENT);
        if !align.is_power_of_two() {
            return Err(Error::BadAlignment(align));
        }
        let align = align as u64;
        let pref = u64_at(setup, PREF_ADDRESS);
        // A wrapping preferred address is as good as none: `place_above`
        // moves the kernel where it fits.
        let load_addr = pref.checked_add(align - 1).map_or(0, |a| a & !(align - 1));
        // The header runs from 0x1f1 to 0x202 + the jump's displacement byte;
        // it must hold the fields read above, which Linux reads again from
        // the zero page.
        let header_end = HEADER + setup[JUMP + 1] as usize;
        if header_end < INIT_SIZE + 4 {
            return Err(Error::ShortHeader(header_end));
        }
        let header_end = header_end.min(setup.len()).min(ZERO_PAGE_LEN);
        Ok(Kernel {
            protocol,
            load_addr,
            align,
            init_size: u32_at(setup, INIT_SIZE) as u64,
            initrd_addr_max: u32_at(setup, INITRD_ADDR_MAX) as u64,
            cmdline_size: u32_at(setup, CMDLINE_SIZE),
            header_end,
        })
    }

    /// Bytes reserved for the kernel at `load_addr`: the larger of its file
    /// size and what it needs to decompress itself in place.
    pub fn footprint(&self, kernel_len: u64) -> u64 {
        self.init_size.max(kernel_len)
    }

    /// Moves the (relocatable) kernel to an aligned address at or above
    /// `floor` if its preferred address is lower, and checks that it ends
    /// below 4 GiB, where the firmware's identity map and the 32-bit
    /// `code32_start` reach.
    pub fn place_above(&mut self, floor: u64, kernel_len: u64) -> Result<(), Error> {
        let footprint = self.footprint(kernel_len);
        let no_room = Error::NoRoom { floor, footprint };
        if self.load_addr < floor {
            self.load_addr = floor.checked_add(self.align - 1).ok_or(no_room)? & !(self.align - 1);
        }
        match self.load_addr.checked_add(footprint) {
            Some(end) if end <= 1 << 32 => Ok(()),
            _ => Err(no_room),
        }
    }

    /// Builds the zero page.
    pub fn zero_page(&self, setup: &[u8], p: &BootParams, map: &MemoryMap) -> [u8; ZERO_PAGE_LEN] {
        let mut z = [0u8; ZERO_PAGE_LEN];
        self.write_zero_page(&mut z, setup, p, map);
        z
    }

    /// Builds the zero page in `z`, a zeroed page where the kernel gets
    /// it: a page built elsewhere and copied costs two more passes over
    /// its 4 KiB, which `bench --icount` counts.
    pub fn write_zero_page(
        &self,
        z: &mut [u8; ZERO_PAGE_LEN],
        setup: &[u8],
        p: &BootParams,
        map: &MemoryMap,
    ) {
        z[SETUP_SECTS..self.header_end].copy_from_slice(&setup[SETUP_SECTS..self.header_end]);
        z[TYPE_OF_LOADER] = LOADER_UNDEFINED;
        z[CODE32_START..CODE32_START + 4].copy_from_slice(&(self.load_addr as u32).to_le_bytes());
        put_split(z, CMD_LINE_PTR, EXT_CMD_LINE_PTR, p.cmdline_addr);
        put_split(z, RAMDISK_IMAGE, EXT_RAMDISK_IMAGE, p.initrd_addr);
        put_split(z, RAMDISK_SIZE, EXT_RAMDISK_SIZE, p.initrd_size);
        z[ACPI_RSDP_ADDR..ACPI_RSDP_ADDR + 8].copy_from_slice(&p.rsdp_addr.to_le_bytes());
        let regions = map.regions();
        let n = regions.len().min(E820_MAX);
        for (i, r) in regions.iter().take(n).enumerate() {
            let o = E820_TABLE + i * 20;
            z[o..o + 8].copy_from_slice(&r.addr.to_le_bytes());
            z[o + 8..o + 16].copy_from_slice(&r.size.to_le_bytes());
            z[o + 16..o + 20].copy_from_slice(&(r.kind as u32).to_le_bytes());
        }
        z[E820_ENTRIES] = n as u8;
    }
}

/// Writes a 64-bit value as a low half in the header and a high half in the
/// zero page's `ext_*` field.
fn put_split(z: &mut [u8], lo: usize, hi: usize, v: u64) {
    z[lo..lo + 4].copy_from_slice(&(v as u32).to_le_bytes());
    z[hi..hi + 4].copy_from_slice(&((v >> 32) as u32).to_le_bytes());
}

/// Where the firmware put things for the kernel.
#[derive(Clone, Copy, Debug, Default)]
pub struct BootParams {
    pub cmdline_addr: u64,
    pub initrd_addr: u64,
    pub initrd_size: u64,
    pub rsdp_addr: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::memmap::Kind;
    use alloc::vec;

    fn setup() -> alloc::vec::Vec<u8> {
        let mut s = vec![0u8; 0x4000];
        s[SETUP_SECTS] = 0x1f;
        s[BOOT_FLAG..BOOT_FLAG + 2].copy_from_slice(&0xaa55u16.to_le_bytes());
        s[JUMP] = 0xeb;
        s[JUMP + 1] = 0x6a; // header ends at 0x26c, like 6.12
        s[HEADER..HEADER + 4].copy_from_slice(&HDRS.to_le_bytes());
        s[VERSION..VERSION + 2].copy_from_slice(&0x020fu16.to_le_bytes());
        s[LOADFLAGS] = LOADED_HIGH;
        s[INITRD_ADDR_MAX..INITRD_ADDR_MAX + 4].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        s[KERNEL_ALIGNMENT..KERNEL_ALIGNMENT + 4].copy_from_slice(&0x20_0000u32.to_le_bytes());
        s[RELOCATABLE_KERNEL] = 1;
        s[XLOADFLAGS..XLOADFLAGS + 2].copy_from_slice(&3u16.to_le_bytes());
        s[CMDLINE_SIZE..CMDLINE_SIZE + 4].copy_from_slice(&2047u32.to_le_bytes());
        s[PREF_ADDRESS..PREF_ADDRESS + 8].copy_from_slice(&0x100_0000u64.to_le_bytes());
        s[INIT_SIZE..INIT_SIZE + 4].copy_from_slice(&0x300_0000u32.to_le_bytes());
        s
    }

    #[test]
    fn accepts_a_modern_kernel() {
        let k = Kernel::parse(&setup()).unwrap();
        assert_eq!(k.load_addr, 0x100_0000);
        assert_eq!(k.init_size, 0x300_0000);
        assert_eq!(k.initrd_addr_max, 0x7fff_ffff);
        assert_eq!(k.header_end, 0x26c);
        assert_eq!(k.footprint(0x100_0000), 0x300_0000);
    }

    #[test]
    fn placement_keeps_clear_of_the_floor_and_4g() {
        let mut s = setup();
        s[PREF_ADDRESS..PREF_ADDRESS + 8].copy_from_slice(&0x20_0000u64.to_le_bytes());
        let mut k = Kernel::parse(&s).unwrap();
        k.place_above(0x40_0000, 0x100_0000).unwrap();
        assert_eq!(k.load_addr, 0x40_0000);
        let mut s = setup();
        s[PREF_ADDRESS..PREF_ADDRESS + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        let mut k = Kernel::parse(&s).unwrap();
        k.place_above(0x40_0000, 0x100_0000).unwrap();
        assert_eq!(k.load_addr, 0x40_0000);
        let mut s = setup();
        s[PREF_ADDRESS..PREF_ADDRESS + 8].copy_from_slice(&0xffff_0000u64.to_le_bytes());
        let mut k = Kernel::parse(&s).unwrap();
        assert!(matches!(
            k.place_above(0x40_0000, 0x100_0000),
            Err(Error::NoRoom { .. })
        ));
    }

    #[test]
    fn rejects_bad_kernels() {
        assert_eq!(Kernel::parse(&[0; 100]), Err(Error::TooShort(100)));
        let mut s = setup();
        s[HEADER] = b'X';
        assert_eq!(Kernel::parse(&s), Err(Error::NotBzImage));
        let mut s = setup();
        s[VERSION..VERSION + 2].copy_from_slice(&0x020bu16.to_le_bytes());
        assert_eq!(Kernel::parse(&s), Err(Error::OldProtocol(0x020b)));
        let mut s = setup();
        s[XLOADFLAGS] = 0;
        assert_eq!(Kernel::parse(&s), Err(Error::Not64Bit));
        let mut s = setup();
        s[RELOCATABLE_KERNEL] = 0;
        assert_eq!(Kernel::parse(&s), Err(Error::NotRelocatable));
        let mut s = setup();
        s[KERNEL_ALIGNMENT] = 3;
        assert!(matches!(Kernel::parse(&s), Err(Error::BadAlignment(_))));
    }

    #[test]
    fn header_must_reach_the_fields_it_is_read_for() {
        // Found by the bzimage fuzz target (minimised): a jump displacement
        // of 0 made the header end at 0x202, so the zero page got neither
        // "HdrS" nor the version, alignment and init_size read here.
        let mut s = vec![0u8; 0x265];
        s[SETUP_SECTS] = 7;
        s[BOOT_FLAG..BOOT_FLAG + 2].copy_from_slice(&0xaa55u16.to_le_bytes());
        s[HEADER..HEADER + 4].copy_from_slice(&HDRS.to_le_bytes());
        s[VERSION..VERSION + 2].copy_from_slice(&0x020fu16.to_le_bytes());
        s[0x20e] = 0x80;
        s[LOADFLAGS] = LOADED_HIGH;
        s[INITRD_ADDR_MAX..INITRD_ADDR_MAX + 4].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        s[KERNEL_ALIGNMENT..KERNEL_ALIGNMENT + 4].copy_from_slice(&0x20_0000u32.to_le_bytes());
        s[RELOCATABLE_KERNEL] = 1;
        s[XLOADFLAGS..XLOADFLAGS + 2].copy_from_slice(&3u16.to_le_bytes());
        assert_eq!(Kernel::parse(&s), Err(Error::ShortHeader(0x202)));
        // The shortest header that holds init_size is accepted.
        s[JUMP + 1] = (INIT_SIZE + 4 - HEADER) as u8;
        let k = Kernel::parse(&s).unwrap();
        let z = k.zero_page(&s, &BootParams::default(), &MemoryMap::new());
        assert_eq!(u32_at(&z, HEADER), HDRS);
        assert_eq!(u16_at(&z, VERSION), 0x020f);
    }

    #[test]
    fn zero_page_carries_addresses_and_map() {
        let s = setup();
        let k = Kernel::parse(&s).unwrap();
        let mut map = MemoryMap::new();
        map.set(0, 0x9_fc00, Kind::Ram);
        map.set(0x10_0000, 0x1_0000_0000, Kind::Ram);
        let p = BootParams {
            cmdline_addr: 0x2_0000,
            initrd_addr: 0x1_2345_6000,
            initrd_size: 0x1000,
            rsdp_addr: 0xe_0000,
        };
        let z = k.zero_page(&s, &p, &map);
        assert_eq!(u32_at(&z, HEADER), HDRS);
        assert_eq!(z[TYPE_OF_LOADER], 0xff);
        assert_eq!(u32_at(&z, CMD_LINE_PTR), 0x2_0000);
        assert_eq!(u32_at(&z, RAMDISK_IMAGE), 0x2345_6000);
        assert_eq!(u32_at(&z, EXT_RAMDISK_IMAGE), 1);
        assert_eq!(u64_at(&z, ACPI_RSDP_ADDR), 0xe_0000);
        assert_eq!(z[E820_ENTRIES], 2);
        assert_eq!(u64_at(&z, E820_TABLE + 20 + 8), 0x1_0000_0000);
        // Nothing past the header is copied from the setup blob.
        assert_eq!(z[0x26c], 0);
    }
}
