//! Host tests of the DT reader, on DTs shaped like QEMU virt's.

use super::structure::MAX_DEPTH;
use super::*;
use alloc::string::String;
use fdt::node::FdtNode;
use fdt::Fdt;

/// Builds a DT shaped like QEMU virt's (same nodes and cell layouts as
/// QEMU 10.0's `dumpdtb` output, abridged).
pub(crate) fn virt_dt(gic_v3: bool, secure: bool) -> Vec<u8> {
    virt_dt_with(gic_v3, secure, true)
}

fn virt_dt_with(gic_v3: bool, secure: bool, bus_range: bool) -> Vec<u8> {
    let mut w = vm_fdt::FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    w.property_string_list("compatible", alloc::vec![String::from("linux,dummy-virt")])
        .unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    w.property_u32("interrupt-parent", 0x8002).unwrap();

    let n = w.begin_node("chosen").unwrap();
    w.property("rng-seed", &[1, 2, 3, 4]).unwrap();
    w.property_u64("kaslr-seed", 0x1122334455667788).unwrap();
    w.end_node(n).unwrap();

    let n = w.begin_node("memory@40000000").unwrap();
    w.property_string("device_type", "memory").unwrap();
    w.property_array_u64("reg", &[0x4000_0000, 0x4000_0000])
        .unwrap();
    w.end_node(n).unwrap();
    if secure {
        let n = w.begin_node("secram@e000000").unwrap();
        w.property_string("device_type", "memory").unwrap();
        w.property_string("status", "disabled").unwrap();
        w.property_string("secure-status", "okay").unwrap();
        w.property_array_u64("reg", &[0x0e00_0000, 0x0100_0000])
            .unwrap();
        w.end_node(n).unwrap();
        let n = w.begin_node("pl061@90b0000").unwrap();
        w.property_string("compatible", "arm,pl061").unwrap();
        w.property_string("status", "disabled").unwrap();
        w.property_string("secure-status", "okay").unwrap();
        w.property_array_u64("reg", &[0x090b_0000, 0x1000]).unwrap();
        w.property_u32("phandle", 0x8007).unwrap();
        w.end_node(n).unwrap();
        let n = w.begin_node("pl011@9040000").unwrap();
        w.property_string("compatible", "arm,pl011").unwrap();
        w.property_string("status", "disabled").unwrap();
        w.property_string("secure-status", "okay").unwrap();
        w.property_array_u64("reg", &[0x0904_0000, 0x1000]).unwrap();
        w.property_array_u32("interrupts", &[0, 8, 4]).unwrap();
        w.end_node(n).unwrap();
        let n = w.begin_node("gpio-poweroff").unwrap();
        w.property_string("compatible", "gpio-poweroff").unwrap();
        w.property_array_u32("gpios", &[0x8007, 3, 0]).unwrap();
        w.end_node(n).unwrap();
        let n = w.begin_node("gpio-restart").unwrap();
        w.property_string("compatible", "gpio-restart").unwrap();
        w.property_array_u32("gpios", &[0x8007, 4, 0]).unwrap();
        w.end_node(n).unwrap();
    } else {
        let n = w.begin_node("psci").unwrap();
        w.property_string_list(
            "compatible",
            alloc::vec![String::from("arm,psci-1.0"), String::from("arm,psci-0.2")],
        )
        .unwrap();
        w.property_string("method", "hvc").unwrap();
        w.end_node(n).unwrap();
    }

    let n = w.begin_node("cpus").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 0).unwrap();
    for (i, mpidr) in [0u32, 1, 0x100].iter().enumerate() {
        let c = w.begin_node(&alloc::format!("cpu@{i}")).unwrap();
        w.property_string("device_type", "cpu").unwrap();
        w.property_u32("reg", *mpidr).unwrap();
        w.end_node(c).unwrap();
    }
    w.end_node(n).unwrap();

    let n = w.begin_node("intc@8000000").unwrap();
    w.property_u32("phandle", 0x8002).unwrap();
    w.property_u32("#interrupt-cells", 3).unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    w.property_null("interrupt-controller").unwrap();
    w.property_null("ranges").unwrap();
    w.property_array_u32("interrupts", &[1, 9, 4]).unwrap();
    if gic_v3 {
        w.property_string("compatible", "arm,gic-v3").unwrap();
        w.property_u32("#redistributor-regions", 1).unwrap();
        w.property_array_u64("reg", &[0x0800_0000, 0x10000, 0x080a_0000, 0xf6_0000])
            .unwrap();
        let its = w.begin_node("its@8080000").unwrap();
        w.property_string("compatible", "arm,gic-v3-its").unwrap();
        w.property_array_u64("reg", &[0x0808_0000, 0x20000])
            .unwrap();
        w.end_node(its).unwrap();
    } else {
        w.property_string("compatible", "arm,cortex-a15-gic")
            .unwrap();
        w.property_array_u64(
            "reg",
            &[
                0x0800_0000,
                0x10000,
                0x0801_0000,
                0x10000,
                0x0803_0000,
                0x10000,
                0x0804_0000,
                0x10000,
            ],
        )
        .unwrap();
        let m = w.begin_node("v2m@8020000").unwrap();
        w.property_string("compatible", "arm,gic-v2m-frame")
            .unwrap();
        w.property_array_u64("reg", &[0x0802_0000, 0x1000]).unwrap();
        w.property_u32("arm,msi-base-spi", 80).unwrap();
        w.property_u32("arm,msi-num-spis", 64).unwrap();
        w.end_node(m).unwrap();
    }
    w.end_node(n).unwrap();

    let n = w.begin_node("timer").unwrap();
    w.property_string("compatible", "arm,armv8-timer").unwrap();
    w.property_array_u32("interrupts", &[1, 13, 4, 1, 14, 4, 1, 11, 4, 1, 10, 4])
        .unwrap();
    w.end_node(n).unwrap();
    let n = w.begin_node("pmu").unwrap();
    w.property_string("compatible", "arm,armv8-pmuv3").unwrap();
    w.property_array_u32("interrupts", &[1, 7, 4]).unwrap();
    w.end_node(n).unwrap();

    for (name, compat, base, irq) in [
        ("pl011@9000000", "arm,pl011", 0x0900_0000u64, 1u32),
        ("pl031@9010000", "arm,pl031", 0x0901_0000, 2),
    ] {
        let n = w.begin_node(name).unwrap();
        w.property_string_list(
            "compatible",
            alloc::vec![String::from(compat), String::from("arm,primecell")],
        )
        .unwrap();
        w.property_array_u64("reg", &[base, 0x1000]).unwrap();
        w.property_array_u32("interrupts", &[0, irq, 4]).unwrap();
        w.end_node(n).unwrap();
    }
    let n = w.begin_node("fw-cfg@9020000").unwrap();
    w.property_string("compatible", "qemu,fw-cfg-mmio").unwrap();
    w.property_array_u64("reg", &[0x0902_0000, 0x18]).unwrap();
    w.end_node(n).unwrap();
    // QEMU 10.0's `dumpdtb` of virt: an empty platform bus at 0xc000000.
    let n = w.begin_node("platform-bus@c000000").unwrap();
    w.property_string_list(
        "compatible",
        alloc::vec![String::from("qemu,platform"), String::from("simple-bus")],
    )
    .unwrap();
    w.property_array_u32("ranges", &[0, 0, 0x0c00_0000, 0x0200_0000])
        .unwrap();
    w.end_node(n).unwrap();
    for i in 0..2u64 {
        let n = w
            .begin_node(&alloc::format!("virtio_mmio@{:x}", 0x0a00_0000 + i * 0x200))
            .unwrap();
        w.property_string("compatible", "virtio,mmio").unwrap();
        w.property_array_u64("reg", &[0x0a00_0000 + i * 0x200, 0x200])
            .unwrap();
        w.property_array_u32("interrupts", &[0, 16 + i as u32, 1])
            .unwrap();
        w.end_node(n).unwrap();
    }

    let n = w.begin_node("pcie@10000000").unwrap();
    w.property_string("compatible", "pci-host-ecam-generic")
        .unwrap();
    w.property_u32("#address-cells", 3).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    w.property_u32("#interrupt-cells", 1).unwrap();
    w.property_array_u64("reg", &[0x40_1000_0000, 0x1000_0000])
        .unwrap();
    if bus_range {
        w.property_array_u32("bus-range", &[0, 255]).unwrap();
    }
    w.property_array_u32(
        "ranges",
        &[
            0x0100_0000,
            0,
            0,
            0,
            0x3eff_0000,
            0,
            0x1_0000, //
            0x0200_0000,
            0,
            0x1000_0000,
            0,
            0x1000_0000,
            0,
            0x2eff_0000, //
            0x0300_0000,
            0x80,
            0,
            0x80,
            0,
            0x80,
            0,
        ],
    )
    .unwrap();
    let mut imap = Vec::new();
    for dev in 0..4u32 {
        for pin in 1..=4u32 {
            let spi = 3 + (dev + pin - 1) % 4;
            imap.extend_from_slice(&[dev << 11, 0, 0, pin, 0x8002, 0, 0, 0, spi, 4]);
        }
    }
    w.property_array_u32("interrupt-map", &imap).unwrap();
    w.property_array_u32("interrupt-map-mask", &[0x1800, 0, 0, 7])
        .unwrap();
    w.end_node(n).unwrap();

    w.end_node(root).unwrap();
    w.finish().unwrap()
}

