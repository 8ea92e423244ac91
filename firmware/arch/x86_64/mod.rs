//! x86_64 (QEMU q35) entry and platform code.

mod idt;
mod io;
mod q35;
mod smp;

use super::ram_slice;
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;
use core::arch::global_asm;
use hotstub::acpi;
use hotstub::bail;
use hotstub::boot::bzimage::{BootParams, Kernel, E820_MAX, ENTRY64_OFFSET, ZERO_PAGE_LEN};
use hotstub::boot::payload;
use hotstub::boot::pipeline::{self, Never, Result};
use hotstub::platform::cpus::{CpuModel, Vcpu};
use hotstub::platform::fw_cfg::{self, Directory, FwCfg};
use hotstub::platform::memmap::{Kind, MemoryMap};
use hotstub::println;

global_asm!(include_str!("boot.S"), options(att_syntax));

/// Fixed low-memory layout. The page tables are built by boot.S.
mod layout {
    // 0x1000-0x6fff: identity page tables built by boot.S; 0x8000-0x9fff:
    // the AP trampoline and its MSR table (smp.rs).
    /// The zero page handed to Linux.
    pub const ZERO_PAGE: u64 = 0x7000;
    /// The kernel command line.
    pub const CMDLINE: u64 = 0x2_0000;
    pub const CMDLINE_MAX: u64 = 0x1_0000;
    /// The legacy BIOS area 0xE0000-0xFFFFF, RAM after PAM set-up: ACPI
    /// tables from the bottom, then SMBIOS structures; the SMBIOS entry point
    /// and the RSDP at the top, on the 16-byte boundaries the legacy scans
    /// look at (ACPI 6.5 5.2.5.1, DSP0134 5.2.1).
    pub const ACPI: (u64, u64) = (0xe_0000, 0x10_0000);
    pub const SMBIOS_ANCHOR: u64 = 0xf_ff80;
    pub const RSDP: u64 = 0xf_ffc0;
    /// VGA window and BIOS area (reserved in every PC memory map).
    pub const LEGACY_HOLE: (u64, u64) = (0xa_0000, 0x10_0000);
    /// Where the firmware itself lives while it runs (linker/x86_64.ld).
    pub const FIRMWARE: (u64, u64) = (0x10_0000, 0x40_0000);
    /// The ROM image mapped just below 4 GiB (linker/x86_64.ld).
    pub const ROM: (u64, u64) = (0xfffe_0000, 0x1_0000_0000);
}

/// COM1 at its ISA address; QEMU q35 always has it (hw/i386/pc.c).
const COM1: u16 = 0x3f8;

static mut SERIAL: Option<uart_16550::Uart16550Tty<uart_16550::backend::PioBackend>> = None;

fn init_console() {
    // SAFETY: COM1's eight ports belong to the firmware; this runs once on
    // the only CPU before anything prints.
    unsafe {
        let s = &mut *core::ptr::addr_of_mut!(SERIAL);
        if let Ok(port) = uart_16550::Uart16550Tty::new_port(COM1, Default::default()) {
            *s = Some(port);
            if let Some(p) = s.as_mut() {
                hotstub::console::set_sink(p);
            }
        }
    }
}

/// Switches the machine off (ICH9 S5); halts if that does not work.
pub fn power_off() -> ! {
    println!("hotstub: powering off");
    q35::power_off();
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}

/// I/O-port fw_cfg (QEMU docs/specs/fw_cfg.rst, "x86, x86_64"): selector
/// 0x510, data 0x511, DMA address 0x514 (big-endian, high half first; the
/// write of the low half at 0x518 starts the transfer).
struct PioFwCfg;

impl fw_cfg::Transport for PioFwCfg {
    fn select(&mut self, key: u16) {
        io::outw(0x510, key);
    }
    fn read_data(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = io::inb(0x511);
        }
    }
    fn start_dma(&mut self, desc: u64) {
        io::outl(0x514, ((desc >> 32) as u32).to_be());
        io::outl(0x518, (desc as u32).to_be());
    }
}

fn mib(b: u64) -> u64 {
    b.div_ceil(1 << 20)
}

#[no_mangle]
extern "C" fn hotstub_main() -> ! {
    q35::enable_pm();
    let t0 = q35::pm_timer();
    init_console();
    idt::init();
    super::init_heap();
    pipeline::run(Q35Boot { t0 })
}

/// The q35 boot, step by step (`boot::pipeline`).
struct Q35Boot {
    /// PM timer at reset, for the time spent in the firmware.
    t0: u32,
}

