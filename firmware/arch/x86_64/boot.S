/*
 * x86_64 boot stub: reset vector -> protected mode -> long mode -> Rust.
 *
 * Runs from the ROM at its link address (linker/x86_64.ld). It maps the
 * low 4 GiB and the ROM again at the top of the address space, enters
 * 64-bit mode, copies the firmware's data to RAM and enters
 * `hotstub_main`, which runs in place from the ROM. (Disk boot's code
 * stays in the ROM, deflated, until needed, arch/x86_64/disk_code.rs.)
 */

/* Without 1 GiB pages the page tables live in conventional memory below
 * the firmware's RAM image: PML4 at 0x1000, one PDPT at 0x2000, four page
 * directories at 0x3000..0x6fff mapping 0..4 GiB with 2 MiB pages. Kept
 * in sync with the comment in arch/x86_64/mod.rs `layout`. */
.set PML4, 0x1000
.set PDPT, 0x2000
.set PD0, 0x3000
/* The last 2 MiB of the address space, where the ROM's code runs
 * (linker/x86_64.ld .xip): a page directory after the zero page
 * (0x7000), reached through the PDPT's last entry (PML4 entries 0 and
 * 511 share the PDPT). */
.set PD_HI, 0x8000
/* The physical 2 MiB the last 2 MiB of the address space map: the ROM's
 * on the reset path, the RAM the PVH ELF loads the ROM part to on the PVH
 * entry (xtask/src/pvh_elf.rs XIP_PVH, and layout::FIRMWARE covers it). */
.set ROM_2M, 0xffe00000
.set XIP_PVH, 0x400000

/* GDT selectors. 0x10 and 0x18 are what the Linux 64-bit boot protocol wants
 * for __BOOT_CS and __BOOT_DS (Documentation/arch/x86/boot.rst). */
.set CODE32_SEL, 0x08
.set CODE64_SEL, 0x10
.set DATA_SEL, 0x18

/* CR0/CR4/EFER bits (Intel SDM vol. 3, 2.5 and 2.2.1). */
.set CR0_PE, 1 << 0
.set CR0_NW, 1 << 29
.set CR0_CD, 1 << 30
.set CR0_PG, 1 << 31
.set CR4_PAE, 1 << 5
.set MSR_EFER, 0xc0000080
.set EFER_LME, 1 << 8

/* 32-bit protected mode to 64-bit long mode through an identity map of
 * 0..4 GiB (Intel SDM vol. 3, 9.8.5). `identity_2m` builds one with 2 MiB
 * pages: the reset path (when the CPU has no 1 GiB pages) and the PVH
 * entry each have their own tables, hence the parameters. Only the PML4
 * and the PDPT are cleared: the loop writes every entry of the four page
 * directories, their high halves too when `clear_high` is 1 (memory a
 * loader handed over may hold anything; the reset path's directories lie
 * in the first MiB, which Linux keeps reserved since 5.13, so they hold
 * zeros or the previous boot's tables). */
.macro identity_2m pml4, pdpt, pd, clear_high, pd_hi, hi_phys
    /* The top 2 MiB: PML4 entry 511 (the same PDPT), PDPT entry 511, page
     * directory entry 511. The PDPT's last entry also maps 511 GiB up
     * from 0, which nothing uses. */
    movl $\pd_hi, %edi
    movl $(4096 / 4), %ecx
    xorl %eax, %eax
    rep stosl
    movl $(\hi_phys + 0x83), \pd_hi + 511 * 8
    movl $\pml4, %edi
    movl $(2 * 4096 / 4), %ecx
    xorl %eax, %eax
    rep stosl
    movl $(\pdpt + 0x3), \pml4
    movl $(\pdpt + 0x3), \pml4 + 511 * 8
    movl $(\pd_hi + 0x3), \pdpt + 511 * 8
    movl $(\pd + 0x0000 + 0x3), \pdpt + 0
    movl $(\pd + 0x1000 + 0x3), \pdpt + 8
    movl $(\pd + 0x2000 + 0x3), \pdpt + 16
    movl $(\pd + 0x3000 + 0x3), \pdpt + 24
    movl $\pd, %edi
    movl $0x83, %eax            /* present, writable, 2 MiB page */
    movl $2048, %ecx
