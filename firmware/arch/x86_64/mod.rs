//! x86_64 (QEMU q35) entry and platform code.

mod idt;
mod io;
mod q35;
mod smp;

use alloc::vec;
use alloc::vec::Vec;
use core::arch::global_asm;
use core::fmt;
use hotstub::acpi;
use hotstub::boot::bzimage::{BootParams, Kernel, E820_MAX, ENTRY64_OFFSET, ZERO_PAGE_LEN};
use hotstub::platform::fw_cfg::{self, FwCfg};
use hotstub::platform::memmap::{Kind, MemoryMap};
use hotstub::println;
use linked_list_allocator::LockedHeap;

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

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

extern "C" {
    static _heap_start: u8;
    static _heap_end: u8;
}

fn init_heap() {
    let start = core::ptr::addr_of!(_heap_start) as usize;
    let end = core::ptr::addr_of!(_heap_end) as usize;
    // SAFETY: the linker reserves [_heap_start, _heap_end) in RAM for the
    // heap alone, and this runs once before any allocation.
    unsafe { HEAP.lock().init(start as *mut u8, end - start) };
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

/// Prints a one-line error and powers the machine off.
pub fn fatal(msg: fmt::Arguments) -> ! {
    println!("hotstub: error: {}", msg);
    println!("hotstub: powering off");
    q35::power_off();
    halt_forever()
}

fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    fatal(format_args!("firmware panic: {}", info))
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

/// A mutable view of guest-physical memory in the identity map.
///
/// # Safety
/// `[addr, addr + len)` must be RAM below 4 GiB that overlaps nothing the
/// firmware itself uses (its image, stack and heap at 1-4 MiB, or another
/// live view).
unsafe fn phys_mut(addr: u64, len: u64) -> &'static mut [u8] {
    // SAFETY: the caller's contract above.
    unsafe { core::slice::from_raw_parts_mut(addr as *mut u8, len as usize) }
}

macro_rules! fail {
    ($($t:tt)*) => { fatal(format_args!($($t)*)) };
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
    init_heap();
    println!("{} {} x86_64", hotstub::NAME, hotstub::VERSION);

    match q35::identify() {
        q35::Board::Q35 => {}
        q35::Board::Other(id) if q35::is_i440fx(id) => {
            fail!("unsupported machine: this is QEMU's i440FX 'pc' board; start QEMU with -M q35")
        }
        q35::Board::Other(id) => fail!(
            "unsupported machine: host bridge {:04x}:{:04x} is not Q35",
            id & 0xffff,
            id >> 16
        ),
    }
    q35::init();

    let mut fw = match FwCfg::probe(PioFwCfg) {
        Ok(f) => f,
        Err(e) => fail!("{}", e),
    };
    if !fw.has_dma() {
        println!("hotstub: fw_cfg has no DMA interface, loading byte by byte (slow)");
    }

    let files = match fw.directory() {
        Ok(d) => d,
        Err(e) => fail!("reading the fw_cfg file directory: {}", e),
    };
    let mut map = memory_map(&mut fw, &files);
    let mtrrs = q35::setup_mtrrs(&map);

    let cpus = discover_cpus(&mut fw);
    let aps = cpus.iter().filter(|c| c.enabled).count() as u32 - 1; // >= 1 enabled: discover_cpus
    let answered = smp::sync_mtrrs(&mtrrs, aps);
    if answered != aps {
        println!(
            "hotstub: warning: only {} of {} application processors started",
            answered, aps
        );
    }

    // Firmware-owned and device ranges the kernel must not use as RAM.
    map.set(
        layout::LEGACY_HOLE.0,
        layout::LEGACY_HOLE.1 - layout::LEGACY_HOLE.0,
        Kind::Reserved,
    );
    map.set(q35::MMCONFIG_BASE, q35::MMCONFIG_SIZE, Kind::Reserved);
    map.set(layout::ROM.0, layout::ROM.1 - layout::ROM.0, Kind::Reserved);

    let device_mem_end = reserved_memory_end(&mut fw, &files);
    let (rsdp, free) = build_acpi(&map, cpus, device_mem_end);
    place_smbios(&mut fw, &files, free);

    let linux = load_linux(&mut fw, &map, rsdp);
    let kernel = &linux.kernel;

    let zp = kernel.zero_page(&linux.setup, &linux.params, &map);
    // SAFETY: the zero page slot is low RAM reserved for it (layout).
    unsafe { phys_mut(layout::ZERO_PAGE, ZERO_PAGE_LEN as u64) }.copy_from_slice(&zp);

    let ticks = q35::pm_timer().wrapping_sub(t0) & 0x00ff_ffff;
    let us = ticks as u64 * 1_000_000 / q35::PM_TMR_HZ;
    println!(
        "hotstub: {}.{:03} ms in firmware, starting Linux",
        us / 1000,
        us % 1000
    );
    jump_to_linux(kernel.load_addr + ENTRY64_OFFSET, layout::ZERO_PAGE)
}

