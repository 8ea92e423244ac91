//! Reset entry (the exception vectors are in `vectors.rs`).
//!
//! QEMU virt starts the CPU at 0x0 (flash) with the MMU and caches off, at
//! EL1, EL2 (`virtualization=on`) or EL3 (`secure=on`). At EL1 and EL2 only
//! the boot CPU runs: QEMU's own PSCI holds the others powered off. At EL3
//! every CPU starts here, so the entry tells the boot CPU (affinity 0) from
//! the others and parks the others.
//!
//! This code runs with the MMU off (`mmu.rs` turns it on later), where all
//! data accesses are Device-nGnRnE and fault when unaligned; the target is
//! built `+strict-align` for that reason. FP/SIMD stays untouched (softfloat
//! target, CPACR/CPTR left at their reset values).

use core::arch::global_asm;

global_asm!(
    r#"
    .section .text.entry, "ax"
    .global _start
_start:
    // x0 may hold a DT address (the cloud-hypervisor convention).
    mov     x19, x0

    // MPIDR_EL1 affinity fields Aff3 (39:32) and Aff2..Aff0 (23:0)
    // (Arm ARM D23.2 MPIDR_EL1): the CPU with all-zero affinity boots.
    mrs     x1, mpidr_el1
    mov     x2, #0xffffff
    orr     x2, x2, #0xff00000000
    tst     x1, x2
    // Only at EL3 do secondaries get here: they wait for the resident
    // firmware (el3.rs).
    b.ne    res_el3_secondary_reset

    // Copy .data from flash to RAM, zero .bss (linker symbols are 16-byte
    // aligned, so 16-byte steps are exact).
    ldr     x1, =__data_load
    ldr     x2, =__data_start
    ldr     x3, =__data_end
1:  cmp     x2, x3
    b.hs    2f
    ldp     x4, x5, [x1], #16
    stp     x4, x5, [x2], #16
    b       1b
    // .bss (9 KiB, mostly the EL1/EL2 page tables) 64 bytes a step
    // while they last, then 16.
2:  ldr     x2, =__bss_start
    ldr     x3, =__bss_end
    sub     x6, x3, #64
9:  cmp     x2, x6
    b.hi    3f
    stp     xzr, xzr, [x2], #16
    stp     xzr, xzr, [x2], #16
    stp     xzr, xzr, [x2], #16
    stp     xzr, xzr, [x2], #16
    b       9b
3:  cmp     x2, x3
    b.hs    4f
    stp     xzr, xzr, [x2], #16
    b       3b
4:
    ldr     x1, =__stack_top
    mov     sp, x1

    // Vectors for the EL we run at: CurrentEL bits 3:2.
    adr     x1, hotstub_vectors
    mrs     x2, CurrentEL
    cmp     x2, #(3 << 2)
    b.eq    7f
    cmp     x2, #(2 << 2)
    b.eq    5f
    msr     vbar_el1, x1
    b       6f
5:  msr     vbar_el2, x1
    b       6f
7:  msr     vbar_el3, x1
6:  isb

    mov     x0, x19
    bl      hotstub_main
    // A returning main waits here for good.
1:  wfe
    b       1b

    "#
);
