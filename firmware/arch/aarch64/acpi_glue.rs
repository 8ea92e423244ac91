//! From the DT's view of the machine to the ACPI builder's.

use hotstub::acpi::arm::{self, ArmPcie, Gic, Virt};
use hotstub::acpi::{PrtEntry, TableArea};
use hotstub::boot::pipeline::Result;
use hotstub::platform::cpus::CpuModel;
use hotstub::platform::dt::Board;
use hotstub::psci::Conduit;

/// What the firmware tells Linux about the machine.
pub struct Input<'a> {
    pub platform: &'a Board,
    /// Every possible vCPU (DT order) and whether it may come online.
    pub cpus: &'a CpuModel,
    pub ged: Option<(u64, u32)>,
    /// The PSCI conduit Linux must use.
    pub conduit: Conduit,
    /// The EL2 virtual timer to describe (a VHE kernel at EL2 uses it).
    pub el2_vtimer: Option<u32>,
    pub mem_hotplug: Option<hotstub::acpi::memhp::MemHotplug>,
    pub pci_hotplug: Option<hotstub::acpi::pcihp::PciHotplug>,
    pub cpu_hotplug: Option<hotstub::acpi::cpuhp::CpuHotplug>,
    pub vmm_tables: alloc::vec::Vec<alloc::vec::Vec<u8>>,
}

/// Builds the tables into `buf` (at physical `phys`) and places the RSDP
/// behind them. Returns (bytes used, RSDP address).
pub fn build(m: Input, buf: &mut [u8], phys: u64) -> Result<(u64, u64)> {
    let p = m.platform;
    let (uart_base, uart_irq) = p.uart.ok_or("device tree lacks a PL011 console")?;
    let pcie = match &p.pcie {
        Some(pci) => {
            let mmio32 = pci
                .mmio32
                .ok_or("PCIe host bridge has no 32-bit MMIO window")?;
            // The builder describes windows with PCI == CPU address for
            // memory and PCI I/O starting at 0, as QEMU sets them up.
            let identity = |w: (u64, u64, u64)| w.0 == w.1;
            if !identity(mmio32)
                || !pci.mmio64.is_none_or(identity)
                || pci.io.is_some_and(|w| w.1 != 0)
            {
                return Err("PCIe windows with address translation are not supported".into());
            }
            Some(ArmPcie {
                ecam: (pci.ecam_base, pci.ecam_size),
                bus: (pci.bus_start, pci.bus_end),
                mmio32: (mmio32.0, mmio32.2),
                mmio64: pci.mmio64.map(|w| (w.0, w.2)),
                io: pci.io.map(|w| (w.0, w.2)),
                prt: pci
                    .prt
                    .iter()
                    .map(|&(device, pin, gsi)| PrtEntry { device, pin, gsi })
                    .collect(),
            })
        }
        None => None,
    };
    let virt = Virt {
        cpus: m.cpus.as_slice().to_vec(),
        gic: Gic {
            version: p.gic.version,
            gicd: p.gic.gicd,
            gicr: p.gic.gicr.clone(),
            gicc: p.gic.gicc,
            gicv: p.gic.gicv,
            gich: p.gic.gich,
            its: p.gic.its,
            maint_irq: p.gic.maint_irq,
        },
        timer_irqs: p.timer_irqs,
        el2_vtimer: m.el2_vtimer,
        pmu_irq: p.pmu_irq,
        uart: (uart_base, uart_irq),
        rtc: p.rtc,
        fw_cfg: p.fw_cfg,
        virtio_mmio: p.virtio_mmio.clone(),
        pcie,
        ged: m.ged,
        mem_hotplug: m.mem_hotplug,
        pci_hotplug: m.pci_hotplug,
        cpu_hotplug: m.cpu_hotplug,
        tpm: p.tpm,
        vmm_tables: m.vmm_tables,
        conduit: m.conduit,
    };
    let mut area = TableArea::new(buf, phys);
    let built = arm::build(&virt, &mut area)?;
    let rsdp = area.place(&built.rsdp, 16)?;
    Ok((area.used() as u64, rsdp))
}
