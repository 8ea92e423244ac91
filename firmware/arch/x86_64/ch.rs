//! cloud-hypervisor's x86 guest, entered through PVH (`pvh.rs`): the
//! start info gives RAM, the command line and the RSDP; CH's
//! own ACPI tables are adopted and checked (`acpi::adopt`,
//! `acpi::x86::adopt`), never rebuilt, since its DSDT holds hotplug AML at
//! addresses only CH knows; the kernel comes from a virtio disk on CH's
//! PCI segment (CH drops `--cmdline` and `--initramfs` with
//! `--firmware`), chosen and its command line extended by CH's fw_cfg
//! where the build has one (`opt/org.hotstub/boot` and `cmdline`, as on
//! QEMU). SMBIOS stays where CH wrote it (0xf0000, where Linux
//! scans for it).

use super::pvh::{start_info, Phys};
use super::*;
use hotstub::acpi::adopt::{self, Adopted, Sigs};
use hotstub::acpi::x86::adopt::{self as x86, Checked, Ecam, SPACE_IO};
use hotstub::boot::machine::ChX86;
use hotstub::boot::pvh::StartInfo;
use hotstub::disk::DiskPayload;

pub(super) struct ChBoot {
    info_at: u32,
    tsc0: u64,
    /// The FADT's PM timer port, to time the TSC against.
    pm_timer: Option<u16>,
}

impl ChBoot {
    pub(super) fn new(info_at: u32) -> ChBoot {
        stop::on_cloud_hypervisor();
        ChBoot {
            info_at,
            tsc0: rdtsc(),
            pm_timer: None,
        }
    }
}

pub(super) struct Found {
    info: StartInfo,
    tables: Adopted,
    checked: Checked,
}

/// The disk the kernel comes from.
pub(super) struct Sources {
    disk: Option<DiskPayload>,
}

impl pipeline::Arch for ChBoot {
    type Found = Found;
    type Sources = Sources;
    type Machine = ChX86;
    type Plan = ();
    type Loaded = LoadedLinux;

    fn name(&self) -> &'static str {
        "x86_64 (cloud-hypervisor, PVH)"
    }

    fn discover(&mut self) -> Result<Found> {
        let info = start_info(self.info_at)?;
        if info.rsdp == 0 {
            bail!("PVH start info names no ACPI tables (rsdp_paddr is 0)");
        }
        let tables = adopt::adopt(
            &Phys {
                ram: Some(&info.map),
            },
            info.rsdp,
        )?;
        let checked = x86::check(&tables, boot_apic_id())?;
        let r = checked.sleep_control;
        stop::set_sleep_register(r.space == SPACE_IO, r.address, checked.s5_value);
        self.pm_timer = checked.pm_timer;
        Ok(Found {
            info,
            tables,
            checked,
        })
    }

    fn describe(&mut self, f: Found) -> Result<(ChX86, Sources)> {
        let cpus = CpuModel::new(f.checked.cpus);
        let enabled = cpus.iter().filter(|c| c.enabled).count();
        println!(
            "hotstub: cloud-hypervisor's ACPI tables adopted (RSDP {:#x}: {}); {} vCPUs, {} enabled",
            f.tables.rsdp,
            Sigs(&f.tables),
            cpus.len(),
            enabled
        );
        let map = f.info.map;
        let ecam = f.checked.ecam;
        let found = match ecam {
            Some(e) => disks(e),
            None => Vec::new(),
        };
        let extra = String::from_utf8(f.info.cmdline)
            .map_err(|_| "PVH start info: the command line is not UTF-8")?;
        let mut fw = fw_cfg()?;
        let disk = from_disk::pick_ch(fw.as_mut(), Some(extra), virtio::candidates(found))?;
        let m = ChX86 {
            map,
            cpus,
            ecam,
            payload: payload::From::Disk,
            tables: TablesFrom::Adopted {
                rsdp: f.tables.rsdp,
            },
        };
        Ok((m, Sources { disk: Some(disk) }))
    }

    fn plan(&mut self, _: &ChX86) -> Result<()> {
        Ok(())
    }

    fn tables(&mut self, m: &ChX86, _: &(), _: &mut Sources) -> Result<Tables> {
        match m.tables {
            TablesFrom::Adopted { rsdp } => Ok(Tables {
                rsdp,
                used: 0,
                smbios3: None,
            }),
            TablesFrom::Build => Err(hotstub::err!("cloud-hypervisor's tables are adopted")),
        }
    }

    fn load(&mut self, m: &ChX86, _: &(), src: &mut Sources, t: &Tables) -> Result<LoadedLinux> {
        let disk = src.disk.as_mut().ok_or("no disk payload was chosen")?;
        let linux = load_linux(Payload::Disk(disk), &m.map, t.rsdp, false);
        // Dropping the payload resets the disk and switches its PCI
        // decoding off before Linux runs.
        src.disk = None;
        linux
    }

    fn prepare_handoff(
        &mut self,
        m: &ChX86,
        _: &(),
        _: &Tables,
        linux: &mut LoadedLinux,
    ) -> Result<()> {
        place_zero_page(linux, &m.map);
        Ok(())
    }

    fn elapsed_us(&self) -> u64 {
        let ticks = rdtsc().wrapping_sub(self.tsc0);
        match tsc_khz(self.pm_timer) {
            0 => 0,
            khz => ticks * 1000 / khz,
        }
    }

    fn enter(self, _: ChX86, _: (), linux: LoadedLinux) -> Result<Never> {
        jump_to_linux(linux.kernel.load_addr + ENTRY64_OFFSET, layout::ZERO_PAGE)
    }

    fn power_off() -> ! {
        power_off()
    }
}

