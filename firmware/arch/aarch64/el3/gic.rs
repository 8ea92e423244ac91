//! GICv3 set-up from the secure side for the resident EL3 firmware: which
//! interrupts are its Group 0 and at what priority, its wake-up SGI, and
//! the Group 0 acknowledge the control channel (`control.rs`) serves
//! through. Register fields: GICv3 architecture specification (IHI 0069)
//! 12.9 (GICD_*), 12.11 (GICR_*).

use alloc::vec::Vec;
use core::arch::asm;
use core::ptr::{read_volatile, write_volatile};

use hotstub::resident::regs::sgi0r;

/// The redistributor regions the DT names (`init`).
static GICR: spin::Once<Vec<(u64, u64)>> = spin::Once::new();

/// The firmware's own SGI, secure Group 0, that wakes a parked CPU from
/// WFI. Arm's convention (GICv3 Software Overview, DAI 0492) leaves SGIs
/// 8-15 to the secure world; Linux uses 0-7 for its IPIs.
pub const WAKE_SGI: u32 = 15;
/// The secure EL1 physical timer's PPI (arm,armv8-timer binding, first
/// interrupt; Linux uses the others), which EL3 owns: the control
/// channel's poll (`control.rs`).
pub const TIMER_INTID: u32 = 29;
/// Group 0 priority: in the secure half (below 0x80), so nothing the
/// normal world writes to ICC_PMR_EL1 can mask it (GICv3 spec 4.8.6).
pub const PRIORITY: u8 = 0x40;

/// # Safety
/// `a` must be a mapped 32-bit GIC register whose read has no side effect.
unsafe fn mmio_read(a: u64) -> u32 {
    // SAFETY: by the caller's contract.
    unsafe { read_volatile(a as *const u32) }
}

/// # Safety
/// `a` must be a mapped 32-bit GIC register, `v` a value the firmware
/// means to give it.
unsafe fn mmio_write(a: u64, v: u32) {
    // SAFETY: by the caller's contract.
    unsafe { write_volatile(a as *mut u32, v) }
}

/// Sets up the distributor `gicd` from the secure side (IHI 0069 12.9:
/// affinity routing for both security states, every SPI Non-secure Group
/// 1, Group 1 NS on) and wakes every redistributor in `gicr` for the SGI.
///
/// # Safety
/// `gicd` and `gicr` must be the GICv3 distributor and redistributor
/// regions the DT names, mapped as Device memory.
pub unsafe fn init(gicd: u64, gicr: &[(u64, u64)]) {
    const CTLR: u64 = 0x0;
    const TYPER: u64 = 0x4;
    const IGROUPR: u64 = 0x80;
    const IGRPMODR: u64 = 0xd00;
    const RWP: u32 = 1 << 31;
    const ENABLE_GRP0: u32 = 1 << 0;
    const ENABLE_GRP1NS: u32 = 1 << 1;
    const ARE_S: u32 = 1 << 4;
    const ARE_NS: u32 = 1 << 5;
    // SAFETY: distributor registers by the caller's contract.
    unsafe {
        let wait = || while mmio_read(gicd + CTLR) & RWP != 0 {};
        mmio_write(gicd + CTLR, ARE_S | ARE_NS);
        wait();
        // ITLinesNumber: 32 * (N + 1) INTIDs; register 0 (SGIs/PPIs) is the
        // redistributors' with ARE set.
        let lines = (mmio_read(gicd + TYPER) & 0x1f) as u64;
        for n in 1..=lines {
            mmio_write(gicd + IGROUPR + 4 * n, !0);
            mmio_write(gicd + IGRPMODR + 4 * n, 0);
        }
        mmio_write(gicd + CTLR, ARE_S | ARE_NS | ENABLE_GRP1NS | ENABLE_GRP0);
        wait();
    }
    GICR.call_once(|| gicr.to_vec());
    for_each_gicr(|rd, _| {
        // SAFETY: a redistributor frame of a region the DT names.
        unsafe { gicr_setup(rd) };
        false
    });
}

/// Visits every redistributor frame: (RD base, GICR_TYPER).
fn for_each_gicr(mut f: impl FnMut(u64, u64) -> bool) {
    let Some(regions) = GICR.get() else { return };
    for &(base, size) in regions {
        let mut rd = base;
        while rd < base + size {
            // SAFETY: GICR_TYPER of a frame in a region the DT names.
            let typer = unsafe { mmio_read(rd + 8) as u64 | (mmio_read(rd + 12) as u64) << 32 };
            if f(rd, typer) || typer & (1 << 4) != 0 {
                break;
            }
            // Two 64 KiB frames, four with virtual LPIs (GICv4).
            rd += if typer & (1 << 1) != 0 {
                0x4_0000
            } else {
                0x2_0000
            };
        }
    }
}

