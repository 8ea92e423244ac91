//! The virt description from QEMU-shaped DTs and a fake fw_cfg.

use super::*;
use crate::platform::dt::{self, tests::virt_dt};
use crate::platform::fw_cfg::{
    key,
    testing::{dir, Fake},
};
use alloc::vec::Vec;

/// QEMU's virt RAM from 1 GiB, the firmware in its first MiBs.
const FW_RAM: (u64, u64) = (0x4010_0000, 0x4020_0000);

/// A fw_cfg whose directory lists `files` (name, contents) at keys from
/// 0x20 on (fw_cfg.rst: FW_CFG_FILE_DIR, big-endian count then 64-byte
/// entries of size, select, reserved, name).
fn fw_with(files: &[(&str, &[u8])]) -> FwCfg<Fake> {
    let key_of = |i: usize| 0x20 + i as u16;
    let listed: Vec<(&str, u16, u32)> = files
        .iter()
        .enumerate()
        .map(|(i, (name, data))| (*name, key_of(i), data.len() as u32))
        .collect();
    let d = dir(&listed);
    let mut items: Vec<(u16, &[u8])> = files
        .iter()
        .enumerate()
        .map(|(i, (_, data))| (key_of(i), *data))
        .collect();
    items.push((key::FILE_DIR, &d));
    FwCfg::probe(Fake::with(&items)).unwrap()
}

fn describe(files: &[(&str, &[u8])]) -> Result<(Virt, Qemu<Fake>)> {
    let board = dt::parse(&virt_dt(true, false)).unwrap();
    Virt::describe(board, 2, FW_RAM, fw_with(files))
}

#[test]
fn virt_from_its_dt_and_fw_cfg() {
    let (v, mut src) = describe(&[(file::ACPI_TABLES, b"xyz")]).unwrap();
    assert_eq!(v.el, 2);
    assert_eq!(v.ram_end, 0x8000_0000, "the 1 GiB bank at 1 GiB");
    assert_eq!(v.cpus.len(), v.board.cpus.len());
    assert_eq!(v.cpus.enabled_count(), v.cpus.len(), "no policy: all");
    assert_eq!(v.payload, payload::From::FwCfg);
    assert_eq!(v.tables, TablesFrom::Build);
    // The directory was read once; the sources read its files.
    assert_eq!(src.file("etc/acpi/tables", 16).unwrap().unwrap(), b"xyz");
    assert!(src.file("etc/acpi/tables", 2).is_err(), "over its limit");
    assert_eq!(src.file("etc/e820", 16).unwrap(), None);
}

#[test]
fn the_vmm_policy_decides_which_vcpus_may_come_online() {
    let (v, _) = describe(&[(cpulist::FW_CFG_FILE, b"0-1\n")]).unwrap();
    assert!(v.cpus.len() > 2);
    assert_eq!(v.cpus.enabled_count(), 2);
    assert!(describe(&[(cpulist::FW_CFG_FILE, b"frobnicate")]).is_err());
    let huge = alloc::vec![b'0'; CPU_LIST_MAX as usize + 1];
    assert!(describe(&[(cpulist::FW_CFG_FILE, &huge)]).is_err());
}

#[test]
fn the_firmware_must_sit_in_ram() {
    let board = dt::parse(&virt_dt(true, false)).unwrap();
    let outside = (0x1000, 0x2000);
    assert!(Virt::describe(board, 1, outside, fw_with(&[])).is_err());
}

/// virt at `el` with secure parts (`secure=on`: secure RAM and UART) and
/// `enabled-cpus=0-1` of its three vCPUs.
fn virt_at(el: u8, secure: bool) -> Virt {
    let board = dt::parse(&virt_dt(true, secure)).unwrap();
    let fw = fw_with(&[(cpulist::FW_CFG_FILE, b"0-1")]);
    Virt::describe(board, el, FW_RAM, fw).unwrap().0
}

fn enabled(v: &Virt) -> Vec<usize> {
    (0..v.cpus.len())
        .filter(|&i| v.cpus.as_slice()[i].enabled)
        .collect()
}

/// The record a run with `enabled` of `v`'s vCPUs enabled would leave.
fn record_of(v: &Virt, enabled: &[usize]) -> Record {
    let crc = record::possible_crc(v.cpus.iter().map(|c| c.hw_id));
    Record::new(v.cpus.len(), |i| enabled.contains(&i), None, crc).unwrap()
}

#[test]
fn at_el3_a_whole_record_replaces_enabled_cpus() {
    let mut v = virt_at(3, true);
    assert_eq!(v.cpus.len(), 3);
    let kept = record_of(&v, &[0, 1, 2]);
    let mut read_at = None;
    v.restore_policy(|at| {
        read_at = Some(at);
        kept
    });
    // The last page of QEMU virt's 16 MiB of secure RAM at 0x0e00_0000.
    assert_eq!(read_at, Some(0x0eff_f000));
    assert_eq!(enabled(&v), [0, 1, 2]);
    let f = v.saved.unwrap();
    assert_eq!((f.at, f.check, f.saved()), (0x0eff_f000, Ok(()), Ok(&kept)));

    // A cold start (zeroed RAM), a damaged record, one for other vCPUs:
    // enabled-cpus, and the reason for the boot event.
    let foreign = Record::new(3, |_| true, None, 0x1234).unwrap();
    let mut torn = kept;
    torn.0[40] ^= 1;
    for (r, why) in [
        (Record([0; record::SIZE]), record::NONE),
        (torn, "enabled-cpus (record: checksum)"),
        (foreign, "enabled-cpus (record: other vCPUs)"),
    ] {
        let mut v = virt_at(3, true);
        v.restore_policy(|_| r);
        assert_eq!(enabled(&v), [0, 1]);
        assert_eq!(v.saved.unwrap().saved(), Err(why));
    }
}

