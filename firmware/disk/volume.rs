//! A partition's file system, whichever it is: ext2/3/4 through
//! ext4-view, FAT through [`super::fat`]. Paths are absolute, `/`
//! separated; a missing file is `Ok(None)`, a damaged file system an
//! [`Error`].

use super::fat::Fat;
use super::part::Partition;
use super::{Disk, Error, SECTOR};
use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use ext4_view::{Ext4, Ext4Error, Ext4Read};

/// Directory entries read from one directory at most: a boot directory
/// holds a few dozen; a hostile one must not exhaust the heap.
pub const MAX_DIR: usize = 1024;

/// A partition's sectors as bytes.
#[derive(Clone)]
pub struct Region {
    dev: Disk,
    first: u64,
    sectors: u64,
}

impl Region {
    pub fn new(dev: &Disk, p: &Partition) -> Region {
        Region {
            dev: dev.clone(),
            first: p.first,
            sectors: p.sectors,
        }
    }

    pub fn len(&self) -> u64 {
        self.sectors * SECTOR as u64
    }

    /// Reads `dst.len()` bytes at `offset`: whole sectors straight into
    /// `dst`, partial ones at the ends through a sector buffer.
    pub fn read(&self, offset: u64, dst: &mut [u8]) -> Result<(), Error> {
        let end = offset.checked_add(dst.len() as u64);
        if end.is_none_or(|e| e > self.len()) {
            return Err(Error::OutOfRange {
                what: "a file system read",
            });
        }
        let mut dev = self.dev.borrow_mut();
        let s = SECTOR as u64;
        let mut done = 0usize;
        let mut pos = offset;
        let mut bounce = [0u8; SECTOR];
        while done < dst.len() {
            let lba = self.first + pos / s;
            let within = (pos % s) as usize;
            let left = dst.len() - done;
            if within == 0 && left >= SECTOR {
                let n = left / SECTOR * SECTOR;
                dev.read_sectors(lba, &mut dst[done..done + n])?;
                done += n;
                pos += n as u64;
            } else {
                dev.read_sectors(lba, &mut bounce)?;
                let n = (SECTOR - within).min(left);
                dst[done..done + n].copy_from_slice(&bounce[within..within + n]);
                done += n;
                pos += n as u64;
            }
        }
        Ok(())
    }
}

impl core::error::Error for Error {}

impl Ext4Read for Region {
    fn read(
        &mut self,
        start: u64,
        dst: &mut [u8],
    ) -> Result<(), Box<dyn core::error::Error + Send + Sync>> {
        Region::read(self, start, dst).map_err(|e| Box::new(e) as _)
    }
}

/// An open file system.
pub enum Volume {
    Ext4(Ext4),
    Fat(Box<Fat>),
}

/// ext4's superblock magic at byte 1024 + 0x38 (ext4 disk layout doc).
const EXT4_MAGIC_AT: u64 = 1024 + 0x38;

impl Volume {
    /// The file system on `p`, `None` when it is none the firmware reads
    /// (a BIOS boot partition, swap, LVM).
    pub fn open(dev: &Disk, p: &Partition) -> Result<Option<Volume>, Error> {
        let r = Region::new(dev, p);
        if r.len() < 2048 {
            return Ok(None);
        }
        let mut magic = [0u8; 2];
        r.read(EXT4_MAGIC_AT, &mut magic)?;
        if magic == [0x53, 0xef] {
            check_ext4_size(&r)?;
            return Ext4::load(Box::new(r))
                .map(|fs| Some(Volume::Ext4(fs)))
                .map_err(ext4_error);
        }
        Ok(Fat::open(r)?.map(|f| Volume::Fat(Box::new(f))))
    }

    /// The file system's UUID as GRUB's `search --fs-uuid` and Linux's
    /// `root=UUID=` write it.
    pub fn uuid(&self) -> String {
        match self {
            Volume::Ext4(fs) => fs.uuid().to_string(),
            Volume::Fat(fs) => fs.uuid(),
        }
    }

