//! The stub device tree an arm64 Linux gets beside the ACPI tables when no
//! UEFI runs: `/chosen` with the command line, the initrd and where the
//! EFI system table and memory map are.

use alloc::vec::Vec;

use crate::platform::dt::{FDT_BEGIN_NODE, FDT_END, FDT_END_NODE, FDT_MAGIC, FDT_PROP};

/// What Linux finds in the `/chosen` of the stub DT (Linux
/// `Documentation/arch/arm64/booting.rst`, `drivers/firmware/efi/fdtparams.c`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chosen<'a> {
    pub bootargs: &'a str,
    /// Physical start and end (exclusive) of the initrd.
    pub initrd: Option<(u64, u64)>,
    pub efi_system_table: u64,
    pub efi_mmap_start: u64,
    pub efi_mmap_size: u32,
    pub efi_mmap_desc_size: u32,
    pub efi_mmap_desc_ver: u32,
    pub rng_seed: Option<&'a [u8]>,
    pub kaslr_seed: Option<u64>,
}

/// Writes a DT that holds only `/chosen`: Linux then takes the machine
/// description from ACPI (arm64 `dt_is_stub()`).
///
/// Written here rather than with `vm_fdt`: its general writer (a `BTreeMap`
/// string table, `CString` names, an error type) cost the arm image 4 KiB
/// for two nodes of a fixed shape, where the format (DT spec v0.4 chapter 5)
/// takes a few lines.
pub fn write_chosen(c: &Chosen) -> Vec<u8> {
    let mut w = StubWriter::default();
    w.begin_node("");
    w.prop("#address-cells", &2u32.to_be_bytes());
    w.prop("#size-cells", &2u32.to_be_bytes());
    w.begin_node("chosen");
    w.prop("bootargs", &[c.bootargs.as_bytes(), &[0]].concat());
    if let Some((start, end)) = c.initrd {
        w.prop("linux,initrd-start", &start.to_be_bytes());
        w.prop("linux,initrd-end", &end.to_be_bytes());
    }
    w.prop("linux,uefi-system-table", &c.efi_system_table.to_be_bytes());
    w.prop("linux,uefi-mmap-start", &c.efi_mmap_start.to_be_bytes());
    w.prop("linux,uefi-mmap-size", &c.efi_mmap_size.to_be_bytes());
    w.prop(
        "linux,uefi-mmap-desc-size",
        &c.efi_mmap_desc_size.to_be_bytes(),
    );
    w.prop(
        "linux,uefi-mmap-desc-ver",
        &c.efi_mmap_desc_ver.to_be_bytes(),
    );
    // Mainline Linux does not read this, but Debian's kernels carry a
    // lockdown patch that adds it to the properties efi_get_fdt_params()
    // requires: without it they ignore the EFI hand-off and find no memory.
    // 0 claims no Secure Boot whether a kernel reads the value as a flag or
    // as `enum efi_secureboot_mode` (0 = unset; include/linux/efi.h).
    w.prop("linux,uefi-secure-boot", &0u32.to_be_bytes());
    if let Some(seed) = c.rng_seed {
        w.prop("rng-seed", seed);
    }
    if let Some(seed) = c.kaslr_seed {
        w.prop("kaslr-seed", &seed.to_be_bytes());
    }
    w.finish()
}

/// The structure and strings blocks of a DT being written, big-endian
/// tokens padded to 4 bytes (DT spec v0.4 section 5.4).
#[derive(Default)]
struct StubWriter {
    nodes: u32,
    dt: Vec<u8>,
    strings: Vec<u8>,
}

impl StubWriter {
    fn word(&mut self, w: u32) {
        self.dt.extend_from_slice(&w.to_be_bytes());
    }

    fn bytes(&mut self, b: &[u8]) {
        self.dt.extend_from_slice(b);
        self.dt.resize(self.dt.len().next_multiple_of(4), 0);
    }