/// The virtio disks on CH's root bus, at the BARs CH gave them (its
/// 64-bit BARs stay in its 64-bit window: CH refuses to move one below
/// 4 GiB), mapped for the firmware (`paging`).
fn disks(e: Ecam) -> Vec<virtio::Disk> {
    let mut out = Vec::new();
    let buses = u16::from(e.last_bus) + 1;
    // The ECAM must lie in the low identity map.
    let in_map = e
        .base
        .checked_add(u64::from(buses) << 20)
        .is_some_and(|end| end <= 1 << 32);
    if e.first_bus != 0 || !in_map {
        println!(
            "hotstub: warning: cloud-hypervisor's ECAM at {:#x} is out of reach; no disks",
            e.base
        );
        return out;
    }
    // SAFETY: the ECAM is CH's (its MCFG, checked) below 4 GiB, so
    // identity-mapped; map_device maps what it says.
    unsafe { virtio::placed_pci_disks(e.base, buses, paging::map_device, &mut out) };
    out
}

/// cloud-hypervisor's fw_cfg at QEMU's ports (CH
/// devices/src/legacy/fw_cfg.rs `PORT_FW_CFG_BASE` 0x510), present only
/// in CH builds with its `fw_cfg` feature run with `--fw-cfg-config`;
/// read through the data register (`FwCfg::without_dma` says why).
fn fw_cfg() -> Result<Option<Qemu<PioFwCfg>>> {
    let Ok(fw) = FwCfg::probe(PioFwCfg) else {
        return Ok(None);
    };
    let q = Qemu::open(fw.without_dma())?;
    println!(
        "hotstub: cloud-hypervisor's fw_cfg: {} files",
        q.files.files().len()
    );
    Ok(Some(q))
}

/// The boot vCPU's initial APIC ID (CPUID leaf 1, EBX bits 31:24; Intel
/// SDM vol. 2, CPUID): the MADT must have it enabled.
fn boot_apic_id() -> u32 {
    core::arch::x86_64::__cpuid(1).ebx >> 24
}

/// The TSC's frequency in kHz: the hypervisor timing leaf 0x40000010
/// (EAX; KVM and VMware's convention) when the VMM fills it, else counted
/// against the ACPI PM timer (3.579545 MHz, ACPI 6.5 4.8.3.3) for 1 ms;
/// 0 without either.
fn tsc_khz(pm_timer: Option<u16>) -> u64 {
    let max = core::arch::x86_64::__cpuid(0x4000_0000).eax;
    if (0x4000_0010..0x4001_0000).contains(&max) {
        let khz = core::arch::x86_64::__cpuid(0x4000_0010).eax;
        if khz != 0 {
            return u64::from(khz);
        }
    }
    let Some(port) = pm_timer else {
        return 0;
    };
    // 3580 ticks are 1.0001 ms; the counter is 24 bits at least.
    const TICKS: u32 = 3580;
    let t0 = io::inl(port);
    let c0 = rdtsc();
    let mut spins = 0u32;
    while io::inl(port).wrapping_sub(t0) & 0x00ff_ffff < TICKS {
        // A timer that does not count must not hang the boot.
        spins += 1;
        if spins > 100_000 {
            return 0;
        }
    }
    rdtsc().wrapping_sub(c0)
}

fn rdtsc() -> u64 {
    // SAFETY: RDTSC only reads the time stamp counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}
