//! The aarch64 hand-off, planned once before any table is built: how
//! Linux is entered, what the firmware keeps, where the ACPI tables and
//! the runtime hotplug's shared block go, and how the EFI memory map
//! lists every range. The tables describe the plan, `prepare_handoff`
//! writes its memory map and `enter` carries it out; none of them decides
//! anything again.

use alloc::vec::Vec;
use core::fmt;

use super::efi::{mem_type, Carve, PAGE_SIZE};
use super::handoff::Handoff;
use crate::acpi::cpuhp::CpuHotplug;
use crate::platform::cpus::CpuModel;
use crate::platform::dt::{Board, QEMU_VIRT_GED, SPI_BASE};
use crate::psci::Conduit;
use crate::resident::hotplug::SLOT;

/// The boot stack's top the resident EL2 firmware keeps: the fatal path
/// of an exception whose SP is not in a handler stack runs there
/// (arch/aarch64/vectors.rs), and needs no more than a handler does (a
/// handler stack is 8 KiB, vectors.rs STACK_SIZE).
pub const FALLBACK_STACK: u64 = 8 << 10;
/// What the resident EL2 firmware keeps of its RAM besides the hand-off
/// area and the fallback stack: its static data (from the hand-off area's
/// end to `data_end`) and `arena`, (base, size), which holds its handler
/// stacks, stage-2 tables and the heap it allocates from once resident.
/// Zero when the firmware does not stay at EL2.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resident {
    pub data_end: u64,
    pub arena: (u64, u64),
}

/// The SPI of the runtime vCPU hotplug's GED at EL3: QEMU virt wires SPIs
/// 0-9 (secure GPIO 0, UART 1, RTC 2, PCIe INTx 3-6, GPIO 7, secure UART
/// 8, GED 9) and 16 up (virtio-mmio, GICv2m, SMMUv3, platform bus),
/// hw/arm/virt.c `a15irqmap`; 10-15 are free. [`spi_in_use`] checks the
/// DT as well.
pub const GED_SPI: u32 = 12;

/// The firmware's RAM as the linker script lays it out (linker/aarch64.ld),
/// in ascending order: the hand-off area (ACPI tables, EFI system table
/// and memory map, the DT for Linux), then data, heap and the boot stack
/// up to the end of the firmware's RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Areas {
    pub acpi: u64,
    pub efi: u64,
    pub dt: u64,
    /// End of the hand-off area, start of the firmware's data.
    pub handoff_end: u64,
    pub stack_bottom: u64,
    pub fw_end: u64,
}

/// What the plan takes from the machine.
#[derive(Clone, Copy)]
pub struct Facts<'a> {
    /// The EL the firmware runs at.
    pub el: u8,
    pub board: &'a Board,
    pub cpus: &'a CpuModel,
    /// The CPU has FEAT_VHE (a kernel at EL2 then runs in VHE mode).
    pub vhe: bool,
}

/// Why a hand-off cannot be planned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanError {
    NoPsci,
    GedSpiTaken,
    NoSecureRam,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            PlanError::NoPsci => f.write_str(
                "the DT names no PSCI, and without staying resident the firmware cannot provide one",
            ),
            PlanError::GedSpiTaken => write!(
                f,
                "SPI {GED_SPI} for the vCPU hotplug GED is taken by a device"
            ),
            PlanError::NoSecureRam => {
                f.write_str("at EL3 the DT describes no secure RAM for the resident firmware")
            }
        }
    }
}

/// The hand-off, decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    pub exit: Handoff,
    /// The PSCI conduit Linux is told to use.
    pub conduit: Conduit,
    /// The EL2 virtual timer the GTDT describes.
    pub el2_vtimer: Option<u32>,
    /// At EL3 with the secure UART: the runtime vCPU hotplug, its shared
    /// block at the end of the ACPI area.
    pub cpu_hotplug: Option<CpuHotplug>,
    /// `[start, end)` the ACPI tables may fill.
    pub acpi: (u64, u64),
    /// With a TPM: the event log's (base, size), at the end of the ACPI
    /// area below the hotplug block (ACPI NVS in the memory map).
    pub tpm_log: Option<(u64, u64)>,
    /// At EL3, the secure RAM the resident firmware moves to.
    pub secure: Option<(u64, u64)>,
    /// A vCPU policy the firmware cannot enforce (at EL1).
    pub unenforced_policy: bool,
}

impl Plan {
    /// At EL1, and at EL2 with every vCPU enabled, Linux is entered at the
    /// firmware's EL and calls the VMM's PSCI as the DT names it; with a
    /// policy at EL2, and always at EL3, the firmware stays resident as the
    /// PSCI. Runtime vCPU hotplug needs the secure UART for the host's
    /// channel and the firmware at EL3 to serve it.
    pub fn decide(f: Facts, a: &Areas) -> Result<Plan, PlanError> {
        let all_enabled = f.cpus.enabled_count() == f.cpus.len();
        let exit = Handoff::decide(f.el, all_enabled);
        let conduit = exit
            .linux_conduit(f.board.psci)
            .map_err(|_| PlanError::NoPsci)?;
        let mut acpi_end = a.efi;
        let cpu_hotplug = if exit == Handoff::ResidentEl3 && f.board.secure_uart.is_some() {
            let intid = SPI_BASE + GED_SPI;
            if spi_in_use(f.board, intid) {
                return Err(PlanError::GedSpiTaken);
            }
            acpi_end -= ((f.cpus.len() * SLOT) as u64).next_multiple_of(PAGE_SIZE);
            Some(CpuHotplug {
                block: acpi_end,
                intid,
            })
        } else {
            None
        };
        let tpm_log = f.board.tpm.map(|_| {
            acpi_end -= crate::tpm::LOG_SIZE as u64;
            (acpi_end, crate::tpm::LOG_SIZE as u64)
        });
        let secure = match exit {
            Handoff::ResidentEl3 => Some(f.board.secure_ram.ok_or(PlanError::NoSecureRam)?),
            _ => None,
        };
        Ok(Plan {
            exit,
            conduit,
            el2_vtimer: exit.el2_vtimer(f.vhe, f.board.timer_el2_virt),
            cpu_hotplug,
            acpi: (a.acpi, acpi_end),
            tpm_log,
            secure,
            unenforced_policy: f.el == 1 && !all_enabled,
        })
    }

