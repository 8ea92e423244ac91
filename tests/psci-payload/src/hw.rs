//! The hardware boundary: system registers, MMIO, raw memory, the SMCCC
//! call with its register check. Every `unsafe` of the payload is here.

use core::arch::asm;
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::machine::{Conduit, MemMap, Phys};

core::arch::global_asm!(include_str!("start.S"));

extern "C" {
    fn checked_call(block: *mut [u64; 10]);
    fn secondary_entry();
    fn storm_entry();
    fn el0_a32_load(addr: u64) -> u64;
    fn el0_a32_return();
}

/// Set while `a32_load` runs: the vector hands the lower-EL AArch32
/// exception back to it.
pub static A32_PROBE: AtomicU64 = AtomicU64::new(0);

/// Loads the word at `addr` (below 4 GiB) from EL0 in AArch32 User mode
/// and returns the syndrome of the exception that ended it: a data abort
/// (EC 0x24) if the load faulted, else Undefined (EC 0) from the UDF after
/// it. Only at EL1.
pub fn a32_load(addr: u64) -> u64 {
    A32_PROBE.store(1, Ordering::Release);
    // SAFETY: el0_a32_load saves and restores every callee-saved register
    // and SP around the excursion to EL0, which runs only its own two
    // instructions; the vector returns to el0_a32_return (A32_PROBE).
    let esr = unsafe { el0_a32_load(addr) };
    A32_PROBE.store(0, Ordering::Release);
    esr
}

/// ID_AA64PFR0_EL1.EL0 (bits 3:0) = 2: EL0 can run AArch32 (Arm ARM).
pub fn el0_aarch32() -> bool {
    let v: u64;
    // SAFETY: reading an ID register has no side effects.
    unsafe { asm!("mrs {}, id_aa64pfr0_el1", out(reg) v, options(nomem, nostack)) };
    v & 0xf == 2
}

/// Where the vector ends an `a32_load`: at EL1h with interrupts masked.
pub fn a32_return(frame: *mut u64, esr: u64) {
    // SAFETY: the frame the vector saved (x0 first), restored on eret;
    // SPSR_EL1 0x3c5 = EL1h, D, A, I, F masked.
    unsafe {
        frame.write(esr);
        asm!("msr elr_el1, {}", "msr spsr_el1, {}", in(reg) el0_a32_return as *const () as u64,
             in(reg) 0x3c5u64, options(nomem, nostack));
    }
}

/// Affinity fields of MPIDR_EL1 (Arm ARM, MPIDR_EL1).
pub const MPIDR_AFFINITY_MASK: u64 = 0xff_00ff_ffff;

pub fn current_el() -> u64 {
    let el: u64;
    // SAFETY: reading CurrentEL has no side effects.
    unsafe { asm!("mrs {}, CurrentEL", out(reg) el, options(nomem, nostack)) };
    (el >> 2) & 3
}

pub fn mpidr() -> u64 {
    let v: u64;
    // SAFETY: reading MPIDR_EL1 has no side effects.
    unsafe { asm!("mrs {}, mpidr_el1", out(reg) v, options(nomem, nostack)) };
    v & MPIDR_AFFINITY_MASK
}

/// SCTLR_ELx.M of the current EL: the MMU is on.
pub fn mmu_on() -> bool {
    let v: u64;
    // SAFETY: reading SCTLR of the current EL has no side effects.
    unsafe {
        if current_el() == 2 {
            asm!("mrs {}, sctlr_el2", out(reg) v, options(nomem, nostack));
        } else {
            asm!("mrs {}, sctlr_el1", out(reg) v, options(nomem, nostack));
        }
    }
    v & 1 != 0
}

/// (count, frequency) of the virtual counter.
pub fn counter() -> (u64, u64) {
    let (c, f): (u64, u64);
    // SAFETY: reading the generic timer's counter and frequency.
    unsafe {
        asm!("isb", "mrs {}, cntvct_el0", "mrs {}, cntfrq_el0",
             out(reg) c, out(reg) f, options(nomem, nostack));
    }
    (c, f.max(1))
}

