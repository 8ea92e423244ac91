//! The hand-off plan over today's matrix: EL1, EL2 with and without a
//! vCPU policy, EL3 with and without the secure UART, on QEMU-shaped DTs.

use super::*;
use crate::boot::efi;
use crate::platform::dt::{self, tests::virt_dt};

const AREAS: Areas = Areas {
    acpi: 0x4010_0000,
    efi: 0x4014_0000,
    dt: 0x4015_0000,
    handoff_end: 0x4016_0000,
    stack_bottom: 0x401f_0000,
    fw_end: 0x4020_0000,
};
const KERNEL: (u64, u64) = (0x4040_0000, 0x0200_0000);
const INITRD: (u64, u64) = (0x4240_0000, 0x0080_0000);
const RESIDENT: Resident = Resident {
    data_end: 0x4016_3000,
    arena: (0x401e_6000, 0xa000),
};

fn board(secure: bool) -> Board {
    dt::parse(&virt_dt(true, secure)).unwrap()
}

/// `n` vCPUs, the first `enabled` of them enabled.
fn cpus(b: &Board, enabled: usize) -> CpuModel {
    let mut m = CpuModel::from_mpidrs(&b.cpus);
    for uid in enabled..m.len() {
        m.set_enabled(uid as u32, false);
    }
    m
}

fn plan(el: u8, b: &Board, enabled: usize) -> Result<Plan, PlanError> {
    let c = cpus(b, enabled);
    Plan::decide(
        Facts {
            el,
            board: b,
            cpus: &c,
            vhe: true,
        },
        &AREAS,
    )
}

fn types(carves: &[Carve]) -> Vec<(u64, u64, u32)> {
    carves.iter().map(|c| (c.base, c.size, c.ty)).collect()
}

/// The carve-outs every hand-off has: tables, EFI tables, DT, kernel.
fn common(acpi_used: u64) -> Vec<(u64, u64, u32)> {
    alloc::vec![
        (AREAS.acpi, acpi_used, mem_type::ACPI_RECLAIM),
        (AREAS.efi, 0x1_0000, mem_type::RUNTIME_SERVICES_DATA),
        (AREAS.dt, 0x1_0000, mem_type::LOADER_DATA),
        (KERNEL.0, KERNEL.1, mem_type::LOADER_DATA),
    ]
}

#[test]
fn el1_enters_linux_directly_and_says_when_a_policy_is_not_enforced() {
    let b = board(false);
    let all = b.cpus.len();
    let p = plan(1, &b, all).unwrap();
    assert_eq!(p.exit, Handoff::Leaves { el: 1 });
    assert_eq!(p.conduit, b.psci.unwrap());
    assert_eq!(p.el2_vtimer, None);
    assert_eq!((p.cpu_hotplug, p.secure), (None, None));
    assert_eq!(p.acpi, (AREAS.acpi, AREAS.efi));
    assert!(!p.unenforced_policy);
    assert!(plan(1, &b, 1).unwrap().unenforced_policy);
    let mut want = common(0x2345);
    want.push((AREAS.handoff_end, 0xa_0000, mem_type::BOOT_SERVICES_DATA));
    // The tables' unused pages, up to the EFI table.
    want.push((0x4010_3000, 0x3_d000, mem_type::BOOT_SERVICES_DATA));
    want.push((INITRD.0, INITRD.1, mem_type::LOADER_DATA));
    let c = p.carves(&AREAS, 0x2345, KERNEL, Some(INITRD), RESIDENT);
    assert_eq!(types(&c), want);
    assert!(p.kept(&AREAS, RESIDENT).is_empty());
    assert_eq!(p.ram(&b), b.memory);
}

#[test]
fn el2_without_a_policy_leaves_el2_to_linux() {
    let b = board(false);
    let p = plan(2, &b, b.cpus.len()).unwrap();
    assert_eq!(p.exit, Handoff::Leaves { el: 2 });
    assert_eq!(p.conduit, b.psci.unwrap());
    // A VHE kernel at EL2 uses the EL2 virtual timer (QEMU's PPI 12).
    assert_eq!(p.el2_vtimer, Some(28));
    assert!(p.kept(&AREAS, RESIDENT).is_empty());
    let c = p.carves(&AREAS, 0x1000, KERNEL, None, RESIDENT);
    assert!(c.iter().all(|c| c.ty != mem_type::RUNTIME_SERVICES_CODE));
}