1:  movl %eax, (%edi)
.if \clear_high
    movl $0, 4(%edi)
.endif
    addl $0x200000, %eax
    addl $8, %edi
    loop 1b
.endm

/* Paging on with the tables at `pml4`, then the jump to 64-bit code. */
.macro enter_long_mode pml4, target
    movl %cr4, %eax
    orl $CR4_PAE, %eax
    movl %eax, %cr4
    movl $\pml4, %eax
    movl %eax, %cr3
    movl $MSR_EFER, %ecx
    rdmsr
    orl $EFER_LME, %eax
    wrmsr
    movl %cr0, %eax
    orl $CR0_PG, %eax
    movl %eax, %cr0
    ljmpl $CODE64_SEL, $\target
.endm

.section .boot16, "ax"
.code16
boot16:
    cli
    cld
    /* In real mode after reset CS.base is 0xffff0000, so the descriptor is
     * addressed relative to that base. */
    lgdtl %cs:(gdt_desc - 0xffff0000)
    movl %cr0, %eax
    andl $~(CR0_CD | CR0_NW), %eax
    orl $CR0_PE, %eax
    movl %eax, %cr0
    ljmpl $CODE32_SEL, $boot32

.section .boot32, "ax"
.code32
boot32:
    movw $DATA_SEL, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs

    /* Without long mode (QEMU isapc's default 486) nothing below can run:
     * CPUID 0x80000001 EDX bit 29 is LM (Intel SDM vol. 2, CPUID). */
    movl $0x80000000, %eax
    cpuid
    cmpl $0x80000001, %eax
    jb no_long_mode
    movl $0x80000001, %eax
    cpuid
    btl $29, %edx
    jnc no_long_mode

    /* Fast A20 gate (port 0x92 bit 1); bit 0 would reset the machine. */
    inb $0x92, %al
    orb $0x02, %al
    andb $0xfe, %al
    outb %al, $0x92

    /* With 1 GiB pages (CPUID 0x80000001 EDX bit 26, Page1GB; EDX still
     * holds that leaf) the ROM's own tables below map the low 4 GiB and
     * nothing is built: the 2 MiB tables cost about 10,000 instructions,
     * which `bench --icount` counts (QEMU's -cpu max and host CPUs have
     * 1 GiB pages; qemu64 does not). */
    btl $26, %edx
    jnc 1f
    enter_long_mode rom_pml4, boot64
1:  identity_2m PML4, PDPT, PD0, 0, PD_HI, ROM_2M
    enter_long_mode PML4, boot64

/* In long mode, still in the ROM: copy the firmware's data (and the entry
 * code and the PVH entry, which must run from RAM) to RAM, clear .bss,
 * then enter Rust through the copy. Code and read-only data are not
 * copied: they run in place (linker/x86_64.ld .xip). Eight bytes a step,
 * which is why this waits for long mode: TCG's -icount counts every step
 * of a rep string instruction (both sizes are multiples of 16,
 * linker/x86_64.ld). */
.code64
boot64:
    movw $DATA_SEL, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movl $_image_lma, %esi
    movl $_image_start, %edi
    movl $_image_size, %ecx
    shrl $3, %ecx
    rep movsq
    movl $_bss_start, %edi
    movl $_bss_size, %ecx
    shrl $3, %ecx
    xorl %eax, %eax
    rep stosq
    /* entry64 lies in RAM below 4 GiB, beyond a rel32 jump from here. */
    movl $entry64, %eax
    jmp *%rax
.code32

/* The one fatal line before Rust runs, on COM1 as-is: QEMU's 16550
 * transmits a THR write without any set-up (LCR.DLAB is 0 at reset). Then
 * a triple fault (an exception with the null descriptor as IDT), the reset
 * every x86 machine has, which QEMU's -no-reboot turns into an exit. */
no_long_mode:
    movl $no_long_mode_msg, %esi
    movw $0x3f8, %dx
1:  lodsb
    testb %al, %al
    jz 2f
    outb %al, %dx
    jmp 1b
2:  lidt gdt
    int3
no_long_mode_msg:
    .asciz "hotstub: error: unsupported CPU: no 64-bit long mode (QEMU: -M q35 with a 64-bit -cpu)\r\n"

