//! QEMU q35 (Intel Q35 MCH + ICH9) chipset set-up that Linux expects the
//! firmware to have done.

use super::io::*;
use hotstub::platform::cpus::Vcpu;
use hotstub::platform::memmap::MemoryMap;

/// Host bridge (MCH) and LPC bridge addresses (QEMU hw/pci-host/q35.c,
/// include/hw/southbridge/ich9.h); `platform::x86_board` tells the board.
const MCH: u16 = bdf(0, 0, 0);
const LPC: u16 = bdf(0, 0x1f, 0);

/// MCH PCIEXBAR register and the base QEMU documents as default
/// (MCH_HOST_BRIDGE_PCIEXBAR, MCH_HOST_BRIDGE_PCIEXBAR_DEFAULT).
const PCIEXBAR: u8 = 0x60;
pub const MMCONFIG_BASE: u64 = 0xb000_0000;
/// Length field 0 selects 256 buses (256 MiB); bit 0 enables decoding.
const PCIEXBAR_LEN_256M_EN: u32 = 0x1;
pub const MMCONFIG_SIZE: u64 = 256 << 20;

/// MCH PAM registers 0x90..0x96 control the 0xC0000-0xFFFFF shadow; 0x3 in a
/// nibble routes reads and writes to RAM (Intel 3 Series chipset datasheet
/// 5.1.16; QEMU MCH_HOST_BRIDGE_PAM0).
const PAM0: u8 = 0x90;

/// ICH9 LPC PMBASE and ACPI_CNTL (ICH9 datasheet 13.8.3.1/2; QEMU
/// ICH9_LPC_PMBASE, ICH9_LPC_ACPI_CTRL). PMBASE 0x600 is what SeaBIOS and
/// QEMU's own tables use; SCI_IRQ_SEL 0 means IRQ 9.
const LPC_PMBASE: u8 = 0x40;
const LPC_ACPI_CNTL: u8 = 0x44;
const ACPI_EN: u8 = 0x80;
pub const PM_BASE: u16 = 0x600;
pub const SCI_IRQ: u8 = 9;
/// PM1a_CNT is at PMBASE + 4; SCI_EN is bit 0 (ACPI 6.5 4.8.3.2.1).
pub const PM1_CNT: u16 = PM_BASE + 4;
const SCI_EN: u16 = 1 << 0;
/// The 24-bit ACPI PM timer at PMBASE + 8 ticks at 3.579545 MHz (ACPI 6.5
/// 4.8.3.3).
const PM_TMR: u16 = PM_BASE + 8;
pub const PM_TMR_HZ: u64 = 3_579_545;

/// ICH9 PIRQ[A-D]/[E-H] route control (LPC 0x60-0x63, 0x68-0x6b). Bit 7 set
/// disconnects a PIRQ from the 8259s; in APIC mode PIRQ A-H drive I/O APIC
/// inputs 16-23 directly (ICH9 datasheet 5.9.1).
const PIRQ_ROUTE: [u8; 8] = [0x60, 0x61, 0x62, 0x63, 0x68, 0x69, 0x6a, 0x6b];
const PIRQ_DISABLE: u8 = 0x80;

/// The board's I/O APIC, local APIC and HPET (QEMU hw/i386/pc.c,
/// hw/i386/x86.c).
pub const IOAPIC_ADDR: u32 = 0xfec0_0000;
pub const LAPIC_ADDR: u32 = 0xfee0_0000;
pub const HPET_ADDR: u64 = 0xfed0_0000;

/// QEMU's CPU hotplug register block on ICH9 (docs/specs/acpi_cpu_hotplug.rst),
/// and its registers' offsets there.
pub const CPUHP_BASE: u16 = 0x0cd8;
const CPUHP_SELECTOR: u16 = 0;
const CPUHP_STATUS: u16 = 4;
const CPUHP_COMMAND: u16 = 5;
const CPUHP_DATA: u16 = 8;
const CPUHP_DATA2: u16 = 0;
const CPUHP_CMD_GET_ARCH_ID: u8 = 3;
const CPUHP_ENABLED: u8 = 1 << 0;

/// QEMU's memory hotplug register block, the same on q35 and pc
/// (hw/acpi/ich9.c, hw/acpi/piix4.c: ACPI_MEMORY_HOTPLUG_BASE), present
/// when `-m` has `slots=`.
pub const MEMHP_BASE: u16 = 0x0a00;

/// The number of DIMM slots QEMU offers, counted on its memory hotplug
/// registers (`acpi::memhp::count_slots`).
pub fn memory_slots() -> Result<u32, &'static str> {
    use hotstub::acpi::memhp::{count_slots, PROBE, STATUS};
    let status = inb(MEMHP_BASE + u16::from(STATUS));
    count_slots(status, |slot| {
        outl(MEMHP_BASE, slot);
        inb(MEMHP_BASE + u16::from(PROBE))
    })
}

