//! Identity mappings past the low 4 GiB the entry code maps: device
//! memory a VMM placed high (cloud-hypervisor's 64-bit BARs, in its 64-bit
//! PCI window near the top of the guest physical space). 4-level paging
//! with 2 MiB pages, as boot.S builds it (Intel SDM vol. 3 4.5).

use alloc::alloc::{alloc_zeroed, Layout};

/// Entry bits (Intel SDM vol. 3 table 4-15 ff.): present, writable, page
/// size (a 2 MiB page in a page directory), and PWT | PCD, uncached, for
/// device memory.
const PRESENT_WRITABLE: u64 = 0x3;
const PAGE_SIZE_2M: u64 = 1 << 7;
const UNCACHED: u64 = 0x18;
/// Physical address bits of an entry (bits 51:12).
const ADDR: u64 = 0x000f_ffff_ffff_f000;
const TWO_MIB: u64 = 1 << 21;
/// What boot.S already maps, and the most 4-level paging reaches.
const LOW: u64 = 1 << 32;
const TOP: u64 = 1 << 48;

/// Identity-maps `[addr, addr + len)` uncached in 2 MiB pages (what is
/// below 4 GiB is mapped already); false when it cannot (past 48 bits, a
/// 1 GiB page in the way, no memory for a table).
pub fn map_device(addr: u64, len: u64) -> bool {
    let Some(end) = addr.checked_add(len) else {
        return false;
    };
    if end > TOP {
        return false;
    }
    let mut a = (addr & !(TWO_MIB - 1)).max(LOW);
    while a < end {
        if map_2m(a).is_none() {
            return false;
        }
        a += TWO_MIB;
    }
    true
}

fn map_2m(a: u64) -> Option<()> {
    let pml4 = cr3() & ADDR;
    let pdpt = next_level(pml4, (a >> 39) & 511)?;
    let pd = next_level(pdpt, (a >> 30) & 511)?;
    // A new mapping replaces a non-present entry, so no TLB entry is stale
    // (Intel SDM vol. 3 4.10.4.3).
    write_entry(
        pd,
        (a >> 21) & 511,
        a | PRESENT_WRITABLE | PAGE_SIZE_2M | UNCACHED,
    );
    Some(())
}

/// The table entry `i` of `table` points to, made (zeroed) if absent.
fn next_level(table: u64, i: u64) -> Option<u64> {
    let e = read_entry(table, i);
    if e & 1 != 0 {
        // A large page here already maps the range some other way.
        return (e & PAGE_SIZE_2M == 0).then_some(e & ADDR);
    }
    let layout = Layout::from_size_align(4096, 4096).ok()?;
    // SAFETY: a non-zero size. The page is never freed: the tables stay
    // live until Linux loads its own.
    let page = unsafe { alloc_zeroed(layout) } as u64;
    if page == 0 {
        return None;
    }
    // The heap is identity-mapped: its address is the physical one.
    write_entry(table, i, page | PRESENT_WRITABLE);
    Some(page)
}

fn cr3() -> u64 {
    let v: u64;
    // SAFETY: reading CR3 has no side effect.
    unsafe { core::arch::asm!("mov {}, cr3", out(reg) v, options(nomem, nostack)) };
    v
}

fn read_entry(table: u64, i: u64) -> u64 {
    // SAFETY: `table` is a live page table (CR3's, or one made here),
    // identity-mapped, and `i` < 512 keeps to its page.
    unsafe { core::ptr::read_volatile((table as *const u64).add((i & 511) as usize)) }
}

fn write_entry(table: u64, i: u64, v: u64) {
    // SAFETY: as for read_entry; only entries that were not present, or
    // are in tables made here, are written, so no mapping the firmware
    // uses changes.
    unsafe { core::ptr::write_volatile((table as *mut u64).add((i & 511) as usize), v) }
}
