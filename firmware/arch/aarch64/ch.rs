//! cloud-hypervisor's arm64 boot (`--firmware`, a raw image copied to 0):
//! entered at EL1 under KVM with the MMU off and x0 = the DT at
//! 0x4000_0000; secondaries wait for KVM's PSCI (HVC). The kernel comes
//! from a virtio-pci disk on the DT's ECAM host bridge, chosen and its
//! command line extended by CH's fw_cfg where the build has one (the DT
//! then names it; `opt/org.hotstub/boot` and `cmdline`, as on QEMU); the
//! ACPI tables are CH's own at 0x4020_0000, adopted and checked
//! (`acpi::adopt`, `acpi::arm::ch`), handed to Linux through the EFI
//! system table so it runs in ACPI mode. The firmware leaves: KVM's PSCI
//! serves Linux, and a fatal stop is PSCI SYSTEM_OFF by HVC.

use hotstub::acpi::adopt::{self, Slice};
use hotstub::acpi::arm::ch::{self as ch_tables, CH_ACPI_MAX, CH_RSDP};
use hotstub::acpi::TableArea;
use hotstub::boot::efi::{self, mem_type, Carve, PAGE_SIZE};
use hotstub::boot::from_disk;
use hotstub::boot::machine::Qemu;
use hotstub::boot::machine::{ChVirt, TablesFrom};
use hotstub::boot::pipeline::{self, Never, Result, Tables};
use hotstub::boot::plan::{Facts, Plan, Resident};
use hotstub::disk::DiskPayload;
use hotstub::platform::dt;
use hotstub::platform::fw_cfg::FwCfg;
use hotstub::{println, NAME};

use super::cpu;
use super::hw::{self, layout};
use super::shared::{
    areas, console, disks, elapsed_us, load_linux_above, map_board, write_handoff, Linux,
};
use super::stop::{self, CONDUIT};
use crate::arch::{ram_slice, virtio};

/// The boot's state between steps.
pub(super) struct ChBoot {
    board: Option<dt::Board>,
    t0: u64,
    /// `[start, end)` CH's tables occupy, once adopted: kept from the
    /// kernel and listed as ACPI reclaimable memory.
    tables_span: (u64, u64),
}

impl ChBoot {
    pub(super) fn new(board: dt::Board, t0: u64) -> ChBoot {
        ChBoot {
            board: Some(board),
            t0,
            tables_span: (0, 0),
        }
    }
}

/// What the boot reads from: the disk chosen in `describe`.
pub(super) struct Disk(Option<DiskPayload>);

/// CH enters at EL1 only.
const EL: u8 = 1;

impl pipeline::Arch for ChBoot {
    type Found = dt::Board;
    type Sources = Disk;
    type Machine = ChVirt;
    type Plan = Plan;
    type Loaded = Linux;

