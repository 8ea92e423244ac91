//! The MP table as Linux's mpparse.c reads it: checksums, lengths, the
//! entry count, and the entries walked by type.

extern crate std;
use super::*;
use alloc::vec;

/// microvm,acpi=off with -smp 2 as QEMU 10 gives it: I/O APIC ID 0,
/// version 0x20, 24 pins (hw/intc/ioapic.c IOAPIC_VERSION,
/// IOAPIC_NUM_PINS), local APIC version 0x14 (hw/intc/apic.c).
fn config(n: u8) -> Config {
    Config {
        cpus: (0..n)
            .map(|i| Cpu {
                apic_id: i,
                boot: i == 0,
            })
            .collect(),
        lapic_addr: 0xfee0_0000,
        lapic_version: 0x14,
        signature: 0x000a_06d0,
        features: 0x0781_abfd,
        ioapic: IoApic {
            id: 0,
            version: 0x20,
            pins: 24,
            addr: 0xfec0_0000,
        },
        irq0_to_pin2: true,
    }
}

fn sum(b: &[u8]) -> u8 {
    b.iter().fold(0u8, |s, &x| s.wrapping_add(x))
}

/// The entries as (type, bytes), walked by each type's length.
fn entries(t: &[u8]) -> std::vec::Vec<(u8, &[u8])> {
    let mut out = vec![];
    let mut at = HEADER_LEN;
    while at < t.len() {
        let len = if t[at] == ENTRY_CPU { CPU_LEN } else { 8 };
        out.push((t[at], &t[at..at + len]));
        at += len;
    }
    assert_eq!(at, t.len());
    out
}

