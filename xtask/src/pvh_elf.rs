//! The x86 firmware as a PVH ELF (`hotstub-x86_64.elf`), for VMMs that load
//! a firmware or kernel that way: cloud-hypervisor's `--firmware` and
//! QEMU's `-kernel`. The same link as the `-bios` image: its RAM part
//! (`.disk` and `.image`, linked at 1 MiB) becomes one PT_LOAD at its link
//! address; the code that runs in place from the ROM (`.xip`, linked in
//! the top 2 MiB of the address space) a second one in RAM at 4 MiB
//! ([`XIP_PVH`]), which the PVH entry maps there; a PT_NOTE carries Xen's
//! PHYS32_ENTRY note naming the PVH entry (boot.S `pvh_entry`). `.bss`,
//! the stack and the page tables are not in the file; the entry clears
//! `.bss` itself.

use crate::util::{Context, Result};
use object::read::elf::ElfFile64;
use object::{Endianness, Object, ObjectSection, ObjectSymbol};

/// Xen's ELF note: name "Xen", type XEN_ELFNOTE_PHYS32_ENTRY (18), the
/// 32-bit entry address (xen/include/public/elfnote.h). The descriptor is
/// 8 bytes, as Linux's vmlinux has it: QEMU reads a 64-bit ELF's as a
/// 64-bit value (hw/i386/x86-common.c read_pvh_start_addr), other loaders
/// the low 32 bits.
const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
/// PVH loads at p_paddr and wants the entry at or above 1 MiB
/// (cloud-hypervisor's loader refuses lower).
const MIN_PADDR: u64 = 1 << 20;
/// ELF64 sizes (System V gABI): file header, program header.
const EHDR: usize = 64;
const PHDR: usize = 56;
const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
/// The segment's file offset, page-aligned as its address is.
const LOAD_OFFSET: usize = 0x1000;
/// Where the PVH ELF puts the top 2 MiB of the address space: the 2 MiB
/// of RAM from 4 MiB (boot.S XIP_PVH; the firmware's layout::FIRMWARE
/// covers it). `.xip` lies in its last 256 KiB, as the ROM does below
/// 4 GiB.
const XIP_PVH: u64 = 0x40_0000;
const TOP_2M: u64 = 0xffff_ffff_ffe0_0000;

/// The PVH ELF `cargo xtask build` wrote.
pub fn built() -> Result<std::path::PathBuf> {
    let elf = crate::build::pvh_elf_path();
    if !elf.is_file() {
        return Err(format!("no PVH image {}", elf.display()));
    }
    Ok(elf)
}

/// The PVH ELF of the firmware linked as `elf_data`.
pub fn pvh_elf(elf_data: &[u8]) -> Result<Vec<u8>> {
    let file = ElfFile64::<Endianness>::parse(elf_data).ctx("not a 64-bit ELF")?;
    let mut parts = Vec::new();
    for name in [".disk", ".image"] {
        let s = file
            .section_by_name(name)
            .ok_or(format!("no {name} section"))?;
        let data = s.data().map_err(|e| format!("{name}: {e}"))?;
        parts.push((s.address(), data));
    }
    let entry = file
        .symbols()
        .find(|s| s.name() == Ok("pvh_entry"))
        .ok_or("no pvh_entry symbol")?
        .address();
    let base = parts.iter().map(|p| p.0).min().unwrap();
    let end = parts.iter().map(|(a, d)| a + d.len() as u64).max().unwrap();
    if base < MIN_PADDR || base % 0x1000 != 0 {
        return Err(format!(
            "RAM image at {base:#x}: not page-aligned above 1 MiB"
        ));
    }
    if !(base..end).contains(&entry) || entry > u64::from(u32::MAX) {
        return Err(format!(
            "pvh_entry {entry:#x} outside the image {base:#x}..{end:#x}"
        ));
    }
    let mut image = vec![0u8; (end - base) as usize];
    for (a, d) in &parts {
        let o = (a - base) as usize;
        image[o..o + d.len()].copy_from_slice(d);
    }
    let xip = file.section_by_name(".xip").ok_or("no .xip section")?;
    let xip_at = xip.address().checked_sub(TOP_2M).ok_or(format!(
        ".xip at {:#x}, not in the top 2 MiB",
        xip.address()
    ))? + XIP_PVH;
    let xip_data = xip.data().map_err(|e| format!(".xip: {e}"))?;
    if end > XIP_PVH || xip_at + xip_data.len() as u64 > XIP_PVH + (2 << 20) {
        return Err("the RAM image reaches into 4 MiB, or .xip past 6 MiB".into());
    }
    Ok(write(&[(base, &image), (xip_at, xip_data)], entry))
}

