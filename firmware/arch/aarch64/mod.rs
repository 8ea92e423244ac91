//! aarch64 (QEMU virt) entry and platform code: discover the machine from
//! the DT, load the kernel over fw_cfg, describe the machine in ACPI, hand
//! off through a minimal EFI system table and a `/chosen`-only DT.

extern crate alloc;

mod acpi_glue;
mod ch;
mod cpu;
mod el2;
mod el3;
mod entry;
mod hw;
mod load;
mod mmu;
mod psci_glue;
mod shared;
mod stop;
mod trap;
mod vectors;

use alloc::string::String;
use alloc::vec::Vec;
use hotstub::boot::handoff::{not_for_linux, Handoff};
use hotstub::boot::machine::{ArmVmm, Qemu, TablesFrom, Virt};
use hotstub::boot::plan::{Facts, Plan, Resident};

use super::tpm::TisMmio;
use super::{ram_slice, virtio};
use hotstub::acpi;
use hotstub::boot::efi;
use hotstub::boot::from_disk;
use hotstub::boot::payload;
use hotstub::boot::pipeline::{self, Never, Result, Tables};
use hotstub::boot::smbios;
use hotstub::platform::dt;
use hotstub::platform::fw_cfg::{file, FwCfg};
use hotstub::tpm::{self, measure::Measure};
use hotstub::{println, NAME};
use hw::layout;
use shared::{
    areas, console, disks, elapsed_us, load_linux_above, map_board, set_console, write_handoff,
    Linux,
};
pub use stop::power_off;
use stop::{CONDUIT, SECURE_POWEROFF};

/// Where QEMU virt's RAM starts and a firmware finds the DTB (hw/arm/virt.c
/// `base_memmap[VIRT_MEM]`; hw/arm/boot.c puts the DTB at the RAM base when
/// a firmware is loaded). cloud-hypervisor uses the same address.
const RAM_BASE_DTB: u64 = 0x4000_0000;
/// QEMU virt's PL011 (`base_memmap[VIRT_UART]`): only used to report that
/// the DT itself is unusable, when there is no other way to find a console.
const FALLBACK_UART: u64 = 0x0900_0000;

