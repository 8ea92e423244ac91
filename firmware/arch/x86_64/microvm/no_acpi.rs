//! microvm with `acpi=off` (QEMU's qboot configuration): no ACPI tables
//! in fw_cfg, no GED, one I/O APIC (hw/i386/microvm.c microvm_ioapics:
//! `ioapic2` needs ACPI), 8 virtio-mmio transports on ISA IRQs 5-12.
//! Linux learns the vCPUs and the I/O APIC from an MP table
//! (`boot::mptable`) and the transports from the `virtio_mmio.device=`
//! keys QEMU appends to a `-kernel` command line then (microvm's
//! `auto-kernel-cmdline`), which the firmware passes on unchanged. The
//! vCPUs: fw_cfg's count, their APIC IDs from the CPUID topology leaves
//! (QEMU offers no MADT and microvm no CPU hotplug interface).

use super::*;
use hotstub::boot::mptable::{self, Config, IoApic};

/// microvm's I/O APIC (at q35::IOAPIC_ADDR too: QEMU's ioapic_init_gsi
/// maps every PC board's there), its index register and data window
/// (82093AA datasheet 3.1: IOREGSEL at 0x00, IOWIN at 0x10), ID register 0
/// and version register 1 (3.2.1, 3.2.2).
const IOAPIC: u64 = q35::IOAPIC_ADDR as u64;
const IOWIN: u64 = 0x10;
const IOAPIC_ID: u32 = 0;
const IOAPIC_VER: u32 = 1;

/// The local APIC's version register (Intel SDM vol. 3 11.4.8).
const LAPIC_VERSION: u64 = 0x30;

/// le32, non-zero when ISA IRQ0 (the PIT) is routed to I/O APIC pin 2
/// (QEMU hw/i386/fw_cfg.h FW_CFG_IRQ0_OVERRIDE, FW_CFG_ARCH_LOCAL + 2;
/// microvm sets it to 1).
const IRQ0_OVERRIDE: u16 = 0x8002;

/// CPUID leaves: extended topology v2 and v1, their level type in ECX
/// bits 15:8 (0: no more levels), the shift in EAX bits 4:0 and the
/// logical processor count in EBX bits 15:0 (Intel SDM vol. 2, CPUID).
const TOPOLOGY_V2: u32 = 0x1f;
const TOPOLOGY_V1: u32 = 0xb;

/// The MP floating pointer's slot: in 0xF0000-0xFFFFF, on a 16-byte
/// boundary (MP 1.4 chapter 4; Linux's smp_scan_config looks there), in
/// the reset stub's padding below the SMBIOS entry point's slot. The rest
/// of the BIOS area is no place for tables on microvm: it is the image's
/// own top 128 KiB, writable (see `qemu_tables`), where code runs in
/// place. linker/x86_64.ld keeps the stub's code below it.
const MP_FLOATING: u64 = 0xf_ff60;
/// The configuration table's size: its 44-byte header, a 20-byte entry
/// per processor, the bus and I/O APIC entries and 18 interrupt entries of
/// 8 bytes (MP 1.4 4.2, 4.3), with room to spare.
const fn mp_room(cpus: usize) -> u64 {
    256 + 20 * cpus as u64
}

/// Reserves RAM below 4 GiB (at its top, as the ACPI path places QEMU's
/// tables) for the configuration table of `cpus` processors and SMBIOS's
/// structures behind it; returns (base, size).
pub(super) fn reserve(map: &mut MemoryMap, cpus: usize) -> Result<(u64, u64)> {
    let size = (mp_room(cpus) + SMBIOS_ROOM).next_multiple_of(0x1000);
    let Some(start) = map.find_top(size, 0x1000, 1 << 32, &[layout::FIRMWARE]) else {
        bail!("no {} KiB of RAM below 4 GiB for the MP table", size >> 10);
    };
    map.set(start, size, Kind::Reserved);
    Ok((start, size))
}

