//! The hardware access the boot path and the resident firmware share on arm
//! virt: registers, MMIO devices, PSCI calls, raw memory. Code that touches
//! hardware of its own (entry, MMU, EL2/EL3 set-up) has its own `unsafe`.

use core::arch::asm;
use core::fmt;
use core::ptr::{read_volatile, write_volatile};
use hotstub::psci::Conduit;

use hotstub::platform::fw_cfg::Transport;

/// The exception level the firmware runs at (CurrentEL bits 3:2).
pub fn current_el() -> u8 {
    let el: u64;
    // SAFETY: reading CurrentEL has no side effects and is allowed at EL1+.
    unsafe { asm!("mrs {}, CurrentEL", out(reg) el, options(nomem, nostack)) };
    ((el >> 2) & 3) as u8
}

/// The virtual counter and its frequency (Arm ARM D12, generic timer).
pub fn counter() -> (u64, u64) {
    let (cnt, frq): (u64, u64);
    // SAFETY: counter reads have no side effects; `isb` keeps the read from
    // being hoisted before earlier work.
    unsafe {
        asm!("isb", "mrs {}, cntvct_el0", "mrs {}, cntfrq_el0",
             out(reg) cnt, out(reg) frq, options(nomem, nostack))
    };
    (cnt, frq)
}

/// Syndrome, link and fault address registers of the current EL.
pub fn fault_registers() -> (u64, u64, u64) {
    let (esr, elr, far): (u64, u64, u64);
    // SAFETY: reads of the current EL's own exception registers.
    unsafe {
        match current_el() {
            3 => asm!("mrs {}, esr_el3", "mrs {}, elr_el3", "mrs {}, far_el3",
                 out(reg) esr, out(reg) elr, out(reg) far, options(nomem, nostack)),
            2 => asm!("mrs {}, esr_el2", "mrs {}, elr_el2", "mrs {}, far_el2",
                 out(reg) esr, out(reg) elr, out(reg) far, options(nomem, nostack)),
            _ => asm!("mrs {}, esr_el1", "mrs {}, elr_el1", "mrs {}, far_el1",
                 out(reg) esr, out(reg) elr, out(reg) far, options(nomem, nostack)),
        }
    }
    (esr, elr, far)
}

/// Makes an SMCCC call with one argument and returns x0.
pub fn smccc(conduit: Conduit, fid: u32, a1: u64, a2: u64, a3: u64) -> i64 {
    let mut x0 = fid as u64;
    // SAFETY: an SMCCC call to the VMM's PSCI; SMCCC 1.1 lets the callee
    // clobber x0-x17, which are declared clobbered.
    unsafe {
        match conduit {
            Conduit::Hvc => asm!("hvc #0", inout("x0") x0, inout("x1") a1 => _,
                inout("x2") a2 => _, inout("x3") a3 => _,
                out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _,
                out("x9") _, out("x10") _, out("x11") _, out("x12") _, out("x13") _,
                out("x14") _, out("x15") _, out("x16") _, out("x17") _, options(nostack)),
            Conduit::Smc => asm!("smc #0", inout("x0") x0, inout("x1") a1 => _,
                inout("x2") a2 => _, inout("x3") a3 => _,
                out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _,
                out("x9") _, out("x10") _, out("x11") _, out("x12") _, out("x13") _,
                out("x14") _, out("x15") _, out("x16") _, out("x17") _, options(nostack)),
        }
    }
    x0 as i64
}

/// Exception kinds by vector index within a group of four (Arm ARM D1.10.2).
pub const EXCEPTION_KIND: [&str; 4] = ["synchronous", "IRQ", "FIQ", "SError"];

/// Waits for an interrupt that never comes, for good.
pub fn halt() -> ! {
    loop {
        // SAFETY: wfi only idles the CPU; interrupts are masked (reset DAIF).
        unsafe { asm!("wfi", options(nomem, nostack)) };
    }
}