#[test]
fn el2_with_a_policy_stays_and_keeps_its_data_arena_and_stack_top() {
    let b = board(false);
    let p = plan(2, &b, 1).unwrap();
    assert_eq!(p.exit, Handoff::ResidentEl2);
    assert_eq!(p.conduit, Conduit::Hvc);
    assert_eq!(p.el2_vtimer, None, "Linux runs at EL1");
    assert_eq!(p.secure, None);
    let kept = p.kept(&AREAS, RESIDENT);
    assert_eq!(
        kept,
        [
            (AREAS.handoff_end, 0x3000),
            RESIDENT.arena,
            (AREAS.fw_end - FALLBACK_STACK, FALLBACK_STACK)
        ]
    );
    let mut want = common(0x1000);
    want.push((AREAS.handoff_end, 0x3000, mem_type::RUNTIME_SERVICES_CODE));
    want.push((0x401e_6000, 0xa000, mem_type::RUNTIME_SERVICES_CODE));
    want.push((
        AREAS.fw_end - FALLBACK_STACK,
        0x2000,
        mem_type::RUNTIME_SERVICES_CODE,
    ));
    want.push((0x4010_1000, 0x3_f000, mem_type::BOOT_SERVICES_DATA));
    let c = p.carves(&AREAS, 0x1000, KERNEL, None, RESIDENT);
    assert_eq!(types(&c), want);
    // The boot heap between the kept data and the arena, and what lies
    // between the arena and the stack's top (the boot stack's dead part
    // included), are Linux's.
    let map = efi::memory_map(&p.ram(&b), &c).unwrap();
    for at in [RESIDENT.data_end, RESIDENT.arena.0 + RESIDENT.arena.1] {
        let free = map
            .iter()
            .find(|d| d.phys == at)
            .expect("the boot heap and stack are listed");
        assert_eq!(free.ty, mem_type::CONVENTIONAL);
    }
    let covers = |at: u64| {
        map.iter()
            .find(|d| d.phys <= at && at < d.phys + d.pages * efi::PAGE_SIZE)
            .map(|d| d.ty)
    };
    assert_eq!(covers(AREAS.stack_bottom), Some(mem_type::CONVENTIONAL));
    assert_eq!(
        covers(AREAS.fw_end - FALLBACK_STACK),
        Some(mem_type::RUNTIME_SERVICES_CODE)
    );
}

#[test]
fn el3_with_the_secure_uart_moves_to_secure_ram_and_serves_hotplug() {
    let b = board(true);
    let n = b.cpus.len();
    let p = plan(3, &b, 1).unwrap();
    assert_eq!(p.exit, Handoff::ResidentEl3);
    assert_eq!(p.conduit, Conduit::Smc);
    assert_eq!(p.el2_vtimer, Some(28));
    let block = AREAS.efi - ((n * SLOT) as u64).next_multiple_of(PAGE_SIZE);
    assert_eq!(
        p.cpu_hotplug,
        Some(CpuHotplug {
            block,
            intid: SPI_BASE + GED_SPI
        })
    );
    assert_eq!(p.acpi, (AREAS.acpi, block));
    assert_eq!(p.secure, Some((0x0e00_0000, 0x100_0000)));
    assert!(p.kept(&AREAS, RESIDENT).is_empty());
    let mut want = common(0x1000);
    want.push((AREAS.handoff_end, 0xa_0000, mem_type::BOOT_SERVICES_DATA));
    want.push((block, AREAS.efi - block, mem_type::ACPI_NVS));
    want.push((
        0x4010_1000,
        block - 0x4010_1000,
        mem_type::BOOT_SERVICES_DATA,
    ));
    want.push((INITRD.0, INITRD.1, mem_type::LOADER_DATA));
    want.push((0x0e00_0000, 0x100_0000, mem_type::RESERVED));
    let c = p.carves(&AREAS, 0x1000, KERNEL, Some(INITRD), RESIDENT);
    assert_eq!(types(&c), want);
    assert_eq!(p.ram(&b).last(), Some(&(0x0e00_0000, 0x100_0000)));
    efi::memory_map(&p.ram(&b), &c).unwrap();
}

#[test]
fn el3_without_the_secure_uart_has_no_runtime_hotplug() {
    let mut b = board(true);
    b.secure_uart = None;
    let p = plan(3, &b, b.cpus.len()).unwrap();
    assert_eq!(p.exit, Handoff::ResidentEl3);
    assert_eq!(p.cpu_hotplug, None);
    assert_eq!(p.acpi, (AREAS.acpi, AREAS.efi));
    let c = p.carves(&AREAS, 0x1000, KERNEL, None, RESIDENT);
    assert!(c.iter().all(|c| c.ty != mem_type::ACPI_NVS));
    assert!(c.iter().any(|c| c.ty == mem_type::RESERVED));
}

#[test]
fn plans_that_cannot_be_carried_out_are_refused() {
    let mut b = board(true);
    b.secure_ram = None;
    assert_eq!(plan(3, &b, 1), Err(PlanError::NoSecureRam));
    let mut b = board(true);
    b.rtc = Some((0x0901_0000, SPI_BASE + GED_SPI));
    assert_eq!(plan(3, &b, 1), Err(PlanError::GedSpiTaken));
    // Without the secure UART the SPI is not needed.
    b.secure_uart = None;
    assert!(plan(3, &b, 1).is_ok());
    let mut b = board(false);
    b.psci = None;
    assert_eq!(plan(1, &b, 1), Err(PlanError::NoPsci));
    assert_eq!(plan(2, &b, 1).unwrap().conduit, Conduit::Hvc);
    // The messages are the ones the firmware always printed.
    assert_eq!(
        PlanError::GedSpiTaken.to_string(),
        "SPI 12 for the vCPU hotplug GED is taken by a device"
    );
}

#[test]
fn spis_of_described_devices_and_of_qemus_ged_are_in_use() {
    let b = board(true);
    let (_, uart) = b.uart.unwrap();
    assert!(spi_in_use(&b, uart));
    assert!(spi_in_use(&b, QEMU_VIRT_GED.1));
    assert!(!spi_in_use(&b, SPI_BASE + GED_SPI));
}