/// What discovery and the later steps learn about the machine.
struct Machine {
    map: MemoryMap,
    /// End of QEMU's device (hotplug) memory region, 0 when none.
    device_mem_end: u64,
}

impl pipeline::Arch for Q35Boot {
    type Transport = PioFwCfg;
    type Machine = Machine;
    type Loaded = LoadedLinux;

    fn name(&self) -> &'static str {
        "x86_64"
    }

    fn discover(&mut self) -> Result<(Machine, FwCfg<PioFwCfg>)> {
        let fw = FwCfg::probe(PioFwCfg)?;
        Ok((
            Machine {
                map: MemoryMap::new(),
                device_mem_end: 0,
            },
            fw,
        ))
    }

    fn prepare(&mut self, _: &mut Machine, fw: &mut FwCfg<PioFwCfg>) -> Result<()> {
        match q35::identify() {
            q35::Board::Q35 => {}
            q35::Board::Other(id) if q35::is_i440fx(id) => bail!(
                "unsupported machine: this is QEMU's i440FX 'pc' board; start QEMU with -M q35"
            ),
            q35::Board::Other(id) => bail!(
                "unsupported machine: host bridge {:04x}:{:04x} is not Q35",
                id & 0xffff,
                id >> 16
            ),
        }
        q35::init();
        if !fw.has_dma() {
            println!("hotstub: fw_cfg has no DMA interface, loading byte by byte (slow)");
        }
        Ok(())
    }

    fn cpus(
        &mut self,
        m: &mut Machine,
        fw: &mut FwCfg<PioFwCfg>,
        files: &Directory,
    ) -> Result<CpuModel> {
        m.map = memory_map(fw, files)?;
        let mtrrs = q35::setup_mtrrs(&m.map);
        let cpus = discover_cpus(fw)?;
        let aps = cpus.iter().filter(|c| c.enabled).count() as u32 - 1; // >= 1 enabled: discover_cpus
        let answered = smp::sync_mtrrs(&mtrrs, aps);
        if answered != aps {
            println!(
                "hotstub: warning: only {} of {} application processors started",
                answered, aps
            );
        }
        // Firmware-owned and device ranges the kernel must not use as RAM.
        m.map.set(
            layout::LEGACY_HOLE.0,
            layout::LEGACY_HOLE.1 - layout::LEGACY_HOLE.0,
            Kind::Reserved,
        );
        m.map
            .set(q35::MMCONFIG_BASE, q35::MMCONFIG_SIZE, Kind::Reserved);
        m.map
            .set(layout::ROM.0, layout::ROM.1 - layout::ROM.0, Kind::Reserved);
        m.device_mem_end = reserved_memory_end(fw, files)?;
        Ok(CpuModel::new(cpus))
    }

    fn tables(
        &mut self,
        m: &mut Machine,
        cpus: &CpuModel,
        fw: &mut FwCfg<PioFwCfg>,
        files: &Directory,
    ) -> Result<u64> {
        let pci_hotplug = acpi_pci_hotplug(fw, files)?;
        let (rsdp, free) = build_acpi(
            &m.map,
            cpus.as_slice().to_vec(),
            m.device_mem_end,
            pci_hotplug,
        )?;
        place_smbios(fw, files, free);
        Ok(rsdp)
    }

    fn load(
        &mut self,
        m: &mut Machine,
        fw: &mut FwCfg<PioFwCfg>,
        rsdp: u64,
    ) -> Result<LoadedLinux> {
        load_linux(fw, &m.map, rsdp)
    }

    fn prepare_handoff(
        &mut self,
        m: &mut Machine,
        _: &CpuModel,
        linux: &mut LoadedLinux,
    ) -> Result<()> {
        let zp = linux.kernel.zero_page(&linux.setup, &linux.params, &m.map);
        // SAFETY: the zero page slot is low RAM reserved for it (layout).
        unsafe { ram_slice(layout::ZERO_PAGE, ZERO_PAGE_LEN as u64) }.copy_from_slice(&zp);
        Ok(())
    }

    fn elapsed_us(&self) -> u64 {
        let ticks = q35::pm_timer().wrapping_sub(self.t0) & 0x00ff_ffff;
        u64::from(ticks) * 1_000_000 / q35::PM_TMR_HZ
    }

    fn enter(self, _: Machine, _: CpuModel, linux: LoadedLinux) -> Result<Never> {
        jump_to_linux(linux.kernel.load_addr + ENTRY64_OFFSET, layout::ZERO_PAGE)
    }

    fn power_off() -> ! {
        power_off()
    }
}

