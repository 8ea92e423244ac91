//! QEMU's `microvm` (x86), with ACPI, its default. Its tables are QEMU's,
//! adopted rather than built: QEMU's table-loader script links them at
//! addresses the firmware picks (`acpi::loader`), the walk and the x86
//! checks that serve cloud-hypervisor's tables (`acpi::adopt`,
//! `acpi::x86::adopt`) hold them to what Linux needs (hardware-reduced
//! FADT with the GED's sleep and reset registers, `_S5`, a MADT with the
//! boot vCPU and I/O APICs), and Linux gets them unchanged: the DSDT names
//! the virtio-mmio transports QEMU filled, the GED with its power button
//! and, with `pcie=on`, the PCIe host, which only QEMU knows. RAM comes
//! from fw_cfg's e820, the kernel from `-kernel` or a virtio-blk disk on a
//! virtio-mmio transport (or, with `pcie=on`, on the PCIe host). There is
//! no ACPI PM timer: the local APIC timer times the firmware. All of this
//! runs in place from the ROM with the rest of the firmware; a disk boot
//! inflates the disk code (`disk_code`) first. With `acpi=off` Linux gets
//! an MP table instead (`no_acpi`).

mod no_acpi;

use super::*;
use hotstub::acpi::adopt;
use hotstub::acpi::loader::{self, Blob, Placed, Zone};
use hotstub::acpi::x86::adopt as x86;
use hotstub::boot::machine::Microvm;
use hotstub::boot::smbios::{self, HOTSTUB as FIRMWARE};
use hotstub::platform::x86_board as board;

/// microvm's PCIe host with `pcie=on` (include/hw/i386/microvm.h
/// PCIE_ECAM_BASE, PCIE_ECAM_SIZE 256 MiB: 256 buses; PCIE_MMIO_BASE,
/// PCIE_MMIO_SIZE: the 32-bit window its DSDT gives), QEMU's generic
/// host bridge at 00:00.0 (Red Hat 1b36:0008, hw/pci-host/gpex.c).
const PCIE_ECAM: u64 = 0xe000_0000;
const PCIE_BUSES: u16 = 256;
const PCIE_MMIO32: (u64, u64) = (0xc000_0000, 0xe000_0000);
const GPEX_ID: u32 = 0x0008_1b36;

/// Transports QEMU creates: 24 with the second I/O APIC (the default
/// with ACPI), else 8 (hw/i386/microvm.c microvm_devices_init).
const VIRTIO_MMIO_MAX: u64 = 24;

/// The local APIC's timer (Intel SDM vol. 3 11.5.4): LVT timer, initial
/// and current count, divide configuration; 0x3 divides by 16, bit 16 of
/// the LVT masks its interrupt. QEMU's and KVM's APIC bus runs at 1 GHz
/// (hw/intc/apic_common.c counts the virtual clock's nanoseconds; Linux
/// arch/x86/kvm/lapic.h APIC_BUS_CYCLE_NS 1), so a count is 16 ns and
/// the one-shot count lasts 68 s.
const LVT_TIMER: u64 = 0x320;
const INITIAL_COUNT: u64 = 0x380;
const CURRENT_COUNT: u64 = 0x390;
const DIVIDE: u64 = 0x3e0;
const DIVIDE_BY_16: u32 = 0x3;
const LVT_MASKED: u32 = 1 << 16;
const NS_PER_COUNT: u64 = 16;

fn lapic(reg: u64) -> u64 {
    u64::from(q35::LAPIC_ADDR) + reg
}

pub(super) struct MicrovmBoot;

impl MicrovmBoot {
    /// Starts the local APIC timer, the firmware's clock here.
    pub(super) fn new() -> MicrovmBoot {
        io::mmio_write32(lapic(LVT_TIMER), LVT_MASKED);
        io::mmio_write32(lapic(DIVIDE), DIVIDE_BY_16);
        io::mmio_write32(lapic(INITIAL_COUNT), u32::MAX);
        MicrovmBoot
    }
}

