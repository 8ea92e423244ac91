//! x86_64 (QEMU q35, pc and microvm) entry and platform code.

mod ch;
mod disk_code;
mod idt;
mod io;
mod linux;
mod microvm;
mod paging;
pub(super) mod pci_ports;
mod piix;
mod pvh;
mod q35;
mod stop;
mod tables;

use linux::{jump_to_linux, load_linux, place_zero_page, LoadedLinux, Payload};
use tables::{build_acpi, pci_mem32, place_smbios};

use super::tpm::TisMmio;
use super::{ram_slice, virtio};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::arch::global_asm;
use hotstub::acpi;
use hotstub::bail;
use hotstub::boot::bzimage::{BootParams, Kernel, ENTRY64_OFFSET, ZERO_PAGE_LEN};
use hotstub::boot::from_disk;
use hotstub::boot::machine::{Pc, Qemu, TablesFrom};
use hotstub::boot::payload;
use hotstub::boot::pipeline::{self, Never, Result, Tables};
use hotstub::platform::cpus::{CpuModel, Vcpu};
use hotstub::platform::fw_cfg::{self, Directory, FwCfg};
use hotstub::platform::memmap::{Kind, MemoryMap};
use hotstub::platform::x86_board::Board;
use hotstub::println;
use hotstub::tpm::{self, measure::Measure};

global_asm!(include_str!("boot.S"), options(att_syntax));

/// Fixed low-memory layout. The page tables are built by boot.S.
mod layout {
    // 0x1000-0x6fff and 0x8000-0x8fff: the page tables boot.S builds
    // when the CPU has no 1 GiB pages.
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
    /// Where the firmware itself lives while it runs (linker/x86_64.ld):
    /// its RAM from 1 MiB to 4 MiB, and on the PVH entry its code from 4
    /// MiB to 6 MiB (boot.S XIP_PVH).
    pub const FIRMWARE: (u64, u64) = (0x10_0000, 0x60_0000);
    /// The ROM image mapped just below 4 GiB (linker/x86_64.ld).
    pub const ROM: (u64, u64) = (0xfffc_0000, 0x1_0000_0000);
    /// The reset path's page tables (8 KiB) and the stub (4 KiB) at the
    /// ROM's top (linker/x86_64.ld).
    pub const ROM_TABLES: u64 = 0xffff_d000;
    /// The TPM event log (reserved in the e820 when there is a TPM):
    /// conventional memory below the EBDA that nothing else here uses.
    pub const TPM_LOG: u64 = 0x8_0000;
}

/// The TPM's TIS locality 0 on a PC (TCG PC Client Platform TPM Profile
/// 5.4.2; QEMU hw/tpm/tpm_tis_isa.c TPM_TIS_ADDR_BASE).
const TPM_TIS: u64 = 0xfed4_0000;

/// COM1 at its ISA address; QEMU's PC boards always have it (hw/i386/pc.c).
const COM1: u16 = 0x3f8;

/// COM1's line status register and its "transmit holding register empty"
/// bit (NS16550A datasheet, LSR bit 5; QEMU hw/char/serial.c UART_LSR_THRE).
const COM1_LSR: u16 = COM1 + 5;
const LSR_THRE: u8 = 1 << 5;

/// The console: COM1's transmit path written directly. The uart_16550
/// crate programs the port (`init_console`), but its write path costs
/// about a hundred instructions a byte, which `bench --icount` counts.
struct Com1;

impl core::fmt::Write for Com1 {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            if b == b'\n' {
                com1_put(b'\r');
            }
            com1_put(b);
        }
        Ok(())
    }
}

fn com1_put(b: u8) {
    while io::inb(COM1_LSR) & LSR_THRE == 0 {
        core::hint::spin_loop();
    }
    io::outb(COM1, b);
}

static mut CONSOLE: Com1 = Com1;

fn init_console() {
    // SAFETY: COM1's eight ports belong to the firmware; this runs once on
    // the only CPU before anything prints, and takes the one mutable
    // reference to CONSOLE. The crate's port (line settings, FIFOs) is
    // not kept: Com1 writes the same ports.
    unsafe {
        if uart_16550::Uart16550Tty::new_port(COM1, Default::default()).is_ok() {
            hotstub::console::set_sink(&mut *core::ptr::addr_of_mut!(CONSOLE));
        }
    }
}