#[test]
fn bus_range_defaults_to_the_ecam_size() {
    // QEMU's high ECAM is 256 MiB: 256 buses, the last one 255.
    let p = parse(&virt_dt_with(true, false, false)).unwrap();
    let pci = p.pcie.expect("pcie");
    assert_eq!((pci.bus_start, pci.bus_end), (0, 255));
}

#[test]
fn parses_virt_gicv3() {
    let blob = virt_dt(true, false);
    let p = parse(&blob).unwrap();
    assert_eq!(p.memory, [(0x4000_0000, 0x4000_0000)]);
    assert_eq!(p.ram_size(), 1 << 30);
    assert_eq!(p.cpus, [0, 1, 0x100]);
    assert_eq!(p.gic.version, 3);
    assert_eq!(p.gic.gicd, 0x0800_0000);
    assert_eq!(p.gic.gicr, [(0x080a_0000, 0xf6_0000)]);
    assert_eq!(p.gic.its, Some(0x0808_0000));
    assert_eq!(p.gic.gicc, None);
    assert_eq!(p.gic.maint_irq, Some(25));
    assert_eq!(p.timer_irqs, [29, 30, 27, 26]);
    assert_eq!(p.pmu_irq, Some(23));
    assert_eq!(p.uart, Some((0x0900_0000, 33)));
    assert_eq!(p.rtc, Some((0x0901_0000, 34)));
    assert_eq!(p.fw_cfg, Some(0x0902_0000));
    assert_eq!(
        p.virtio_mmio,
        [(0x0a00_0000, 0x200, 48), (0x0a00_0200, 0x200, 49)]
    );
    assert_eq!(p.psci, Some(Conduit::Hvc));
    assert_eq!(p.rng_seed.as_deref(), Some(&[1u8, 2, 3, 4][..]));
    assert_eq!(p.kaslr_seed, Some(0x1122334455667788));
    assert!(p.qemu_virt);
    assert_eq!(p.qemu_acpi_ged(true), Some((0x0908_0000, 41)));
    assert_eq!(p.qemu_acpi_ged(false), None);
    assert_eq!(p.secure_gpio, None);
    assert_eq!(p.secure_uart, None);
    assert_eq!(p.secure_ram, None);

    let pci = p.pcie.unwrap();
    assert_eq!(
        (pci.ecam_base, pci.ecam_size),
        (0x40_1000_0000, 0x1000_0000)
    );
    assert_eq!((pci.bus_start, pci.bus_end), (0, 255));
    assert_eq!(pci.io, Some((0x3eff_0000, 0, 0x1_0000)));
    assert_eq!(pci.mmio32, Some((0x1000_0000, 0x1000_0000, 0x2eff_0000)));
    assert_eq!(
        pci.mmio64,
        Some((0x80_0000_0000, 0x80_0000_0000, 0x80_0000_0000))
    );
    // 32 devices x 4 pins, swizzled every 4 devices through the mask.
    assert_eq!(pci.prt.len(), 128);
    assert_eq!(pci.prt[0], (0, 0, 35));
    assert_eq!(pci.prt[1], (0, 1, 36));
    assert_eq!(pci.prt[4], (1, 0, 36));
    assert_eq!(pci.prt[4 * 5 + 3], (5, 3, 35));
    assert_eq!(pci.prt[127], (31, 3, 37));
}