impl pipeline::Arch for MicrovmBoot {
    type Found = FwCfg<PioFwCfg>;
    type Sources = Qemu<PioFwCfg>;
    type Machine = Microvm;
    type Plan = Plan;
    type Loaded = LoadedLinux;

    fn name(&self) -> &'static str {
        "x86_64 (microvm)"
    }

    fn discover(&mut self) -> Result<FwCfg<PioFwCfg>> {
        Ok(FwCfg::probe(PioFwCfg)?)
    }

    fn describe(&mut self, fw: FwCfg<PioFwCfg>) -> Result<(Microvm, Qemu<PioFwCfg>)> {
        let mut src = Qemu::open(fw)?;
        let mut map = src.e820()?;
        q35::setup_mtrrs(&map);
        map.set(
            layout::LEGACY_HOLE.0,
            layout::LEGACY_HOLE.1 - layout::LEGACY_HOLE.0,
            Kind::Reserved,
        );
        map.set(layout::ROM.0, layout::ROM.1 - layout::ROM.0, Kind::Reserved);
        let mut mp_area = None;
        let (acpi, cpus, tables) = match qemu_tables(&mut src, &mut map)? {
            Some(acpi) => {
                let rsdp = acpi
                    .iter()
                    .find(|b| b.name == loader::RSDP_FILE)
                    .map(|b| b.addr)
                    .ok_or("QEMU's table-loader script places no RSDP")?;
                let adopted = adopt::adopt(&Placed(&acpi), rsdp)?;
                let checked = x86::check(&adopted, boot_apic_id())?;
                let cpus = CpuModel::new(checked.cpus);
                (acpi, cpus, TablesFrom::Adopted { rsdp })
            }
            // The MP table is built from the description.
            None => {
                let cpus = no_acpi::cpus(&mut src.fw)?;
                mp_area = Some(no_acpi::reserve(&mut map, cpus.len())?);
                (Vec::new(), cpus, TablesFrom::Build)
            }
        };
        // Without -kernel the rest of the disk code runs (the boot choice
        // is parsed before any disk is looked at).
        if src.fw.read_u32(fw_cfg::key::KERNEL_SIZE) == 0 {
            disk_code::load()?;
        }
        let payload = from_disk::choose(&mut src, "bzImage", || virtio::candidates(disks()))?;
        let m = Microvm {
            map,
            cpus,
            acpi,
            mp_area,
            payload,
            tables,
        };
        Ok((m, src))
    }

    fn plan(&mut self, m: &Microvm) -> Result<Plan> {
        Ok(Plan {
            x2apic: m.cpus.iter().any(|c| c.hw_id >= 0xff),
        })
    }

    fn tables(&mut self, m: &Microvm, _: &Plan, src: &mut Qemu<PioFwCfg>) -> Result<Tables> {
        let TablesFrom::Adopted { rsdp } = m.tables else {
            return no_acpi::tables(m, &mut src.fw);
        };
        let (mut free, mut used) = (0, 0);
        for b in &m.acpi {
            // SAFETY: where `qemu_tables` placed the file: RAM the map
            // gives as ACPI data, or the RSDP's slot at the BIOS area's top
            // (RAM on microvm, the image's stub page, past its code).
            unsafe { ram_slice(b.addr, b.bytes.len() as u64) }.copy_from_slice(&b.bytes);
            if !(layout::ACPI.0..layout::ACPI.1).contains(&b.addr) {
                free = free.max(b.addr + b.bytes.len() as u64);
            }
            used += b.bytes.len() as u64;
        }
        if free > 0 {
            own_smbios(free);
        }
        Ok(Tables {
            rsdp,
            used,
            smbios3: None,
        })
    }

    fn load(
        &mut self,
        m: &Microvm,
        _: &Plan,
        src: &mut Qemu<PioFwCfg>,
        t: &Tables,
    ) -> Result<LoadedLinux> {
        match m.payload {
            payload::From::FwCfg => load_linux(Payload::FwCfg(&mut src.fw), &m.map, t.rsdp, false),
            payload::From::Disk => {
                let disk = src.disk.as_mut().ok_or("no disk payload was chosen")?;
                let linux = load_linux(Payload::Disk(disk), &m.map, t.rsdp, false);
                // Dropping the payload resets the disk before Linux runs.
                src.disk = None;
                linux
            }
        }
    }

    fn prepare_handoff(
        &mut self,
        m: &Microvm,
        _: &Plan,
        _: &Tables,
        linux: &mut LoadedLinux,
    ) -> Result<()> {
        place_zero_page(linux, &m.map);
        Ok(())
    }

    fn elapsed_us(&self) -> u64 {
        let left = io::mmio_read32(lapic(CURRENT_COUNT));
        u64::from(u32::MAX - left) * NS_PER_COUNT / 1000
    }

    fn enter(self, _: Microvm, p: Plan, linux: LoadedLinux) -> Result<Never> {
        // The timer stopped, as a firmware that never used it leaves it.
        io::mmio_write32(lapic(INITIAL_COUNT), 0);
        if p.x2apic && q35::enable_x2apic() {
            println!("hotstub: x2APIC mode on (APIC IDs past 254)");
        }
        jump_to_linux(linux.kernel.load_addr + ENTRY64_OFFSET, layout::ZERO_PAGE)
    }

    fn power_off() -> ! {
        power_off()
    }
}

