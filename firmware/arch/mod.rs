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
/// allocation does not fit, so its top is the most the firmware has needed
/// (what the EL3 firmware copies to the secure RAM, [`heap_top`]). The
/// resident EL2 firmware keeps none of it: it moves to a small arena of
/// its own ([`reserve_top`], [`switch_heap`]).
#[global_allocator]
static HEAP: Heap = Heap {
    heap: LockedHeap::empty(),
    end: AtomicUsize::new(0),
    only: [AtomicUsize::new(0), AtomicUsize::new(0)],
};

struct Heap {
    heap: LockedHeap,
    /// How far the heap may grow: __heap_end, or below the resident
    /// firmware's arena once that is set aside.
    end: AtomicUsize,
    /// [start, end) of the resident arena once [`switch_heap`] made it the
    /// heap (empty before: every block is the heap's). A block outside it
    /// is one of the boot heap's, whose memory is Linux's by then, so
    /// freeing it must not touch it. Zero-initialised, so the heap's state
    /// stays in `.bss`.
    only: [AtomicUsize; 2],
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
        let (p, only) = (ptr as usize, &self.only);
        let (lo, hi) = (
            only[0].load(Ordering::Relaxed),
            only[1].load(Ordering::Relaxed),
        );
        if hi != 0 && !(lo..hi).contains(&p) {
            return;
        }
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

/// Sets `size` bytes at the top of the heap's region aside, `align`ed
/// (a power of two), and returns their base: the heap no longer grows into
/// them. None if the heap has already grown that far.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn reserve_top(size: usize, align: usize) -> Option<u64> {
    let h = HEAP.heap.lock();
    let base = HEAP.end.load(Ordering::Relaxed).checked_sub(size)? & !(align - 1);
    if base < h.top() as usize {
        return None;
    }
    HEAP.end.store(base, Ordering::Relaxed);
    Some(base as u64)
}

/// Makes `[base, base + size)` (set aside with [`reserve_top`]) the only
/// heap from now on, for good: the boot heap's blocks are abandoned (their
/// memory goes to Linux) and freeing one is a no-op.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn switch_heap(base: u64, size: u64) {
    let mut h = HEAP.heap.lock();
    HEAP.only[0].store(base as usize, Ordering::Relaxed);
    HEAP.only[1].store((base + size) as usize, Ordering::Relaxed);
    HEAP.end.store((base + size) as usize, Ordering::Relaxed);
    *h = linked_list_allocator::Heap::empty();
    // SAFETY: `reserve_top` took the range from the heap's region, so no
    // block of the old heap lies in it and nothing else uses it.
    unsafe { h.init(base as *mut u8, size as usize) }
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