#[test]
fn without_the_channel_nothing_is_restored() {
    // Below EL3 and without the secure UART nothing changes the policy
    // after boot, so a record in RAM is never looked at.
    for (el, secure) in [(2, true), (3, false), (1, false)] {
        let mut v = virt_at(el, secure);
        v.restore_policy(|_| panic!("read at EL{el}"));
        assert_eq!((v.saved, enabled(&v)), (None, alloc::vec![0, 1]));
    }
}

#[test]
fn the_record_lives_in_the_last_page_of_whole_pages() {
    assert_eq!(record::place((0x0e00_0000, 0x100_0000)), Some(0x0eff_f000));
    assert_eq!(record::place((0x0e00_0000, 0x1000)), Some(0x0e00_0000));
    assert_eq!(record::place((0x0e00_0000, 0)), None);
    assert_eq!(record::place((0x0e00_0800, 0x2000)), None);
    assert_eq!(record::place((0x0e00_0000, 0x1800)), None);
}

fn qemu(files: &[(&str, &[u8])]) -> Qemu<Fake> {
    Qemu::open(fw_with(files)).unwrap()
}

#[test]
fn q35_facts_from_fw_cfg_files() {
    // One e820 entry: 640 KiB of RAM at 0 (address, length, type 1).
    let mut e820 = Vec::new();
    e820.extend_from_slice(&0u64.to_le_bytes());
    e820.extend_from_slice(&0xa_0000u64.to_le_bytes());
    e820.extend_from_slice(&1u32.to_le_bytes());
    let end = 0x1_8000_0000u64.to_le_bytes();
    let mut q = qemu(&[
        (file::E820, &e820),
        (file::RESERVED_MEMORY_END, &end),
        (file::PVPANIC_PORT, &0x505u16.to_le_bytes()),
    ]);
    assert_eq!(q.e820().unwrap().ram_end_below_4g(), 0xa_0000);
    assert_eq!(q.reserved_memory_end().unwrap(), 0x1_8000_0000);
    assert_eq!(q.pvpanic_port().unwrap(), Some(0x505));
    // Absent optional files are not errors; an absent memory map is.
    let mut q = qemu(&[]);
    assert!(q.e820().is_err());
    assert_eq!(q.reserved_memory_end().unwrap(), 0);
    assert_eq!(q.pvpanic_port().unwrap(), None);
    // Wrong sizes are refused, not read as something else.
    let mut q = qemu(&[
        (file::E820, &e820[..19]),
        (file::RESERVED_MEMORY_END, &end[..4]),
        (file::PVPANIC_PORT, &end),
    ]);
    assert!(q.e820().is_err());
    assert!(q.reserved_memory_end().is_err());
    assert!(q.pvpanic_port().is_err());
    let huge = alloc::vec![0u8; (E820_MAX + 1) * E820_ENTRY];
    assert!(qemu(&[(file::E820, &huge)]).e820().is_err());
}

#[test]
fn cloud_hypervisor_is_told_from_qemu_by_entry_state_and_platform_bus() {
    let ch = dt::parse(&dt::tests::ch_dtb("fdt-boot2max4.dtb")).unwrap();
    let qemu = dt::parse(&virt_dt(true, false)).unwrap();
    assert!(qemu.qemu_platform_bus);
    assert_eq!(ArmVmm::detect(1, true, &ch), ArmVmm::CloudHypervisor);
    // A CH build with its fw_cfg feature adds a fw_cfg node (at 0x9030000,
    // CH devices/src/legacy/fw_cfg.rs): still CH.
    let ch_fw_cfg = dt::Board {
        fw_cfg: Some(0x0903_0000),
        ..ch.clone()
    };
    assert_eq!(ArmVmm::detect(1, true, &ch_fw_cfg), ArmVmm::CloudHypervisor);
    // QEMU -bios leaves x0 zero: its DT is found at the start of RAM.
    assert_eq!(ArmVmm::detect(1, false, &ch), ArmVmm::QemuVirt);
    assert_eq!(
        ArmVmm::detect(1, true, &qemu),
        ArmVmm::QemuVirt,
        "platform bus"
    );
    assert_eq!(
        ArmVmm::detect(2, true, &ch),
        ArmVmm::QemuVirt,
        "CH enters at EL1"
    );
}

#[test]
fn cloud_hypervisor_machine_from_its_dt() {
    let board = dt::parse(&dt::tests::ch_dtb("fdt-boot2max4.dtb")).unwrap();
    let m = ChVirt::describe(board.clone(), FW_RAM, 0x4020_0000, 2 << 20).unwrap();
    assert_eq!(m.ram_end, 0x6000_0000);
    assert_eq!(m.cpus.len(), 2);
    assert_eq!(m.cpus.enabled_count(), 2);
    assert_eq!(m.payload, payload::From::Disk);
    assert_eq!(m.tables, TablesFrom::Adopted { rsdp: 0x4020_0000 });
    assert_eq!(m.acpi_window, (0x4020_0000, 0x4040_0000));
    // Tables inside the firmware's RAM or past RAM are refused.
    assert!(ChVirt::describe(board.clone(), FW_RAM, 0x4010_0000, 4096).is_err());
    assert!(ChVirt::describe(board, FW_RAM, 0x6000_0000, 4096).is_err());
}
