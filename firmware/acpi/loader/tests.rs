use super::*;
use alloc::vec;

fn entry(cmd: u32, fields: &[&[u8]]) -> Vec<u8> {
    let mut e = cmd.to_le_bytes().to_vec();
    for f in fields {
        e.extend_from_slice(f);
    }
    e.resize(ENTRY, 0);
    e
}

fn name(n: &str) -> Vec<u8> {
    let mut v = n.as_bytes().to_vec();
    v.resize(NAME, 0);
    v
}

fn allocate(file: &str, align: u32, zone: u8) -> Vec<u8> {
    entry(ALLOCATE, &[&name(file), &align.to_le_bytes(), &[zone]])
}

fn pointer(dest: &str, src: &str, offset: u32, size: u8) -> Vec<u8> {
    entry(
        ADD_POINTER,
        &[&name(dest), &name(src), &offset.to_le_bytes(), &[size]],
    )
}

fn checksum(file: &str, offset: u32, start: u32, length: u32) -> Vec<u8> {
    entry(
        ADD_CHECKSUM,
        &[
            &name(file),
            &offset.to_le_bytes(),
            &start.to_le_bytes(),
            &length.to_le_bytes(),
        ],
    )
}

const TABLES: &str = "etc/acpi/tables";

/// An RSDP whose XSDT pointer (offset 24) points 0x40 into the tables,
/// with its checksums left to the script, as QEMU leaves them.
fn script_and_blobs() -> (Vec<u8>, Vec<Blob>) {
    let mut rsdp = b"RSD PTR ".to_vec();
    rsdp.resize(36, 0);
    rsdp[15] = 2;
    rsdp[20..24].copy_from_slice(&36u32.to_le_bytes());
    rsdp[24..32].copy_from_slice(&0x40u64.to_le_bytes());
    let mut s = allocate(TABLES, 64, ZONE_HIGH);
    s.extend(allocate(RSDP_FILE, 16, ZONE_FSEG));
    s.extend(pointer(RSDP_FILE, TABLES, 24, 8));
    s.extend(checksum(RSDP_FILE, 8, 0, 20));
    s.extend(checksum(RSDP_FILE, 32, 0, 36));
    let blobs = vec![
        Blob {
            name: TABLES.into(),
            addr: 0,
            bytes: vec![0xaa; 0x80],
        },
        Blob {
            name: RSDP_FILE.into(),
            addr: 0,
            bytes: rsdp,
        },
    ];
    (s, blobs)
}

#[test]
fn allocates_places_and_links() {
    let (script, mut blobs) = script_and_blobs();
    let allocs = allocations(&script).unwrap();
    assert_eq!(allocs.len(), 2);
    assert_eq!((allocs[0].zone, allocs[1].zone), (Zone::High, Zone::FSeg));
    let sizes = [0x80, 36];
    let at = place(&allocs, &sizes, (0xe_0001, 0xf_0000), (0xf_ffc0, 0x10_0000)).unwrap();
    assert_eq!(at, [0xe_0040, 0xf_ffc0]);
    for (b, a) in blobs.iter_mut().zip(at) {
        b.addr = a;
    }
    assert_eq!(link(&script, &mut blobs).unwrap(), 0);
    let r = &blobs[1].bytes;
    assert_eq!(&r[24..32], &(0xe_0040u64 + 0x40).to_le_bytes());
    assert_eq!(super::super::byte_sum(&r[..20]), 0);
    assert_eq!(super::super::byte_sum(r), 0);
    // Reads within one file only.
    let mut four = [0u8; 4];
    assert!(super::super::adopt::PhysMem::read(
        &Placed(&blobs),
        0xf_ffc0,
        &mut four
    ));
    assert_eq!(&four, b"RSD ");
    assert!(!super::super::adopt::PhysMem::read(
        &Placed(&blobs),
        0xe_00be,
        &mut four
    ));
}