/// RAM from QEMU's `etc/e820`.
fn memory_map(fw: &mut FwCfg<PioFwCfg>, files: &fw_cfg::Directory) -> MemoryMap {
    let Some(file) = files.find("etc/e820") else {
        fail!("no memory map from the VMM (fw_cfg file etc/e820)");
    };
    // Linux takes at most 128 entries from the zero page (bootparam.h);
    // QEMU's map has a handful.
    if file.size as usize > E820_MAX * 20 {
        fail!(
            "memory map from the VMM has {} bytes, more than {} entries",
            file.size,
            E820_MAX
        );
    }
    let mut buf = vec![0u8; file.size as usize];
    if let Err(e) = fw.read_file(&file, &mut buf) {
        fail!("reading etc/e820: {}", e);
    }
    match MemoryMap::from_qemu_e820(&buf) {
        Ok(m) => m,
        Err(e) => fail!("bad memory map from the VMM: {}", e),
    }
}

/// End of QEMU's device (hotplug) memory region, from the fw_cfg file
/// `etc/reserved-memory-end` (le64; hw/i386/pc.c), or 0 when there is none.
fn reserved_memory_end(fw: &mut FwCfg<PioFwCfg>, files: &fw_cfg::Directory) -> u64 {
    let Some(file) = files.find("etc/reserved-memory-end") else {
        return 0;
    };
    let mut b = [0u8; 8];
    if file.size != 8 || fw.read(file.key, &mut b).is_err() {
        fail!("etc/reserved-memory-end from the VMM is not a 64-bit value");
    }
    u64::from_le_bytes(b)
}

/// Every possible vCPU with its APIC ID, and which are plugged in now.
fn discover_cpus(fw: &mut FwCfg<PioFwCfg>) -> Vec<hotstub::platform::cpus::Vcpu> {
    let boot = fw.read_u16(fw_cfg::key::NB_CPUS) as u32;
    let max = fw.read_u16(fw_cfg::key::MAX_CPUS) as u32;
    if boot == 0 || max < boot {
        fail!("VMM reports {} boot vCPUs of {} possible", boot, max);
    }
    let Some(cpus) = q35::possible_cpus(max) else {
        fail!(
            "QEMU's CPU hotplug interface at {:#x} does not answer",
            q35::CPUHP_BASE
        );
    };
    // The hotplug registers are authoritative (QEMU keeps NB_CPUS in step
    // with plugs, hw/i386/x86-common.c); a disagreement is worth a line.
    if !cpus.first().is_some_and(|c| c.enabled) {
        fail!("VMM's vCPU 0 (the boot vCPU) is not plugged in");
    }
    let enabled = cpus.iter().filter(|c| c.enabled).count() as u32;
    if enabled != boot {
        println!(
            "hotstub: warning: VMM reports {} boot vCPUs, {} are plugged in",
            boot, enabled
        );
    }
    if let Err(e) = hotstub::platform::cpus::validate(&cpus) {
        fail!("VMM's vCPU list: {}", e);
    }
    cpus
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
    cpus: Vec<hotstub::platform::cpus::Vcpu>,
    device_mem_end: u64,
) -> (u64, u64) {
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
    };
    let (start, _) = layout::ACPI;
    // The tables end where the SMBIOS entry point's slot begins.
    // SAFETY: the BIOS area is RAM after q35::init (PAM) and only ACPI and
    // SMBIOS data go there.
    let mut area = acpi::TableArea::new(
        unsafe { phys_mut(start, layout::SMBIOS_ANCHOR - start) },
        start,
    );
    match acpi::x86::build(&m, &mut area) {
        Ok(built) => {
            // SAFETY: the RSDP slot in the BIOS area (layout).
            unsafe { phys_mut(layout::RSDP, 36) }.copy_from_slice(&built.rsdp);
            (layout::RSDP, start + area.used() as u64)
        }
        Err(e) => fail!("building ACPI tables: {}", e),
    }
}