    /// The names of the regular files (and symlinks) in `dir`, sorted;
    /// empty when `dir` does not exist.
    pub fn list(&mut self, dir: &str) -> Result<Vec<String>, Error> {
        let mut names = match self {
            Volume::Ext4(fs) => {
                let Some(dir) = resolve(fs, dir)? else {
                    return Ok(Vec::new());
                };
                let iter = match fs.read_dir(dir.as_str()) {
                    Ok(i) => i,
                    Err(Ext4Error::NotFound | Ext4Error::NotADirectory) => return Ok(Vec::new()),
                    Err(e) => return Err(ext4_error(e)),
                };
                let mut names = Vec::new();
                for e in iter.take(MAX_DIR) {
                    let e = e.map_err(ext4_error)?;
                    if e.file_type().map_err(ext4_error)?.is_dir() {
                        continue;
                    }
                    if let Ok(n) = e.file_name().as_str() {
                        names.push(n.to_string());
                    }
                }
                names
            }
            Volume::Fat(fs) => fs.list(dir)?,
        };
        crate::platform::sort_small_by(&mut names, |a, b| a.cmp(b));
        Ok(names)
    }

    /// The size of the regular file at `path` (symlinks followed).
    pub fn size(&mut self, path: &str) -> Result<Option<u64>, Error> {
        match self {
            Volume::Ext4(fs) => match resolve(fs, path)? {
                None => Ok(None),
                Some(path) => match fs.metadata(path.as_str()) {
                    Ok(m) if m.is_dir() => Ok(None),
                    Ok(m) => Ok(Some(m.len())),
                    Err(e) => missing_or(e),
                },
            },
            Volume::Fat(fs) => Ok(fs.find(path)?.map(|f| f.size)),
        }
    }

    /// A small file (a configuration) whole, refused above `limit` bytes.
    pub fn read_small(&mut self, path: &str, limit: usize) -> Result<Option<Vec<u8>>, Error> {
        let Some(size) = self.size(path)? else {
            return Ok(None);
        };
        if size > limit as u64 {
            return Err(Error::TooLarge {
                path: path.to_string(),
                limit,
            });
        }
        let mut buf = vec![0u8; size as usize];
        self.read_at(path, 0, &mut buf)?;
        Ok(Some(buf))
    }

    /// Reads `dst.len()` bytes of `path` from `offset` on; the file must
    /// hold them all.
    pub fn read_at(&mut self, path: &str, offset: u64, dst: &mut [u8]) -> Result<(), Error> {
        let short = || Error::Config {
            file: path.to_string(),
            why: "file shorter than read".to_string(),
        };
        match self {
            Volume::Ext4(fs) => {
                let path = resolve(fs, path)?.ok_or_else(short)?;
                let mut f = fs.open(path.as_str()).map_err(ext4_error)?;
                f.seek_to(offset).map_err(ext4_error)?;
                let mut done = 0;
                // Each call returns at most one block; the loop ends
                // because every round moves forward or stops.
                while done < dst.len() {
                    let n = f.read_bytes(&mut dst[done..]).map_err(ext4_error)?;
                    if n == 0 {
                        return Err(short());
                    }
                    done += n;
                }
                Ok(())
            }
            Volume::Fat(fs) => {
                let f = fs.find(path)?.ok_or_else(short)?;
                fs.read_at(&f, offset, dst)
            }
        }
    }
}

/// Linux's limits on a symlink's target and on the symlinks one lookup
/// follows (include/uapi/linux/limits.h PATH_MAX; fs/namei.c MAXSYMLINKS).
const PATH_MAX: u64 = 4096;
const MAX_SYMLINKS: usize = 40;

