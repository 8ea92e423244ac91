//! An identity map with caches on, for speed.
//!
//! With the MMU off every data access is Device-nGnRnE (Arm ARM D8.2.11),
//! which QEMU TCG checks for alignment on each access and so runs through
//! its slow path: parsing the DT and building ACPI took tens of
//! milliseconds that way. The firmware therefore maps flash and RAM as
//! Normal write-back memory and the rest of the low GiB (MMIO) as Device,
//! and undoes it all before entering the kernel, which Linux requires
//! (booting.rst: MMU off, D-cache off, written data cleaned to PoC).
//!
//! Translation: 4 KiB granule, 39-bit VA/IPA (T0SZ = 25, walks start at
//! level 1). Level 1 maps 1 GiB blocks; its first entry points at a level 2
//! table of 2 MiB blocks for the GiB holding flash and MMIO.
//! Descriptor formats: Arm ARM D8.3 (VMSAv8-64 translation table format).

use core::arch::asm;
use core::cell::UnsafeCell;

const GIB: u64 = 1 << 30;
const MIB2: u64 = 2 << 20;

/// QEMU virt: flash is at 0 with up to 128 MiB (two 64 MiB banks); all
/// other devices below 1 GiB are MMIO (hw/arm/virt.c `base_memmap`).
const FLASH_END: u64 = 128 << 20;

/// MAIR attribute indices: 0 = Normal inner/outer write-back
/// read/write-allocate (0xff), 1 = Device-nGnRnE (0x00) (Arm ARM D19 MAIR_ELx).
const MAIR: u64 = 0xff;
const ATTR_NORMAL: u64 = 0 << 2;
const ATTR_DEVICE: u64 = 1 << 2;
/// Descriptor bits: valid block (0b01) / table (0b11), inner shareable
/// (SH = 0b11 at 9:8), access flag (10), execute-never (54; 53 is PXN at EL1).
const BLOCK: u64 = 0b01;
const TABLE: u64 = 0b11;
const SH_INNER: u64 = 3 << 8;
const AF: u64 = 1 << 10;
const XN: u64 = (1 << 54) | (1 << 53);
/// AP[1] (bit 6): at EL1 it would grant EL0 access (kept 0); in the EL2 and
/// EL3 regimes, which have one privilege level, it is RES1.
const AP1: u64 = 1 << 6;

#[repr(C, align(4096))]
struct Table(UnsafeCell<[u64; 512]>);

// SAFETY: only the boot CPU touches the tables, before any other CPU runs.
unsafe impl Sync for Table {}

static L1: Table = Table(UnsafeCell::new([0; 512]));
static L2_LOW: Table = Table(UnsafeCell::new([0; 512]));

fn normal(el: u8) -> u64 {
    BLOCK | ATTR_NORMAL | SH_INNER | AF | if el == 1 { 0 } else { AP1 }
}

fn device(el: u8) -> u64 {
    BLOCK | ATTR_DEVICE | AF | XN | if el == 1 { 0 } else { AP1 }
}

fn write_entry(t: &Table, i: usize, v: u64) {
    // SAFETY: single-threaded boot; the entry is written with one aligned
    // 64-bit store so a concurrent table walk sees old or new, never half.
    unsafe { core::ptr::write_volatile((t.0.get() as *mut u64).add(i), v) }
}

/// Maps every 1 GiB block that holds RAM as Normal memory; blocks already
/// mapped are left alone. Safe to call with the MMU on: invalid-to-valid
/// changes need no TLB maintenance, only a barrier.
pub fn map_ram(el: u8, memory: &[(u64, u64)]) {
    for &(base, size) in memory {
        let first = (base / GIB).max(1);
        let last = (base + size - 1) / GIB;
        for i in first..=last.min(511) {
            write_entry(&L1, i as usize, (i * GIB) | normal(el));
        }
    }
    // SAFETY: barriers only.
    unsafe { asm!("dsb ishst", "isb", options(nostack)) };
}

