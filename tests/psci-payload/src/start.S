// Entry, self-relocation, exception vectors, the secondary entry and the
// register-checking SMCCC call of the PSCI test payload.
//
// Everything here is position-independent: addresses are formed with
// adr/adrp (PC-relative), never loaded from memory before relocation.

// The arm64 Image header (Linux Documentation/arch/arm64/booting.rst,
// "Call the kernel image"): code0, code1, text_offset, image_size, flags,
// res2..res4, magic "ARM\x64" at 0x38, res5.
    .section .text.head, "ax"
    .globl _start
_start:
    b       primary_entry               // code0
    .long   0                           // code1
    .quad   0                           // text_offset
    .quad   __image_size                // image_size, .bss and stacks included
    // flags: bit 0 = 0 little-endian, bits 2:1 = 1 4K pages, bit 3 = 1
    // placement anywhere in RAM (booting.rst).
    .quad   0xa
    .quad   0                           // res2
    .quad   0                           // res3
    .quad   0                           // res4
    .ascii  "ARM\x64"                   // magic
    .long   0                           // res5 (no PE header)

    .text
primary_entry:
    msr     daifset, #0xf
    mov     x19, x0                     // the DT

    // Apply R_AARCH64_RELATIVE relocations: *(base + offset) = base + addend.
    adr     x20, _start                 // run-time base (linked at 0)
    adrp    x1, __rela_start
    add     x1, x1, :lo12:__rela_start
    adrp    x2, __rela_end
    add     x2, x2, :lo12:__rela_end
    mov     x21, #0                     // count of unknown relocation types
1:  cmp     x1, x2
    b.hs    3f
    ldp     x3, x4, [x1], #16           // r_offset, r_info
    ldr     x5, [x1], #8                // r_addend
    and     x4, x4, #0xffffffff
    cmp     x4, #1027                   // R_AARCH64_RELATIVE (ELF for the Arm 64-bit Architecture)
    b.ne    2f
    add     x5, x5, x20
    str     x5, [x20, x3]
    b       1b
2:  add     x21, x21, #1
    b       1b

3:  // Zero .bss (the loader only reserves it).
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
4:  cmp     x1, x2
    b.hs    5f
    str     xzr, [x1], #8
    b       4b

5:  adrp    x1, __stack_top
    add     x1, x1, :lo12:__stack_top
    mov     sp, x1
    bl      install_vectors
    mov     x0, x19
    mov     x1, x21
    bl      payload_main
6:  wfe
    b       6b

// Installs the vector table at the current EL (1 or 2).
    .globl install_vectors
install_vectors:
    adr     x0, vectors
    mrs     x1, CurrentEL
    cmp     x1, #(2 << 2)
    b.eq    1f
    msr     vbar_el1, x0
    isb
    ret
1:  msr     vbar_el2, x0
    isb
    ret

// Where CPU_ON starts a secondary core: x0 = context_id, MMU off, at the
// caller's EL. One secondary runs at a time (the primary waits for
// AFFINITY_INFO OFF between starts), so one stack is enough.
    .globl secondary_entry
    .balign 8
secondary_entry:
    msr     daifset, #0xf
    mov     x19, x0
    adrp    x1, __secondary_stack_top
    add     x1, x1, :lo12:__secondary_stack_top
    mov     sp, x1
    bl      install_vectors
    mov     x0, x19
    bl      secondary_main
1:  wfe
    b       1b

// Where the hostile phase's storms start cores: x0 = context_id = the
// core's slot (0..STORM_CPUS-1), each slot with its own stack, since every
// core of the storm runs at once. A context id out of range parks the core
// (the primary then sees it stuck ON and reports it).
    .globl storm_entry
    .balign 8
storm_entry:
    msr     daifset, #0xf
    mov     x19, x0
    cmp     x0, #8                      // STORM_CPUS (src/hostile.rs)
    b.hs    2f
    adrp    x1, __storm_stacks
    add     x1, x1, :lo12:__storm_stacks
    add     x2, x0, #1
    add     x1, x1, x2, lsl #13         // 8 KiB per slot (link.ld)
    mov     sp, x1
    bl      install_vectors
    mov     x0, x19
    bl      storm_main
2:  wfe
    b       2b

// el0_a32_load(addr) -> ESR: one A32 load of `addr` (below 4 GiB) at EL0
// in AArch32 User mode, MMU off, started from EL1 by an eret; the
// exception that ends it (the load's abort, or the UDF after the load if
// it did not fault) comes to the payload's vector as a lower-EL AArch32
// synchronous exception, which (hw::A32_PROBE set) puts its ESR in x0 and
// returns to el0_a32_return at EL1h. Only at EL1. Callee-saved registers
// and SP are restored here: AArch32 execution leaves X15-X30 UNKNOWN.
    .globl el0_a32_load
