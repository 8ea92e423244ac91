//! The aarch64 firmware that stays below Linux at EL2 or EL3: the register
//! arithmetic of its set-up, the stage-2 tables that guard its memory and
//! the runtime vCPU hotplug it serves. Whether it stays at all is the
//! hand-off plan's decision (`boot::handoff`).

pub mod hotplug;
pub mod regs;
pub mod stage2;

/// Granule and block sizes of the 4 KiB-granule translation regimes, and
/// QEMU virt's flash (two 64 MiB banks at 0, hw/arm/virt.c `base_memmap`
/// VIRT_FLASH), which holds the firmware's code and constants.
pub const PAGE: u64 = 4 << 10;
pub const MIB2: u64 = 2 << 20;
pub const GIB: u64 = 1 << 30;
pub const FLASH: (u64, u64) = (0, 128 << 20);
