//! Loading Linux for the x86 boot protocol (Documentation/arch/x86/boot.rst):
//! kernel, command line and initrd placed in RAM, and the 64-bit entry.

use super::*;
use hotstub::boot::payload::Source;
use hotstub::disk::DiskPayload;

/// The kernel in memory: its validated header, the setup blob the zero
/// page is built from, and where everything went.
pub(super) struct LoadedLinux {
    pub kernel: Kernel,
    /// The setup part: all of it when measured, else its first
    /// [`SETUP_HEAD`] bytes (load_linux).
    pub setup: Vec<u8>,
    /// The protected-mode kernel's size as loaded at `kernel.load_addr`.
    pub kernel_size: u64,
    pub params: BootParams,
}

/// Writes the zero page for `linux` into its slot (layout::ZERO_PAGE),
/// with `map` as its e820.
pub(super) fn place_zero_page(linux: &LoadedLinux, map: &MemoryMap) {
    // SAFETY: the zero page slot is low RAM reserved for it (layout), page
    // aligned; on cloud-hypervisor the start info next to it was read in
    // `discover`.
    unsafe { zero_qwords(layout::ZERO_PAGE, ZERO_PAGE_LEN / 8) };
    // SAFETY: as above.
    let slot = unsafe { ram_slice(layout::ZERO_PAGE, ZERO_PAGE_LEN as u64) };
    if let Ok(z) = slot.try_into() {
        linux
            .kernel
            .write_zero_page(z, &linux.setup, &linux.params, map);
    }
}

/// Clears `n` eight-byte words at `addr` with `rep stosq`, one counted
/// step a word (LLVM's own fill of a 4 KiB page steps four bytes at a
/// time, twice the steps `bench --icount` counts).
///
/// # Safety
/// `[addr, addr + 8n)` is RAM nothing else refers to.
unsafe fn zero_qwords(addr: u64, n: usize) {
    // SAFETY: the caller's contract; DF is clear (boot.S `cld`, and the
    // ABI keeps it so).
    unsafe {
        core::arch::asm!(
            "rep stosq",
            inout("rdi") addr => _,
            inout("rcx") n => _,
            in("rax") 0u64,
            options(nostack),
        )
    }
}

/// Where the bzImage comes from: QEMU splits a `-kernel` into its setup
/// part and the rest (fw_cfg's SETUP_* and KERNEL_* items, see
/// hw/i386/x86-common.c x86_load_linux); a disk has the file as it is.
pub(super) enum Payload<'a> {
    FwCfg(&'a mut FwCfg<PioFwCfg>),
    Disk(&'a mut DiskPayload),
}

impl Payload<'_> {
    fn source(&mut self) -> &mut dyn Source {
        match self {
            Payload::FwCfg(f) => *f,
            Payload::Disk(d) => *d,
        }
    }

    /// The setup part's size and the protected-mode kernel's.
    fn sizes(&mut self) -> Result<(u64, u64)> {
        match self {
            Payload::FwCfg(fw) => {
                let kernel = fw.kernel_size("bzImage")?;
                Ok((u64::from(fw.read_u32(fw_cfg::key::SETUP_SIZE)), kernel))
            }
            Payload::Disk(d) => {
                let total = d.kernel_size("bzImage")?;
                let mut head = [0u8; 0x200];
                if total < head.len() as u64 {
                    bail!("kernel of {total} bytes is not a bzImage");
                }
                d.kernel_head(&mut head)?;
                // setup_sects, and 0 meaning 4 (boot.rst, "The Real-Mode
                // Kernel Header"); the boot sector comes on top.
                let sects = match head[0x1f1] {
                    0 => 4,
                    n => u64::from(n),
                };
                let setup = (sects + 1) * 512;
                if total <= setup {
                    bail!("kernel of {total} bytes is not a bzImage");
                }
                Ok((setup, total - setup))
            }
        }
    }

    fn read_setup(&mut self, buf: &mut [u8]) -> Result<()> {
        match self {
            Payload::FwCfg(fw) => fw
                .read(fw_cfg::key::SETUP_DATA, buf)
                .map_err(|e| hotstub::err!("reading kernel setup: {e}")),
            Payload::Disk(d) => Ok(d.kernel_at(0, buf)?),
        }
    }

    fn load_kernel(&mut self, setup_size: u64, dst: &mut [u8]) -> Result<()> {
        match self {
            Payload::FwCfg(fw) => fw.load_kernel(dst),
            Payload::Disk(d) => Ok(d.kernel_at(setup_size, dst)?),
        }
    }
}

/// The part of the setup code a boot reads when it does not measure it:
/// the boot sector and the header after it, which ends at most at 0x202
/// plus the jump's one-byte displacement (boot.rst); the rest (about 20
/// KiB) would only be zeroed and read for nothing.
const SETUP_HEAD: u64 = 0x400;

/// Loads kernel, command line and initrd from `src`; `whole_setup` when
/// the setup part is measured (LoadedLinux::setup is then all of it, else
/// its head).
pub(super) fn load_linux(
    mut src: Payload,
    map: &MemoryMap,
    rsdp: u64,
    whole_setup: bool,
) -> Result<LoadedLinux> {
    let (setup_size, kernel_size) = src.sizes()?;
    // The setup part is at most 0x7f sectors plus the boot sector (boot.rst);
    // anything else is not a bzImage, but read its header first so the error
    // says why.
    let want = if whole_setup {
        setup_size
    } else {
        setup_size.min(SETUP_HEAD)
    };
    let mut setup = vec![0u8; want.min(0x80 * 512) as usize];
    src.read_setup(&mut setup)?;
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
    src.load_kernel(setup_size, unsafe {
        ram_slice(kernel.load_addr, kernel_size)
    })?;
    let fw = src.source();

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
        kernel_size,
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
