//! ACPI tables for QEMU `q35` (ICH9 chipset).
//!
//! Chipset facts: ICH9 PM I/O block layout from QEMU `hw/acpi/ich9.c` /
//! `include/hw/southbridge/ich9.h` (PM1a_EVT +0 len 4, PM1a_CNT +4 len 2,
//! PM_TMR +8 len 4 (24-bit), GPE0 +0x20 len 16, 128-byte block), reset via
//! the ICH9 reset control register at I/O 0xcf9, S5 = SLP_TYP 0 (QEMU
//! `hw/acpi/core.c` acpi_pm1_cnt_write treats SLP_TYP 0 as soft-off).

use super::emit::{self, Space};
use super::{
    aml_piece, finish, pci_osc, table, to_bytes, Built, Bytes, Error, TableArea, DSDT_REVISION,
    GAS_MEMORY, OEM_ID, OEM_REVISION, OEM_TABLE_ID,
};
use crate::platform::cpus::Vcpu;
use alloc::vec::Vec;

/// What the firmware discovered and programmed on a q35 machine.
pub struct Q35 {
    /// Every possible vCPU. With `cpu_hotplug_io`, `uid` must be the QEMU
    /// CPU hotplug selector of the vCPU (its index among possible CPUs).
    pub cpus: Vec<Vcpu>,
    /// ICH9 PMBASE as programmed by the firmware (e.g. 0x600).
    pub pm_base: u16,
    /// SCI interrupt (ICH9 routes it to IRQ 9 by default).
    pub sci_irq: u8,
    /// Local APIC base (0xfee00000).
    pub lapic_addr: u32,
    pub ioapic_id: u8,
    /// I/O APIC base (0xfec00000); its GSI base is 0.
    pub ioapic_addr: u32,
    /// HPET base and event timer block ID (low 32 bits of GCAP_ID).
    pub hpet: Option<(u64, u32)>,
    pub mmcfg_base: u64,
    pub mmcfg_end_bus: u8,
    /// Inclusive range of the I/O window handed to PCI devices.
    pub pci_io: (u16, u16),
    /// Inclusive 32-bit MMIO window.
    pub pci_mem32: (u64, u64),
    /// Inclusive 64-bit MMIO window; empty (start > end) means none.
    pub pci_mem64: (u64, u64),
    /// I/O base of QEMU's CPU hotplug register block (0x0cd8 on q35), when
    /// runtime vCPU hotplug is to be offered.
    pub cpu_hotplug_io: Option<u16>,
    /// Whether the board's i8042 keyboard controller answers at 0x60/0x64.
    pub i8042: bool,
    /// QEMU's memory hotplug interface, when the machine has DIMM slots.
    pub mem_hotplug: Option<super::memhp::MemHotplug>,
    /// Tables taken over from the VMM (`acpi::vmm`), listed as they are.
    pub vmm_tables: Vec<Vec<u8>>,
    /// The I/O port of QEMU's ISA pvpanic device, when there is one.
    pub pvpanic_io: Option<u16>,
    /// A TPM TIS interface at the PC address (QEMU `-device tpm-tis`).
    pub tpm_tis: bool,
    /// QEMU's ACPI PCI hotplug, when it is on; then `_OSC` keeps native
    /// PCIe hotplug from the OS.
    pub pci_hotplug: Option<super::pcihp::PciHotplug>,
}

// ICH9 PM I/O block offsets and lengths (see module comment).
const PM1_EVT_OFF: u16 = 0x00;
const PM1_EVT_LEN: u8 = 4;
const PM1_CNT_OFF: u16 = 0x04;
const PM1_CNT_LEN: u8 = 2;
const PM_TMR_OFF: u16 = 0x08;
const PM_TMR_LEN: u8 = 4;
const GPE0_OFF: u16 = 0x20;
const GPE0_LEN: u8 = 16;
/// ICH9 PMIO block size (QEMU ICH9_PMIO_SIZE).
const PMIO_SIZE: u8 = 128;

/// ICH9 Reset Control register and the value requesting a hard reset
/// (SYS_RST | RST_CPU; QEMU `hw/isa/lpc_ich9.c` resets on RST_CPU).
const RESET_PORT: u64 = 0xcf9;
const RESET_VALUE: u8 = 0x06;

/// CMOS index of the RTC century byte (QEMU mc146818rtc RTC_CENTURY).
const RTC_CENTURY: u8 = 0x32;

/// QEMU CPU hotplug register block length (docs/specs/acpi_cpu_hotplug.rst).
const CPU_HOTPLUG_LEN: u8 = 12;

/// MADT revision 6, the one of ACPI 6.5 (ACPI 6.5 table 5.19), which the
/// FADT declares (revision 6, minor 5). Linux honors the Local APIC /
/// x2APIC "online capable" flag from revision 5 on.
pub const MADT_REVISION: u8 = 6;