pub fn secondary_entry_address() -> u64 {
    secondary_entry as *const () as u64
}

/// Where the hostile phase's storms start cores (src/start.S).
pub fn storm_entry_address() -> u64 {
    storm_entry as *const () as u64
}

/// Result of one SMCCC call.
#[derive(Clone, Copy, Debug)]
pub struct CallResult {
    pub x: [u64; 4],
    /// Bit n: xn (4..=30) changed across the call; bit 31: SP changed.
    pub clobbered: u64,
}

/// One SMCCC call through `conduit` with x4..x30 set to known values and
/// checked afterwards (src/start.S `checked_call`).
pub fn smccc(conduit: Conduit, regs: [u64; 4]) -> CallResult {
    call(conduit, false, regs)
}

/// The same call with immediate 1 instead of 0 (`HVC #1` / `SMC #1`),
/// which SMCCC does not define (DEN0028: SMCCC calls use immediate 0).
pub fn smccc_imm1(conduit: Conduit, regs: [u64; 4]) -> CallResult {
    call(conduit, true, regs)
}

fn call(conduit: Conduit, imm1: bool, regs: [u64; 4]) -> CallResult {
    let mut block = [0u64; 10];
    block[..4].copy_from_slice(&regs);
    block[4] = match conduit {
        Conduit::Hvc => 0,
        Conduit::Smc => 1,
    } + if imm1 { 2 } else { 0 };
    // SAFETY: checked_call saves and restores every callee-saved register
    // around the call and writes only `block`; the conduit is the one the
    // firmware description names, so the call is handled at a higher EL.
    unsafe { checked_call(&mut block) };
    CallResult {
        x: [block[5], block[6], block[7], block[8]],
        clobbered: block[9],
    }
}

/// Waits for an interrupt (CPU_SUSPEND is tested through the PSCI call;
/// this is only for parking).
pub fn halt() -> ! {
    loop {
        // SAFETY: waiting for an event has no other effect.
        unsafe { asm!("wfe", options(nomem, nostack)) };
    }
}

pub struct Pl011(pub u64);

impl fmt::Write for Pl011 {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.put(b'\r');
            }
            self.put(b);
        }
        Ok(())
    }
}

impl Pl011 {
    fn put(&mut self, b: u8) {
        // PL011 TRM: UARTFR at 0x18, TXFF bit 5; UARTDR at 0x00.
        let base = self.0 as usize;
        // SAFETY: `base` is the PL011 the firmware description names (or
        // QEMU virt's fixed one); MMIO with the MMU off is Device memory.
        unsafe {
            let mut spins = 0u32;
            while core::ptr::read_volatile((base + 0x18) as *const u32) & (1 << 5) != 0
                && spins < 1_000_000
            {
                spins += 1;
            }
            core::ptr::write_volatile(base as *mut u32, b as u32);
        }
    }
}

/// Guest memory as the payload may read it: inside the EFI memory map when
/// there is one, else inside the DT's `/memory` ranges.
pub struct Guest<'a> {
    pub map: Option<MemMap<'a>>,
    pub ram: [(u64, u64); 8],
}

impl Phys for Guest<'_> {
    fn read(&self, addr: u64, len: usize) -> Option<&[u8]> {
        let end = addr.checked_add(len as u64)?;
        let ok = match &self.map {
            Some(m) => m.covers(addr, len as u64),
            None => self
                .ram
                .iter()
                .any(|&(b, s)| s > 0 && b <= addr && end <= b + s),
        };
        if !ok || addr == 0 {
            return None;
        }
        // SAFETY: the range is memory according to the firmware's own map,
        // identity-mapped (MMU off), and nothing writes it while we read.
        Some(unsafe { phys_slice(addr, len) })
    }
}