/// Switches the machine off, or resets it where the board has no way
/// off (`stop`); halts only if nothing works.
pub fn power_off() -> ! {
    println!("hotstub: powering off");
    stop::stop_cloud_hypervisor();
    stop::stop();
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
        buf.fill_with(|| io::inb(0x511));
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
    // The PM block first (ICH9's or PIIX4's), so that a later error can
    // power off; on any other board nothing is written before `describe`
    // refuses it.
    let board = stop::identify();
    let t0 = enable_pm(board);
    init_console();
    idt::init();
    super::init_heap();
    if board == Board::Microvm {
        pipeline::run(microvm::MicrovmBoot::new())
    }
    pipeline::run(PcBoot {
        t0,
        board,
        tpm: Measure::off(),
        pvh: None,
        acpi_area: (0, 0),
    })
}

/// Turns on the board's PM block and returns the PM timer's reading (0
/// on a board Hotstub refuses): both boards' timers then tick at the same
/// place (q35::PM_BASE).
fn enable_pm(board: Board) -> u32 {
    match board {
        Board::Q35 => {
            q35::enable_pm();
            q35::pm_timer()
        }
        Board::I440fx => {
            piix::enable_pm();
            q35::pm_timer()
        }
        Board::Microvm | Board::NoPci | Board::CloudHypervisor | Board::Other(_) => 0,
    }
}

/// Microseconds from the 24-bit PM timer, which wraps every 4.7 s: each
/// call adds the ticks since the last, so callers must poll more often
/// than that (the TPM's waits do).
fn pm_us() -> u64 {
    use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
    static LAST: AtomicU32 = AtomicU32::new(0);
    static TICKS: AtomicU64 = AtomicU64::new(0);
    let now = q35::pm_timer();
    let d = now.wrapping_sub(LAST.swap(now, Relaxed)) & 0x00ff_ffff;
    let t = TICKS.fetch_add(u64::from(d), Relaxed) + u64::from(d);
    t * 1_000_000 / q35::PM_TMR_HZ
}

/// The boot of QEMU's PC machines, step by step (`boot::pipeline`).
struct PcBoot {
    /// PM timer at reset, for the time spent in the firmware.
    t0: u32,
    board: Board,
    /// Measured boot, on once a TPM answered.
    tpm: Measure<'static, TisMmio>,
    /// Entered through PVH (QEMU's `-kernel` with the ELF image): the
    /// start info's address. fw_cfg's kernel is then the firmware itself.
    pvh: Option<u32>,
    /// Where the ACPI tables go (`tables::acpi_area`), `[start, end)`.
    acpi_area: (u64, u64),
}

/// The x86 hand-off: the boot protocol's 64-bit entry with the zero page.
struct Plan {
    /// APIC IDs past 254 exist only for an OS in x2APIC mode.
    x2apic: bool,
}

impl pipeline::Arch for PcBoot {
    type Found = FwCfg<PioFwCfg>;
    type Sources = Qemu<PioFwCfg>;
    type Machine = Pc;
    type Plan = Plan;
    type Loaded = LoadedLinux;