// MADT Local APIC / x2APIC flags (ACPI 6.5 table 5.23).
const LAPIC_ENABLED: u32 = 1 << 0;
const LAPIC_ONLINE_CAPABLE: u32 = 1 << 1;

// MPS INTI flags (ACPI 6.5 table 5.26).
const INTI_ACTIVE_HIGH: u16 = 0b01;
const INTI_LEVEL: u16 = 0b11 << 2;

/// Builds every table for `m` into `area`.
pub fn build(m: &Q35, area: &mut TableArea) -> Result<Built, Error> {
    check(m)?;
    // FACS first: it needs 64-byte alignment (ACPI 6.5 5.2.10).
    let facs_phys = area.place(&facs(), 64)?;
    let dsdt_phys = area.place(&dsdt(m)?, 16)?;
    let madt_phys = area.place(&madt(m)?, 16)?;
    let mcfg_phys = area.place(&super::mcfg(m.mmcfg_base, 0, m.mmcfg_end_bus), 16)?;
    let fadt_phys = area.place(&fadt(m, facs_phys, dsdt_phys), 16)?;
    let hpet = m.hpet.map(|(base, id)| hpet(base, id));
    let placed = [fadt_phys, madt_phys, mcfg_phys];
    finish(area, &placed, hpet.iter().chain(&m.vmm_tables))
}

fn check(m: &Q35) -> Result<(), Error> {
    super::check_cpus(&m.cpus, "duplicate APIC ID")?;
    if m.cpus.iter().any(|c| c.hw_id > u64::from(u32::MAX)) {
        return Err(Error::Invalid("APIC ID above 32 bits"));
    }
    if m.pci_io.0 < 0x0d00 || m.pci_io.0 > m.pci_io.1 {
        return Err(Error::Invalid("PCI I/O window outside 0x0d00-0xffff"));
    }
    if m.pci_mem32.0 > m.pci_mem32.1 || m.pci_mem32.1 > u64::from(u32::MAX) {
        return Err(Error::Invalid("bad 32-bit PCI window"));
    }
    if m.mmcfg_base > u64::from(u32::MAX) - (u64::from(m.mmcfg_end_bus) + 1) * (1 << 20) + 1 {
        return Err(Error::Invalid("MMCONFIG above 4 GiB"));
    }
    if let Some(io) = m.cpu_hotplug_io {
        if m.cpus.iter().any(|c| c.uid as usize >= m.cpus.len()) {
            return Err(Error::Invalid("hotplug vCPU UIDs must be selectors 0..n"));
        }
        if io.checked_add(u16::from(CPU_HOTPLUG_LEN)).is_none() {
            return Err(Error::Invalid("CPU hotplug block beyond I/O space"));
        }
    }
    Ok(())
}

fn facs() -> Vec<u8> {
    let mut f = acpi_tables::facs::FACS::new();
    // Version 2 since ACPI 4.0 (ACPI 6.5 table 5.14); the crate writes 1.
    f.version = 2;
    to_bytes(&f)
}

fn fadt(m: &Q35, facs: u64, dsdt: u64) -> Vec<u8> {
    use acpi_tables::fadt::{FADTBuilder, Flags};
    use acpi_tables::gas::{AccessSize, AddressSpace, GAS};
    let pm = u32::from(m.pm_base);
    let io = |off: u16, len: u8, access| {
        GAS::new(
            AddressSpace::SystemIo,
            len * 8,
            0,
            access,
            u64::from(m.pm_base + off),
        )
    };
    let mut f = FADTBuilder::new(OEM_ID, OEM_TABLE_ID, OEM_REVISION)
        .dsdt_64(dsdt)
        .firmware_ctrl_64(facs)
        // Fixed power button (PWR_BUTTON clear): QEMU's system_powerdown
        // raises PM1 PWRBTN_STS. No sleep button (SLP_BUTTON set).
        .flag(Flags::Wbinvd)
        .flag(Flags::ProcC1)
        .flag(Flags::SlpButton)
        .flag(Flags::ResetRegSup);
    f.sci_int = u16::from(m.sci_irq).into();
    // SMI_CMD 0: the firmware has set SCI_EN itself, so the OS finds the
    // machine already in ACPI mode (ACPI 6.5 4.8.2.5).
    f.smi_cmd = 0.into();
    f.pm1a_evt_blk = (pm + u32::from(PM1_EVT_OFF)).into();
    f.pm1a_cnt_blk = (pm + u32::from(PM1_CNT_OFF)).into();
    f.pm_tmr_blk = (pm + u32::from(PM_TMR_OFF)).into();
    f.gpe0_blk = (pm + u32::from(GPE0_OFF)).into();
    f.pm1_evt_len = PM1_EVT_LEN;
    f.pm1_cnt_len = PM1_CNT_LEN;
    f.pm_tmr_len = PM_TMR_LEN;
    f.gpe0_blk_len = GPE0_LEN;
    // Latencies above 100/1000 us declare C2/C3 unsupported (ACPI 6.5 5.2.9).
    f.p_lvl2_lat = 0x0fff.into();
    f.p_lvl3_lat = 0x0fff.into();
    f.century = RTC_CENTURY;
    // IA-PC boot architecture flags (ACPI 6.5 table 5.11): bit 1 when the
    // i8042 answers at 0x60/0x64; VGA may or may not exist, so "VGA not
    // present" stays clear; MSI works.
    f.iapc_boot_arch = (if m.i8042 { 0x0002u16 } else { 0 }).into();
    f.reset_reg = GAS::new(
        AddressSpace::SystemIo,
        8,
        0,
        AccessSize::ByteAccess,
        RESET_PORT,
    );
    f.reset_value = RESET_VALUE;
    f.x_pm1a_evt_blk = io(PM1_EVT_OFF, PM1_EVT_LEN, AccessSize::Undefined);
    f.x_pm1a_cnt_blk = io(PM1_CNT_OFF, PM1_CNT_LEN, AccessSize::Undefined);
    f.x_pm_tmr_blk = io(PM_TMR_OFF, PM_TMR_LEN, AccessSize::Undefined);
    // GPE registers are byte registers (ACPI 6.5 4.8.4.1), so the access
    // size is "byte", unlike the PM1 blocks whose width is unspecified.
    f.x_gpe0_blk = io(GPE0_OFF, GPE0_LEN, AccessSize::ByteAccess);
    to_bytes(&f.finalize())
}

