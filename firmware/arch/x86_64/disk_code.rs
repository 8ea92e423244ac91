//! Disk boot's code lives in the `.disk` section, which the reset stub
//! does not copy (linker/x86_64.ld): a `-kernel` boot, the common case and
//! the one `bench --icount` counts, should not pay for 130 KiB of disk,
//! file-system, virtio and TPM code it never runs. In the `-bios` image
//! xtask stores it as a gzip member (about 45 % smaller) right after `.xip`,
//! its length in the 4 bytes before it (xtask/src/build.rs `pack_disk`);
//! this inflates it to its RAM address before the first call into it.

use core::sync::atomic::{AtomicBool, Ordering};
use hotstub::boot::gzip;
use hotstub::boot::pipeline::Result;

static LOADED: AtomicBool = AtomicBool::new(false);

/// Makes the disk code runnable; later calls do nothing.
pub fn load() -> Result<()> {
    extern "C" {
        static _disk_start: u8;
        static _disk_rom_sx: u8;
        static _disk_size: u8;
    }
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
