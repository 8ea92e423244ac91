//! ACPI tables for QEMU `virt` (arm64), hardware-reduced ACPI.
//!
//! Interrupt numbers are GIC INTIDs (= ACPI GSIVs on arm: SPI n is INTID
//! n + 32, PPI n is INTID n + 16), as the firmware derives them from QEMU's
//! DT. Trigger modes follow that DT (QEMU 10 `hw/arm/virt.c`): timers, PMU,
//! PL011, PL031 and PCI INTx are level/active-high; the GED pulses its line
//! (edge). virtio-mmio is described level-triggered although the DT says
//! edge: the device holds its line until the driver acknowledges the
//! interrupt, so level is what it does and cannot lose an event.

use super::{
    finish, table, to_bytes, Built, Bytes, Error, PrtEntry, TableArea, DSDT_REVISION, GAS_MEMORY,
    OEM_ID, OEM_REVISION, OEM_TABLE_ID,
};
use crate::platform::cpus::{Vcpu, MPIDR_AFFINITY_MASK};
use crate::psci::Conduit;
use alloc::vec;
use alloc::vec::Vec;

/// The interrupt controller as the DT describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gic {
    /// 2 or 3.
    pub version: u8,
    pub gicd: u64,
    /// GICv3 redistributor regions (base, length), in DT order: QEMU virt
    /// has a second one, above RAM, beyond 123 vCPUs (hw/arm/virt.c
    /// `virt_gicv3_redist_region_count`).
    pub gicr: Vec<(u64, u64)>,
    /// GICv2 CPU interface base.
    pub gicc: Option<u64>,
    /// Virtual CPU interface base (virtualization extensions).
    pub gicv: Option<u64>,
    /// Hypervisor control interface base.
    pub gich: Option<u64>,
    /// GICv3 ITS base.
    pub its: Option<u64>,
    /// VGIC maintenance interrupt (INTID).
    pub maint_irq: Option<u32>,
}

/// The PCIe host bridge (QEMU `pci-host-ecam-generic`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArmPcie {
    /// ECAM region (base, size) covering `bus.0..=bus.1`.
    pub ecam: (u64, u64),
    /// First and last bus number.
    pub bus: (u8, u8),
    /// 32-bit MMIO window (base, size); CPU address == PCI address.
    pub mmio32: (u64, u64),
    /// 64-bit MMIO window (base, size); CPU address == PCI address.
    pub mmio64: Option<(u64, u64)>,
    /// I/O window: CPU (MMIO) base and size; PCI I/O addresses start at 0.
    pub io: Option<(u64, u64)>,
    /// Legacy INTx routing, GSI = SPI INTID.
    pub prt: Vec<PrtEntry>,
}

/// What the firmware discovered on a `virt` machine.
pub struct Virt {
    /// Every possible vCPU (hw_id = MPIDR affinity).
    pub cpus: Vec<Vcpu>,
    pub gic: Gic,
    /// Timer INTIDs in DT order: secure EL1 physical, non-secure EL1
    /// physical, virtual, EL2 physical.
    pub timer_irqs: [u32; 4],
    /// EL2 virtual timer INTID, when Linux runs at EL2 with FEAT_VHE (it
    /// then uses that timer itself); None otherwise.
    pub el2_vtimer: Option<u32>,
    /// PMU overflow interrupt (INTID, a PPI).
    pub pmu_irq: Option<u32>,
    /// PL011 base and INTID.
    pub uart: (u64, u32),
    /// PL031 base and INTID.
    pub rtc: Option<(u64, u32)>,
    /// fw_cfg MMIO base.
    pub fw_cfg: Option<u64>,
    /// virtio-mmio transports: base, size, INTID.
    pub virtio_mmio: Vec<(u64, u64, u32)>,
    pub pcie: Option<ArmPcie>,
    /// Generic Event Device registers base and INTID.
    pub ged: Option<(u64, u32)>,
    /// A TPM's TIS registers (base, size).
    pub tpm: Option<(u64, u64)>,
    /// QEMU's memory hotplug interface (signalled through the GED).
    pub mem_hotplug: Option<super::memhp::MemHotplug>,
    /// QEMU's ACPI PCI hotplug of the root ports (QEMU 11's opt-in,
    /// signalled through the GED); None: native PCIe hotplug.
    pub pci_hotplug: Option<super::pcihp::PciHotplug>,
    /// Runtime vCPU hotplug by the resident EL3 firmware.
    pub cpu_hotplug: Option<super::cpuhp::CpuHotplug>,
    /// Tables taken over from the VMM (`acpi::vmm`), listed as they are;
    /// a VMM IORT (it knows the SMMUs) replaces the firmware's own.
    pub vmm_tables: Vec<Vec<u8>>,
    pub conduit: Conduit,
}