/// The MADT entry describing one vCPU (ACPI 6.5 5.2.12.2 Processor Local
/// APIC, or 5.2.12.12 Processor Local x2APIC when the APIC ID or UID does
/// not fit the 8-bit entry; 0xff is the broadcast value in both). Also the
/// `_MAT` buffer of the processor device.
pub fn lapic_entry(cpu: &Vcpu, enabled: bool) -> Vec<u8> {
    let flags = if enabled {
        LAPIC_ENABLED
    } else {
        LAPIC_ONLINE_CAPABLE
    };
    let mut b = Bytes::new();
    if uses_x2apic(cpu) {
        b.u8(9)
            .u8(16)
            .u16(0)
            .u32(cpu.hw_id as u32)
            .u32(flags)
            .u32(cpu.uid);
    } else {
        b.u8(0)
            .u8(8)
            .u8(cpu.uid as u8)
            .u8(cpu.hw_id as u8)
            .u32(flags);
    }
    b.0
}

fn uses_x2apic(cpu: &Vcpu) -> bool {
    cpu.hw_id >= 0xff || cpu.uid >= 0xff
}

fn madt(m: &Q35) -> Result<Vec<u8>, Error> {
    let mut b = Bytes::new();
    // PCAT_COMPAT: q35 has dual 8259s (ACPI 6.5 table 5.20).
    b.u32(m.lapic_addr).u32(1);
    for c in &m.cpus {
        b.bytes(&lapic_entry(c, c.enabled));
    }
    b.bytes(&to_bytes(&acpi_tables::madt::IoApic::new(
        m.ioapic_id,
        m.ioapic_addr,
        0,
    )));
    // Interrupt source overrides (ACPI 6.5 5.2.12.5): the PIT's IRQ 0 is
    // wired to I/O APIC pin 2; the SCI is level-triggered, active-high.
    iso(&mut b, 0, 2, 0);
    iso(
        &mut b,
        m.sci_irq,
        u32::from(m.sci_irq),
        INTI_ACTIVE_HIGH | INTI_LEVEL,
    );
    // LINT1 of every local APIC is NMI (ACPI 6.5 5.2.12.7, UID 0xff = all),
    // and the x2APIC form (5.2.12.13, UID 0xffffffff) when any vCPU needs it.
    b.u8(4).u8(6).u8(0xff).u16(0).u8(1);
    if m.cpus.iter().any(uses_x2apic) {
        b.u8(0x0a).u8(12).u16(0).u32(u32::MAX).u8(1).zeros(3);
    }
    Ok(table(*b"APIC", MADT_REVISION, &b.0))
}

fn iso(b: &mut Bytes, source: u8, gsi: u32, flags: u16) {
    b.u8(2).u8(10).u8(0).u8(source).u32(gsi).u16(flags);
}

/// HPET description table (IA-PC HPET specification 1.0a, 3.2.4).
fn hpet(base: u64, block_id: u32) -> Vec<u8> {
    let mut b = Bytes::new();
    b.u32(block_id)
        .gas(GAS_MEMORY, 64, 0, base)
        // HPET number 0; minimum clock tick in periodic mode (QEMU's HPET
        // accepts any; 128 is the spec's example); no page protection.
        .u8(0)
        .u16(128)
        .u8(0);
    table(*b"HPET", 1, &b.0)
}