/// Copies QEMU's SMBIOS structures to `free` (below the entry point) and
/// the patched entry point to its fixed slot, where Linux's legacy scan of
/// 0xF0000-0xFFFFF finds it. Optional: without them the guest just has no DMI.
fn place_smbios(fw: &mut FwCfg<PioFwCfg>, files: &fw_cfg::Directory, free: u64) {
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
    let dst = unsafe { phys_mut(addr, tables.size as u64) };
    let placed = match fw.read_file(&tables, dst) {
        Ok(_) => match fw.read_file(&anchor, &mut entry) {
            Ok(_) => hotstub::boot::smbios::patch_anchor(&mut entry, addr)
                .map_err(|e| alloc::format!("{e}")),
            Err(e) => Err(alloc::format!("{e}")),
        },
        Err(e) => Err(alloc::format!("{e}")),
    };
    match placed {
        // SAFETY: the entry point slot below the RSDP, size checked above.
        Ok(()) => {
            unsafe { phys_mut(layout::SMBIOS_ANCHOR, entry.len() as u64) }.copy_from_slice(&entry)
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
fn load_linux(fw: &mut FwCfg<PioFwCfg>, map: &MemoryMap, rsdp: u64) -> LoadedLinux {
    use fw_cfg::key;
    let kernel_size = fw.read_u32(key::KERNEL_SIZE) as u64;
    let setup_size = fw.read_u32(key::SETUP_SIZE) as u64;
    if kernel_size == 0 {
        fail!("no kernel: start QEMU with -kernel <bzImage>");
    }
    // The setup part is at most 0x7f sectors plus the boot sector (boot.rst);
    // anything else is not a bzImage, but read its header first so the error
    // says why.
    let mut setup = vec![0u8; setup_size.min(0x80 * 512) as usize];
    if let Err(e) = fw.read(key::SETUP_DATA, &mut setup) {
        fail!("reading kernel setup: {}", e);
    }
    let mut kernel = match Kernel::parse(&setup) {
        Ok(k) if setup_size <= 0x80 * 512 => k,
        Ok(_) => fail!(
            "kernel setup part of {} bytes is too large for a bzImage",
            setup_size
        ),
        Err(e) => fail!("{}", e),
    };
    // Never below the end of the firmware's own RAM, whatever the kernel
    // prefers.
    if let Err(e) = kernel.place_above(layout::FIRMWARE.1, kernel_size) {
        fail!("{}", e);
    }
    let footprint = kernel.footprint(kernel_size);
    if !map.is_ram(kernel.load_addr, footprint) {
        fail!(
            "kernel needs {} MiB of RAM at {:#x}; not enough memory",
            mib(footprint),
            kernel.load_addr
        );
    }
    // SAFETY: RAM above the firmware and below 4 GiB, checked above.
    let dst = unsafe { phys_mut(kernel.load_addr, kernel_size) };
    if let Err(e) = fw.read(key::KERNEL_DATA, dst) {
        fail!("loading kernel: {}", e);
    }

    let cmdline_size = fw.read_u32(key::CMDLINE_SIZE) as u64;
    let limit = (kernel.cmdline_size as u64 + 1).min(layout::CMDLINE_MAX);
    if cmdline_size > limit {
        fail!(
            "kernel command line of {} bytes exceeds the kernel's limit of {}",
            cmdline_size,
            limit - 1
        );
    }
    // SAFETY: the command line slot in low RAM (layout).
    let cmdline = unsafe { phys_mut(layout::CMDLINE, limit) };
    cmdline.fill(0);
    if cmdline_size > 0 {
        if let Err(e) = fw.read(key::CMDLINE_DATA, &mut cmdline[..cmdline_size as usize]) {
            fail!("reading command line: {}", e);
        }
        cmdline[cmdline_size as usize - 1] = 0;
    }

    let initrd_size = fw.read_u32(key::INITRD_SIZE) as u64;
    let mut initrd_addr = 0;
    if initrd_size > 0 {
        let limit = (kernel.initrd_addr_max + 1).min(map.ram_end_below_4g());
        let avoid = [
            (0, layout::FIRMWARE.1),
            (kernel.load_addr, kernel.load_addr + footprint),
            (layout::ACPI.0, layout::ACPI.1),
        ];
        initrd_addr = match map.find_top(initrd_size, 0x1000, limit, &avoid) {
            Some(a) => a,
            None => fail!(
                "initrd of {} MiB does not fit in RAM below {} MiB next to the kernel",
                mib(initrd_size),
                limit >> 20
            ),
        };
        // SAFETY: RAM chosen by find_top clear of firmware, kernel and tables.
        let dst = unsafe { phys_mut(initrd_addr, initrd_size) };
        if let Err(e) = fw.read(key::INITRD_DATA, dst) {
            fail!("loading initrd: {}", e);
        }
    }
    let params = BootParams {
        cmdline_addr: layout::CMDLINE,
        initrd_addr,
        initrd_size,
        rsdp_addr: rsdp,
    };
    LoadedLinux {
        kernel,
        setup,
        params,
    }
}

/// Enters the kernel's 64-bit entry point (boot.rst "64-bit Boot Protocol"):
/// identity-mapped, interrupts off, %rsi = zero page, boot GDT loaded.
fn jump_to_linux(entry: u64, zero_page: u64) -> ! {
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