/// MADT revision 6 (ACPI 6.5): its GICC structure is 82 bytes (with the
/// TRBE interrupt), which is what the `acpi_tables` crate writes.
const MADT_REVISION: u8 = 6;
/// GTDT revision 3 (ACPI 6.3+, 104 bytes: the virtual EL2 timer GSIV and
/// flags at offsets 96 and 100). Linux checks that length and revision
/// agree, so both follow from this one layout.
pub const GTDT_REVISION: u8 = 3;
pub const GTDT_LEN: usize = 104;
/// SPCR revision 2 (Microsoft SPCR specification, 80-byte table).
const SPCR_REVISION: u8 = 2;

/// FADT ARM boot architecture flags (ACPI 6.5 table 5.13).
const PSCI_COMPLIANT: u16 = 1 << 0;
const PSCI_USE_HVC: u16 = 1 << 1;

/// GTDT timer flags (ACPI 6.5 table 5.122): level (bit 0 clear),
/// active-high (bit 1 clear), always-on: a virtual timer keeps counting
/// in every idle state QEMU has, so no broadcast timer is needed.
const GTDT_TIMER_FLAGS: u32 = 1 << 2;

/// fw_cfg MMIO register block length (QEMU docs/specs/fw_cfg.rst: data,
/// selector and DMA address registers, 0x18 bytes).
const FW_CFG_LEN: u32 = 0x18;
/// GED event selector register length (QEMU hw/acpi/generic_event_device.c).
const GED_SEL_LEN: u32 = 4;
/// PL011 / PL031 register windows (4 KiB each, Arm PrimeCell TRMs).
const PRIMECELL_LEN: u32 = 0x1000;

pub fn build(m: &Virt, area: &mut TableArea) -> Result<Built, Error> {
    check(m)?;
    let dsdt_phys = area.place(&dsdt(m)?, 16)?;
    let fadt_phys = area.place(&fadt(m, dsdt_phys), 16)?;
    let mut tables = vec![madt(m), gtdt(m), spcr(m)];
    if let Some(p) = &m.pcie {
        tables.push(mcfg(p));
        let vmm_iort = m.vmm_tables.iter().any(|t| t.starts_with(b"IORT"));
        if m.gic.its.is_some() && !vmm_iort {
            tables.push(iort(p));
        }
    }
    finish(area, &[fadt_phys], tables.iter().chain(&m.vmm_tables))
}

fn check(m: &Virt) -> Result<(), Error> {
    super::check_cpus(&m.cpus, "duplicate MPIDR")?;
    if m.cpus.iter().any(|c| c.hw_id & !MPIDR_AFFINITY_MASK != 0) {
        return Err(Error::Invalid(
            "MPIDR with bits outside the affinity fields",
        ));
    }
    match m.gic.version {
        2 => {
            if m.gic.gicc.is_none() {
                return Err(Error::Invalid("GICv2 without a CPU interface"));
            }
            // GICv2 has eight CPU interfaces (GICv2 architecture spec 1.1).
            if m.cpus.len() > 8 {
                return Err(Error::Invalid("more than 8 vCPUs on GICv2"));
            }
        }
        3 => {
            // The MADT GICR structure's length field is 32 bits (ACPI 6.5
            // 5.2.12.17); QEMU's regions are 15.4 MiB and 64 MiB.
            let fits =
                |&(b, l): &(u64, u64)| l <= u64::from(u32::MAX) && b.checked_add(l).is_some();
            if m.gic.gicr.is_empty() || !m.gic.gicr.iter().all(fits) {
                return Err(Error::Invalid(
                    "GICv3 without a usable redistributor region",
                ));
            }
        }
        _ => return Err(Error::Invalid("GIC version not 2 or 3")),
    }
    let low = |base: u64, len: u64| base.checked_add(len).is_some_and(|e| e <= 1 << 32);
    let mut devs: Vec<(u64, u64)> = vec![(m.uart.0, u64::from(PRIMECELL_LEN))];
    devs.extend(m.rtc.map(|(b, _)| (b, u64::from(PRIMECELL_LEN))));
    devs.extend(m.tpm);
    devs.extend(m.fw_cfg.map(|b| (b, u64::from(FW_CFG_LEN))));
    devs.extend(m.ged.map(|(b, _)| (b, u64::from(GED_SEL_LEN))));
    devs.extend(m.virtio_mmio.iter().map(|&(b, s, _)| (b, s)));
    if devs.iter().any(|&(b, l)| !low(b, l)) {
        return Err(Error::Invalid("device registers above 4 GiB"));
    }
    if m.virtio_mmio.len() > 100 {
        return Err(Error::Invalid("more than 100 virtio-mmio devices"));
    }
    if let Some(p) = &m.pcie {
        let buses = u64::from(p.bus.1) - u64::from(p.bus.0) + 1;
        if p.bus.0 > p.bus.1 || p.ecam.1 < buses << 20 {
            return Err(Error::Invalid("ECAM region smaller than its bus range"));
        }
        if u64::from(p.bus.0) << 20 > p.ecam.0 {
            return Err(Error::Invalid("ECAM base below bus 0"));
        }
        if p.mmio32.1 == 0 || !low(p.mmio32.0, p.mmio32.1) {
            return Err(Error::Invalid("bad 32-bit PCI window"));
        }
        if p.mmio64
            .is_some_and(|(b, s)| s == 0 || b.checked_add(s).is_none())
        {
            return Err(Error::Invalid("bad 64-bit PCI window"));
        }
        if p.io
            .is_some_and(|(b, s)| s == 0 || s > 0x1_0000 || b.checked_add(s).is_none())
        {
            return Err(Error::Invalid("bad PCI I/O window"));
        }
    }
    Ok(())
}