/// A slice over physical memory.
///
/// # Safety
/// `[addr, addr + len)` must be readable memory that nothing writes while
/// the slice lives.
pub unsafe fn phys_slice<'a>(addr: u64, len: usize) -> &'a [u8] {
    // SAFETY: per the function's contract.
    unsafe { core::slice::from_raw_parts(addr as *const u8, len) }
}

/// Reads a DT blob at `addr` (x0 at entry).
///
/// # Safety
/// `addr` must be readable memory (the boot protocol puts the DT there).
pub unsafe fn fdt_at<'a>(addr: u64) -> Result<fdt::Fdt<'a>, fdt::FdtError> {
    // SAFETY: per the function's contract; the fdt crate checks the header
    // and bounds every read by its totalsize.
    unsafe { fdt::Fdt::from_ptr(addr as *const u8) }
}

/// Set while a probe of the resident firmware's memory, registers or
/// instructions may fault; the exception handler counts any synchronous
/// exception and skips the instruction.
pub static EXPECT_ABORT: AtomicU64 = AtomicU64::new(0);
pub static ABORTS: AtomicU64 = AtomicU64::new(0);
pub static LAST_ABORT_ESR: AtomicU64 = AtomicU64::new(0);

/// Reads a u64 that may fault; `sentinel` stays if the load was skipped.
pub fn probe_read(addr: u64, sentinel: u64) -> u64 {
    let mut v = sentinel;
    // SAFETY: a single load; a fault is caught by the payload's vector
    // (EXPECT_ABORT) and the instruction skipped, leaving `v` unchanged.
    unsafe { asm!("ldr {v}, [{a}]", v = inout(reg) v, a = in(reg) addr, options(nostack)) };
    v
}

/// Reads a u32 register that may fault; `sentinel` stays if it does.
pub fn probe_read32(addr: u64, sentinel: u32) -> u32 {
    let mut v = sentinel;
    // SAFETY: a single load; a fault is caught by the payload's vector
    // (EXPECT_ABORT) and the instruction skipped, leaving `v` unchanged.
    unsafe { asm!("ldr {v:w}, [{a}]", v = inout(reg) v, a = in(reg) addr, options(nostack)) };
    v
}

/// Writes a u32 or a byte (`byte`) that may fault or be dropped.
///
/// # Safety
/// Writing `addr` must not break the payload itself: it is a register or
/// memory of the firmware's secure world, which the caller restores when
/// the write lands.
pub unsafe fn probe_write32(addr: u64, value: u32, byte: bool) {
    // SAFETY: per the function's contract; a fault is caught as above.
    unsafe {
        if byte {
            asm!("strb {v:w}, [{a}]", v = in(reg) value, a = in(reg) addr, options(nostack));
        } else {
            asm!("str {v:w}, [{a}]", v = in(reg) value, a = in(reg) addr, options(nostack));
        }
    }
}

/// Writes ICC_SGI0R_EL1 (S3_0_C12_C11_7, GICv3 architecture specification
/// 12.2): generates a Group 0 SGI. From the Non-secure world of a GIC
/// with two security states it must do nothing (GICR_NSACR is the
/// secure world's to open). May fault (UNDEFINED without the system
/// register interface): caught like a memory probe.
pub fn probe_sgi0r(value: u64) {
    // SAFETY: generating an SGI only wakes cores; the payload masks
    // interrupts, a parked firmware core re-checks its mailbox.
    unsafe { asm!("msr S3_0_C12_C11_7, {}", "isb", in(reg) value, options(nostack)) };
}

/// A full barrier (`dmb sy`): with the MMU off every access is Device
/// memory, for which the storm's handshakes need system-wide ordering
/// between a store and a later load.
pub fn barrier() {
    // SAFETY: a barrier has no other effect.
    unsafe { asm!("dmb sy", options(nostack)) };
}