/// The boot vCPU's APIC ID (CPUID leaf 1, EBX bits 31:24).
fn boot_apic_id() -> u32 {
    core::arch::x86_64::__cpuid(1).ebx >> 24
}

/// QEMU's ACPI files, placed and linked as its table-loader script says:
/// the F-segment file (the RSDP) at the RSDP's slot in the BIOS area, the
/// others from the BIOS area's start, or, when they outgrow it (many
/// vCPUs), from RAM at the top below 4 GiB that the map then gives as
/// ACPI data. None without them (`acpi=off`).
fn qemu_tables(src: &mut Qemu<PioFwCfg>, map: &mut MemoryMap) -> Result<Option<Vec<Blob>>> {
    let Some(script) = src.file(fw_cfg::file::TABLE_LOADER, acpi::vmm::QEMU_TABLES_MAX)? else {
        return Ok(None);
    };
    let allocs = loader::allocations(&script)?;
    let mut blobs = Vec::with_capacity(allocs.len());
    for a in &allocs {
        let bytes = src
            .file(&a.file, acpi::vmm::QEMU_TABLES_MAX)?
            .ok_or_else(|| {
                hotstub::err!(
                    "QEMU's table-loader script names {}, which fw_cfg lacks",
                    a.file
                )
            })?;
        blobs.push(Blob {
            name: a.file.clone(),
            addr: 0,
            bytes,
        });
    }
    let sizes: Vec<u64> = blobs.iter().map(|b| b.bytes.len() as u64).collect();
    let fseg = (layout::RSDP, layout::ACPI.1);
    // Not in the BIOS area below 1 MiB: on microvm that is the firmware
    // image's own top 128 KiB, mapped there writable (QEMU
    // hw/i386/x86-common.c x86_isa_bios_init aliases the -bios RAM), where
    // the firmware's code runs in place and its page tables lie. Only the
    // RSDP's and the SMBIOS entry point's slots at its top (the reset
    // stub's padding) are written there; the rest, and SMBIOS's
    // structures after it, in RAM at the top below 4 GiB as ACPI data.
    let high: u64 = allocs
        .iter()
        .zip(&sizes)
        .filter(|(a, _)| a.zone == Zone::High)
        .map(|(a, s)| s + a.align)
        .sum::<u64>()
        + SMBIOS_ROOM;
    let size = high.next_multiple_of(0x1000);
    let Some(start) = map.find_top(size, 0x1000, 1 << 32, &[layout::FIRMWARE]) else {
        bail!(
            "no {} KiB of RAM below 4 GiB for QEMU's ACPI tables",
            size >> 10
        );
    };
    map.set(start, size, Kind::Acpi);
    let addrs = loader::place(&allocs, &sizes, (start, start + size), fseg)?;
    for (b, a) in blobs.iter_mut().zip(addrs) {
        b.addr = a;
    }
    if loader::link(&script, &mut blobs)? > 0 {
        println!(
            "hotstub: warning: QEMU's table-loader script writes pointers back to QEMU; not done"
        );
    }
    Ok(Some(blobs))
}

