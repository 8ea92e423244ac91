//! `cargo xtask build`: compiles the firmware and turns its ELF into the flat
//! image QEMU maps with `-bios`.

use crate::util::{output, root, run, step, target_dir, Context, Result};
use object::read::elf::{ElfFile64, ProgramHeader};
use object::{elf, Endianness};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Aarch64];

    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    pub fn parse(s: &str) -> Result<Vec<Arch>> {
        match s {
            "x86_64" | "x86" | "amd64" => Ok(vec![Arch::X86_64]),
            "aarch64" | "arm64" => Ok(vec![Arch::Aarch64]),
            "all" => Ok(Arch::ALL.to_vec()),
            _ => Err(format!("unknown arch `{s}` (x86_64, aarch64 or all)")),
        }
    }

    pub fn rust_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-none",
            Arch::Aarch64 => "aarch64-unknown-none-softfloat",
        }
    }

    /// Debian architecture name.
    pub fn deb(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
        }
    }

    pub fn qemu(self) -> &'static str {
        match self {
            Arch::X86_64 => "qemu-system-x86_64",
            Arch::Aarch64 => "qemu-system-aarch64",
        }
    }

    pub fn image_path(self) -> PathBuf {
        target_dir()
            .join("firmware")
            .join(format!("hotstub-{}.bin", self.name()))
    }
}

/// The x86 firmware as a PVH ELF (`pvh_elf`), next to the `-bios` image.
pub fn pvh_elf_path() -> PathBuf {
    target_dir().join("firmware").join("hotstub-x86_64.elf")
}

/// The arm64 image padded to virt's flash bank 0, for libvirt: libvirt
/// accepts `<acpi/>` on aarch64 only with a `type='pflash'` loader
/// (src/qemu/qemu_validate.c, "ACPI requires UEFI on this architecture"),
/// and QEMU's virt wants a pflash0 backing file of exactly the bank's size
/// ("cfi.pflash01 device '/machine/virt.flash0' requires 67108864 bytes").
pub fn pflash_path() -> PathBuf {
    target_dir()
        .join("firmware")
        .join("hotstub-aarch64-pflash.bin")
}

/// arm virt's flash banks are 64 MiB each (hw/arm/virt.c memmap
/// VIRT_FLASH: two banks in 0..128 MiB).
pub const ARM_FLASH_BANK: u64 = 64 << 20;

