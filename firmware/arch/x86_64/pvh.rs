//! The PVH entry (boot.S `pvh_entry`, the ELF `cargo xtask build` writes
//! as `hotstub-x86_64.elf`): QEMU's `-kernel` and cloud-hypervisor's
//! `--firmware` both start the firmware this way. They are told apart by
//! the host bridge at 00:00.0 and fw_cfg: QEMU always has fw_cfg, and its
//! boards' bridges are Intel's Q35 or i440FX; cloud-hypervisor's is its
//! own 8086:0d57, and it has fw_cfg only in builds with its non-default
//! `fw_cfg` feature. A QEMU board with fw_cfg boots as q35 does (Hotstub's
//! own tables, the kernel from a disk); anything else is cloud-hypervisor's
//! boot (its tables adopted, its fw_cfg read where it has one).

use super::*;
use hotstub::acpi::adopt::PhysMem;
use hotstub::boot::pvh::{self, StartInfo};

#[no_mangle]
extern "C" fn hotstub_pvh_main(start_info: u32) -> ! {
    // The loader placed the whole image, disk code included.
    disk_code::in_place();
    init_console();
    idt::init();
    crate::arch::init_heap();
    let board = stop::identify();
    if board != Board::CloudHypervisor && FwCfg::probe(PioFwCfg).is_ok() {
        let t0 = super::enable_pm(board);
        pipeline::run(PcBoot {
            t0,
            board,
            tpm: super::Measure::off(),
            pvh: Some(start_info),
            acpi_area: (0, 0),
        })
    }
    pipeline::run(ch::ChBoot::new(start_info))
}

/// The start info at `at` (EBX at the entry).
pub(super) fn start_info(at: u32) -> Result<StartInfo> {
    Ok(pvh::parse(&Phys { ram: None }, u64::from(at))?)
}

/// Guest-physical memory as the PVH entry mapped it: the low 4 GiB,
/// identity-mapped. With `ram`, only that map's RAM and the first MiB
/// (where cloud-hypervisor puts its ACPI tables, outside its RAM map) are
/// read, so a hostile pointer never reaches device memory.
pub(super) struct Phys<'a> {
    pub ram: Option<&'a MemoryMap>,
}

impl PhysMem for Phys<'_> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        let len = buf.len() as u64;
        let Some(end) = addr.checked_add(len) else {
            return false;
        };
        // Address 0 is never a structure the VMM points at.
        if addr == 0 || end > 1 << 32 {
            return false;
        }
        if let Some(map) = self.ram {
            if end > 1 << 20 && !map.is_ram(addr, len) {
                return false;
            }
        }
        // SAFETY: the range lies below 4 GiB, which boot.S identity-maps,
        // and is not address 0; with a map it is RAM or the legacy first
        // MiB, so reading has no side effect. A copy, no reference kept.
        unsafe {
            core::ptr::copy_nonoverlapping(addr as *const u8, buf.as_mut_ptr(), buf.len());
        }
        true
    }
}
