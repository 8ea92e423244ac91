//! Resident at EL3 (`virt,secure=on,virtualization=on`): the firmware is
//! the secure monitor and the only PSCI. QEMU starts every CPU at EL3 in
//! the firmware and implements no PSCI itself (hw/arm/virt.c: no PSCI
//! conduit when EL3 firmware is loaded).
//!
//! Design:
//! - Memory. The firmware is linked with its data, heap and stacks in
//!   normal RAM (linker/aarch64.ld) and boots from there. Before entering
//!   the kernel it copies `[handoff_end, fw_end)` to the secure RAM the DT
//!   describes and switches its EL3 stage-1 map so that the same virtual
//!   addresses now reach that copy; the hand-off area below stays identity
//!   mapped in normal RAM for the kernel to read. Pointers, the heap and
//!   every static stay valid, the normal-world copy is dead and is given to
//!   Linux, and the resident state lives where no normal-world access can
//!   reach it (QEMU virt's secure RAM is only in the secure address space).
//!   The secure RAM is reported as EfiReservedMemoryType.
//! - Secondaries. They park from reset (entry.rs) with MMU off and wait
//!   for a release record at the end of the DT hand-off area; they accept
//!   it only when its magic matches and its stamp is the boot CPU's
//!   counter at this boot (within eight seconds of their own reset time:
//!   TCG on a loaded host starts a secondary's first instruction seconds
//!   late, and a reboot cannot come that soon after the last boot's reset),
//!   so a record left in RAM by an earlier boot releases nobody. Released,
//!   they turn on the EL3 map, set up their GIC redistributor and EL3
//!   controls, and wait on their mailbox for CPU_ON; CPU_OFF brings them
//!   back there. Parked CPUs sleep in WFI and are woken by the firmware's
//!   own secure Group 0 SGI (15), so they cost the host nothing (QEMU's
//!   WFE only yields, a WFE loop keeps a host thread busy).
//! - Power: the secure PL061's gpio-poweroff / gpio-restart lines from the
//!   DT.
//!
//! The GIC's secure set-up is in `el3/gic.rs`. Register fields: Arm ARM
//! (DDI 0487) D24 (SCR_EL3, CPTR_EL3).

mod control;
mod gic;

pub use control::read_record;

use alloc::{boxed::Box, string::String, vec::Vec};
use core::arch::{asm, global_asm};
use core::ptr::{read_volatile, write_volatile};
use core::sync::atomic::{AtomicBool, Ordering};

use hotstub::platform::cpus::CpuModel;
use hotstub::platform::dt::Board;
use hotstub::println;
use hotstub::psci::ids::{power_state::CORE_STANDBY, ret};
use hotstub::resident::hotplug::record::Found;

use super::cpu::{self, FirmwareEl};
use super::hw;
use super::psci_glue;
use super::vectors::{self, Frame, STACK_SIZE};
use hotstub::resident::regs::{el3_map, EC_SMC64, SPSR_EL2H_MASKED};
use hotstub::resident::PAGE;

/// SCTLR_EL2 with only its RES1 bits (Arm ARM D24.2.158, E2H = 0): MMU,
/// caches and alignment checks off, little-endian, the state PSCI CPU_ON
/// promises at the entry point.
const SCTLR_EL2_RESET: u64 = 0x30c5_0830;

/// Release record for the parked secondaries: magic, stamp, MAIR, TCR,
/// TTBR, SCTLR (EL3), MPIDR table, count, stack base. Layout shared with
/// `res_el3_secondary_reset`.
const RELEASE_MAGIC: u64 = 0x484f_5453_5455_4233; // "HOTSTUB3"
const RELEASE_WORDS: usize = 9;
const RELEASE_SIZE: u64 = 128;

/// L1, L2 for GiB 0, L2 for GiB 1, L3 for the firmware's 2 MiB.
#[repr(C, align(4096))]
struct Tables([[u64; 512]; 4]);

/// Per-vCPU "CPU_ON pending" flags the parked CPUs watch.
static MAILBOX: spin::Once<Vec<AtomicBool>> = spin::Once::new();
/// The secure GPIO's restart line.
static RESTART: hw::GpioLine = hw::GpioLine::new();

