//! Whole-disk tests on images built in memory (image.rs), and the text
//! parsers on their own.

mod image;

use super::conf::{self, version_cmp};
use super::{find, Choice, DiskPayload, Error};
use crate::boot::payload::Source;
use core::cmp::Ordering;
use image::{disk, ext4, fat, gpt, mbr, BIOS_BOOT, ESP, LINUX};

const ROOT_UUID: &str = "6d3376e4-fc93-4509-95ec-a21d68011da2";

fn kernel(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

fn grub_cfg(default: &str, kernel: &str) -> String {
    format!(
        "set default=\"{default}\"\n\
         if [ x$feature_platform_search_hint = xy ]; then\n\
         \x20 search --no-floppy --fs-uuid --set=root --hint-bios=hd0,gpt3 {ROOT_UUID}\n\
         else\n\
         \x20 search --no-floppy --fs-uuid --set=root {ROOT_UUID}\n\
         fi\n\
         menuentry 'Debian GNU/Linux' --class debian --class os $menuentry_id_option 'gnulinux-simple-{ROOT_UUID}' {{\n\
         \tload_video\n\
         \tif [ x$grub_platform = xxen ]; then insmod xzio; insmod lzopio; fi\n\
         \tinsmod ext2\n\
         \tsearch --no-floppy --fs-uuid --set=root {ROOT_UUID}\n\
         \techo\t'Loading Linux 6.12.0-1-amd64 ...'\n\
         \tlinux\t{kernel} root=UUID={ROOT_UUID} ro  quiet\n\
         \tinitrd\t/boot/initrd.img-6.12.0-1-amd64\n\
         }}\n\
         submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option 'gnulinux-advanced-{ROOT_UUID}' {{\n\
         \tmenuentry 'Debian GNU/Linux, with Linux 6.12.0-1-amd64 (recovery mode)' $menuentry_id_option 'rec' {{\n\
         \t\tlinux\t/boot/vmlinuz-6.12.0-1-amd64 root=UUID={ROOT_UUID} ro single\n\
         \t}}\n\
         }}\n"
    )
}

/// Debian's cloud layout: BIOS boot, ESP, ext4 root with /boot and grub.cfg.
fn debian(default: &str, kernel_path: &str, k: &[u8]) -> Option<Vec<u8>> {
    let cfg = grub_cfg(default, kernel_path);
    let root = ext4(
        &[
            ("/boot/grub/grub.cfg", cfg.as_bytes()),
            ("/boot/vmlinuz-6.12.0-1-amd64", k),
            ("/boot/initrd.img-6.12.0-1-amd64", b"initrd!"),
            ("/etc/hostname", b"debian\n"),
        ],
        ROOT_UUID,
    )?;
    let esp = fat(&[("/EFI/debian/grubx64.efi", b"MZ")], true);
    Some(gpt(&[
        (BIOS_BOOT, &[0u8; 1024]),
        (ESP, &esp),
        (LINUX, &root),
    ]))
}

#[test]
fn gpt_ext4_grub_boots_the_default_entry() {
    let k = kernel(300_000);
    let Some(img) = debian("0", "/boot/vmlinuz-6.12.0-1-amd64", &k) else {
        return;
    };
    let d = disk(img);
    let f = find(&d, &Choice::default()).unwrap();
    assert_eq!(
        (f.partition, f.kind, f.entry.as_str()),
        (3, "grub", "Debian GNU/Linux")
    );
    assert_eq!(f.cmdline, format!("root=UUID={ROOT_UUID} ro quiet"));
    assert_eq!(
        f.to_string(),
        "partition 3, grub entry \"Debian GNU/Linux\": /boot/vmlinuz-6.12.0-1-amd64"
    );
    let mut p = DiskPayload::new(d, f, Some("console=ttyS0".into()));
    assert_eq!(p.kernel_size("bzImage").unwrap(), k.len() as u64);
    let mut head = [0u8; 0x400];
    p.kernel_head(&mut head).unwrap();
    assert_eq!(head[..], k[..0x400]);
    let mut all = vec![0u8; k.len()];
    p.load_kernel(&mut all).unwrap();
    assert_eq!(all, k);
    let mut mid = vec![0u8; 5000];
    p.kernel_at(12345, &mut mid).unwrap();
    assert_eq!(mid[..], k[12345..17345]);
    assert_eq!(p.initrd_size(), 7);
    let mut i = vec![0u8; 7];
    p.load_initrd(&mut i).unwrap();
    assert_eq!(i, b"initrd!");
    let cl = String::from_utf8(p.cmdline(2048).unwrap()).unwrap();
    assert_eq!(cl, format!("root=UUID={ROOT_UUID} ro quiet console=ttyS0"));
    assert!(p.cmdline(10).is_err());
}

#[test]
fn grub_default_by_title_and_submenu_path_and_choice() {
    let k = kernel(4000);
    let Some(img) = debian(
        &format!("gnulinux-advanced-{ROOT_UUID}>rec"),
        "/boot/vmlinuz-6.12.0-1-amd64",
        &k,
    ) else {
        return;
    };
    let d = disk(img);
    let f = find(&d, &Choice::default()).unwrap();
    assert!(f.entry.contains("recovery mode"), "{}", f.entry);
    assert_eq!(f.initrd_paths().count(), 0);
    let c = Choice::parse("3:Debian GNU/Linux").unwrap();
    let f = find(&d, &c).unwrap();
    assert_eq!(f.entry, "Debian GNU/Linux");
    let c = Choice::parse("nothing-like-it").unwrap();
    assert_eq!(
        find(&d, &c).unwrap_err().to_string(),
        "disk: no boot entry named \"nothing-like-it\""
    );
}

#[test]
fn grub_default_naming_a_missing_kernel_is_one_line() {
    let Some(img) = debian("0", "/boot/vmlinuz-9.9", &kernel(10)) else {
        return;
    };
    let e = find(&disk(img), &Choice::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "disk: kernel /boot/vmlinuz-9.9 not found on partition 3"
    );
}

#[test]
fn truncated_ext4_says_so() {
    let Some(root) = ext4(&[("/boot/grub/grub.cfg", b"x")], ROOT_UUID) else {
        return;
    };
    let img = gpt(&[(LINUX, &root[..root.len() / 2])]);
    let e = find(&disk(img), &Choice::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("disk: ext4: file system of 4096 blocks is larger"),
        "{e}"
    );
}

fn bls_esp(entries: &[(&str, &str)], files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut all: Vec<(String, Vec<u8>)> = entries
        .iter()
        .map(|(n, t)| (format!("/loader/entries/{n}"), t.as_bytes().to_vec()))
        .collect();
    all.extend(files.iter().map(|(p, d)| (p.to_string(), d.to_vec())));
    let refs: Vec<(&str, &[u8])> = all
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_slice()))
        .collect();
    gpt(&[(ESP, &fat(&refs, false))])
}

