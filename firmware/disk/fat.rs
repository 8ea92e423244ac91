//! A read-only FAT12/16/32 reader for EFI system partitions, with long
//! file names (BLS entry names are long). Layout from Microsoft's "FAT:
//! General Overview of On-Disk Format" (fatgen103).
//!
//! Own code rather than a crate: fatfs 0.3 (the released one) is `no_std`
//! only through `core_io`, which builds on one old nightly; embedded-sdmmc
//! opens volumes only through its own MBR reader (no GPT) and brings
//! write support the firmware does not want.

use super::volume::{Region, MAX_DIR};
use super::Error;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

/// Path components followed at most (no FAT directory tree a loader
/// reads is deeper).
const MAX_DEPTH: usize = 16;
/// fatgen103 "FAT Type Determination": the cluster count decides.
const FAT12_MAX: u32 = 4085;
const FAT16_MAX: u32 = 65525;
const ATTR_LFN: u8 = 0x0f;
const ATTR_DIR: u8 = 0x10;
const ATTR_VOLUME: u8 = 0x08;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Fat12,
    Fat16,
    Fat32,
}

/// A file or directory found by path.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    pub size: u64,
    cluster: u32,
    dir: bool,
}

pub struct Fat {
    r: Region,
    kind: Kind,
    cluster_bytes: u64,
    fat_start: u64,
    /// FAT12/16: the fixed root directory's bytes.
    root: (u64, u64),
    root_cluster: u32,
    data_start: u64,
    /// Valid cluster numbers are 2..clusters + 2.
    clusters: u32,
    serial: u32,
    /// The FAT sector last read: a file's chain is mostly in one.
    cache: RefCell<(u64, [u8; 512])>,
}

