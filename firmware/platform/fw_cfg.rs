//! QEMU fw_cfg: the VMM-to-firmware channel (kernel, initrd, command line,
//! memory map, CPU counts and user files).
//!
//! Facts from QEMU `docs/specs/fw_cfg.rst`. The transport (x86 I/O ports or
//! arm MMIO) is the `Transport` trait; this module holds the protocol, which
//! is safe code apart from the one DMA descriptor hand-off.

use core::fmt;
use core::sync::atomic::{fence, Ordering};

/// Well-known selector keys (QEMU `include/standard-headers/linux/qemu_fw_cfg.h`).
pub mod key {
    pub const SIGNATURE: u16 = 0x0000;
    pub const ID: u16 = 0x0001;
    pub const NB_CPUS: u16 = 0x0005;
    pub const KERNEL_SIZE: u16 = 0x0008;
    pub const INITRD_SIZE: u16 = 0x000b;
    pub const MAX_CPUS: u16 = 0x000f;
    pub const KERNEL_DATA: u16 = 0x0011;
    pub const INITRD_DATA: u16 = 0x0012;
    pub const CMDLINE_SIZE: u16 = 0x0014;
    pub const CMDLINE_DATA: u16 = 0x0015;
    pub const SETUP_SIZE: u16 = 0x0017;
    pub const SETUP_DATA: u16 = 0x0018;
    pub const FILE_DIR: u16 = 0x0019;
}

/// The names of the fw_cfg files the firmware reads, each with where QEMU
/// creates it: one list, so an entry path without fw_cfg (or a VMM that
/// names things differently) can see everything the firmware expects from
/// it. Read a whole file with [`FwCfg::read_named`], a fixed-size value with
/// [`FwCfg::read_u16_named`] or [`FwCfg::read_u64_named`].
pub mod file {
    /// The x86 RAM map, 20-byte e820 entries (hw/i386/fw_cfg.c
    /// `fw_cfg_arch_create`; layout in hw/i386/e820_memory_layout.h).
    pub const E820: &str = "etc/e820";
    /// le64: where q35's device (hotplug) memory region ends, rounded up to
    /// 1 GiB (hw/i386/pc.c `pc_memory_init`).
    pub const RESERVED_MEMORY_END: &str = "etc/reserved-memory-end";
    /// le16: the I/O port of the ISA pvpanic device (hw/misc/pvpanic-isa.c
    /// `pvpanic_isa_realizefn`).
    pub const PVPANIC_PORT: &str = "etc/pvpanic-port";
    /// Present exactly when the x86 machine has a TPM with its PPI: 6
    /// bytes, FwCfgTPMConfig (hw/i386/acpi-build.c `acpi_setup`, QEMU
    /// docs/specs/tpm.rst "fw_cfg interface").
    pub const TPM_CONFIG: &str = "etc/tpm/config";
    /// QEMU's own ACPI tables, which the firmware takes some over from
    /// (ACPI_BUILD_TABLE_FILE, include/hw/acpi/aml-build.h; hw/i386/acpi-build.c
    /// and hw/arm/virt-acpi-build.c).
    pub const ACPI_TABLES: &str = "etc/acpi/tables";
    /// The table-loader script for [`ACPI_TABLES`], whose checksum commands
    /// say where each table starts (ACPI_BUILD_LOADER_FILE, same files;
    /// commands in hw/acpi/bios-linker-loader.c).
    pub const TABLE_LOADER: &str = "etc/table-loader";
    /// The SMBIOS entry point and the structures it points to (x86:
    /// hw/i386/fw_cfg.c `fw_cfg_build_smbios`; arm: hw/arm/virt.c
    /// `virt_build_smbios`).
    pub const SMBIOS_ANCHOR: &str = "etc/smbios/smbios-anchor";
    pub const SMBIOS_TABLES: &str = "etc/smbios/smbios-tables";
    /// Hotstub's own, set by the user: which possible vCPUs may come online
    /// (`-fw_cfg name=opt/org.hotstub/enabled-cpus,string=0-1`;
    /// `platform::cpulist` reads it). QEMU leaves `opt/` names to users
    /// (docs/specs/fw_cfg.rst, "Externally Provided Items").
    pub const ENABLED_CPUS: &str = "opt/org.hotstub/enabled-cpus";
    /// Hotstub's own: which disk, partition or entry to boot when there is
    /// no `-kernel` (`crate::disk::Choice` has the grammar).
    pub const BOOT: &str = "opt/org.hotstub/boot";
    /// Hotstub's own: arguments appended to a disk entry's command line
    /// (QEMU refuses `-append` without `-kernel`).
    pub const CMDLINE: &str = "opt/org.hotstub/cmdline";
}