#[no_mangle]
extern "C" fn hotstub_main(x0: u64) -> ! {
    let t0 = hw::counter().0;
    let el = hw::current_el();
    mmu::enable(el);
    super::init_heap();
    // One boot flow per VMM, chosen from the entry state and the DT
    // (`ArmVmm::detect`); a DT that does not parse takes the QEMU path,
    // whose discovery reports it.
    let blob = find_dt(x0);
    let in_x0 = blob.is_some_and(|b| b.as_ptr() as u64 == x0);
    let dt = match blob.map(dt::parse) {
        Some(Ok(board)) if ArmVmm::detect(el, in_x0, &board) == ArmVmm::CloudHypervisor => {
            pipeline::run(ch::ChBoot::new(board, t0))
        }
        dt => dt,
    };
    pipeline::run(VirtBoot {
        dt,
        t0,
        el,
        tpm: Measure::off(),
    })
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

/// The virt boot, step by step (`boot::pipeline`).
struct VirtBoot {
    /// The DT as found and parsed (None: no DT found).
    dt: Option<core::result::Result<dt::Board, dt::Error>>,
    /// Counter at reset, for the time spent in the firmware.
    t0: u64,
    /// The EL the firmware runs at.
    el: u8,
    /// Measured boot, on once a TPM answered.
    tpm: Measure<'static, TisMmio>,
}

impl pipeline::Arch for VirtBoot {
    type Found = (dt::Board, FwCfg<hw::FwCfgMmio>);
    type Sources = Qemu<hw::FwCfgMmio>;
    type Machine = Virt;
    type Plan = Plan;
    type Loaded = Linux;

    fn name(&self) -> &'static str {
        match self.el {
            3 => "aarch64 (EL3)",
            2 => "aarch64 (EL2)",
            _ => "aarch64 (EL1)",
        }
    }

    fn discover(&mut self) -> Result<Self::Found> {
        let el = self.el;
        let platform = match self.dt.take() {
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
        map_board(el, &platform);
        if let Some(sg) = platform.secure_gpio {
            if let (3, Some(pin)) = (el, sg.poweroff_pin) {
                // SAFETY: the DT names this PL061 as the secure GPIO.
                unsafe { SECURE_POWEROFF.set(sg.base, pin) };
            }
        }
        console(&platform)?;
        let fw_cfg_base = platform
            .fw_cfg
            .ok_or("device tree lacks fw_cfg: no way to load a kernel")?;
        // SAFETY: the DT names this fw_cfg MMIO base.
        let fw = FwCfg::probe(unsafe { hw::FwCfgMmio::new(fw_cfg_base) })?;
        Ok((platform, fw))
    }

    fn describe(&mut self, (board, fw): Self::Found) -> Result<(Virt, Self::Sources)> {
        if !fw.has_dma() {
            return Err("fw_cfg without DMA is not supported".into());
        }
        let (mut virt, mut src) = Virt::describe(board, self.el, layout::fw_ram(), fw)?;
        virt.restore_policy(el3::read_record);
        let el = self.el;
        virt.payload = from_disk::choose(&mut src, "Image", || {
            virtio::candidates(disks(el, &virt.board, false))
        })?;
        Ok((virt, src))
    }

    fn plan(&mut self, m: &Virt) -> Result<Plan> {
        let facts = Facts {
            el: m.el,
            board: &m.board,
            cpus: &m.cpus,
            vhe: cpu::features().vhe,
        };
        let plan = Plan::decide(facts, &areas())?;
        if plan.unenforced_policy {
            println!(
                "{NAME}: warning: at EL1 the vCPU policy is not enforced (use virtualization=on)"
            );
        }
        println!(
            "{NAME}: Linux enters at EL{}{}",
            plan.exit.linux_el(),
            match plan.exit {
                Handoff::Leaves { el: 2 } => " (firmware not resident)",
                Handoff::ResidentEl2 | Handoff::ResidentEl3 => " (firmware resident)",
                Handoff::Leaves { .. } => "",
            }
        );
        Ok(plan)
    }

    fn tables(&mut self, m: &Virt, p: &Plan, src: &mut Self::Sources) -> Result<Tables> {
        if let (Some((tis, size)), Some((log, log_size))) = (m.board.tpm, p.tpm_log) {
            mmu::map_device(self.el, tis, size);
            // SAFETY: the DT names this TIS page (mapped as Device just
            // above); the plan keeps the log area for it alone.
            self.tpm = unsafe {
                Measure::start(TisMmio::new(tis, hw::counter_us), ram_slice(log, log_size))
            };
            let (head, rest) = hw::flash_image();
            self.tpm.firmware(hotstub::VERSION_LINE, &[&head, rest]);
            for name in [file::ENABLED_CPUS, file::BOOT] {
                if let Some(v) = src.file(name, 4096)? {
                    self.tpm.config(name, &v);
                }
            }
        }
        let log = p.tpm_log.filter(|_| self.tpm.is_on());
        let t = match m.tables {
            TablesFrom::Build => build_tables(m, p, src, log.map(|(a, n)| (a, n as u32)))?,
            TablesFrom::Adopted { .. } => return Err(hotstub::err!("no adopted tables on virt")),
        };
        // SAFETY: what the tables (and SMBIOS) took of the plan's area.
        self.tpm.tables(&[unsafe { ram_slice(p.acpi.0, t.used) }]);
        Ok(t)
    }

    fn load(&mut self, m: &Virt, _: &Plan, src: &mut Self::Sources, _: &Tables) -> Result<Linux> {
        let linux = match m.payload {
            payload::From::FwCfg => {
                let linux = load_linux(&mut src.fw, m)?;
                measure_payload(&mut self.tpm, &linux, None);
                linux
            }
            payload::From::Disk => {
                let disk = src.disk.as_mut().ok_or("no disk payload was chosen")?;
                let linux = load_linux(disk, m);
                if let Ok(l) = &linux {
                    measure_payload(&mut self.tpm, l, Some(disk.found()));
                }
                // Dropping the payload resets the disk and switches its PCI
                // decoding off before Linux runs.
                src.disk = None;
                linux?
            }
        };
        core::mem::replace(&mut self.tpm, Measure::off()).finish();
        Ok(linux)
    }

    fn prepare_handoff(&mut self, m: &Virt, p: &Plan, t: &Tables, l: &mut Linux) -> Result<()> {
        let a = areas();
        // The resident EL2 firmware's arena, set aside before the memory
        // map that lists it.
        l.resident = if p.exit == Handoff::ResidentEl2 {
            el2::set_aside(m.cpus.len())?
        } else {
            Resident::default()
        };
        let kernel = (l.kernel.base, l.image.image_size);
        let initrd = l.initrd.as_ref().map(|i| (i.base, i.size));
        let carves = p.carves(&a, t.used, kernel, initrd, l.resident);
        let mut map = efi::memory_map(&p.ram(&m.board), &carves)?;
        if let Some(s) = p.secure {
            not_for_linux(&mut map, s);
        }
        write_handoff(&map, t, l, &m.board)
    }

    fn elapsed_us(&self) -> u64 {
        elapsed_us(self.t0)
    }

    fn enter(self, m: Virt, p: Plan, l: Linux) -> Result<Never> {
        let a = areas();
        match (p.exit, p.secure) {
            (Handoff::ResidentEl3, Some(secure)) => Ok(el3::enter(
                &m.board,
                &m.cpus,
                p.cpu_hotplug,
                m.saved.as_ref(),
                secure,
                (a.handoff_end, a.fw_end),
                self.t0,
                l.kernel.base,
                a.dt,
            )?),
            (Handoff::ResidentEl2, _) => {
                let kept = p.kept(&a, l.resident);
                let arena = l.resident.arena;
                Ok(el2::enter(
                    &m.board,
                    &m.cpus,
                    &kept,
                    arena,
                    l.kernel.base,
                    a.dt,
                )?)
            }
            // SAFETY: the Image was validated and loaded at its 2 MiB aligned
            // base + text_offset, the DT was just written; the firmware needs
            // nothing after.
            (exit, _) => unsafe { hw::enter_kernel(exit.linux_el(), l.kernel.base, a.dt) },
        }
    }

    fn power_off() -> ! {
        power_off()
    }
}

/// Measures what `load` placed: the command line, kernel and initrd; on a
/// disk also the configuration that chose them (`found`).
fn measure_payload(
    tpm: &mut Measure<'static, TisMmio>,
    l: &Linux,
    found: Option<&hotstub::disk::Found>,
) {
    if !tpm.is_on() {
        return;
    }
    // SAFETY: the kernel and initrd as `load_linux` placed them; nothing
    // writes them while these views live.
    let kernel = unsafe { ram_slice(l.kernel.base, l.kernel.size) };
    // SAFETY: as above.
    let initrd = l
        .initrd
        .as_ref()
        .map(|i| unsafe { ram_slice(i.base, i.size) });
    let names = found.map(|f| {
        let initrds: Vec<&str> = f.initrd_paths().collect();
        (String::from(f.kernel_path()), initrds.join(" "))
    });
    let (kname, iname) = names
        .as_ref()
        .map_or(("fw_cfg:kernel", "fw_cfg:initrd"), |n| (&n.0, &n.1));
    tpm.payload(&tpm::measure::Payload {
        config: found.map(|f| (f.config.0.as_str(), f.config.1.as_bytes())),
        cmdline: l.cmdline.as_bytes(),
        kernel: (kname, &[kernel]),
        initrd: initrd.map(|i| (iname, &i[..])),
    });
}

/// Hotstub's own tables for virt, into the area the plan gives them; the
/// RSDP right behind them.
fn build_tables(
    m: &Virt,
    p: &Plan,
    src: &mut Qemu<hw::FwCfgMmio>,
    tpm_log: Option<(u64, u32)>,
) -> Result<Tables> {
    let loader = src
        .file(file::TABLE_LOADER, acpi::vmm::QEMU_TABLES_MAX)?
        .unwrap_or_default();
    // As far as the loader's tables reach, without QEMU's padding.
    let head = acpi::vmm::loader_end(&loader).unwrap_or(usize::MAX);
    let blob = src
        .file_head(file::ACPI_TABLES, acpi::vmm::QEMU_TABLES_MAX, head)?
        .unwrap_or_default();
    // QEMU's DSDT, for the searches below; without one, all its tables
    // (all of `blob` unless the loader names ranges past it).
    let tables = acpi::vmm::dsdt(&blob, &loader)
        .unwrap_or_else(|| &blob[..acpi::vmm::extent(&blob, &loader)]);
    let mem_hotplug = acpi::memhp::from_qemu_tables(tables)?;
    let pci_hotplug = acpi::pcihp::virt_from_qemu_tables(tables)?;
    // Taken over, not re-derived: see acpi::vmm.
    let vmm_tables = acpi::vmm::take_over(&blob, &loader, acpi::vmm::VIRT, &m.cpus, tpm_log);
    let input = acpi_glue::Input {
        platform: &m.board,
        cpus: &m.cpus,
        ged: m
            .board
            .qemu_acpi_ged(src.files.find(file::ACPI_TABLES).is_some()),
        conduit: p.conduit,
        el2_vtimer: p.el2_vtimer,
        mem_hotplug,
        pci_hotplug,
        cpu_hotplug: p.cpu_hotplug,
        vmm_tables,
    };
    let (base, end) = p.acpi;
    // SAFETY: the linker script reserves the hand-off area for this.
    let buf = unsafe { ram_slice(base, end - base) };
    let (used, rsdp) = acpi_glue::build(input, buf, base)?;
    // SMBIOS behind the tables, in the same reclaimable area.
    let (used, smbios3) = match place_smbios(src, &mut buf[used as usize..], base + used) {
        Ok(Some(n)) => (used + n.0, Some(n.1)),
        Ok(None) => (used, None),
        Err(e) => {
            println!("{NAME}: warning: {e}; guest gets no DMI data");
            (used, None)
        }
    };
    Ok(Tables {
        rsdp,
        used,
        smbios3,
    })
}

/// QEMU's SMBIOS with the firmware's type 0 merged in, then its 64-bit
/// entry point, into `buf` at physical `phys` (16-byte aligned, as
/// DSP0134 5.2 asks of the entry point). Returns the bytes taken from
/// `buf` and the entry point's address; `None` without SMBIOS from QEMU.
fn place_smbios(
    src: &mut Qemu<hw::FwCfgMmio>,
    buf: &mut [u8],
    phys: u64,
) -> core::result::Result<Option<(u64, u64)>, &'static str> {
    // QEMU's structures for the largest virt are tens of KiB.
    const MAX: u32 = 256 << 10;
    let too_big = "SMBIOS tables do not fit the table area";
    let (Ok(Some(anchor)), Ok(Some(raw))) = (
        src.file(file::SMBIOS_ANCHOR, 64),
        src.file(file::SMBIOS_TABLES, MAX),
    ) else {
        return Ok(None);
    };
    let t = smbios::with_firmware(&raw, &smbios::HOTSTUB).map_err(|_| "bad SMBIOS from QEMU")?;
    let pad = (phys.next_multiple_of(16) - phys) as usize;
    let entry_at = (pad + t.bytes.len()).next_multiple_of(16);
    let end = entry_at + anchor.len();
    let dst = buf.get_mut(..end).ok_or(too_big)?;
    let mut anchor = anchor;
    smbios::patch_anchor(&mut anchor, phys + pad as u64, &t)
        .map_err(|_| "bad SMBIOS entry point from QEMU")?;
    dst[pad..pad + t.bytes.len()].copy_from_slice(&t.bytes);
    dst[entry_at..].copy_from_slice(&anchor);
    Ok(Some((end as u64, phys + entry_at as u64)))
}

/// Kernel, initrd and command line from `src`, placed above the firmware
/// in the RAM bank that holds it.
fn load_linux(src: &mut impl payload::Source, m: &Virt) -> Result<Linux> {
    let (_, fw_end) = layout::fw_ram();
    load_linux_above(src, fw_end, m.ram_end)
}