/// The vCPUs: fw_cfg's count, numbered as QEMU numbers their APIC IDs.
/// Only a `-kernel` boot: QEMU names the virtio-mmio transports Linux
/// must probe on that command line alone (hw/i386/microvm.c
/// microvm_fix_kernel_cmdline, with a kernel and without ACPI).
pub(super) fn cpus(fw: &mut FwCfg<PioFwCfg>) -> Result<CpuModel> {
    if fw.read_u32(fw_cfg::key::KERNEL_SIZE) == 0 {
        bail!("microvm without ACPI boots -kernel only: Linux would not find a virtio-mmio disk");
    }
    let n = u32::from(fw.read_u16(fw_cfg::key::NB_CPUS));
    let ids = mptable::apic_ids(n, &topology());
    let boot = boot_apic_id();
    let checked = mptable::cpus(&ids, boot).map_err(|e| hotstub::err!("microvm's vCPUs: {e}"))?;
    Ok(CpuModel::new(
        checked
            .iter()
            .enumerate()
            .map(|(i, c)| Vcpu {
                uid: i as u32,
                hw_id: u64::from(c.apic_id),
                enabled: true,
            })
            .collect(),
    ))
}

/// (shift, logical processors) per level from the boot vCPU's topology
/// leaf, the thread level first; empty without one.
fn topology() -> Vec<(u32, u32)> {
    let max = core::arch::x86_64::__cpuid(0).eax;
    let leaf = [TOPOLOGY_V2, TOPOLOGY_V1]
        .into_iter()
        .find(|&l| max >= l && (cpuid(l, 0).2 >> 8) & 0xff != 0);
    let Some(leaf) = leaf else {
        return Vec::new();
    };
    (0..8)
        .map(|sub| cpuid(leaf, sub))
        .take_while(|r| (r.2 >> 8) & 0xff != 0)
        .map(|(eax, ebx, _)| (eax & 0x1f, ebx & 0xffff))
        .collect()
}

fn cpuid(leaf: u32, sub: u32) -> (u32, u32, u32) {
    let r = core::arch::x86_64::__cpuid_count(leaf, sub);
    (r.eax, r.ebx, r.ecx)
}

fn ioapic_reg(reg: u32) -> u32 {
    io::mmio_write32(IOAPIC, reg);
    io::mmio_read32(IOAPIC + IOWIN)
}

/// Writes the MP table and the firmware's SMBIOS behind it; Linux gets
/// no RSDP.
pub(super) fn tables(m: &Microvm, fw: &mut FwCfg<PioFwCfg>) -> Result<Tables> {
    let ver = ioapic_reg(IOAPIC_VER);
    let leaf1 = core::arch::x86_64::__cpuid(1);
    let config = Config {
        cpus: m
            .cpus
            .iter()
            .map(|c| mptable::Cpu {
                apic_id: c.hw_id as u8,
                boot: c.hw_id == u64::from(boot_apic_id()),
            })
            .collect(),
        lapic_addr: q35::LAPIC_ADDR,
        lapic_version: io::mmio_read32(lapic(LAPIC_VERSION)) as u8,
        signature: leaf1.eax,
        features: leaf1.edx,
        ioapic: IoApic {
            id: (ioapic_reg(IOAPIC_ID) >> 24) as u8 & 0xf,
            version: ver as u8,
            pins: ((ver >> 16) as u8).wrapping_add(1),
            addr: q35::IOAPIC_ADDR,
        },
        irq0_to_pin2: fw.read_u32(IRQ0_OVERRIDE) != 0,
    };
    let (at, size) = m.mp_area.ok_or("no room was reserved for the MP table")?;
    let (floating, table) =
        mptable::build(&config, at as u32).map_err(|e| hotstub::err!("MP table: {e}"))?;
    let end = at + table.len() as u64;
    if end + SMBIOS_ROOM > at + size {
        bail!("MP table: {} bytes outgrow their room", table.len());
    }
    // SAFETY: RAM `reserve` set aside for the table (size checked above),
    // and the floating pointer's slot in the stub's padding (BIOS-area
    // RAM on microvm).
    unsafe {
        ram_slice(at, table.len() as u64).copy_from_slice(&table);
        ram_slice(MP_FLOATING, floating.len() as u64).copy_from_slice(&floating);
    }
    own_smbios(end);
    Ok(Tables {
        rsdp: 0,
        used: table.len() as u64,
        smbios3: None,
    })
}