/// Feature bit in key ID: the DMA interface exists (fw_cfg.rst "FW_CFG_ID").
const FEATURE_DMA: u32 = 1 << 1;

/// DMA control bits (fw_cfg.rst "FWCfgDmaAccess").
const DMA_ERROR: u32 = 0x01;
const DMA_READ: u32 = 0x02;
const DMA_SKIP: u32 = 0x04;
const DMA_SELECT: u32 = 0x08;

/// Size of one file directory entry: be32 size, be16 select, u16 reserved,
/// char name[56] (fw_cfg.rst "FW_CFG_FILE_DIR").
const FILE_ENTRY_LEN: usize = 64;
const FILE_NAME_LEN: usize = 56;

/// How the firmware reaches fw_cfg registers.
pub trait Transport {
    /// Writes the selector register.
    fn select(&mut self, key: u16);
    /// Reads `buf.len()` bytes from the data register (legacy interface).
    fn read_data(&mut self, buf: &mut [u8]);
    /// Writes the physical address of a DMA descriptor to the DMA address
    /// register, which starts the transfer. QEMU completes the transfer
    /// before the write returns; callers still poll the control word.
    fn start_dma(&mut self, descriptor_phys: u64);
    /// Physical address of a pointer in the firmware's (identity) mapping.
    fn phys(&self, ptr: *const u8) -> u64 {
        ptr as u64
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Key 0 did not read "QEMU".
    NotPresent,
    /// The DMA engine reported an error.
    Dma,
    /// A named file is not in the directory.
    NoSuchFile,
    /// Data did not fit the caller's buffer.
    TooLarge,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Error::NotPresent => "fw_cfg device not found",
            Error::Dma => "fw_cfg DMA transfer failed",
            Error::NoSuchFile => "fw_cfg file not found",
            Error::TooLarge => "fw_cfg item larger than its destination",
        })
    }
}

/// Why a file that holds one fixed-size value (a port, an address) could
/// not be read, naming the file. A type of its own rather than more
/// variants of [`Error`]: a one-byte `Error` keeps every `Result` of the
/// protocol small, which the x86 image (64 KiB) has no room to give up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueError {
    /// The device failed the read.
    Read { file: &'static str, error: Error },
    /// The file has another size than its value: a VMM this firmware does
    /// not know.
    WrongSize {
        file: &'static str,
        size: u32,
        expected: u32,
    },
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            ValueError::Read { file, error } => write!(f, "reading fw_cfg file {file}: {error}"),
            ValueError::WrongSize {
                file,
                size,
                expected,
            } => write!(
                f,
                "fw_cfg file {file} has {size} bytes, not the {expected} of its value"
            ),
        }
    }
}

/// One entry of the fw_cfg file directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct File {
    pub size: u32,
    pub key: u16,
    name: [u8; FILE_NAME_LEN],
}

impl File {
    /// Parses one 64-byte directory entry.
    pub fn parse(entry: &[u8; FILE_ENTRY_LEN]) -> File {
        File {
            size: u32::from_be_bytes([entry[0], entry[1], entry[2], entry[3]]),
            key: u16::from_be_bytes([entry[4], entry[5]]),
            name: entry[8..].try_into().unwrap(),
        }
    }

    /// The name up to its NUL terminator.
    pub fn name(&self) -> &[u8] {
        let end = self
            .name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(FILE_NAME_LEN);
        &self.name[..end]
    }
}

/// Upper bound on directory entries: QEMU allows at most 0x1000 files
/// (FW_CFG_FILE_SLOTS_MAX in hw/nvram/fw_cfg.c); more is a broken VMM.
const MAX_FILES: usize = 0x1000;