fn fadt(m: &Virt, dsdt: u64) -> Vec<u8> {
    use acpi_tables::fadt::{FADTBuilder, Flags};
    let mut f = FADTBuilder::new(OEM_ID, OEM_TABLE_ID, OEM_REVISION)
        .dsdt_64(dsdt)
        .flag(Flags::HwReducedAcpi);
    let hvc = if m.conduit == Conduit::Hvc {
        PSCI_USE_HVC
    } else {
        0
    };
    f.arm_boot_arch = (PSCI_COMPLIANT | hvc).into();
    to_bytes(&f.finalize())
}

/// The MADT GICC structure of one vCPU (ACPI 6.5 5.2.12.14).
pub fn gicc_entry(m: &Virt, index: usize, cpu: &Vcpu) -> Vec<u8> {
    use acpi_tables::madt::{EnabledStatus, Gicc, Trigger};
    let status = if cpu.enabled {
        EnabledStatus::Enabled
    } else {
        EnabledStatus::DisabledOnlineCapable
    };
    let mut g = Gicc::new(status)
        .acpi_processor_uid(cpu.uid)
        .mpidr(cpu.hw_id & MPIDR_AFFINITY_MASK);
    if m.gic.version == 2 {
        // GICv2: the CPU interface number is the vCPU's position (QEMU
        // numbers GICv2 CPU interfaces in CPU index order) and the
        // physical CPU interface base is per-GIC.
        g = g
            .cpu_interface_number(index as u32)
            .base_address(m.gic.gicc.unwrap_or(0));
    }
    // GICv3: GICR base stays 0 because GICR structures describe the
    // redistributors (required for vCPUs that are not enabled at boot,
    // Linux Documentation/arch/arm64/cpu-hotplug.rst).
    if let Some(v) = m.gic.gicv {
        g = g.virtual_registers(v);
    }
    if let Some(h) = m.gic.gich {
        g = g.control_block_registers(h);
    }
    if let Some(irq) = m.gic.maint_irq {
        g = g.maintenance_interrupt(irq, Trigger::Level);
    }
    if let Some(irq) = m.pmu_irq {
        g = g.performance_interrupt(irq, Trigger::Level);
    }
    to_bytes(&g)
}

fn madt(m: &Virt) -> Vec<u8> {
    use acpi_tables::madt::{GicIts, GicVersion, Gicd, Gicr};
    let mut b = Bytes::new();
    // Local interrupt controller address and flags: unused on arm.
    b.u32(0).u32(0);
    for (i, c) in m.cpus.iter().enumerate() {
        b.bytes(&gicc_entry(m, i, c));
    }
    let version = if m.gic.version == 2 {
        GicVersion::GICv2
    } else {
        GicVersion::GICv3
    };
    b.bytes(&to_bytes(&Gicd::new(0, m.gic.gicd, version)));
    if m.gic.version == 3 {
        for &(base, len) in &m.gic.gicr {
            b.bytes(&to_bytes(&Gicr::new(base, len as u32)));
        }
        if let Some(its) = m.gic.its {
            b.bytes(&to_bytes(&GicIts::new(0, its)));
        }
    }
    table(*b"APIC", MADT_REVISION, &b.0)
}

