//! QEMU `pc` (i440FX host bridge, PIIX3 ISA bridge, PIIX4 PM function)
//! chipset set-up that Linux expects the firmware to have done: what
//! SeaBIOS programs on this board (src/fw/pciinit.c piix_isa_bridge_setup,
//! piix4_pm_setup, i440fx_mem_addr_setup), read for the facts. The rest
//! of the board (PM timer, HPET, i8042, CPU model, MTRRs) is as on q35
//! (`q35`).

use super::io::*;
use super::q35::PM_BASE;
use hotstub::platform::x86_board as board;

/// i440FX host bridge and PIIX3 ISA bridge (QEMU hw/pci-host/i440fx.c,
/// hw/isa/piix.c: the ISA bridge is device 1 function 0, its PM function
/// 3; `platform::x86_board` tells the board).
const I440FX: u16 = bdf(0, 0, 0);
const PIIX3: u16 = bdf(0, 1, 0);

/// i440FX PAM registers 0x59..0x5f control the 0xC0000-0xFFFFF shadow, laid
/// out as on Q35's MCH (0x59's high nibble the 0xF0000 block; 0x3 in a
/// nibble routes reads and writes to RAM): 82441FX datasheet 3.2.17, QEMU
/// I440FX_PAM.
const PAM0: u8 = 0x59;

/// PIIX3 PIRQ route control PIRQRCA-D (config 0x60-0x63; PIIX3 datasheet
/// 2.2.9), and the ISA IRQs SeaBIOS routes PIRQ A-D to (pciinit.c
/// pci_irqs: 10, 10, 11, 11), which QEMU's own link devices offer.
const PIRQ_ROUTE: u8 = 0x60;
const PIRQ_IRQS: [u8; 4] = [10, 10, 11, 11];
/// The edge/level control registers of the two 8259s (PIIX3 datasheet
/// 2.3.4, ELCR1 0x4d0 for IRQ 0-7, ELCR2 0x4d1 for IRQ 8-15): PCI
/// interrupts are level-triggered.
const ELCR: [u16; 2] = [0x4d0, 0x4d1];

/// QEMU's CPU hotplug register block on PIIX4 (hw/acpi/piix4.c
/// PIIX4_CPU_HOTPLUG_IO_BASE; the modern interface of
/// docs/specs/acpi_cpu_hotplug.rst at the same place after the switch).
pub const CPUHP_BASE: u16 = 0xaf00;

/// Enables the PIIX4 PM block at the same base as q35's, so that a later
/// error can power off, and hands over in ACPI mode.
pub fn enable_pm() {
    let (dev, func) = board::PIIX4_PM_DEV;
    let pm = bdf(0, dev, func);
    pci_write32(pm, board::PIIX4_PMBA, u32::from(PM_BASE));
    pci_write8(pm, board::PIIX4_PMREGMISC, board::PIIX4_PMIOSE);
    // SCI_EN written directly, as on q35: QEMU keeps PM1_CNT's other
    // bits as written (hw/acpi/core.c acpi_pm1_cnt_write), so the FADT
    // needs no SMI command port.
    let cnt = PM_BASE + 4;
    outw(cnt, inw(cnt) | 1);
}

/// RAM behind the legacy BIOS area, and the PCI interrupt routes.
pub fn init() {
    pci_write8(I440FX, PAM0, 0x30);
    for i in 1..=6 {
        pci_write8(I440FX, PAM0 + i, 0x33);
    }
    let mut elcr = [0u8; 2];
    for (i, irq) in PIRQ_IRQS.into_iter().enumerate() {
        pci_write8(PIIX3, PIRQ_ROUTE + i as u8, irq);
        elcr[usize::from(irq >> 3)] |= 1 << (irq & 7);
    }
    for (port, v) in ELCR.into_iter().zip(elcr) {
        outb(port, v);
    }
}

/// QEMU's ACPI PCI hotplug register block on PIIX4 (hw/acpi/piix4.c
/// ACPI_PCIHP_ADDR_PIIX4), on by default; the bus selector BNUM at +0x10
/// and the removability (hotpluggable slots) register at +0x0c
/// (hw/acpi/pcihp.c PCI_SEL_BASE, PCI_RMV_BASE), dword access only.
pub const PCIHP_BASE: u16 = 0xae00;
const PCIHP_BNUM: u16 = 0x10;
const PCIHP_RMV: u16 = 0x0c;