/// RAM from QEMU's `etc/e820`.
fn memory_map(fw: &mut FwCfg<PioFwCfg>, files: &Directory) -> Result<MemoryMap> {
    let Some(file) = files.find("etc/e820") else {
        bail!("no memory map from the VMM (fw_cfg file etc/e820)");
    };
    // Linux takes at most 128 entries from the zero page (bootparam.h);
    // QEMU's map has a handful.
    if file.size as usize > E820_MAX * 20 {
        bail!(
            "memory map from the VMM has {} bytes, more than {} entries",
            file.size,
            E820_MAX
        );
    }
    let mut buf = vec![0u8; file.size as usize];
    fw.read_file(&file, &mut buf)
        .map_err(|e| hotstub::err!("reading etc/e820: {e}"))?;
    MemoryMap::from_qemu_e820(&buf).map_err(|e| hotstub::err!("bad memory map from the VMM: {e}"))
}

/// End of QEMU's device (hotplug) memory region, from the fw_cfg file
/// `etc/reserved-memory-end` (le64; hw/i386/pc.c), or 0 when there is none.
fn reserved_memory_end(fw: &mut FwCfg<PioFwCfg>, files: &Directory) -> Result<u64> {
    let Some(file) = files.find("etc/reserved-memory-end") else {
        return Ok(0);
    };
    let mut b = [0u8; 8];
    if file.size != 8 || fw.read(file.key, &mut b).is_err() {
        bail!("etc/reserved-memory-end from the VMM is not a 64-bit value");
    }
    Ok(u64::from_le_bytes(b))
}

/// QEMU's ACPI PCI hotplug when it is on: the root ports it hotplugs and
/// their bus selectors, from QEMU's own DSDT (`acpi::pcihp`).
fn acpi_pci_hotplug(
    fw: &mut FwCfg<PioFwCfg>,
    files: &Directory,
) -> Result<Option<acpi::pcihp::PciHotplug>> {
    // QEMU pads its x86 tables to 128 KiB steps (hw/i386/acpi-build.c,
    // ACPI_BUILD_TABLE_SIZE); far more than any machine needs.
    const MAX: u32 = 1 << 20;
    if !q35::acpi_pci_hotplug().map_err(|e| hotstub::err!("{e}"))? {
        return Ok(None);
    }
    // Without root ports nothing hotplugs (QEMU's root bus on q35 does not),
    // and QEMU need not build its tables for us (it does so when they are
    // first read, hw/i386/acpi-build.c acpi_build_update: 2-3 ms).
    let root_ports = q35::root_ports();
    if root_ports.is_empty() {
        return Ok(Some(acpi::pcihp::PciHotplug::default()));
    }
    let Some(file) = files.find("etc/acpi/tables") else {
        println!("hotstub: warning: ACPI PCI hotplug is on, but QEMU offers no ACPI tables to name its root ports; no PCI hotplug");
        return Ok(Some(acpi::pcihp::PciHotplug::default()));
    };
    if file.size > MAX {
        bail!(
            "QEMU's ACPI tables ({} bytes) are too large to read for PCI hotplug",
            file.size
        );
    }
    let mut blob = vec![0u8; file.size as usize];
    fw.read_file(&file, &mut blob)?;
    let mut ports = acpi::pcihp::from_qemu_tables(&blob).map_err(|e| hotstub::err!("{e}"))?;
    // Slot 0 is all a root port has; a bridge with 32 slots is not described.
    ports.retain(|p| root_ports.contains(&p.adr));
    Ok(Some(acpi::pcihp::PciHotplug { ports }))
}

/// Every possible vCPU with its APIC ID, and which are plugged in now.
fn discover_cpus(fw: &mut FwCfg<PioFwCfg>) -> Result<Vec<Vcpu>> {
    let boot = fw.read_u16(fw_cfg::key::NB_CPUS) as u32;
    let max = fw.read_u16(fw_cfg::key::MAX_CPUS) as u32;
    if boot == 0 || max < boot {
        bail!("VMM reports {} boot vCPUs of {} possible", boot, max);
    }
    let Some(cpus) = q35::possible_cpus(max) else {
        bail!(
            "QEMU's CPU hotplug interface at {:#x} does not answer",
            q35::CPUHP_BASE
        );
    };
    // The hotplug registers are authoritative (QEMU keeps NB_CPUS in step
    // with plugs, hw/i386/x86-common.c); a disagreement is worth a line.
    if !cpus.first().is_some_and(|c| c.enabled) {
        bail!("VMM's vCPU 0 (the boot vCPU) is not plugged in");
    }
    let enabled = cpus.iter().filter(|c| c.enabled).count() as u32;
    if enabled != boot {
        println!(
            "hotstub: warning: VMM reports {} boot vCPUs, {} are plugged in",
            boot, enabled
        );
    }
    hotstub::platform::cpus::validate(&cpus).map_err(|e| hotstub::err!("VMM's vCPU list: {e}"))?;
    Ok(cpus)
}

