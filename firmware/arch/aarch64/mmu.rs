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
use hotstub::resident::regs::{mmio_gibs, S1_BLOCK, S1_DEVICE, S1_NORMAL, S1_TABLE};
use hotstub::resident::{FLASH, GIB, MIB2};

/// MAIR attribute indices (the descriptors' AttrIndx): 0 = Normal
/// inner/outer write-back read/write-allocate (0xff), 1 = Device-nGnRnE
/// (0x00) (Arm ARM D19 MAIR_ELx).
const MAIR: u64 = 0xff;

/// The end of what the map can hold: 512 level 1 entries of 1 GiB (the
/// 39-bit VA, T0SZ = 25, below).
pub const MAP_END: u64 = 512 * GIB;

#[repr(C, align(4096))]
struct Table(UnsafeCell<[u64; 512]>);

// SAFETY: only the boot CPU touches the tables, before any other CPU runs.
unsafe impl Sync for Table {}

static L1: Table = Table(UnsafeCell::new([0; 512]));
static L2_LOW: Table = Table(UnsafeCell::new([0; 512]));

/// A block of Normal memory or of `mmio` (Device, at EL1 also PXN, 53).
/// AP[1] (6) is RES1 in the EL2 and EL3 regimes, which have one privilege
/// level; at EL1 it would grant EL0 access, so it is cleared there.
fn block(el: u8, mmio: bool) -> u64 {
    let attrs = if mmio { S1_DEVICE | 1 << 53 } else { S1_NORMAL };
    (S1_BLOCK | attrs) & !if el == 1 { 1 << 6 } else { 0 }
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
            write_entry(&L1, i as usize, (i * GIB) | block(el, false));
        }
    }
    // SAFETY: barriers only.
    unsafe { asm!("dsb ishst", "isb", options(nostack)) };
}

/// Maps the 1 GiB blocks holding `[base, base + size)` as Device memory
/// where nothing is mapped yet: MMIO above the low GiB, such as virt's
/// PCIe ECAM at 256 GiB (hw/arm/virt.c `VIRT_HIGH_PCIE_ECAM`). Blocks past
/// the 39-bit address space stay unmapped.
pub fn map_device(el: u8, base: u64, size: u64) {
    if size == 0 {
        return;
    }
    for i in (base / GIB).max(1)..=((base + size - 1) / GIB).min(511) {
        // SAFETY: single-threaded boot; a plain read of the table.
        let old = unsafe { core::ptr::read_volatile((L1.0.get() as *const u64).add(i as usize)) };
        if old == 0 {
            write_entry(&L1, i as usize, (i * GIB) | block(el, true));
        }
    }
    // SAFETY: barriers only.
    unsafe { asm!("dsb ishst", "isb", options(nostack)) };
}

/// Maps the GiBs that hold `regions` above the first (QEMU virt's second
/// GIC redistributor region, which the EL3 set-up walks) as Device. Regions
/// the map cannot hold are left out: only EL3 touches them, and its own map
/// (`resident::regs::el3_map`) refuses them before that.
pub fn map_mmio(el: u8, regions: &[(u64, u64)]) {
    for &r in regions {
        let (first, end) = mmio_gibs(r).unwrap_or((0, 0));
        for g in first..end {
            write_entry(&L1, g as usize, (g * GIB) | block(el, true));
        }
    }
}

/// Builds the identity map for the first two GiB (flash, MMIO, and the
/// GiB of RAM where the DTB and the firmware live) and turns the MMU and
/// caches on at the current EL.
pub fn enable(el: u8) {
    for i in 0..512u64 {
        let pa = i * MIB2;
        // QEMU virt: every device below 1 GiB but the flash is MMIO.
        write_entry(&L2_LOW, i as usize, pa | block(el, pa >= FLASH.1));
    }
    write_entry(&L1, 0, L2_LOW.0.get() as u64 | S1_TABLE);
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
    let tcr_el23 = common | (2 << 16) | (1 << 31) | (1 << 23);
    macro_rules! turn_on {
        ($el:literal, $tlbi:literal, $tcr:expr) => {
            asm!(
                concat!("msr mair_el", $el, ", {mair}"), concat!("msr tcr_el", $el, ", {tcr}"),
                concat!("msr ttbr0_el", $el, ", {ttbr}"), "dsb ish", $tlbi, "dsb ish", "isb",
                concat!("mrs {t}, sctlr_el", $el), "bic {t}, {t}, #2", "orr {t}, {t}, {set}",
                concat!("msr sctlr_el", $el, ", {t}"), "isb",
                mair = in(reg) MAIR, tcr = in(reg) $tcr, ttbr = in(reg) ttbr, set = in(reg) set,
                t = out(reg) _, options(nostack))
        };
    }
    // SAFETY: the tables identity-map everything the firmware touches
    // (code in flash, RAM, MMIO) with the attributes it already assumed, so
    // execution continues seamlessly at the next instruction.
    unsafe {
        match el {
            1 => turn_on!("1", "tlbi vmalle1", common | (2 << 32) | (1 << 23)),
            2 => turn_on!("2", "tlbi alle2", tcr_el23),
            3 => turn_on!("3", "tlbi alle3", tcr_el23),
            _ => {}
        }
    }
}

/// Bytes in the smallest D-cache line: CTR_EL0.DminLine (19:16), log2 of
/// it in words.
pub fn dcache_line() -> u64 {
    let ctr: u64;
    // SAFETY: CTR_EL0 read has no side effects.
    unsafe { asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack)) };
    4u64 << ((ctr >> 16) & 0xf)
}

/// Cleans and invalidates `[base, base + len)` to the point of coherency,
/// so that the data is in memory when the next reader has its caches off.
pub fn clean_to_poc(base: u64, len: u64) {
    let line = dcache_line();
    let mut a = base & !(line - 1);
    while a < base + len {
        // SAFETY: cache maintenance by VA on identity-mapped memory.
        unsafe { asm!("dc civac, {}", in(reg) a, options(nostack)) };
        a += line;
    }
    // SAFETY: barrier only.
    unsafe { asm!("dsb sy", options(nostack)) };
}
