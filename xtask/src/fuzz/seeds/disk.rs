//! Synthetic disks for the disk targets: a GPT with valid CRCs, an MBR
//! with an extended chain, a small FAT12 with a BLS entry, an ext4 made
//! by mkfs.ext4 -d where the tool exists, and boot configuration texts.

use super::corpus::Seeds;

const SRC: &str = "synthetic";

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// 64 sectors: protective MBR, GPT header and 16 entries (one partition
/// at 40..=47), the backup at the end.
fn gpt() -> Vec<u8> {
    let total = 64u64;
    let mut d = vec![0u8; total as usize * 512];
    d[446 + 4] = 0xee;
    d[446 + 8] = 1;
    d[446 + 12] = 63;
    d[510..512].copy_from_slice(&[0x55, 0xaa]);
    let mut entries = vec![0u8; 16 * 128];
    entries[0] = 0xaf; // any non-zero type GUID is a used entry
    entries[32..40].copy_from_slice(&40u64.to_le_bytes());
    entries[40..48].copy_from_slice(&47u64.to_le_bytes());
    let ecrc = crc32(&entries);
    let header = |my: u64, alt: u64, at: u64| {
        let mut h = vec![0u8; 92];
        h[..8].copy_from_slice(b"EFI PART");
        h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        h[12..16].copy_from_slice(&92u32.to_le_bytes());
        h[24..32].copy_from_slice(&my.to_le_bytes());
        h[32..40].copy_from_slice(&alt.to_le_bytes());
        h[72..80].copy_from_slice(&at.to_le_bytes());
        h[80..84].copy_from_slice(&16u32.to_le_bytes());
        h[84..88].copy_from_slice(&128u32.to_le_bytes());
        h[88..92].copy_from_slice(&ecrc.to_le_bytes());
        let c = crc32(&h);
        h[16..20].copy_from_slice(&c.to_le_bytes());
        h
    };
    d[512..604].copy_from_slice(&header(1, 63, 2));
    d[1024..1024 + entries.len()].copy_from_slice(&entries);
    d[59 * 512..59 * 512 + entries.len()].copy_from_slice(&entries);
    d[63 * 512..63 * 512 + 92].copy_from_slice(&header(63, 1, 59));
    d
}

/// 32 sectors: a primary at 2..=9, an extended at 10..=31 holding two
/// logical partitions.
fn mbr() -> Vec<u8> {
    let mut d = vec![0u8; 32 * 512];
    let entry = |d: &mut [u8], at: usize, ty: u8, first: u32, n: u32| {
        d[at + 4] = ty;
        d[at + 8..at + 12].copy_from_slice(&first.to_le_bytes());
        d[at + 12..at + 16].copy_from_slice(&n.to_le_bytes());
    };
    entry(&mut d, 446, 0x83, 2, 8);
    entry(&mut d, 462, 0x05, 10, 22);
    d[510..512].copy_from_slice(&[0x55, 0xaa]);
    let e1 = 10 * 512;
    entry(&mut d[e1..], 446, 0x83, 1, 4);
    entry(&mut d[e1..], 462, 0x05, 6, 8);
    d[e1 + 510..e1 + 512].copy_from_slice(&[0x55, 0xaa]);
    let e2 = 16 * 512;
    entry(&mut d[e2..], 446, 0x0c, 1, 4);
    d[e2 + 510..e2 + 512].copy_from_slice(&[0x55, 0xaa]);
    d
}