#[test]
fn esp_bls_sorts_by_version_and_concatenates_initrds() {
    let k = kernel(70_000);
    let old = "title Fedora (6.8.5)\nversion 6.8.5\nmachine-id abc\nsort-key fedora\n\
               linux /abc/6.8.5/linux\noptions root=UUID=x\n";
    let new = "title Fedora (6.10.2)\nversion 6.10.2\nmachine-id abc\nsort-key fedora\n\
               linux /abc/6.10.2/linux\ninitrd /abc/6.10.2/initrd\ninitrd /abc/ucode.img\n\
               options root=UUID=x ro\noptions quiet\ndevicetree /x.dtb\n";
    let img = bls_esp(
        &[("abc-6.8.5.conf", old), ("abc-6.10.2.conf", new)],
        &[
            ("/abc/6.8.5/linux", &k[..100]),
            ("/abc/6.10.2/linux", &k),
            ("/abc/6.10.2/initrd", b"12345"),
            ("/abc/ucode.img", b"uc"),
        ],
    );
    let d = disk(img);
    let f = find(&d, &Choice::default()).unwrap();
    assert_eq!((f.kind, f.entry.as_str()), ("bls", "Fedora (6.10.2)"));
    assert_eq!(f.cmdline, "root=UUID=x ro quiet");
    let mut p = DiskPayload::new(d.clone(), f, None);
    let mut all = vec![0u8; k.len()];
    p.load_kernel(&mut all).unwrap();
    assert_eq!(all, k);
    assert_eq!(p.initrd_size(), 8 + 2);
    let mut i = vec![0xffu8; 10];
    p.load_initrd(&mut i).unwrap();
    assert_eq!(i, b"12345\0\0\0uc");
    let f = find(&d, &Choice::parse("abc-6.8.5.conf").unwrap()).unwrap();
    assert_eq!(f.kernel_size(), 100);
    let f = find(&d, &Choice::parse("1:Fedora (6.8.5)").unwrap()).unwrap();
    assert_eq!(f.kernel_path(), "/abc/6.8.5/linux");
}

