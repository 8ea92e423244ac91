//! The machine as an entry path found it, filled once and read-only after:
//! the later steps (plan, tables, payload, hand-off) read it and never
//! write back. docs/design.md has the table of entry paths and what each
//! provides.

use super::bzimage::E820_MAX;
use super::payload;
use super::pipeline::Result;
use crate::platform::cpulist;
use crate::platform::cpus::CpuModel;
use crate::platform::dt::Board;
use crate::platform::fw_cfg::{file, Directory, FwCfg, Transport};
use crate::platform::memmap::MemoryMap;
use crate::resident::hotplug::record::{self, Found, Record};

/// Where the ACPI tables handed to Linux come from (docs/design.md,
/// "Entry paths").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TablesFrom {
    /// Hotstub builds them from the description (QEMU).
    Build,
    /// The VMM owns them (cloud-hypervisor): adopted and checked
    /// (`acpi::adopt`), not rebuilt; Linux gets this RSDP.
    Adopted { rsdp: u64 },
}

/// QEMU's fw_cfg with its file directory, read once: the source of the
/// payload, the vCPU policy and the VMM's own tables.
pub struct Qemu<T: Transport> {
    pub fw: FwCfg<T>,
    pub files: Directory,
    /// The disk payload `from_disk::choose` picked, for the load step.
    pub disk: Option<crate::disk::DiskPayload>,
}

impl<T: Transport> Qemu<T> {
    pub fn open(mut fw: FwCfg<T>) -> Result<Qemu<T>> {
        let files = fw.directory()?;
        Ok(Qemu {
            fw,
            files,
            disk: None,
        })
    }

    /// A named file of at most `max` bytes; `None` when there is none.
    pub fn file(&mut self, name: &str, max: u32) -> Result<Option<alloc::vec::Vec<u8>>> {
        Ok(self.fw.read_named(&self.files, name, max)?)
    }

    /// The first `head` bytes of [`Qemu::file`].
    pub fn file_head(
        &mut self,
        name: &str,
        max: u32,
        head: usize,
    ) -> Result<Option<alloc::vec::Vec<u8>>> {
        Ok(self.fw.read_named_head(&self.files, name, max, head)?)
    }

    /// RAM from QEMU's `etc/e820` (x86).
    pub fn e820(&mut self) -> Result<MemoryMap> {
        let Some(f) = self.files.find(file::E820) else {
            crate::bail!("no memory map from the VMM (fw_cfg file etc/e820)");
        };
        // Linux takes at most 128 entries from the zero page (bootparam.h);
        // QEMU's map has a handful.
        if f.size as usize > E820_MAX * E820_ENTRY {
            crate::bail!(
                "memory map from the VMM has {} bytes, more than {} entries",
                f.size,
                E820_MAX
            );
        }
        let mut buf = alloc::vec![0u8; f.size as usize];
        self.fw
            .read_file(&f, &mut buf)
            .map_err(|e| crate::err!("reading etc/e820: {e}"))?;
        MemoryMap::from_qemu_e820(&buf).map_err(|e| crate::err!("bad memory map from the VMM: {e}"))
    }

    /// End of QEMU's device (hotplug) memory region, or 0 when there is
    /// none (x86).
    pub fn reserved_memory_end(&mut self) -> Result<u64> {
        let end = self
            .fw
            .read_u64_named(&self.files, file::RESERVED_MEMORY_END)
            .map_err(|_| "etc/reserved-memory-end from the VMM is not a 64-bit value")?;
        Ok(end.unwrap_or(0))
    }

    /// The port of QEMU's ISA pvpanic device, when there is one (x86).
    pub fn pvpanic_port(&mut self) -> Result<Option<u16>> {
        Ok(self
            .fw
            .read_u16_named(&self.files, file::PVPANIC_PORT)
            .map_err(|_| "etc/pvpanic-port from the VMM is not a 16-bit port")?)
    }
}

/// Bytes per entry of QEMU's `etc/e820` (hw/i386/e820_memory_layout.h:
/// le64 address, le64 length, le32 type).
const E820_ENTRY: usize = 20;

/// QEMU `virt` booted from flash, at EL1, EL2 or EL3.
pub struct Virt {
    /// The DT's view: RAM, CPUs, GIC, console, devices, secure RAM.
    pub board: Board,
    /// The EL the firmware runs at.
    pub el: u8,
    /// End of the RAM bank that holds the firmware: kernel and initrd go
    /// between the firmware and it.
    pub ram_end: u64,
    /// Every possible vCPU (DT order) and which may come online.
    pub cpus: CpuModel,
    /// At EL3 with the host's channel: the runtime policy the last boot
    /// kept, and whether `cpus` took it ([`Virt::restore_policy`]).
    pub saved: Option<Found>,
    pub payload: payload::From,
    pub tables: TablesFrom,
}