/// Whether QEMU's ACPI PCI hotplug registers answer
/// (`acpi::pcihp::probe`; dword access only, hw/acpi/pcihp.c).
pub fn acpi_pci_hotplug() -> Result<bool, &'static str> {
    use hotstub::acpi::pcihp::{probe, BASE, PROBE};
    probe(inl(BASE + PROBE))
}

/// The PCI Express root ports on bus 0, as `_ADR` values (device << 16 |
/// function, ACPI 6.5 6.1.1).
pub fn root_ports() -> alloc::vec::Vec<u32> {
    bus0_bridges(is_root_port)
}

/// Whether the function's PCI Express capability (ID 0x10) says Root Port:
/// device/port type 4 in bits 7:4 of its capabilities register (PCI Express
/// Base Specification 7.5.3.2). The list: status bit 4, pointer at 0x34,
/// entries ID, next, data (PCI 3.0 6.7); at most 48 entries fit.
fn is_root_port(f: u16) -> bool {
    if pci_read32(f, 0x04) & (0x10 << 16) == 0 {
        return false;
    }
    let mut ptr = pci_read32(f, 0x34) as u8 & 0xfc;
    for _ in 0..48 {
        if ptr < 0x40 {
            return false;
        }
        let cap = pci_read32(f, ptr);
        if cap & 0xff == 0x10 {
            return (cap >> 20) & 0xf == 4;
        }
        ptr = (cap >> 8) as u8 & 0xfc;
    }
    false
}

/// Enables the ACPI PM block first, so a later error can power off.
pub fn enable_pm() {
    pci_write32(LPC, LPC_PMBASE, PM_BASE as u32 | 1);
    pci_write8(LPC, LPC_ACPI_CNTL, ACPI_EN);
    // The firmware hands over in ACPI mode (FADT SMI_CMD = 0).
    outw(PM1_CNT, inw(PM1_CNT) | SCI_EN);
}

/// The rest of the chipset: MMCONFIG, RAM behind the legacy BIOS area,
/// PIRQ routing.
pub fn init() {
    pci_write32(MCH, PCIEXBAR + 4, (MMCONFIG_BASE >> 32) as u32);
    pci_write32(MCH, PCIEXBAR, MMCONFIG_BASE as u32 | PCIEXBAR_LEN_256M_EN);
    // 0xF0000 block is PAM0's high nibble; PAM1..6 cover 0xC0000-0xEFFFF.
    pci_write8(MCH, PAM0, 0x30);
    for i in 1..=6 {
        pci_write8(MCH, PAM0 + i, 0x33);
    }
    for r in PIRQ_ROUTE {
        pci_write8(LPC, r, PIRQ_DISABLE);
    }
}

/// Current ACPI PM timer value (24 bits).
pub fn pm_timer() -> u32 {
    inl(PM_TMR) & 0x00ff_ffff
}

/// HPET event timer block id: the low half of the General Capabilities and
/// ID register (IA-PC HPET spec 1.0a, 2.3.4), or None if nothing answers.
pub fn hpet_block_id() -> Option<u32> {
    let id = mmio_read32(HPET_ADDR);
    // Vendor id lives in bits 31:16; an absent device reads all ones.
    (id != 0 && id != u32::MAX).then_some(id)
}

/// Whether an i8042 answers: its status port reads all ones when nothing
/// decodes it (QEMU can build q35 without one: `-machine i8042=off`).
pub fn has_i8042() -> bool {
    inb(0x64) != 0xff
}

/// Enumerates every possible vCPU through QEMU's CPU hotplug registers
/// at `base`: the APIC ID of each, and whether it is plugged in now.
pub fn possible_cpus(base: u16, max_cpus: u32) -> Option<alloc::vec::Vec<Vcpu>> {
    // Some QEMUs (and `pc` always) start in the legacy mode, whose block
    // a write of 0 at its first byte switches to the modern one
    // (hw/acpi/cpu_hotplug.c cpu_status_write; QEMU's own AML does the
    // same from its `_INI`, hw/acpi/cpu.c); the modern one accepts the
    // same write as a selector.
    outl(base + CPUHP_SELECTOR, 0);
    outb(base + CPUHP_COMMAND, CPUHP_CMD_GET_ARCH_ID);
    // In modern mode "command data 2" is the APIC ID's upper half: 0.
    if inl(base + CPUHP_DATA2) != 0 {
        return None;
    }
    let cpus = (0..max_cpus)
        .map(|sel| {
            outl(base + CPUHP_SELECTOR, sel);
            outb(base + CPUHP_COMMAND, CPUHP_CMD_GET_ARCH_ID);
            Vcpu {
                uid: sel,
                hw_id: inl(base + CPUHP_DATA) as u64 | (inl(base + CPUHP_DATA2) as u64) << 32,
                enabled: inb(base + CPUHP_STATUS) & CPUHP_ENABLED != 0,
            }
        })
        .collect();
    outl(base + CPUHP_SELECTOR, 0);
    Some(cpus)
}

