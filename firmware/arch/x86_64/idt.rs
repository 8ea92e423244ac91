//! Exception handling: every CPU exception prints a report and powers the
//! machine off, so a firmware bug never turns into a silent triple-fault
//! reset loop.

use core::arch::global_asm;
use core::mem::size_of;

// Exception stubs push a uniform frame (vector, error code, then the CPU's
// RIP/CS/RFLAGS/RSP/SS) and call `hotstub_exception`. Vectors 8, 10-14, 17,
// 21, 29 and 30 push an error code themselves (Intel SDM vol. 3, table 6-1).
global_asm!(
    r#"
.macro exc_stub n
exc_stub_\n:
    .if !(\n == 8 || (\n >= 10 && \n <= 14) || \n == 17 || \n == 21 || \n == 29 || \n == 30)
    pushq $0
    .endif
    pushq $\n
    jmp exc_common
.endm
.section .text.exceptions, "ax"
.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
exc_stub \n
.endr
exc_common:
    movq %rsp, %rdi
    andq $-16, %rsp
    call hotstub_exception
1:  hlt
    jmp 1b
.section .rodata.exceptions, "a"
.balign 8
.global exc_stub_table
exc_stub_table:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad exc_stub_\n
    .endr
"#,
    options(att_syntax)
);

extern "C" {
    static exc_stub_table: [u64; 32];
}

/// The frame the stubs build.
#[repr(C)]
pub struct ExceptionFrame {
    vector: u64,
    error: u64,
    rip: u64,
    cs: u64,
    rflags: u64,
    rsp: u64,
    ss: u64,
}

#[repr(C, align(16))]
struct Idt([u64; 64]);

static mut IDT: Idt = Idt([0; 64]);

/// Installs the exception handlers.
pub fn init() {
    // SAFETY: a read-only table emitted by the assembly above.
    let stubs = unsafe { &*core::ptr::addr_of!(exc_stub_table) };
    // SAFETY: the IDT is a static written once here before `lidt`, on the
    // only CPU the firmware runs on; its handlers live as long as the
    // firmware. Written in place: a table built on the stack and copied
    // costs two more passes, which `bench --icount` counts.
    unsafe {
        let idt = core::ptr::addr_of_mut!(IDT);
        for (v, &handler) in stubs.iter().enumerate() {
            // 64-bit interrupt gate: present, DPL 0, type 0xE, selector
            // 0x10 (Intel SDM vol. 3, figure 6-8).
            (*idt).0[2 * v] = (handler & 0xffff)
                | (0x10 << 16)
                | (0x8e00u64 << 32)
                | ((handler >> 16) & 0xffff) << 48;
            (*idt).0[2 * v + 1] = handler >> 32;
        }
        let ptr = x86_64::structures::DescriptorTablePointer {
            limit: (size_of::<Idt>() - 1) as u16,
            base: x86_64::VirtAddr::new(idt as u64),
        };
        x86_64::instructions::tables::lidt(&ptr);
    }
}

#[no_mangle]
extern "C" fn hotstub_exception(frame: &ExceptionFrame) -> ! {
    let cr2 = x86_64::registers::control::Cr2::read_raw();
    hotstub::boot::pipeline::report(&format_args!(
        "CPU exception {} (error {:#x}) at RIP {:#x}, RSP {:#x}, CR2 {:#x}, CS {:#x}, RFLAGS {:#x}, SS {:#x}",
        frame.vector, frame.error, frame.rip, frame.rsp, cr2, frame.cs, frame.rflags, frame.ss
    ));
    super::power_off()
}