/// Writes a u64 that may fault or be dropped.
///
/// # Safety
/// Writing `addr` must not break the payload itself (it is the resident
/// firmware's memory, which the caller restores if the write lands).
pub unsafe fn probe_write(addr: u64, value: u64) {
    // SAFETY: per the function's contract; a fault is caught as above.
    unsafe { asm!("str {v}, [{a}]", v = in(reg) value, a = in(reg) addr, options(nostack)) };
}

/// The exception syndrome, return and fault address registers of the
/// current EL; `set_elr` moves the return address.
pub fn fault_registers() -> (u64, u64, u64) {
    let (esr, elr, far): (u64, u64, u64);
    // SAFETY: reading the exception registers of the current EL.
    unsafe {
        if current_el() == 2 {
            asm!("mrs {}, esr_el2", "mrs {}, elr_el2", "mrs {}, far_el2",
                 out(reg) esr, out(reg) elr, out(reg) far, options(nomem, nostack));
        } else {
            asm!("mrs {}, esr_el1", "mrs {}, elr_el1", "mrs {}, far_el1",
                 out(reg) esr, out(reg) elr, out(reg) far, options(nomem, nostack));
        }
    }
    (esr, elr, far)
}

pub fn set_elr(elr: u64) {
    // SAFETY: called from the exception handler before its eret, to skip
    // the faulting probe instruction.
    unsafe {
        if current_el() == 2 {
            asm!("msr elr_el2, {}", in(reg) elr, options(nomem, nostack));
        } else {
            asm!("msr elr_el1, {}", in(reg) elr, options(nomem, nostack));
        }
    }
}

/// A GICv3 redistributor frame is 2 x 64 KiB, 4 x 64 KiB with VLPIs
/// (GICv3/v4 architecture specification, "Redistributor memory map").
const GICR_FRAME: u64 = 0x2_0000;
const GICR_FRAME_VLPI: u64 = 0x4_0000;
/// The EL1 virtual timer's PPI (Arm Base System Architecture: INTID 27).
const VTIMER_INTID: u32 = 27;

fn mmio_read32(a: u64) -> u32 {
    // SAFETY: GIC registers the firmware description names.
    unsafe { core::ptr::read_volatile(a as *const u32) }
}
fn mmio_write32(a: u64, v: u32) {
    // SAFETY: as above.
    unsafe { core::ptr::write_volatile(a as *mut u32, v) }
}
fn mmio_read64(a: u64) -> u64 {
    // SAFETY: as above.
    unsafe { core::ptr::read_volatile(a as *const u64) }
}

fn wait(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..1_000_000 {
        if done() {
            return true;
        }
    }
    false
}