/* The GDT stays in ROM: its accessed bits are preset so the CPU never needs
 * to write it. */
.balign 8
gdt:
    .quad 0
    .quad 0x00cf9b000000ffff    /* 0x08: 32-bit code, flat */
    .quad 0x00af9b000000ffff    /* 0x10: 64-bit code */
    .quad 0x00cf93000000ffff    /* 0x18: data, flat */
gdt_end:
.global gdt_desc
gdt_desc:
    .word gdt_end - gdt - 1
    .long gdt

/* The reset path's tables with 1 GiB pages, in the ROM: a PML4 whose
 * first entry points to a PDPT of four 1 GiB pages, 0..4 GiB. Their
 * accessed and dirty bits are preset (0x23: present, writable, accessed;
 * 0xe3: also dirty and page size, Intel SDM vol. 3 tables 4-15 and 4-16)
 * so the CPU never writes the ROM, as with the GDT. Nothing changes them:
 * the 2 MiB mappings past 4 GiB (paging.rs) are cloud-hypervisor's, on
 * the PVH entry's tables. */
.section .rom_tables, "a"
.balign 4096
rom_pml4:
    .quad rom_pdpt + 0x23
    .fill 510, 8, 0
    .quad rom_pdpt + 0x23
/* Entry 511 maps the top GiB of the address space (through PML4 entry
 * 511) onto the top GiB below 4 GiB, where the ROM's code runs
 * (linker/x86_64.ld .xip); through PML4 entry 0 it also maps 511 GiB up,
 * which nothing uses. */
rom_pdpt:
    .quad 0x00000000 + 0xe3
    .quad 0x40000000 + 0xe3
    .quad 0x80000000 + 0xe3
    .quad 0xc0000000 + 0xe3
    .fill 507, 8, 0
    .quad 0xc0000000 + 0xe3

.section .reset, "ax"
.code16
.global reset_vector
reset_vector:
    jmp boot16

.section .text.entry64, "ax"
.code64
entry64:
    movw $DATA_SEL, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    movq $_stack_top, %rsp
    xorl %ebp, %ebp
    call hotstub_main
2:  hlt
    jmp 2b

/*
 * PVH entry (Xen's docs/misc/pvh.pandoc, the protocol cloud-hypervisor's
 * --firmware and QEMU's PVH option ROM follow): 32-bit protected mode,
 * paging off, flat code and data segments, EBX = the start info, and no
 * stack (cloud-hypervisor leaves ESP at 0). The ELF xtask writes loads the
 * RAM image at its link address (there is no ROM), so this runs from RAM
 * with its own GDT and page tables: the low ones at 0x1000 would cover
 * the start info, which cloud-hypervisor puts at 0x6000.
 */
.section .text.pvh, "ax"
.code32
.global pvh_entry
pvh_entry:
    cli
    cld
    /* The start info stays in ESI until Rust gets it. */
    movl %ebx, %esi
    lgdtl pvh_gdt_desc
    ljmpl $CODE32_SEL, $1f
1:  movw $DATA_SEL, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    movl $_stack_top, %esp

    identity_2m _pvh_pml4, _pvh_pdpt, _pvh_pd, 1, _pvh_pd_hi, XIP_PVH
    enter_long_mode _pvh_pml4, pvh64

.code64
pvh64:
    movw $DATA_SEL, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    /* The loader placed code and data; .bss is not in the ELF. */
    movl $_bss_start, %edi
    movl $_bss_size, %ecx
    shrl $3, %ecx
    xorl %eax, %eax
    rep stosq
    movq $_stack_top, %rsp
    xorl %ebp, %ebp
    movl %esi, %edi
    call hotstub_pvh_main
2:  hlt
    jmp 2b

/* The boot GDT again, in RAM: same selectors (Linux's 64-bit entry wants
 * 0x10 and 0x18). */
.balign 8
pvh_gdt:
    .quad 0
    .quad 0x00cf9b000000ffff
    .quad 0x00af9b000000ffff
    .quad 0x00cf93000000ffff
pvh_gdt_end:
pvh_gdt_desc:
    .word pvh_gdt_end - pvh_gdt - 1
    .long pvh_gdt