/// Generic Timer Description Table (ACPI 6.5 5.2.25), no platform timers.
fn gtdt(m: &Virt) -> Vec<u8> {
    let mut b = Bytes::new();
    // CntControlBase: none (QEMU virt has no memory-mapped counter).
    b.u64(u64::MAX).u32(0);
    // Secure EL1, non-secure EL1, virtual, EL2 timers.
    for irq in m.timer_irqs {
        b.u32(irq).u32(GTDT_TIMER_FLAGS);
    }
    // CntReadBase: none; no platform timer structures, so the (unused)
    // platform timer offset points at the end of the table.
    b.u64(u64::MAX).u32(0).u32(GTDT_LEN as u32);
    // Virtual EL2 timer: zero GSIV and flags mean "not provided".
    match m.el2_vtimer {
        Some(irq) => b.u32(irq).u32(GTDT_TIMER_FLAGS),
        None => b.u32(0).u32(0),
    };
    let t = table(*b"GTDT", GTDT_REVISION, &b.0);
    debug_assert_eq!(t.len(), GTDT_LEN);
    t
}

/// Serial Port Console Redirection table (Microsoft SPCR spec rev 2).
fn spcr(m: &Virt) -> Vec<u8> {
    // Interface type 3 = ARM PL011 UART (Microsoft DBG2 serial subtypes).
    const PL011: u8 = 3;
    // Interrupt type bit 3: ARM GIC interrupt (GSIV field).
    const GIC_INTERRUPT: u8 = 1 << 3;
    // Baud rate code 7 = 115200.
    const BAUD_115200: u8 = 7;
    let (base, irq) = m.uart;
    let mut b = Bytes::new();
    b.u8(PL011).zeros(3);
    // PL011 registers are 32-bit (Linux maps "mmio32" from this width).
    b.gas(GAS_MEMORY, 32, 3, base);
    b.u8(GIC_INTERRUPT).u8(0).u32(irq);
    // Baud, no parity, one stop bit, no flow control, VT100, reserved.
    b.u8(BAUD_115200).u8(0).u8(1).u8(0).u8(0).u8(0);
    // Not a PCI device: IDs 0xffff, bus/dev/fn/flags/segment 0.
    b.u16(0xffff).u16(0xffff).u8(0).u8(0).u8(0).u32(0).u8(0);
    b.u32(0); // reserved
    table(*b"SPCR", SPCR_REVISION, &b.0)
}

fn mcfg(p: &ArmPcie) -> Vec<u8> {
    // MCFG gives the address bus 0 would have (PCI Firmware spec 4.1.2).
    super::mcfg(p.ecam.0 - (u64::from(p.bus.0) << 20), p.bus.0, p.bus.1)
}

/// IO Remapping Table (Arm DEN0049, table revision 0 layout): one ITS group
/// and one PCI root complex whose requester IDs all map 1:1 to the ITS, as
/// QEMU's DT `msi-map = <0 &its 0 0x10000>` says.
fn iort(_p: &ArmPcie) -> Vec<u8> {
    const HEADER: u32 = 48;
    const ITS_NODE_LEN: u16 = 24;
    const RC_NODE_LEN: u16 = 36 + 20;
    let mut b = Bytes::new();
    b.u32(2).u32(HEADER).u32(0);
    // ITS group node (type 0): no ID mappings, one ITS with MADT ID 0.
    let its_off = HEADER;
    b.u8(0).u16(ITS_NODE_LEN).u8(0).u32(0).u32(0).u32(0);
    b.u32(1).u32(0);
    // Root complex node (type 2, revision 1): cache-coherent (CCA 1),
    // coherent path to memory and device attributes (memory access flags
    // CPM | DACS), no ATS, segment 0, 64-bit addressing, one ID mapping.
    b.u8(2).u16(RC_NODE_LEN).u8(1).u32(0).u32(1).u32(36);
    b.u32(1).u8(0).u16(0).u8(0b11);
    b.u32(0).u32(0).u8(64).zeros(3);
    // ID mapping: input 0, 0x10000 IDs (the field is count - 1), output 0,
    // to the ITS group, not a single mapping.
    b.u32(0).u32(0xffff).u32(0).u32(its_off).u32(0);
    table(*b"IORT", 0, &b.0)
}

pub mod ch;
mod dsdt;
use dsdt::dsdt;

// The reference DSDT the tests compare with: test-only, so its file sits
// with the other oracles (acpi/oracle/); declared here, as a child, because
// it reads this module's private constants.
#[cfg(test)]
#[path = "../oracle/arm.rs"]
mod oracle;
#[cfg(test)]
mod tests;