fn le16(b: &[u8], at: usize) -> u32 {
    u32::from(u16::from_le_bytes([b[at], b[at + 1]]))
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Fat {
    /// The FAT file system in `r`, `None` when its boot sector is not
    /// one.
    pub fn open(r: Region) -> Result<Option<Fat>, Error> {
        let mut b = [0u8; 512];
        r.read(0, &mut b)?;
        // fatgen103 "Boot Sector and BPB": a jump, the 0x55aa signature.
        if !matches!(b[0], 0xeb | 0xe9) || b[510..512] != [0x55, 0xaa] {
            return Ok(None);
        }
        let bps = le16(&b, 11);
        let spc = u32::from(b[13]);
        let reserved = le16(&b, 14);
        let fats = u32::from(b[16]);
        let root_entries = le16(&b, 17);
        let total = match le16(&b, 19) {
            0 => le32(&b, 32),
            n => n,
        };
        let fat_sectors = match le16(&b, 22) {
            0 => le32(&b, 36),
            n => n,
        };
        if !matches!(bps, 512 | 1024 | 2048 | 4096) || !spc.is_power_of_two() {
            return Ok(None);
        }
        if reserved == 0 || fats == 0 || fat_sectors == 0 || spc * bps > 64 * 1024 {
            return Err(Error::Fat("impossible BPB"));
        }
        let bps64 = u64::from(bps);
        let root_sectors = (u64::from(root_entries) * 32).div_ceil(bps64);
        let fat_start = u64::from(reserved) * bps64;
        let root_start = fat_start + u64::from(fats) * u64::from(fat_sectors) * bps64;
        let data_start = root_start + root_sectors * bps64;
        let total_bytes = u64::from(total) * bps64;
        if data_start >= total_bytes || total_bytes > r.len() {
            return Err(Error::Fat("file system larger than its partition"));
        }
        let clusters = ((total_bytes - data_start) / (u64::from(spc) * bps64)) as u32;
        let kind = match clusters {
            n if n < FAT12_MAX => Kind::Fat12,
            n if n < FAT16_MAX => Kind::Fat16,
            _ => Kind::Fat32,
        };
        // The FAT must cover every cluster.
        let need = match kind {
            Kind::Fat12 => (u64::from(clusters) + 2) * 3 / 2,
            Kind::Fat16 => (u64::from(clusters) + 2) * 2,
            Kind::Fat32 => (u64::from(clusters) + 2) * 4,
        };
        if need > u64::from(fat_sectors) * bps64 {
            return Err(Error::Fat("FAT too small for its clusters"));
        }
        let (serial, root_cluster) = match kind {
            Kind::Fat32 => (le32(&b, 67), le32(&b, 44)),
            _ => (le32(&b, 39), 0),
        };
        Ok(Some(Fat {
            r,
            kind,
            cluster_bytes: u64::from(spc) * bps64,
            fat_start,
            root: (root_start, root_sectors * bps64),
            root_cluster,
            data_start,
            clusters,
            serial,
            cache: RefCell::new((u64::MAX, [0; 512])),
        }))
    }

    /// The volume serial as Linux and GRUB spell a FAT UUID: `ABCD-1234`.
    pub fn uuid(&self) -> String {
        format!("{:04X}-{:04X}", self.serial >> 16, self.serial & 0xffff)
    }

    fn valid(&self, c: u32) -> bool {
        c >= 2 && c - 2 < self.clusters
    }

    /// The FAT's entry for cluster `c`: the next cluster, or `None` at the
    /// chain's end (or a bad or free cluster, which ends it too).
    fn next(&self, c: u32) -> Result<Option<u32>, Error> {
        let (at, mask, eoc) = match self.kind {
            Kind::Fat12 => (u64::from(c) * 3 / 2, 0xfff, 0xff8),
            Kind::Fat16 => (u64::from(c) * 2, 0xffff, 0xfff8),
            Kind::Fat32 => (u64::from(c) * 4, 0x0fff_ffff, 0x0fff_fff8),
        };
        let mut v = [0u8; 4];
        let n = if self.kind == Kind::Fat32 { 4 } else { 2 };
        for (i, byte) in v.iter_mut().enumerate().take(n) {
            *byte = self.fat_byte(at + i as u64)?;
        }
        let mut e = u32::from_le_bytes(v);
        if self.kind == Kind::Fat12 && c & 1 == 1 {
            e >>= 4;
        }
        e &= mask;
        if e >= eoc || !self.valid(e) {
            return Ok(None);
        }
        Ok(Some(e))
    }

    fn fat_byte(&self, at: u64) -> Result<u8, Error> {
        let sector = at / 512;
        let mut cache = self.cache.borrow_mut();
        if cache.0 != sector {
            self.r.read(self.fat_start + sector * 512, &mut cache.1)?;
            cache.0 = sector;
        }
        Ok(cache.1[(at % 512) as usize])
    }

    fn cluster_at(&self, c: u32) -> u64 {
        self.data_start + u64::from(c - 2) * self.cluster_bytes
    }

    /// A directory's bytes: the fixed root, or its cluster chain (a
    /// directory holds at most 65536 entries, fatgen103).
    fn dir_bytes(&self, cluster: u32) -> Result<Vec<u8>, Error> {
        if cluster == 0 && self.kind != Kind::Fat32 {
            let mut v = vec![0u8; self.root.1 as usize];
            self.r.read(self.root.0, &mut v)?;
            return Ok(v);
        }
        let max = 65536 * 32 / self.cluster_bytes + 1;
        let mut v = Vec::new();
        let mut c = Some(if cluster == 0 {
            self.root_cluster
        } else {
            cluster
        });
        let mut n = 0;
        while let Some(cl) = c {
            if !self.valid(cl) {
                return Err(Error::Fat("directory cluster out of range"));
            }
            n += 1;
            if n > max {
                return Err(Error::Fat("directory cluster chain too long or looped"));
            }
            let at = v.len();
            v.resize(at + self.cluster_bytes as usize, 0);
            self.r.read(self.cluster_at(cl), &mut v[at..])?;
            c = self.next(cl)?;
        }
        Ok(v)
    }

    /// The entries of the directory at `cluster`: (name, entry), long
    /// names where present, short names otherwise.
    fn entries(&self, cluster: u32) -> Result<Vec<(String, Entry)>, Error> {
        let bytes = self.dir_bytes(cluster)?;
        let mut out = Vec::new();
        let mut lfn: Vec<u16> = Vec::new();
        for d in bytes.chunks_exact(32) {
            match d[0] {
                0 => break,
                0xe5 => {
                    lfn.clear();
                    continue;
                }
                _ => {}
            }
            let attr = d[11];
            if attr == ATTR_LFN {
                // LFN pieces come last part first; each holds 13 UCS-2
                // characters at these offsets.
                let mut part: Vec<u16> = Vec::with_capacity(13);
                for at in [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30] {
                    part.push(le16(d, at) as u16);
                }
                if d[0] & 0x40 != 0 {
                    lfn.clear();
                }
                part.extend_from_slice(&lfn);
                lfn = part;
                if lfn.len() > 260 {
                    lfn.clear();
                }
                continue;
            }
            if attr & ATTR_VOLUME != 0 {
                lfn.clear();
                continue;
            }
            let name = if lfn.is_empty() {
                short_name(d)
            } else {
                let end = lfn.iter().position(|&u| u == 0).unwrap_or(lfn.len());
                char::decode_utf16(lfn[..end].iter().copied())
                    .map(|c| c.unwrap_or('\u{fffd}'))
                    .collect()
            };
            lfn.clear();
            let hi = if self.kind == Kind::Fat32 {
                le16(d, 20)
            } else {
                0
            };
            out.push((
                name,
                Entry {
                    size: u64::from(le32(d, 28)),
                    cluster: hi << 16 | le16(d, 26),
                    dir: attr & ATTR_DIR != 0,
                },
            ));
            if out.len() >= MAX_DIR {
                break;
            }
        }
        Ok(out)
    }

    /// The file or directory at `path`; FAT names match without case.
    pub fn find(&self, path: &str) -> Result<Option<Entry>, Error> {
        let mut cur = Entry {
            size: 0,
            cluster: 0,
            dir: true,
        };
        for (depth, name) in path.split('/').filter(|s| !s.is_empty()).enumerate() {
            if depth >= MAX_DEPTH || !cur.dir {
                return Ok(None);
            }
            let found = self
                .entries(cur.cluster)?
                .into_iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name));
            match found {
                Some((_, e)) => cur = e,
                None => return Ok(None),
            }
        }
        Ok(Some(cur))
    }

    /// The names of the files in the directory at `path`.
    pub fn list(&self, path: &str) -> Result<Vec<String>, Error> {
        match self.find(path)? {
            Some(d) if d.dir => Ok(self
                .entries(d.cluster)?
                .into_iter()
                .filter(|(_, e)| !e.dir)
                .map(|(n, _)| n)
                .collect()),
            _ => Ok(Vec::new()),
        }
    }

    /// Reads `dst.len()` bytes of file `f` from `offset` on, a run of
    /// consecutive clusters in one read.
    pub fn read_at(&self, f: &Entry, offset: u64, dst: &mut [u8]) -> Result<(), Error> {
        if f.dir
            || offset
                .checked_add(dst.len() as u64)
                .is_none_or(|e| e > f.size)
        {
            return Err(Error::Fat("read past a file's end"));
        }
        if dst.is_empty() {
            return Ok(());
        }
        let cb = self.cluster_bytes;
        let mut c = f.cluster;
        // Every step moves one cluster along a chain no longer than the
        // file system's cluster count.
        for _ in 0..offset / cb {
            c = self.step(c)?;
        }
        let mut pos = offset % cb;
        let mut done = 0usize;
        while done < dst.len() {
            if !self.valid(c) {
                return Err(Error::Fat("file cluster out of range"));
            }
            let want = (dst.len() - done) as u64;
            let (start, mut count, mut after) = (c, 1u64, None);
            // Extend the run while the chain stays contiguous; each round
            // adds a cluster, so it ends once the run covers `want`.
            while count * cb - pos < want {
                let n = self.step(c)?;
                if n != c + 1 {
                    after = Some(n);
                    break;
                }
                c = n;
                count += 1;
            }
            let n = (count * cb - pos).min(want) as usize;
            self.r
                .read(self.cluster_at(start) + pos, &mut dst[done..done + n])?;
            done += n;
            pos = 0;
            match after {
                Some(next) => c = next,
                None if done < dst.len() => c = self.step(c)?,
                None => {}
            }
        }
        Ok(())
    }

    fn step(&self, c: u32) -> Result<u32, Error> {
        self.next(c)?
            .ok_or(Error::Fat("cluster chain shorter than its file"))
    }
}

/// An 8.3 name as `NAME.EXT`.
fn short_name(d: &[u8]) -> String {
    let part = |b: &[u8]| -> String {
        let s: String = b.iter().map(|&c| c as char).collect();
        s.trim_end().into()
    };
    let (name, ext) = (part(&d[..8]), part(&d[8..11]));
    if ext.is_empty() {
        name
    } else {
        format!("{name}.{ext}")
    }
}