    fn name(&self) -> &'static str {
        "x86_64"
    }

    fn discover(&mut self) -> Result<FwCfg<PioFwCfg>> {
        Ok(FwCfg::probe(PioFwCfg)?)
    }

    fn describe(&mut self, fw: FwCfg<PioFwCfg>) -> Result<(Pc, Qemu<PioFwCfg>)> {
        match self.board {
            Board::Q35 => q35::init(),
            Board::I440fx => {
                piix::init();
                // The bridges' windows sit at the top of the 32-bit PCI
                // window, below the I/O APIC (`tables::pci_mem32`).
                piix::setup_bridges(&piix::bridges(), q35::IOAPIC_ADDR);
            }
            Board::Microvm => bail!(
                "microvm is booted with -bios, not through PVH"
            ),
            Board::NoPci => bail!(
                "unsupported machine: no PCI host bridge and no virtio-mmio (QEMU's isapc?); start QEMU with -M q35, pc or microvm"
            ),
            Board::CloudHypervisor => bail!(
                "cloud-hypervisor loads the firmware as a PVH --firmware (hotstub-x86_64.elf)"
            ),
            Board::Other(id) => bail!(
                "unsupported machine: host bridge {:04x}:{:04x} is neither Q35 nor i440FX",
                id & 0xffff,
                id >> 16
            ),
        }
        if !fw.has_dma() {
            println!("hotstub: fw_cfg has no DMA interface, loading byte by byte (slow)");
        }
        let mut src = Qemu::open(fw)?;
        let mut map = src.e820()?;
        // The boot CPU's MTRRs only: the firmware never wakes the APs.
        // Linux writes the boot CPU's MTRR state into every AP it starts,
        // at boot and at hotplug (arch/x86/kernel/cpu/cacheinfo.c:
        // cache_aps_init / cache_ap_online -> cache_cpu_init ->
        // mtrr_generic_set_state), and QEMU's TCG clears an AP's MTRRs at
        // the INIT that Linux's start-up sends anyway, so a copy made here
        // never reached Linux (it reports "inconsistent MTRR settings" and
        // corrects them either way, as behind SeaBIOS).
        q35::setup_mtrrs(&map);
        let cpus = discover_cpus(&mut src.fw, cpuhp_base(self.board))?;
        // Firmware-owned and device ranges the kernel must not use as RAM.
        map.set(
            layout::LEGACY_HOLE.0,
            layout::LEGACY_HOLE.1 - layout::LEGACY_HOLE.0,
            Kind::Reserved,
        );
        if self.board == Board::Q35 {
            map.set(q35::MMCONFIG_BASE, q35::MMCONFIG_SIZE, Kind::Reserved);
        }
        map.set(layout::ROM.0, layout::ROM.1 - layout::ROM.0, Kind::Reserved);
        self.acpi_area = tables::acpi_area(&mut map, cpus.len())?;
        let device_mem_end = src.reserved_memory_end()?;
        let board = self.board;
        let candidates = || virtio::candidates(disks(board, &map));
        let payload = match self.pvh {
            None => {
                // Without -kernel the disk code runs (from_disk::choose
                // parses the boot choice before it looks at disks): copy it
                // in first.
                if src.fw.read_u32(fw_cfg::key::KERNEL_SIZE) == 0 {
                    disk_code::load()?;
                }
                from_disk::choose(&mut src, "bzImage", candidates)?
            }
            Some(at) => {
                let info = pvh::start_info(at)?;
                let append = String::from_utf8(info.cmdline)
                    .map_err(|_| "PVH start info: the command line is not UTF-8")?;
                let append = (!append.trim().is_empty()).then_some(append);
                from_disk::choose_pvh(&mut src, candidates, append)?
            }
        };
        // QEMU's TPM configuration file exists with a TPM (hw/i386/acpi-build.c
        // acpi_setup).
        if src.files.find(fw_cfg::file::TPM_CONFIG).is_some() {
            // The TPM driver and the hashes are stored with the disk code.
            disk_code::load()?;
            map.set(layout::TPM_LOG, tpm::LOG_SIZE as u64, Kind::Reserved);
            // SAFETY: the TIS page is the TPM's (QEMU's tpm-tis), uncached
            // like the rest of the MMIO below 4 GiB; the log area is low
            // RAM reserved for it just above.
            self.tpm = unsafe {
                Measure::start(
                    TisMmio::new(TPM_TIS, pm_us),
                    ram_slice(layout::TPM_LOG, tpm::LOG_SIZE as u64),
                )
            };
            // SAFETY: the ROM image is mapped read-only below 4 GiB.
            let rom = unsafe { ram_slice(layout::ROM.0, layout::ROM.1 - layout::ROM.0) };
            self.tpm.firmware(hotstub::VERSION_LINE, &[rom]);
            for name in [fw_cfg::file::ENABLED_CPUS, fw_cfg::file::BOOT] {
                if let Some(v) = src.file(name, 4096)? {
                    self.tpm.config(name, &v);
                }
            }
        }
        let m = Pc {
            board,
            map,
            device_mem_end,
            cpus: CpuModel::new(cpus),
            payload,
            tables: TablesFrom::Build,
        };
        Ok((m, src))
    }

    fn plan(&mut self, m: &Pc) -> Result<Plan> {
        Ok(Plan {
            x2apic: m.cpus.iter().any(|c| c.hw_id >= 0xff),
        })
    }

    fn tables(&mut self, m: &Pc, _: &Plan, src: &mut Qemu<PioFwCfg>) -> Result<Tables> {
        if self.pvh.is_some() {
            // SeaBIOS ran before the PVH option ROM and left its SMBIOS
            // and RSDP in the BIOS area, where Linux's scans would find
            // its SMBIOS before Hotstub's.
            // SAFETY: the BIOS area is RAM after q35::init (PAM), and
            // nothing of SeaBIOS's runs again.
            unsafe { ram_slice(layout::ACPI.0, layout::ACPI.1 - layout::ACPI.0) }.fill(0);
        }
        let area = self.acpi_area;
        let log = self
            .tpm
            .is_on()
            .then_some((layout::TPM_LOG, tpm::LOG_SIZE as u32));
        let t = match m.tables {
            TablesFrom::Build => build_tables(area, m, src, log)?,
            TablesFrom::Adopted { .. } => return Err(hotstub::err!("no adopted tables on q35")),
        };
        // SAFETY: what the tables just took of the BIOS area, the RSDP,
        // and the RAM area the tables of many vCPUs took instead.
        let (low, rsdp, high) = unsafe {
            (
                ram_slice(layout::ACPI.0, t.used),
                ram_slice(t.rsdp, 36),
                ram_slice(area.0, area.1 - area.0),
            )
        };
        if area.0 == layout::ACPI.0 {
            self.tpm.tables(&[low, rsdp]);
        } else {
            self.tpm.tables(&[high, low, rsdp]);
        }
        Ok(t)
    }

    fn load(
        &mut self,
        m: &Pc,
        _: &Plan,
        src: &mut Qemu<PioFwCfg>,
        t: &Tables,
    ) -> Result<LoadedLinux> {
        let linux = match m.payload {
            payload::From::FwCfg => {
                let measured = self.tpm.is_on();
                let linux = load_linux(Payload::FwCfg(&mut src.fw), &m.map, t.rsdp, measured)?;
                measure_payload(&mut self.tpm, &linux, None);
                linux
            }
            payload::From::Disk => {
                let disk = src.disk.as_mut().ok_or("no disk payload was chosen")?;
                let measured = self.tpm.is_on();
                let linux = load_linux(Payload::Disk(disk), &m.map, t.rsdp, measured);
                if let Ok(l) = &linux {
                    measure_payload(&mut self.tpm, l, Some(disk.found()));
                }
                // Dropping the payload resets the disk and switches its PCI
                // decoding off before Linux runs. (Only here: its drop code
                // is disk code, in RAM only when a disk boots.)
                src.disk = None;
                linux?
            }
        };
        core::mem::replace(&mut self.tpm, Measure::off()).finish();
        Ok(linux)
    }

    fn prepare_handoff(
        &mut self,
        m: &Pc,
        _: &Plan,
        _: &Tables,
        linux: &mut LoadedLinux,
    ) -> Result<()> {
        place_zero_page(linux, &m.map);
        Ok(())
    }

    fn elapsed_us(&self) -> u64 {
        let ticks = q35::pm_timer().wrapping_sub(self.t0) & 0x00ff_ffff;
        u64::from(ticks) * 1_000_000 / q35::PM_TMR_HZ
    }

    fn enter(self, _: Pc, p: Plan, linux: LoadedLinux) -> Result<Never> {
        if p.x2apic && q35::enable_x2apic() {
            println!("hotstub: x2APIC mode on (APIC IDs past 254)");
        }
        jump_to_linux(linux.kernel.load_addr + ENTRY64_OFFSET, layout::ZERO_PAGE)
    }

    fn power_off() -> ! {
        power_off()
    }
}