    fn name(&self) -> &'static str {
        "aarch64 (EL1, cloud-hypervisor)"
    }

    fn discover(&mut self) -> Result<dt::Board> {
        let board = self.board.take().ok_or("no device tree")?;
        CONDUIT.call_once(|| board.psci);
        map_board(EL, &board);
        console(&board)?;
        Ok(board)
    }

    fn describe(&mut self, board: dt::Board) -> Result<(ChVirt, Disk)> {
        let m = ChVirt::describe(board, layout::fw_ram(), CH_RSDP, CH_ACPI_MAX)?;
        // Without CH's fw_cfg the first bootable disk in bus order wins.
        // What CH put in the DT's bootargs (its `earlycon=`; CH drops
        // `--cmdline` under `--firmware`) is appended to the entry's
        // command line, then `opt/org.hotstub/cmdline`.
        let mut fw = fw_cfg(&m.board)?;
        let candidates = virtio::candidates(disks(EL, &m.board, true));
        let extra = m.board.bootargs.clone();
        let disk = from_disk::pick_ch(fw.as_mut(), extra, candidates)?;
        Ok((m, Disk(Some(disk))))
    }

    fn plan(&mut self, m: &ChVirt) -> Result<Plan> {
        let facts = Facts {
            el: EL,
            board: &m.board,
            cpus: &m.cpus,
            vhe: cpu::features().vhe,
        };
        println!("{NAME}: Linux enters at EL1 (firmware not resident)");
        Ok(Plan::decide(facts, &areas())?)
    }

    fn tables(&mut self, m: &ChVirt, p: &Plan, _: &mut Disk) -> Result<Tables> {
        let TablesFrom::Adopted { rsdp } = m.tables else {
            return Err("cloud-hypervisor's tables are adopted, not built".into());
        };
        let window = m.acpi_window;
        // SAFETY: `describe` checked that the window is RAM above the
        // firmware's; nothing writes it while this view lives.
        let bytes: &[u8] = unsafe { ram_slice(window.0, window.1 - window.0) };
        let walked = adopt::adopt(
            &Slice {
                base: window.0,
                bytes,
            },
            rsdp,
        )?;
        let checked = ch_tables::check(&walked, &m.board)?;
        let (base, end) = p.acpi;
        // SAFETY: the linker script reserves the hand-off area for this.
        let mut area = TableArea::new(unsafe { ram_slice(base, end - base) }, base);
        let (rsdp, fixes) = checked.fix(rsdp, &mut area)?;
        println!(
            "{NAME}: cloud-hypervisor's ACPI tables adopted: {} tables at {:#x}, checked",
            walked.tables.len(),
            walked.rsdp
        );
        for f in fixes {
            println!("{NAME}: fixed: {f}");
        }
        self.tables_span = checked.span;
        Ok(Tables {
            rsdp,
            used: area.used() as u64,
            smbios3: None,
        })
    }

    fn load(&mut self, m: &ChVirt, _: &Plan, src: &mut Disk, _: &Tables) -> Result<Linux> {
        let mut disk = src.0.take().ok_or("no disk payload was chosen")?;
        // The kernel goes above CH's tables (CH's own direct boot puts it
        // at 0x4040_0000, past its 2 MiB ACPI area, for the same reason).
        let from = self.tables_span.1.next_multiple_of(PAGE_SIZE);
        // Dropping the payload resets the disk and switches its PCI
        // decoding off before Linux runs.
        load_linux_above(&mut disk, from, m.ram_end)
    }

    fn prepare_handoff(&mut self, m: &ChVirt, p: &Plan, t: &Tables, l: &mut Linux) -> Result<()> {
        let a = areas();
        let kernel = (l.kernel.base, l.image.image_size);
        let initrd = l.initrd.as_ref().map(|i| (i.base, i.size));
        let mut carves = p.carves(&a, t.used, kernel, initrd, Resident::default());
        // Without a fix the firmware's table area holds nothing (Linux gets
        // CH's own RSDP); the memory map takes no empty carve.
        carves.retain(|c| c.size > 0);
        // CH's tables stay where CH wrote them: ACPI reclaimable, like the
        // firmware's own (ACPI 6.5 15.3: AddressRangeACPI).
        let (start, end) = self.tables_span;
        let base = start & !(PAGE_SIZE - 1);
        carves.push(Carve {
            base,
            size: end.next_multiple_of(PAGE_SIZE) - base,
            ty: mem_type::ACPI_RECLAIM,
        });
        let map = efi::memory_map(&m.board.memory, &carves)?;
        write_handoff(&map, t, l, &m.board)
    }

    fn elapsed_us(&self) -> u64 {
        elapsed_us(self.t0)
    }

    fn enter(self, _: ChVirt, p: Plan, l: Linux) -> Result<Never> {
        let a = areas();
        // SAFETY: the Image was validated and loaded at its 2 MiB aligned
        // base + text_offset, the DT was just written; the firmware needs
        // nothing after.
        unsafe { hw::enter_kernel(p.exit.linux_el(), l.kernel.base, a.dt) }
    }

    fn power_off() -> ! {
        stop::power_off()
    }
}

/// cloud-hypervisor's fw_cfg where its DT names one (CH builds with the
/// `fw_cfg` feature run with `--fw-cfg-config`: "qemu,fw-cfg-mmio" at
/// 0x0903_0000, 16 bytes, CH devices/src/legacy/fw_cfg.rs), read through
/// the data register (`FwCfg::without_dma` says why).
fn fw_cfg(b: &dt::Board) -> Result<Option<Qemu<hw::FwCfgMmio>>> {
    let Some(base) = b.fw_cfg else {
        return Ok(None);
    };
    // SAFETY: the DT names this fw_cfg MMIO base, below RAM where every
    // address is mapped as device memory (mmu::enable).
    let fw = FwCfg::probe(unsafe { hw::FwCfgMmio::new(base) })?;
    let q = Qemu::open(fw.without_dma())?;
    println!(
        "{NAME}: cloud-hypervisor's fw_cfg: {} files",
        q.files.files().len()
    );
    Ok(Some(q))
}