/// PCI routing on q35: QEMU's ICH9 model wires INTx of every slot to
/// PIRQ E-H, rotated by slot ((slot + pin) % 4 + 4, hw/isa/lpc_ich9.c
/// ich9_lpc_initfn), and PIRQ A-H reach I/O APIC inputs 16-23.
fn q35_prt() -> Vec<acpi::PrtEntry> {
    let mut prt = Vec::with_capacity(32 * 4);
    for device in 0..32u8 {
        for pin in 0..4u8 {
            let pirq = (device as u32 + pin as u32) % 4 + 4;
            prt.push(acpi::PrtEntry {
                device,
                pin,
                gsi: 16 + pirq,
            });
        }
    }
    prt
}

/// Builds the ACPI tables in the legacy BIOS area; returns the RSDP address
/// and the first free byte after the tables.
fn build_acpi(
    map: &MemoryMap,
    cpus: Vec<Vcpu>,
    device_mem_end: u64,
    pci_hotplug: Option<acpi::pcihp::PciHotplug>,
) -> Result<(u64, u64)> {
    let low_end = map.ram_end_below_4g();
    // The 32-bit PCI window starts above low RAM and above MMCONFIG (so at
    // 3 GiB or higher) and ends below the I/O APIC.
    let mem32_start = low_end
        .max(0xc000_0000)
        .max(q35::MMCONFIG_BASE + q35::MMCONFIG_SIZE);
    let high_end = map
        .regions()
        .iter()
        .filter(|r| r.kind == Kind::Ram)
        .map(|r| r.end())
        .max()
        .unwrap_or(0);
    // Above RAM and above the memory-hotplug area QEMU reserves for
    // `-m ...,maxmem=`, on a 1 GiB boundary.
    let mem64_start =
        (high_end.max(1 << 32).max(device_mem_end) + (1 << 30) - 1) & !((1 << 30) - 1);
    let m = acpi::x86::Q35 {
        cpus,
        pm_base: q35::PM_BASE,
        sci_irq: q35::SCI_IRQ,
        lapic_addr: q35::LAPIC_ADDR,
        ioapic_id: 0,
        ioapic_addr: q35::IOAPIC_ADDR,
        hpet: q35::hpet_block_id().map(|id| (q35::HPET_ADDR, id)),
        mmcfg_base: q35::MMCONFIG_BASE,
        mmcfg_end_bus: 255,
        pci_io: (0x1000, 0xffff),
        pci_mem32: (mem32_start, q35::IOAPIC_ADDR as u64 - 1),
        // 32 GiB of 64-bit window, like QEMU's default for q35.
        pci_mem64: (mem64_start, mem64_start + (32 << 30) - 1),
        prt: q35_prt(),
        cpu_hotplug_io: Some(q35::CPUHP_BASE),
        i8042: q35::has_i8042(),
        mem_hotplug: match q35::memory_slots().map_err(|e| hotstub::err!("{e}"))? {
            0 => None,
            slots => Some(acpi::memhp::MemHotplug {
                block: acpi::memhp::Block::Io(q35::MEMHP_BASE),
                slots,
            }),
        },
        pci_hotplug,
    };
    let (start, _) = layout::ACPI;
    // The tables end where the SMBIOS entry point's slot begins.
    // SAFETY: the BIOS area is RAM after q35::init (PAM) and only ACPI and
    // SMBIOS data go there.
    let mut area = acpi::TableArea::new(
        unsafe { ram_slice(start, layout::SMBIOS_ANCHOR - start) },
        start,
    );
    let built =
        acpi::x86::build(&m, &mut area).map_err(|e| hotstub::err!("building ACPI tables: {e}"))?;
    // SAFETY: the RSDP slot in the BIOS area (layout).
    unsafe { ram_slice(layout::RSDP, 36) }.copy_from_slice(&built.rsdp);
    Ok((layout::RSDP, start + area.used() as u64))
}