/// Enters a Linux arm64 Image at the current EL with the MMU and caches
/// turned back off, interrupts masked, x0 = DT, x1-x3 = 0 (Linux
/// booting.rst). Everything the kernel reads that the firmware wrote with
/// caches on must already be cleaned to PoC (`mmu::clean_to_poc`).
///
/// # Safety
/// `entry` must be a loaded, validated Image and `dt` a valid DT; neither
/// may overlap memory the firmware still needs (it needs none afterwards).
pub unsafe fn enter_kernel(el: u8, entry: u64, dt: u64) -> ! {
    // SCTLR_ELx bits cleared: M (0), C (2), I (12). Nothing after the
    // `msr` touches memory through the stack, whose cached lines would now
    // be bypassed. The I-cache and TLBs are invalidated so no stale entry
    // for the freshly loaded Image survives (booting.rst).
    macro_rules! leave {
        ($sctlr:literal, $tlbi:literal) => {
            // SAFETY: by the caller's contract; identity map, so the next
            // instruction is fetched from the same address with the MMU off.
            unsafe {
                asm!(
                    // x4 is free: the asm never returns.
                    concat!("mrs x4, ", $sctlr),
                    "bic x4, x4, #1",
                    "bic x4, x4, #4",
                    "bic x4, x4, #0x1000",
                    concat!("msr ", $sctlr, ", x4"),
                    "isb",
                    "ic iallu",
                    $tlbi,
                    "dsb sy",
                    "isb",
                    "mov x1, xzr",
                    "mov x2, xzr",
                    "mov x3, xzr",
                    "br x5",
                    in("x5") entry,
                    in("x0") dt,
                    options(noreturn),
                )
            }
        };
    }
    match el {
        2 => leave!("sctlr_el2", "tlbi alle2"),
        3 => leave!("sctlr_el3", "tlbi alle3"),
        _ => leave!("sctlr_el1", "tlbi vmalle1"),
    }
}

/// The DT blob at `addr`, if there is one (magic and a sane totalsize).
///
/// # Safety
/// `addr` must be readable memory for at least the header, and for the
/// header's totalsize when the magic matches.
pub unsafe fn dt_blob(addr: u64) -> Option<&'static [u8]> {
    // Linux booting.rst caps a DT at 2 MiB; anything larger is not one.
    const MAX_DT: usize = 2 << 20;
    // SAFETY: the header is readable by the caller's contract.
    let head = unsafe { core::slice::from_raw_parts(addr as *const u8, 8) };
    let magic = u32::from_be_bytes(head[0..4].try_into().ok()?);
    let size = u32::from_be_bytes(head[4..8].try_into().ok()?) as usize;
    if magic != hotstub::platform::dt::FDT_MAGIC || size > MAX_DT {
        return None;
    }
    // SAFETY: totalsize bytes are readable by the caller's contract.
    let all = unsafe { core::slice::from_raw_parts(addr as *const u8, size) };
    hotstub::platform::dt::blob_at(all)
}

/// Microseconds on the virtual counter.
pub fn counter_us() -> u64 {
    let (t, f) = counter();
    (u128::from(t) * 1_000_000 / u128::from(f.max(1))) as u64
}

/// The firmware image as it sits in flash at 0: its first 16 bytes, read
/// with an instruction (a Rust slice cannot start at address 0), and the
/// rest.
pub fn flash_image() -> ([u8; 16], &'static [u8]) {
    let (a, b): (u64, u64);
    // SAFETY: flash bank 0 is mapped at 0 (the firmware runs from it) and
    // holds at least the 16-byte-aligned image start.
    unsafe {
        asm!("ldp {}, {}, [{}]", out(reg) a, out(reg) b, in(reg) 0u64,
             options(nostack, readonly))
    };
    let mut head = [0u8; 16];
    head[..8].copy_from_slice(&a.to_le_bytes());
    head[8..].copy_from_slice(&b.to_le_bytes());
    let end = layout::image_end().max(16);
    // SAFETY: [16, end) is the rest of the image in the same flash.
    let rest = unsafe { core::slice::from_raw_parts(16 as *const u8, end as usize - 16) };
    (head, rest)
}

/// Linker-script symbols.
pub mod layout {
    extern "C" {
        static __handoff_acpi: u8;
        static __handoff_efi: u8;
        static __handoff_dt: u8;
        static __handoff_end: u8;
        static __fw_ram_start: u8;
        static __fw_ram_end: u8;
        static __stack_bottom: u8;
        static __image_end: u8;
        static __heap_start: u8;
    }
    // Only the symbols' addresses are taken (no unsafe needed for that).
    use core::ptr::addr_of;
    pub fn handoff_acpi() -> u64 {
        addr_of!(__handoff_acpi) as u64
    }
    pub fn handoff_efi() -> u64 {
        addr_of!(__handoff_efi) as u64
    }
    pub fn handoff_dt() -> u64 {
        addr_of!(__handoff_dt) as u64
    }
    pub fn handoff_end() -> u64 {
        addr_of!(__handoff_end) as u64
    }
    /// The end of the firmware's static data, page aligned: the heap's
    /// region starts there.
    pub fn data_end() -> u64 {
        addr_of!(__heap_start) as u64
    }
    pub fn stack_bottom() -> u64 {
        addr_of!(__stack_bottom) as u64
    }
    /// The image's end in flash (it starts at 0).
    pub fn image_end() -> u64 {
        addr_of!(__image_end) as u64
    }
    pub fn fw_ram() -> (u64, u64) {
        (
            addr_of!(__fw_ram_start) as u64,
            addr_of!(__fw_ram_end) as u64,
        )
    }
}

