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
mod pci;
mod tpm;
mod virtio;

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};
use linked_list_allocator::LockedHeap;

/// The heap: the linker scripts leave [__heap_start, __heap_end) of the
/// firmware's RAM to it. It is handed to the allocator in steps, when an
/// allocation does not fit, so its top is the most the firmware has needed:
/// the resident EL2 firmware keeps only that much from Linux
/// ([`heap_limit`]).
#[global_allocator]
static HEAP: Heap = Heap {
    heap: LockedHeap::empty(),
    end: AtomicUsize::new(0),
};

struct Heap {
    heap: LockedHeap,
    /// How far the heap may grow: __heap_end, or the limit set for the
    /// resident firmware.
    end: AtomicUsize,
}

/// Growth step: a few allocations' worth, page-sized.
const HEAP_STEP: usize = 16 << 10;

// SAFETY: every block comes from the linked-list heap (which is correct as
// a global allocator) out of memory only the heap owns.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut h = self.heap.lock();
        loop {
            if let Ok(p) = h.allocate_first_fit(layout) {
                return p.as_ptr();
            }
            let room = self
                .end
                .load(Ordering::Relaxed)
                .saturating_sub(h.top() as usize);
            if room == 0 {
                return core::ptr::null_mut();
            }
            let by = (layout.size() + layout.align()).next_multiple_of(HEAP_STEP);
            // SAFETY: [top, top + by) lies in the heap's region above what
            // the allocator has, which nothing else uses.
            unsafe { h.extend(by.min(room)) };
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` with this layout (GlobalAlloc's
        // contract), so it is non-null and the heap's.
        unsafe {
            self.heap
                .lock()
                .deallocate(NonNull::new_unchecked(ptr), layout)
        }
    }
}

fn init_heap() {
    extern "C" {
        static __heap_start: u8;
        static __heap_end: u8;
    }
    let start = core::ptr::addr_of!(__heap_start) as usize;
    let end = core::ptr::addr_of!(__heap_end) as usize;
    HEAP.end.store(end, Ordering::Relaxed);
    // SAFETY: the linker reserves [__heap_start, __heap_end) for the heap
    // and nothing else uses it; this runs once, before any allocation.
    unsafe {
        HEAP.heap
            .lock()
            .init(start as *mut u8, HEAP_STEP.min(end - start))
    }
}

/// Where the heap has grown to: nothing above it was ever written.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn heap_top() -> u64 {
    HEAP.heap.lock().top() as u64
}

/// Lets the heap grow at most `extra` bytes beyond its present top from
/// now on, and returns that end: the resident firmware's heap ends there
/// and the rest of the region is free for Linux.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn heap_limit(extra: usize) -> u64 {
    let top = HEAP.heap.lock().top() as usize;
    let end = (top + extra)
        .next_multiple_of(4096)
        .min(HEAP.end.load(Ordering::Relaxed));
    HEAP.end.store(end, Ordering::Relaxed);
    end as u64
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