#[test]
fn parses_gicv2_and_secure_parts() {
    let blob = virt_dt(false, true);
    let p = parse(&blob).unwrap();
    assert_eq!(p.gic.version, 2);
    assert_eq!(p.gic.gicc, Some(0x0801_0000));
    assert_eq!(p.gic.gich, Some(0x0803_0000));
    assert_eq!(p.gic.gicv, Some(0x0804_0000));
    assert_eq!(p.gic.v2m, Some((0x0802_0000, Some((80, 64)))));
    assert!(p.gic.gicr.is_empty());
    // Secure RAM is not the normal world's.
    assert_eq!(p.memory, [(0x4000_0000, 0x4000_0000)]);
    assert_eq!(p.secure_ram, Some((0x0e00_0000, 0x100_0000)));
    assert_eq!(p.psci, None);
    // The control channel, never the normal world's console.
    assert_eq!(p.secure_uart, Some((0x0904_0000, 40)));
    assert_eq!(p.uart, Some((0x0900_0000, 33)));
    assert_eq!(
        p.secure_gpio,
        Some(SecureGpio {
            base: 0x090b_0000,
            poweroff_pin: Some(3),
            restart_pin: Some(4)
        })
    );
}

/// `blob` with property `prop` of the nodes whose name starts with `node`
/// set to `value`, or left out.
fn with_prop(blob: &[u8], node: &str, prop: &str, value: Option<&[u8]>) -> Vec<u8> {
    type Edit<'e> = (&'e str, &'e str, Option<&'e [u8]>);
    fn copy(w: &mut vm_fdt::FdtWriter, n: FdtNode, e: Edit) {
        let name = if n.name == "/" { "" } else { n.name };
        let h = w.begin_node(name).unwrap();
        for p in n.properties() {
            if !(n.name.starts_with(e.0) && p.name == e.1) {
                w.property(p.name, p.value).unwrap();
            } else if let Some(v) = e.2 {
                w.property(p.name, v).unwrap();
            }
        }
        for c in n.children() {
            copy(w, c, e);
        }
        w.end_node(h).unwrap();
    }
    let fdt = Fdt::new(blob).unwrap();
    let mut w = vm_fdt::FdtWriter::new().unwrap();
    copy(&mut w, fdt.find_node("/").unwrap(), (node, prop, value));
    w.finish().unwrap()
}

