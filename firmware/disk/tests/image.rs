//! Disk images built in memory for the tests: GPT and MBR tables, FAT12/16
//! file systems with long names, and ext4 through mkfs.ext4 -d where the
//! tool exists.

use crate::disk::{BlockDevice, Disk, Error, SECTOR};
use alloc::rc::Rc;
use core::cell::RefCell;
use std::vec::Vec;

pub struct MemDisk(pub Vec<u8>);

impl BlockDevice for MemDisk {
    fn read_sectors(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), Error> {
        assert_eq!(buf.len() % SECTOR, 0);
        let at = lba as usize * SECTOR;
        let src = self.0.get(at..at + buf.len()).ok_or(Error::Io {
            lba,
            why: "past the end",
        })?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn sectors(&self) -> u64 {
        (self.0.len() / SECTOR) as u64
    }
}

pub fn disk(bytes: Vec<u8>) -> Disk {
    Rc::new(RefCell::new(MemDisk(bytes)))
}

/// The GPT checksums are UEFI's CRC-32, as the EFI system table's.
pub use crate::boot::efi::crc32;

pub const ESP: [u8; 16] = guid(
    0xc12a7328,
    0xf81f,
    0x11d2,
    [0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b],
);
pub const LINUX: [u8; 16] = guid(
    0x0fc63daf,
    0x8483,
    0x4772,
    [0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4],
);
pub const BIOS_BOOT: [u8; 16] = guid(
    0x21686148,
    0x6449,
    0x6e6f,
    [0x74, 0x4e, 0x65, 0x65, 0x64, 0x45, 0x46, 0x49],
);

const fn guid(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let a = a.to_le_bytes();
    let b = b.to_le_bytes();
    let c = c.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6],
        d[7],
    ]
}

/// A GPT disk: the partitions' contents (type, bytes) placed from sector
/// 2048 on, 1 MiB aligned, 128 entries; both headers valid.
pub fn gpt(parts: &[([u8; 16], &[u8])]) -> Vec<u8> {
    let mut at = 2048u64;
    let mut layout = Vec::new();
    for (_, data) in parts {
        let sectors = (data.len() as u64).div_ceil(512).max(1);
        layout.push((at, sectors));
        at = (at + sectors).next_multiple_of(2048);
    }
    let total = at + 34;
    let mut d = vec![0u8; total as usize * 512];
    for ((_, data), (first, _)) in parts.iter().zip(&layout) {
        let o = *first as usize * 512;
        d[o..o + data.len()].copy_from_slice(data);
    }
    let mut entries = vec![0u8; 128 * 128];
    for (i, ((ty, _), (first, sectors))) in parts.iter().zip(&layout).enumerate() {
        let e = &mut entries[i * 128..(i + 1) * 128];
        e[..16].copy_from_slice(ty);
        e[16] = i as u8 + 1;
        e[32..40].copy_from_slice(&first.to_le_bytes());
        e[40..48].copy_from_slice(&(first + sectors - 1).to_le_bytes());
    }
    // Protective MBR.
    d[446 + 4] = 0xee;
    d[446 + 8..446 + 12].copy_from_slice(&1u32.to_le_bytes());
    d[446 + 12..446 + 16].copy_from_slice(&((total - 1).min(u32::MAX as u64) as u32).to_le_bytes());
    d[510] = 0x55;
    d[511] = 0xaa;
    let ecrc = crc32(&entries);
    let header = |my: u64, alt: u64, entries_at: u64| {
        let mut h = vec![0u8; 92];
        h[..8].copy_from_slice(b"EFI PART");
        h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        h[12..16].copy_from_slice(&92u32.to_le_bytes());
        h[24..32].copy_from_slice(&my.to_le_bytes());
        h[32..40].copy_from_slice(&alt.to_le_bytes());
        h[40..48].copy_from_slice(&34u64.to_le_bytes());
        h[48..56].copy_from_slice(&(total - 34).to_le_bytes());
        h[72..80].copy_from_slice(&entries_at.to_le_bytes());
        h[80..84].copy_from_slice(&128u32.to_le_bytes());
        h[84..88].copy_from_slice(&128u32.to_le_bytes());
        h[88..92].copy_from_slice(&ecrc.to_le_bytes());
        let c = crc32(&h);
        h[16..20].copy_from_slice(&c.to_le_bytes());
        h
    };
    let last = total - 1;
    d[512..512 + 92].copy_from_slice(&header(1, last, 2));
    d[1024..1024 + entries.len()].copy_from_slice(&entries);
    let backup_entries = (last - 32) as usize * 512;
    d[backup_entries..backup_entries + entries.len()].copy_from_slice(&entries);
    let b = last as usize * 512;
    d[b..b + 92].copy_from_slice(&header(last, 1, last - 32));
    d
}

