//! The firmware's hardware side. Each architecture has its entry code,
//! console and `boot::pipeline::Arch` implementation; what both share
//! is here: the heap, the panic handler and the view of RAM.

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "aarch64")]
use aarch64 as imp;
#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
use x86_64 as imp;

use linked_list_allocator::LockedHeap;

/// The heap: the linker scripts leave [__heap_start, __heap_end) of the
/// firmware's RAM to it.
#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

fn init_heap() {
    extern "C" {
        static __heap_start: u8;
        static __heap_end: u8;
    }
    let start = core::ptr::addr_of!(__heap_start) as usize;
    let end = core::ptr::addr_of!(__heap_end) as usize;
    // SAFETY: the linker reserves [__heap_start, __heap_end) for the heap
    // and nothing else uses it; this runs once, before any allocation.
    unsafe { HEAP.lock().init(start as *mut u8, end - start) }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    hotstub::boot::pipeline::report(&format_args!("firmware panic: {info}"));
    imp::power_off()
}

/// A mutable view of guest-physical memory.
///
/// # Safety
/// `[addr, addr + len)` must be RAM, identity-mapped (or the MMU off), and
/// overlap nothing the firmware itself uses (its image, stack and heap) nor
/// another live view.
unsafe fn ram_slice(addr: u64, len: u64) -> &'static mut [u8] {
    // SAFETY: the caller's contract above.
    unsafe { core::slice::from_raw_parts_mut(addr as *mut u8, len as usize) }
}
