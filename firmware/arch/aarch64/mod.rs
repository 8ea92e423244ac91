//! aarch64 (QEMU virt) entry and platform code: discover the machine from
//! the DT, load the kernel over fw_cfg, describe the machine in ACPI, hand
//! off through a minimal EFI system table and a `/chosen`-only DT.

extern crate alloc;

mod acpi_glue;
mod el2;
mod el3;
mod entry;
mod hw;
mod mmu;
mod resident;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use hotstub::resident::regs::Handoff;

use hotstub::boot::arm64_image;
use hotstub::boot::efi::{self, mem_type, Carve};
use hotstub::platform::cpus::CpuModel;
use hotstub::platform::dt;
use hotstub::platform::fw_cfg::{self, key, FwCfg};
use hotstub::psci::Conduit;
use hotstub::{println, NAME, VERSION};
use hw::layout;
use linked_list_allocator::LockedHeap;

/// Where QEMU virt's RAM starts and a firmware finds the DTB (hw/arm/virt.c
/// `base_memmap[VIRT_MEM]`; hw/arm/boot.c puts the DTB at the RAM base when
/// a firmware is loaded). cloud-hypervisor uses the same address.
const RAM_BASE_DTB: u64 = 0x4000_0000;
/// QEMU virt's PL011 (`base_memmap[VIRT_UART]`): only used to report that
/// the DT itself is unusable, when there is no other way to find a console.
const FALLBACK_UART: u64 = 0x0900_0000;

/// The firmware's heap: whatever the linker script leaves between .bss and
/// the stack in the firmware's MiB of RAM.
#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

fn init_heap() {
    let (start, end) = layout::heap();
    // SAFETY: the linker script reserves [start, end) for the heap and
    // nothing else uses it; this runs once, before any allocation.
    unsafe { HEAP.lock().init(start as *mut u8, (end - start) as usize) }
}

/// The conduit to QEMU's PSCI once the DT is read (None: there is none,
/// as at EL3).
static CONDUIT: spin::Once<Option<Conduit>> = spin::Once::new();

/// The conduit to QEMU's PSCI: what the DT says, else (before the DT is
/// read) QEMU's rule: SMC when the firmware has EL2, HVC when it runs at
/// EL1 (hw/arm/virt.c).
fn conduit() -> Option<Conduit> {
    match CONDUIT.get() {
        Some(c) => *c,
        None => match hw::current_el() {
            1 => Some(Conduit::Hvc),
            2 => Some(Conduit::Smc),
            _ => None,
        },
    }
}

/// At EL3 the secure GPIO's power-off line.
static SECURE_POWEROFF: hw::GpioLine = hw::GpioLine::new();

/// Powers the machine off; never returns.
fn power_off() -> ! {
    if let Some(c) = conduit() {
        hw::smccc(c, hotstub::psci::ids::SYSTEM_OFF, 0, 0, 0);
    }
    SECURE_POWEROFF.raise();
    // SYSTEM_OFF and the power-off line do not return; at EL3 with no
    // power-off line in the DT there is nothing left but to stop.
    hw::halt()
}

fn fatal(msg: &str) -> ! {
    println!("hotstub: error: {msg}");
    power_off()
}

fn set_console(base: u64) {
    // SAFETY: `base` is the PL011 the DT (or QEMU's fixed map) names.
    let uart = Box::leak(Box::new(unsafe { hw::Pl011::new(base) }));
    hotstub::console::set_sink(uart);
}

#[no_mangle]
extern "C" fn hotstub_main(x0: u64) -> ! {
    let t0 = hw::counter().0;
    mmu::enable(hw::current_el());
    init_heap();
    match boot(x0, t0) {
        Ok(never) => match never {},
        Err(e) => fatal(&e),
    }
}

#[no_mangle]
extern "C" fn hotstub_exception(index: u64) -> ! {
    let (esr, elr, far) = hw::fault_registers();
    // Vector groups of 4 (Arm ARM D1.10.2): current EL with SP_EL0, current
    // EL with SP_ELx, lower EL AArch64, lower EL AArch32; within each,
    // synchronous, IRQ, FIQ, SError.
    const KIND: [&str; 4] = ["synchronous", "IRQ", "FIQ", "SError"];
    println!(
        "hotstub: error: unexpected {} exception at EL{} (vector {index}): ESR={esr:#x} ELR={elr:#x} FAR={far:#x}",
        KIND[(index & 3) as usize],
        hw::current_el()
    );
    power_off()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("hotstub: error: panic: {}", info.message());
    if let Some(l) = info.location() {
        println!("hotstub: error: at {}:{}", l.file(), l.line());
    }
    power_off()
}