/// Writes `image` padded with zeros to `ARM_FLASH_BANK` (a sparse file:
/// the padding takes no disk space).
fn write_pflash(image: &[u8]) -> Result<PathBuf> {
    let path = pflash_path();
    let tmp = path.with_extension("tmp-xtask");
    std::fs::write(&tmp, image).ctx(format!("write {}", tmp.display()))?;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&tmp)
        .and_then(|f| f.set_len(ARM_FLASH_BANK))
        .ctx(format!("pad {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).ctx(format!("rename to {}", path.display()))?;
    Ok(path)
}

/// The image size budgets (the linker scripts' ROM and
/// FLASH regions): x86 the top 256 KiB below 4 GiB, arm its flash from 0.
/// They guard against bloat, not a hardware limit (QEMU takes any multiple
/// of 64 KiB as -bios; its arm flash bank is 64 MiB). Until disk boot the
/// images were 64 KiB (x86) and 96-112 KiB (arm); disk boot (its own code
/// plus ext4-view, gpt_disk_io and virtio-drivers) is over 100 KiB on each,
/// measured boot (the TPM driver, event log and SHA-1/256/384/512 in their
/// compact forms) about 22 KiB, cloud-hypervisor's entry paths (their
/// tables adopted and checked, a second boot flow) about 18 KiB.
/// x86 stores the code only disk boot, measured boot and the PVH entry run
/// (`.disk`, 125 KiB) deflated to 69 KiB after the 166 KiB of code and
/// read-only data that run in place (`.xip`) ([`pack_disk`]);
/// the firmware inflates it on those paths only, so a -kernel boot
/// neither copies nor inflates it: 248 KiB with the reset path's page
/// tables and the stub, in four 64 KiB blocks, 256 KiB (SeaBIOS's image
/// is 256 KiB). arm runs in
/// place from flash, everything uncompressed: 300 KiB, budget 304. Issue
/// 20 aims for 128 KiB on each: x86 would need its hot `.image` under
/// about 90 KiB, arm a compressed part inflated into RAM as x86 has; that
/// is open work.
pub const MAX_IMAGE_X86: u64 = 256 * 1024;
pub const MAX_IMAGE_ARM: u64 = 304 * 1024;

impl Arch {
    pub fn max_image(self) -> u64 {
        match self {
            Arch::X86_64 => MAX_IMAGE_X86,
            Arch::Aarch64 => MAX_IMAGE_ARM,
        }
    }
}
/// QEMU requires the x86 `-bios` size to be a multiple of 64 KiB
/// (hw/i386/x86-common.c: x86_bios_rom_init).
const IMAGE_ALIGN: u64 = 64 * 1024;
/// arm virt copies a `-bios` file as it is into flash bank 0
/// (hw/arm/virt.c: virt_firmware_init, load_image_mr), any size up to the
/// bank's; the image is padded to whole 4 KiB pages only.
const ARM_IMAGE_ALIGN: u64 = 4 * 1024;
/// x86: the reset vector is at 0xFFFFFFF0, so the image ends at 4 GiB.
const X86_IMAGE_END: u64 = 1 << 32;
/// x86: the linker script keeps everything loaded within the budget.
const X86_ROM_WINDOW: u64 = MAX_IMAGE_X86;
/// arm virt: flash bank 0 starts at physical 0 (hw/arm/virt.c memmap
/// VIRT_FLASH) and the CPU starts executing at its first byte.
const ARM_IMAGE_BASE: u64 = 0;

/// Rust targets must be installed for cross builds; rust-toolchain.toml lists
/// them, but rustup does not always add them to an existing toolchain.
pub fn ensure_rust_targets(arches: &[Arch]) -> Result<()> {
    let installed = match output(Command::new("rustup").args(["target", "list", "--installed"])) {
        Ok(s) => s,
        // Without rustup (distribution Rust) we cannot add targets; let cargo
        // report a missing target itself.
        Err(_) => return Ok(()),
    };
    let missing: Vec<&str> = arches
        .iter()
        .map(|a| a.rust_target())
        .filter(|t| !installed.lines().any(|l| l.trim() == *t))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    step(format!("adding Rust targets {}", missing.join(" ")));
    run(Command::new("rustup")
        .args(["target", "add"])
        .args(&missing))
}

/// Builds the firmware for one arch and writes the flat image. Returns the
/// image path.
pub fn build(arch: Arch, debug: bool) -> Result<PathBuf> {
    ensure_rust_targets(&[arch])?;
    step(format!(
        "building firmware for {} ({})",
        arch.name(),
        if debug { "debug" } else { "release" }
    ));
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root()).args([
        "build",
        "-p",
        "hotstub",
        "--bin",
        "hotstub",
        "--target",
        arch.rust_target(),
    ]);
    if !debug {
        cmd.arg("--release");
    }
    run(&mut cmd).map_err(|e| format!("firmware for {} does not build: {e}", arch.name()))?;
    let elf_path = target_dir()
        .join(arch.rust_target())
        .join(if debug { "debug" } else { "release" })
        .join("hotstub");
    let elf = std::fs::read(&elf_path).ctx(format!("read {}", elf_path.display()))?;
    let image = flatten(arch, &elf).map_err(|e| format!("{}: {e}", elf_path.display()))?;
    let out = arch.image_path();
    crate::util::write_atomic(&out, &image)?;
    step(format!(
        "wrote {} ({} bytes = {} KiB, limit {} KiB)",
        out.display(),
        image.len(),
        image.len() / 1024,
        arch.max_image() / 1024
    ));
    if arch == Arch::X86_64 {
        let pvh = crate::pvh_elf::pvh_elf(&elf).map_err(|e| format!("PVH ELF: {e}"))?;
        let path = pvh_elf_path();
        crate::util::write_atomic(&path, &pvh)?;
        step(format!(
            "wrote {} ({} bytes, PVH)",
            path.display(),
            pvh.len()
        ));
    }
    if arch == Arch::Aarch64 {
        let path = write_pflash(&image)?;
        step(format!(
            "wrote {} (the image padded to virt's 64 MiB flash bank, for libvirt's pflash loader)",
            path.display()
        ));
    }
    Ok(out)
}

/// A loadable piece of the ELF: its physical (load) address and file bytes.
struct Segment<'a> {
    paddr: u64,
    data: &'a [u8],
}

fn load_segments(data: &[u8]) -> Result<Vec<Segment<'_>>> {
    let file = ElfFile64::<Endianness>::parse(data).ctx("not a 64-bit ELF")?;
    let endian = file.endian();
    let mut segs = Vec::new();
    for ph in file.elf_program_headers() {
        // Only PT_LOAD segments with file contents end up in ROM; bss-only
        // segments (p_filesz == 0) are zeroed by the firmware at run time.
        if ph.p_type(endian) != elf::PT_LOAD || ph.p_filesz(endian) == 0 {
            continue;
        }
        let bytes = ph
            .data(endian, data)
            .map_err(|_| "program header points outside the file".to_string())?;
        segs.push(Segment {
            paddr: ph.p_paddr(endian),
            data: bytes,
        });
    }
    if segs.is_empty() {
        return Err("no loadable segment with contents".into());
    }
    Ok(segs)
}