/// Builds the identity map for the first two GiB (flash, MMIO, and the
/// GiB of RAM where the DTB and the firmware live) and turns the MMU and
/// caches on at the current EL.
pub fn enable(el: u8) {
    for i in 0..512u64 {
        let pa = i * MIB2;
        let d = if pa < FLASH_END {
            normal(el)
        } else {
            device(el)
        };
        write_entry(&L2_LOW, i as usize, pa | d);
    }
    write_entry(&L1, 0, L2_LOW.0.get() as u64 | TABLE);
    map_ram(el, &[(GIB, GIB)]);

    let ttbr = L1.0.get() as u64;
    // TCR: T0SZ = 25, IRGN0/ORGN0 = write-back write-allocate (0b01 at 8 and
    // 10), SH0 = inner shareable (0b11 at 12), TG0 = 4 KiB (0). Physical
    // size 40 bits: TCR_EL1.IPS (34:32) / TCR_EL2,3.PS (18:16) = 0b010.
    // EL1 also disables TTBR1 walks (EPD1, bit 23); in TCR_EL2/3 bits 31
    // and 23 are RES1.
    let common: u64 = 25 | (1 << 8) | (1 << 10) | (3 << 12);
    // SCTLR: M (0), C (2), I (12); A (1, alignment check) stays clear.
    let set: u64 = (1 << 0) | (1 << 2) | (1 << 12);
    // SAFETY: the tables identity-map everything the firmware touches
    // (code in flash, RAM, MMIO) with the attributes it already assumed, so
    // execution continues seamlessly at the next instruction.
    unsafe {
        match el {
            1 => asm!(
                "msr mair_el1, {mair}", "msr tcr_el1, {tcr}", "msr ttbr0_el1, {ttbr}",
                "dsb ish", "tlbi vmalle1", "dsb ish", "isb",
                "mrs {t}, sctlr_el1", "bic {t}, {t}, #2", "orr {t}, {t}, {set}",
                "msr sctlr_el1, {t}", "isb",
                mair = in(reg) MAIR, tcr = in(reg) common | (2 << 32) | (1 << 23),
                ttbr = in(reg) ttbr, set = in(reg) set, t = out(reg) _, options(nostack)),
            2 => asm!(
                "msr mair_el2, {mair}", "msr tcr_el2, {tcr}", "msr ttbr0_el2, {ttbr}",
                "dsb ish", "tlbi alle2", "dsb ish", "isb",
                "mrs {t}, sctlr_el2", "bic {t}, {t}, #2", "orr {t}, {t}, {set}",
                "msr sctlr_el2, {t}", "isb",
                mair = in(reg) MAIR, tcr = in(reg) common | (2 << 16) | (1 << 31) | (1 << 23),
                ttbr = in(reg) ttbr, set = in(reg) set, t = out(reg) _, options(nostack)),
            3 => asm!(
                "msr mair_el3, {mair}", "msr tcr_el3, {tcr}", "msr ttbr0_el3, {ttbr}",
                "dsb ish", "tlbi alle3", "dsb ish", "isb",
                "mrs {t}, sctlr_el3", "bic {t}, {t}, #2", "orr {t}, {t}, {set}",
                "msr sctlr_el3, {t}", "isb",
                mair = in(reg) MAIR, tcr = in(reg) common | (2 << 16) | (1 << 31) | (1 << 23),
                ttbr = in(reg) ttbr, set = in(reg) set, t = out(reg) _, options(nostack)),
            _ => {}
        }
    }
}

/// Cleans and invalidates `[base, base + len)` to the point of coherency,
/// so that the data is in memory when the next reader has its caches off.
pub fn clean_to_poc(base: u64, len: u64) {
    let ctr: u64;
    // SAFETY: CTR_EL0 read has no side effects.
    unsafe { asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack)) };
    // CTR_EL0.DminLine (19:16): log2 of the smallest D-cache line in words.
    let line = 4u64 << ((ctr >> 16) & 0xf);
    let mut a = base & !(line - 1);
    while a < base + len {
        // SAFETY: cache maintenance by VA on identity-mapped memory.
        unsafe { asm!("dc civac, {}", in(reg) a, options(nostack)) };
        a += line;
    }
    // SAFETY: barrier only.
    unsafe { asm!("dsb sy", options(nostack)) };
}
