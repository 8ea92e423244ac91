//! The TPM's TIS registers over MMIO, for `hotstub::tpm`: byte accesses
//! to the FIFO and access register, 32-bit ones to the status register
//! (TCG PTP 6.3: both widths are allowed), and a microsecond clock the
//! architecture provides for the protocol's timeouts.

use hotstub::tpm::tis::Regs;

/// Locality 0's 4 KiB register page.
pub struct TisMmio {
    base: u64,
    /// Microseconds since some fixed point, never going back.
    clock: fn() -> u64,
}

/// Locality 0's register page is 4 KiB (PTP 6.5.2.1).
const PAGE: usize = 0x1000;

impl TisMmio {
    /// # Safety
    /// `base` must be a TPM's TIS locality-0 page, mapped as device memory
    /// and used by nothing else while the value lives.
    pub unsafe fn new(base: u64, clock: fn() -> u64) -> TisMmio {
        TisMmio { base, clock }
    }

    fn at(&self, off: usize) -> u64 {
        assert!(off < PAGE);
        self.base + off as u64
    }
}

impl Regs for TisMmio {
    fn read8(&mut self, off: usize) -> u8 {
        // SAFETY: inside the TIS page `new`'s caller vouched for.
        unsafe { core::ptr::read_volatile(self.at(off) as *const u8) }
    }
    fn write8(&mut self, off: usize, v: u8) {
        // SAFETY: as in read8.
        unsafe { core::ptr::write_volatile(self.at(off) as *mut u8, v) }
    }
    fn read32(&mut self, off: usize) -> u32 {
        // SAFETY: as in read8; the TIS registers read here are 4-aligned.
        unsafe { core::ptr::read_volatile(self.at(off) as *const u32) }
    }
    fn write32(&mut self, off: usize, v: u32) {
        // SAFETY: as in read32.
        unsafe { core::ptr::write_volatile(self.at(off) as *mut u32, v) }
    }
    fn now_us(&mut self) -> u64 {
        (self.clock)()
    }
}