#[test]
fn bad_scripts_are_errors() {
    let (script, blobs) = script_and_blobs();
    assert_eq!(allocations(&script[..100]), Err(Error::Shape));
    // A pointer before its file's allocation.
    let mut early = pointer(RSDP_FILE, TABLES, 24, 8);
    early.extend_from_slice(&script);
    assert!(matches!(
        link(&early, &mut blobs.clone()),
        Err(Error::Unallocated(_))
    ));
    // Outside the file, a bad size, an overflow.
    for (off, size) in [(30, 8), (24, 3)] {
        let mut s = script.clone();
        s.extend(pointer(RSDP_FILE, TABLES, off, size));
        assert!(matches!(
            link(&s, &mut blobs.clone()),
            Err(Error::Pointer(_))
        ));
    }
    let mut s = script.clone();
    s.extend(pointer(RSDP_FILE, TABLES, 0, 1));
    let mut b = blobs.clone();
    b[0].addr = 0x1000;
    assert!(matches!(link(&s, &mut b), Err(Error::Pointer(_))));
    let mut s = script.clone();
    s.extend(checksum(RSDP_FILE, 0, 30, 10));
    assert!(matches!(link(&s, &mut blobs.clone()), Err(Error::Range(_))));
    // Alignment and zone, an unterminated name.
    assert_eq!(
        allocations(&allocate(TABLES, 3, ZONE_HIGH)),
        Err(Error::Allocation)
    );
    assert_eq!(allocations(&allocate(TABLES, 4, 9)), Err(Error::Allocation));
    let mut long = entry(ALLOCATE, &[&[b'a'; NAME], &4u32.to_le_bytes(), &[1]]);
    long.resize(ENTRY, 0);
    assert_eq!(allocations(&long), Err(Error::Name));
    // No room.
    let allocs = allocations(&script).unwrap();
    assert!(matches!(
        place(&allocs, &[0x80, 36], (0, 0x40), (0, 0x100)),
        Err(Error::NoRoom(_))
    ));
}

#[test]
fn unknown_and_write_pointer_commands_are_passed_over() {
    let (mut script, mut blobs) = script_and_blobs();
    script.extend(entry(0, &[]));
    script.extend(entry(WRITE_POINTER, &[&name("etc/x"), &name(TABLES)]));
    script.extend(entry(77, &[]));
    for (b, a) in blobs.iter_mut().zip([0x1000, 0x2000]) {
        b.addr = a;
    }
    assert_eq!(link(&script, &mut blobs).unwrap(), 1);
}

/// QEMU 10.0's files for `-M microvm,pcie=on -smp 2 -m 512M`, as
/// `cargo xtask fuzz --seed` captures them (framing of the acpi_loader
/// target: command count, RSDP file length, script, RSDP file, tables).
const MICROVM_PCIE: &[u8] = include_bytes!("qemu-microvm-pcie");

#[test]
fn qemu_microvm_tables_link_and_adopt() {
    use crate::acpi::x86::adopt as x86;
    let [n, m, rest @ ..] = MICROVM_PCIE else {
        panic!("short capture");
    };
    let (script, rest) = rest.split_at(usize::from(*n) * ENTRY);
    let (rsdp, tables) = rest.split_at(usize::from(*m));
    let allocs = allocations(script).unwrap();
    let mut blobs: Vec<Blob> = allocs
        .iter()
        .map(|a| Blob {
            name: a.file.clone(),
            addr: 0,
            bytes: if a.file == RSDP_FILE { rsdp } else { tables }.to_vec(),
        })
        .collect();
    let sizes: Vec<u64> = blobs.iter().map(|b| b.bytes.len() as u64).collect();
    let at = place(&allocs, &sizes, (0xe_0000, 0xf_fe80), (0xf_ffc0, 0x10_0000)).unwrap();
    for (b, a) in blobs.iter_mut().zip(at) {
        b.addr = a;
    }
    assert_eq!(link(script, &mut blobs).unwrap(), 0);
    let rsdp = blobs.iter().find(|b| b.name == RSDP_FILE).unwrap().addr;
    assert_eq!(rsdp, 0xf_ffc0);
    let a = crate::acpi::adopt::adopt(&Placed(&blobs), rsdp).unwrap();
    let sigs: Vec<[u8; 4]> = a.tables.iter().map(|t| t.signature()).collect();
    assert_eq!(sigs, [*b"FACP", *b"APIC", *b"DSDT"]);
    let c = x86::check(&a, 0).unwrap();
    assert_eq!(c.cpus.len(), 2);
    // The GED's sleep control register (include/hw/i386/microvm.h
    // GED_MMIO_BASE_REGS), S5 type 5.
    assert_eq!(c.sleep_control.address, 0xfea0_0200);
    assert_eq!(c.s5_value, 5 << 2 | 1 << 5);
    // QEMU writes no MCFG for microvm's PCIe host.
    assert_eq!(c.ecam, None);
}