/// Finds the DT: x0 when it points at one (cloud-hypervisor), else the
/// start of RAM (QEMU).
fn find_dt(x0: u64) -> Option<&'static [u8]> {
    // Only addresses in RAM are probed: reading an arbitrary x0 could hit
    // a hole in the address map.
    let from_x0 = if x0 >= RAM_BASE_DTB && x0.is_multiple_of(8) {
        // SAFETY: RAM starts at RAM_BASE_DTB on every machine this runs on,
        // and a VMM passing x0 passes a DT there.
        unsafe { hw::dt_blob(x0) }
    } else {
        None
    };
    // SAFETY: RAM_BASE_DTB is RAM (see above).
    let blob = from_x0.or_else(|| unsafe { hw::dt_blob(RAM_BASE_DTB) })?;
    // The entry code has already zeroed .bss in the firmware's RAM: a DT
    // reaching into it would be damaged (QEMU's is 1 MiB and ends where the
    // firmware's RAM begins; see linker/aarch64.ld).
    let (start, end) = (
        blob.as_ptr() as u64,
        blob.as_ptr() as u64 + blob.len() as u64,
    );
    let (fw_start, fw_end) = layout::fw_ram();
    (end <= fw_start || start >= fw_end).then_some(blob)
}

fn align_up(x: u64, a: u64) -> u64 {
    (x + a - 1) & !(a - 1)
}

/// One loaded item in RAM.
struct Loaded {
    base: u64,
    size: u64,
}

enum Never {}

