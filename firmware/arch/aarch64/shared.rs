//! What both arm64 boot flows (QEMU virt in `mod.rs`, cloud-hypervisor in
//! `ch.rs`) share: the console, the memory map of the DT's devices, the
//! firmware's RAM areas, the virtio disks, loading Linux and writing the
//! hand-off (EFI system table and `/chosen`-only DT).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use hotstub::boot::pipeline::{Result, Tables};
use hotstub::boot::plan::{Areas, Resident};
use hotstub::boot::{arm64_image, efi, payload, stub_dt};
use hotstub::platform::dt;

use super::hw::{self, layout};
use super::load::{load_initrd, load_kernel, read_cmdline, Loaded};
use super::mmu;
use crate::arch::{ram_slice, virtio};

/// The console's PL011, for [`Console`]; 0 until one is set.
static UART: AtomicU64 = AtomicU64::new(0);

/// The console sink: the PL011 in [`UART`]. It holds no state, so the
/// resident firmware's console lives in its static data, not in the boot
/// heap that Linux gets.
struct Console;

impl core::fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        match UART.load(Ordering::Relaxed) {
            0 => Ok(()),
            // SAFETY: `set_console` stored a PL011's base.
            base => unsafe { hw::Pl011::new(base) }.write_str(s),
        }
    }
}

/// Sends the console to the PL011 at `base`, which the DT (or QEMU's fixed
/// map) names.
pub(super) fn set_console(base: u64) {
    UART.store(base, Ordering::Relaxed);
    // A zero-sized value: leaking its box allocates nothing.
    hotstub::console::set_sink(Box::leak(Box::new(Console)));
}

/// The firmware's RAM areas from the linker script.
pub(super) fn areas() -> Areas {
    let (_, fw_end) = layout::fw_ram();
    Areas {
        acpi: layout::handoff_acpi(),
        efi: layout::handoff_efi(),
        dt: layout::handoff_dt(),
        handoff_end: layout::handoff_end(),
        stack_bottom: layout::stack_bottom(),
        fw_end,
    }
}

/// The kernel and its data in memory.
pub(super) struct Linux {
    pub(super) kernel: Loaded,
    pub(super) image: arm64_image::Header,
    pub(super) initrd: Option<Loaded>,
    pub(super) cmdline: String,
    /// At EL2, what the resident firmware keeps (fixed with the memory
    /// map, which lists it: `Plan::kept`).
    pub(super) resident: Resident,
}

/// Maps what the DT describes: the GIC's redistributors (which may lie
/// above the low GiB) as Device, RAM as Normal memory.
pub(super) fn map_board(el: u8, b: &dt::Board) {
    mmu::map_mmio(el, &b.gic.gicr);
    mmu::map_ram(el, &b.memory);
}

/// The console the DT names.
pub(super) fn console(b: &dt::Board) -> Result<()> {
    let (uart, _) = b.uart.ok_or("device tree lacks a PL011 console")?;
    set_console(uart);
    Ok(())
}

/// Microseconds since the counter read `t0`.
pub(super) fn elapsed_us(t0: u64) -> u64 {
    let (t1, freq) = hw::counter();
    (t1 - t0) * 1_000_000 / freq.max(1)
}

/// Writes the EFI system table with `map` and the `/chosen`-only DT for
/// Linux into the hand-off area, and cleans it to PoC.
pub(super) fn write_handoff(
    map: &[efi::Descriptor],
    t: &Tables,
    l: &Linux,
    board: &dt::Board,
) -> Result<()> {
    let a = areas();
    // SAFETY: the linker script reserves the hand-off area for this.
    let efi_buf = unsafe { ram_slice(a.efi, a.dt - a.efi) };
    let handoff = efi::build(efi_buf, a.efi, t.rsdp, t.smbios3, map)?;
    let chosen = stub_dt::Chosen {
        bootargs: &l.cmdline,
        initrd: l.initrd.as_ref().map(|i| (i.base, i.base + i.size)),
        efi_system_table: handoff.system_table,
        efi_mmap_start: handoff.mmap_start,
        efi_mmap_size: handoff.mmap_size,
        efi_mmap_desc_size: handoff.desc_size,
        efi_mmap_desc_ver: handoff.desc_ver,
        rng_seed: board.rng_seed.as_deref(),
        kaslr_seed: board.kaslr_seed,
    };
    let blob = stub_dt::write_chosen(&chosen);
    // SAFETY: the linker script reserves the hand-off area for this.
    let dt_buf = unsafe { ram_slice(a.dt, a.handoff_end - a.dt) };
    dt_buf
        .get_mut(..blob.len())
        .ok_or("the DT for Linux does not fit its area")?
        .copy_from_slice(&blob);
    // Linux reads the hand-off data with its caches off: what was written
    // of it, not the whole 256 KiB area (a line at a time, 4,096 lines
    // took 20,000 guest instructions). The TPM event log sits at the end
    // of the ACPI area (`Plan::tpm_log`): with a TPM the whole of it.
    let acpi_end = if board.tpm.is_some() {
        a.efi
    } else {
        a.acpi + t.used
    };
    mmu::clean_to_poc(a.acpi, acpi_end - a.acpi);
    mmu::clean_to_poc(a.efi, efi::area_size(map.len()) as u64);
    mmu::clean_to_poc(a.dt, blob.len() as u64);
    Ok(())
}