global_asm!(
    r#"
    .section .text.res_el3, "ax"
    .balign 4
    // entry.rs sends every CPU but the boot CPU here, at EL3, MMU off.
    .global res_el3_secondary_reset
res_el3_secondary_reset:
    isb
    mrs     x20, cntvct_el0
    mrs     x21, cntfrq_el0
    lsl     x21, x21, #3
    ldr     x19, =__handoff_end
    sub     x19, x19, #{rsize}
    // Sleep in WFI until the boot CPU's wake-up SGI (Group 0): GIC system
    // registers on (ICC_SRE_EL3), priority mask open (ICC_PMR_EL1),
    // Group 0 enabled (ICC_IGRPEN0_EL1). DAIF stays masked: the SGI only
    // ends the WFI and is acknowledged by hand.
    mov     x2, #0xf
    msr     S3_6_C12_C12_5, x2
    isb
    mov     x2, #0xff
    msr     S3_0_C4_C6_0, x2
    mov     x2, #1
    msr     S3_0_C12_C12_6, x2
    isb
    b       2f
1:  wfi
    // ICC_IAR0_EL1 / ICC_EOIR0_EL1; INTIDs 1020-1023 are "none".
    mrs     x2, S3_0_C12_C8_0
    cmp     x2, #1020
    b.hs    2f
    msr     S3_0_C12_C8_1, x2
2:  ldp     x2, x3, [x19]
    ldr     x4, ={magic}
    cmp     x2, x4
    b.ne    1b
    // |stamp - arrival| <= eight seconds
    subs    x5, x3, x20
    cneg    x5, x5, mi
    cmp     x5, x21
    b.hi    1b
    ldp     x2, x3, [x19, #16]
    ldp     x4, x5, [x19, #32]
    msr     mair_el3, x2
    msr     tcr_el3, x3
    msr     ttbr0_el3, x4
    isb
    tlbi    alle3
    dsb     nsh
    isb
    msr     sctlr_el3, x5
    isb
    ldp     x6, x7, [x19, #48]
    ldr     x8, [x19, #64]
    mrs     x9, mpidr_el1
    and     x9, x9, #0xffffff
    mrs     x10, mpidr_el1
    and     x10, x10, #0xff00000000
    orr     x9, x9, x10
    mov     x10, #0
2:  cmp     x10, x7
    b.hs    9f
    ldr     x11, [x6, x10, lsl #3]
    cmp     x11, x9
    b.eq    3f
    add     x10, x10, #1
    b       2b
3:  add     x11, x10, #1
    mov     x12, #{stack}
    madd    x8, x11, x12, x8
    mov     sp, x8
    mov     x0, x10
    bl      hotstub_el3_park
9:  wfe
    b       9b

    // x0 = index, x1 = its stack top: back to the park loop on an empty
    // stack (CPU_OFF).
res_el3_repark:
    mov     sp, x1
    bl      hotstub_el3_park
    b       9b

    // Copies \len bytes (a multiple of 16, not 0) from \src to \dst,
    // both advanced: 64 bytes a step while they last, then 16 (x8, x9
    // scratch).
    .macro el3_copy src, dst, len
10: cmp     \len, #64
    b.lo    11f
    .rept 4
    ldp     x8, x9, [\src], #16
    stp     x8, x9, [\dst], #16
    .endr
    subs    \len, \len, #64
    b.ne    10b
    b       12f
11: ldp     x8, x9, [\src], #16
    stp     x8, x9, [\dst], #16
    subs    \len, \len, #16
    b.ne    11b
12:
    .endm

    // Cleans and invalidates \len bytes from \from to PoC, \line at a
    // time (both registers consumed).
    .macro el3_clean from, len, line
    add     \len, \from, \len
13: dc      civac, \from
    add     \from, \from, \line
    cmp     \from, \len
    b.lo    13b
    .endm

    // Copies two ranges: x2 bytes from x0 to x1 and x7 bytes from x5 to
    // x6 (multiples of 16, not 0), cleans and invalidates the sources
    // (x3 = D-cache line size) so no dirty line of the old copy is ever
    // written back over what Linux puts there, then switches TTBR0_EL3 to
    // x4. No memory is written after the copy.
res_el3_move:
    mov     x13, x0
    mov     x14, x2
    mov     x15, x5
    mov     x16, x7
    el3_copy x0, x1, x2
    el3_copy x5, x6, x7
    dsb     sy
    el3_clean x13, x14, x3
    el3_clean x15, x16, x3
    dsb     sy
    msr     ttbr0_el3, x4
    isb
    tlbi    alle3
    dsb     sy
    isb
    ret
    "#,
    rsize = const RELEASE_SIZE,
    magic = const RELEASE_MAGIC,
    stack = const STACK_SIZE,
);

extern "C" {
    fn res_el3_repark(index: u64, stack_top: u64) -> !;
    fn res_el3_move(
        src: u64,
        dst: u64,
        len: u64,
        line: u64,
        ttbr: u64,
        src2: u64,
        dst2: u64,
        len2: u64,
    );
}

/// Per-CPU EL3 state: SCR, CPTR (no FP/SVE/SME traps), SVE/SME lengths,
/// the GIC system register interface and this CPU's redistributor, the
/// vectors.
fn init_cpu() -> Result<(), &'static str> {
    let f = cpu::features();
    let vbar = vectors::vbar();
    cpu::open_lower_els(&f, FirmwareEl::El3);
    // SCR_EL3.FIQ (bit 2) with the control channel: its Group 0
    // interrupts are taken at EL3 while the normal world runs.
    let scr = f.scr_el3() | if control::active() { 1 << 2 } else { 0 };
    // SAFETY: EL3 control registers; they open the lower ELs and do not
    // affect the firmware's own translation regime or stack.
    unsafe {
        asm!("msr scr_el3, {}", "msr vbar_el3, {}", "isb", in(reg) scr, in(reg) vbar,
             options(nostack));
    }
    gic::gicr_init(cpu::mpidr())
}

/// Enters the normal world at EL2h with x0 = `x0`, EL2 with its MMU and
/// caches off, this CPU's EL3 stack at `stack_top` for the SMCs to come.
fn eret_el2(entry: u64, x0: u64, stack_top: u64) -> ! {
    // SAFETY: EL3 state is set up (`init_cpu`); the firmware needs nothing
    // on this CPU until the next SMC, which starts on the empty stack. EL2
    // gets the PSCI entry state (MMU off); stale TLB entries and
    // instructions of an earlier life of this CPU are dropped.
    unsafe {
        asm!(
            "msr sctlr_el2, x7",
            "msr hcr_el2, xzr",
            "isb",
            "mov sp, x6",
            "msr elr_el3, x4",
            "msr spsr_el3, x5",
            "ic iallu",
            "tlbi alle2",
            "tlbi alle1",
            "dsb sy",
            "isb",
            "mov x1, xzr",
            "mov x2, xzr",
            "mov x3, xzr",
            "eret",
            in("x0") x0,
            in("x4") entry,
            in("x5") SPSR_EL2H_MASKED,
            in("x6") stack_top,
            in("x7") SCTLR_EL2_RESET,
            options(noreturn),
        )
    }
}

/// The only PSCI; CPU_ON releases a parked CPU by mailbox and SGI.
struct El3;

impl hotstub::psci::Platform for El3 {
    fn standby_states(&self) -> &[u32] {
        &[CORE_STANDBY]
    }

    fn cpu_on(&self, index: usize, mpidr: u64) -> Result<(), i32> {
        let flag = MAILBOX
            .get()
            .and_then(|m| m.get(index))
            .ok_or(ret::INTERNAL_FAILURE)?;
        flag.store(true, Ordering::Release);
        gic::send_wake(Some(mpidr));
        Ok(())
    }

    fn cpu_standby(&self, _: u32) {
        cpu::wait_for_interrupt()
    }

    fn cpu_off(&self, index: usize) -> ! {
        // SAFETY: the CPU leaves the caller for good; its stack restarts.
        unsafe { res_el3_repark(index as u64, psci_glue::stack_top(index)) }
    }

    fn system_off(&self) -> ! {
        super::stop::power_off()
    }

    fn system_reset(&self) -> ! {
        clear_release();
        RESTART.raise();
        println!("hotstub: no gpio-restart line in the DT; powering off instead");
        super::stop::power_off()
    }
}

fn release_record() -> u64 {
    hw::layout::handoff_end() - RELEASE_SIZE
}

/// A reset keeps RAM: leave no valid release record behind.
fn clear_release() {
    let r = release_record();
    // SAFETY: the record lies in the hand-off area, identity mapped.
    unsafe { write_volatile(r as *mut u64, 0) };
    super::mmu::clean_to_poc(r, RELEASE_SIZE);
}

/// The resident EL3 map (`resident::regs::el3_map`), in tables on the heap:
/// the move to the secure RAM carries the heap as far as it has grown, and
/// at EL1 and EL2 (where the data stays resident) the tables take no room.
fn build_map(secure: (u64, u64), fw: (u64, u64), gicr: &[(u64, u64)]) -> Result<u64, &'static str> {
    let t = Box::leak(Box::new(Tables([[0; 512]; 4])));
    let va = t as *const Tables as u64;
    el3_map(&mut t.0, va, secure, fw, gicr)
}

/// Stays resident at EL3 and enters the kernel at EL2 on the boot CPU.
#[allow(clippy::too_many_arguments)]
pub fn enter(
    platform: &Board,
    model: &CpuModel,
    hotplug: Option<hotstub::acpi::cpuhp::CpuHotplug>,
    saved: Option<&Found>,
    secure: (u64, u64),
    fw_resident: (u64, u64),
    t0: u64,
    entry: u64,
    dt: u64,
) -> Result<hotstub::boot::pipeline::Never, String> {
    let (fs, fe) = fw_resident;
    // Behind the firmware's copy go its handler stacks (the heap holds
    // about 75, QEMU virt has up to 512 vCPUs); the secure RAM's last page
    // keeps the runtime policy (`record::place`).
    let stacks = (secure.0 + (fe - fs)).next_multiple_of(STACK_SIZE as u64);
    let stacks_end = stacks + (model.len() * STACK_SIZE) as u64;
    let usable_end = secure.0.saturating_add(secure.1).saturating_sub(PAGE);
    if !secure.0.is_multiple_of(PAGE) || usable_end < stacks_end {
        return Err("the secure RAM is too small for the resident firmware".into());
    }
    if platform.gic.version != 3 {
        return Err("at EL3 the resident firmware supports GICv3 only".into());
    }
    // The release record must not overlap the DT for Linux.
    // SAFETY: `dt` is the DT just written in the hand-off area.
    let dt_size = u32::from_be(unsafe { read_volatile((dt + 4) as *const u32) }) as u64;
    if dt + dt_size > release_record() {
        return Err("the DT for Linux leaves no room for the release record".into());
    }
    psci_glue::init(model, &platform.memory, &[], Some(stacks), &El3)?;
    MAILBOX.call_once(|| (0..model.len()).map(|_| AtomicBool::new(false)).collect());
    if let Some(sg) = platform.secure_gpio {
        if let Some(pin) = sg.restart_pin {
            // SAFETY: the DT names this PL061 as the secure GPIO.
            unsafe { RESTART.set(sg.base, pin) };
        }
    }
    let mpidrs = model.iter().map(|v| v.hw_id).collect::<Vec<u64>>().leak();
    // Built before the GIC set-up walks the redistributors: a region the
    // map cannot hold is then an error line, not a translation fault.
    let ttbr = build_map(secure, fw_resident, &platform.gic.gicr)?;
    // SAFETY: the GICv3 (checked above) the DT names, in the MMIO the boot
    // map has as Device memory.
    unsafe { gic::init(platform.gic.gicd, &platform.gic.gicr) };
    if let (Some(h), Some(uart)) = (hotplug, platform.secure_uart) {
        // SAFETY: the DT's secure PL011 and GICv3 distributor, in the boot
        // map's Device memory; the block was reserved with the tables.
        unsafe {
            let gicd = platform.gic.gicd;
            control::init(h, uart, gicd, cpu::mpidr(), model.len(), saved)
        };
    }

    let line = super::mmu::dcache_line();
    let (mair, tcr, sctlr): (u64, u64, u64);
    // SAFETY: reads of EL3's own translation controls.
    unsafe {
        asm!("mrs {}, mair_el3", "mrs {}, tcr_el3", "mrs {}, sctlr_el3",
             out(reg) mair, out(reg) tcr, out(reg) sctlr, options(nomem, nostack))
    };
    // What is live of the firmware's RAM: its data and heap as far as the
    // heap has grown, and the boot stack. The rest (the heap's room to
    // grow) was never written, so neither copied nor cleaned: copying the
    // whole MiB cost the EL3 boot a quarter of a million instructions.
    let top = super::super::heap_top()
        .next_multiple_of(16)
        .clamp(fs + 16, fe);
    let stack = super::hw::layout::stack_bottom().clamp(top, fe - 16);
    // SAFETY: copies the live firmware RAM to secure RAM and switches the
    // map in one register-only sequence; the same addresses reach the same
    // bytes before and after (build_map maps exactly that range there).
    unsafe {
        res_el3_move(
            fs,
            secure.0,
            top - fs,
            line,
            ttbr,
            stack,
            secure.0 + (stack - fs),
            fe - stack,
        )
    };

    // Release the parked secondaries (see the module comment).
    let r = release_record() as *mut u64;
    let words: [u64; RELEASE_WORDS] = [
        RELEASE_MAGIC,
        t0,
        mair,
        tcr,
        ttbr,
        sctlr,
        mpidrs.as_ptr() as u64,
        mpidrs.len() as u64,
        psci_glue::stack_top(0) - STACK_SIZE as u64,
    ];
    // SAFETY: the record lies in the hand-off area (identity mapped,
    // normal RAM), above the DT for Linux (checked by the caller).
    unsafe {
        for (i, w) in words.iter().enumerate().skip(2) {
            write_volatile(r.add(i), *w);
        }
        asm!("dsb sy", options(nostack));
        write_volatile(r.add(1), words[1]);
        write_volatile(r, words[0]);
    }
    super::mmu::clean_to_poc(r as u64, RELEASE_SIZE);
    init_cpu()?;
    gic::send_wake(None);
    // SAFETY: ICC_IGRPEN0_EL1 = 1: the channel's Group 0 interrupts reach
    // this CPU while Linux runs (the parked CPUs set it in their loop).
    if control::active() {
        // SAFETY: see above.
        unsafe { asm!("msr S3_0_C12_C12_6, {}", "isb", in(reg) 1u64, options(nostack)) };
    }

    println!("hotstub: resident at EL3 in secure RAM, kernel at EL2");
    eret_el2(entry, dt, psci_glue::stack_top(psci_glue::boot_index()))
}

/// Sets this CPU's EL3 state and waits for CPU_ON: a secondary after its
/// release (on its stack with the EL3 map on), or after CPU_OFF.
#[no_mangle]
extern "C" fn hotstub_el3_park(index: u64) -> ! {
    let index = index as usize;
    if let Err(e) = init_cpu() {
        super::stop::fatal(e);
    }
    let Some(flag) = MAILBOX.get().and_then(|m| m.get(index)) else {
        super::stop::fatal("parked CPU without a mailbox");
    };
    // SAFETY: GIC CPU interface of this CPU: priority mask open, Group 0
    // (the wake-up SGI) on, the normal world's Group 1 off until its next
    // life turns it back on (Linux's GIC set-up of a starting CPU does), so
    // nothing it left pending keeps waking this CPU.
    unsafe {
        asm!("msr S3_0_C4_C6_0, {}", "msr S3_0_C12_C12_6, {}", "msr S3_0_C12_C12_7, xzr", "isb",
             in(reg) 0xffu64, in(reg) 1u64, options(nostack))
    };
    loop {
        if flag.swap(false, Ordering::Acquire) {
            if let Some(e) = psci_glue::secondary_started(index) {
                eret_el2(e.entry, e.context_id, psci_glue::stack_top(index));
            }
        }
        // Sleeps until the wake-up SGI or a channel interrupt (DAIF masked:
        // they end the WFI and are taken by hand).
        cpu::wait_for_interrupt();
        control::serve_group0();
    }
}

/// Synchronous exception from EL2/EL1: an SMC (ELR already points past
/// it, Arm ARM D1.4.5); `kind` 1: an FIQ, the channel's interrupts.
pub(super) fn sync(f: &mut Frame, kind: u64) {
    if kind == 1 {
        control::serve_group0();
        return;
    }
    let (esr, elr, far) = hw::fault_registers();
    if esr >> 26 != EC_SMC64 {
        psci_glue::unexpected(&"trap from the normal world", esr, elr, far, 0);
    }
    psci_glue::smccc(f, esr);
}