#[test]
fn secure_ram_is_the_secure_only_memory_node() {
    // With and without secure=on, on both GICs.
    for gic_v3 in [true, false] {
        for secure in [true, false] {
            let blob = virt_dt(gic_v3, secure);
            let p = parse(&blob).unwrap();
            let want = secure.then_some((0x0e00_0000, 0x100_0000));
            assert_eq!(p.secure_ram, want, "GICv3 {gic_v3}, secure {secure}");
            assert_eq!(p.memory, [(0x4000_0000, 0x4000_0000)]);
        }
    }
    // A disabled memory node that is not secure-only is nobody's RAM.
    let blob = with_prop(&virt_dt(true, true), "secram@", "secure-status", None);
    let p = parse(&blob).unwrap();
    assert_eq!(p.secure_ram, None);
    assert_eq!(p.memory, [(0x4000_0000, 0x4000_0000)]);
    assert_eq!(p.secure_uart, Some((0x0904_0000, 40)));
    // Secure RAM without a place, or wrapping the address space, is a
    // broken DT, as for the other nodes.
    let bad = Err(Error::Malformed("secure memory reg"));
    let blob = with_prop(&virt_dt(true, true), "secram@", "reg", None);
    assert_eq!(parse(&blob), bad);
    let wrapping = [
        0xffff_ffff_ffff_0000u64.to_be_bytes(),
        0x2_0000u64.to_be_bytes(),
    ]
    .concat();
    let blob = with_prop(&virt_dt(true, true), "secram@", "reg", Some(&wrapping));
    assert_eq!(parse(&blob), bad);
    // A secure size of 0 leaves nothing to move into.
    let empty = [0x0e00_0000u64.to_be_bytes(), 0u64.to_be_bytes()].concat();
    let blob = with_prop(&virt_dt(true, true), "secram@", "reg", Some(&empty));
    assert_eq!(parse(&blob).unwrap().secure_ram, None);
}