el0_a32_load:
    stp     x29, x30, [sp, #-96]!
    stp     x18, x19, [sp, #16]
    stp     x20, x21, [sp, #32]
    stp     x22, x23, [sp, #48]
    stp     x24, x25, [sp, #64]
    stp     x26, x27, [sp, #80]
    str     x28, [sp, #-16]!
    adrp    x9, a32_saved_sp
    add     x9, x9, :lo12:a32_saved_sp
    mov     x10, sp
    str     x10, [x9]
    mov     x1, x0                      // r1 = the address
    adr     x9, a32_code
    msr     elr_el1, x9
    // SPSR_EL1: M[4:0] = 0b10000 (AArch32 User), A, I, F masked (8:6),
    // T (5) clear: A32 (Arm ARM, SPSR_EL1 for exceptions from AArch32).
    mov     x9, #0x1d0
    msr     spsr_el1, x9
    isb
    eret
    .balign 4
a32_code:
    .word   0xe5910000                  // ldr r0, [r1]
    .word   0xe7f000f0                  // udf #0
    .globl el0_a32_return
el0_a32_return:
    adrp    x9, a32_saved_sp
    add     x9, x9, :lo12:a32_saved_sp
    ldr     x10, [x9]
    mov     sp, x10
    ldr     x28, [sp], #16
    ldp     x18, x19, [sp, #16]
    ldp     x20, x21, [sp, #32]
    ldp     x22, x23, [sp, #48]
    ldp     x24, x25, [sp, #64]
    ldp     x26, x27, [sp, #80]
    ldp     x29, x30, [sp], #96
    ret

// Exception vectors (Arm ARM "Exception vectors"): 16 entries of 0x80
// bytes. Each saves x0/x1, then the common code saves the rest and calls
// payload_exception(index, frame), which may change the saved ELR.
.macro ventry idx
    .balign 0x80
    sub     sp, sp, #(34 * 8)
    stp     x0, x1, [sp, #(0 * 8)]
    mov     x0, #\idx
    b       vector_common
.endm

    .balign 0x800
vectors:
    ventry 0
    ventry 1
    ventry 2
    ventry 3
    ventry 4
    ventry 5
    ventry 6
    ventry 7
    ventry 8
    ventry 9
    ventry 10
    ventry 11
    ventry 12
    ventry 13
    ventry 14
    ventry 15

vector_common:
    stp     x2, x3, [sp, #(2 * 8)]
    stp     x4, x5, [sp, #(4 * 8)]
    stp     x6, x7, [sp, #(6 * 8)]
    stp     x8, x9, [sp, #(8 * 8)]
    stp     x10, x11, [sp, #(10 * 8)]
    stp     x12, x13, [sp, #(12 * 8)]
    stp     x14, x15, [sp, #(14 * 8)]
    stp     x16, x17, [sp, #(16 * 8)]
    stp     x18, x19, [sp, #(18 * 8)]
    stp     x20, x21, [sp, #(20 * 8)]
    stp     x22, x23, [sp, #(22 * 8)]
    stp     x24, x25, [sp, #(24 * 8)]
    stp     x26, x27, [sp, #(26 * 8)]
    stp     x28, x29, [sp, #(28 * 8)]
    str     x30, [sp, #(30 * 8)]
    mov     x1, sp
    bl      payload_exception
    ldp     x2, x3, [sp, #(2 * 8)]
    ldp     x4, x5, [sp, #(4 * 8)]
    ldp     x6, x7, [sp, #(6 * 8)]
    ldp     x8, x9, [sp, #(8 * 8)]
    ldp     x10, x11, [sp, #(10 * 8)]
    ldp     x12, x13, [sp, #(12 * 8)]
    ldp     x14, x15, [sp, #(14 * 8)]
    ldp     x16, x17, [sp, #(16 * 8)]
    ldp     x18, x19, [sp, #(18 * 8)]
    ldp     x20, x21, [sp, #(20 * 8)]
    ldp     x22, x23, [sp, #(22 * 8)]
    ldp     x24, x25, [sp, #(24 * 8)]
    ldp     x26, x27, [sp, #(26 * 8)]
    ldp     x28, x29, [sp, #(28 * 8)]
    ldr     x30, [sp, #(30 * 8)]
    ldp     x0, x1, [sp, #(0 * 8)]
    add     sp, sp, #(34 * 8)
    eret

// checked_call(block): one SMCCC call through HVC or SMC with x4..x30 set
// to known values, then a check that they survived.
//   block[0..4]  in:  x0..x3 of the call
//   block[4]     in:  0 = HVC #0, 1 = SMC #0, 2 = HVC #1, 3 = SMC #1
//                     (a non-zero immediate is no SMCCC call, DEN0028)
//   block[5..9]  out: x0..x3 after the call
//   block[9]     out: bit n set = xn changed (n = 4..30); bit 31 = SP changed
.macro fill_reg n
    movz    x\n, #\n
    movk    x\n, #0x4349, lsl #32
    movk    x\n, #0x5053, lsl #48
.endm
.macro check_reg n
    movz    x1, #\n
    movk    x1, #0x4349, lsl #32
    movk    x1, #0x5053, lsl #48
    cmp     x\n, x1
    cset    x2, ne
    orr     x0, x0, x2, lsl #\n
.endm

    .globl checked_call
checked_call:
    stp     x29, x30, [sp, #-96]!
    stp     x18, x19, [sp, #16]
    stp     x20, x21, [sp, #32]
    stp     x22, x23, [sp, #48]
    stp     x24, x25, [sp, #64]
    stp     x26, x27, [sp, #80]
    stp     x28, x0, [sp, #-16]!        // x0: the block, found again via SP
    bl      saved_sp_slot               // x1 = this core's slot
    mov     x2, sp
    str     x2, [x1]
    ldr     x4, [x0, #(4 * 8)]
    cmp     x4, #2
    b.eq    21f
    cmp     x4, #3
    b.eq    22f
    cbnz    x4, 20f

    ldp     x2, x3, [x0, #(2 * 8)]
    ldr     x1, [x0, #(1 * 8)]
    ldr     x0, [x0]
    .irp n, 4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30
    fill_reg \n
    .endr
    hvc     #0
    b       30f

20: ldp     x2, x3, [x0, #(2 * 8)]
    ldr     x1, [x0, #(1 * 8)]
    ldr     x0, [x0]
    .irp n, 4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30
    fill_reg \n
    .endr
    smc     #0
    b       30f

21: ldp     x2, x3, [x0, #(2 * 8)]
    ldr     x1, [x0, #(1 * 8)]
    ldr     x0, [x0]
    .irp n, 4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30
    fill_reg \n
    .endr
    hvc     #1
    b       30f

22: ldp     x2, x3, [x0, #(2 * 8)]
    ldr     x1, [x0, #(1 * 8)]
    ldr     x0, [x0]
    .irp n, 4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30
    fill_reg \n
    .endr
    smc     #1

30: stp     x0, x1, [sp, #-32]!
    stp     x2, x3, [sp, #16]
    mov     x0, #0
    .irp n, 4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30
    check_reg \n
    .endr
    bl      saved_sp_slot
    ldr     x1, [x1]
    add     x2, sp, #32
    cmp     x1, x2
    cset    x2, ne
    orr     x0, x0, x2, lsl #31
    ldr     x9, [sp, #(32 + 8)]         // the block
    str     x0, [x9, #(9 * 8)]
    ldp     x0, x1, [sp]
    ldp     x2, x3, [sp, #16]
    stp     x0, x1, [x9, #(5 * 8)]
    stp     x2, x3, [x9, #(7 * 8)]
    add     sp, sp, #32
    ldp     x28, x0, [sp], #16
    ldp     x18, x19, [sp, #16]
    ldp     x20, x21, [sp, #32]
    ldp     x22, x23, [sp, #48]
    ldp     x24, x25, [sp, #64]
    ldp     x26, x27, [sp, #80]
    ldp     x29, x30, [sp], #96
    ret

// x1 = &saved_sp[Aff1[3:0]:Aff0[3:0]]: the SP at the call, one slot per
// core (the secondary makes calls while the primary does; GICv3 systems
// keep Aff0 below 16). Clobbers x1, x2, x3.
saved_sp_slot:
    mrs     x3, mpidr_el1
    ubfx    x2, x3, #8, #4
    and     x3, x3, #0xf
    orr     x3, x3, x2, lsl #4
    adrp    x1, saved_sp
    add     x1, x1, :lo12:saved_sp
    add     x1, x1, x3, lsl #3
    ret

    .bss
    .balign 8
a32_saved_sp:
    .quad   0
saved_sp:
    .fill   256, 8, 0