fn boot(x0: u64, t0: u64) -> Result<Never, String> {
    let el = hw::current_el();
    let platform = match find_dt(x0).map(dt::parse) {
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            set_console(FALLBACK_UART);
            return Err(e.to_string());
        }
        None => {
            set_console(FALLBACK_UART);
            return Err(
                "no device tree in x0 or at the start of RAM (or it overlaps the firmware's RAM)"
                    .into(),
            );
        }
    };
    CONDUIT.call_once(|| platform.psci);
    mmu::map_ram(el, &platform.memory);
    if let Some(sg) = platform.secure_gpio {
        if let (3, Some(pin)) = (el, sg.poweroff_pin) {
            SECURE_POWEROFF.set(sg.base, pin);
        }
    }
    let (uart, _) = platform.uart.ok_or("device tree lacks a PL011 console")?;
    set_console(uart);
    println!("{NAME} {VERSION} aarch64 (EL{el})");

    let fw_cfg_base = platform
        .fw_cfg
        .ok_or("device tree lacks fw_cfg: no way to load a kernel")?;
    // SAFETY: the DT names this fw_cfg MMIO base.
    let mut fw =
        FwCfg::probe(unsafe { hw::FwCfgMmio::new(fw_cfg_base) }).map_err(|e| e.to_string())?;
    if !fw.has_dma() {
        return Err("fw_cfg without DMA is not supported".into());
    }

    let (fw_start, fw_end) = layout::fw_ram();
    let ram = *platform
        .memory
        .iter()
        .find(|&&(b, s)| b <= fw_start && fw_end <= b + s)
        .ok_or("RAM does not cover the firmware's area")?;
    let ram_end = ram.0 + ram.1;

    let (kernel, image) = load_kernel(&mut fw, fw_end, ram_end)?;
    let initrd = load_initrd(&mut fw, kernel.base + image.image_size, ram_end)?;
    let cmdline = read_cmdline(&mut fw)?;

    // ACPI tables, then the RSDP right behind them.
    let acpi_base = layout::handoff_acpi();
    let acpi_len = layout::handoff_efi() - acpi_base;
    // SAFETY: the linker script reserves the hand-off area for this.
    let acpi_buf = unsafe { hw::ram_slice(acpi_base, acpi_len) };
    let files = fw.directory().map_err(|e| e.to_string())?;
    let cpus = cpu_model(&mut fw, &files, &platform.cpus)?;
    // At EL1, and at EL2 with every vCPU enabled, Linux is entered at the
    // firmware's EL and calls QEMU's PSCI as the DT names it; with a policy
    // at EL2, and always at EL3, the firmware stays resident as the PSCI
    // (resident.rs).
    let exit = Handoff::decide(el, cpus.enabled_count() == cpus.len());
    let conduit = resident::linux_conduit(exit, platform.psci)?;
    let machine = acpi_glue::Machine {
        platform: &platform,
        cpus: &cpus,
        ged: platform.qemu_acpi_ged(files.find("etc/acpi/tables").is_some()),
        conduit,
        el2_vtimer: exit.el2_vtimer(el2::features().vhe, platform.timer_el2_virt),
    };
    if el == 1 && cpus.enabled_count() != cpus.len() {
        println!(
            "{NAME}: warning: at EL1 the vCPU policy is only described (MADT, _STA); \
             QEMU's PSCI may still start disabled vCPUs (use virtualization=on to enforce it)"
        );
    }
    println!(
        "{NAME}: Linux enters at EL{}{}",
        exit.linux_el(),
        match exit {
            Handoff::Direct { el: 2 } => ", firmware not resident (every vCPU enabled)",
            Handoff::ResidentEl2 => ", firmware resident at EL2 (vCPU policy)",
            Handoff::ResidentEl3 => ", firmware resident at EL3",
            Handoff::Direct { .. } => "",
        }
    );
    let (acpi_used, rsdp_phys) = acpi_glue::build(&machine, acpi_buf, acpi_base)?;

    // The EFI memory map: every byte of RAM with its use.
    let efi_base = layout::handoff_efi();
    let dt_base = layout::handoff_dt();
    let handoff_end = layout::handoff_end();
    let mut carves = alloc::vec![
        Carve {
            base: acpi_base,
            size: acpi_used,
            ty: mem_type::ACPI_RECLAIM,
        },
        Carve {
            base: efi_base,
            size: dt_base - efi_base,
            ty: mem_type::RUNTIME_SERVICES_DATA,
        },
        Carve {
            base: dt_base,
            size: handoff_end - dt_base,
            ty: mem_type::LOADER_DATA,
        },
        // The firmware's own data, heap and stack: dead once Linux runs at
        // EL1, the resident PSCI handler's at EL2 (see resident.rs).
        Carve {
            base: handoff_end,
            size: fw_end - handoff_end,
            ty: if exit == Handoff::ResidentEl2 {
                mem_type::RUNTIME_SERVICES_CODE
            } else {
                mem_type::BOOT_SERVICES_DATA
            },
        },
        Carve {
            base: kernel.base,
            size: image.image_size,
            ty: mem_type::LOADER_DATA,
        },
    ];
    let acpi_used_end = align_up(acpi_base + acpi_used, efi::PAGE_SIZE);
    if acpi_used_end < efi_base {
        carves.push(Carve {
            base: acpi_used_end,
            size: efi_base - acpi_used_end,
            ty: mem_type::BOOT_SERVICES_DATA,
        });
    }
    if let Some(i) = &initrd {
        carves.push(Carve {
            base: i.base,
            size: i.size,
            ty: mem_type::LOADER_DATA,
        });
    }
    // At EL3 the resident firmware moves to the secure RAM (el3.rs), which
    // the memory map lists as reserved.
    let mut ram = platform.memory.clone();
    let secure = if el == 3 {
        let blob = find_dt(x0).ok_or("the device tree went missing")?;
        let s = el3::secure_ram(blob)?;
        ram.push(s);
        carves.push(Carve {
            base: s.0,
            size: s.1,
            ty: mem_type::RESERVED,
        });
        Some(s)
    } else {
        None
    };
    let mut map = efi::memory_map(&ram, &carves).map_err(|e| e.to_string())?;
    if let Some(s) = secure {
        el3::not_for_linux(&mut map, s);
    }
    // SAFETY: the linker script reserves the hand-off area for this.
    let efi_buf = unsafe { hw::ram_slice(efi_base, dt_base - efi_base) };
    let handoff = efi::build(efi_buf, efi_base, rsdp_phys, &map).map_err(|e| e.to_string())?;

    let chosen = dt::Chosen {
        bootargs: &cmdline,
        initrd: initrd.as_ref().map(|i| (i.base, i.base + i.size)),
        efi_system_table: handoff.system_table,
        efi_mmap_start: handoff.mmap_start,
        efi_mmap_size: handoff.mmap_size,
        efi_mmap_desc_size: handoff.desc_size,
        efi_mmap_desc_ver: handoff.desc_ver,
        rng_seed: platform.rng_seed.as_deref(),
        kaslr_seed: platform.kaslr_seed,
    };
    let blob = dt::write_chosen(&chosen).map_err(|e| format!("cannot write the DT: {e}"))?;
    // SAFETY: the linker script reserves the hand-off area for this.
    let dt_buf = unsafe { hw::ram_slice(dt_base, handoff_end - dt_base) };
    dt_buf
        .get_mut(..blob.len())
        .ok_or("the DT for Linux does not fit its area")?
        .copy_from_slice(&blob);

    let (t1, freq) = hw::counter();
    let us = (t1 - t0) * 1_000_000 / freq.max(1);
    println!("{NAME}: {}.{:03} ms in firmware", us / 1000, us % 1000);
    // Linux reads the hand-off data with its caches off.
    mmu::clean_to_poc(acpi_base, handoff_end - acpi_base);
    if let Some(s) = secure {
        return el3::enter(
            &platform,
            &cpus,
            s,
            (handoff_end, fw_end),
            t0,
            kernel.base,
            dt_base,
        );
    }
    if exit == Handoff::ResidentEl2 {
        return el2::enter(
            &platform,
            &cpus,
            (handoff_end, fw_end),
            kernel.base,
            dt_base,
        );
    }
    // SAFETY: the Image was validated and loaded at its 2 MiB aligned base +
    // text_offset, the DT was just written; the firmware needs nothing after.
    unsafe { hw::enter_kernel(exit.linux_el(), kernel.base, dt_base) }
}