#[test]
fn rejects_bad_blobs() {
    assert_eq!(parse(&[0u8; 64]), Err(Error::NotFdt));
    assert_eq!(parse(b"random bytes, not a tree"), Err(Error::NotFdt));
    assert_eq!(blob_at(&[0u8; 16]), None);
    let blob = virt_dt(true, false);
    assert_eq!(blob_at(&blob).map(|b| b.len()), Some(blob.len()));
    // Truncated: the header promises more than there is.
    assert_eq!(parse(&blob[..blob.len() - 8]), Err(Error::NotFdt));
    assert_eq!(blob_at(&blob[..blob.len() - 8]), None);
}

#[test]
fn structure_the_fdt_crate_would_trip_on_is_an_error() {
    // Found by the dt fuzz target (minimised): totalsize 1 and blocks
    // far past the end made the fdt crate index out of bounds.
    let mut fuzz = alloc::vec![0xbdu8; 92];
    fuzz[..14].copy_from_slice(&[
        0xd0, 0x0d, 0xfe, 0xed, 0, 0, 0, 1, 0x08, 0, 0, 0x11, 0x0a, 0x02,
    ]);
    fuzz[14] = 0x2c;
    fuzz[88..].copy_from_slice(&[0x0d, 0xfe, 0xec, 0xd0]);
    assert_eq!(parse(&fuzz), Err(Error::NotFdt));

    let good = virt_dt(true, false);
    assert_eq!(check_structure(&good), Ok(()));
    let off_struct = u32::from_be_bytes(good[8..12].try_into().unwrap()) as usize;
    let token_at = |b: &[u8], t: u32| {
        (off_struct..b.len() - 4)
            .step_by(4)
            .find(|&i| b[i..i + 4] == t.to_be_bytes())
            .unwrap()
    };
    // A property longer than the structure block.
    let mut b = good.clone();
    let p = token_at(&b, FDT_PROP);
    b[p + 4..p + 8].copy_from_slice(&0x00ff_fff0u32.to_be_bytes());
    assert_eq!(parse(&b), Err(Error::Malformed("structure block")));
    // A property name offset past the strings block.
    let mut b = good.clone();
    b[p + 8..p + 12].copy_from_slice(&0x00ff_fff0u32.to_be_bytes());
    assert_eq!(parse(&b), Err(Error::Malformed("structure block")));
    // A NOP token where a property starts.
    let mut b = good.clone();
    b[p..p + 4].copy_from_slice(&4u32.to_be_bytes());
    assert!(matches!(parse(&b), Err(Error::Malformed(_))));
    // A root with a name (the crate would recurse through /aliases).
    let mut b = good.clone();
    b[off_struct + 4] = b'x';
    assert_eq!(parse(&b), Err(Error::Malformed("structure block")));
    // A node name that is not UTF-8.
    let mut b = good.clone();
    let n = off_struct + 8 + token_at(&b[off_struct + 8..], FDT_BEGIN_NODE);
    b[n + 4] = 0xff;
    assert_eq!(parse(&b), Err(Error::Malformed("structure block")));
    // A half-cell #address-cells (the crate expects a whole one).
    let mut w = vm_fdt::FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    w.property("#address-cells", &[0, 2]).unwrap();
    w.end_node(root).unwrap();
    let b = w.finish().unwrap();
    assert_eq!(
        parse(&b),
        Err(Error::Malformed("#address-cells/#size-cells"))
    );
    // Nesting deeper than the crate's stack of parents.
    let mut w = vm_fdt::FdtWriter::new().unwrap();
    let mut nodes = alloc::vec![w.begin_node("").unwrap()];
    for i in 0..MAX_DEPTH {
        nodes.push(w.begin_node(&alloc::format!("n{i}")).unwrap());
    }
    while let Some(n) = nodes.pop() {
        w.end_node(n).unwrap();
    }
    let b = w.finish().unwrap();
    assert_eq!(parse(&b), Err(Error::Malformed("device tree nesting")));
    // Garbage after the root instead of FDT_END.
    let mut b = good.clone();
    let size_struct = u32::from_be_bytes(b[36..40].try_into().unwrap()) as usize;
    let end = off_struct + size_struct - 4;
    assert_eq!(b[end..end + 4], FDT_END.to_be_bytes());
    b[end..end + 4].copy_from_slice(&FDT_BEGIN_NODE.to_be_bytes());
    assert_eq!(parse(&b), Err(Error::Malformed("structure block")));
}