/// The virtio disks in bus order: functions under the PCIe host bridge,
/// behind root ports and bridges too (BARs from its 32-bit window, where
/// PCI and CPU addresses are the same on virt), then the virtio-mmio
/// transports in DT order.
///
/// `placed`: the VMM placed the BARs itself (cloud-hypervisor, whose guest
/// firmware runs at EL1); they stay where they are if they lie in the
/// bridge's windows and the firmware's map reaches them (root bus only).
pub(super) fn disks(el: u8, board: &dt::Board, placed: bool) -> Vec<virtio::Disk> {
    let mut out = Vec::new();
    if let Some(p) = &board.pcie {
        let buses = (p.ecam_size >> 20).min(256) as u16;
        if placed {
            mmu::map_device(el, p.ecam_base, p.ecam_size);
            let windows: Vec<(u64, u64)> = [p.mmio32, p.mmio64]
                .iter()
                .flatten()
                .filter(|w| w.0 == w.1)
                .map(|&(cpu, _, size)| (cpu, cpu.saturating_add(size)))
                .collect();
            let reach = |base: u64, size: u64| {
                let end = base.checked_add(size);
                let inside = windows
                    .iter()
                    .any(|&(s, e)| s <= base && end.is_some_and(|x| x <= e));
                inside && map_bar(el, base, size)
            };
            // SAFETY: the DT names this ECAM region (mapped as Device just
            // above); `reach` maps what it accepts.
            unsafe { virtio::placed_pci_disks(p.ecam_base, buses, reach, &mut out) };
        } else if let Some((cpu, _, size)) = p.mmio32.filter(|&(cpu, pci, _)| cpu == pci) {
            mmu::map_device(el, p.ecam_base, p.ecam_size);
            let mut host = virtio::PciHost {
                config: virtio::Config::Ecam(p.ecam_base),
                buses,
                next: cpu,
                end: cpu + size,
            };
            // SAFETY: the DT names this ECAM region (mapped as Device just
            // above) and window; no firmware placed anything there before.
            unsafe { virtio::pci_disks(&mut host, &mut out) };
        }
    }
    let mmio = board
        .virtio_mmio
        .iter()
        .map(|&(base, size, _)| (base, size));
    // SAFETY: the DT names these virtio-mmio windows, in the low GiB the
    // MMU maps as Device.
    unsafe { virtio::mmio_disks(mmio, &mut out) };
    out
}

/// Kernel, initrd and command line from `src`, placed in `[from, ram_end)`.
pub(super) fn load_linux_above(
    src: &mut impl payload::Source,
    from: u64,
    ram_end: u64,
) -> Result<Linux> {
    let (kernel, image) = load_kernel(src, from, ram_end)?;
    let initrd = load_initrd(src, kernel.base + image.image_size, ram_end)?;
    let cmdline = read_cmdline(src)?;
    Ok(Linux {
        kernel,
        image,
        initrd,
        cmdline,
        resident: Resident::default(),
    })
}

/// Maps a BAR the VMM placed (possibly above the low GiB: cloud-hypervisor
/// puts 64-bit BARs at the top of its 64-bit window) as Device memory;
/// false past the 512 GiB the firmware's map covers.
fn map_bar(el: u8, base: u64, size: u64) -> bool {
    mmu::map_device(el, base, size);
    base.checked_add(size)
        .is_some_and(|end| end <= mmu::MAP_END)
}