/// Makes the virtual timer's interrupt reach this core's CPU interface
/// (GICv3 architecture specification: GICD_CTLR, GICR_WAKER, GICR_IGROUPR0,
/// GICR_IPRIORITYR, GICR_ISENABLER0, ICC_SRE/PMR/IGRPEN1), with interrupts
/// still masked in PSTATE, so that a WFI wakes on it without taking it.
pub fn gicv3_route_vtimer(gicd: u64, gicr: u64) -> Result<(), &'static str> {
    // GICD_CTLR (0x0): ARE (bit 4) first, then the group enables (bits 0,
    // 1: Group 0 / Group 1 with one security state, Group 1 NS / Group 1A
    // in the Non-secure view); RWP is bit 31.
    let ctlr = mmio_read32(gicd);
    if ctlr & 0x10 == 0 {
        mmio_write32(gicd, ctlr | 0x10);
        wait(|| mmio_read32(gicd) & (1 << 31) == 0);
    }
    mmio_write32(gicd, mmio_read32(gicd) | 0x13);
    wait(|| mmio_read32(gicd) & (1 << 31) == 0);

    // Find this core's redistributor by GICR_TYPER.Affinity (bits 63:32).
    let m = mpidr();
    let aff = ((m >> 32) & 0xff) << 24 | (m & 0xff_ffff);
    let mut rd = gicr;
    let mut found = None;
    for _ in 0..1024 {
        let typer = mmio_read64(rd + 0x8);
        if typer >> 32 == aff {
            found = Some(rd);
            break;
        }
        if typer & (1 << 4) != 0 {
            break; // Last
        }
        rd += if typer & 2 != 0 {
            GICR_FRAME_VLPI
        } else {
            GICR_FRAME
        };
    }
    let rd = found.ok_or("no GICv3 redistributor for this core")?;
    // GICR_WAKER (0x14): clear ProcessorSleep (bit 1), wait for
    // ChildrenAsleep (bit 2) to clear.
    mmio_write32(rd + 0x14, mmio_read32(rd + 0x14) & !2);
    if !wait(|| mmio_read32(rd + 0x14) & 4 == 0) {
        return Err("GICv3 redistributor does not wake");
    }
    let sgi = rd + 0x1_0000;
    let bit = 1u32 << VTIMER_INTID;
    mmio_write32(sgi + 0x80, mmio_read32(sgi + 0x80) | bit); // IGROUPR0: Group 1
                                                             // IPRIORITYR: byte-accessible; 0x80 is below the 0xff mask set below.
                                                             // SAFETY: byte write to this core's redistributor priority register.
    unsafe { core::ptr::write_volatile((sgi + 0x400 + VTIMER_INTID as u64) as *mut u8, 0x80) };
    mmio_write32(sgi + 0x100, bit); // ISENABLER0

    // SAFETY: enabling the system register interface and Group 1 at the
    // current EL only affects interrupt delivery, which PSTATE masks.
    unsafe {
        if current_el() == 2 {
            // ICC_SRE_EL2: SRE (bit 0) and Enable (bit 3, lower ELs may use it).
            asm!("mrs {t}, S3_4_C12_C9_5", "orr {t}, {t}, #1", "orr {t}, {t}, #8", "msr S3_4_C12_C9_5, {t}", "isb",
                 t = out(reg) _, options(nomem, nostack));
        } else {
            asm!("mrs {t}, S3_0_C12_C12_5", "orr {t}, {t}, #1", "msr S3_0_C12_C12_5, {t}", "isb",
                 t = out(reg) _, options(nomem, nostack));
        }
        // ICC_PMR_EL1 = 0xff, ICC_IGRPEN1_EL1 = 1.
        asm!("msr S3_0_C4_C6_0, {p}", "msr S3_0_C12_C12_7, {e}", "isb",
             p = in(reg) 0xffu64, e = in(reg) 1u64, options(nomem, nostack));
    }
    Ok(())
}

/// Arms the virtual timer to fire in `ticks` (CNTV_TVAL_EL0, CNTV_CTL_EL0
/// ENABLE=1 IMASK=0), or disarms it.
pub fn vtimer(ticks: Option<u64>) {
    // SAFETY: the virtual timer only raises its (masked) PPI.
    unsafe {
        match ticks {
            Some(t) => asm!("msr cntv_tval_el0, {t}", "msr cntv_ctl_el0, {c}", "isb",
                            t = in(reg) t, c = in(reg) 1u64, options(nomem, nostack)),
            None => asm!("msr cntv_ctl_el0, xzr", "isb", options(nomem, nostack)),
        }
    }
}

/// The secondary's report to the primary (plain loads and stores: with the
/// MMU off all memory is Device memory, so no exclusives are used).
pub static SECONDARY_RUNS: AtomicU64 = AtomicU64::new(0);
pub static SECONDARY_CTX: AtomicU64 = AtomicU64::new(0);
pub static SECONDARY_EL: AtomicU64 = AtomicU64::new(0);
pub static SECONDARY_MMU: AtomicU64 = AtomicU64::new(0);
pub static SECONDARY_GO: AtomicU64 = AtomicU64::new(0);

pub fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Ordering::Acquire) + 1, Ordering::Release);
}