/// Room after the ACPI tables (or the MP table) for SMBIOS's structures
/// (a type 0 and the end marker, about 100 bytes).
const SMBIOS_ROOM: u64 = 0x200;

/// The firmware's SMBIOS (type 0 and an end marker; microvm offers none)
/// at `free`, after the ACPI tables (or the MP table) in RAM the map
/// reserves with [`SMBIOS_ROOM`] to spare, its 3.0 entry point at the fixed slot
/// Linux's scan of 0xF0000-0xFFFFF finds.
fn own_smbios(free: u64) {
    let addr = free.next_multiple_of(16);
    let placed = smbios::standalone(&FIRMWARE).and_then(|(mut anchor, t)| {
        smbios::patch_anchor(&mut anchor, addr, &t)?;
        Ok((anchor, t))
    });
    match placed {
        Ok((anchor, t)) if t.bytes.len() as u64 + 16 <= SMBIOS_ROOM => {
            // SAFETY: the room left after the tables in the ACPI-data RAM
            // (size checked), and the entry point's slot below the RSDP's:
            // BIOS-area RAM on microvm, the image stub's padding.
            unsafe {
                ram_slice(addr, t.bytes.len() as u64).copy_from_slice(&t.bytes);
                ram_slice(layout::SMBIOS_ANCHOR, anchor.len() as u64).copy_from_slice(&anchor);
            }
        }
        _ => println!("hotstub: warning: no room for SMBIOS; guest gets no DMI data"),
    }
}

/// The virtio disks: on the virtio-mmio transports QEMU filled, from the
/// highest down (QEMU hands the first `-device` the last transport, so
/// this is the command line's order), then with `pcie=on` on the PCIe
/// host's buses, BARs in its 32-bit window.
fn disks() -> Vec<virtio::Disk> {
    let mut out = Vec::new();
    let transports = (0..VIRTIO_MMIO_MAX)
        .rev()
        .map(|i| board::MICROVM_VIRTIO_MMIO + i * board::VIRTIO_MMIO_SIZE)
        .filter(|&base| io::mmio_read32(base) == board::VIRTIO_MMIO_MAGIC)
        .map(|base| (base, board::VIRTIO_MMIO_SIZE));
    // SAFETY: each window answered with the virtio-mmio magic, inside the
    // identity map and uncached (not RAM in the MTRRs).
    unsafe { virtio::mmio_disks(transports, &mut out) };
    if io::mmio_read32(PCIE_ECAM) == GPEX_ID {
        let mut host = virtio::PciHost {
            config: virtio::Config::Ecam(PCIE_ECAM),
            buses: PCIE_BUSES,
            next: PCIE_MMIO32.0,
            end: PCIE_MMIO32.1,
        };
        // SAFETY: the ECAM answered as QEMU's host bridge, below 4 GiB
        // (identity-mapped, uncached, not RAM in the MTRRs); the window is
        // never RAM (microvm's RAM below 4 GiB ends at 3 GiB at most,
        // hw/i386/microvm.c microvm_memory_init), and no firmware
        // assigned anything in it before.
        unsafe { virtio::pci_disks(&mut host, &mut out) };
    }
    out
}
