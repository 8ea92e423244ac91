//! The device tree QEMU's arm `virt` machine hands the firmware
//! (`platform::dt::parse`), and `blob_at`, which finds it in RAM.
//! Input: the raw blob.
#![no_main]

use hotstub::platform::cpus::CpuModel;
use hotstub::boot::stub_dt;
use hotstub::platform::dt;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(b) = dt::blob_at(data) {
        assert!(b.len() >= 40 && b.len() <= data.len());
    }
    let Ok(board) = dt::parse(data) else {
        return;
    };
    // What a successful parse promises its users.
    assert!(!board.memory.is_empty());
    // Sorted, disjoint, non-empty, none wrapping: RAM is used as
    // [base, base + size) throughout.
    assert!(board.memory.windows(2).all(|w| w[0].0 + w[0].1 <= w[1].0));
    assert!(board
        .memory
        .iter()
        .all(|m| m.1 > 0 && m.0.checked_add(m.1).is_some()));
    // The EL3 firmware uses its secure RAM as [base, base + size) too.
    assert!(board
        .secure_ram
        .is_none_or(|m| m.1 > 0 && m.0.checked_add(m.1).is_some()));
    assert!(!board.cpus.is_empty());
    assert!(matches!(board.gic.version, 2 | 3));
    assert!(board.gic.version == 2 || !board.gic.gicr.is_empty());
    assert!(board.gic.version == 3 || board.gic.gicc.is_some());
    // Every INTID decoded from a GIC specifier is a PPI or an SPI.
    let intid = |i: u32| (16..1020).contains(&i);
    assert!(board.timer_irqs.iter().copied().all(intid));
    assert!(board.timer_el2_virt.is_none_or(intid));
    assert!(board.pmu_irq.is_none_or(intid));
    assert!(board.gic.maint_irq.is_none_or(intid));
    assert!(board.uart.is_none_or(|u| intid(u.1)));
    assert!(board.rtc.is_none_or(|u| intid(u.1)));
    assert!(board.virtio_mmio.iter().all(|v| intid(v.2)));
    if let Some(pci) = &board.pcie {
        assert!(pci.bus_start <= pci.bus_end);
        assert!(pci.prt.iter().all(|&(d, p, i)| d < 32 && p < 4 && intid(i)));
    }
    if let Some(seed) = &board.rng_seed {
        assert!(seed.len() <= data.len());
    }
    if let Some(args) = &board.bootargs {
        assert!(!args.is_empty() && args.len() <= data.len());
    }
    let _ = board.ram_size();
    let _ = board.qemu_acpi_ged(true);
    // The CPU model is built from the DT's MPIDRs, in DT order.
    let model = CpuModel::from_mpidrs(&board.cpus);
    assert_eq!(model.len(), board.cpus.len());
    // The stub DT for Linux carries the DT's entropy on.
    let chosen = stub_dt::Chosen {
        bootargs: "console=ttyAMA0",
        rng_seed: board.rng_seed.as_deref(),
        kaslr_seed: board.kaslr_seed,
        ..Default::default()
    };
    let out = stub_dt::write_chosen(&chosen);
    assert!(dt::blob_at(&out).is_some_and(|b| b.len() == out.len()));
    assert!(dt::check_structure(&out).is_ok());
});