/// The fw_cfg file directory.
#[derive(Debug, Clone, Default)]
pub struct Directory(alloc::vec::Vec<File>);

impl Directory {
    /// Parses the FILE_DIR item as read from the device: a be32 count, then
    /// that many 64-byte entries. A count above QEMU's limit is `TooLarge`;
    /// entries the blob is too short for are absent (a legacy read past an
    /// item's end reads zeros, which QEMU never sends as an entry anyway).
    pub fn parse(raw: &[u8]) -> Result<Directory, Error> {
        let count = raw
            .get(..4)
            .map_or(0, |c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize);
        if count > MAX_FILES {
            return Err(Error::TooLarge);
        }
        let files = raw[raw.len().min(4)..]
            .chunks_exact(FILE_ENTRY_LEN)
            .take(count)
            .filter_map(|e| e.try_into().ok().map(File::parse))
            .collect();
        Ok(Directory(files))
    }

    /// Bytes of FILE_DIR that hold a directory of `count` entries.
    pub fn raw_len(count: u32) -> Option<usize> {
        let count = count as usize;
        (count <= MAX_FILES).then_some(4 + FILE_ENTRY_LEN * count)
    }

    pub fn find(&self, name: &str) -> Option<File> {
        // The name and its NUL, without first scanning each entry for the
        // NUL: look-ups are a good part of the x86 firmware's time.
        let n = name.as_bytes();
        self.0
            .iter()
            .find(|f| f.name.get(n.len()).is_none_or(|&b| b == 0) && f.name.starts_with(n))
            .copied()
    }

    /// The entries, in the device's order.
    pub fn files(&self) -> &[File] {
        &self.0
    }
}

/// The DMA descriptor, big-endian fields (fw_cfg.rst "FWCfgDmaAccess").
#[repr(C, align(16))]
struct DmaAccess {
    control: u32,
    length: u32,
    address: u64,
}

/// A probed fw_cfg device.
pub struct FwCfg<T: Transport> {
    io: T,
    dma: bool,
}

impl<T: Transport> FwCfg<T> {
    /// Checks the signature and learns whether DMA is available.
    pub fn probe(io: T) -> Result<Self, Error> {
        let mut f = FwCfg { io, dma: false };
        if &f.read_small(key::SIGNATURE) != b"QEMU" {
            return Err(Error::NotPresent);
        }
        f.dma = f.read_u32(key::ID) & FEATURE_DMA != 0;
        Ok(f)
    }

    pub fn has_dma(&self) -> bool {
        self.dma
    }

    /// The same device read through the data register only, whatever its
    /// ID says. cloud-hypervisor's fw_cfg (v53, devices/src/legacy/fw_cfg.rs)
    /// advertises DMA but decodes the control word's bits at other places
    /// than fw_cfg.rst (SELECT taken from bit 7, SKIP from bit 3), so a
    /// select-and-read transfer reads whichever item was selected before;
    /// on arm64 its 16-byte window ends before the DMA register at +16.
    pub fn without_dma(mut self) -> Self {
        self.dma = false;
        self
    }

    /// Reads the first `N` bytes of an item through the data register.
    fn read_small<const N: usize>(&mut self, key: u16) -> [u8; N] {
        let mut b = [0u8; N];
        self.io.select(key);
        self.io.read_data(&mut b);
        b
    }

    /// Reads a little-endian u32 item (sizes, CPU counts).
    pub fn read_u32(&mut self, key: u16) -> u32 {
        u32::from_le_bytes(self.read_small(key))
    }

    /// Reads a little-endian u16 item.
    pub fn read_u16(&mut self, key: u16) -> u16 {
        u16::from_le_bytes(self.read_small(key))
    }

    /// Reads the first `buf.len()` bytes of an item, by DMA when available.
    pub fn read(&mut self, key: u16, buf: &mut [u8]) -> Result<(), Error> {
        self.read_at(key, 0, buf)
    }