    fn begin_node(&mut self, name: &str) {
        self.nodes += 1;
        self.word(FDT_BEGIN_NODE);
        self.bytes(&[name.as_bytes(), &[0]].concat());
    }

    fn prop(&mut self, name: &str, value: &[u8]) {
        self.word(FDT_PROP);
        self.word(value.len() as u32);
        self.word(self.strings.len() as u32);
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        self.bytes(value);
    }

    /// Closes the open nodes and lays out header, an empty memory
    /// reservation map, the structure and the strings block.
    fn finish(mut self) -> Vec<u8> {
        for _ in 0..self.nodes {
            self.word(FDT_END_NODE);
        }
        self.word(FDT_END);
        // The header is 40 bytes; the reservation map (8-aligned) holds only
        // its terminating zero entry.
        let (rsvmap, dt) = (40u32, 56u32);
        let strings = dt + self.dt.len() as u32;
        let total = strings + self.strings.len() as u32;
        // magic, totalsize, off_dt_struct, off_dt_strings, off_mem_rsvmap,
        // version 17, last_comp_version 16, boot_cpuid_phys,
        // size_dt_strings, size_dt_struct (DT spec v0.4 section 5.2).
        let header = [
            FDT_MAGIC,
            total,
            dt,
            strings,
            rsvmap,
            17,
            16,
            0,
            self.strings.len() as u32,
            self.dt.len() as u32,
        ];
        let mut out: Vec<u8> = header.iter().flat_map(|w| w.to_be_bytes()).collect();
        out.resize(dt as usize, 0);
        out.extend_from_slice(&self.dt);
        out.extend_from_slice(&self.strings);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::dt;
    use fdt::Fdt;

    #[test]
    fn chosen_dt_round_trips() {
        let c = Chosen {
            bootargs: "console=ttyAMA0 quiet",
            initrd: Some((0x4800_0000, 0x4810_0000)),
            efi_system_table: 0x4010_0000,
            efi_mmap_start: 0x4010_1000,
            efi_mmap_size: 5 * 40,
            efi_mmap_desc_size: 40,
            efi_mmap_desc_ver: 1,
            rng_seed: Some(&[9, 8, 7]),
            kaslr_seed: None,
        };
        let blob = write_chosen(&c);
        dt::check_structure(&blob).unwrap();
        let fdt = Fdt::new(&blob).unwrap();
        let root = fdt.find_node("/").unwrap();
        // A stub DT: /chosen is the only node under the root.
        let names: Vec<&str> = root.children().map(|n| n.name).collect();
        assert_eq!(names, ["chosen"]);
        let ch = fdt.find_node("/chosen").unwrap();
        assert_eq!(
            ch.property("bootargs").unwrap().value,
            b"console=ttyAMA0 quiet\0"
        );
        let u64p = |n: &str| {
            let v = ch.property(n).unwrap().value;
            u64::from_be_bytes(v.try_into().unwrap())
        };
        assert_eq!(u64p("linux,initrd-start"), 0x4800_0000);
        assert_eq!(u64p("linux,initrd-end"), 0x4810_0000);
        assert_eq!(u64p("linux,uefi-system-table"), 0x4010_0000);
        assert_eq!(u64p("linux,uefi-mmap-start"), 0x4010_1000);
        assert_eq!(
            ch.property("linux,uefi-mmap-size").unwrap().as_usize(),
            Some(200)
        );
        assert_eq!(
            ch.property("linux,uefi-mmap-desc-size").unwrap().as_usize(),
            Some(40)
        );
        assert_eq!(
            ch.property("linux,uefi-mmap-desc-ver").unwrap().as_usize(),
            Some(1)
        );
        assert_eq!(
            ch.property("linux,uefi-secure-boot").unwrap().as_usize(),
            Some(0)
        );
        assert_eq!(ch.property("rng-seed").unwrap().value, &[9, 8, 7]);
        assert!(ch.property("kaslr-seed").is_none());
    }
}
