//! `hotstub-vclock`: a static Linux program (no libc) for the test
//! initramfs. It reads the CPU counter that QEMU's TCG drives from the VM's
//! virtual clock and writes one line, `hotstub-vclock count=<n> hz=<n>`, to
//! its standard output and exits. The init sends that line to /dev/kmsg, so
//! the record's printk timestamp (the kernel's `local_clock`) pairs with the
//! counter read a few hundred instructions earlier: `cargo xtask bench
//! --icount` gets from the two the VM's virtual time at init and at the
//! start of the kernel's clock.
//!
//! - x86_64: RDTSC. QEMU's TCG returns the virtual clock in ns as the TSC
//!   (target/i386 `cpu_get_tsc`, which is `cpus_get_elapsed_ticks`), so
//!   `hz=0` says "nanoseconds, no frequency register".
//! - aarch64: CNTVCT_EL0 and CNTFRQ_EL0 (Arm ARM D12.1); Linux lets EL0 read
//!   the virtual counter (CNTKCTL_EL1.EL0VCTEN, for the vDSO), and QEMU
//!   derives the count from the virtual clock (target/arm
//!   `gt_get_countervalue`).
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("hotstub-vclock is built for the guest (cargo xtask bench --icount)");
    std::process::exit(2);
}

#[cfg(target_os = "none")]
mod guest {
    /// The counter and its frequency in Hz (0: the count is in ns).
    #[cfg(target_arch = "x86_64")]
    fn counter() -> (u64, u64) {
        // SAFETY: RDTSC only reads the time-stamp counter; Linux leaves it
        // readable at CPL 3 (CR4.TSD clear).
        (unsafe { core::arch::x86_64::_rdtsc() }, 0)
    }

    #[cfg(target_arch = "aarch64")]
    fn counter() -> (u64, u64) {
        let (count, hz): (u64, u64);
        // SAFETY: reads two EL0-readable timer registers; the ISB keeps the
        // counter read from being taken early (Arm ARM D12.2.1).
        unsafe {
            core::arch::asm!(
                "isb",
                "mrs {c}, cntvct_el0",
                "mrs {f}, cntfrq_el0",
                c = out(reg) count,
                f = out(reg) hz,
                options(nomem, nostack)
            );
        }
        (count, hz)
    }

    /// write(2) of the whole buffer to fd 1, then exit(2) with 0; Linux
    /// system call numbers from arch/x86/entry/syscalls/syscall_64.tbl
    /// (write 1, exit 60) and include/uapi/asm-generic/unistd.h (write 64,
    /// exit 93).
    #[cfg(target_arch = "x86_64")]
    fn write_and_exit(buf: &[u8]) -> ! {
        // SAFETY: the kernel reads `buf` (valid for its length) and then
        // ends the process; RCX and R11 are the registers SYSCALL clobbers.
        unsafe {
            core::arch::asm!("syscall", inlateout("rax") 1usize => _, in("rdi") 1usize,
                in("rsi") buf.as_ptr(), in("rdx") buf.len(), lateout("rcx") _, lateout("r11") _,
                options(nostack));
            core::arch::asm!("syscall", in("rax") 60usize, in("rdi") 0usize, options(noreturn, nostack));
        }
    }

    #[cfg(target_arch = "aarch64")]
    fn write_and_exit(buf: &[u8]) -> ! {
        // SAFETY: as for x86_64; SVC #0 with the number in X8, result in X0.
        unsafe {
            core::arch::asm!("svc #0", in("x8") 64usize, inlateout("x0") 1usize => _,
                in("x1") buf.as_ptr(), in("x2") buf.len(), options(nostack));
            core::arch::asm!("svc #0", in("x8") 93usize, in("x0") 0usize, options(noreturn, nostack));
        }
    }

    /// Appends `v` in decimal at `buf[at..]`; returns the new end.
    fn decimal(buf: &mut [u8], at: usize, mut v: u64) -> usize {
        let mut digits = [0u8; 20];
        let mut n = 0;
        loop {
            digits[n] = b'0' + (v % 10) as u8;
            n += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        for (i, d) in digits[..n].iter().rev().enumerate() {
            buf[at + i] = *d;
        }
        at + n
    }

    fn append(buf: &mut [u8], at: usize, s: &[u8]) -> usize {
        buf[at..at + s.len()].copy_from_slice(s);
        at + s.len()
    }

    #[no_mangle]
    extern "C" fn _start() -> ! {
        let (count, hz) = counter();
        let mut line = [0u8; 80];
        let mut n = append(&mut line, 0, b"hotstub-vclock count=");
        n = decimal(&mut line, n, count);
        n = append(&mut line, n, b" hz=");
        n = decimal(&mut line, n, hz);
        n = append(&mut line, n, b"\n");
        write_and_exit(&line[..n])
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo) -> ! {
        write_and_exit(b"hotstub-vclock failed\n")
    }
}