/// ARM PL011 UART, transmit only (PL011 TRM: UARTDR 0x000, UARTFR 0x018,
/// FR.TXFF bit 5). QEMU's PL011 needs no setup to transmit.
pub struct Pl011 {
    base: u64,
}

impl Pl011 {
    /// # Safety
    /// `base` must be a PL011's MMIO base.
    pub const unsafe fn new(base: u64) -> Self {
        Pl011 { base }
    }

    fn put(&mut self, b: u8) {
        const DR: u64 = 0x000;
        const FR: u64 = 0x018;
        const FR_TXFF: u32 = 1 << 5;
        // SAFETY: the PL011 registers exist at `base` (constructor contract).
        unsafe {
            while read_volatile((self.base + FR) as *const u32) & FR_TXFF != 0 {}
            write_volatile((self.base + DR) as *mut u32, b as u32);
        }
    }
}

impl fmt::Write for Pl011 {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            self.put(b);
        }
        Ok(())
    }
}

/// fw_cfg on arm virt: MMIO data register at +0 (read byte-wise: the data
/// register streams the item's bytes in order), selector at +8 (16-bit
/// big-endian), DMA address at +16 (64-bit big-endian; writing it starts
/// the transfer). QEMU `docs/specs/fw_cfg.rst`, "Memory-Mapped".
pub struct FwCfgMmio {
    base: u64,
}

impl FwCfgMmio {
    /// # Safety
    /// `base` must be the fw_cfg device's MMIO base.
    pub unsafe fn new(base: u64) -> Self {
        FwCfgMmio { base }
    }
}

impl Transport for FwCfgMmio {
    fn select(&mut self, key: u16) {
        // SAFETY: selector register of the device (constructor contract).
        unsafe { write_volatile((self.base + 8) as *mut u16, key.to_be()) }
    }
    fn read_data(&mut self, buf: &mut [u8]) {
        for b in buf {
            // SAFETY: data register of the device (constructor contract).
            *b = unsafe { read_volatile(self.base as *const u8) };
        }
    }
    fn start_dma(&mut self, descriptor_phys: u64) {
        // SAFETY: DMA address register; a 64-bit write of the big-endian
        // address starts the transfer (fw_cfg.rst).
        unsafe { write_volatile((self.base + 16) as *mut u64, descriptor_phys.to_be()) }
    }
}

/// A PL061 output line the DT names (power-off, restart): recorded once
/// while the firmware parses the DT, raised later from any CPU.
pub struct GpioLine(spin::Once<(u64, u32)>);

impl GpioLine {
    pub const fn new() -> Self {
        GpioLine(spin::Once::new())
    }

    /// Records the line; a PL061 has pins 0..8, others are ignored.
    ///
    /// # Safety
    /// `base` must be a PL061's MMIO base, mapped whenever `raise` runs.
    pub unsafe fn set(&self, base: u64, pin: u32) {
        if pin < 8 {
            self.0.call_once(|| (base, pin));
        }
    }

    /// Drives the line high if one was recorded; false if there is none
    /// (PrimeCell PL061 TRM: GPIODIR at 0x400, 1 = output; GPIODATA at
    /// 0x000 where address bits 9:2 mask the written pins). QEMU virt's
    /// secure GPIO turns such edges into power-off/reset.
    pub fn raise(&self) -> bool {
        let Some(&(base, pin)) = self.0.get() else {
            return false;
        };
        let bit = 1u32 << pin;
        // SAFETY: a PL061's registers by `set`'s contract, a pin it checked.
        unsafe {
            let dir = (base + 0x400) as *mut u32;
            write_volatile(dir, read_volatile(dir) | bit);
            write_volatile((base + ((bit as u64) << 2)) as *mut u32, bit);
        }
        true
    }
}
