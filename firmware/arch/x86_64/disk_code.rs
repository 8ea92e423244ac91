//! Disk boot's code lives in the `.disk` section, which the reset stub
//! does not copy (linker/x86_64.ld): a `-kernel` boot, the common case and
//! the one `bench --icount` counts, should not pay for 130 KiB of disk,
//! file-system, virtio and TPM code it never runs. In the `-bios` image
//! xtask stores it as a gzip member (about 45 % smaller) right after `.image`,
//! its length in the 4 bytes before it (xtask/src/build.rs `pack_disk`);
//! this inflates it to its RAM address before the first call into it.
//! The code that adopts a VMM's tables (microvm) is `.adopt`, kept in the
//! ROM as it is and copied alone: microvm's `-kernel` boot needs only it.

use core::sync::atomic::{AtomicBool, Ordering};
use hotstub::boot::gzip;
use hotstub::boot::pipeline::Result;

static ADOPT_LOADED: AtomicBool = AtomicBool::new(false);
static LOADED: AtomicBool = AtomicBool::new(false);

/// Makes the table-adopting code runnable; later calls do nothing.
pub fn load_adopt() {
    extern "C" {
        static _adopt_start: u8;
        static _adopt_lma_sx: u8;
        static _adopt_size: u8;
    }
    if ADOPT_LOADED.swap(true, Ordering::Relaxed) {
        return;
    }
    // Only the symbols' addresses are taken (no unsafe needed for that).
    let dst = core::ptr::addr_of!(_adopt_start) as *mut u8;
    // The ROM lies below 4 GiB: the low 32 bits of the sign-extended
    // symbol are its address (linker/x86_64.ld).
    let src = core::ptr::addr_of!(_adopt_lma_sx) as usize as u32 as usize as *const u8;
    let len = core::ptr::addr_of!(_adopt_size) as usize;
    // SAFETY: the linker script places `.adopt` in the firmware's RAM (its
    // VMA, which nothing else uses) and its bytes in the ROM (its LMA),
    // `_adopt_size` bytes each, the two disjoint; the ROM is mapped (the
    // identity map covers 4 GiB). The instruction stream sees the new
    // bytes: x86 keeps instruction fetch coherent with stores (Intel SDM
    // vol. 3 11.6), and the jump into them serialises as needed. The
    // length is a multiple of 16 (linker/x86_64.ld) and both lie below
    // 4 GiB, as hotstub_wide_copy (boot.S) needs.
    unsafe { hotstub_wide_copy(dst, src, len) };
}

extern "C" {
    /// boot.S: copies `len` bytes, 32 a step with AVX when the CPU has it.
    fn hotstub_wide_copy(dst: *mut u8, src: *const u8, len: usize);
}

/// Makes the disk code (and the adopting code) runnable; later calls do
/// nothing.
pub fn load() -> Result<()> {
    extern "C" {
        static _disk_start: u8;
        static _disk_rom_sx: u8;
        static _disk_size: u8;
    }
    load_adopt();
    if LOADED.load(Ordering::Relaxed) {
        return Ok(());
    }
    // Only the symbols' addresses are taken (no unsafe needed for that).
    let dst = core::ptr::addr_of!(_disk_start) as usize as u64;
    // The ROM lies below 4 GiB: the low 32 bits of the sign-extended
    // symbol are its address (linker/x86_64.ld).
    let rom = core::ptr::addr_of!(_disk_rom_sx) as usize as u32 as u64;
    let size = core::ptr::addr_of!(_disk_size) as usize as u64;
    // SAFETY: the member lies in the ROM between .xip and the page tables,
    // mapped read-only (the identity map covers 4 GiB); it is read through
    // shared views only.
    let len = u32::from_le_bytes(unsafe { rom_bytes(rom, 4) }.try_into().unwrap());
    if u64::from(len) > super::layout::ROM_TABLES - rom - 4 {
        return Err("the image's disk code is damaged (length)".into());
    }
    // SAFETY: as above; the length was just checked against the tables.
    let member = unsafe { rom_bytes(rom + 4, u64::from(len)) };
    // SAFETY: the linker script places `.disk` in the firmware's RAM (its
    // link address, which nothing else uses), `_disk_size` bytes. The
    // instruction stream sees the new bytes: x86 keeps instruction fetch
    // coherent with stores (Intel SDM vol. 3 11.6), and the jump into them
    // serialises as needed.
    let out = unsafe { super::ram_slice(dst, size) };
    match gzip::inflate(member, out) {
        Ok(made) if made as u64 == size => {}
        _ => return Err("the image's disk code is damaged (inflate)".into()),
    }
    LOADED.store(true, Ordering::Relaxed);
    Ok(())
}

/// The PVH ELF loads `.disk` at its RAM address with the rest: nothing to
/// inflate (and no ROM to inflate from).
pub fn in_place() {
    ADOPT_LOADED.store(true, Ordering::Relaxed);
    LOADED.store(true, Ordering::Relaxed);
}

/// A shared view of `len` ROM bytes at `addr`.
///
/// # Safety
/// `[addr, addr + len)` must be mapped ROM.
unsafe fn rom_bytes(addr: u64, len: u64) -> &'static [u8] {
    // SAFETY: the caller's contract.
    unsafe { core::slice::from_raw_parts(addr as *const u8, len as usize) }
}