/// Wakes a redistributor and makes its SGIs and PPIs Non-secure Group 1,
/// except the firmware's wake-up SGI and the secure timer (the control
/// channel's poll, `control.rs`), which it enables as Group 0 (IHI 0069
/// 12.11: GICR_WAKER 0x14 ProcessorSleep 1 / ChildrenAsleep 2; in the SGI
/// frame at +64 KiB GICR_IGROUPR0 0x80, GICR_ISENABLER0 0x100,
/// GICR_IPRIORITYR 0x400, GICR_IGRPMODR0 0xd00).
///
/// # Safety
/// `rd` must be a redistributor's RD_base.
unsafe fn gicr_setup(rd: u64) {
    let waker = rd + 0x14;
    let sgi = rd + 0x1_0000;
    // SAFETY: the redistributor's registers by the caller's contract.
    unsafe {
        mmio_write(waker, mmio_read(waker) & !(1 << 1));
        while mmio_read(waker) & (1 << 2) != 0 {}
        let g0 = (1 << WAKE_SGI) | (1 << TIMER_INTID);
        mmio_write(sgi + 0x80, !g0);
        mmio_write(sgi + 0xd00, 0);
        set_priority(sgi + 0x400, TIMER_INTID);
        mmio_write(sgi + 0x100, g0);
    }
}

/// Sends the wake-up SGI to `mpidr`, or with `None` to every other CPU
/// (ICC_SGI0R_EL1, `resident::regs::sgi0r`).
pub fn send_wake(mpidr: Option<u64>) {
    let v = sgi0r(WAKE_SGI, mpidr);
    // SAFETY: generates an SGI; the receivers only leave WFI.
    unsafe { asm!("dsb ish", "msr S3_0_C12_C11_7, {}", "isb", in(reg) v, options(nostack)) };
}

/// Sets up this CPU's redistributor (see `gicr_setup`), found by its
/// GICR_TYPER.Affinity (63:32).
pub fn gicr_init(mpidr: u64) -> Result<(), &'static str> {
    let aff = ((mpidr >> 32) & 0xff) << 24 | (mpidr & 0xff_ffff);
    let mut found = false;
    for_each_gicr(|rd, typer| {
        if typer >> 32 == aff {
            // SAFETY: a redistributor frame of a region the DT names.
            unsafe { gicr_setup(rd) };
            found = true;
        }
        found
    });
    found
        .then_some(())
        .ok_or("no GIC redistributor for this CPU")
}

/// Sets INTID `n`'s byte of the priority registers at `base` to the
/// channel's Group 0 priority.
///
/// # Safety
/// `base` must be GICD_IPRIORITYR (or a redistributor's, for n < 32).
unsafe fn set_priority(base: u64, n: u32) {
    let a = base + (n / 4 * 4) as u64;
    let shift = 8 * (n % 4);
    // SAFETY: by the caller's contract.
    unsafe {
        let v = mmio_read(a) & !(0xff << shift);
        mmio_write(a, v | (PRIORITY as u32) << shift);
    }
}

/// Makes SPI `n` (INTID) secure Group 0, level-sensitive, routed to
/// `mpidr`, and enables it (IHI 0069 12.9: GICD_IGROUPR 0x80,
/// GICD_ISENABLER 0x100, GICD_IPRIORITYR 0x400, GICD_ICFGR 0xc00,
/// GICD_IGRPMODR 0xd00, GICD_IROUTER 0x6000, whose affinity fields sit
/// where MPIDR's do).
///
/// # Safety
/// `gicd` must be the GICv3 distributor, `n` an SPI the firmware owns.
pub unsafe fn secure_spi(gicd: u64, n: u32, mpidr: u64) {
    let (word, bit) = ((n / 32 * 4) as u64, 1u32 << (n % 32));
    // SAFETY: distributor registers of SPI `n` by the caller's contract.
    unsafe {
        mmio_write(gicd + 0x80 + word, mmio_read(gicd + 0x80 + word) & !bit);
        mmio_write(gicd + 0xd00 + word, mmio_read(gicd + 0xd00 + word) & !bit);
        set_priority(gicd + 0x400, n);
        let cfg = gicd + 0xc00 + (n / 16 * 4) as u64;
        mmio_write(cfg, mmio_read(cfg) & !(2 << (2 * (n % 16))));
        write_volatile((gicd + 0x6000 + 8 * n as u64) as *mut u64, mpidr);
        mmio_write(gicd + 0x100 + word, bit);
    }
}

/// Makes SPI `n` pending (GICD_ISPENDR 0x200), after every earlier write.
///
/// # Safety
/// `gicd` must be the GICv3 distributor.
pub unsafe fn pend_spi(gicd: u64, n: u32) {
    // SAFETY: by the caller's contract.
    unsafe {
        asm!("dsb sy", options(nostack));
        mmio_write(gicd + 0x200 + (n / 32 * 4) as u64, 1 << (n % 32));
    }
}

/// Acknowledges this CPU's highest-priority pending Group 0 interrupt
/// (ICC_IAR0_EL1); 1020-1023 mean none.
pub fn ack0() -> u32 {
    let i: u64;
    // SAFETY: EL3 reads its own CPU interface; Group 0 is the firmware's.
    unsafe { asm!("mrs {}, S3_0_C12_C8_0", out(reg) i, options(nostack)) };
    i as u32
}

/// Ends a Group 0 interrupt from [`ack0`] (ICC_EOIR0_EL1, EOImode 0:
/// priority drop and deactivation).
pub fn eoi0(i: u32) {
    // SAFETY: as `ack0`.
    unsafe { asm!("msr S3_0_C12_C8_1, {}", "isb", in(reg) i as u64, options(nostack)) };
}