/// An ELF64 executable: a PT_LOAD for each `(address, bytes)` of `loads`
/// (virtual = physical, each at a page-aligned file offset congruent to
/// its address), one PT_NOTE with the Xen note, entry `entry`.
fn write(loads: &[(u64, &[u8])], entry: u64) -> Vec<u8> {
    let note_off = EHDR + (loads.len() + 1) * PHDR;
    let mut note = Vec::new();
    note.extend_from_slice(&4u32.to_le_bytes());
    note.extend_from_slice(&8u32.to_le_bytes());
    note.extend_from_slice(&XEN_ELFNOTE_PHYS32_ENTRY.to_le_bytes());
    note.extend_from_slice(b"Xen\0");
    note.extend_from_slice(&entry.to_le_bytes());
    let mut f = Vec::new();
    f.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    let half = |f: &mut Vec<u8>, v: u16| f.extend_from_slice(&v.to_le_bytes());
    let word = |f: &mut Vec<u8>, v: u32| f.extend_from_slice(&v.to_le_bytes());
    let xword = |f: &mut Vec<u8>, v: u64| f.extend_from_slice(&v.to_le_bytes());
    half(&mut f, 2); // ET_EXEC
    half(&mut f, 62); // EM_X86_64
    word(&mut f, 1); // EV_CURRENT
    xword(&mut f, entry);
    xword(&mut f, EHDR as u64); // program headers right after
    xword(&mut f, 0); // no section headers
    word(&mut f, 0);
    for v in [EHDR as u16, PHDR as u16, loads.len() as u16 + 1, 64, 0, 0] {
        half(&mut f, v);
    }
    // Each load's file offset: page-aligned, plus its address's offset in
    // its page, after the headers and the previous loads.
    let mut offsets = Vec::new();
    let mut next = LOAD_OFFSET as u64;
    for (a, d) in loads {
        let off = next + a % 0x1000;
        offsets.push(off as usize);
        next = (off + d.len() as u64).next_multiple_of(0x1000);
    }
    for ((a, d), off) in loads.iter().zip(&offsets) {
        // PT_LOAD, read/write/execute (PF_R | PF_W | PF_X).
        word(&mut f, PT_LOAD);
        word(&mut f, 7);
        for v in [*off as u64, *a, *a, d.len() as u64, d.len() as u64, 0x1000] {
            xword(&mut f, v);
        }
    }
    // PT_NOTE, read-only, 4-byte aligned as notes are.
    word(&mut f, PT_NOTE);
    word(&mut f, 4);
    for v in [
        note_off as u64,
        0,
        0,
        note.len() as u64,
        note.len() as u64,
        4,
    ] {
        xword(&mut f, v);
    }
    f.extend_from_slice(&note);
    for ((_, d), off) in loads.iter().zip(&offsets) {
        f.resize(*off, 0);
        f.extend_from_slice(d);
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use object::elf;
    use object::read::elf::{FileHeader, ProgramHeader};

    #[test]
    fn the_elf_has_the_load_segment_and_the_xen_note() {
        let img: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let f = write(&[(0x10_0000, &img)], 0x10_0040);
        let e = ElfFile64::<Endianness>::parse(&*f).unwrap();
        assert_eq!(e.entry(), 0x10_0040);
        let hdr = e.elf_header();
        let phs = hdr.program_headers(Endianness::Little, &*f).unwrap();
        let load = &phs[0];
        let le = Endianness::Little;
        assert_eq!(load.p_type(le), elf::PT_LOAD);
        assert_eq!(load.p_paddr(le), 0x10_0000);
        assert_eq!(load.data(le, &*f).unwrap(), &img[..]);
        let note = &phs[1];
        assert_eq!(note.p_type(le), elf::PT_NOTE);
        let mut notes = note.notes(le, &*f).unwrap().unwrap();
        let n = notes.next().unwrap().unwrap();
        assert_eq!(n.name(), b"Xen");
        assert_eq!(n.n_type(le), elf::NoteType(XEN_ELFNOTE_PHYS32_ENTRY));
        assert_eq!(n.desc(), &0x10_0040u64.to_le_bytes());
        assert!(notes.next().unwrap().is_none());
    }
}