/// Copies QEMU's SMBIOS structures to `free` (below the entry point) and
/// the patched entry point to its fixed slot, where Linux's legacy scan of
/// 0xF0000-0xFFFFF finds it. Optional: without them the guest just has no DMI.
fn place_smbios(fw: &mut FwCfg<PioFwCfg>, files: &Directory, free: u64) {
    let (Some(anchor), Some(tables)) = (
        files.find("etc/smbios/smbios-anchor"),
        files.find("etc/smbios/smbios-tables"),
    ) else {
        return;
    };
    let addr = (free + 15) & !15;
    if anchor.size as u64 > layout::RSDP - layout::SMBIOS_ANCHOR
        || addr + tables.size as u64 > layout::SMBIOS_ANCHOR
    {
        println!(
            "hotstub: warning: SMBIOS tables do not fit in the BIOS area; guest gets no DMI data"
        );
        return;
    }
    let mut entry = vec![0u8; anchor.size as usize];
    // SAFETY: between the ACPI tables and the entry point slot, checked above.
    let dst = unsafe { ram_slice(addr, tables.size as u64) };
    let placed = match fw.read_file(&tables, dst) {
        Ok(_) => match fw.read_file(&anchor, &mut entry) {
            Ok(_) => hotstub::boot::smbios::patch_anchor(&mut entry, addr)
                .map_err(|e| alloc::format!("{e}")),
            Err(e) => Err(format!("{e}")),
        },
        Err(e) => Err(format!("{e}")),
    };
    match placed {
        // SAFETY: the entry point slot below the RSDP, size checked above.
        Ok(()) => {
            unsafe { ram_slice(layout::SMBIOS_ANCHOR, entry.len() as u64) }.copy_from_slice(&entry)
        }
        Err(e) => println!("hotstub: warning: {}; guest gets no DMI data", e),
    }
}

/// The kernel in memory: its validated header, the setup blob the zero
/// page is built from, and where everything went.
struct LoadedLinux {
    kernel: Kernel,
    setup: Vec<u8>,
    params: BootParams,
}

/// Loads kernel, command line and initrd from fw_cfg.
fn load_linux(fw: &mut FwCfg<PioFwCfg>, map: &MemoryMap, rsdp: u64) -> Result<LoadedLinux> {
    use fw_cfg::key;
    let kernel_size = payload::kernel_size(fw, "bzImage")?;
    let setup_size = fw.read_u32(key::SETUP_SIZE) as u64;
    // The setup part is at most 0x7f sectors plus the boot sector (boot.rst);
    // anything else is not a bzImage, but read its header first so the error
    // says why.
    let mut setup = vec![0u8; setup_size.min(0x80 * 512) as usize];
    fw.read(key::SETUP_DATA, &mut setup)
        .map_err(|e| hotstub::err!("reading kernel setup: {e}"))?;
    let mut kernel = Kernel::parse(&setup).map_err(|e| hotstub::err!("{e}"))?;
    if setup_size > 0x80 * 512 {
        bail!(
            "kernel setup part of {} bytes is too large for a bzImage",
            setup_size
        );
    }
    // Never below the end of the firmware's own RAM, whatever the kernel
    // prefers.
    kernel
        .place_above(layout::FIRMWARE.1, kernel_size)
        .map_err(|e| hotstub::err!("{e}"))?;
    let footprint = kernel.footprint(kernel_size);
    if !map.is_ram(kernel.load_addr, footprint) {
        bail!(
            "kernel needs {} MiB of RAM at {:#x}; not enough memory",
            mib(footprint),
            kernel.load_addr
        );
    }
    // SAFETY: RAM above the firmware and below 4 GiB, checked above.
    payload::load_kernel(fw, unsafe { ram_slice(kernel.load_addr, kernel_size) })?;

    let limit = (kernel.cmdline_size as u64 + 1).min(layout::CMDLINE_MAX);
    let text = payload::cmdline(fw, limit as usize)?;
    // SAFETY: the command line slot in low RAM (layout).
    let slot = unsafe { ram_slice(layout::CMDLINE, limit) };
    slot.fill(0);
    // The slot keeps a terminating NUL (boot.rst cmdline_size).
    let n = text.len().min(limit as usize - 1);
    slot[..n].copy_from_slice(&text[..n]);

    let initrd_size = payload::initrd_size(fw);
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
        payload::load_initrd(fw, unsafe { ram_slice(initrd_addr, initrd_size) })?;
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
fn jump_to_linux(entry: u64, zero_page: u64) -> Result<Never> {
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