/// An MBR disk with primary partitions (type, bytes) from sector 2048.
pub fn mbr(parts: &[(u8, &[u8])]) -> Vec<u8> {
    let mut at = 2048usize;
    let mut d = vec![0u8; 2048 * 512];
    for (i, (ty, data)) in parts.iter().enumerate() {
        let sectors = data.len().div_ceil(512);
        d.resize((at + sectors) * 512, 0);
        d[at * 512..at * 512 + data.len()].copy_from_slice(data);
        let e = 446 + 16 * i;
        d[e] = if i == 0 { 0x80 } else { 0 };
        d[e + 4] = *ty;
        d[e + 8..e + 12].copy_from_slice(&(at as u32).to_le_bytes());
        d[e + 12..e + 16].copy_from_slice(&(sectors as u32).to_le_bytes());
        at += sectors;
    }
    d[510] = 0x55;
    d[511] = 0xaa;
    d
}

/// A FAT12 (`fat12`) or FAT16 file system holding `files` (absolute
/// paths; directories made as needed), long names for every entry,
/// 2 KiB clusters, serial 0x1234abcd.
pub fn fat(files: &[(&str, &[u8])], fat12: bool) -> Vec<u8> {
    let spc = 4u32;
    let cb = (spc * 512) as usize;
    let clusters: u32 = if fat12 { 2000 } else { 5000 };
    let fat_sectors = if fat12 {
        ((clusters + 2) * 3 / 2).div_ceil(512)
    } else {
        ((clusters + 2) * 2).div_ceil(512)
    };
    let reserved = 1u32;
    let root_entries = 512u32;
    let root_sectors = root_entries * 32 / 512;
    let data_start = reserved + 2 * fat_sectors + root_sectors;
    let total = data_start + clusters * spc;
    let mut img = vec![0u8; total as usize * 512];
    let b = &mut img[..512];
    b[0] = 0xeb;
    b[1] = 0x3c;
    b[2] = 0x90;
    b[3..11].copy_from_slice(b"MSWIN4.1");
    b[11..13].copy_from_slice(&512u16.to_le_bytes());
    b[13] = spc as u8;
    b[14..16].copy_from_slice(&(reserved as u16).to_le_bytes());
    b[16] = 2;
    b[17..19].copy_from_slice(&(root_entries as u16).to_le_bytes());
    b[19..21].copy_from_slice(&(total.min(0xffff) as u16).to_le_bytes());
    if total > 0xffff {
        b[19..21].fill(0);
        b[32..36].copy_from_slice(&total.to_le_bytes());
    }
    b[21] = 0xf8;
    b[22..24].copy_from_slice(&(fat_sectors as u16).to_le_bytes());
    b[39..43].copy_from_slice(&0x1234_abcdu32.to_le_bytes());
    b[510] = 0x55;
    b[511] = 0xaa;

    // Directory tree: path -> (entries bytes), files -> cluster chains.
    let mut next_cluster = 2u32;
    let mut fat_entries: Vec<(u32, u32)> = Vec::new(); // (cluster, value)
    let mut dirs: Vec<(String, Vec<u8>, u32)> = vec![(String::new(), Vec::new(), 0)];
    let mut alloc_chain = |len: usize, fat_entries: &mut Vec<(u32, u32)>| -> u32 {
        let n = len.div_ceil(cb).max(1) as u32;
        let first = next_cluster;
        for i in 0..n {
            let v = if i + 1 == n { 0xffff } else { first + i + 1 };
            fat_entries.push((first + i, v));
        }
        next_cluster += n;
        first
    };
    let mut file_data: Vec<(u32, &[u8])> = Vec::new();
    for (path, data) in files {
        let comps: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut parent = String::new();
        for (i, c) in comps.iter().enumerate() {
            let here = format!("{parent}/{c}");
            let last = i + 1 == comps.len();
            if last {
                let cl = if data.is_empty() {
                    0
                } else {
                    alloc_chain(data.len(), &mut fat_entries)
                };
                if cl != 0 {
                    file_data.push((cl, data));
                }
                let pd = dirs.iter_mut().find(|d| d.0 == parent).unwrap();
                push_entry(&mut pd.1, c, 0x20, cl, data.len() as u32);
            } else if !dirs.iter().any(|d| d.0 == here) {
                let cl = alloc_chain(cb, &mut fat_entries);
                let pd = dirs.iter_mut().find(|d| d.0 == parent).unwrap();
                push_entry(&mut pd.1, c, 0x10, cl, 0);
                dirs.push((here.clone(), Vec::new(), cl));
            }
            parent = here;
        }
    }
    let data_off = data_start as usize * 512;
    let cl_off = |c: u32| data_off + (c as usize - 2) * cb;
    for (cl, data) in file_data {
        img[cl_off(cl)..cl_off(cl) + data.len()].copy_from_slice(data);
    }
    for (path, bytes, cl) in &dirs {
        if path.is_empty() {
            let o = (reserved + 2 * fat_sectors) as usize * 512;
            img[o..o + bytes.len()].copy_from_slice(bytes);
        } else {
            assert!(bytes.len() <= cb, "test directory fits one cluster");
            img[cl_off(*cl)..cl_off(*cl) + bytes.len()].copy_from_slice(bytes);
        }
    }
    for copy in 0..2 {
        let o = (reserved + copy * fat_sectors) as usize * 512;
        let f = &mut img[o..o + fat_sectors as usize * 512];
        let mut set = |c: u32, v: u32| {
            if fat12 {
                let v = v & 0xfff;
                let at = (c * 3 / 2) as usize;
                if c & 1 == 0 {
                    f[at] = v as u8;
                    f[at + 1] = (f[at + 1] & 0xf0) | (v >> 8) as u8;
                } else {
                    f[at] = (f[at] & 0x0f) | ((v << 4) as u8);
                    f[at + 1] = (v >> 4) as u8;
                }
            } else {
                f[c as usize * 2..c as usize * 2 + 2].copy_from_slice(&(v as u16).to_le_bytes());
            }
        };
        set(0, 0xfff8);
        set(1, 0xffff);
        for &(c, v) in &fat_entries {
            set(c, v);
        }
    }
    img
}