    /// Reads `buf.len()` bytes of an item starting at `offset`.
    pub fn read_at(&mut self, key: u16, offset: u32, buf: &mut [u8]) -> Result<(), Error> {
        if !self.dma {
            self.io.select(key);
            let mut skip = offset as usize;
            let mut scratch = [0u8; 64];
            while skip > 0 {
                let n = skip.min(scratch.len());
                self.io.read_data(&mut scratch[..n]);
                skip -= n;
            }
            self.io.read_data(buf);
            return Ok(());
        }
        let select = DMA_SELECT | ((key as u32) << 16);
        if offset > 0 {
            self.dma_op(select | DMA_SKIP, offset, 0)?;
            self.dma_chunks(DMA_READ, buf)
        } else if buf.is_empty() {
            self.io.select(key);
            Ok(())
        } else {
            // The first chunk selects; later ones continue where it stopped.
            let first = buf.len().min(u32::MAX as usize & !0xfff);
            let (head, tail) = buf.split_at_mut(first);
            let addr = self.io.phys(head.as_ptr());
            self.dma_op(select | DMA_READ, head.len() as u32, addr)?;
            self.dma_chunks(DMA_READ, tail)
        }
    }

    fn dma_chunks(&mut self, control: u32, buf: &mut [u8]) -> Result<(), Error> {
        for chunk in buf.chunks_mut(u32::MAX as usize & !0xfff) {
            let addr = self.io.phys(chunk.as_ptr());
            self.dma_op(control, chunk.len() as u32, addr)?;
        }
        Ok(())
    }

    fn dma_op(&mut self, control: u32, length: u32, address: u64) -> Result<(), Error> {
        let desc = DmaAccess {
            control: control.to_be(),
            length: length.to_be(),
            address: address.to_be(),
        };
        // The device reads the descriptor and writes memory behind the
        // compiler's back: order our stores before the doorbell and the
        // device's stores before our later loads.
        fence(Ordering::SeqCst);
        self.io
            .start_dma(self.io.phys(&desc as *const DmaAccess as *const u8));
        loop {
            let c = u32::from_be(read_control(&desc));
            if c & DMA_ERROR != 0 {
                return Err(Error::Dma);
            }
            if c == 0 {
                break;
            }
            core::hint::spin_loop();
        }
        fence(Ordering::SeqCst);
        Ok(())
    }

    /// Reads the whole file directory in one transfer (by DMA when
    /// available: a byte-at-a-time read costs one VM exit per byte).
    pub fn directory(&mut self) -> Result<Directory, Error> {
        let mut count = [0u8; 4];
        self.read(key::FILE_DIR, &mut count)?;
        let len = Directory::raw_len(u32::from_be_bytes(count)).ok_or(Error::TooLarge)?;
        let mut raw = alloc::vec![0u8; len];
        self.read(key::FILE_DIR, &mut raw)?;
        Directory::parse(&raw)
    }

    /// Looks a file up by name (one directory read per call; use
    /// `directory` for several look-ups).
    pub fn find(&mut self, name: &str) -> Result<File, Error> {
        self.directory()?.find(name).ok_or(Error::NoSuchFile)
    }