#[test]
fn floating_pointer_and_header_check_out() {
    let (f, t) = build(&config(2), 0xe_0000).unwrap();
    assert_eq!(&f[0..4], b"_MP_");
    assert_eq!(u32::from_le_bytes(f[4..8].try_into().unwrap()), 0xe_0000);
    assert_eq!((f[8], f[9]), (1, 4));
    assert_eq!(&f[11..16], &[0; 5]);
    assert_eq!(sum(&f), 0);
    assert_eq!(&t[0..4], b"PCMP");
    assert_eq!(u16::from_le_bytes([t[4], t[5]]) as usize, t.len());
    assert_eq!(t[6], 4);
    assert_eq!(sum(&t), 0);
    let n = u16::from_le_bytes([t[34], t[35]]) as usize;
    assert_eq!(n, entries(&t).len());
    assert_eq!(
        u32::from_le_bytes(t[36..40].try_into().unwrap()),
        0xfee0_0000
    );
    // Entries in ascending type order (MP 1.4 4.3).
    let types: std::vec::Vec<u8> = entries(&t).iter().map(|e| e.0).collect();
    assert!(types.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn each_vcpu_once_the_boot_one_flagged() {
    let (_, t) = build(&config(4), 0xe_0000).unwrap();
    let cpus: std::vec::Vec<(u8, u8, u8)> = entries(&t)
        .iter()
        .filter(|e| e.0 == ENTRY_CPU)
        .map(|e| (e.1[1], e.1[2], e.1[3]))
        .collect();
    assert_eq!(
        cpus,
        [(0, 0x14, 3), (1, 0x14, 1), (2, 0x14, 1), (3, 0x14, 1)]
    );
}

#[test]
fn isa_bus_and_ioapic() {
    let (_, t) = build(&config(1), 0xe_0000).unwrap();
    let e = entries(&t);
    let bus: std::vec::Vec<_> = e.iter().filter(|e| e.0 == ENTRY_BUS).collect();
    assert_eq!(bus.len(), 1);
    assert_eq!(&bus[0].1[2..8], b"ISA   ");
    let io: std::vec::Vec<_> = e.iter().filter(|e| e.0 == ENTRY_IOAPIC).collect();
    assert_eq!(io.len(), 1);
    assert_eq!(io[0].1, &[2, 0, 0x20, 1, 0x00, 0x00, 0xc0, 0xfe]);
}

/// (source IRQ, pin) of the I/O interrupt entries.
fn routes(c: &Config) -> std::vec::Vec<(u8, u8)> {
    let (_, t) = build(c, 0xe_0000).unwrap();
    entries(&t)
        .iter()
        .filter(|e| e.0 == ENTRY_IO_INT)
        .map(|e| {
            assert_eq!((e.1[1], e.1[2], e.1[3], e.1[4], e.1[6]), (INT, 0, 0, 0, 0));
            (e.1[5], e.1[7])
        })
        .collect()
}

#[test]
fn isa_irqs_identity_but_irq0_to_pin2_and_no_cascade() {
    let r = routes(&config(1));
    assert_eq!(r.len(), 15);
    assert_eq!(r[0], (0, 2));
    assert!(r[1..].iter().all(|&(irq, pin)| irq == pin && irq != 2));
    // microvm's virtio-mmio transports without ACPI: IRQs 5-12
    // (hw/i386/microvm.c virtio_irq_base 5, 8 transports).
    for irq in 5..=12 {
        assert!(r.contains(&(irq, irq)));
    }
    let mut c = config(1);
    c.irq0_to_pin2 = false;
    assert_eq!(routes(&c)[0], (0, 0));
}

#[test]
fn local_interrupts_extint_and_nmi() {
    let (_, t) = build(&config(1), 0xe_0000).unwrap();
    let l: std::vec::Vec<_> = entries(&t)
        .into_iter()
        .filter(|e| e.0 == ENTRY_LOCAL_INT)
        .map(|e| (e.1[1], e.1[6], e.1[7]))
        .collect();
    assert_eq!(l, [(EXT_INT, 0xff, 0), (NMI, 0xff, 1)]);
}

#[test]
fn refusals() {
    let mut c = config(1);
    c.ioapic.pins = 8;
    assert_eq!(build(&c, 0), Err(Error::IoApicPins(8)));
    c.cpus.clear();
    assert_eq!(build(&c, 0), Err(Error::NoCpu));
    assert_eq!(cpus(&[], 0), Err(Error::NoCpu));
    assert_eq!(cpus(&[0, 0x1ff], 0), Err(Error::ApicId(0x1ff)));
    assert_eq!(cpus(&[0, 0xff], 0), Err(Error::ApicId(0xff)));
    assert_eq!(cpus(&[0, 1, 1], 0), Err(Error::DuplicateApicId(1)));
    assert_eq!(cpus(&[1, 2], 0), Err(Error::NoBootCpu));
    assert_eq!(
        cpus(&[0, 1], 0).unwrap(),
        [
            Cpu {
                apic_id: 0,
                boot: true
            },
            Cpu {
                apic_id: 1,
                boot: false
            }
        ]
    );
    // More processor entries than the length field holds (only a
    // Config built by hand can have them: `cpus` allows 255).
    let mut c = config(1);
    c.cpus = vec![c.cpus[0]; 4000];
    assert_eq!(build(&c, 0), Err(Error::TooLarge));
    // 255 vCPUs with IDs 0-254 fit; the length field holds them.
    let ids = apic_ids(255, &[]);
    let mut c = config(1);
    c.cpus = cpus(&ids, 0).unwrap();
    assert!(build(&c, 0).is_ok());
}

#[test]
fn apic_ids_follow_the_topology_leaves() {
    // No topology leaf: 0..n.
    assert_eq!(apic_ids(3, &[]), [0, 1, 2]);
    // -smp 2: 2 cores, 1 thread (SMT shift 0, core shift 1).
    assert_eq!(apic_ids(2, &[(0, 1), (1, 2)]), [0, 1]);
    // -smp 6,sockets=2,cores=3: the core digit takes 2 bits.
    assert_eq!(apic_ids(6, &[(0, 1), (2, 3)]), [0, 1, 2, 4, 5, 6]);
    // -smp 12,sockets=2,cores=3,threads=2: thread 1 bit, core 2 bits.
    assert_eq!(
        apic_ids(12, &[(1, 2), (3, 6)]),
        [0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13]
    );
    // With dies (leaf 0x1F): 2 dies of 3 cores per socket, 2 sockets.
    assert_eq!(
        apic_ids(12, &[(0, 1), (2, 3), (3, 6)]),
        [0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14]
    );
}