/// Measures what `load` placed: the cmdline in its slot, the setup part
/// and kernel as loaded, the initrd; on a disk also the configuration that
/// chose them (`found`).
fn measure_payload(
    tpm: &mut Measure<'static, TisMmio>,
    linux: &LoadedLinux,
    found: Option<&hotstub::disk::Found>,
) {
    if !tpm.is_on() {
        return;
    }
    // SAFETY: the command line slot, the kernel and the initrd as
    // `load_linux` placed them; nothing writes them while these live.
    let (slot, kernel) = unsafe {
        (
            ram_slice(layout::CMDLINE, layout::CMDLINE_MAX),
            ram_slice(linux.kernel.load_addr, linux.kernel_size),
        )
    };
    let p = &linux.params;
    // SAFETY: as above; an initrd is never at 0 (the firmware's low RAM).
    let initrd = (p.initrd_size > 0).then(|| unsafe { ram_slice(p.initrd_addr, p.initrd_size) });
    let cmdline = &slot[..slot.iter().position(|&b| b == 0).unwrap_or(slot.len())];
    let names = found.map(tpm_names);
    let (kname, iname) = names
        .as_ref()
        .map_or(("fw_cfg:kernel", "fw_cfg:initrd"), |n| (&n.0, &n.1));
    tpm.payload(&tpm::measure::Payload {
        config: found.map(|f| (f.config.0.as_str(), f.config.1.as_bytes())),
        cmdline,
        kernel: (kname, &[&linux.setup, kernel]),
        initrd: initrd.map(|i| (iname, &i[..])),
    });
}