fn push_entry(dir: &mut Vec<u8>, name: &str, attr: u8, cluster: u32, size: u32) {
    let n = dir.len() / 32;
    let short = format!("F{n:07}   ");
    let sn: Vec<u8> = short.bytes().collect();
    let sum = sn
        .iter()
        .fold(0u8, |s, &c| s.rotate_right(1).wrapping_add(c));
    let units: Vec<u16> = name.encode_utf16().collect();
    let pieces = units.len().div_ceil(13);
    for p in (0..pieces).rev() {
        let mut e = [0u8; 32];
        e[0] = (p as u8 + 1) | if p + 1 == pieces { 0x40 } else { 0 };
        e[11] = 0x0f;
        e[13] = sum;
        for (k, at) in [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30]
            .iter()
            .enumerate()
        {
            let i = p * 13 + k;
            let u = match i.cmp(&units.len()) {
                core::cmp::Ordering::Less => units[i],
                core::cmp::Ordering::Equal => 0,
                core::cmp::Ordering::Greater => 0xffff,
            };
            e[*at..at + 2].copy_from_slice(&u.to_le_bytes());
        }
        dir.extend_from_slice(&e);
    }
    let mut e = [0u8; 32];
    e[..11].copy_from_slice(&sn);
    e[11] = attr;
    e[20..22].copy_from_slice(&((cluster >> 16) as u16).to_le_bytes());
    e[26..28].copy_from_slice(&(cluster as u16).to_le_bytes());
    e[28..32].copy_from_slice(&size.to_le_bytes());
    dir.extend_from_slice(&e);
}

/// An ext4 file system holding `files`, made by mkfs.ext4 -d; `None`
/// (with the reason printed) where mkfs.ext4 is missing.
pub fn ext4(files: &[(&str, &[u8])], uuid: &str) -> Option<Vec<u8>> {
    let tool = ["/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(tool) = tool else {
        std::println!("skipped: no mkfs.ext4 to build the ext4 image");
        return None;
    };
    let dir = std::env::temp_dir().join(format!(
        "hotstub-disk-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let root = dir.join("root");
    for (path, data) in files {
        let p = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
    }
    std::fs::create_dir_all(&root).unwrap();
    let img = dir.join("fs.img");
    let ok = std::process::Command::new(tool)
        .args(["-q", "-F", "-b", "1024", "-U", uuid, "-d"])
        .arg(&root)
        .arg(&img)
        .arg("4M")
        .env("E2FSPROGS_FAKE_TIME", "1")
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let bytes = std::fs::read(&img).ok();
    let _ = std::fs::remove_dir_all(&dir);
    if !ok {
        std::println!("skipped: mkfs.ext4 -d failed");
        return None;
    }
    bytes
}

static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
