//! Disk boot's code lives in the image's `.disk` section, which the reset
//! stub does not copy (linker/x86_64.ld): a `-kernel` boot, the common
//! case and the one `bench --icount` counts, should not pay for moving
//! 150 KiB of disk, file-system and virtio code it never runs. This copies
//! it from the ROM to its RAM address before the first call into it.

use core::sync::atomic::{AtomicUsize, Ordering};

/// How many bytes of `.disk` are in RAM.
static LOADED: AtomicUsize = AtomicUsize::new(0);

extern "C" {
    static _disk_start: u8;
    static _disk_lma_sx: u8;
    static _disk_size: u8;
    static _adopt_size: u8;
}

/// Makes the disk code runnable; later calls do nothing.
pub fn load() {
    copy(core::ptr::addr_of!(_disk_size) as usize);
}

/// Makes the first part of `.disk` runnable: the code that adopts a
/// VMM's tables (microvm's boot; linker/x86_64.ld), a seventh of it.
pub fn load_adopt() {
    copy(core::ptr::addr_of!(_adopt_size) as usize);
}

/// Copies `.disk` up to `len` bytes, past what is in RAM already.
fn copy(len: usize) {
    let done = LOADED.load(Ordering::Relaxed);
    if len <= done {
        return;
    }
    LOADED.store(len, Ordering::Relaxed);
    // Only the symbols' addresses are taken (no unsafe needed for that).
    let dst = (core::ptr::addr_of!(_disk_start) as *mut u8).wrapping_add(done);
    // The ROM lies below 4 GiB: the low 32 bits of the sign-extended
    // symbol are its address (linker/x86_64.ld).
    let src = (core::ptr::addr_of!(_disk_lma_sx) as usize as u32 as usize as *const u8)
        .wrapping_add(done);
    let len = len - done;
    // SAFETY: the linker script places `.disk` in the firmware's RAM (its
    // VMA, which nothing else uses) and its bytes in the ROM (its LMA),
    // `_disk_size` bytes each, the two disjoint; `[done, len)` lies
    // within; the ROM is mapped (the
    // identity map covers 4 GiB). The instruction stream sees the new
    // bytes: x86 keeps instruction fetch coherent with stores (Intel SDM
    // vol. 3 11.6), and the jump into them serialises as needed.
    unsafe { core::ptr::copy_nonoverlapping(src, dst, len) };
}

/// The PVH ELF loads `.disk` at its RAM address with the rest: nothing to
/// copy (and no ROM to copy from).
pub fn in_place() {
    LOADED.store(usize::MAX, Ordering::Relaxed);
}