/// A disk payload's kernel path and initrd paths, for the event log.
fn tpm_names(f: &hotstub::disk::Found) -> (alloc::string::String, alloc::string::String) {
    let initrds: Vec<&str> = f.initrd_paths().collect();
    (f.kernel_path().into(), initrds.join(" "))
}

/// Hotstub's own tables in `area` (`tables::acpi_area`), SMBIOS after
/// them in the legacy BIOS area.
fn build_tables(
    area: (u64, u64),
    m: &Pc,
    src: &mut Qemu<PioFwCfg>,
    tpm_log: Option<(u64, u32)>,
) -> Result<Tables> {
    let blob = src
        .file(fw_cfg::file::ACPI_TABLES, acpi::vmm::QEMU_TABLES_MAX)?
        .unwrap_or_default();
    let loader = src
        .file(fw_cfg::file::TABLE_LOADER, acpi::vmm::QEMU_TABLES_MAX)?
        .unwrap_or_default();
    // Taken over, not re-derived: see acpi::vmm.
    let vmm_tables = acpi::vmm::take_over(&blob, &loader, acpi::vmm::Q35, &m.cpus, tpm_log);
    // QEMU's TPM configuration file exists with a TPM (hw/i386/acpi-build.c
    // acpi_setup).
    let tpm_tis = src.files.find(fw_cfg::file::TPM_CONFIG).is_some();
    let pci_hotplug = match m.board {
        Board::I440fx => pc_pci_hotplug(&blob)?,
        _ => acpi_pci_hotplug(&blob)?,
    };
    let pvpanic_io = src.pvpanic_port()?;
    let (rsdp, free) = build_acpi(area, m, vmm_tables, pci_hotplug, pvpanic_io, tpm_tis)?;
    place_smbios(&mut src.fw, &src.files, free);
    Ok(Tables {
        rsdp,
        used: free - layout::ACPI.0,
        smbios3: None,
    })
}