/// `path` with every symlink resolved here, or `None` when part of it is
/// missing: ext4-view reads a symlink's target into a buffer of the size
/// its inode claims, so each target's size is checked before it is read,
/// and what ext4-view then opens has no symlink left to follow.
fn resolve(fs: &Ext4, path: &str) -> Result<Option<String>, Error> {
    let join = |parts: &[String]| {
        let mut p = String::from("/");
        p.push_str(&parts.join("/"));
        p
    };
    let mut todo: Vec<String> = path.split('/').rev().map(String::from).collect();
    let mut done: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        match c.as_str() {
            "" | "." => continue,
            ".." => {
                done.pop();
                continue;
            }
            _ => done.push(c),
        }
        let p = join(&done);
        // Every component before the last is resolved: this follows nothing.
        let m = match fs.symlink_metadata(p.as_str()) {
            Ok(m) => m,
            Err(e) => return missing_or(e),
        };
        if !m.is_symlink() {
            continue;
        }
        hops += 1;
        if hops > MAX_SYMLINKS || m.len() > PATH_MAX {
            return Err(Error::Ext4(format!(
                "{p}: too many symlinks or a symlink target over {PATH_MAX} bytes"
            )));
        }
        let target = fs.read_link(p.as_str()).map_err(ext4_error)?;
        let target = target
            .to_str()
            .map_err(|_| Error::Ext4(format!("{p}: symlink target is not UTF-8")))?;
        done.pop();
        if target.starts_with('/') {
            done.clear();
        }
        todo.extend(target.split('/').rev().map(String::from));
    }
    Ok(Some(join(&done)))
}

/// ext4-view trusts the superblock's block count; a file system cut
/// short (a truncated image) would only fail deep in a read, so say it at
/// once. It also sizes its block group table from the superblock alone,
/// so a hostile one could ask for gigabytes: the table must fit in what
/// the firmware's heap can spare. Fields from the ext4 disk layout doc:
/// s_blocks_count_lo at 0x04, s_first_data_block at 0x14,
/// s_log_block_size at 0x18, s_blocks_per_group at 0x20, s_desc_size at
/// 0xfe, s_blocks_count_hi at 0x150 (which ext4-view 1.0 adds whatever the
/// 64bit feature says, so this does too).
fn check_ext4_size(r: &Region) -> Result<(), Error> {
    /// A block group table of at most 256 KiB: 4,096 groups of 64-byte
    /// descriptors, a 512 GiB file system with the default 128 MiB groups.
    const MAX_GROUP_TABLE: u64 = 256 << 10;
    let mut sb = [0u8; 0x154];
    r.read(1024, &mut sb)?;
    let u32_at = |o: usize| u64::from(u32::from_le_bytes([sb[o], sb[o + 1], sb[o + 2], sb[o + 3]]));
    let blocks = u32_at(0x04) | u32_at(0x150) << 32;
    let log = u32_at(0x18);
    if log > 6 {
        return Err(Error::Ext4("impossible block size".to_string()));
    }
    let bytes = blocks.checked_mul(1024 << log);
    if bytes.is_none_or(|b| b > r.len()) {
        return Err(Error::Ext4(format!(
            "file system of {} blocks is larger than its partition (a truncated image?)",
            blocks
        )));
    }
    let per_group = u32_at(0x20).max(1);
    let groups = blocks.saturating_sub(u32_at(0x14)).div_ceil(per_group);
    let desc = u64::from(u16::from_le_bytes([sb[0xfe], sb[0xff]])).max(64);
    if groups.saturating_mul(desc) > MAX_GROUP_TABLE {
        return Err(Error::Ext4(format!(
            "{groups} block groups are more than the firmware can hold"
        )));
    }
    Ok(())
}

fn missing_or<T>(e: Ext4Error) -> Result<Option<T>, Error> {
    match e {
        Ext4Error::NotFound | Ext4Error::NotADirectory | Ext4Error::IsASpecialFile => Ok(None),
        e => Err(ext4_error(e)),
    }
}

fn ext4_error(e: Ext4Error) -> Error {
    // An I/O error is ours (a read past the partition, a device error):
    // its own message says more than ext4-view's wrapper.
    if let Some(io) = e.as_io() {
        if let Some(ours) = io.downcast_ref::<Error>() {
            return ours.clone();
        }
    }
    Error::Ext4(format!("{e}"))
}
