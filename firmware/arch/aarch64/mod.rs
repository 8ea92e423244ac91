//! aarch64 (QEMU virt) entry and platform code: discover the machine from
//! the DT, load the kernel over fw_cfg, describe the machine in ACPI, hand
//! off through a minimal EFI system table and a `/chosen`-only DT.

extern crate alloc;

mod acpi_glue;
mod cpu;
mod el2;
mod el3;
mod entry;
mod hw;
mod load;
mod mmu;
mod psci_glue;
mod trap;
mod vectors;

use alloc::boxed::Box;
use alloc::string::String;
use hotstub::resident::handoff::{not_for_linux, secure_ram, Handoff};

use super::ram_slice;
use hotstub::acpi;
use hotstub::boot::arm64_image;
use hotstub::boot::efi::{self, mem_type, Carve};
use hotstub::boot::payload;
use hotstub::boot::pipeline::{self, Never, Result};
use hotstub::boot::stub_dt;
use hotstub::platform::cpus::CpuModel;
use hotstub::platform::dt;
use hotstub::platform::fw_cfg::{self, Directory, FwCfg};
use hotstub::psci::Conduit;
use hotstub::{println, NAME};
use hw::layout;
use load::{cpu_model, load_initrd, load_kernel, read_cmdline, Loaded};

/// Where QEMU virt's RAM starts and a firmware finds the DTB (hw/arm/virt.c
/// `base_memmap[VIRT_MEM]`; hw/arm/boot.c puts the DTB at the RAM base when
/// a firmware is loaded). cloud-hypervisor uses the same address.
const RAM_BASE_DTB: u64 = 0x4000_0000;
/// QEMU virt's PL011 (`base_memmap[VIRT_UART]`): only used to report that
/// the DT itself is unusable, when there is no other way to find a console.
const FALLBACK_UART: u64 = 0x0900_0000;
/// Heap the resident EL2 firmware may still need beyond its handler stacks:
/// the PSCI state and policy (a few dozen bytes per vCPU) and the hand-off's
/// last temporaries (memory map, stub DT).
const RESIDENT_SLACK: usize = 32 << 10;

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
pub fn power_off() -> ! {
    if let Some(c) = conduit() {
        hw::smccc(c, hotstub::psci::ids::SYSTEM_OFF, 0, 0, 0);
    }
    SECURE_POWEROFF.raise();
    // SYSTEM_OFF and the power-off line do not return; at EL3 with no
    // power-off line in the DT there is nothing left but to stop.
    hw::halt()
}

/// The resident firmware's fatal path (after the boot flow has ended):
/// the same one-line error, then off.
pub fn fatal(msg: &str) -> ! {
    pipeline::report(&msg);
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
    let el = hw::current_el();
    mmu::enable(el);
    super::init_heap();
    pipeline::run(VirtBoot { x0, t0, el })
}