/// The DT of [`virt_dt`] with these `memory` nodes instead of its own.
fn with_memory(regs: &[(u64, u64)]) -> Vec<u8> {
    let good = virt_dt(true, false);
    let fdt = Fdt::new(&good).unwrap();
    let mut w = vm_fdt::FdtWriter::new().unwrap();
    fn copy(w: &mut vm_fdt::FdtWriter, n: FdtNode, regs: &[(u64, u64)]) {
        if n.name.starts_with("memory@") {
            return;
        }
        let name = if n.name == "/" { "" } else { n.name };
        let h = w.begin_node(name).unwrap();
        for p in n.properties() {
            w.property(p.name, p.value).unwrap();
        }
        if name.is_empty() {
            for (i, &(base, size)) in regs.iter().enumerate() {
                let m = w.begin_node(&alloc::format!("memory@{i}")).unwrap();
                w.property_string("device_type", "memory").unwrap();
                w.property_array_u64("reg", &[base, size]).unwrap();
                w.end_node(m).unwrap();
            }
        }
        for c in n.children() {
            copy(w, c, regs);
        }
        w.end_node(h).unwrap();
    }
    copy(&mut w, fdt.find_node("/").unwrap(), regs);
    w.finish().unwrap()
}

#[test]
fn ram_that_wraps_or_overlaps_is_an_error() {
    // Found by the dt fuzz target (its input's two RAM nodes): a
    // memory node of 0xffff_ffff_ff00_0000 bytes at 0x40fe_ffff beside
    // a 16 MiB one made the RAM size overflow, and the arm code's
    // base + size wrap.
    let bad = Err(Error::Malformed("memory reg (wrapping or overlapping RAM)"));
    let fuzz = with_memory(&[
        (0x40fe_ffff, 0xffff_ffff_ff00_0000),
        (0x0e00_0000, 0x100_0000),
    ]);
    assert_eq!(parse(&fuzz), bad);
    let overlap = with_memory(&[(0x4000_0000, 0x4000_0000), (0x7000_0000, 0x1000_0000)]);
    assert_eq!(parse(&overlap), bad);
    // Adjacent and disjoint ranges (QEMU's NUMA nodes) are fine.
    let numa = with_memory(&[(0x8000_0000, 0x4000_0000), (0x4000_0000, 0x4000_0000)]);
    let p = parse(&numa).unwrap();
    assert_eq!(
        p.memory,
        [(0x4000_0000, 0x4000_0000), (0x8000_0000, 0x4000_0000)]
    );
    assert_eq!(p.ram_size(), 0x8000_0000);
}