/// x86: `.disk` (linker/x86_64.ld) is linked in RAM with no place in
/// the ROM; the image carries it as a gzip member (deflate at its best
/// level), its length as 4 little-endian bytes first, at the ROM address
/// `_disk_rom_sx` names (sign-extended), right after `.image`. The
/// firmware inflates it on the paths that run it
/// (firmware/arch/x86_64/disk_code.rs). Returns the RAM segment's address
/// (to leave out of the ROM), the ROM address and the packed bytes; None
/// for a link without `.disk` (the tests' ELFs).
fn pack_disk(elf_data: &[u8]) -> Result<Option<(u64, u64, Vec<u8>)>> {
    use object::{Object, ObjectSection, ObjectSymbol};
    use std::io::Write;
    let file = ElfFile64::<Endianness>::parse(elf_data).ctx("not a 64-bit ELF")?;
    let Some(disk) = file.section_by_name(".disk") else {
        return Ok(None);
    };
    let data = disk.data().map_err(|e| format!(".disk: {e}"))?;
    let rom = file
        .symbols()
        .find(|s| s.name() == Ok("_disk_rom_sx"))
        .ok_or("no _disk_rom_sx symbol")?
        .address();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(data).ctx("deflate .disk")?;
    let member = gz.finish().ctx("deflate .disk")?;
    let mut packed = (member.len() as u32).to_le_bytes().to_vec();
    packed.extend_from_slice(&member);
    step(format!(
        "  .disk: {} bytes, deflated to {}",
        data.len(),
        member.len()
    ));
    Ok(Some((disk.address(), rom & 0xffff_ffff, packed)))
}

/// Lays the segments out by physical address in a flat image.
fn flatten(arch: Arch, elf_data: &[u8]) -> Result<Vec<u8>> {
    let mut segs = load_segments(elf_data)?;
    let packed = match arch {
        Arch::X86_64 => pack_disk(elf_data)?,
        Arch::Aarch64 => None,
    };
    if let Some((ram, rom, bytes)) = &packed {
        segs.retain(|s| s.paddr != *ram);
        segs.push(Segment {
            paddr: *rom,
            data: bytes,
        });
    }
    for s in &segs {
        step(format!(
            "  segment paddr {:#010x}..{:#010x} ({} bytes)",
            s.paddr,
            s.paddr + s.data.len() as u64,
            s.data.len()
        ));
    }
    let (base, end) = match arch {
        Arch::X86_64 => {
            let lo = segs.iter().map(|s| s.paddr).min().unwrap();
            let window = X86_IMAGE_END - X86_ROM_WINDOW;
            if lo < window {
                return Err(format!(
                    "segment at {lo:#x} lies below the ROM window {window:#x}..4 GiB"
                ));
            }
            let size = (X86_IMAGE_END - lo).div_ceil(IMAGE_ALIGN) * IMAGE_ALIGN;
            (X86_IMAGE_END - size, X86_IMAGE_END)
        }
        Arch::Aarch64 => {
            let hi = segs
                .iter()
                .map(|s| s.paddr + s.data.len() as u64)
                .max()
                .unwrap();
            let size = (hi - ARM_IMAGE_BASE).div_ceil(ARM_IMAGE_ALIGN) * ARM_IMAGE_ALIGN;
            (ARM_IMAGE_BASE, ARM_IMAGE_BASE + size)
        }
    };
    for s in &segs {
        let s_end = s
            .paddr
            .checked_add(s.data.len() as u64)
            .ok_or("segment wraps")?;
        if s.paddr < base || s_end > end {
            return Err(format!(
                "segment {:#x}..{:#x} outside the image window {base:#x}..{end:#x}",
                s.paddr, s_end
            ));
        }
    }
    let size = end - base;
    if size > arch.max_image() {
        return Err(format!(
            "image is {size} bytes ({} KiB), more than the {} KiB limit",
            size / 1024,
            arch.max_image() / 1024
        ));
    }
    // Padding is 0xff, like erased flash.
    let mut img = vec![0xffu8; size as usize];
    let mut placed: Vec<(u64, u64)> = Vec::new();
    for s in &segs {
        let (a, b) = (s.paddr, s.paddr + s.data.len() as u64);
        if let Some((c, d)) = placed.iter().find(|(c, d)| a < *d && *c < b) {
            return Err(format!(
                "segments {a:#x}..{b:#x} and {c:#x}..{d:#x} overlap (the deflated .disk after .image past the {} KiB budget?)",
                arch.max_image() / 1024
            ));
        }
        placed.push((a, b));
        let off = (a - base) as usize;
        img[off..off + s.data.len()].copy_from_slice(s.data);
    }
    Ok(img)
}

