//! The PC boards' ACPI tables in the legacy BIOS area, and the VMM's SMBIOS
//! tables beside them.

use super::*;
use hotstub::boot::smbios::{self, HOTSTUB as FIRMWARE};

/// The 32-bit PCI window, `[start, end)`: above low RAM and above
/// MMCONFIG (so at 3 GiB or higher), below the I/O APIC. The DSDT
/// describes it and the disk boot places virtio BARs in it.
pub(super) fn pci_mem32(map: &MemoryMap) -> (u64, u64) {
    let start = map
        .ram_end_below_4g()
        .max(0xc000_0000)
        .max(q35::MMCONFIG_BASE + q35::MMCONFIG_SIZE);
    (start, q35::IOAPIC_ADDR as u64)
}

/// Where the ACPI tables for `cpus` possible vCPUs go, `[start, end)`: the
/// legacy BIOS area below the SMBIOS entry point while their bound
/// (`acpi::x86::area_size`) fits there, else that much RAM at the top
/// below 4 GiB (page-aligned, clear of the firmware), which `map` then
/// gives as ACPI reclaimable (e820 type 3, ACPI 6.5 15.1) as SeaBIOS
/// gives its own tables' RAM: at 1,024 vCPUs the MADT and the processor
/// devices alone are over 100 KiB.
pub(super) fn acpi_area(map: &mut MemoryMap, cpus: usize) -> Result<(u64, u64)> {
    let need = acpi::x86::area_size(cpus) as u64;
    if need <= layout::SMBIOS_ANCHOR - layout::ACPI.0 {
        return Ok((layout::ACPI.0, layout::SMBIOS_ANCHOR));
    }
    let size = need.next_multiple_of(0x1000);
    let Some(start) = map.find_top(size, 0x1000, 1 << 32, &[layout::FIRMWARE]) else {
        bail!(
            "no {} KiB of RAM below 4 GiB for the ACPI tables of {} vCPUs",
            size >> 10,
            cpus
        );
    };
    map.set(start, size, Kind::Acpi);
    Ok((start, start + size))
}

/// Builds the ACPI tables of `q` in `area` (from [`acpi_area`]); returns
/// the RSDP address and the first free byte of the BIOS area after them.
pub(super) fn build_acpi(
    area: (u64, u64),
    pc: &Pc,
    vmm_tables: Vec<Vec<u8>>,
    pci_hotplug: Option<acpi::pcihp::PciHotplug>,
    pvpanic_io: Option<u16>,
    tpm_tis: bool,
) -> Result<(u64, u64)> {
    let (map, device_mem_end) = (&pc.map, pc.device_mem_end);
    let chipset = match pc.board {
        Board::I440fx => acpi::x86::Chipset::Piix4,
        _ => acpi::x86::Chipset::Ich9,
    };
    let (mem32_start, mem32_end) = pci_mem32(map);
    let high_end = map
        .regions()
        .iter()
        .filter(|r| r.kind == Kind::Ram)
        .map(|r| r.end())
        .max()
        .unwrap_or(0);
    // Above RAM and above the memory-hotplug area QEMU reserves for
    // `-m ...,maxmem=`, on a 1 GiB boundary.
    let mem64_start =
        (high_end.max(1 << 32).max(device_mem_end) + (1 << 30) - 1) & !((1 << 30) - 1);
    let piix = chipset == acpi::x86::Chipset::Piix4;
    let m = acpi::x86::Pc {
        chipset,
        cpus: pc.cpus.as_slice().to_vec(),
        pm_base: q35::PM_BASE,
        sci_irq: q35::SCI_IRQ,
        lapic_addr: q35::LAPIC_ADDR,
        ioapic_id: 0,
        ioapic_addr: q35::IOAPIC_ADDR,
        hpet: q35::hpet_block_id().map(|id| (q35::HPET_ADDR, id)),
        mmcfg_base: q35::MMCONFIG_BASE,
        mmcfg_end_bus: 255,
        pci_io: (0x1000, 0xffff),
        pci_mem32: (mem32_start, mem32_end - 1),
        // 32 GiB of 64-bit window, like QEMU's default for q35.
        pci_mem64: (mem64_start, mem64_start + (32 << 30) - 1),
        cpu_hotplug_io: Some(if piix {
            super::piix::CPUHP_BASE
        } else {
            q35::CPUHP_BASE
        }),
        i8042: q35::has_i8042(),
        mem_hotplug: match q35::memory_slots()? {
            0 => None,
            slots => Some(acpi::memhp::MemHotplug {
                block: acpi::memhp::Block::Io(q35::MEMHP_BASE),
                slots,
            }),
        },
        vmm_tables,
        pci_hotplug,
        pvpanic_io,
        tpm_tis,
    };
    let (start, end) = area;
    // SAFETY: either the BIOS area below the SMBIOS entry point's slot, RAM
    // after q35::init (PAM) where only ACPI and SMBIOS data go, or RAM that
    // `acpi_area` took from the map for the tables alone.
    let mut area = acpi::TableArea::new(unsafe { ram_slice(start, end - start) }, start);
    let built =
        acpi::x86::build(&m, &mut area).map_err(|e| hotstub::err!("building ACPI tables: {e}"))?;
    // SAFETY: the RSDP slot in the BIOS area (layout).
    unsafe { ram_slice(layout::RSDP, 36) }.copy_from_slice(&built.rsdp);
    let free = if start == layout::ACPI.0 {
        start + area.used() as u64
    } else {
        layout::ACPI.0
    };
    Ok((layout::RSDP, free))
}

/// Copies QEMU's SMBIOS structures, with the firmware's type 0 merged in,
/// to `free` (below the entry point) and the patched entry point to its
/// fixed slot, where Linux's legacy scan of 0xF0000-0xFFFFF finds it.
/// Optional: without them the guest just has no DMI.
pub(super) fn place_smbios(fw: &mut FwCfg<PioFwCfg>, files: &Directory, free: u64) {
    let (Some(anchor), Some(tables)) = (
        files.find(fw_cfg::file::SMBIOS_ANCHOR),
        files.find(fw_cfg::file::SMBIOS_TABLES),
    ) else {
        return;
    };
    let addr = (free + 15) & !15;
    let mut entry = vec![0u8; anchor.size as usize];
    let mut raw = vec![0u8; tables.size as usize];
    let read = fw.read_file(&tables, &mut raw).map(drop);
    let merged = read
        .and_then(|()| fw.read_file(&anchor, &mut entry).map(drop))
        .map_err(|e| format!("{e}"))
        .and_then(|()| smbios::with_firmware(&raw, &FIRMWARE).map_err(|e| format!("{e}")));
    let placed = merged.and_then(|t| {
        if entry.len() as u64 > layout::RSDP - layout::SMBIOS_ANCHOR
            || addr + t.bytes.len() as u64 > layout::SMBIOS_ANCHOR
        {
            return Err("SMBIOS tables do not fit in the BIOS area".into());
        }
        smbios::patch_anchor(&mut entry, addr, &t).map_err(|e| format!("{e}"))?;
        Ok(t)
    });
    match placed {
        Ok(t) => {
            // SAFETY: between the ACPI tables and the entry point slot, and
            // the entry point slot below the RSDP, sizes checked above.
            unsafe {
                ram_slice(addr, t.bytes.len() as u64).copy_from_slice(&t.bytes);
                ram_slice(layout::SMBIOS_ANCHOR, entry.len() as u64).copy_from_slice(&entry);
            }
        }
        Err(e) => println!("hotstub: warning: {}; guest gets no DMI data", e),
    }
}