#[test]
fn bls_entry_without_linux_and_empty_kernel() {
    let img = bls_esp(&[("a.conf", "title A\noptions x\n")], &[]);
    assert_eq!(
        find(&disk(img), &Choice::default())
            .unwrap_err()
            .to_string(),
        "disk: /loader/entries/a.conf: BLS entry has no linux line"
    );
    let img = bls_esp(&[("a.conf", "linux /vmlinuz\n")], &[("/vmlinuz", b"")]);
    assert_eq!(
        find(&disk(img), &Choice::default())
            .unwrap_err()
            .to_string(),
        "disk: kernel /vmlinuz is empty (0 bytes)"
    );
}

#[test]
fn mbr_fat12_extlinux() {
    let conf = "DEFAULT debian\nTIMEOUT 5\nLABEL rescue\n  KERNEL /old\nLABEL debian\n  MENU LABEL Debian\n  \
                LINUX vmlinuz\n  INITRD initrd.img,/extra.img\n  APPEND root=/dev/vda1 console=ttyAMA0\n";
    let k = kernel(9000);
    let fs = fat(
        &[
            ("/extlinux/extlinux.conf", conf.as_bytes()),
            ("/vmlinuz", &k),
            ("/initrd.img", b"abcd"),
            ("/extra.img", b"ef"),
        ],
        true,
    );
    let d = disk(mbr(&[(0x0c, &fs)]));
    let f = find(&d, &Choice::default()).unwrap();
    assert_eq!(
        (f.partition, f.kind, f.entry.as_str()),
        (1, "extlinux", "Debian")
    );
    assert_eq!(f.cmdline, "root=/dev/vda1 console=ttyAMA0");
    let mut p = DiskPayload::new(d, f, Some(String::new()));
    let mut all = vec![0u8; k.len()];
    p.load_kernel(&mut all).unwrap();
    assert_eq!(all, k);
    let mut i = vec![0u8; 6];
    p.load_initrd(&mut i).unwrap();
    assert_eq!(i, b"abcdef");
    assert_eq!(p.cmdline(100).unwrap(), b"root=/dev/vda1 console=ttyAMA0");
}

#[test]
fn no_partition_table_and_corrupt_gpt() {
    let e = find(&disk(vec![0u8; 1 << 20]), &Choice::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "disk: no partition table (neither GPT nor MBR)"
    );
    let img = bls_esp(&[("a.conf", "linux /k\n")], &[("/k", b"kernel")]);
    // A bad primary header CRC: the backup serves.
    let mut bad = img.clone();
    bad[512 + 16] ^= 1;
    assert!(find(&disk(bad.clone()), &Choice::default()).is_ok());
    // Both bad: the primary's fault is named.
    let last = bad.len() - 512;
    bad[last + 16] ^= 1;
    assert_eq!(
        find(&disk(bad), &Choice::default())
            .unwrap_err()
            .to_string(),
        "disk: corrupt GPT: header CRC mismatch, and no valid backup"
    );
    // A damaged entry array is caught by its CRC.
    let mut bad = img;
    bad[1024 + 40] ^= 1;
    let last = bad.len() - 512 * 33;
    bad[last + 40] ^= 1;
    assert_eq!(
        find(&disk(bad), &Choice::default())
            .unwrap_err()
            .to_string(),
        "disk: corrupt GPT: partition entry array CRC mismatch, and no valid backup"
    );
    let e = find(&disk(gpt(&[(ESP, &[0u8; 4096])])), &Choice::default()).unwrap_err();
    assert_eq!(e, Error::NoBootConfig);
}

#[test]
fn choice_grammar() {
    let c = Choice::parse("disk1/2:fedora-6.8\0").unwrap();
    assert_eq!(
        (c.disk, c.partition, c.entry),
        (Some(1), Some(2), Some("fedora-6.8"))
    );
    let c = Choice::parse(" 3 ").unwrap();
    assert_eq!((c.disk, c.partition, c.entry), (None, Some(3), None));
    let c = Choice::parse("Debian GNU/Linux").unwrap();
    assert_eq!((c.partition, c.entry), (None, Some("Debian GNU/Linux")));
    let c = Choice::parse(":a:b").unwrap();
    assert_eq!((c.partition, c.entry), (None, Some("a:b")));
    assert_eq!(Choice::parse("").unwrap(), Choice::default());
    assert!(Choice::parse("0").is_err());
    assert!(Choice::parse("diskx/1").is_err());
}

