//! Host tests of the fw_cfg protocol, over the legacy-only fake.

use super::*;
use alloc::vec::Vec;

use super::testing::{dir, Fake};

fn fake() -> Fake {
    Fake {
        items: alloc::vec![
            (key::SIGNATURE, b"QEMU".to_vec()),
            (key::ID, 1u32.to_le_bytes().to_vec()),
            (key::NB_CPUS, 4u16.to_le_bytes().to_vec()),
            (
                key::FILE_DIR,
                dir(&[("etc/e820", 0x20, 40), ("opt/x", 0x21, 3)])
            ),
            (0x21, b"abc".to_vec()),
        ],
        cur: Vec::new(),
        pos: 0,
    }
}

#[test]
fn directory_parse_takes_what_the_count_and_blob_allow() {
    let raw = dir(&[("etc/e820", 0x20, 40), ("opt/x", 0x21, 3)]);
    let d = Directory::parse(&raw).unwrap();
    assert_eq!(d.files().len(), 2);
    assert_eq!(
        d.find("etc/e820").map(|f| (f.key, f.size)),
        Some((0x20, 40))
    );
    // A truncated blob loses the entry it cannot hold.
    let d = Directory::parse(&raw[..raw.len() - 1]).unwrap();
    assert_eq!(d.files().len(), 1);
    assert!(d.find("opt/x").is_none());
    // More bytes than the count names: the rest is ignored.
    let mut extra = raw.clone();
    extra[3] = 1;
    assert_eq!(Directory::parse(&extra).unwrap().files().len(), 1);
    // Empty and short blobs are empty directories; a huge count is refused.
    assert!(Directory::parse(&[]).unwrap().files().is_empty());
    assert!(Directory::parse(&[0, 0]).unwrap().files().is_empty());
    assert_eq!(
        Directory::parse(&[0, 0, 0x10, 1]).err(),
        Some(Error::TooLarge)
    );
    // A name that fills all 56 bytes has no terminator.
    let mut e = (1u32).to_be_bytes().to_vec();
    e.extend_from_slice(&[0u8; 8]);
    e.extend_from_slice(&[b'a'; 56]);
    let d = Directory::parse(&e).unwrap();
    assert_eq!(d.files()[0].name(), &[b'a'; 56][..]);
}

#[test]
fn probe_rejects_missing_device() {
    let mut f = fake();
    f.items[0].1 = b"XXXX".to_vec();
    assert_eq!(FwCfg::probe(f).err(), Some(Error::NotPresent));
}

#[test]
fn finds_and_reads_files_without_dma() {
    let mut c = FwCfg::probe(fake()).unwrap();
    assert!(!c.has_dma());
    assert_eq!(c.read_u16(key::NB_CPUS), 4);
    let f = c.find("opt/x").unwrap();
    assert_eq!((f.key, f.size, f.name()), (0x21, 3, &b"opt/x"[..]));
    let mut buf = [0u8; 8];
    assert_eq!(c.read_file(&f, &mut buf).unwrap(), b"abc");
    let mut small = [0u8; 2];
    assert_eq!(c.read_file(&f, &mut small).err(), Some(Error::TooLarge));
    assert_eq!(c.find("opt/none").err(), Some(Error::NoSuchFile));
    let mut tail = [0u8; 2];
    c.read_at(0x21, 1, &mut tail).unwrap();
    assert_eq!(&tail, b"bc");
}

#[test]
fn named_files_of_one_value() {
    let d = dir(&[
        (file::RESERVED_MEMORY_END, 0x22, 8),
        (file::PVPANIC_PORT, 0x23, 2),
        (file::E820, 0x24, 7),
    ]);
    let end = 0x1_8000_0000u64.to_le_bytes();
    let port = 0x505u16.to_le_bytes();
    let fake = Fake::with(&[
        (key::FILE_DIR, &d),
        (0x22, &end),
        (0x23, &port),
        (0x24, b"1234567"),
    ]);
    let mut c = FwCfg::probe(fake).unwrap();
    let files = c.directory().unwrap();
    assert_eq!(
        c.read_u64_named(&files, file::RESERVED_MEMORY_END),
        Ok(Some(0x1_8000_0000))
    );
    assert_eq!(
        c.read_u16_named(&files, file::PVPANIC_PORT),
        Ok(Some(0x505))
    );
    assert_eq!(
        c.read_named_exact::<7>(&files, file::E820),
        Ok(Some(*b"1234567"))
    );
    // Absent: the caller's default.
    assert_eq!(c.read_u16_named(&files, file::TPM_CONFIG), Ok(None));
    // The wrong size is an error that names the file.
    let e = c.read_u64_named(&files, file::PVPANIC_PORT).unwrap_err();
    assert_eq!(
        e,
        ValueError::WrongSize {
            file: "etc/pvpanic-port",
            size: 2,
            expected: 8
        }
    );
    assert_eq!(
        alloc::format!("{e}"),
        "fw_cfg file etc/pvpanic-port has 2 bytes, not the 8 of its value"
    );
    let e = ValueError::Read {
        file: file::E820,
        error: Error::Dma,
    };
    assert_eq!(
        alloc::format!("{e}"),
        "reading fw_cfg file etc/e820: fw_cfg DMA transfer failed"
    );
    // A whole file up to a limit.
    let e820 = c.read_named(&files, file::E820, 7);
    assert_eq!(e820, Ok(Some(b"1234567".to_vec())));
    assert_eq!(c.read_named(&files, file::E820, 6), Err(Error::TooLarge));
    assert_eq!(c.read_named(&files, file::ACPI_TABLES, 1 << 20), Ok(None));
}

#[test]
fn file_names_fit_the_directory() {
    // A name and its NUL in the entry's 56 bytes, or no look-up finds it.
    for name in [
        file::E820,
        file::RESERVED_MEMORY_END,
        file::PVPANIC_PORT,
        file::TPM_CONFIG,
        file::ACPI_TABLES,
        file::TABLE_LOADER,
        file::SMBIOS_ANCHOR,
        file::SMBIOS_TABLES,
        file::ENABLED_CPUS,
    ] {
        assert!(name.len() < FILE_NAME_LEN, "{name}");
    }
}

#[test]
fn without_dma_reads_through_the_data_register_although_dma_is_offered() {
    // cloud-hypervisor's ID: reserved bit and DMA (devices/src/legacy/fw_cfg.rs
    // FW_CFG_FEATURE); the fake panics on any DMA transfer.
    let mut f = fake();
    f.items[1].1 = 3u32.to_le_bytes().to_vec();
    let c = FwCfg::probe(f).unwrap();
    assert!(c.has_dma());
    let mut c = c.without_dma();
    assert!(!c.has_dma());
    let d = c.directory().unwrap();
    assert_eq!(c.read_named(&d, "opt/x", 16).unwrap().unwrap(), b"abc");
}
