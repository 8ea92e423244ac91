//! The firmware's one exception vector table, the register frame its
//! lower-EL entries save, and the per-CPU handler stacks they run on; all
//! shared by the resident firmware at EL2 and at EL3 (`el2.rs`, `el3.rs`)
//! and used from reset on (`entry.rs` installs the table).
//!
//! The entries reach Rust through two symbols, `hotstub_sync` and
//! `hotstub_unexpected` (`trap.rs`, which dispatches by EL), so this file
//! imports no other file of `arch/aarch64`: the EL2 and EL3 code and the
//! PSCI glue build on it, not the other way round.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

/// Bytes of handler stack per CPU: the dispatcher's deepest path (CPU_ON
/// through the platform hook, with formatting on the error path) uses a
/// few hundred bytes; 8 KiB leaves ample margin.
pub const STACK_SIZE: usize = 8 << 10;

/// One vCPU's handler stack, aligned to its size: the fatal path of the
/// vectors finds the top of the stack it is on from SP alone.
#[repr(C, align(8192))]
struct Stack([u8; STACK_SIZE]);
const _: () = assert!(core::mem::align_of::<Stack>() == STACK_SIZE);

/// `[base, end)` of the handler stacks, for the vectors' fatal path.
static STACK_BOUNDS: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

/// Allocates the handler stacks of `n` vCPUs, one STACK_SIZE block per
/// vCPU index, and returns their base: at `at` (STACK_SIZE aligned, memory
/// the caller set aside) or else on the heap, which holds a few dozen.
/// Called once, on the boot CPU, before any CPU can trap to the firmware.
pub fn alloc_stacks(n: usize, at: Option<u64>) -> Result<u64, &'static str> {
    let stacks = match at {
        Some(base) => base,
        None => {
            // Only the memory is needed (never freed, never read before
            // written).
            let mut v = Vec::<Stack>::new();
            v.try_reserve_exact(n)
                .map_err(|_| "too many vCPUs for the resident firmware's handler stacks")?;
            v.leak().as_ptr() as u64
        }
    };
    STACK_BOUNDS[0].store(stacks, Ordering::Relaxed);
    STACK_BOUNDS[1].store(stacks + (n * STACK_SIZE) as u64, Ordering::Relaxed);
    Ok(stacks)
}

/// The registers a trap vector saves, in this order (the vector code below
/// stores them at these offsets): x0..x30, the return address and the
/// saved PSTATE of the trapping context, one pad word for 16-byte stack
/// alignment.
#[repr(C)]
pub struct Frame {
    pub x: [u64; 31],
    pub elr: u64,
    pub spsr: u64,
    _pad: u64,
}

const _: () = assert!(core::mem::size_of::<Frame>() == 272);