fn mmcfg_size(m: &Q35) -> u64 {
    (u64::from(m.mmcfg_end_bus) + 1) << 20
}

fn dsdt(m: &Q35) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    let sb = emit::scope(&mut body, b"\\_SB_");
    sb_scope(m, &mut body)?;
    emit::close(&mut body, sb);
    // \_S5: SLP_TYP 0 for PM1a/PM1b (see module comment); S1-S4 are not
    // offered, the firmware has no resume path.
    body.extend_from_slice(aml_piece!("s5"));
    // QEMU's GPE0 bits (hw/acpi/ich9.c, acpi_dev_interface.h): 1 = PCI
    // hotplug, 2 = CPU hotplug, 3 = memory hotplug.
    let gpe = [
        (m.pci_hotplug.is_some(), super::pcihp::GPE),
        (m.cpu_hotplug_io.is_some(), aml_piece!("gpe_cpu")),
        (m.mem_hotplug.is_some(), aml_piece!("gpe_memory")),
    ];
    if gpe.iter().any(|(on, _)| *on) {
        let g = emit::scope(&mut body, b"\\_GPE");
        for (_, method) in gpe.iter().filter(|(on, _)| *on) {
            body.extend_from_slice(method);
        }
        emit::close(&mut body, g);
    }
    Ok(table(*b"DSDT", DSDT_REVISION, &body))
}

/// Everything under \_SB: host bridge with LPC devices, motherboard
/// resources, processors (and the hotplug methods).
fn sb_scope(m: &Q35, out: &mut Vec<u8>) -> Result<(), Error> {
    pci0(m, out)?;
    motherboard(m, out);
    hotplug::processors(m, out)?;
    if let Some(mh) = &m.mem_hotplug {
        out.extend_from_slice(&super::memhp::container(mh)?);
    }
    if m.tpm_tis {
        out.extend_from_slice(aml_piece!("tpm_tis"));
    }
    Ok(())
}

fn pci0(m: &Q35, out: &mut Vec<u8>) -> Result<(), Error> {
    const MEM: Space = Space::Memory { cacheable: false };
    let d = emit::device(out, b"PCI0");
    emit::name_int(out, b"_HID", const { emit::eisa(b"PNP0A08") });
    emit::name_int(out, b"_CID", const { emit::eisa(b"PNP0A03") });
    for seg in [b"_ADR", b"_SEG", b"_BBN", b"_UID"] {
        emit::name_int(out, seg, 0);
    }
    // Host bridge decode (QEMU q35): all buses, config ports 0xcf8-0xcff
    // consumed by the bridge, every other I/O port forwarded (below 0xcf8
    // the LPC/ISA devices, above 0xcff the PCI window), the legacy VGA hole
    // and the 32/64-bit MMIO windows.
    let r = emit::crs(out);
    emit::address(out, 2, Space::Bus, 0, m.mmcfg_end_bus.into(), 0);
    emit::io(out, 0xcf8, 0xcf8, 1, 8);
    emit::address(out, 2, Space::Io, 0x0000, 0x0cf7, 0);
    emit::address(out, 2, Space::Io, 0x0d00, 0xffff, 0);
    let vga = Space::Memory { cacheable: true };
    emit::address(out, 4, vga, 0x000a_0000, 0x000b_ffff, 0);
    emit::address(out, 4, MEM, m.pci_mem32.0, m.pci_mem32.1, 0);
    if m.pci_mem64.0 <= m.pci_mem64.1 {
        emit::address(out, 8, MEM, m.pci_mem64.0, m.pci_mem64.1, 0);
    }
    emit::end_crs(out, r);
    out.extend_from_slice(aml_piece!("q35_prt"));
    out.extend_from_slice(pci_osc(m.pci_hotplug.is_none()));
    lpc(out, m.i8042, m.pvpanic_io);
    if let Some(h) = &m.pci_hotplug {
        out.extend_from_slice(&super::pcihp::pci0_objects(h)?);
    }
    emit::close(out, d);
    Ok(())
}

pub mod adopt;
mod devices;
mod hotplug;
// Also compiled into the build script, which makes the `_PRT` bytes from
// it (routing.rs says why); the library needs it only for the tests.
#[cfg(test)]
mod routing;

use devices::{lpc, motherboard};

// The reference DSDT the tests compare with: test-only, so its file sits
// with the other oracles (acpi/oracle/); declared here, as a child, because
// it reads this module's private constants.
#[cfg(test)]
#[path = "../oracle/x86.rs"]
mod oracle;
#[cfg(test)]
mod tests;