/// Flat image of an ELF laid out from its lowest load address (for Linux
/// `Image`-format test payloads, whose header starts the first segment).
pub fn flatten_low(elf_data: &[u8]) -> Result<Vec<u8>> {
    let segs = load_segments(elf_data)?;
    let lo = segs.iter().map(|s| s.paddr).min().unwrap();
    let hi = segs
        .iter()
        .map(|s| s.paddr + s.data.len() as u64)
        .max()
        .unwrap();
    if hi - lo > 64 << 20 {
        return Err(format!(
            "payload spans {} bytes; segments far apart?",
            hi - lo
        ));
    }
    let mut img = vec![0u8; (hi - lo) as usize];
    for s in &segs {
        let off = (s.paddr - lo) as usize;
        img[off..off + s.data.len()].copy_from_slice(s.data);
    }
    Ok(img)
}

pub fn image_size(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal little-endian ELF64 executable with one PT_LOAD per
    /// (vaddr, paddr, bytes, memsz) tuple.
    fn elf(segs: &[(u64, u64, &[u8], u64)]) -> Vec<u8> {
        let phoff = 64u64;
        let mut data_off = phoff + 56 * segs.len() as u64;
        let mut h = Vec::new();
        h.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
        h.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        h.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
        h.extend_from_slice(&1u32.to_le_bytes());
        h.extend_from_slice(&0u64.to_le_bytes()); // entry
        h.extend_from_slice(&phoff.to_le_bytes());
        h.extend_from_slice(&0u64.to_le_bytes()); // shoff
        h.extend_from_slice(&0u32.to_le_bytes());
        for v in [64u16, 56, segs.len() as u16, 64, 0, 0] {
            h.extend_from_slice(&v.to_le_bytes());
        }
        let mut body = Vec::new();
        for (vaddr, paddr, bytes, memsz) in segs {
            h.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
            h.extend_from_slice(&5u32.to_le_bytes());
            for v in [data_off, *vaddr, *paddr, bytes.len() as u64, *memsz, 1] {
                h.extend_from_slice(&v.to_le_bytes());
            }
            data_off += bytes.len() as u64;
            body.extend_from_slice(bytes);
        }
        h.extend_from_slice(&body);
        h
    }

    #[test]
    fn x86_image_ends_at_4g() {
        let e = elf(&[
            (0xffff_0000, 0xffff_0000, &[1, 2, 3], 3),
            // RW data: VMA in RAM, LMA in ROM right after the code.
            (0x10_0000, 0xffff_0003, &[4, 5], 0x1000),
            // bss-only: ignored.
            (0x20_0000, 0x20_0000, &[], 0x1000),
            (0xffff_fff0, 0xffff_fff0, &[0xea], 1),
        ]);
        let img = flatten(Arch::X86_64, &e).unwrap();
        assert_eq!(img.len(), 64 * 1024);
        assert_eq!(&img[..5], &[1, 2, 3, 4, 5]);
        assert_eq!(img[img.len() - 16], 0xea);
        assert_eq!(img[5], 0xff);
        // Past the budget: refused.
        let e = elf(&[
            (0xfffa_f000, 0xfffa_f000, &[1], 1),
            (0xffff_fff0, 0xffff_fff0, &[0xea], 1),
        ]);
        assert!(flatten(Arch::X86_64, &e).is_err());
    }

    #[test]
    fn x86_small_image_is_64k() {
        let e = elf(&[
            (0xffff_0000, 0xffff_0000, &[9], 1),
            (0xffff_fff0, 0xffff_fff0, &[0xea], 1),
        ]);
        let img = flatten(Arch::X86_64, &e).unwrap();
        assert_eq!(img.len(), 64 * 1024);
        assert_eq!(img[0], 9);
    }

    #[test]
    fn rejects_out_of_window() {
        let e = elf(&[
            (0xfffa_0000, 0xfffa_0000, &[1], 1),
            (0xffff_fff0, 0xffff_fff0, &[0xea], 1),
        ]);
        assert!(flatten(Arch::X86_64, &e).is_err());
        let big = vec![0u8; MAX_IMAGE_ARM as usize + 1024];
        let e = elf(&[(0, 0, &big, big.len() as u64)]);
        assert!(flatten(Arch::Aarch64, &e).unwrap_err().contains("KiB"));
    }

    #[test]
    fn arm_image_from_zero() {
        let e = elf(&[(0, 0, &[1, 2], 2), (0x4000_0000, 0x1000, &[3], 0x100)]);
        let img = flatten(Arch::Aarch64, &e).unwrap();
        // Whole 4 KiB pages: the byte at 0x1000 starts a second one.
        assert_eq!(img.len(), 8 * 1024);
        assert_eq!((img[0], img[1], img[0x1000]), (1, 2, 3));
    }
}