/// A FAT12 of 64 sectors (1 per cluster): /LOADER/ENTRIES/a.conf saying
/// `linux /K`, and /K.
fn fat12() -> Vec<u8> {
    let mut d = vec![0u8; 64 * 512];
    d[..3].copy_from_slice(&[0xeb, 0x3c, 0x90]);
    d[11..13].copy_from_slice(&512u16.to_le_bytes());
    d[13] = 1;
    d[14] = 1; // reserved sectors
    d[16] = 1; // FATs
    d[17] = 16; // root entries: one sector
    d[19] = 64; // sectors
    d[22] = 1; // FAT sectors
    d[510..512].copy_from_slice(&[0x55, 0xaa]);
    // FAT at sector 1, root at 2, data (cluster 2) at 3.
    let fat = [0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f];
    d[512..512 + fat.len()].copy_from_slice(&fat);
    let dirent = |d: &mut [u8], at: usize, name: &[u8; 11], attr: u8, cl: u16, size: u32| {
        d[at..at + 11].copy_from_slice(name);
        d[at + 11] = attr;
        d[at + 26..at + 28].copy_from_slice(&cl.to_le_bytes());
        d[at + 28..at + 32].copy_from_slice(&size.to_le_bytes());
    };
    let cl = |c: usize| (3 + c - 2) * 512;
    dirent(&mut d, 1024, b"LOADER     ", 0x10, 2, 0);
    dirent(&mut d, 1024 + 32, b"K          ", 0x20, 5, 6);
    dirent(&mut d, cl(2), b"ENTRIES    ", 0x10, 3, 0);
    // "a.conf" needs a long name entry before its short one.
    let lfn = cl(3);
    d[lfn] = 0x41;
    d[lfn + 11] = 0x0f;
    let units = "a.conf".encode_utf16().chain([0]).chain([0xffff; 6]);
    for (u, at) in units.zip([1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30]) {
        d[lfn + at..lfn + at + 2].copy_from_slice(&u.to_le_bytes());
    }
    dirent(&mut d, cl(3) + 32, b"A       CON", 0x20, 4, 9);
    d[cl(4)..cl(4) + 9].copy_from_slice(b"linux /K\n");
    d[cl(5)..cl(5) + 6].copy_from_slice(b"kernel");
    d
}

fn ext4() -> Option<Vec<u8>> {
    let dir = std::env::temp_dir().join(format!("hotstub-seed-ext4-{}", std::process::id()));
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("boot/grub")).ok()?;
    std::fs::write(
        root.join("boot/grub/grub.cfg"),
        "set default=\"0\"\nmenuentry 'Debian' {\n\tlinux /boot/vmlinuz root=/dev/vda1\n\tinitrd /boot/initrd.img\n}\n",
    )
    .ok()?;
    std::fs::write(root.join("boot/vmlinuz"), b"kernel").ok()?;
    std::fs::write(root.join("boot/initrd.img"), b"initrd").ok()?;
    let img = dir.join("fs.img");
    let ok = std::process::Command::new("mkfs.ext4")
        .args([
            "-q",
            "-F",
            "-b",
            "1024",
            "-N",
            "16",
            "-O",
            "^has_journal",
            "-d",
        ])
        .arg(&root)
        .arg(&img)
        .arg("128K")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let bytes = if ok { std::fs::read(&img).ok() } else { None };
    let _ = std::fs::remove_dir_all(&dir);
    bytes
}

pub(super) fn disks(s: &mut Seeds) {
    s.add("disk_part", "synthetic-gpt", gpt(), SRC);
    s.add("disk_part", "synthetic-mbr-extended", mbr(), SRC);
    s.add("disk_fat", "synthetic-fat12-bls", fat12(), SRC);
    match ext4() {
        Some(img) => s.add("disk_ext4", "synthetic-grub", img, "mkfs.ext4"),
        None => s
            .notes
            .push("no mkfs.ext4 (e2fsprogs): no disk_ext4 seed".to_string()),
    }
    let texts: [(&str, &str); 3] = [
        (
            "bls",
            "title Fedora\nversion 6.10.2\nmachine-id abc\nsort-key fedora\nlinux /abc/linux\n\
             initrd /abc/initrd\noptions root=UUID=x ro\n\ntitle Old\nversion 6.8\nlinux /k\n",
        ),
        (
            "grub",
            "set default=\"0\"\nsearch --no-floppy --fs-uuid --set=root 1234\n\
             menuentry 'Debian GNU/Linux' --class debian $menuentry_id_option 'gnulinux-simple' {\n\
             \tlinux\t/boot/vmlinuz-6.12 root=UUID=1234 ro quiet\n\tinitrd\t/boot/initrd.img-6.12\n}\n\
             submenu 'Advanced' $menuentry_id_option 'adv' {\n\tmenuentry 'rec' {\n\t\tlinux /k single\n\t}\n}\n",
        ),
        (
            "extlinux",
            "DEFAULT l0\nLABEL l0\n  MENU LABEL Debian\n  LINUX /boot/vmlinuz\n  INITRD a.img,b.img\n  APPEND root=/dev/vda2\n",
        ),
    ];
    for (name, text) in texts {
        s.add(
            "boot_entries",
            &format!("synthetic-{name}"),
            text.as_bytes().to_vec(),
            SRC,
        );
    }
}