#[test]
fn missing_gic_is_an_error() {
    let mut w = vm_fdt::FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.end_node(root).unwrap();
    let blob = w.finish().unwrap();
    assert!(matches!(parse(&blob), Err(Error::Missing(_))));
}

#[test]
fn parses_qemu_dumped_dtbs_if_present() {
    // Optional cross-check against real `dumpdtb` output, e.g.
    // `qemu-system-aarch64 -M virt,gic-version=2,dumpdtb=v2.dtb -bios /dev/null`,
    // placed in target/scratch/.
    for (name, v) in [("v3.dtb", 3), ("v2.dtb", 2), ("el2.dtb", 3), ("sec.dtb", 3)] {
        let path = std::format!("{}/../target/scratch/{name}", env!("CARGO_MANIFEST_DIR"));
        if let Ok(blob) = std::fs::read(path) {
            let p = parse(&blob).unwrap();
            assert_eq!(p.gic.version, v, "{name}");
            assert!(p.pcie.is_some(), "{name}");
            std::println!("{name}: {p:x?}");
        }
    }
}

/// cloud-hypervisor's DTs as its guest firmware got them (captured nested,
/// tests/fixtures/cloud-hypervisor/aarch64/): no fw_cfg, a GICv3 with an
/// ITS, a one-bus ECAM host bridge whose `interrupt-map` and
/// `interrupt-map-mask` are empty (MSI only).
pub(crate) fn ch_dtb(name: &str) -> Vec<u8> {
    let path = std::format!(
        "{}/../tests/fixtures/cloud-hypervisor/aarch64/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn parses_cloud_hypervisor_dts() {
    for (name, cpus) in [("fdt-boot1.dtb", 1), ("fdt-boot2max4.dtb", 2)] {
        let b = parse(&ch_dtb(name)).unwrap();
        assert_eq!(b.cpus.len(), cpus, "{name}");
        assert_eq!(b.memory[0].0, 0x4000_0000);
        assert_eq!(b.fw_cfg, None);
        assert!(!b.qemu_platform_bus);
        assert_eq!(b.uart.map(|u| u.0), Some(0x0900_0000));
        assert_eq!(b.psci, Some(Conduit::Hvc));
        assert_eq!(b.gic.version, 3);
        assert!(b.gic.its.is_some());
        let p = b.pcie.unwrap();
        assert_eq!((p.ecam_base, p.ecam_size), (0x3000_0000, 0x10_0000));
        assert_eq!(p.mmio32, Some((0x1000_0000, 0x1000_0000, 0x2000_0000)));
        assert!(p.prt.is_empty(), "no INTx routing");
        assert!(b
            .bootargs
            .unwrap()
            .contains("earlycon=pl011,mmio,0x09000000"));
    }
}

#[test]
fn an_interrupt_map_mask_must_have_four_cells_when_there_is_a_map() {
    let ch = ch_dtb("fdt-boot2max4.dtb");
    // An empty map with no mask at all is as legitimate as CH's empty one.
    let no_mask = with_prop(&ch, "pci@30000000", "interrupt-map-mask", None);
    assert!(parse(&no_mask).unwrap().pcie.unwrap().prt.is_empty());
    // A mask of the wrong size stays an error, map or not.
    let three = [0u8; 12];
    let bad = with_prop(&ch, "pci@30000000", "interrupt-map-mask", Some(&three));
    assert_eq!(
        parse(&bad),
        Err(Error::Malformed("PCIe interrupt-map-mask"))
    );
    // QEMU's routing with CH's empty mask: entries the mask cannot match.
    let virt = virt_dt(true, false);
    let empty = with_prop(&virt, "pcie@10000000", "interrupt-map-mask", Some(&[]));
    assert_eq!(
        parse(&empty),
        Err(Error::Malformed("PCIe interrupt-map-mask"))
    );
}