    /// Reads a whole file into `buf`, returning the used prefix.
    pub fn read_file<'b>(&mut self, file: &File, buf: &'b mut [u8]) -> Result<&'b mut [u8], Error> {
        let size = file.size as usize;
        if size > buf.len() {
            return Err(Error::TooLarge);
        }
        let out = &mut buf[..size];
        self.read(file.key, out)?;
        Ok(out)
    }

    /// The whole of file `name` when it exists and is at most `max` bytes
    /// (a larger one is `TooLarge`: VMM-sized buffers are capped).
    pub fn read_named(
        &mut self,
        dir: &Directory,
        name: &str,
        max: u32,
    ) -> Result<Option<alloc::vec::Vec<u8>>, Error> {
        self.read_named_head(dir, name, max, usize::MAX)
    }

    /// [`FwCfg::read_named`], but only the first `head` bytes of a longer
    /// file.
    pub fn read_named_head(
        &mut self,
        dir: &Directory,
        name: &str,
        max: u32,
        head: usize,
    ) -> Result<Option<alloc::vec::Vec<u8>>, Error> {
        let Some(file) = dir.find(name) else {
            return Ok(None);
        };
        if file.size > max {
            return Err(Error::TooLarge);
        }
        let mut buf = alloc::vec![0u8; (file.size as usize).min(head)];
        self.read(file.key, &mut buf)?;
        Ok(Some(buf))
    }

    /// The whole of file `name` when it exists, which must be exactly `N`
    /// bytes (`WrongSize` otherwise): the files that hold one value. An
    /// absent file is `Ok(None)`, for the caller's default.
    pub fn read_named_exact<const N: usize>(
        &mut self,
        dir: &Directory,
        name: &'static str,
    ) -> Result<Option<[u8; N]>, ValueError> {
        let Some(file) = dir.find(name) else {
            return Ok(None);
        };
        if file.size as usize != N {
            return Err(ValueError::WrongSize {
                file: name,
                size: file.size,
                expected: N as u32,
            });
        }
        let mut b = [0u8; N];
        self.read(file.key, &mut b)
            .map_err(|error| ValueError::Read { file: name, error })?;
        Ok(Some(b))
    }

    /// File `name` as one le16 (QEMU writes its values little-endian, as
    /// `etc/pvpanic-port`), or `None` when absent.
    pub fn read_u16_named(
        &mut self,
        dir: &Directory,
        name: &'static str,
    ) -> Result<Option<u16>, ValueError> {
        Ok(self.read_named_exact(dir, name)?.map(u16::from_le_bytes))
    }

    /// File `name` as one le64 (as `etc/reserved-memory-end`), or `None`
    /// when absent.
    pub fn read_u64_named(
        &mut self,
        dir: &Directory,
        name: &'static str,
    ) -> Result<Option<u64>, ValueError> {
        Ok(self.read_named_exact(dir, name)?.map(u64::from_le_bytes))
    }

    /// The underlying transport, for device-specific extras.
    pub fn transport(&mut self) -> &mut T {
        &mut self.io
    }
}

/// Reads the control word the device updates when a transfer completes.
/// The library's one `unsafe`: a volatile read of a local (there is no safe
/// volatile read in core).
#[allow(unsafe_code)]
fn read_control(desc: &DmaAccess) -> u32 {
    // SAFETY: `desc` is a live, aligned local; the volatile read only stops
    // the compiler from caching a value the device changes.
    unsafe { core::ptr::read_volatile(&desc.control) }
}

/// A fake fw_cfg for host tests of the code that reads it.
#[cfg(test)]
pub mod testing {
    use super::*;
    use alloc::vec::Vec;

    /// A FILE_DIR item listing `files` as (name, key, size): a be32 count,
    /// then 64-byte entries of size, select, reserved, name (fw_cfg.rst).
    pub fn dir(files: &[(&str, u16, u32)]) -> Vec<u8> {
        let mut d = (files.len() as u32).to_be_bytes().to_vec();
        for (name, key, size) in files {
            let mut e = [0u8; 64];
            e[0..4].copy_from_slice(&size.to_be_bytes());
            e[4..6].copy_from_slice(&key.to_be_bytes());
            e[8..8 + name.len()].copy_from_slice(name.as_bytes());
            d.extend_from_slice(&e);
        }
        d
    }

    /// A fake fw_cfg with legacy (non-DMA) access only.
    pub struct Fake {
        pub items: Vec<(u16, Vec<u8>)>,
        pub cur: Vec<u8>,
        pub pos: usize,
    }

    impl Transport for Fake {
        fn select(&mut self, key: u16) {
            self.cur = self
                .items
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            self.pos = 0;
        }
        fn read_data(&mut self, buf: &mut [u8]) {
            for b in buf {
                *b = self.cur.get(self.pos).copied().unwrap_or(0);
                self.pos += 1;
            }
        }
        fn start_dma(&mut self, _: u64) {
            unreachable!("no DMA in the fake")
        }
    }

    impl Fake {
        /// A fw_cfg with the signature and these items.
        pub fn with(items: &[(u16, &[u8])]) -> Fake {
            let mut all = alloc::vec![(key::SIGNATURE, b"QEMU".to_vec())];
            all.extend(items.iter().map(|(k, v)| (*k, v.to_vec())));
            Fake {
                items: all,
                cur: Vec::new(),
                pos: 0,
            }
        }
    }
}

#[cfg(test)]
mod tests;
