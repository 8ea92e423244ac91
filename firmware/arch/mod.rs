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
    bump: Bump {
        start: AtomicUsize::new(0),
        next: AtomicUsize::new(0),
        end: AtomicUsize::new(0),
    },
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
    /// x86: the heap's first [`BUMP`] bytes, handed out first.
    bump: Bump,
}

/// x86 only: the heap's first bytes are handed out by a bump pointer
/// before the linked list is asked. A boot makes a few dozen allocations;
/// the list spends over a hundred instructions on each allocation and
/// free, which `bench --icount` counts, the bump pointer about ten. A
/// free gives the block back when it is the newest (a Vec that grows in
/// place, a temporary), else leaves it: at most [`BUMP`] bytes are lost,
/// and once they are used up the list serves the rest. Not on arm64,
/// whose resident firmwares go on allocating after the boot (at EL2 from
/// their arena, at EL3 from the heap moved to the secure RAM) on several
/// CPUs. The firmware runs on one CPU until Linux: plain loads and stores.
struct Bump {
    start: AtomicUsize,
    next: AtomicUsize,
    end: AtomicUsize,
}

#[cfg(target_arch = "x86_64")]
const BUMP: usize = 128 << 10;
#[cfg(not(target_arch = "x86_64"))]
const BUMP: usize = 0;

impl Bump {
    fn owns(&self, p: usize) -> bool {
        (self.start.load(Ordering::Relaxed)..self.end.load(Ordering::Relaxed)).contains(&p)
    }

    fn alloc(&self, layout: Layout) -> Option<usize> {
        let at = self
            .next
            .load(Ordering::Relaxed)
            .checked_next_multiple_of(layout.align())?;
        let end = at.checked_add(layout.size())?;
        if end > self.end.load(Ordering::Relaxed) {
            return None;
        }
        self.next.store(end, Ordering::Relaxed);
        Some(at)
    }

    /// Frees `[p, p + size)`: only the newest block goes back.
    fn free(&self, p: usize, size: usize) {
        if p + size == self.next.load(Ordering::Relaxed) {
            self.next.store(p, Ordering::Relaxed);
        }
    }

    /// Grows or shrinks `[p, p + size)` in place when it is the newest
    /// block and the room allows.
    fn resize(&self, p: usize, size: usize, new: usize) -> bool {
        let newest = p + size == self.next.load(Ordering::Relaxed);
        match p.checked_add(new) {
            Some(e) if newest && e <= self.end.load(Ordering::Relaxed) => {
                self.next.store(e, Ordering::Relaxed);
                true
            }
            _ => false,
        }
    }
}

/// Growth step: a few allocations' worth, page-sized.
const HEAP_STEP: usize = 16 << 10;

// SAFETY: every block comes from the linked-list heap (which is correct as
// a global allocator) out of memory only the heap owns.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if let Some(p) = self.bump.alloc(layout) {
            return p as *mut u8;
        }
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
        if self.bump.owns(ptr as usize) {
            self.bump.free(ptr as usize, layout.size());
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

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if self.bump.owns(ptr as usize) && self.bump.resize(ptr as usize, layout.size(), new_size) {
            return ptr;
        }
        // GlobalAlloc's own realloc, spelled out (the trait's default
        // cannot be called from an override).
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return core::ptr::null_mut();
        };
        // SAFETY: a non-zero size (realloc's contract).
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are live, distinct and at least this
            // long; `ptr` came from this allocator with `layout`.
            unsafe {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
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
    let bump_end = (start + BUMP).min(end);
    HEAP.bump.start.store(start, Ordering::Relaxed);
    HEAP.bump.next.store(start, Ordering::Relaxed);
    HEAP.bump.end.store(bump_end, Ordering::Relaxed);
    let start = bump_end;
    // SAFETY: the linker reserves [__heap_start, __heap_end) for the heap
    // and nothing else uses it (the bump part is below `start`); this runs
    // once, before any allocation.
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