#[test]
fn version_order_follows_uapi_10() {
    let less = [
        ("1.0~rc1", "1.0"),
        ("1.0", "1.0.1"),
        ("6.8.5", "6.10.2"),
        ("1.0", "1.0-1"),
        ("a", "1"),
        ("1.0^", "1.0.1"),
        ("1.0-9", "1.0.0"),
        ("abc-6.9", "abc-6.10"),
    ];
    for (a, b) in less {
        assert_eq!(version_cmp(a, b), Ordering::Less, "{a} < {b}");
        assert_eq!(version_cmp(b, a), Ordering::Greater, "{b} > {a}");
    }
    assert_eq!(version_cmp("01", "1"), Ordering::Equal);
}

#[test]
fn bls_order_per_spec() {
    let e = |id: &str, text: &str| conf::bls(id, text, "x64").unwrap();
    let mut v = vec![
        e("b", "version 3\n"),
        e("a-10", "version 10\nmachine-id dd\n"),
        e("d", "sort-key kkkk\nversion 100\n"),
        e("c", "sort-key xxxx\nversion 5\n"),
        e("cx", "sort-key xxxx\nversion 10\n"),
        e("z+0-3", "sort-key aaaa\n"),
    ];
    conf::bls_sort(&mut v);
    let ids: Vec<&str> = v.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["d", "cx", "c", "b", "a-10", "z+0-3"]);
    assert!(conf::bls("x", "architecture aa64\nlinux /k\n", "x64").is_none());
}

#[test]
fn grub_words_and_extlinux_defaults() {
    assert_eq!(
        conf::words(r#"linux	/vmlinuz 'a b' "c\"d" e\ f # gone"#),
        ["linux", "/vmlinuz", "a b", "c\"d", "e f"]
    );
    let g = conf::grub("menuentry 'x' {\nlinux (hd0,gpt2)/k a\n}\n");
    let e = conf::grub_pick(&g, None).unwrap();
    assert_eq!((e.root_part, e.kernel.as_deref()), (Some(2), Some("/k")));
    let g = conf::grub("set default=7\nmenuentry 'x' {\n}\n");
    assert!(conf::grub_pick(&g, None).is_none());
    let (v, d) = conf::extlinux("label a\nlabel b\nmenu default\nkernel /k\n");
    assert_eq!((v.len(), d.as_deref()), (2, Some("b")));
}

/// A bare ext4 superblock (magic, 1 KiB blocks) over `len` bytes, with
/// the block count split across s_blocks_count_lo/hi and the given
/// blocks per group: enough for the size checks before ext4-view.
fn ext4_superblock(len: usize, lo: u32, hi: u32, per_group: u32) -> Vec<u8> {
    let mut fs = std::vec![0u8; len];
    let sb = 1024;
    fs[sb + 0x04..sb + 0x08].copy_from_slice(&lo.to_le_bytes());
    fs[sb + 0x20..sb + 0x24].copy_from_slice(&per_group.to_le_bytes());
    fs[sb + 0x38..sb + 0x3a].copy_from_slice(&[0x53, 0xef]);
    fs[sb + 0x150..sb + 0x154].copy_from_slice(&hi.to_le_bytes());
    fs
}

#[test]
fn hostile_ext4_superblocks_are_refused_before_ext4_view_allocates() {
    let err = |fs: Vec<u8>| {
        find(&disk(gpt(&[(LINUX, &fs)])), &Choice::default())
            .unwrap_err()
            .to_string()
    };
    // s_blocks_count_hi without the 64bit feature: ext4-view reads it
    // anyway (a fuzz-found input asked it for gigabytes of descriptors).
    let e = err(ext4_superblock(64 << 10, 64, 1, 8192));
    assert!(e.contains("is larger than its partition"), "{e}");
    // One block per group over 8 MiB: 8,192 groups, past the table bound.
    let e = err(ext4_superblock(8 << 20, 8192, 0, 1));
    assert!(e.contains("8192 block groups are more than"), "{e}");
}