// The firmware's one vector table, at whichever EL it runs (16 entries
// of 0x80 bytes, 2 KiB aligned, Arm ARM D1.3.1), from the reset entry on:
// the firmware keeps its EL for its whole life, so one table with the EL
// read at run time costs 2 KiB where a table per EL cost three.
//
// The expected entries, synchronous (+0x400) and FIQ (+0x500: the EL3
// firmware's Group 0 interrupts, taken while the normal world runs) from
// a lower EL in AArch64, save the caller's x0..x30, ELR and SPSR as a
// [`Frame`] on this CPU's handler stack (SP_ELx, left at the stack top
// whenever the firmware returns to the caller), call
// `hotstub_sync(&mut Frame, kind)` (kind 0: synchronous, 1: FIQ) and
// restore everything from the frame before returning. Every other entry
// calls `hotstub_unexpected(index)`, which reports and powers off, on the
// top of this CPU's handler stack: SP_ELx lies in it (at its top when the
// exception came from a lower EL), the stacks are aligned to their size,
// so rounding SP up to STACK_SIZE finds the top without knowing the CPU.
// When that is not in the handler stacks (the boot CPU before the kernel
// runs, or an SP gone astray) the boot stack is used.
core::arch::global_asm!(
    ".section .text.vectors, \"ax\"",
    ".balign 0x800",
    ".global hotstub_vectors",
    "hotstub_vectors:",
    ".set i, 0",
    ".rept 16",
    ".balign 0x80",
    ".if i == 8",
    "b res_sync_lower",
    ".elseif i == 10",
    "b res_fiq_lower",
    ".else",
    "mov x0, #i",
    "b res_unexpected",
    ".endif",
    ".set i, i + 1",
    ".endr",
    ".section .text.res, \"ax\"",
    "res_unexpected:",
    "sub x1, sp, #1",
    "orr x1, x1, #{mask}",
    "add x1, x1, #1",
    "ldr x2, ={bounds}",
    "ldp x3, x4, [x2]",
    "cmp x1, x3",
    "ccmp x1, x4, #2, hi",
    "b.ls 2f",
    "ldr x1, =__stack_top",
    "2: mov sp, x1",
    "bl hotstub_unexpected",
    "res_fiq_lower:",
    "sub sp, sp, #272",
    "stp x0, x1, [sp, #0]",
    "mov x1, #1",
    "b 3f",
    "res_sync_lower:",
    "sub sp, sp, #272",
    "stp x0, x1, [sp, #0]",
    "mov x1, #0",
    "3: stp x2, x3, [sp, #16]",
    "stp x4, x5, [sp, #32]",
    "stp x6, x7, [sp, #48]",
    "stp x8, x9, [sp, #64]",
    "stp x10, x11, [sp, #80]",
    "stp x12, x13, [sp, #96]",
    "stp x14, x15, [sp, #112]",
    "stp x16, x17, [sp, #128]",
    "stp x18, x19, [sp, #144]",
    "stp x20, x21, [sp, #160]",
    "stp x22, x23, [sp, #176]",
    "stp x24, x25, [sp, #192]",
    "stp x26, x27, [sp, #208]",
    "stp x28, x29, [sp, #224]",
    // Only the resident EL2 and EL3 firmware has a lower EL that traps.
    "mrs x0, CurrentEL",
    "cmp x0, #(3 << 2)",
    "b.ne 4f",
    "mrs x0, elr_el3",
    "mrs x2, spsr_el3",
    "b 5f",
    "4: mrs x0, elr_el2",
    "mrs x2, spsr_el2",
    "5: stp x30, x0, [sp, #240]",
    "str x2, [sp, #256]",
    "mov x0, sp",
    "bl hotstub_sync",
    "ldp x30, x0, [sp, #240]",
    "ldr x1, [sp, #256]",
    "mrs x2, CurrentEL",
    "cmp x2, #(3 << 2)",
    "b.ne 6f",
    "msr elr_el3, x0",
    "msr spsr_el3, x1",
    "b 7f",
    "6: msr elr_el2, x0",
    "msr spsr_el2, x1",
    "7: ldp x0, x1, [sp, #0]",
    "ldp x2, x3, [sp, #16]",
    "ldp x4, x5, [sp, #32]",
    "ldp x6, x7, [sp, #48]",
    "ldp x8, x9, [sp, #64]",
    "ldp x10, x11, [sp, #80]",
    "ldp x12, x13, [sp, #96]",
    "ldp x14, x15, [sp, #112]",
    "ldp x16, x17, [sp, #128]",
    "ldp x18, x19, [sp, #144]",
    "ldp x20, x21, [sp, #160]",
    "ldp x22, x23, [sp, #176]",
    "ldp x24, x25, [sp, #192]",
    "ldp x26, x27, [sp, #208]",
    "ldp x28, x29, [sp, #224]",
    "add sp, sp, #272",
    "eret",
    mask = const STACK_SIZE - 1,
    bounds = sym STACK_BOUNDS,
);

extern "C" {
    static hotstub_vectors: u8;
}

/// The address of the vector table, for VBAR_ELx.
pub fn vbar() -> u64 {
    (&raw const hotstub_vectors) as u64
}