/// Which VMM made an arm64 machine, from the entry state and the DT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArmVmm {
    /// QEMU `virt` with `-bios`: the DT at the start of RAM, x0 zero
    /// (QEMU starts a firmware with its registers reset), its platform bus
    /// and fw_cfg in the DT; at EL1, EL2 or EL3.
    QemuVirt,
    /// cloud-hypervisor with `--firmware`: at EL1 (KVM's guest), x0 the
    /// DT's address (0x4000_0000), and no QEMU platform bus. Its root
    /// `compatible` is "linux,dummy-virt" like QEMU's, and builds with its
    /// `fw_cfg` feature add a "qemu,fw-cfg-mmio" node, so neither tells
    /// them apart.
    CloudHypervisor,
}

impl ArmVmm {
    /// `dt_in_x0`: the DT was found at the address x0 held at entry. A
    /// VMM that passes the DT in x0 at EL1 and has no QEMU platform bus
    /// ("qemu,platform", which QEMU virt always has) is cloud-hypervisor;
    /// anything else takes the QEMU path (which refuses a DT without
    /// fw_cfg with its own error line).
    pub fn detect(el: u8, dt_in_x0: bool, board: &Board) -> ArmVmm {
        if el == 1 && dt_in_x0 && !board.qemu_platform_bus {
            ArmVmm::CloudHypervisor
        } else {
            ArmVmm::QemuVirt
        }
    }
}

/// cloud-hypervisor's arm64 machine from its raw `--firmware` entry (at
/// EL1, KVM's PSCI by HVC): no fw_cfg, so the kernel comes from a disk
/// and the tables are CH's own, adopted.
pub struct ChVirt {
    /// The DT's view: RAM, CPUs, GIC, console, PCIe host bridge.
    pub board: Board,
    /// End of the RAM bank that holds the firmware.
    pub ram_end: u64,
    /// Every vCPU the DT lists, all enabled (CH has no vCPU policy and no
    /// CPU hotplug on arm64).
    pub cpus: CpuModel,
    pub payload: payload::From,
    pub tables: TablesFrom,
    /// `[start, end)` CH's tables must lie in: the only memory the walk
    /// may read.
    pub acpi_window: (u64, u64),
}

impl ChVirt {
    /// Describes CH's machine from its DT's `board`; `fw_ram` is the
    /// firmware's own RAM, `[start, end)`. CH's tables are at `rsdp`, at
    /// most `max` bytes from there, in the same RAM bank.
    pub fn describe(board: Board, fw_ram: (u64, u64), rsdp: u64, max: u64) -> Result<ChVirt> {
        let (fw_start, fw_end) = fw_ram;
        let (base, size) = *board
            .memory
            .iter()
            .find(|&&(b, s)| b <= fw_start && fw_end <= b + s)
            .ok_or("RAM does not cover the firmware's area")?;
        let ram_end = base + size;
        if rsdp < fw_end || rsdp >= ram_end {
            crate::bail!(
                "cloud-hypervisor's ACPI tables at {rsdp:#x} are not in the RAM above the firmware"
            );
        }
        let cpus = CpuModel::from_mpidrs(&board.cpus);
        Ok(ChVirt {
            board,
            ram_end,
            cpus,
            payload: payload::From::Disk,
            tables: TablesFrom::Adopted { rsdp },
            acpi_window: (rsdp, rsdp.saturating_add(max).min(ram_end)),
        })
    }
}

/// QEMU's PC machines from the reset vector: `q35` and `pc` (i440FX),
/// `board` says which. The chipset's registers (host bridge, CPU hotplug
/// interface) are read by the hardware side; the fw_cfg facts by
/// [`Qemu`]'s readers.
pub struct Pc {
    /// The board, told by its host bridge.
    pub board: crate::platform::x86_board::Board,
    /// QEMU's e820 with the firmware's and the chipset's ranges reserved.
    pub map: MemoryMap,
    /// End of QEMU's device (hotplug) memory region, 0 when none.
    pub device_mem_end: u64,
    /// Every possible vCPU and which are plugged in.
    pub cpus: CpuModel,
    pub payload: payload::From,
    pub tables: TablesFrom,
}