/// QEMU's ACPI PCI hotplug when it is on: the root ports it hotplugs and
/// their bus selectors, from QEMU's own DSDT in `tables` (`acpi::pcihp`).
fn acpi_pci_hotplug(tables: &[u8]) -> Result<Option<acpi::pcihp::PciHotplug>> {
    if !q35::acpi_pci_hotplug()? {
        return Ok(None);
    }
    // Without root ports nothing hotplugs (QEMU's root bus on q35 does not).
    let root_ports = q35::root_ports();
    if root_ports.is_empty() {
        return Ok(Some(acpi::pcihp::PciHotplug::q35(Vec::new())));
    }
    if tables.is_empty() {
        println!("hotstub: warning: ACPI PCI hotplug is on, but QEMU offers no ACPI tables to name its root ports; no PCI hotplug");
        return Ok(Some(acpi::pcihp::PciHotplug::q35(Vec::new())));
    }
    let mut ports = acpi::pcihp::from_qemu_tables(tables)?;
    // Slot 0 is all a root port has; a bridge with 32 slots is not described.
    ports.retain(|p| root_ports.contains(&p.adr));
    Ok(Some(acpi::pcihp::PciHotplug::q35(ports)))
}

/// PIIX4's ACPI PCI hotplug when it is on: the root bus and the PCI
/// bridges on it, each with the bsel QEMU's own DSDT gives it and the
/// slots its registers say hotplug (`acpi::pcihp::slots`). Bridges behind
/// bridges are not described.
fn pc_pci_hotplug(tables: &[u8]) -> Result<Option<acpi::pcihp::PciHotplug>> {
    use acpi::pcihp::{PciHotplug, SlotBus};
    if !piix::acpi_pci_hotplug()? {
        return Ok(None);
    }
    if tables.is_empty() {
        println!("hotstub: warning: ACPI PCI hotplug is on, but QEMU offers no ACPI tables to number its buses; no PCI hotplug");
        return Ok(None);
    }
    let (root, ports) = acpi::pcihp::with_root_bsel(tables)?;
    let bridges = piix::bridges();
    let mut buses: Vec<SlotBus> = root
        .map(|bsel| SlotBus {
            adr: None,
            bsel,
            slots: piix::hotplug_slots(bsel),
        })
        .into_iter()
        .collect();
    for p in ports.iter().filter(|p| bridges.contains(&p.adr)) {
        buses.push(SlotBus {
            adr: Some(p.adr),
            bsel: p.bsel,
            slots: piix::hotplug_slots(p.bsel),
        });
    }
    Ok(Some(PciHotplug::pc(piix::PCIHP_BASE, buses)))
}

/// The virtio disks (q35: through MMCONFIG, which `q35::init` programmed,
/// behind root ports and bridges too; pc: on the root bus, through the
/// configuration ports), their BARs in the 32-bit window the DSDT
/// describes.
fn disks(board: Board, map: &MemoryMap) -> Vec<virtio::Disk> {
    let (next, end) = pci_mem32(map);
    let (config, buses) = match board {
        Board::Q35 => (
            virtio::Config::Ecam(q35::MMCONFIG_BASE),
            (q35::MMCONFIG_SIZE >> 20) as u16,
        ),
        _ => (virtio::Config::Ports, 256),
    };
    let mut host = virtio::PciHost {
        config,
        buses,
        next,
        end,
    };
    let mut out = Vec::new();
    // SAFETY: MMCONFIG is mapped (boot.S maps the low 4 GiB; the MTRRs
    // leave it uncached) and the window is free PCI space: no firmware
    // assigned anything before (pc's bridge windows sit at its top, above
    // what a root-bus disk's BARs take from its bottom).
    unsafe { virtio::pci_disks(&mut host, &mut out) };
    out
}

/// Where the board's CPU hotplug registers are.
fn cpuhp_base(board: Board) -> u16 {
    match board {
        Board::I440fx => piix::CPUHP_BASE,
        _ => q35::CPUHP_BASE,
    }
}

/// Every possible vCPU with its APIC ID, and which are plugged in now.
fn discover_cpus(fw: &mut FwCfg<PioFwCfg>, base: u16) -> Result<Vec<Vcpu>> {
    let boot = fw.read_u16(fw_cfg::key::NB_CPUS) as u32;
    let max = fw.read_u16(fw_cfg::key::MAX_CPUS) as u32;
    if boot == 0 || max < boot {
        bail!("VMM reports {} boot vCPUs of {} possible", boot, max);
    }
    let Some(cpus) = q35::possible_cpus(base, max) else {
        bail!(
            "QEMU's CPU hotplug interface at {:#x} does not answer",
            base
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