fn load_kernel(
    fw: &mut FwCfg<hw::FwCfgMmio>,
    min_base: u64,
    ram_end: u64,
) -> Result<(Loaded, arm64_image::Header), String> {
    let size = fw.read_u32(key::KERNEL_SIZE) as u64;
    if size == 0 {
        return Err("no kernel given (QEMU -kernel)".into());
    }
    // Enough to recognise an x86 bzImage (its "HdrS" sits at 0x202) too.
    let mut head = [0u8; 0x400];
    let n = head.len().min(size as usize);
    fw.read(key::KERNEL_DATA, &mut head[..n])
        .map_err(|e| e.to_string())?;
    let image = arm64_image::Header::parse(&head[..n], size).map_err(|e| e.to_string())?;
    let base = image
        .load_address(min_base)
        .filter(|b| {
            b.checked_add(image.image_size)
                .is_some_and(|e| e <= ram_end)
        })
        .ok_or("the kernel does not fit in RAM")?;
    // SAFETY: [base, base + image_size) is RAM above the firmware's area,
    // checked above, and nothing else refers to it.
    let dst = unsafe { hw::ram_slice(base, size) };
    fw.read(key::KERNEL_DATA, dst).map_err(|e| e.to_string())?;
    Ok((Loaded { base, size }, image))
}

fn load_initrd(
    fw: &mut FwCfg<hw::FwCfgMmio>,
    after: u64,
    ram_end: u64,
) -> Result<Option<Loaded>, String> {
    let size = fw.read_u32(key::INITRD_SIZE) as u64;
    if size == 0 {
        return Ok(None);
    }
    let base = align_up(after, efi::PAGE_SIZE);
    if base + size > ram_end {
        return Err("the initrd does not fit in RAM".into());
    }
    // SAFETY: [base, base + size) is RAM above the kernel, checked above.
    let dst = unsafe { hw::ram_slice(base, size) };
    fw.read(key::INITRD_DATA, dst).map_err(|e| e.to_string())?;
    Ok(Some(Loaded { base, size }))
}

/// The possible vCPUs and the VMM's policy of which may come online: the fw_cfg
/// file `opt/org.hotstub/enabled-cpus` with a Linux-style CPU list (indices
/// in DT order); without it every vCPU is enabled. A malformed list is an
/// error rather than a silent fallback.
fn cpu_model(
    fw: &mut FwCfg<hw::FwCfgMmio>,
    files: &fw_cfg::Directory,
    mpidrs: &[u64],
) -> Result<CpuModel, String> {
    use hotstub::platform::cpulist;
    let mut model = resident::cpu_model(mpidrs);
    let text = match files.find(cpulist::FW_CFG_FILE) {
        // A list of every CPU QEMU can model is a few KiB at most.
        Some(file) if file.size > 16384 => {
            return Err(format!(
                "{}: {} bytes is not a CPU list",
                cpulist::FW_CFG_FILE,
                file.size
            ));
        }
        Some(file) => {
            let mut text = alloc::vec![0u8; file.size as usize];
            fw.read(file.key, &mut text).map_err(|e| e.to_string())?;
            Some(text)
        }
        None => None,
    };
    cpulist::apply_policy(&mut model, text.as_deref())
        .map_err(|e| format!("{}: {e}", cpulist::FW_CFG_FILE))?;
    Ok(model)
}

fn read_cmdline(fw: &mut FwCfg<hw::FwCfgMmio>) -> Result<String, String> {
    // Linux arm64's COMMAND_LINE_SIZE is 2048 (asm/setup.h); anything much
    // larger is a broken VMM, not a command line.
    let size = fw.read_u32(key::CMDLINE_SIZE) as usize;
    if size > 4096 {
        return Err(format!(
            "kernel command line of {size} bytes is longer than Linux accepts"
        ));
    }
    let mut buf: Vec<u8> = alloc::vec![0; size];
    fw.read(key::CMDLINE_DATA, &mut buf)
        .map_err(|e| e.to_string())?;
    // QEMU includes the terminating NUL in CMDLINE_SIZE.
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    buf.truncate(end);
    String::from_utf8(buf).map_err(|_| "the kernel command line is not UTF-8".into())
}