/// cloud-hypervisor on x86, entered through PVH: its start info gives the
/// RAM, its own ACPI tables (adopted) the vCPUs, the PCI segment and how
/// to power off; there is no fw_cfg, so the kernel comes from a disk.
pub struct ChX86 {
    /// The start info's memory map, as Linux gets it.
    pub map: MemoryMap,
    /// The MADT's vCPUs: every possible one, enabled or online-capable.
    pub cpus: CpuModel,
    /// The MCFG's segment 0, where the virtio disks are.
    pub ecam: Option<crate::acpi::x86::adopt::Ecam>,
    pub payload: payload::From,
    pub tables: TablesFrom,
}

/// QEMU's `microvm` (x86) with ACPI: fw_cfg gives the RAM and the
/// payload; QEMU's own tables, linked by its table-loader script and
/// checked (`acpi::loader`, `acpi::adopt`, `acpi::x86::adopt`), give the
/// vCPUs and go to Linux as they are: only QEMU knows which virtio-mmio
/// transports it filled, which its DSDT describes.
pub struct Microvm {
    /// QEMU's e820 with the firmware's ranges and the tables' reserved.
    pub map: MemoryMap,
    /// The MADT's vCPUs, or without ACPI fw_cfg's count (microvm has no
    /// CPU hotplug).
    pub cpus: CpuModel,
    /// QEMU's tables at the addresses the loader gave them, linked; none
    /// without ACPI (`tables` is then `Build`: an MP table).
    pub acpi: alloc::vec::Vec<crate::acpi::loader::Blob>,
    /// Without ACPI: (base, size) of the RAM `map` reserves for the MP
    /// configuration table and SMBIOS's structures.
    pub mp_area: Option<(u64, u64)>,
    pub payload: payload::From,
    pub tables: TablesFrom,
}

/// A CPU list for every CPU QEMU can model is a few KiB at most.
const CPU_LIST_MAX: u32 = 16384;

impl Virt {
    /// Describes virt from its DT's `board` and its fw_cfg; `fw_ram` is the
    /// firmware's own RAM, `[start, end)`. (Whether fw_cfg can DMA, which
    /// the firmware needs to load at speed, is the caller's check.)
    pub fn describe<T: Transport>(
        board: Board,
        el: u8,
        fw_ram: (u64, u64),
        fw: FwCfg<T>,
    ) -> Result<(Virt, Qemu<T>)> {
        let (fw_start, fw_end) = fw_ram;
        let (base, size) = *board
            .memory
            .iter()
            .find(|&&(b, s)| b <= fw_start && fw_end <= b + s)
            .ok_or("RAM does not cover the firmware's area")?;
        let mut src = Qemu::open(fw)?;
        let cpus = cpu_model(&mut src, &board.cpus)?;
        let virt = Virt {
            board,
            el,
            ram_end: base + size,
            cpus,
            saved: None,
            payload: payload::From::FwCfg,
            tables: TablesFrom::Build,
        };
        Ok((virt, src))
    }

    /// The last step of the description at EL3: where the host can change
    /// the policy at run time (the channel on the secure UART), the record
    /// a reset left in secure RAM replaces `enabled-cpus` when it is whole
    /// and for these vCPUs. `read` gets the bytes at the record's place.
    /// Elsewhere nothing changes the policy after boot: nothing to restore.
    pub fn restore_policy(&mut self, read: impl FnOnce(u64) -> Record) {
        let b = &self.board;
        if self.el != 3 || b.secure_uart.is_none() {
            return;
        }
        if let Some(at) = b.secure_ram.and_then(record::place) {
            self.saved = Some(Found::restore(at, read(at), &mut self.cpus));
        }
    }
}

/// The possible vCPUs and the VMM's policy of which may come online: the
/// fw_cfg file `opt/org.hotstub/enabled-cpus` with a Linux-style CPU list
/// (indices in DT order); without it every vCPU is enabled. A malformed
/// list is an error rather than a silent fallback.
fn cpu_model<T: Transport>(src: &mut Qemu<T>, mpidrs: &[u64]) -> Result<CpuModel> {
    let mut model = CpuModel::from_mpidrs(mpidrs);
    let text = match src.files.find(file::ENABLED_CPUS) {
        Some(file) if file.size > CPU_LIST_MAX => {
            crate::bail!(
                "{}: {} bytes is not a CPU list",
                cpulist::FW_CFG_FILE,
                file.size
            );
        }
        Some(file) => {
            let mut text = alloc::vec![0u8; file.size as usize];
            src.fw.read(file.key, &mut text)?;
            Some(text)
        }
        None => None,
    };
    cpulist::apply_policy(&mut model, text.as_deref())
        .map_err(|e| crate::err!("{}: {e}", cpulist::FW_CFG_FILE))?;
    Ok(model)
}

#[cfg(test)]
mod tests;
