//! Loading Linux for the x86 boot protocol (Documentation/arch/x86/boot.rst):
//! kernel, command line and initrd placed in RAM, and the 64-bit entry.

use super::*;
use hotstub::boot::payload::Source as _;

/// The kernel in memory: its validated header, the setup blob the zero
/// page is built from, and where everything went.
pub(super) struct LoadedLinux {
    pub kernel: Kernel,
    pub setup: Vec<u8>,
    pub params: BootParams,
}

/// Loads kernel, command line and initrd from fw_cfg.
pub(super) fn load_linux(
    fw: &mut FwCfg<PioFwCfg>,
    map: &MemoryMap,
    rsdp: u64,
) -> Result<LoadedLinux> {
    use fw_cfg::key;
    let kernel_size = fw.kernel_size("bzImage")?;
    let setup_size = fw.read_u32(key::SETUP_SIZE) as u64;
    // The setup part is at most 0x7f sectors plus the boot sector (boot.rst);
    // anything else is not a bzImage, but read its header first so the error
    // says why.
    let mut setup = vec![0u8; setup_size.min(0x80 * 512) as usize];
    fw.read(key::SETUP_DATA, &mut setup)
        .map_err(|e| hotstub::err!("reading kernel setup: {e}"))?;
    let mut kernel = Kernel::parse(&setup)?;
    if setup_size > 0x80 * 512 {
        bail!(
            "kernel setup part of {} bytes is too large for a bzImage",
            setup_size
        );
    }
    // Never below the end of the firmware's own RAM, whatever the kernel
    // prefers.
    kernel.place_above(layout::FIRMWARE.1, kernel_size)?;
    let footprint = kernel.footprint(kernel_size);
    if !map.is_ram(kernel.load_addr, footprint) {
        bail!(
            "kernel needs {} MiB of RAM at {:#x}; not enough memory",
            mib(footprint),
            kernel.load_addr
        );
    }
    // SAFETY: RAM above the firmware and below 4 GiB, checked above.
    fw.load_kernel(unsafe { ram_slice(kernel.load_addr, kernel_size) })?;

    let limit = (kernel.cmdline_size as u64 + 1).min(layout::CMDLINE_MAX);
    let text = fw.cmdline(limit as usize)?;
    // SAFETY: the command line slot in low RAM (layout).
    let slot = unsafe { ram_slice(layout::CMDLINE, limit) };
    slot.fill(0);
    // The slot keeps a terminating NUL (boot.rst cmdline_size).
    let n = text.len().min(limit as usize - 1);
    slot[..n].copy_from_slice(&text[..n]);

    let initrd_size = fw.initrd_size();
    let mut initrd_addr = 0;
    if initrd_size > 0 {
        let limit = (kernel.initrd_addr_max + 1).min(map.ram_end_below_4g());
        let avoid = [
            (0, layout::FIRMWARE.1),
            (kernel.load_addr, kernel.load_addr + footprint),
            (layout::ACPI.0, layout::ACPI.1),
        ];
        let Some(a) = map.find_top(initrd_size, 0x1000, limit, &avoid) else {
            bail!(
                "initrd of {} MiB does not fit in RAM below {} MiB next to the kernel",
                mib(initrd_size),
                limit >> 20
            );
        };
        initrd_addr = a;
        // SAFETY: RAM chosen by find_top clear of firmware, kernel and tables.
        fw.load_initrd(unsafe { ram_slice(initrd_addr, initrd_size) })?;
    }
    let params = BootParams {
        cmdline_addr: layout::CMDLINE,
        initrd_addr,
        initrd_size,
        rsdp_addr: rsdp,
    };
    Ok(LoadedLinux {
        kernel,
        setup,
        params,
    })
}

/// Enters the kernel's 64-bit entry point (boot.rst "64-bit Boot Protocol"):
/// identity-mapped, interrupts off, %rsi = zero page, boot GDT loaded.
pub(super) fn jump_to_linux(entry: u64, zero_page: u64) -> Result<Never> {
    // SAFETY: the kernel and its zero page are in place; control never
    // returns to the firmware.
    unsafe {
        core::arch::asm!(
            "cli",
            "xor ebp, ebp",
            "jmp {entry}",
            entry = in(reg) entry,
            in("rsi") zero_page,
            options(noreturn)
        )
    }
}