    /// What the resident EL2 firmware keeps from Linux, as (base, size):
    /// its static data, the arena `r` it set aside for its handler stacks,
    /// stage-2 tables and heap, and the top [`FALLBACK_STACK`] bytes of the
    /// boot stack, which the fatal path falls back to. The boot heap and
    /// the rest of the boot stack (dead once the kernel runs: every CPU
    /// then runs the firmware on its handler stack, out of the arena) are
    /// Linux's. Empty unless the firmware stays at EL2 (at EL3 it moves to
    /// the secure RAM).
    pub fn kept(&self, a: &Areas, r: Resident) -> Vec<(u64, u64)> {
        if self.exit != Handoff::ResidentEl2 {
            return Vec::new();
        }
        let fallback = FALLBACK_STACK.min(a.fw_end - a.stack_bottom);
        alloc::vec![
            (a.handoff_end, r.data_end - a.handoff_end),
            r.arena,
            (a.fw_end - fallback, fallback),
        ]
    }

    /// The EFI memory map's carve-outs: every range the firmware or the
    /// payload uses, with its type; the rest of RAM is Linux's.
    /// `acpi_used` is what the tables took, `kernel` and `initrd` are
    /// (base, size), `r` as for [`Plan::kept`].
    pub fn carves(
        &self,
        a: &Areas,
        acpi_used: u64,
        kernel: (u64, u64),
        initrd: Option<(u64, u64)>,
        r: Resident,
    ) -> Vec<Carve> {
        let carve = |base, size, ty| Carve { base, size, ty };
        let mut carves = alloc::vec![
            carve(a.acpi, acpi_used, mem_type::ACPI_RECLAIM),
            carve(a.efi, a.dt - a.efi, mem_type::RUNTIME_SERVICES_DATA),
            carve(a.dt, a.handoff_end - a.dt, mem_type::LOADER_DATA),
            carve(kernel.0, kernel.1, mem_type::LOADER_DATA),
        ];
        // The firmware's own data, heap and stack are dead once Linux
        // runs, unless it stays at EL2.
        let kept = self.kept(a, r);
        if kept.is_empty() {
            carves.push(carve(
                a.handoff_end,
                a.fw_end - a.handoff_end,
                mem_type::BOOT_SERVICES_DATA,
            ));
        }
        for (base, size) in kept {
            carves.push(carve(base, size, mem_type::RUNTIME_SERVICES_CODE));
        }
        // The hotplug's shared block: AML's OperationRegions live in it for
        // good (ACPI 6.5 15.3: AddressRangeNVS).
        let mut spare_end = a.efi;
        if let Some(h) = self.cpu_hotplug {
            spare_end = h.block;
            carves.push(carve(h.block, a.efi - h.block, mem_type::ACPI_NVS));
        }
        // Linux reads the log when its TPM driver binds, long after boot.
        if let Some((base, size)) = self.tpm_log {
            spare_end = base;
            carves.push(carve(base, size, mem_type::ACPI_NVS));
        }
        let acpi_used_end = (a.acpi + acpi_used).next_multiple_of(PAGE_SIZE);
        if acpi_used_end < spare_end {
            carves.push(carve(
                acpi_used_end,
                spare_end - acpi_used_end,
                mem_type::BOOT_SERVICES_DATA,
            ));
        }
        if let Some((base, size)) = initrd {
            carves.push(carve(base, size, mem_type::LOADER_DATA));
        }
        // At EL3 the resident firmware moves to the secure RAM, which the
        // memory map lists as reserved (see `handoff::not_for_linux`).
        if let Some((base, size)) = self.secure {
            carves.push(carve(base, size, mem_type::RESERVED));
        }
        carves
    }

    /// The RAM the EFI memory map covers: the DT's, and at EL3 the secure
    /// RAM too.
    pub fn ram(&self, board: &Board) -> Vec<(u64, u64)> {
        let mut ram = board.memory.clone();
        ram.extend(self.secure);
        ram
    }
}

/// Whether an SPI (INTID) is claimed by a device the DT describes or by
/// QEMU's GED.
pub fn spi_in_use(b: &Board, intid: u32) -> bool {
    let mut used = [b.uart, b.rtc, b.secure_uart]
        .iter()
        .flatten()
        .any(|&(_, i)| i == intid);
    used |= b.virtio_mmio.iter().any(|&(_, _, i)| i == intid);
    used |= b
        .pcie
        .as_ref()
        .is_some_and(|p| p.prt.iter().any(|&(_, _, i)| i == intid));
    used || intid == QEMU_VIRT_GED.1
}

#[cfg(test)]
mod tests;
