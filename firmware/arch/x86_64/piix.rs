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