/// An exception before the resident firmware runs (at EL1, always).
fn boot_exception(index: u64) -> ! {
    let (esr, elr, far) = hw::fault_registers();
    // Vector groups of 4 (Arm ARM D1.10.2): current EL with SP_EL0, current
    // EL with SP_ELx, lower EL AArch64, lower EL AArch32; within each,
    // synchronous, IRQ, FIQ, SError.
    const KIND: [&str; 4] = hw::EXCEPTION_KIND;
    pipeline::report(&format_args!(
        "unexpected {} exception at EL{} (vector {index}): ESR={esr:#x} ELR={elr:#x} FAR={far:#x}",
        KIND[(index & 3) as usize],
        hw::current_el()
    ));
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

/// The virt boot, step by step (`boot::pipeline`).
struct VirtBoot {
    /// x0 at reset (a DT address under cloud-hypervisor).
    x0: u64,
    /// Counter at reset, for the time spent in the firmware.
    t0: u64,
    /// The EL the firmware runs at.
    el: u8,
}

/// What discovery and the later steps learn about the machine.
struct Machine {
    platform: dt::Board,
    /// End of the RAM bank that holds the firmware.
    ram_end: u64,
    /// How Linux is entered and whether the firmware stays (set with the
    /// tables, which describe it).
    exit: Handoff,
    acpi_used: u64,
    /// At EL3, the secure RAM the resident firmware moves to.
    secure: Option<(u64, u64)>,
    /// At EL2, the (base, size) ranges the resident firmware keeps.
    resident: [(u64, u64); 2],
    /// At EL3 with the secure UART: the runtime vCPU hotplug.
    cpu_hotplug: Option<acpi::cpuhp::CpuHotplug>,
}

/// The kernel and its data in memory.
struct Linux {
    kernel: Loaded,
    image: arm64_image::Header,
    initrd: Option<Loaded>,
    cmdline: String,
    rsdp: u64,
}

impl pipeline::Arch for VirtBoot {
    type Transport = hw::FwCfgMmio;
    type Machine = Machine;
    type Loaded = Linux;

    fn name(&self) -> &'static str {
        match self.el {
            3 => "aarch64 (EL3)",
            2 => "aarch64 (EL2)",
            _ => "aarch64 (EL1)",
        }
    }

    fn discover(&mut self) -> Result<(Machine, FwCfg<hw::FwCfgMmio>)> {
        let el = self.el;
        let platform = match find_dt(self.x0).map(dt::parse) {
            Some(Ok(p)) => p,
            Some(Err(e)) => {
                set_console(FALLBACK_UART);
                return Err(hotstub::err!("{e}"));
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
                // SAFETY: the DT names this PL061 as the secure GPIO.
                unsafe { SECURE_POWEROFF.set(sg.base, pin) };
            }
        }
        let (uart, _) = platform.uart.ok_or("device tree lacks a PL011 console")?;
        set_console(uart);
        let fw_cfg_base = platform
            .fw_cfg
            .ok_or("device tree lacks fw_cfg: no way to load a kernel")?;
        // SAFETY: the DT names this fw_cfg MMIO base.
        let fw = FwCfg::probe(unsafe { hw::FwCfgMmio::new(fw_cfg_base) })?;
        let machine = Machine {
            platform,
            ram_end: 0,
            exit: Handoff::decide(el, true),
            acpi_used: 0,
            secure: None,
            resident: [(0, 0); 2],
            cpu_hotplug: None,
        };
        Ok((machine, fw))
    }

    fn prepare(&mut self, m: &mut Machine, fw: &mut FwCfg<hw::FwCfgMmio>) -> Result<()> {
        if !fw.has_dma() {
            return Err("fw_cfg without DMA is not supported".into());
        }
        let (fw_start, fw_end) = layout::fw_ram();
        let ram = *m
            .platform
            .memory
            .iter()
            .find(|&&(b, s)| b <= fw_start && fw_end <= b + s)
            .ok_or("RAM does not cover the firmware's area")?;
        m.ram_end = ram.0 + ram.1;
        Ok(())
    }

    fn cpus(
        &mut self,
        m: &mut Machine,
        fw: &mut FwCfg<hw::FwCfgMmio>,
        files: &Directory,
    ) -> Result<CpuModel> {
        cpu_model(fw, files, &m.platform.cpus)
    }

    fn tables(
        &mut self,
        m: &mut Machine,
        cpus: &CpuModel,
        fw: &mut FwCfg<hw::FwCfgMmio>,
        files: &Directory,
    ) -> Result<u64> {
        let el = self.el;
        let blob = fw
            .read_named(files, acpi::vmm::QEMU_TABLES, acpi::vmm::QEMU_TABLES_MAX)?
            .unwrap_or_default();
        let mem_hotplug = acpi::memhp::from_qemu_tables(&blob)?;
        let loader = fw
            .read_named(files, acpi::vmm::QEMU_LOADER, acpi::vmm::QEMU_TABLES_MAX)?
            .unwrap_or_default();
        // Taken over, not re-derived: see acpi::vmm.
        let vmm_tables = acpi::vmm::take_over(&blob, &loader, acpi::vmm::VIRT, cpus);
        // At EL1, and at EL2 with every vCPU enabled, Linux is entered at the
        // firmware's EL and calls QEMU's PSCI as the DT names it; with a policy
        // at EL2, and always at EL3, the firmware stays resident as the PSCI
        // (psci_glue.rs).
        let exit = Handoff::decide(el, cpus.enabled_count() == cpus.len());
        m.exit = exit;
        let platform = &m.platform;
        let conduit = exit.linux_conduit(platform.psci)?;
        if el == 1 && cpus.enabled_count() != cpus.len() {
            println!(
                "{NAME}: warning: at EL1 the vCPU policy is not enforced (use virtualization=on)"
            );
        }
        println!(
            "{NAME}: Linux enters at EL{}{}",
            exit.linux_el(),
            match exit {
                Handoff::Direct { el: 2 } => " (firmware not resident)",
                Handoff::ResidentEl2 | Handoff::ResidentEl3 => " (firmware resident)",
                Handoff::Direct { .. } => "",
            }
        );
        // Runtime vCPU hotplug needs the secure UART for the host's channel
        // and the firmware at EL3 to serve it (el3/control.rs); its shared
        // block is the end of the ACPI area.
        let acpi_base = layout::handoff_acpi();
        let mut acpi_end = layout::handoff_efi();
        let cpu_hotplug = if exit == Handoff::ResidentEl3 && platform.secure_uart.is_some() {
            let intid = dt::SPI_BASE + el3::GED_SPI;
            if el3::spi_in_use(platform, intid) {
                return Err(hotstub::err!(
                    "SPI {} for the vCPU hotplug GED is taken by a device",
                    el3::GED_SPI
                ));
            }
            let size = align_up(
                (cpus.len() * hotstub::resident::hotplug::SLOT) as u64,
                efi::PAGE_SIZE,
            );
            acpi_end -= size;
            Some(acpi::cpuhp::CpuHotplug {
                block: acpi_end,
                intid,
            })
        } else {
            None
        };
        m.cpu_hotplug = cpu_hotplug;
        let input = acpi_glue::Input {
            platform,
            cpus,
            ged: platform.qemu_acpi_ged(files.find("etc/acpi/tables").is_some()),
            conduit,
            el2_vtimer: exit.el2_vtimer(cpu::features().vhe, platform.timer_el2_virt),
            mem_hotplug,
            cpu_hotplug,
            vmm_tables,
        };
        // ACPI tables, then the RSDP right behind them.
        let acpi_len = acpi_end - acpi_base;
        // SAFETY: the linker script reserves the hand-off area for this.
        let acpi_buf = unsafe { ram_slice(acpi_base, acpi_len) };
        let (acpi_used, rsdp_phys) = acpi_glue::build(input, acpi_buf, acpi_base)?;
        m.acpi_used = acpi_used;
        Ok(rsdp_phys)
    }

    fn load(&mut self, m: &mut Machine, fw: &mut FwCfg<hw::FwCfgMmio>, rsdp: u64) -> Result<Linux> {
        let (_, fw_end) = layout::fw_ram();
        let (kernel, image) = load_kernel(fw, fw_end, m.ram_end)?;
        let initrd = load_initrd(fw, kernel.base + image.image_size, m.ram_end)?;
        let cmdline = read_cmdline(fw)?;
        Ok(Linux {
            kernel,
            image,
            initrd,
            cmdline,
            rsdp,
        })
    }

    fn prepare_handoff(&mut self, m: &mut Machine, cpus: &CpuModel, l: &mut Linux) -> Result<()> {
        let (_, fw_end) = layout::fw_ram();
        let acpi_base = layout::handoff_acpi();
        let acpi_used = m.acpi_used;
        let platform = &m.platform;
        let (kernel, image, initrd) = (&l.kernel, &l.image, &l.initrd);
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
            Carve {
                base: kernel.base,
                size: image.image_size,
                ty: mem_type::LOADER_DATA,
            },
        ];
        // The firmware's own data, heap and stack are dead once Linux runs,
        // unless the firmware stays at EL2 (psci_glue.rs). Then it keeps its
        // data, the heap as far as it has grown plus room for the handler
        // stacks and PSCI state it sets up next, and the boot stack (the
        // fatal path's fallback); the heap region above is Linux's.
        if m.exit == Handoff::ResidentEl2 {
            let extra = (cpus.len() + 1) * vectors::STACK_SIZE + RESIDENT_SLACK;
            let heap_end = super::heap_limit(extra);
            let stack = layout::stack_bottom();
            m.resident = [
                (handoff_end, heap_end - handoff_end),
                (stack, fw_end - stack),
            ];
            carves.extend(m.resident.map(|(base, size)| Carve {
                base,
                size,
                ty: mem_type::RUNTIME_SERVICES_CODE,
            }));
        } else {
            carves.push(Carve {
                base: handoff_end,
                size: fw_end - handoff_end,
                ty: mem_type::BOOT_SERVICES_DATA,
            });
        }
        let acpi_used_end = align_up(acpi_base + acpi_used, efi::PAGE_SIZE);
        // The hotplug's shared block: AML's OperationRegions live in it for
        // good (ACPI 6.5 15.3: AddressRangeNVS).
        let mut spare_end = efi_base;
        if let Some(h) = m.cpu_hotplug {
            spare_end = h.block;
            carves.push(Carve {
                base: h.block,
                size: efi_base - h.block,
                ty: mem_type::ACPI_NVS,
            });
        }
        if acpi_used_end < spare_end {
            carves.push(Carve {
                base: acpi_used_end,
                size: spare_end - acpi_used_end,
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
        let secure = if self.el == 3 {
            let blob = find_dt(self.x0).ok_or("the device tree went missing")?;
            let s = secure_ram(blob)?;
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
        let mut map = efi::memory_map(&ram, &carves)?;
        if let Some(s) = secure {
            not_for_linux(&mut map, s);
        }
        // SAFETY: the linker script reserves the hand-off area for this.
        let efi_buf = unsafe { ram_slice(efi_base, dt_base - efi_base) };
        let handoff = efi::build(efi_buf, efi_base, l.rsdp, &map)?;

        let chosen = stub_dt::Chosen {
            bootargs: &l.cmdline,
            initrd: initrd.as_ref().map(|i| (i.base, i.base + i.size)),
            efi_system_table: handoff.system_table,
            efi_mmap_start: handoff.mmap_start,
            efi_mmap_size: handoff.mmap_size,
            efi_mmap_desc_size: handoff.desc_size,
            efi_mmap_desc_ver: handoff.desc_ver,
            rng_seed: platform.rng_seed.as_deref(),
            kaslr_seed: platform.kaslr_seed,
        };
        let blob = stub_dt::write_chosen(&chosen);
        // SAFETY: the linker script reserves the hand-off area for this.
        let dt_buf = unsafe { ram_slice(dt_base, handoff_end - dt_base) };
        dt_buf
            .get_mut(..blob.len())
            .ok_or("the DT for Linux does not fit its area")?
            .copy_from_slice(&blob);
        m.secure = secure;
        // Linux reads the hand-off data with its caches off.
        mmu::clean_to_poc(acpi_base, handoff_end - acpi_base);
        Ok(())
    }

    fn elapsed_us(&self) -> u64 {
        let (t1, freq) = hw::counter();
        (t1 - self.t0) * 1_000_000 / freq.max(1)
    }

    fn enter(self, m: Machine, cpus: CpuModel, l: Linux) -> Result<Never> {
        let (_, fw_end) = layout::fw_ram();
        let (handoff_end, dt_base) = (layout::handoff_end(), layout::handoff_dt());
        let platform = &m.platform;
        if let Some(s) = m.secure {
            return Ok(el3::enter(
                platform,
                &cpus,
                m.cpu_hotplug,
                s,
                (handoff_end, fw_end),
                self.t0,
                l.kernel.base,
                dt_base,
            )?);
        }
        if m.exit == Handoff::ResidentEl2 {
            return Ok(el2::enter(
                platform,
                &cpus,
                &m.resident,
                l.kernel.base,
                dt_base,
            )?);
        }
        // SAFETY: the Image was validated and loaded at its 2 MiB aligned base +
        // text_offset, the DT was just written; the firmware needs nothing after.
        unsafe { hw::enter_kernel(m.exit.linux_el(), l.kernel.base, dt_base) }
    }

    fn power_off() -> ! {
        power_off()
    }
}