// MTRR MSRs (Intel SDM vol. 3, 12.11).
const IA32_MTRRCAP: u32 = 0xfe;
const IA32_MTRR_DEF_TYPE: u32 = 0x2ff;
const IA32_MTRR_PHYSBASE0: u32 = 0x200;
const IA32_MTRR_FIX64K_00000: u32 = 0x250;
const IA32_MTRR_FIX16K_80000: u32 = 0x258;
const IA32_MTRR_FIX16K_A0000: u32 = 0x259;
const IA32_MTRR_FIX4K_C0000: u32 = 0x268;
const MTRR_UC: u64 = 0;
const MTRR_WB: u64 = 6;
const MTRR_ENABLE: u64 = 1 << 11;
const MTRR_FIXED_ENABLE: u64 = 1 << 10;
const MTRR_VALID: u64 = 1 << 11;

/// Makes RAM write-back on the boot CPU: default uncached, fixed ranges for
/// the first MiB (VGA window uncached), variable ranges covering RAM in
/// power-of-two blocks. RAM that does not fit the available variable MTRRs
/// stays uncached, which is slow but correct.
pub fn setup_mtrrs(map: &MemoryMap) {
    let cap = rdmsr(IA32_MTRRCAP);
    let vcnt = (cap & 0xff) as u32;
    let has_fixed = cap & (1 << 8) != 0;
    let phys_bits = phys_addr_bits();
    let mask_all = (1u64 << phys_bits) - 1;
    let wb8 = u64::from_ne_bytes([MTRR_WB as u8; 8]);
    let uc8 = 0u64;
    wrmsr(IA32_MTRR_DEF_TYPE, 0);
    if has_fixed {
        wrmsr(IA32_MTRR_FIX64K_00000, wb8);
        wrmsr(IA32_MTRR_FIX16K_80000, wb8);
        wrmsr(IA32_MTRR_FIX16K_A0000, uc8);
        for i in 0..8 {
            wrmsr(IA32_MTRR_FIX4K_C0000 + i, wb8);
        }
    }
    let mut slot = 0;
    for r in map
        .regions()
        .iter()
        .filter(|r| r.kind == hotstub::platform::memmap::Kind::Ram)
    {
        // Whole MiBs only; the first MiB is covered by fixed MTRRs, the
        // blocks below are aligned to their size as MTRRs require.
        let mut addr = (r.addr + 0xfffff) & !0xfffff;
        let end = r.end() & !0xfffff;
        while addr < end && slot < vcnt {
            let align = if addr == 0 {
                1 << 63
            } else {
                1u64 << addr.trailing_zeros()
            };
            let fit = 1u64 << (63 - (end - addr).leading_zeros());
            let size = align.min(fit);
            wrmsr(IA32_MTRR_PHYSBASE0 + 2 * slot, addr | MTRR_WB);
            wrmsr(
                IA32_MTRR_PHYSBASE0 + 2 * slot + 1,
                (!(size - 1) & mask_all) | MTRR_VALID,
            );
            slot += 1;
            addr += size;
        }
    }
    let fixed = if has_fixed { MTRR_FIXED_ENABLE } else { 0 };
    wrmsr(IA32_MTRR_DEF_TYPE, MTRR_ENABLE | fixed | MTRR_UC);
}

/// MAXPHYADDR from CPUID leaf 0x80000008 (Intel SDM vol. 2, CPUID).
fn phys_addr_bits() -> u32 {
    let max = core::arch::x86_64::__cpuid(0x8000_0000).eax;
    if max >= 0x8000_0008 {
        core::arch::x86_64::__cpuid(0x8000_0008).eax & 0xff
    } else {
        36
    }
}

/// Switches the boot CPU's local APIC to x2APIC mode when the CPU has it
/// (CPUID.1:ECX bit 21): IA32_APIC_BASE (MSR 0x1b) EN bit 11 and EXTD bit
/// 10 (Intel SDM vol. 3 11.12.1). Linux accepts APIC IDs past 254 only
/// when it finds x2APIC already on (arch/x86/kernel/acpi/boot.c
/// acpi_parse_x2apic), and turns it off again itself when it has no
/// interrupt remapping for it. Returns whether the mode is on.
pub fn enable_x2apic() -> bool {
    const IA32_APIC_BASE: u32 = 0x1b;
    const EN: u64 = 1 << 11;
    const EXTD: u64 = 1 << 10;
    let ecx = core::arch::x86_64::__cpuid(1).ecx;
    if ecx & (1 << 21) == 0 {
        return false;
    }
    let mut msr = x86_64::registers::model_specific::Msr::new(IA32_APIC_BASE);
    // SAFETY: the MSR exists on every CPU with x2APIC (checked above); the
    // firmware does not use the local APIC, and the xAPIC-enabled to x2APIC
    // transition is a permitted one.
    unsafe {
        let v = msr.read();
        msr.write(v | EN | EXTD);
    }
    true
}