/// Whether the PCI hotplug registers answer (`acpi::pcihp::probe`).
pub fn acpi_pci_hotplug() -> Result<bool, &'static str> {
    use hotstub::acpi::pcihp::{probe, PROBE};
    probe(inl(PCIHP_BASE + PROBE))
}

/// The slots QEMU can hotplug on the bus `bsel` selects.
pub fn hotplug_slots(bsel: u32) -> u32 {
    outl(PCIHP_BASE + PCIHP_BNUM, bsel);
    inl(PCIHP_BASE + PCIHP_RMV)
}

/// The PCI-to-PCI bridges on bus 0, as `_ADR` values (device << 16 |
/// function, ACPI 6.5 6.1.1).
pub fn bridges() -> alloc::vec::Vec<u32> {
    bus0_bridges(|_| true)
}

/// At most this many bridges on bus 0 get windows (a 4 KiB I/O window
/// each from 0xf000 down, 2 MiB of memory each from the top of the 32-bit
/// PCI window down); more stay for Linux to configure, without room for
/// hotplug.
const BRIDGE_WINDOWS: u8 = 8;
const BRIDGE_IO: u16 = 0x1000;
const BRIDGE_MEM: u32 = 2 << 20;

/// Gives each empty PCI bridge on bus 0 a bus number and I/O and memory
/// windows, as SeaBIOS gives every bridge at least a minimal window so
/// that hotplug behind it has room (pciinit.c pci_bios_init_bus,
/// pci_bios_map_devices). Linux keeps what the firmware set when it is
/// valid, and sizes a bridge's windows only for what sits behind it at
/// boot: a device hot-added behind an empty bridge without windows finds
/// no space. A bridge with devices behind it is left as reset, for Linux
/// to size (its windows then have the slack of their 1 MiB and 4 KiB
/// granules). Register layout: PCI-to-PCI Bridge Architecture 1.2, 3.2
/// (buses at 0x18-0x1a, I/O base/limit 0x1c/0x1d in 4 KiB units, memory
/// base/limit 0x20/0x22 in 1 MiB units, prefetchable 0x24/0x26).
/// `mem_top`: the end of the 32-bit PCI window.
pub fn setup_bridges(bridges: &[u32], mem_top: u32) {
    let mut n = 0u8;
    for adr in bridges {
        if n == BRIDGE_WINDOWS {
            break;
        }
        let b = bdf(0, (adr >> 16) as u8, (adr & 7) as u8);
        // Primary 0, secondary and subordinate n + 1: then its bus can be
        // looked at.
        let bus = n + 1;
        pci_write32(b, 0x18, u32::from(bus) << 8 | u32::from(bus) << 16);
        // Function 0 of any device present: vendor ID not 0xffff (PCI
        // Local Bus 3.0 6.2.1).
        if (0..32).any(|d| pci_read32(bdf(bus, d, 0), 0) & 0xffff != 0xffff) {
            pci_write32(b, 0x18, 0);
            continue;
        }
        n = bus;
        let io = 0u16.wrapping_sub(u16::from(n) * BRIDGE_IO);
        let io_reg = (io >> 8) as u8 & 0xf0;
        pci_write32(b, 0x1c, u32::from(io_reg) | u32::from(io_reg) << 8);
        // The upper 16 bits of the I/O window (0x30) stay 0.
        pci_write32(b, 0x30, 0);
        let mem = mem_top - u32::from(n) * BRIDGE_MEM;
        let limit = mem + BRIDGE_MEM - 1;
        pci_write32(b, 0x20, (mem >> 16) & 0xfff0 | limit & 0xfff0_0000);
        // No prefetchable window (base above limit): prefetchable BARs
        // behind the bridge take the memory window.
        pci_write32(b, 0x24, 0x0000_fff0);
        pci_write32(b, 0x28, 0);
        pci_write32(b, 0x2c, 0);
        // I/O and memory decode, bus master (PCI 3.0 6.2.2).
        pci_write8(b, 0x04, 0x07);
    }
}
