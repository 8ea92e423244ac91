//! Application processors: every vCPU present at boot gets the same MTRRs as
//! the boot CPU (Linux checks that they agree, and Intel SDM vol. 3, 12.11.8
//! requires it), then halts until Linux starts it with INIT-SIPI-SIPI.
//!
//! QEMU's TCG clears MTRRs on INIT (KVM and hardware keep them), so under
//! TCG Linux still reports "inconsistent MTRR settings" and corrects them,
//! exactly as it does behind SeaBIOS.

use super::io::{mmio_read32, rdmsr};
use super::q35;
use core::arch::global_asm;

// Real-mode trampoline, copied to TRAMPOLINE. With DS = 0 it replays the
// (msr, low, high) triples in the MSR table, counts itself in, and halts
// with interrupts off.
global_asm!(
    r#"
.section .rodata.ap_trampoline, "a"
.global ap_trampoline_start
.global ap_trampoline_end
.code16
ap_trampoline_start:
    cli
    xorw %ax, %ax
    movw %ax, %ds
    movw $0x9008, %si
    movw 0x9000, %bx
1:  testw %bx, %bx
    jz 2f
    movl (%si), %ecx
    movl 4(%si), %eax
    movl 8(%si), %edx
    wrmsr
    addw $12, %si
    decw %bx
    jmp 1b
2:  lock incl 0x9004
3:  cli
    hlt
    jmp 3b
ap_trampoline_end:
.code64
"#,
    options(att_syntax)
);

extern "C" {
    static ap_trampoline_start: u8;
    static ap_trampoline_end: u8;
}

/// Trampoline page (the SIPI vector is its page number) and the MSR table
/// it reads: u16 count at +0, u32 done counter at +4, triples from +8.
const TRAMPOLINE: u64 = 0x8000;
const TABLE: u64 = 0x9000;
const TABLE_MAX: usize = (0x1000 - 8) / 12;

/// Local APIC registers (Intel SDM vol. 3, table 11-1): ICR low/high and
/// the spurious-interrupt vector register, whose bit 8 enables the APIC.
const ICR_LO: u64 = 0x300;
const ICR_HI: u64 = 0x310;
const SVR: u64 = 0x0f0;
/// ICR: INIT / Start-up delivery, level assert, all excluding self.
const ICR_INIT: u32 = 0x000c_4500;
const ICR_SIPI: u32 = 0x000c_4600;
const ICR_BUSY: u32 = 1 << 12;

fn lapic_write(reg: u64, v: u32) {
    // SAFETY: local APIC register in the identity-mapped, uncached MMIO page.
    unsafe { core::ptr::write_volatile((q35::LAPIC_ADDR as u64 + reg) as *mut u32, v) }
}

fn lapic_read(reg: u64) -> u32 {
    mmio_read32(q35::LAPIC_ADDR as u64 + reg)
}

fn send_ipi(icr: u32) {
    lapic_write(ICR_HI, 0);
    lapic_write(ICR_LO, icr);
    while lapic_read(ICR_LO) & ICR_BUSY != 0 {
        core::hint::spin_loop();
    }
}

/// Copies the boot CPU's MTRRs to the other `aps` present vCPUs. Returns how
/// many answered.
pub fn sync_mtrrs(msrs: &[u32], aps: u32) -> u32 {
    if aps == 0 {
        return 0;
    }
    let code = trampoline();
    // SAFETY: the trampoline page and MSR table page are low RAM the
    // firmware reserves for this (layout in mod.rs).
    let page = unsafe { super::super::ram_slice(TRAMPOLINE, code.len() as u64) };
    page.copy_from_slice(code);
    // SAFETY: as above.
    let table = unsafe { super::super::ram_slice(TABLE, 0x1000) };
    table.fill(0);
    let n = msrs.len().min(TABLE_MAX);
    for (i, &msr) in msrs.iter().take(n).enumerate() {
        let v = rdmsr(msr);
        let o = 8 + i * 12;
        table[o..o + 4].copy_from_slice(&msr.to_le_bytes());
        table[o + 4..o + 12].copy_from_slice(&v.to_le_bytes());
    }
    table[0..2].copy_from_slice(&(n as u16).to_le_bytes());

    let svr = lapic_read(SVR);
    lapic_write(SVR, svr | 0x100);
    // INIT, then start-up; a second start-up only if an AP missed the
    // first (Intel SDM vol. 3, 9.4.4.1).
    send_ipi(ICR_INIT);
    send_ipi(ICR_SIPI | (TRAMPOLINE >> 12) as u32);
    if !wait_for(aps, 10_000) {
        send_ipi(ICR_SIPI | (TRAMPOLINE >> 12) as u32);
        wait_for(aps, 100_000);
    }
    lapic_write(SVR, svr);
    checked_in()
}

/// How many APs have run the trampoline.
fn checked_in() -> u32 {
    // SAFETY: an aligned u32 in the firmware-owned MSR table page, written
    // by the APs behind the compiler's back.
    unsafe { core::ptr::read_volatile((TABLE + 4) as *const u32) }
}

/// Waits up to `us` microseconds for `aps` check-ins.
fn wait_for(aps: u32, us: u64) -> bool {
    let ticks = (us * q35::PM_TMR_HZ / 1_000_000) as u32;
    let t0 = q35::pm_timer();
    while checked_in() < aps {
        if q35::pm_timer().wrapping_sub(t0) & 0x00ff_ffff >= ticks {
            return false;
        }
        core::hint::spin_loop();
    }
    true
}

fn trampoline() -> &'static [u8] {
    // SAFETY: both symbols delimit one blob in .rodata emitted above.
    unsafe {
        let s = core::ptr::addr_of!(ap_trampoline_start);
        let e = core::ptr::addr_of!(ap_trampoline_end);
        core::slice::from_raw_parts(s, e as usize - s as usize)
    }
}
