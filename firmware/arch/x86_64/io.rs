//! Port I/O and PCI configuration access: the x86 hardware boundary.

use x86_64::instructions::port::Port;

pub fn inb(port: u16) -> u8 {
    // SAFETY: port reads on this platform have no memory-safety effects.
    unsafe { Port::new(port).read() }
}

pub fn outb(port: u16, v: u8) {
    // SAFETY: the firmware owns every device it programs; port writes do not
    // touch memory the compiler knows about.
    unsafe { Port::new(port).write(v) }
}

pub fn inw(port: u16) -> u16 {
    // SAFETY: as for `inb`.
    unsafe { Port::new(port).read() }
}

pub fn outw(port: u16, v: u16) {
    // SAFETY: as for `outb`.
    unsafe { Port::new(port).write(v) }
}

pub fn inl(port: u16) -> u32 {
    // SAFETY: as for `inb`.
    unsafe { Port::new(port).read() }
}

pub fn outl(port: u16, v: u32) {
    // SAFETY: as for `outb`.
    unsafe { Port::new(port).write(v) }
}

/// Legacy PCI configuration mechanism #1 (PCI Local Bus spec 3.0, 3.2.2.3.2).
const PCI_ADDR: u16 = 0xcf8;
const PCI_DATA: u16 = 0xcfc;

fn pci_select(bdf: u16, reg: u8) {
    outl(
        PCI_ADDR,
        0x8000_0000 | (bdf as u32) << 8 | (reg as u32 & 0xfc),
    );
}

/// Bus/device/function number.
pub const fn bdf(bus: u8, dev: u8, func: u8) -> u16 {
    (bus as u16) << 8 | (dev as u16) << 3 | func as u16
}

pub fn pci_read32(bdf: u16, reg: u8) -> u32 {
    pci_select(bdf, reg);
    inl(PCI_DATA)
}

pub fn pci_write32(bdf: u16, reg: u8, v: u32) {
    pci_select(bdf, reg);
    outl(PCI_DATA, v);
}

pub fn pci_write8(bdf: u16, reg: u8, v: u8) {
    pci_select(bdf, reg);
    outb(PCI_DATA + (reg as u16 & 3), v);
}

/// Reads a 32-bit MMIO register.
pub fn mmio_read32(addr: u64) -> u32 {
    // SAFETY: callers pass device register addresses inside the identity
    // mapping; volatile keeps the access exactly as written.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

/// Writes a 32-bit MMIO register.
pub fn mmio_write32(addr: u64, v: u32) {
    // SAFETY: callers pass device register addresses inside the identity
    // mapping, none of them RAM the firmware uses.
    unsafe { core::ptr::write_volatile(addr as *mut u32, v) }
}

/// Writes an 8-bit MMIO register.
pub fn mmio_write8(addr: u64, v: u8) {
    // SAFETY: callers pass device register addresses inside the identity
    // mapping, none of them RAM the firmware uses.
    unsafe { core::ptr::write_volatile(addr as *mut u8, v) }
}

pub fn rdmsr(msr: u32) -> u64 {
    // SAFETY: callers only read architectural MSRs the CPU advertises.
    unsafe { x86_64::registers::model_specific::Msr::new(msr).read() }
}

pub fn wrmsr(msr: u32, v: u64) {
    // SAFETY: callers only write MTRR MSRs, with caches consistent (the
    // firmware runs before any other agent caches memory).
    unsafe { x86_64::registers::model_specific::Msr::new(msr).write(v) }
}

/// The PCI-to-PCI bridges on bus 0 that `keep` takes (given their
/// configuration address), as `_ADR` values (device << 16 | function, ACPI
/// 6.5 6.1.1).
pub fn bus0_bridges(keep: impl Fn(u16) -> bool) -> alloc::vec::Vec<u32> {
    let mut out = alloc::vec::Vec::new();
    for dev in 0..32u8 {
        for func in 0..8u8 {
            let f = bdf(0, dev, func);
            // An absent function reads vendor ID 0xffff (PCI Local Bus 3.0
            // 6.2.1); without function 0 the device is absent.
            if pci_read32(f, 0) & 0xffff == 0xffff {
                if func == 0 {
                    break;
                }
                continue;
            }
            // Base class 06h, sub-class 04h: PCI-to-PCI bridge (PCI Code
            // and ID Assignment Specification; class code at 0x08 bits 31:8).
            if pci_read32(f, 0x08) >> 16 == 0x0604 && keep(f) {
                out.push(u32::from(dev) << 16 | u32::from(func));
            }
            // Header type (0x0e) bit 7: more functions (PCI 3.0 6.2.1).
            if func == 0 && pci_read32(f, 0x0c) & (0x80 << 16) == 0 {
                break;
            }
        }
    }
    out
}
